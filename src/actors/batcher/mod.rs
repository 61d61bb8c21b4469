//! `Batcher`: encodes samples and cuts them into batches for the uploader.
//!
//! Samples are encoded as they arrive (so memory holds bytes, not reply
//! documents); a batch is cut when it reaches `upload.max_batch_bytes` or
//! when its first sample is `upload.max_batch_age_ms` old, then gzipped and
//! put on the shared queue. It also emits the agent's self-metrics every
//! interval, so they travel in the same stream as everything else.

mod actor;

use actix::Message;

use crate::config::{AgentSettings, UploadSettings};

pub use actor::Batcher;

/// Cut the open batch now and put it on the queue (on shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Use new settings from the next batch on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplySettings {
    pub upload: UploadSettings,
    pub agent: AgentSettings,
}

/// Stop; not a failure, so not restarted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopBatching;

/// A fresh batch id: time, process and a counter, so ids stay unique across
/// restarts of the agent without a random-number crate.
pub fn new_batch_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{nanos:016x}-{:08x}-{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
