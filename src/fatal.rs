//! A panic ends the process.
//!
//! actix and tokio catch a panic in an actor or a task and carry on without
//! it: the agent keeps its pid file and its sockets and does nothing, and
//! neither systemd's `Restart=on-failure` nor the init script's `status`
//! notices. The hook installed here turns every panic, on any thread, into
//! one log line naming where it happened and a prompt exit with
//! [`EXIT_PANIC`], after removing the pid file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::redact::{printable, redact_text};

/// The exit status after a panic (EX_SOFTWARE: an internal error).
pub const EXIT_PANIC: i32 = 70;

/// Where the panic line goes besides stderr, and what to clean up.
struct Sinks {
    log_file: Option<PathBuf>,
    json: bool,
    pidfile: Option<PathBuf>,
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    log_file: None,
    json: false,
    pidfile: None,
});

/// Installs the hook; the sinks can be set later with [`log_to`] and
/// [`remove_on_panic`].
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "an unknown place".into());
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let what = printable(&redact_text(&payload));
        let msg = format!(
            "Internal error: panic at {location} (thread {thread}): {what}; exiting with status {EXIT_PANIC} so that the service manager restarts the agent. Please report it."
        );
        // `try_lock`: a panic while the lock is held (it never is for long)
        // must still exit rather than wait.
        let (file, json, pidfile) = match SINKS.try_lock() {
            Ok(s) => (s.log_file.clone(), s.json, s.pidfile.clone()),
            Err(_) => (None, false, None),
        };
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        let line = if json {
            serde_json::json!({"msg": msg, "level": "CRIT", "ts": now, "location": location})
                .to_string()
        } else {
            format!("{now} CRIT {msg}")
        };
        let _ = writeln!(std::io::stderr(), "mongomon: {msg}");
        if let Some(path) = file {
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
                let _ = writeln!(f, "{line}");
            }
        }
        if let Some(p) = pidfile {
            let _ = std::fs::remove_file(p);
        }
        std::process::exit(EXIT_PANIC);
    }));
}

/// The panic line also goes to this log file, in the log's format.
pub fn log_to(file: Option<PathBuf>, json: bool) {
    if let Ok(mut s) = SINKS.lock() {
        s.log_file = file;
        s.json = json;
    }
}

/// This pid file is removed before the exit.
pub fn remove_on_panic(pidfile: Option<PathBuf>) {
    if let Ok(mut s) = SINKS.lock() {
        s.pidfile = pidfile;
    }
}
