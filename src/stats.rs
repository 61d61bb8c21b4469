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
    /// Fleet mode: hosts this agent's share gives it (gauge).
    hosts_owned,
    /// Fleet mode: live agents in the fleet (gauge).
    fleet_agents,
    /// Fleet mode: 1 while this agent runs discovery for the fleet (gauge).
    fleet_leader,
    /// Fleet mode: hosts handed to or taken from other agents after the
    /// first assignment (an agent joined, left or lost its lease).
    fleet_handoffs,
    /// Fleet mode: times this agent lost its lease and stopped sampling.
    fleet_lease_losses,
    /// Fleet mode: requests made to etcd (watches count once, when opened).
    fleet_etcd_requests,
}

macro_rules! upload_counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters and gauges of one upload target: its queue, spool and
        /// deliveries. Shipped as `mongomon_upload` with an `upload` tag.
        #[derive(Debug, Default)]
        pub struct UploadStats {
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// Whether the receiver takes batches now, for `/readyz` and
            /// `/status` (not a counter, so not shipped).
            pub health: std::sync::Mutex<UploadHealth>,
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
    /// Bytes skipped or cut off with them.
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

/// The outcome of an upload target's latest attempt.
#[derive(Debug, Default, Clone)]
pub struct UploadHealth {
    /// Set by a failed attempt, cleared by the next delivery.
    pub failing_since: Option<std::time::SystemTime>,
    /// The latest failure's message (receivers' errors carry no
    /// credentials; redacted again where shown).
    pub last_error: Option<String>,
    /// When a batch was last delivered.
    pub last_success: Option<std::time::SystemTime>,
}

impl UploadStats {
    /// Records a delivery: the target is reachable.
    pub fn delivered(&self) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.failing_since = None;
        h.last_success = Some(std::time::SystemTime::now());
    }

    /// Records a failed attempt and why.
    pub fn failed(&self, error: &str) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.failing_since
            .get_or_insert_with(std::time::SystemTime::now);
        h.last_error = Some(crate::redact::redact_text(error));
    }

    pub fn health(&self) -> UploadHealth {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The agent's own counters as samples (one `mongomon`, one
/// `mongomon_upload` per target), labelled with the agent's name: what the
/// batcher ships every interval and `/metrics` shows at every scrape.
pub fn agent_samples(
    stats: &AgentStats,
    labels: &Arc<crate::sample::Labels>,
    now: std::time::SystemTime,
) -> Vec<crate::sample::Sample> {
    use crate::sample::{Body, Sample};
    let sample = |metrics, upload| Sample {
        labels: labels.clone(),
        time: now,
        duration: Default::default(),
        body: Body::Agent { metrics, upload },
    };
    let mut out = vec![sample(stats.snapshot(), None)];
    for (name, metrics) in stats.upload_snapshots() {
        out.push(sample(metrics, Some(name)));
    }
    out
}

/// The labels of the agent's own samples: only its name.
pub fn agent_labels(name: &str) -> Arc<crate::sample::Labels> {
    Arc::new(crate::sample::Labels {
        host: name.to_string(),
        cluster: String::new(),
        replset: None,
        shard: None,
        role: crate::sample::Role::Unknown,
        version: None,
    })
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
