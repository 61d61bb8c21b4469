#!/usr/bin/env bash
# The fault matrix (tests/fault_matrix.rs) jumps the agent's wall clock with
# libfaketime (Debian's faketime package brings libfaketime): LD_PRELOADed
# into the agent only, so nothing else on the machine sees the jump.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps/lib.sh

apt_need faketime faketime
