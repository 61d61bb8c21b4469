//! Logging: slog to stderr or to a file, as text or JSON lines.
//!
//! The level lives in an atomic so SIGHUP can change it without rebuilding
//! loggers that actors already hold, and the file can be reopened in place
//! so logrotate's `postrotate` only needs to send SIGHUP.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use slog::{Drain, Level, Logger, OwnedKVList, Record};

use crate::config::LogFormat;

/// Where log lines go; cloneable, shared by every logger of the process.
#[derive(Clone)]
pub struct LogHandle {
    level: Arc<AtomicUsize>,
    file: Option<Arc<ReopenableFile>>,
}

impl LogHandle {
    /// Changes the minimum level of every logger built from this handle.
    pub fn set_level(&self, level: Level) {
        self.level.store(level.as_usize(), Ordering::Relaxed);
    }

    /// Reopens the log file (after logrotate moved it); no-op on stderr.
    pub fn reopen(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.reopen(),
            None => Ok(()),
        }
    }

    /// The file being written, if any.
    pub fn file_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }
}

/// Builds the root logger. `file = None` logs to stderr.
pub fn build(
    level: Level,
    format: LogFormat,
    file: Option<&Path>,
) -> io::Result<(Logger, LogHandle)> {
    let level_cell = Arc::new(AtomicUsize::new(level.as_usize()));
    let (writer, file): (Box<dyn Write + Send>, _) = match file {
        Some(path) => {
            let f = Arc::new(ReopenableFile::open(path)?);
            (Box::new(Redacting::new(SharedFile(f.clone()))), Some(f))
        }
        None => (Box::new(Redacting::new(io::stderr())), None),
    };
    let drain: BoxedDrain = match format {
        LogFormat::Text => {
            let decorator = slog_term::PlainSyncDecorator::new(writer);
            let d = slog_term::FullFormat::new(decorator)
                .use_original_order()
                .build()
                .ignore_res();
            Box::new(d)
        }
        LogFormat::Json => {
            let d = slog_json::Json::new(writer)
                .add_default_keys()
                .set_newlines(true)
                .build();
            Box::new(Mutex::new(d).ignore_res())
        }
    };
    let filtered = DynamicLevel {
        inner: drain,
        level: level_cell.clone(),
    };
    let logger = Logger::root(filtered.fuse(), slog::o!());
    Ok((
        logger,
        LogHandle {
            level: level_cell,
            file,
        },
    ))
}

type BoxedDrain = Box<
    dyn Drain<Ok = (), Err = slog::Never>
        + Send
        + Sync
        + std::panic::RefUnwindSafe
        + std::panic::UnwindSafe,
>;

/// A logger that drops everything, for tests and library users.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

struct DynamicLevel<D> {
    inner: D,
    level: Arc<AtomicUsize>,
}

impl<D: Drain<Ok = (), Err = slog::Never>> Drain for DynamicLevel<D> {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        if record.level().as_usize() <= self.level.load(Ordering::Relaxed) {
            self.inner.log(record, values)
        } else {
            Ok(())
        }
    }
}

/// A log file that can be reopened under the same path.
pub struct ReopenableFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl ReopenableFile {
    fn open(path: &Path) -> io::Result<Self> {
        Ok(ReopenableFile {
            path: path.to_path_buf(),
            file: Mutex::new(open_append(path)?),
        })
    }

    fn reopen(&self) -> io::Result<()> {
        let new = open_append(&self.path)?;
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = guard.flush();
        *guard = new;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open log file {}: {e}", path.display()),
            )
        })
}

/// Passes every finished line through [`crate::redact::redact_text`] before
/// it is written. Log values come from libraries too (a driver's or an HTTP
/// client's error text), and one of them naming an address with its
/// userinfo must not put a password in the log; this is the last printer
/// every line goes through.
struct Redacting<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Redacting<W> {
    fn new(inner: W) -> Self {
        Redacting {
            inner,
            pending: Vec::with_capacity(512),
        }
    }

    fn emit(&mut self, upto: usize) -> io::Result<()> {
        let line: Vec<u8> = self.pending.drain(..upto).collect();
        if line.contains(&b'@') {
            let text = crate::redact::redact_text(&String::from_utf8_lossy(&line));
            self.inner.write_all(text.as_bytes())
        } else {
            self.inner.write_all(&line)
        }
    }
}

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            self.emit(i + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let n = self.pending.len();
            self.emit(n)?;
        }
        self.inner.flush()
    }
}

struct SharedFile(Arc<ReopenableFile>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut f = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut f = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
        f.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_are_written_when_the_level_is_trace() {
        // With slog's default features a trace! statement is compiled out
        // (and debug! too in release builds), whatever the runtime level.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let (log, _h) = build(Level::Trace, LogFormat::Text, Some(&path)).unwrap();
        slog::trace!(log, "Traced."; "n" => 1);
        slog::debug!(log, "Debugged.");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("Traced.") && text.contains("Debugged."),
            "{text}"
        );
    }

    #[test]
    fn userinfo_in_a_logged_value_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let (log, _h) = build(Level::Info, LogFormat::Json, Some(&path)).unwrap();
        slog::info!(log, "Failed."; "error" => "connect to http://u:LOGSECRET@127.0.0.1:1/x refused");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("LOGSECRET"), "{text}");
        assert!(text.contains("u:<redacted>@127.0.0.1:1"), "{text}");
        serde_json::from_str::<serde_json::Value>(text.trim()).expect("still JSON");
    }

    #[test]
    fn level_changes_and_file_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let (log, handle) = build(Level::Info, LogFormat::Json, Some(&path)).unwrap();
        slog::debug!(log, "Hidden.");
        slog::info!(log, "First."; "host" => "h:1");
        handle.set_level(Level::Debug);
        slog::debug!(log, "Shown.");
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        handle.reopen().unwrap();
        slog::info!(log, "After rotation.");
        let old = std::fs::read_to_string(dir.path().join("a.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(!old.contains("Hidden."));
        assert!(old.contains("\"msg\":\"First.\"") && old.contains("\"host\":\"h:1\""));
        assert!(old.contains("Shown."));
        assert!(new.contains("After rotation.") && !new.contains("First."));
        for line in old.lines().chain(new.lines()) {
            serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
        }
    }
}
