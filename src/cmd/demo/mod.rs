//! `mongomon demo`: the whole agent against the built-in simulator, shown
//! live in the terminal.
//!
//! The simulator serves a sharded cluster and a replica set (see
//! `config/sim/demo.toml`); the agent is given one mongos and one replica-set
//! member as seeds and uploads JSON lines to a small receiver inside this
//! process, which keeps the latest state per host and draws the table. So
//! what the table shows has travelled the same path as in production:
//! monitor → batcher → uploader → HTTP.
//!
//! Meanwhile a [`timeline`] changes the deployment (a step-down, a lost
//! member, a new shard and mongos) and tells each event above the table;
//! the table is the one `mongomon status` prints ([`crate::cmd::table`]),
//! whose CHANGE column shows when the agent has followed the event.

use std::collections::BTreeMap;
use std::io::{BufReader, IsTerminal, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::Context as _;
use serde_json::Value;

use crate::actors::supervisor::{Shutdown, Supervisor};
use crate::cmd::table::{mark_changes, render, HostRow};
use crate::config;
use crate::sim::{Simulator, Topology};
use crate::stats::AgentStats;

mod board;
mod timeline;

pub use board::{Board, Row};
use timeline::Timeline;

/// The demo topology, also shipped as `config/sim/demo.toml`.
pub const TOPOLOGY: &str = include_str!("../../../config/sim/demo.toml");

/// Seconds between two samples of a host in the demo: short, so the table moves.
const DEMO_INTERVAL_SECS: u64 = 2;

/// Seconds between two full re-expansions of the targets. The agent follows
/// most changes sooner (a mongos reports a new shard or router in its next
/// round, which triggers a re-expansion at once); this bounds the rest.
const DISCOVERY_INTERVAL_SECS: u64 = 10;

/// A host the deployment no longer lists is dropped after this long, so the
/// shard and mongos the timeline removes leave the table within seconds.
const REMOVAL_GRACE_SECS: u64 = 4;

/// A host the agent sent nothing about for this many intervals has been
/// dropped by it (a host it cannot reach still gets an `up = 0` sample
/// every round).
const GONE_AFTER_INTERVALS: u64 = 3;

/// Drawings (one a second) a change stays marked: long enough to read it.
const HOLD_DRAWINGS: u32 = 8;

/// Timeline lines shown above the table (the latest ones).
const EVENTS_SHOWN: usize = 6;

/// How `demo` runs.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Stop after this long instead of waiting for Ctrl-C.
    pub duration: Option<Duration>,
    /// Multiplies the timeline's times (0.2 plays it five times faster).
    pub timeline_scale: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            duration: None,
            timeline_scale: 1.0,
        }
    }
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1 that folds JSON-lines batches
/// into the board and answers 204.
fn start_receiver(board: Arc<Mutex<Board>>) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::Builder::new()
        .name("demo-receiver".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let board = board.clone();
                let _ = std::thread::Builder::new()
                    .name("demo-conn".into())
                    .spawn(move || serve(stream, board));
            }
        })?;
    Ok(port)
}

fn serve(stream: TcpStream, board: Arc<Mutex<Board>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let body = match crate::http_body::read_body(&mut reader) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let _ = writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            Err(_) => return,
        };
        {
            let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
            b.batches += 1;
            for l in body.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                if let Ok(v) = serde_json::from_slice::<Value>(l) {
                    b.apply(&v);
                }
            }
        }
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Runs the demo until Ctrl-C (or for `duration`).
pub fn run(opts: DemoOptions) -> anyhow::Result<ExitCode> {
    crate::install_crypto_provider();
    let topology = Topology::from_toml_str(TOPOLOGY).context("the built-in demo topology")?;
    let sim = Simulator::start(topology).context("cannot start the simulator")?;
    let mongos = sim
        .mongos(timeline::CLUSTER)
        .first()
        .copied()
        .context("the demo topology has no mongos")?;
    let member = sim
        .set_members("rs-app")
        .get(1)
        .copied()
        .context("the demo topology has no rs-app")?;

    let board = Arc::new(Mutex::new(Board::default()));
    let port = start_receiver(board.clone()).context("cannot start the demo receiver")?;
    let log_path = std::env::temp_dir().join("mongomon-demo.log");
    let text = format!(
        "[agent]\ninterval_secs = {DEMO_INTERVAL_SECS}\nlog_level = \"info\"\nlog_file = \"{}\"\nshutdown_timeout_secs = 3\nspool_dir = \"\"\n\
         [discovery]\ninterval_secs = {DISCOVERY_INTERVAL_SECS}\nremoval_grace_secs = {REMOVAL_GRACE_SECS}\n\
         [[targets]]\nname = \"demo\"\nuri = \"mongodb://{mongos}\"\n\
         [[targets]]\nname = \"rs-app\"\nuri = \"mongodb://{member}\"\n\
         [upload]\nurl = \"http://127.0.0.1:{port}/ingest\"\nformat = \"json\"\nmax_batch_age_ms = 500\n",
        log_path.display()
    );
    let raw = config::load_str(&text, &serde_json::json!({}))?;
    let settings = config::validate(&raw, None)?;
    let (log, handle) = crate::logging::build(
        settings.agent.log_level,
        settings.agent.log_format,
        Some(&log_path),
    )?;

    let tty = std::io::stdout().is_terminal();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sys = actix_rt::System::new();
    let sig_log = log.clone();
    let started = Instant::now();
    let drawing = Drawing {
        board,
        events: events.clone(),
        started,
        tty,
        intro: format!(
            "simulated cluster, seeds {mongos} (mongos) and {member} (rs-app); Ctrl-C to exit"
        ),
        first_event_secs: timeline::first_event_secs(opts.timeline_scale),
        log_path,
    };
    let duration = opts.duration;
    sys.block_on(async move {
        let stats = Arc::new(AgentStats::default());
        let sup = match Supervisor::new(settings, None, log, Some(handle), stats) {
            Ok(s) => s.start(),
            Err(e) => {
                eprintln!("mongomon demo: {e}");
                actix::System::current().stop();
                return;
            }
        };
        crate::signals::install(sup.clone(), sig_log);
        actix_rt::spawn(async move {
            let mut stopping = false;
            let mut prev = BTreeMap::new();
            loop {
                actix_rt::time::sleep(Duration::from_secs(1)).await;
                prev = drawing.draw(&prev);
                if let Some(d) = duration {
                    if !stopping && started.elapsed() >= d {
                        stopping = true;
                        sup.do_send(Shutdown);
                    }
                }
            }
        });
    });
    // The timeline drives the simulator from its own thread: the
    // simulator's control calls block (briefly), the actor system must not.
    let stop = AtomicBool::new(false);
    let ran = std::thread::scope(|s| {
        let timeline = Timeline::new(&sim, opts.timeline_scale, started);
        let (events, stop) = (&*events, &stop);
        s.spawn(move || timeline.play(events, stop));
        let ran = sys.run();
        stop.store(true, Ordering::Relaxed);
        ran
    });
    ran.context("the actor system failed")?;
    sim.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// What each drawing needs: the board, the timeline's lines, and the
/// fixed text around the table.
struct Drawing {
    board: Arc<Mutex<Board>>,
    events: Arc<Mutex<Vec<String>>>,
    started: Instant,
    /// Clear the screen before each drawing (a terminal); otherwise the
    /// drawings follow one another as plain text.
    tty: bool,
    intro: String,
    first_event_secs: f64,
    log_path: std::path::PathBuf,
}

impl Drawing {
    /// Draws the table once, marking what changed since `prev` (the rows
    /// of the previous drawing), and returns this drawing's rows.
    fn draw(&self, prev: &BTreeMap<String, HostRow>) -> BTreeMap<String, HostRow> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let (mut rows, totals) = {
            let b = self.board.lock().unwrap_or_else(|e| e.into_inner());
            let gone_after_ms = (GONE_AFTER_INTERVALS * DEMO_INTERVAL_SECS * 1000) as i64;
            (
                b.rows(now_ms, gone_after_ms),
                format!(
                    "{} hosts, {} samples in {} batches received",
                    b.rows.len(),
                    b.samples,
                    b.batches
                ),
            )
        };
        mark_changes(prev, &mut rows, HOLD_DRAWINGS);
        let mut text = format!(
            "mongomon demo: t+{}s, {}\n",
            self.started.elapsed().as_secs(),
            self.intro
        );
        {
            let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            if events.is_empty() {
                text.push_str(&format!(
                    "timeline: the first event comes at t+{}s\n",
                    self.first_event_secs.round()
                ));
            }
            for e in events
                .iter()
                .skip(events.len().saturating_sub(EVENTS_SHOWN))
            {
                text.push_str(e);
                text.push('\n');
            }
        }
        text.push('\n');
        text.push_str(&render(&rows));
        text.push_str(&format!(
            "{totals}\nagent log: {}\n",
            self.log_path.display()
        ));
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        rows.into_iter().map(|r| (r.host.clone(), r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_topology_is_valid() {
        let t = Topology::from_toml_str(TOPOLOGY).expect("parses");
        t.validate().expect("valid");
        assert_eq!(t.host_count(), 3 * 3 + 2 + 3);
    }
}
