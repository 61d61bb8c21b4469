//! `Supervisor`: starts and owns every other actor, restarts the ones that
//! stop unexpectedly, applies reloads and runs the graceful shutdown.
//!
//! It holds the only strong `Addr` of each child. A child that stops on its
//! own reports [`ChildStopped`] from its `stopped()`; the supervisor then
//! consults that child's [`restart::RestartTracker`] and either starts a
//! fresh instance after a growing delay or marks it failed and carries on
//! with the rest. Children stopped on purpose (shutdown, host removed) do
//! not report.
//!
//! Shutdown (SIGTERM/SIGINT): discovery and monitors stop, the batcher
//! flushes its open batch, and the uploader gets `agent.shutdown_timeout_secs`
//! to deliver what is queued before the System stops. A second signal exits
//! at once.

mod actor;
pub mod restart;

use actix::Message;

pub use actor::{ReloadSource, Supervisor};

use crate::actors::ChildId;

/// A child stopped without being asked to.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ChildStopped {
    pub child: ChildId,
    /// Which instance stopped: a late report from an instance that was
    /// already replaced is ignored.
    pub generation: u64,
}

/// Stop gracefully (SIGTERM, SIGINT).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Re-read the configuration file and apply it (SIGHUP); keep the running
/// configuration if the new one is invalid.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload;

/// The state of every child, for `check`, tests and diagnostics.
#[derive(Message)]
#[rtype(result = "Vec<ChildStatus>")]
pub struct ListChildren;

/// Every monitored host with its labels as of its last round.
#[derive(Message)]
#[rtype(result = "Vec<crate::sample::Labels>")]
pub struct ListHosts;

/// One child as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildStatus {
    pub id: ChildId,
    pub generation: u64,
    pub running: bool,
    /// Restarted too often: left stopped.
    pub failed: bool,
}
