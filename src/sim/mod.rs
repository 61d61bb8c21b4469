//! MongoDB wire-protocol simulator: serves replica sets, sharded clusters and
//! fleets of simulated mongod/mongos on loopback addresses, answers like real
//! servers (replies derived from real captures) and injects faults on demand.
//!
//! Start with [`Simulator::start`] and a [`Topology`] (TOML or built in Rust).

pub mod catalog;
pub mod commands;
pub mod fixtures;
pub mod server;
pub mod state;
pub mod topology;

pub use server::{HostInfo, SimHandle, Simulator};
pub use state::ControlError;
pub use topology::{Action, FrameFault, Topology, TopologyError};

use std::net::SocketAddr;

/// Errors of the simulator runtime.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Invalid topology.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A control action was rejected.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A listener could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The runtime or its thread could not start.
    #[error("cannot start the simulator runtime: {0}")]
    Runtime(std::io::Error),
    /// Invalid setting.
    #[error("{0}")]
    Config(String),
}
