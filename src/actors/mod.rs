//! The actors of the agent, one folder each: `mod.rs` holds the messages and
//! constructors, `actor.rs` the `Actor`/`Handler` impls.
//!
//! ```text
//!            Supervisor ──owns──▶ Discovery, HostMonitor×N, Batcher, Uploader×targets
//! Discovery ──HostSetChanged──▶ Supervisor ──start/stop──▶ HostMonitor
//! HostMonitor ──SamplesCollected──▶ Batcher ──(queue+spool per target)+BatchQueued──▶ Uploader ──POST──▶ receiver
//! ```
//!
//! Monitors and batchers live on the workers (`agent.workers` Arbiters):
//! each worker has its own batcher, and a monitor sends its samples to the
//! batcher of its worker, so sampling, encoding and compression of a host
//! all run on one thread and the work spreads over every core. The
//! supervisor, discovery and the uploaders run on the main Arbiter.
//!
//! In fleet mode (`[fleet]`) a `Fleet` actor keeps the agent's lease in
//! etcd: Discovery runs only on the elected leader, whose host set goes to
//! etcd (`PublishHosts`), and every agent's supervisor monitors the share
//! `Fleet` gives it (`OwnedHosts`) instead of Discovery's whole set.
//!
//! Children that feed each other reach one another through a [`Route`], so
//! that when the supervisor restarts one, the others follow the new address
//! without being restarted themselves.

pub mod batcher;
pub mod discovery;
pub mod fleet;
pub mod host_monitor;
pub mod supervisor;
pub mod uploader;

use std::sync::{Arc, Mutex};

use actix::{Message, Recipient};

/// A replaceable recipient: the current address of a child that may be
/// restarted. Cloned into every sender.
pub struct Route<M: Message + Send>
where
    M::Result: Send,
{
    cell: Arc<Mutex<Option<Recipient<M>>>>,
}

impl<M: Message + Send> Clone for Route<M>
where
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Route {
            cell: self.cell.clone(),
        }
    }
}

impl<M: Message + Send> Default for Route<M>
where
    M::Result: Send,
{
    fn default() -> Self {
        Route {
            cell: Arc::new(Mutex::new(None)),
        }
    }
}

impl<M: Message + Send> Route<M>
where
    M::Result: Send,
{
    /// Points the route at a (new) recipient.
    pub fn set(&self, to: Recipient<M>) {
        *self.cell.lock().unwrap_or_else(|e| e.into_inner()) = Some(to);
    }

    /// Sends without waiting; returns false when nobody is listening, so the
    /// caller can count what was not delivered.
    pub fn send(&self, msg: M) -> bool {
        let guard = self.cell.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(r) if r.connected() => {
                r.do_send(msg);
                true
            }
            _ => false,
        }
    }
}

/// Which child a supervisor event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChildId {
    Discovery,
    /// The batcher of one worker, by the worker's index.
    Batcher(usize),
    /// The uploader of one upload target, by name.
    Uploader(String),
    /// A host monitor, by `host:port`.
    Host(String),
}

impl std::fmt::Display for ChildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildId::Discovery => f.write_str("discovery"),
            ChildId::Batcher(i) => write!(f, "batcher {i}"),
            ChildId::Uploader(name) => write!(f, "uploader {name}"),
            ChildId::Host(h) => write!(f, "host_monitor {h}"),
        }
    }
}
