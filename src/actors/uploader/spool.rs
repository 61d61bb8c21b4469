//! The durable spool: batches on disk until the receiver took them.
//!
//! One directory per upload target (`agent.spool_dir/<target>/`), locked by
//! the running agent so two processes never share it. Batches are appended
//! to segment files (`<seq>.seg`); each record is
//!
//! ```text
//! u32 LE payload length | u32 LE CRC-32 of payload | payload
//! payload = u8 version | u8 class | u8 encoding | u64 samples | i64 created_ms
//!         | u16 id length | id | body
//! ```
//!
//! A record is never rewritten. When the receiver accepts a batch, its
//! offset is appended to the segment's `<seq>.ack` file (8 bytes LE); a
//! segment whose records are all acknowledged is deleted with its ack file.
//! On start the segments are scanned oldest first. A record with a bad
//! length or CRC is counted and skipped: the scan goes on from the next
//! offset where a whole record checks out (damage in the middle of a file
//! costs that record only); when none follows (a torn write after a
//! crash), the segment is truncated to its last good record. The bytes
//! skipped or cut are counted. A lost ack only means a batch is sent twice, with the same
//! batch id, which receivers and proxies can deduplicate.
//!
//! The byte budget (`spool.max_bytes`) counts segment files on disk. When a
//! new batch does not fit, the policy decides: drop the oldest segment's
//! waiting batches (counted) or refuse the new batch (counted).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::queue::{Batch, Class, Encoding};
use crate::config::{FsyncPolicy, FullPolicy, SpoolSettings};

const VERSION: u8 = 1;
const HEADER: usize = 8;
/// No batch is near this large (batches are cut at `upload.max_batch_bytes`);
/// a longer length is damage, not data.
const MAX_RECORD: usize = 256 << 20;

/// Where a batch lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolRef {
    pub segment: u64,
    pub offset: u64,
    /// Whole record, header included.
    pub len: u64,
}

/// What opening the spool found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Batches still waiting, oldest first, bodies not loaded.
    pub batches: Vec<(Batch, SpoolRef)>,
    /// Records cut off because their length or CRC was wrong.
    pub corrupt_records: u64,
    pub truncated_bytes: u64,
}

/// Why the spool could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool is full (spool.max_bytes = {max_bytes}) and spool.on_full = \"refuse_new\"")]
    Full { max_bytes: u64 },
    #[error("cannot write the spool in {dir}: {source}")]
    Io { dir: String, source: io::Error },
}

/// Batches dropped from the spool to make room.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    pub ids: Vec<String>,
    pub samples: u64,
}

struct Segment {
    file_bytes: u64,
    /// Offsets of records not yet acknowledged, with their sample counts.
    live: BTreeMap<u64, u64>,
    /// Record count when written by this process or found at replay; the
    /// segment goes when `live` is empty and it is not the one appended to.
    ack: Option<File>,
}

/// The spool of one upload target.
pub struct Spool {
    settings: SpoolSettings,
    segments: BTreeMap<u64, Segment>,
    /// Appends go here; `None` until the first append after start.
    writer: Option<(u64, File)>,
    dirty: bool,
    _lock: File,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.settings.dir)
            .field("segments", &self.segments.len())
            .field("bytes", &self.disk_bytes())
            .finish()
    }
}

fn io_err(dir: &Path, source: io::Error) -> SpoolError {
    SpoolError::Io {
        dir: dir.display().to_string(),
        source,
    }
}

impl Spool {
    /// Opens (creating it when needed) and locks the directory, then scans
    /// every segment. Fails when the directory cannot be used or another
    /// process holds it.
    pub fn open(settings: SpoolSettings) -> Result<(Spool, Replay), SpoolError> {
        let dir = settings.dir.clone();
        create_private_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let lock = OpenOptions::new()
            .create(true)
            .mode(0o600)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| io_err(&dir, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io_err(
                &dir,
                io::Error::other("another mongomon process holds this spool; give each agent its own agent.spool_dir"),
            ));
        }
        let mut spool = Spool {
            settings,
            segments: BTreeMap::new(),
            writer: None,
            dirty: false,
            _lock: lock,
        };
        let replay = spool.scan()?;
        Ok((spool, replay))
    }

    fn seg_path(&self, seq: u64) -> PathBuf {
        self.settings.dir.join(format!("{seq:016}.seg"))
    }

    fn ack_path(&self, seq: u64) -> PathBuf {
        self.settings.dir.join(format!("{seq:016}.ack"))
    }

    fn scan(&mut self) -> Result<Replay, SpoolError> {
        let dir = self.settings.dir.clone();
        let mut seqs: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(|e| io_err(&dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".seg")?.parse::<u64>().ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut replay = Replay::default();
        for seq in seqs {
            let acked = read_acks(&self.ack_path(seq));
            let path = self.seg_path(seq);
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|e| io_err(&dir, e))?;
            let mut offset = 0usize;
            let mut live = BTreeMap::new();
            while offset < data.len() {
                match decode_record(&data[offset..]) {
                    Some((batch, len)) => {
                        let at = offset as u64;
                        if !acked.contains(&at) {
                            live.insert(at, batch.samples);
                            replay.batches.push((
                                batch,
                                SpoolRef {
                                    segment: seq,
                                    offset: at,
                                    len: len as u64,
                                },
                            ));
                        }
                        offset += len;
                    }
                    None => {
                        replay.corrupt_records += 1;
                        // Damage in the middle (a bad sector, a stray
                        // write) costs that record, not the good ones
                        // after it: go on from the next record that
                        // checks out. The file is left as it is, so the
                        // offsets in its ack file stay right.
                        if let Some(next) = next_record(&data, offset + 1) {
                            replay.truncated_bytes += (next - offset) as u64;
                            offset = next;
                            continue;
                        }
                        // A torn tail (a crash mid-write): cut it, so new
                        // records are never appended behind garbage.
                        replay.truncated_bytes += (data.len() - offset) as u64;
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .and_then(|f| f.set_len(offset as u64))
                            .map_err(|e| io_err(&dir, e))?;
                        data.truncate(offset);
                        break;
                    }
                }
            }
            if live.is_empty() {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(self.ack_path(seq));
                continue;
            }
            self.segments.insert(
                seq,
                Segment {
                    file_bytes: data.len() as u64,
                    live,
                    ack: None,
                },
            );
        }
        Ok(replay)
    }

    /// Bytes of segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.file_bytes).sum()
    }

    /// Batches waiting on disk.
    pub fn live_batches(&self) -> usize {
        self.segments.values().map(|s| s.live.len()).sum()
    }

    pub fn settings(&self) -> &SpoolSettings {
        &self.settings
    }

    /// Budget and fsync changes apply at once; a new directory needs a
    /// restart (the running spool stays where it is).
    pub fn set_limits(&mut self, max_bytes: u64, fsync: FsyncPolicy, on_full: FullPolicy) {
        self.settings.max_bytes = max_bytes;
        self.settings.fsync = fsync;
        self.settings.on_full = on_full;
    }

    /// Appends `batch`. Under the `drop_oldest` policy, whole old segments
    /// go first to make room (never the one being appended to, and never a
    /// batch in `protect`, the ones in flight); what they held is returned.
    pub fn append(
        &mut self,
        batch: &Batch,
        protect: &dyn Fn(&str) -> bool,
    ) -> Result<(SpoolRef, Evicted), SpoolError> {
        let record = encode_record(batch);
        let len = record.len() as u64;
        let mut evicted = Evicted::default();
        while self.disk_bytes() + len > self.settings.max_bytes {
            match self.settings.on_full {
                FullPolicy::RefuseNew => {
                    return Err(SpoolError::Full {
                        max_bytes: self.settings.max_bytes,
                    })
                }
                FullPolicy::DropOldest => {
                    if !self.evict_oldest(protect, &mut evicted)? {
                        // Nothing left that may go: a batch larger than the
                        // whole budget, or everything in flight.
                        return Err(SpoolError::Full {
                            max_bytes: self.settings.max_bytes,
                        });
                    }
                }
            }
        }
        let dir = self.settings.dir.clone();
        let roll = match &self.writer {
            None => true,
            Some((seq, _)) => self
                .segments
                .get(seq)
                .is_none_or(|s| s.file_bytes + len > self.settings.segment_bytes),
        };
        if roll {
            let seq = self.segments.keys().next_back().map_or(1, |s| s + 1);
            let file = OpenOptions::new()
                .create(true)
                .mode(0o600)
                .append(true)
                .open(self.seg_path(seq))
                .map_err(|e| io_err(&dir, e))?;
            self.segments.insert(
                seq,
                Segment {
                    file_bytes: 0,
                    live: BTreeMap::new(),
                    ack: None,
                },
            );
            let old = self.writer.replace((seq, file));
            if let Some((old_seq, f)) = old {
                let _ = f.sync_data();
                self.collect(old_seq);
            }
        }
        let Some((seq, file)) = self.writer.as_mut() else {
            return Err(io_err(&dir, io::Error::other("no segment open")));
        };
        let seq = *seq;
        let Some(seg) = self.segments.get_mut(&seq) else {
            return Err(io_err(&dir, io::Error::other("segment vanished")));
        };
        let offset = seg.file_bytes;
        if let Err(e) = file.write_all(&record) {
            // A partial record (disk full) must not stay in front of later
            // ones: cut the file back to where it was.
            let _ = file.set_len(offset);
            return Err(io_err(&dir, e));
        }
        if self.settings.fsync == FsyncPolicy::Always {
            file.sync_data().map_err(|e| io_err(&dir, e))?;
        } else {
            self.dirty = true;
        }
        seg.file_bytes += len;
        seg.live.insert(offset, batch.samples);
        Ok((
            SpoolRef {
                segment: seq,
                offset,
                len,
            },
            evicted,
        ))
    }

    /// Drops the waiting batches of the oldest segment; false when there is
    /// none that may be dropped.
    fn evict_oldest(
        &mut self,
        protect: &dyn Fn(&str) -> bool,
        evicted: &mut Evicted,
    ) -> Result<bool, SpoolError> {
        let active = self.writer.as_ref().map(|(s, _)| *s);
        let candidates: Vec<u64> = self.segments.keys().copied().collect();
        for seq in candidates {
            if Some(seq) == active {
                continue;
            }
            // Read ids first: a segment holding an in-flight batch waits.
            let path = self.seg_path(seq);
            let Some(seg) = self.segments.get(&seq) else {
                continue;
            };
            let mut ids = Vec::new();
            let mut samples = 0;
            let data = std::fs::read(&path).map_err(|e| io_err(&self.settings.dir, e))?;
            for (&off, &n) in &seg.live {
                if let Some((b, _)) = data.get(off as usize..).and_then(decode_record) {
                    ids.push(b.id);
                }
                samples += n;
            }
            if ids.iter().any(|id| protect(id)) {
                continue;
            }
            evicted.ids.extend(ids);
            evicted.samples += samples;
            self.segments.remove(&seq);
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(self.ack_path(seq));
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads a batch's body back, checking its CRC again.
    pub fn read(&self, at: SpoolRef) -> io::Result<Bytes> {
        let mut f = File::open(self.seg_path(at.segment))?;
        f.seek(SeekFrom::Start(at.offset))?;
        let mut buf = vec![0u8; at.len as usize];
        f.read_exact(&mut buf)?;
        match decode_record(&buf) {
            Some((batch, _)) => Ok(batch.body),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "spool record failed its CRC check",
            )),
        }
    }

    /// Marks a batch delivered (or dead-lettered): its offset goes to the
    /// ack file, and a segment with nothing left is deleted.
    pub fn ack(&mut self, at: SpoolRef) -> io::Result<()> {
        let ack_path = self.ack_path(at.segment);
        let Some(seg) = self.segments.get_mut(&at.segment) else {
            return Ok(());
        };
        if seg.live.remove(&at.offset).is_none() {
            return Ok(());
        }
        if !seg.live.is_empty() || self.writer.as_ref().map(|(s, _)| *s) == Some(at.segment) {
            if seg.ack.is_none() {
                seg.ack = Some(
                    OpenOptions::new()
                        .create(true)
                        .mode(0o600)
                        .append(true)
                        .open(&ack_path)?,
                );
            }
            if let Some(f) = seg.ack.as_mut() {
                f.write_all(&at.offset.to_le_bytes())?;
            }
        }
        self.collect(at.segment);
        Ok(())
    }

    /// Deletes a segment that holds nothing waiting and is not appended to.
    fn collect(&mut self, seq: u64) {
        let active = self.writer.as_ref().map(|(s, _)| *s);
        if active == Some(seq) {
            return;
        }
        if self.segments.get(&seq).is_some_and(|s| s.live.is_empty()) {
            self.segments.remove(&seq);
            let _ = std::fs::remove_file(self.seg_path(seq));
            let _ = std::fs::remove_file(self.ack_path(seq));
        }
    }

    /// Forces appended records to disk (the `interval` fsync policy).
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some((_, f)) = &self.writer {
            f.sync_data()?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Creates `dir` and its missing parents, mode 0700: batches hold what the
/// agent collected, and only its user may read them or add any. (Files in
/// it are created 0600.) An existing directory keeps its mode; `run`
/// refuses one that others may write.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn read_acks(path: &Path) -> std::collections::HashSet<u64> {
    let data = std::fs::read(path).unwrap_or_default();
    // A torn last entry (fewer than 8 bytes) is ignored: that batch is
    // simply sent again.
    data.chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

/// The on-disk form of a batch.
pub fn encode_record(b: &Batch) -> Vec<u8> {
    let id = b.id.as_bytes();
    let id_len = id.len().min(u16::MAX as usize);
    let payload_len = 3 + 8 + 8 + 2 + id_len + b.body.len();
    let mut out = Vec::with_capacity(HEADER + payload_len);
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(VERSION);
    out.push(b.class as u8);
    out.push(b.encoding as u8);
    out.extend_from_slice(&b.samples.to_le_bytes());
    let created = b
        .created
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&(id_len as u16).to_le_bytes());
    out.extend_from_slice(&id[..id_len]);
    out.extend_from_slice(&b.body);
    let crc = crc32fast::hash(&out[HEADER..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The offset of the first record at or after `from` that decodes (its
/// length, version, kinds and CRC all check out), if any.
fn next_record(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len()).find(|&at| decode_record(&data[at..]).is_some())
}

/// Parses one record at the start of `data`: the batch and the record's
/// whole length, or `None` when it is torn or damaged.
pub fn decode_record(data: &[u8]) -> Option<(Batch, usize)> {
    let len = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    if !(21..=MAX_RECORD).contains(&len) {
        return None;
    }
    // The one-byte fields before the CRC: after damage the scan for the
    // next good record calls this at every offset, and these reject
    // nearly every one of them without hashing anything.
    if *data.get(HEADER)? != VERSION {
        return None;
    }
    let class = Class::from_u8(*data.get(HEADER + 1)?)?;
    let encoding = Encoding::from_u8(*data.get(HEADER + 2)?)?;
    let crc = u32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
    let p = data.get(HEADER..HEADER + len)?;
    if crc32fast::hash(p) != crc {
        return None;
    }
    let samples = u64::from_le_bytes(p[3..11].try_into().ok()?);
    let created_ms = i64::from_le_bytes(p[11..19].try_into().ok()?);
    let id_len = u16::from_le_bytes(p[19..21].try_into().ok()?) as usize;
    let id = std::str::from_utf8(p.get(21..21 + id_len)?)
        .ok()?
        .to_string();
    let body = Bytes::copy_from_slice(p.get(21 + id_len..)?);
    Some((
        Batch {
            id,
            body,
            class,
            encoding,
            samples,
            created: crate::clock::from_unix_millis(created_ms.max(0) as u64),
        },
        HEADER + len,
    ))
}

/// Appends refused batches to `dead-letter.log` in the target's spool
/// directory (same record framing, preceded by a reason record), so an
/// operator can inspect and replay them. Rotates once past `max_bytes`.
pub struct DeadLetter {
    path: PathBuf,
    max_bytes: u64,
}

impl DeadLetter {
    pub fn new(dir: &Path, max_bytes: u64) -> Self {
        DeadLetter {
            path: dir.join("dead-letter.log"),
            max_bytes,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, batch: &Batch, reason: &str) -> io::Result<()> {
        if let Some(parent) = self.path.parent() {
            create_private_dir(parent)?;
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > self.max_bytes) {
            std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .mode(0o600)
            .append(true)
            .open(&self.path)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        writeln!(
            f,
            "# {now} batch {} ({} samples) refused: {}",
            batch.id,
            batch.samples,
            reason.replace('\n', " ")
        )?;
        f.write_all(&encode_record(batch))?;
        f.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn batch(id: &str, size: usize, samples: u64) -> Batch {
        Batch {
            id: id.into(),
            body: Bytes::from(vec![b'x'; size]),
            class: Class::Bulk,
            encoding: Encoding::Gzip,
            samples,
            created: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        }
    }

    fn settings(dir: &Path, max: u64, seg: u64, on_full: FullPolicy) -> SpoolSettings {
        SpoolSettings {
            dir: dir.to_path_buf(),
            max_bytes: max,
            segment_bytes: seg,
            fsync: FsyncPolicy::Never,
            on_full,
        }
    }

    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn record_round_trips_and_any_flipped_byte_is_caught() {
        let b = batch("id-1", 100, 7);
        let rec = encode_record(&b);
        let (back, len) = decode_record(&rec).unwrap();
        assert_eq!(len, rec.len());
        assert_eq!(back.id, "id-1");
        assert_eq!(back.samples, 7);
        assert_eq!(back.body, b.body);
        assert_eq!(back.created, b.created);
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x40;
            assert!(decode_record(&bad).is_none(), "flip at {i} not detected");
        }
        assert!(decode_record(&rec[..rec.len() - 1]).is_none());
    }

    #[test]
    fn replay_returns_unacked_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 1 << 20, 300, FullPolicy::DropOldest);
        {
            let (mut sp, replay) = Spool::open(s.clone()).unwrap();
            assert!(replay.batches.is_empty());
            let mut refs = Vec::new();
            for i in 0..5 {
                refs.push(
                    sp.append(&batch(&format!("b{i}"), 100, i), &none)
                        .unwrap()
                        .0,
                );
            }
            sp.ack(refs[1]).unwrap();
            sp.ack(refs[3]).unwrap();
            assert_eq!(sp.read(refs[4]).unwrap().len(), 100);
        }
        let (sp, replay) = Spool::open(s).unwrap();
        let ids: Vec<_> = replay.batches.iter().map(|(b, _)| b.id.as_str()).collect();
        assert_eq!(ids, ["b0", "b2", "b4"]);
        assert_eq!(replay.corrupt_records, 0);
        assert_eq!(sp.live_batches(), 3);
    }

    #[test]
    fn torn_tail_is_truncated_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest);
        {
            let (mut sp, _) = Spool::open(s.clone()).unwrap();
            sp.append(&batch("a", 50, 1), &none).unwrap();
            sp.append(&batch("b", 50, 1), &none).unwrap();
        }
        let seg = dir.path().join(format!("{:016}.seg", 1));
        let full = std::fs::metadata(&seg).unwrap().len();
        // A crash in the middle of the second record.
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(full - 10).unwrap();
        let (mut sp, replay) = Spool::open(s.clone()).unwrap();
        assert_eq!(replay.batches.len(), 1);
        assert_eq!(replay.corrupt_records, 1);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), full / 2);
        // Appending after the repair works and survives another restart.
        sp.append(&batch("c", 50, 1), &none).unwrap();
        drop(sp);
        let (_, replay) = Spool::open(s).unwrap();
        let ids: Vec<_> = replay.batches.iter().map(|(b, _)| b.id.clone()).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn garbage_in_the_middle_costs_that_record_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest);
        {
            let (mut sp, _) = Spool::open(s.clone()).unwrap();
            for i in 0..3 {
                sp.append(&batch(&format!("b{i}"), 40, 1), &none).unwrap();
            }
        }
        let seg = dir.path().join(format!("{:016}.seg", 1));
        let mut data = std::fs::read(&seg).unwrap();
        let rec = data.len() / 3;
        data[rec + 12] ^= 0xff;
        std::fs::write(&seg, &data).unwrap();
        let (_, replay) = Spool::open(s.clone()).unwrap();
        let ids: Vec<_> = replay.batches.iter().map(|(b, _)| b.id.clone()).collect();
        assert_eq!(ids, ["b0", "b2"]);
        assert_eq!(replay.corrupt_records, 1);
        assert_eq!(replay.truncated_bytes, rec as u64);
        // The file is kept whole: the records after the damage keep their
        // offsets (acks name them), and the next start finds the same.
        assert_eq!(std::fs::read(&seg).unwrap(), data);
        let (_, again) = Spool::open(s).unwrap();
        assert_eq!(again.batches.len(), 2);
    }

    #[test]
    fn fully_acked_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 1 << 20, 200, FullPolicy::DropOldest);
        let (mut sp, _) = Spool::open(s).unwrap();
        let mut refs = Vec::new();
        for i in 0..6 {
            refs.push(
                sp.append(&batch(&format!("b{i}"), 100, 1), &none)
                    .unwrap()
                    .0,
            );
        }
        let segs = |d: &Path| {
            std::fs::read_dir(d)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        assert_eq!(
            segs(dir.path()),
            6,
            "one 100-byte batch per 200-byte segment"
        );
        for r in &refs[..5] {
            sp.ack(*r).unwrap();
        }
        assert_eq!(segs(dir.path()), 1, "only the active segment stays");
        assert_eq!(sp.live_batches(), 1);
    }

    #[test]
    fn budget_drops_oldest_segment_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let rec = encode_record(&batch("b00", 100, 1)).len() as u64;
        let s = settings(dir.path(), rec * 4, rec * 2, FullPolicy::DropOldest);
        let (mut sp, _) = Spool::open(s).unwrap();
        for i in 0..4 {
            let (_, ev) = sp
                .append(&batch(&format!("b{i:02}"), 100, 10), &none)
                .unwrap();
            assert_eq!(ev, Evicted::default());
        }
        let (_, ev) = sp.append(&batch("b04", 100, 10), &none).unwrap();
        assert_eq!(ev.ids, ["b00", "b01"]);
        assert_eq!(ev.samples, 20);
        assert!(sp.disk_bytes() <= rec * 4);
        // An in-flight batch protects its segment; with nothing else to
        // drop, the new batch is refused rather than the one on the wire.
        let (_, ev) = sp.append(&batch("b05", 100, 10), &none).unwrap();
        assert_eq!(ev, Evicted::default(), "b05 still fits");
        let r = sp.append(&batch("b06", 100, 10), &|id| id == "b02");
        assert!(matches!(r, Err(SpoolError::Full { .. })), "{r:?}");
        assert_eq!(sp.live_batches(), 4);

        let dir2 = tempfile::tempdir().unwrap();
        let s = settings(dir2.path(), rec * 2, rec * 2, FullPolicy::RefuseNew);
        let (mut sp, _) = Spool::open(s).unwrap();
        sp.append(&batch("x0", 100, 1), &none).unwrap();
        sp.append(&batch("x1", 100, 1), &none).unwrap();
        assert!(matches!(
            sp.append(&batch("x2", 100, 1), &none),
            Err(SpoolError::Full { .. })
        ));
        assert_eq!(sp.live_batches(), 2);
    }

    #[test]
    fn a_second_process_cannot_share_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest);
        let (_held, _) = Spool::open(s.clone()).unwrap();
        // flock is per open file description, so a second open in the same
        // process is refused as another process would be.
        let err = Spool::open(s).unwrap_err().to_string();
        assert!(err.contains("another mongomon process"), "{err}");
    }
}
