//! `Discovery`: turns the configured targets into the set of hosts to watch,
//! and keeps that set true as the deployment changes.
//!
//! Each target's seeds are expanded ([`expand`]) into every replica-set
//! member, shard, config server and mongos (or taken as they are with
//! `discover = false`). Monitors report a fingerprint of what their `hello`
//! (or, on mongos, the shard and router lists) says; when one changes, the
//! target is expanded again at once, and every target is re-expanded every
//! `discovery.interval_secs` regardless. A host that left the topology is
//! dropped after `discovery.removal_grace_secs`; one that is merely
//! unreachable is kept (and reported `up = 0`) as long as its set or cluster
//! still lists it. Changes reach the supervisor as one [`HostSetChanged`].

mod actor;
pub mod expand;

use actix::Message;

use crate::actors::host_monitor::HostSpec;
use crate::config::{DiscoverySettings, TargetSettings};

pub use actor::{spec_for, Discovery, DiscoveryLinks};

/// Replace the targets and discovery settings (at start and on reload).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyTargets {
    pub targets: Vec<TargetSettings>,
    pub discovery: DiscoverySettings,
    pub agent: crate::config::AgentSettings,
}

/// The set of hosts to monitor changed.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct HostSetChanged {
    /// Hosts to start monitoring, or to restart with new options or labels.
    pub added: Vec<HostSpec>,
    /// `host:port` of hosts to stop monitoring.
    pub removed: Vec<String>,
}

/// A monitor saw its host's view of the topology; `fingerprint` changes
/// whenever that view does (set version, election, members, shard list...).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct TopologyObserved {
    /// The target the host was discovered from.
    pub target: String,
    pub host: String,
    pub fingerprint: u64,
}

/// Stop; not a failure, so not restarted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopDiscovery;
