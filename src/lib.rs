//! mongomon: a MongoDB monitoring agent.
//!
//! One process watches every `mongod` and `mongos` of a deployment and pushes
//! what it collects to a time-series receiver, without losing samples when the
//! receiver is away.
//!
//! # Module map
//! - [`cli`]: the command line (clap derive); each subcommand declares the flags it takes.
//! - [`cmd`]: the subcommands, one file each: [`cmd::run`], [`cmd::check`], [`cmd::config`],
//!   [`cmd::init`], [`cmd::sim`], [`cmd::demo`], [`cmd::status`] (a running agent's table),
//!   [`cmd::fleet`] (`fleet status`) and
//!   [`cmd::bench`] (the many-host harness); [`cmd::table`] is the host table `demo` and
//!   `status` draw; [`cmd::main`] dispatches to them.
//! - [`config`]: defaults → TOML → `MONGOMON_` env → CLI, validated into [`config::Settings`];
//!   it owns every settings type, the actors' included.
//! - [`actors`]: the actix actors: [`actors::supervisor`] owns [`actors::discovery`],
//!   one [`actors::host_monitor`] per host, [`actors::batcher`] and one [`actors::uploader`] per upload target
//!   (with its queue, durable spool, retry policy and proxy/TLS connector).
//! - [`fleet`]: fleet mode on etcd: the key layout, rendezvous assignment, the gate monitors
//!   check, and [`fleet::etcd`], a small client over etcd's JSON gateway; the
//!   [`actors::fleet`] actor keeps the lease, elects the discoverer and hands out shares.
//! - [`mongo`]: the agent's own MongoDB connection, one socket per host shared by discovery, the
//!   monitors and `check` ([`mongo::conn`]: TCP or TLS ([`mongo::tls`]), handshake, logins
//!   ([`mongo::auth`]), compression, reconnect backoff), and monitoring commands with timeouts.
//!   The driver only parses connection strings.
//! - [`wire`]: the wire protocol, once for both ends: frames, compression, SCRAM.
//! - [`sample`]: [`sample::Sample`], one collected reply or host status, with the host's labels.
//! - [`format`]: encoding samples as line protocol, JSON lines, Prometheus remote-write or VictoriaMetrics import lines.
//! - [`stats`]: the agent's own counters, shipped in the same stream.
//! - [`listener`]: the agent's HTTP listener (`[http]`): `/metrics` (Prometheus text or
//!   OpenMetrics, the series remote-write carries), `/healthz`, `/readyz`, `/status`, served
//!   on a thread of its own from each host's latest round ([`listener::AgentView`]).
//! - [`sim`]: the MongoDB wire-protocol simulator (replica sets, sharded clusters, fleets, versions
//!   3.6–8.0, faults down to broken frames) behind `mongomon sim`, `demo` and `bench`; it speaks
//!   through [`wire`] too.
//! - [`logging`]: slog drains (text or JSON, stderr or a reopenable file) with a level that can change at run time.
//! - [`daemon`]: running as a service: the root refusal, the pid file, the world-readable-secret warning.
//! - [`signals`]: maps SIGTERM/SIGINT/SIGHUP to messages for the supervisor.
//! - [`redact`]: the one redaction of URLs and messages, used by every printer (config, errors, check, logs).
//! - [`clock`]: time arithmetic that saturates instead of panicking.
//! - [`fatal`]: the panic hook: one log line naming where, then a prompt exit (never a half-alive agent).
//! - [`failpoint`]: `MONGOMON_FAILPOINT`, named places where tests make the agent panic on purpose.
//! - [`http_body`]: reading one request body, for the in-process receivers of `demo` and `bench`.

pub mod actors;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod failpoint;
pub mod fatal;
pub mod fleet;
pub mod format;
pub mod http_body;
pub mod listener;
pub mod logging;
pub mod mongo;
pub mod redact;
pub mod sample;
pub mod signals;
pub mod sim;
pub mod stats;
pub mod wire;

/// Installs the process-wide TLS crypto provider (ring, the one the MongoDB
/// driver uses). awc's rustls connector panics at start when no provider, or
/// more than one, is available; calling this twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
