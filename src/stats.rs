//! The agent's own counters, shared by the actors and shipped as `agent`
//! samples in the same stream as the MongoDB metrics, so an operator sees
//! lost or late data where they see the data itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters and gauges of the running agent.
        #[derive(Debug, Default)]
        pub struct AgentStats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl AgentStats {
            /// Every counter with its name, read now.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// Samples produced by host monitors (replies and statuses).
    samples_taken,
    /// Rounds in which a host did not answer every command (`up = 0`).
    samples_failed,
    /// Rounds not started because the previous one on that host was still running.
    rounds_skipped,
    /// Batches accepted by the receiver (2xx).
    batches_sent,
    /// Upload attempts that failed and were scheduled again.
    batches_retried,
    /// Batches given up: rejected by the receiver (4xx) or out of retries.
    batches_failed,
    /// Batches dropped because the in-memory queue was over its bound.
    batches_dropped,
    /// Samples inside dropped or failed batches.
    samples_dropped,
    /// Batches waiting for the receiver (gauge).
    queue_batches,
    /// Bytes waiting for the receiver (gauge).
    queue_bytes,
    /// Hosts being monitored (gauge).
    hosts_monitored,
    /// Child actors restarted by the supervisor.
    restarts,
}

/// Shared handle.
pub type Stats = Arc<AgentStats>;

impl AgentStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }
}
