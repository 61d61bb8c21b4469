//! The queue of one upload target: batches waiting for the receiver, in
//! memory and (when `agent.spool_dir` is set) in the durable [`Spool`].
//!
//! It is shared between the batcher (which pushes), the uploader (which
//! sends and acknowledges) and the supervisor, not owned by an actor, so a
//! restarted uploader finds everything where it was. A batch leaves only
//! when the receiver accepted it, it was dead-lettered, or a bound made it
//! go — and every one of those is counted in the target's [`UploadStats`].
//!
//! Order: health batches (`up`, replica-set state and lag, the agent's own
//! counters) go before bulk ones when both wait, so after an outage the
//! dashboards that say "is it up?" recover first; within a class, oldest
//! first.
//!
//! Memory: `upload.max_queue_bytes` bounds the bodies held in memory. Past
//! it, the oldest bodies leave memory: spooled ones are simply read back
//! when their turn comes; others are written to the spool first (the
//! `overflow` spool mode), and only without a usable spool are they dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use slog::{error, info, warn, Logger};

use super::spool::{Replay, Spool, SpoolError, SpoolRef};
use crate::config::{FullPolicy, SpoolMode, SpoolSettings};
use crate::stats::{AgentStats, UploadStats};

/// Which batches go first when both wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    Health = 0,
    Bulk = 1,
}

impl Class {
    pub fn from_u8(v: u8) -> Option<Class> {
        match v {
            0 => Some(Class::Health),
            1 => Some(Class::Bulk),
            _ => None,
        }
    }
}

/// How a body is compressed (its `Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    Identity = 0,
    Gzip = 1,
    Snappy = 2,
    Zstd = 3,
}

impl Encoding {
    pub fn from_u8(v: u8) -> Option<Encoding> {
        match v {
            0 => Some(Encoding::Identity),
            1 => Some(Encoding::Gzip),
            2 => Some(Encoding::Snappy),
            3 => Some(Encoding::Zstd),
            _ => None,
        }
    }

    /// The `Content-Encoding` header value, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Snappy => Some("snappy"),
            Encoding::Zstd => Some("zstd"),
        }
    }
}

/// One upload: encoded (and possibly compressed) samples.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Unique id, sent as `X-Mongomon-Batch-Id` so receivers can drop
    /// duplicates of a retried or replayed batch.
    pub id: String,
    pub body: Bytes,
    pub class: Class,
    pub encoding: Encoding,
    /// Samples inside, for counting what a drop loses.
    pub samples: u64,
    pub created: SystemTime,
}

/// How a send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: gone for good.
    Delivered,
    /// Refused for good (dead-lettered) or out of retries.
    GivenUp,
    /// Will be tried again; stays where it is.
    Retry,
}

#[derive(Debug)]
struct Entry {
    id: String,
    class: Class,
    encoding: Encoding,
    samples: u64,
    created: SystemTime,
    size: usize,
    body: Option<Bytes>,
    spooled: Option<SpoolRef>,
    in_flight: bool,
}

impl Entry {
    fn batch(&self, body: Bytes) -> Batch {
        Batch {
            id: self.id.clone(),
            body,
            class: self.class,
            encoding: self.encoding,
            samples: self.samples,
            created: self.created,
        }
    }
}

/// Drops waiting to be logged: one line per burst, not per batch.
#[derive(Debug, Default)]
struct DropLog {
    batches: u64,
    samples: u64,
    last: Option<Instant>,
}

const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
const SPOOL_ERROR_LOG_EVERY: Duration = Duration::from_secs(60);
/// Health batches sent in a row before a waiting bulk one gets its turn.
const HEALTH_BURST: u32 = 4;

/// The batches of one upload target.
pub struct BatchQueue {
    health: VecDeque<Entry>,
    bulk: VecDeque<Entry>,
    memory_bytes: usize,
    max_memory_bytes: usize,
    spool: Option<Spool>,
    mode: SpoolMode,
    stats: Arc<UploadStats>,
    log: Logger,
    drops: DropLog,
    /// Spool writes are failing: since when the last error line was
    /// logged (at most one a minute, with the count meanwhile).
    spool_failing: Option<Instant>,
    spool_failures: u64,
    /// Health batches sent in a row while bulk ones waited.
    health_streak: u32,
}

impl std::fmt::Debug for BatchQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("batches", &self.len())
            .field("memory_bytes", &self.memory_bytes)
            .field("spool", &self.spool)
            .finish()
    }
}

impl BatchQueue {
    /// A queue over an opened spool (or none), with what the spool held
    /// queued again, oldest first.
    pub fn new(
        max_memory_bytes: usize,
        spool: Option<(Spool, Replay, SpoolMode)>,
        stats: Arc<UploadStats>,
        log: Logger,
    ) -> Self {
        let mut q = BatchQueue {
            health: VecDeque::new(),
            bulk: VecDeque::new(),
            memory_bytes: 0,
            max_memory_bytes,
            spool: None,
            mode: SpoolMode::Always,
            stats,
            log,
            drops: DropLog::default(),
            spool_failing: None,
            spool_failures: 0,
            health_streak: 0,
        };
        if let Some((spool, replay, mode)) = spool {
            AgentStats::add(&q.stats.spool_corrupt_records, replay.corrupt_records);
            AgentStats::add(&q.stats.spool_truncated_bytes, replay.truncated_bytes);
            AgentStats::add(&q.stats.spool_replayed_batches, replay.batches.len() as u64);
            AgentStats::add(&q.stats.batches_queued, replay.batches.len() as u64);
            AgentStats::add(
                &q.stats.samples_queued,
                replay.batches.iter().map(|(b, _)| b.samples).sum(),
            );
            if replay.corrupt_records > 0 {
                warn!(q.log, "Spool had damaged records (a crash during a write?); cut them off.";
                    "records" => replay.corrupt_records, "bytes" => replay.truncated_bytes);
            }
            if !replay.batches.is_empty() {
                let samples: u64 = replay.batches.iter().map(|(b, _)| b.samples).sum();
                info!(q.log, "Spool holds batches from an earlier run; sending them first.";
                    "batches" => replay.batches.len(), "samples" => samples);
            }
            for (b, at) in replay.batches {
                q.lane(b.class).push_back(Entry {
                    id: b.id,
                    class: b.class,
                    encoding: b.encoding,
                    samples: b.samples,
                    created: b.created,
                    size: at.len as usize,
                    body: None,
                    spooled: Some(at),
                    in_flight: false,
                });
            }
            q.spool = Some(spool);
            q.mode = mode;
        }
        q.update_gauges();
        q
    }

    fn lane(&mut self, class: Class) -> &mut VecDeque<Entry> {
        match class {
            Class::Health => &mut self.health,
            Class::Bulk => &mut self.bulk,
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.health.iter().chain(self.bulk.iter())
    }

    fn in_flight_ids(&self) -> HashSet<String> {
        self.entries()
            .filter(|e| e.in_flight)
            .map(|e| e.id.clone())
            .collect()
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        for lane in [&mut self.health, &mut self.bulk] {
            if let Some(pos) = lane.iter().position(|e| e.id == id) {
                let e = lane.remove(pos)?;
                if let Some(b) = &e.body {
                    self.memory_bytes -= b.len();
                }
                return Some(e);
            }
        }
        None
    }

    /// Writes to the spool; on failure logs once (until it works again)
    /// and counts.
    fn spool_append(&mut self, batch: &Batch) -> Result<Option<SpoolRef>, SpoolError> {
        let protect = self.in_flight_ids();
        let Some(spool) = self.spool.as_mut() else {
            return Ok(None);
        };
        match spool.append(batch, &|id| protect.contains(id)) {
            Ok((at, evicted)) => {
                if self
                    .spool_failing
                    .is_some_and(|t| t.elapsed() >= SPOOL_ERROR_LOG_EVERY)
                {
                    self.spool_failing = None;
                    info!(self.log, "Spool writes work again."; "failures" => self.spool_failures);
                    self.spool_failures = 0;
                }
                if !evicted.ids.is_empty() {
                    for id in &evicted.ids {
                        self.remove(id);
                    }
                    AgentStats::add(&self.stats.batches_dropped, evicted.ids.len() as u64);
                    AgentStats::add(&self.stats.samples_dropped, evicted.samples);
                    self.note_drop(evicted.ids.len() as u64, evicted.samples, "spool.max_bytes reached; dropped the oldest batches (spool.on_full = \"drop_oldest\")");
                }
                Ok(Some(at))
            }
            Err(e @ SpoolError::Full { .. }) => Err(e),
            Err(e) => {
                AgentStats::add(&self.stats.spool_write_errors, 1);
                self.spool_failures += 1;
                if self
                    .spool_failing
                    .is_none_or(|t| t.elapsed() >= SPOOL_ERROR_LOG_EVERY)
                {
                    self.spool_failing = Some(Instant::now());
                    error!(self.log, "Cannot write the spool; batches stay in memory (bounded by upload.max_queue_bytes) until it works again."; "error" => e.to_string(), "failures" => self.spool_failures);
                }
                Err(e)
            }
        }
    }

    fn note_drop(&mut self, batches: u64, samples: u64, why: &str) {
        self.drops.batches += batches;
        self.drops.samples += samples;
        let due = self
            .drops
            .last
            .is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY);
        if due {
            warn!(self.log, "Samples dropped."; "reason" => why, "batches" => self.drops.batches, "samples" => self.drops.samples);
            self.drops = DropLog {
                last: Some(Instant::now()),
                ..DropLog::default()
            };
        }
    }

    /// Queues a new batch (spooling it first in `always` mode), then keeps
    /// memory within its bound.
    pub fn push(&mut self, batch: Batch) {
        AgentStats::add(&self.stats.batches_queued, 1);
        AgentStats::add(&self.stats.samples_queued, batch.samples);
        let mut spooled = None;
        if self.spool.is_some() && self.mode == SpoolMode::Always {
            let refuse_new = self
                .spool
                .as_ref()
                .is_some_and(|s| s.settings().on_full == FullPolicy::RefuseNew);
            match self.spool_append(&batch) {
                Ok(at) => spooled = at,
                // Under drop_oldest, a full spool with nothing it may drop
                // (all in flight) keeps the batch in memory; the memory
                // bound then drops the oldest if need be.
                Err(SpoolError::Full { .. }) if refuse_new => {
                    AgentStats::add(&self.stats.batches_refused, 1);
                    AgentStats::add(&self.stats.samples_refused, batch.samples);
                    self.note_drop(1, batch.samples, "spool.max_bytes reached; new batches refused (spool.on_full = \"refuse_new\")");
                    self.update_gauges();
                    return;
                }
                Err(_) => {}
            }
        }
        self.memory_bytes += batch.body.len();
        let entry = Entry {
            id: batch.id,
            class: batch.class,
            encoding: batch.encoding,
            samples: batch.samples,
            created: batch.created,
            size: batch.body.len(),
            body: Some(batch.body),
            spooled,
            in_flight: false,
        };
        self.lane(entry.class).push_back(entry);
        self.enforce_memory_bound();
        self.update_gauges();
    }

    /// Moves the oldest bodies out of memory until within the bound.
    fn enforce_memory_bound(&mut self) {
        while self.memory_bytes > self.max_memory_bytes {
            // The oldest body in memory that is not on the wire; bulk first,
            // as health batches are sent first and leave soonest.
            let pick =
                |lane: &VecDeque<Entry>| lane.iter().position(|e| e.body.is_some() && !e.in_flight);
            let (class, pos) = match (pick(&self.bulk), pick(&self.health)) {
                (Some(p), _) => (Class::Bulk, p),
                (None, Some(p)) => (Class::Health, p),
                (None, None) => return,
            };
            let (already, batch) = {
                let e = &self.lane(class)[pos];
                let Some(body) = e.body.clone() else { return };
                (e.spooled.is_some(), e.batch(body))
            };
            if already {
                let e = &mut self.lane(class)[pos];
                let n = e.body.take().map_or(0, |b| b.len());
                self.memory_bytes -= n;
                continue;
            }
            match self.spool_append(&batch) {
                Ok(Some(at)) => {
                    // The append may have evicted entries: find ours again.
                    if let Some(e) = self.lane(class).iter_mut().find(|e| e.id == batch.id) {
                        e.spooled = Some(at);
                        let n = e.body.take().map_or(0, |b| b.len());
                        self.memory_bytes -= n;
                    }
                }
                Err(SpoolError::Full { .. })
                    if self
                        .spool
                        .as_ref()
                        .is_some_and(|s| s.settings().on_full == FullPolicy::RefuseNew) =>
                {
                    // Memory and disk are both full and the operator chose
                    // to keep what is old: the newest batch is refused.
                    let newest = self
                        .entries()
                        .filter(|e| !e.in_flight && e.spooled.is_none())
                        .max_by_key(|e| e.created)
                        .map(|e| e.id.clone());
                    let Some(id) = newest else { return };
                    if let Some(e) = self.remove(&id) {
                        AgentStats::add(&self.stats.batches_refused, 1);
                        AgentStats::add(&self.stats.samples_refused, e.samples);
                        self.note_drop(1, e.samples, "upload.max_queue_bytes and spool.max_bytes reached; new batches refused (spool.on_full = \"refuse_new\")");
                    }
                }
                res => {
                    // Say which limit was met: a full spool under
                    // drop_oldest (every batch it could evict still in
                    // flight), no spool at all, or a spool that fails.
                    let why = match res {
                        Err(SpoolError::Full { .. }) => "upload.max_queue_bytes and spool.max_bytes reached with nothing the spool may evict; dropped the oldest batch in memory (spool.on_full = \"drop_oldest\")",
                        Ok(None) => "upload.max_queue_bytes reached and no spool is configured; dropped the oldest batch",
                        _ => "upload.max_queue_bytes reached and the spool cannot be written; dropped the oldest batch",
                    };
                    if let Some(e) = self.remove(&batch.id) {
                        AgentStats::add(&self.stats.batches_dropped, 1);
                        AgentStats::add(&self.stats.samples_dropped, e.samples);
                        self.note_drop(1, e.samples, why);
                    }
                }
            }
        }
    }

    /// The next batch to send, marked in flight: health first, then bulk,
    /// oldest first. A spooled body that no longer reads back is dropped
    /// and counted.
    pub fn begin_send(&mut self) -> Option<Batch> {
        loop {
            // Health first, but never only health: after a few in a row,
            // one bulk batch goes, so a receiver slower than the health
            // stream alone still drains the backlog.
            let order = if self.health_streak >= HEALTH_BURST {
                [Class::Bulk, Class::Health]
            } else {
                [Class::Health, Class::Bulk]
            };
            let found = order.into_iter().find_map(|c| {
                let lane = match c {
                    Class::Health => &self.health,
                    Class::Bulk => &self.bulk,
                };
                lane.iter().position(|e| !e.in_flight).map(|p| (c, p))
            });
            let (class, pos) = found?;
            let (body, at) = {
                let e = &self.lane(class)[pos];
                (e.body.clone(), e.spooled)
            };
            let body = match (body, at) {
                (Some(b), _) => b,
                (None, Some(at)) => match self.spool.as_ref().map(|s| s.read(at)) {
                    Some(Ok(b)) => b,
                    other => {
                        let why = match other {
                            Some(Err(e)) => e.to_string(),
                            _ => "no spool".into(),
                        };
                        error!(self.log, "A spooled batch cannot be read back; dropped."; "error" => why);
                        let id = self.lane(class)[pos].id.clone();
                        if let Some(e) = self.remove(&id) {
                            AgentStats::add(&self.stats.spool_corrupt_records, 1);
                            AgentStats::add(&self.stats.batches_dropped, 1);
                            AgentStats::add(&self.stats.samples_dropped, e.samples);
                            if let (Some(s), Some(at)) = (self.spool.as_mut(), e.spooled) {
                                let _ = s.ack(at);
                            }
                        }
                        continue;
                    }
                },
                (None, None) => {
                    let id = self.lane(class)[pos].id.clone();
                    self.remove(&id);
                    continue;
                }
            };
            let bulk_waits = self.bulk.iter().any(|e| !e.in_flight);
            self.health_streak = match class {
                Class::Health if bulk_waits => self.health_streak + 1,
                _ => 0,
            };
            let e = &mut self.lane(class)[pos];
            e.in_flight = true;
            let batch = e.batch(body);
            self.update_gauges();
            return Some(batch);
        }
    }

    /// Ends the send of `id`.
    pub fn end_send(&mut self, id: &str, outcome: Outcome) {
        match outcome {
            Outcome::Retry => {
                for e in self.health.iter_mut().chain(self.bulk.iter_mut()) {
                    if e.id == id {
                        e.in_flight = false;
                    }
                }
            }
            Outcome::Delivered | Outcome::GivenUp => {
                if let Some(e) = self.remove(id) {
                    if let (Some(s), Some(at)) = (self.spool.as_mut(), e.spooled) {
                        if let Err(err) = s.ack(at) {
                            // The batch may be sent again after a restart,
                            // with the same id; nothing is lost.
                            warn!(self.log, "Cannot record a delivery in the spool."; "error" => err.to_string());
                        }
                    }
                }
            }
        }
        self.update_gauges();
    }

    /// Writes every batch that lives only in memory to the spool (at
    /// shutdown, so the next start sends them). Returns how many could not
    /// be written.
    pub fn persist(&mut self) -> usize {
        if self.spool.is_none() {
            return self.len();
        }
        let pending: Vec<Batch> = self
            .entries()
            .filter(|e| e.spooled.is_none())
            .filter_map(|e| e.body.clone().map(|b| e.batch(b)))
            .collect();
        let mut failed = 0;
        for b in pending {
            match self.spool_append(&b) {
                Ok(Some(at)) => {
                    if let Some(e) = self.lane(b.class).iter_mut().find(|e| e.id == b.id) {
                        e.spooled = Some(at);
                    }
                }
                _ => failed += 1,
            }
        }
        self.sync();
        failed
    }

    /// Forces spool appends to disk (the `interval` fsync policy).
    pub fn sync(&mut self) {
        if let Some(s) = self.spool.as_mut() {
            if let Err(e) = s.sync() {
                AgentStats::add(&self.stats.spool_write_errors, 1);
                warn!(self.log, "Cannot fsync the spool."; "error" => e.to_string());
            }
        }
    }

    /// Logs drops that are still waiting for their aggregate line.
    pub fn flush_drop_log(&mut self) {
        if self.drops.batches > 0 {
            warn!(self.log, "Samples dropped."; "batches" => self.drops.batches, "samples" => self.drops.samples);
            self.drops = DropLog {
                last: Some(Instant::now()),
                ..DropLog::default()
            };
        }
    }

    fn update_gauges(&self) {
        AgentStats::set(&self.stats.queue_batches, self.len() as u64);
        AgentStats::set(
            &self.stats.queue_samples,
            self.entries().map(|e| e.samples).sum(),
        );
        AgentStats::set(&self.stats.queue_memory_bytes, self.memory_bytes as u64);
        AgentStats::set(
            &self.stats.spool_bytes,
            self.spool.as_ref().map_or(0, |s| s.disk_bytes()),
        );
        AgentStats::set(
            &self.stats.in_flight,
            self.entries().filter(|e| e.in_flight).count() as u64,
        );
    }

    pub fn len(&self) -> usize {
        self.health.len() + self.bulk.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn in_flight(&self) -> usize {
        self.entries().filter(|e| e.in_flight).count()
    }

    /// Bytes of waiting batches, wherever they are.
    pub fn bytes(&self) -> usize {
        self.entries().map(|e| e.size).sum()
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    pub fn has_spool(&self) -> bool {
        self.spool.is_some()
    }

    pub fn set_limits(
        &mut self,
        max_memory_bytes: usize,
        spool: Option<(SpoolSettings, SpoolMode)>,
    ) {
        self.max_memory_bytes = max_memory_bytes;
        if let (Some(s), Some((new, mode))) = (self.spool.as_mut(), spool) {
            s.set_limits(new.max_bytes, new.fsync, new.on_full);
            self.mode = mode;
        }
        self.enforce_memory_bound();
        self.update_gauges();
    }
}

/// The queue as shared between batcher, uploader and supervisor.
#[derive(Debug, Clone)]
pub struct SharedQueue(Arc<Mutex<BatchQueue>>);

impl SharedQueue {
    pub fn new(q: BatchQueue) -> Self {
        SharedQueue(Arc::new(Mutex::new(q)))
    }

    /// A memory-only queue (tests, `demo`).
    pub fn in_memory(max_bytes: usize, stats: Arc<UploadStats>) -> Self {
        SharedQueue::new(BatchQueue::new(
            max_bytes,
            None,
            stats,
            crate::logging::discard(),
        ))
    }

    pub fn lock(&self) -> MutexGuard<'_, BatchQueue> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FsyncPolicy;
    use std::sync::atomic::Ordering;

    fn batch(id: &str, len: usize, samples: u64, class: Class) -> Batch {
        Batch {
            id: id.into(),
            body: Bytes::from(vec![0u8; len]),
            class,
            encoding: Encoding::Identity,
            samples,
            created: SystemTime::now(),
        }
    }

    fn memory(max: usize) -> (BatchQueue, Arc<UploadStats>) {
        let stats = Arc::new(UploadStats::default());
        (
            BatchQueue::new(max, None, stats.clone(), crate::logging::discard()),
            stats,
        )
    }

    fn spooled(
        dir: &std::path::Path,
        max_mem: usize,
        max_disk: u64,
        mode: SpoolMode,
        on_full: FullPolicy,
    ) -> (BatchQueue, Arc<UploadStats>) {
        let stats = Arc::new(UploadStats::default());
        let (spool, replay) = Spool::open(SpoolSettings {
            dir: dir.to_path_buf(),
            max_bytes: max_disk,
            segment_bytes: 1 << 20,
            fsync: FsyncPolicy::Never,
            on_full,
        })
        .unwrap();
        (
            BatchQueue::new(
                max_mem,
                Some((spool, replay, mode)),
                stats.clone(),
                crate::logging::discard(),
            ),
            stats,
        )
    }

    fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    #[test]
    fn without_spool_over_bound_drops_oldest_but_not_in_flight() {
        let (mut q, stats) = memory(100);
        q.push(batch("a", 40, 1, Class::Bulk));
        assert_eq!(q.begin_send().unwrap().id, "a");
        q.push(batch("b", 40, 2, Class::Bulk));
        q.push(batch("c", 40, 3, Class::Bulk));
        // "a" is in flight, so "b" goes.
        assert_eq!(get(&stats.batches_dropped), 1);
        assert_eq!(get(&stats.samples_dropped), 2);
        assert_eq!(q.len(), 2);
        q.end_send("a", Outcome::Delivered);
        assert_eq!(q.begin_send().unwrap().id, "c");
        q.end_send("c", Outcome::Retry);
        assert_eq!(q.len(), 1, "a failed send keeps the batch");
    }

    #[test]
    fn health_goes_before_bulk_and_in_flight_is_skipped() {
        let (mut q, _) = memory(1 << 20);
        q.push(batch("bulk1", 10, 1, Class::Bulk));
        q.push(batch("bulk2", 10, 1, Class::Bulk));
        q.push(batch("health1", 10, 1, Class::Health));
        assert_eq!(q.begin_send().unwrap().id, "health1");
        assert_eq!(q.begin_send().unwrap().id, "bulk1");
        assert_eq!(q.begin_send().unwrap().id, "bulk2");
        assert!(q.begin_send().is_none());
        assert_eq!(q.in_flight(), 3);
        q.end_send("bulk1", Outcome::Retry);
        assert_eq!(q.begin_send().unwrap().id, "bulk1");
    }

    #[test]
    fn bulk_is_not_starved_by_a_steady_health_stream() {
        let (mut q, _) = memory(1 << 20);
        q.push(batch("old-bulk", 10, 1, Class::Bulk));
        let mut sent = Vec::new();
        for i in 0..6 {
            q.push(batch(&format!("h{i}"), 10, 1, Class::Health));
            let b = q.begin_send().unwrap();
            q.end_send(&b.id, Outcome::Delivered);
            sent.push(b.id);
        }
        assert_eq!(&sent[..5], ["h0", "h1", "h2", "h3", "old-bulk"], "{sent:?}");
    }

    #[test]
    fn overflow_mode_spools_instead_of_dropping_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, stats) = spooled(
            dir.path(),
            100,
            1 << 20,
            SpoolMode::Overflow,
            FullPolicy::DropOldest,
        );
        for i in 0..5 {
            q.push(batch(&format!("b{i}"), 40, 1, Class::Bulk));
        }
        assert!(q.memory_bytes() <= 100);
        assert_eq!(q.len(), 5);
        assert_eq!(get(&stats.batches_dropped), 0);
        for i in 0..5 {
            let b = q.begin_send().unwrap();
            assert_eq!(b.id, format!("b{i}"));
            assert_eq!(b.body.len(), 40);
            q.end_send(&b.id, Outcome::Delivered);
        }
        assert!(q.is_empty());
    }

    #[test]
    fn always_mode_survives_a_restart_and_acks_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut q, _) = spooled(
                dir.path(),
                1 << 20,
                1 << 20,
                SpoolMode::Always,
                FullPolicy::DropOldest,
            );
            q.push(batch("h", 10, 1, Class::Health));
            q.push(batch("b1", 10, 2, Class::Bulk));
            q.push(batch("b2", 10, 3, Class::Bulk));
            let first = q.begin_send().unwrap();
            q.end_send(&first.id, Outcome::Delivered);
            // b1 in flight when the process dies.
            assert_eq!(q.begin_send().unwrap().id, "b1");
        }
        let (mut q, stats) = spooled(
            dir.path(),
            1 << 20,
            1 << 20,
            SpoolMode::Always,
            FullPolicy::DropOldest,
        );
        assert_eq!(get(&stats.spool_replayed_batches), 2);
        assert_eq!(q.begin_send().unwrap().id, "b1");
        assert_eq!(q.begin_send().unwrap().id, "b2");
    }

    #[test]
    fn refuse_new_counts_refused_samples_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let rec =
            super::super::spool::encode_record(&batch("r00", 100, 1, Class::Bulk)).len() as u64;
        let (mut q, stats) = spooled(
            dir.path(),
            1 << 20,
            rec * 3,
            SpoolMode::Always,
            FullPolicy::RefuseNew,
        );
        for i in 0..5 {
            q.push(batch(&format!("r{i:02}"), 100, 7, Class::Bulk));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(get(&stats.batches_refused), 2);
        assert_eq!(get(&stats.samples_refused), 14);
        assert_eq!(get(&stats.batches_dropped), 0);
    }

    #[test]
    fn persist_writes_memory_only_batches_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut q, _) = spooled(
                dir.path(),
                1 << 20,
                1 << 20,
                SpoolMode::Overflow,
                FullPolicy::DropOldest,
            );
            q.push(batch("m1", 10, 1, Class::Bulk));
            q.push(batch("m2", 10, 1, Class::Health));
            assert_eq!(q.persist(), 0);
        }
        let (q, _) = spooled(
            dir.path(),
            1 << 20,
            1 << 20,
            SpoolMode::Overflow,
            FullPolicy::DropOldest,
        );
        assert_eq!(q.len(), 2);
    }
}
