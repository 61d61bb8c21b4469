//! The bounded in-memory queue of batches waiting for the receiver.
//!
//! It is shared (not owned by the uploader actor) so that when the
//! supervisor restarts the uploader, nothing waiting is lost. A batch leaves
//! the queue only when the receiver accepted it or it was given up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;

/// One upload: encoded (and possibly gzipped) samples.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Unique id, sent as `X-Mongomon-Batch-Id` so receivers can drop
    /// duplicates of a retried batch.
    pub id: String,
    pub body: Bytes,
    /// Whether `body` is gzip-compressed.
    pub gzipped: bool,
    /// Samples inside, for counting what a drop loses.
    pub samples: u64,
    pub created: SystemTime,
}

/// Batches dropped to keep the queue within its bound.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub batches: u64,
    pub samples: u64,
}

/// FIFO of batches with a byte bound.
#[derive(Debug)]
pub struct BatchQueue {
    batches: VecDeque<Batch>,
    bytes: usize,
    max_bytes: usize,
    /// The batch being sent now; never dropped under it.
    in_flight: Option<String>,
}

impl BatchQueue {
    pub fn new(max_bytes: usize) -> Self {
        BatchQueue {
            batches: VecDeque::new(),
            bytes: 0,
            max_bytes,
            in_flight: None,
        }
    }

    /// Appends a batch, dropping the oldest waiting ones while over the bound.
    pub fn push(&mut self, batch: Batch) -> Dropped {
        self.bytes += batch.body.len();
        self.batches.push_back(batch);
        let mut dropped = Dropped::default();
        while self.bytes > self.max_bytes && self.batches.len() > 1 {
            // The oldest that is not being sent right now.
            let idx = match (&self.in_flight, self.batches.front()) {
                (Some(id), Some(front)) if &front.id == id => 1,
                _ => 0,
            };
            if idx >= self.batches.len() - 1 {
                break;
            }
            if let Some(b) = self.batches.remove(idx) {
                self.bytes -= b.body.len();
                dropped.batches += 1;
                dropped.samples += b.samples;
            }
        }
        dropped
    }

    /// The oldest batch, marked in flight.
    pub fn begin_send(&mut self) -> Option<Batch> {
        let b = self.batches.front()?.clone();
        self.in_flight = Some(b.id.clone());
        Some(b)
    }

    /// Ends the send of `id`: removed when `done`, kept at the head otherwise.
    pub fn end_send(&mut self, id: &str, done: bool) {
        if self.in_flight.as_deref() == Some(id) {
            self.in_flight = None;
        }
        if done {
            if let Some(pos) = self.batches.iter().position(|b| b.id == id) {
                if let Some(b) = self.batches.remove(pos) {
                    self.bytes -= b.body.len();
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn set_max_bytes(&mut self, max: usize) {
        self.max_bytes = max;
    }
}

/// The queue as shared between batcher, uploader and supervisor.
#[derive(Debug, Clone)]
pub struct SharedQueue(Arc<Mutex<BatchQueue>>);

impl SharedQueue {
    pub fn new(max_bytes: usize) -> Self {
        SharedQueue(Arc::new(Mutex::new(BatchQueue::new(max_bytes))))
    }

    pub fn lock(&self) -> MutexGuard<'_, BatchQueue> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: &str, len: usize, samples: u64) -> Batch {
        Batch {
            id: id.into(),
            body: Bytes::from(vec![0u8; len]),
            gzipped: false,
            samples,
            created: SystemTime::now(),
        }
    }

    #[test]
    fn over_bound_drops_oldest_but_not_in_flight() {
        let mut q = BatchQueue::new(100);
        assert_eq!(q.push(batch("a", 40, 1)), Dropped::default());
        assert_eq!(q.begin_send().unwrap().id, "a");
        q.push(batch("b", 40, 2));
        let d = q.push(batch("c", 40, 3));
        // "a" is in flight, so "b" goes.
        assert_eq!(
            d,
            Dropped {
                batches: 1,
                samples: 2
            }
        );
        assert_eq!(q.len(), 2);
        assert_eq!(q.bytes(), 80);
        q.end_send("a", true);
        assert_eq!(q.begin_send().unwrap().id, "c");
        q.end_send("c", false);
        assert_eq!(q.len(), 1, "a failed send keeps the batch");
    }
}
