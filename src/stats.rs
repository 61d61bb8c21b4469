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
            /// Per upload target.
            pub uploads: UploadStatsList,
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
    /// Hosts being monitored (gauge).
    hosts_monitored,
    /// Child actors restarted by the supervisor.
    restarts,
}

macro_rules! upload_counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters and gauges of one upload target: its queue, spool and
        /// deliveries. Shipped as `mongomon_upload` with an `upload` tag.
        #[derive(Debug, Default)]
        pub struct UploadStats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl UploadStats {
            /// Every counter with its name, read now.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

upload_counters! {
    /// Batches (and their samples) put on this target's queue: by the
    /// batcher, or found in the spool at start.
    batches_queued,
    samples_queued,
    /// Batches accepted by the receiver (2xx).
    batches_sent,
    /// Samples inside accepted batches.
    samples_sent,
    /// Upload attempts that failed and were scheduled again.
    batches_retried,
    /// Batches the receiver refused for good (4xx), moved to the dead-letter file.
    batches_dead_lettered,
    samples_dead_lettered,
    /// Batches dropped to stay within a bound: the oldest under
    /// `spool.on_full = "drop_oldest"`, or the in-memory queue bound when
    /// there is no spool (or it cannot be written).
    batches_dropped,
    samples_dropped,
    /// New batches refused under `spool.on_full = "refuse_new"`.
    batches_refused,
    samples_refused,
    /// Batches given up after `upload.max_retries`.
    batches_expired,
    samples_expired,
    /// Failed writes to the spool (disk full, permissions).
    spool_write_errors,
    /// Damaged records found (and cut) when the spool was opened or read.
    spool_corrupt_records,
    /// Bytes cut off with them.
    spool_truncated_bytes,
    /// Batches found in the spool at start and queued again.
    spool_replayed_batches,
    /// Batches waiting (gauge).
    queue_batches,
    /// Samples inside them (gauge): at any snapshot, samples_queued =
    /// sent + dead-lettered + dropped + refused + expired + queue_samples.
    queue_samples,
    /// Bytes of waiting batches held in memory (gauge).
    queue_memory_bytes,
    /// Bytes of spool segment files on disk (gauge).
    spool_bytes,
    /// POSTs under way (gauge).
    in_flight,
}

/// Shared handle.
pub type Stats = Arc<AgentStats>;

/// The stats of every upload target, by name, in configuration order.
pub type UploadStatsList = Arc<std::sync::Mutex<Vec<(String, Arc<UploadStats>)>>>;

/// The stats of upload target `name`, created on first use and kept across
/// reloads and restarts of its uploader, so counters never go backwards.
pub fn upload_stats(stats: &AgentStats, name: &str) -> Arc<UploadStats> {
    let mut l = stats.uploads.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = l.iter().find(|(n, _)| n == name) {
        return s.clone();
    }
    let s = Arc::new(UploadStats::default());
    l.push((name.to_string(), s.clone()));
    s
}

impl AgentStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }
}

impl AgentStats {
    /// Each upload target's counters, read now.
    pub fn upload_snapshots(&self) -> Vec<(String, Vec<(&'static str, u64)>)> {
        let l = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().map(|(n, s)| (n.clone(), s.snapshot())).collect()
    }
}
