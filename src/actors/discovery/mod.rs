//! `Discovery`: turns the configured targets into the set of hosts to watch.
//!
//! Today each target contributes the seed hosts of its URI; expanding
//! replica sets and sharded clusters from those seeds grows here. Whatever
//! the source, changes reach the supervisor as one [`HostSetChanged`] event,
//! so the supervisor only ever starts and stops monitors.

mod actor;

use actix::Message;

use crate::actors::host_monitor::HostSpec;
use crate::config::TargetSettings;

pub use actor::Discovery;

/// Replace the targets (at start and on reload).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyTargets(pub Vec<TargetSettings>);

/// The set of hosts to monitor changed.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct HostSetChanged {
    /// Hosts to start monitoring, or to restart with new options.
    pub added: Vec<HostSpec>,
    /// `host:port` of hosts to stop monitoring.
    pub removed: Vec<String>,
}

/// Stop; not a failure, so not restarted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopDiscovery;
