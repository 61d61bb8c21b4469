//! `Batcher`: encodes samples and cuts them into batches for the uploaders.
//!
//! Samples are encoded as they arrive (so memory holds bytes, not reply
//! documents), once per upload target in that target's format, into one
//! open batch per class (health or bulk). A batch is cut when it reaches
//! `upload.max_batch_bytes` or when its first sample is
//! `upload.max_batch_age_ms` old, then compressed (gzip, or snappy for
//! remote-write) and put on the target's queue. It also emits the agent's
//! self-metrics every interval, so they travel in the same stream as
//! everything else.

mod actor;
pub mod gzip;

use std::sync::Arc;

use actix::Message;

use crate::actors::uploader::queue::SharedQueue;
use crate::actors::uploader::BatchQueued;
use crate::actors::Route;
use crate::config::{AgentSettings, UploadSettings};
use crate::stats::UploadStats;

pub use actor::Batcher;

/// Which worker a batcher serves, and which start of that child this is
/// (the supervisor ignores the stop report of an older generation).
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub worker: usize,
    pub generation: u64,
}

/// Where one upload target's batches go.
#[derive(Clone)]
pub struct Lane {
    pub settings: UploadSettings,
    pub queue: SharedQueue,
    pub uploader: Route<BatchQueued>,
    pub stats: Arc<UploadStats>,
}

/// Cut the open batch now and put it on the queue (on shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Use new settings from the next batch on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplySettings {
    pub lanes: Vec<Lane>,
    pub agent: AgentSettings,
    pub collect: crate::config::CollectSettings,
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
