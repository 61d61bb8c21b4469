//! Typed `[spool]` settings, shared by the config that validates them and
//! the uploader's queue and spool that run on them.

use std::path::PathBuf;
use std::time::Duration;

/// When batches are written to the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolMode {
    /// Every batch, before its first send attempt.
    Always,
    /// Only when memory is over `upload.max_queue_bytes` (and at shutdown).
    Overflow,
}

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every append: nothing acknowledged is lost even on power loss.
    Always,
    /// At most this long after an append (the uploader's timer calls
    /// `Spool::sync`); a crash of the process alone loses nothing.
    Interval(Duration),
    /// Left to the operating system.
    Never,
}

/// What to do when a new batch does not fit in `spool.max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    DropOldest,
    RefuseNew,
}

/// Spool settings for one upload target.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    pub on_full: FullPolicy,
}
