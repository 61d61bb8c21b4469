//! `mongomon demo`: the whole agent against the built-in simulator, shown
//! live in the terminal.
//!
//! The simulator serves a sharded cluster and a replica set (see
//! `config/sim/demo.toml`); the agent is given one mongos and one replica-set
//! member as seeds and uploads JSON lines to a small receiver inside this
//! process, which keeps the latest state per host and draws the table. So
//! what the table shows has travelled the same path as in production:
//! monitor → batcher → uploader → HTTP.

use std::collections::BTreeMap;
use std::io::{BufReader, IsTerminal, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::Context as _;
use serde_json::Value;

use crate::actors::supervisor::{Shutdown, Supervisor};
use crate::config;
use crate::sim::{Simulator, Topology};
use crate::stats::AgentStats;

/// The demo topology, also shipped as `config/sim/demo.toml`.
pub const TOPOLOGY: &str = include_str!("../../config/sim/demo.toml");

/// Seconds between two samples of a host in the demo: short, so the table moves.
const DEMO_INTERVAL_SECS: u64 = 2;

/// What the table shows about one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub role: String,
    pub replset: String,
    pub state: String,
    pub up: bool,
    pub connections: Option<f64>,
    pub ops_per_sec: Option<f64>,
    pub lag_secs: Option<f64>,
    /// Time (ms) of the latest sample.
    pub last_ms: i64,
    ops_total: Option<(i64, f64)>,
}

/// The latest state of every host, fed by the receiver.
#[derive(Debug, Default)]
pub struct Board {
    pub rows: BTreeMap<String, Row>,
    pub batches: u64,
    pub samples: u64,
}

impl Board {
    /// Folds one JSON sample (the `json` upload format) into the board.
    pub fn apply(&mut self, v: &Value) {
        self.samples += 1;
        let Some(host) = v["host"].as_str() else {
            return;
        };
        let row = self.rows.entry(host.to_string()).or_default();
        row.role = v["role"].as_str().unwrap_or("").to_string();
        row.replset = v["replset"].as_str().unwrap_or("").to_string();
        let ts = v["ts_ms"].as_i64().unwrap_or(0);
        row.last_ms = row.last_ms.max(ts);
        let reply = &v["reply"];
        match v["command"].as_str() {
            Some("status") => row.up = v["up"].as_i64() == Some(1),
            Some("serverStatus") => {
                row.connections = reply["connections"]["current"].as_f64();
                let total: f64 = reply["opcounters"]
                    .as_object()
                    .map(|o| o.values().filter_map(Value::as_f64).sum())
                    .unwrap_or(0.0);
                if let Some((t0, n0)) = row.ops_total {
                    if ts > t0 {
                        row.ops_per_sec =
                            Some(((total - n0) / ((ts - t0) as f64 / 1000.0)).max(0.0));
                    }
                }
                row.ops_total = Some((ts, total));
            }
            Some("replSetGetStatus") => {
                let members = reply["members"].as_array().cloned().unwrap_or_default();
                let date = |m: &Value| {
                    m["optimeDate"]["$date"]
                        .as_str()
                        .and_then(|s| bson::DateTime::parse_rfc3339_str(s).ok())
                        .map(|d| d.timestamp_millis())
                };
                let primary = members
                    .iter()
                    .find(|m| m["stateStr"] == "PRIMARY")
                    .and_then(date);
                if let Some(me) = members.iter().find(|m| m["self"] == true) {
                    row.state = me["stateStr"].as_str().unwrap_or("").to_string();
                    row.lag_secs = match (primary, date(me)) {
                        (Some(p), Some(m)) => Some((p - m).max(0) as f64 / 1000.0),
                        _ => None,
                    };
                }
            }
            _ => {}
        }
    }

    /// The table as text.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<22} {:<11} {:<11} {:<10} {:>3} {:>8} {:>6} {:>7} {:>8}\n",
            "HOST", "ROLE", "SET", "STATE", "UP", "OPS/S", "CONNS", "LAG(s)", "AGE(s)"
        ));
        let f =
            |x: Option<f64>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
        for (host, r) in &self.rows {
            out.push_str(&format!(
                "{:<22} {:<11} {:<11} {:<10} {:>3} {:>8} {:>6} {:>7} {:>8.1}\n",
                host,
                r.role,
                if r.replset.is_empty() {
                    "-"
                } else {
                    &r.replset
                },
                if r.state.is_empty() { "-" } else { &r.state },
                if r.up { "1" } else { "0" },
                f(r.ops_per_sec, 0),
                f(r.connections, 0),
                f(r.lag_secs, 1),
                (now_ms - r.last_ms).max(0) as f64 / 1000.0,
            ));
        }
        out.push_str(&format!(
            "{} hosts, {} samples in {} batches received\n",
            self.rows.len(),
            self.samples,
            self.batches
        ));
        out
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
pub fn run(duration: Option<Duration>) -> anyhow::Result<ExitCode> {
    crate::install_crypto_provider();
    let topology = Topology::from_toml_str(TOPOLOGY).context("the built-in demo topology")?;
    let sim = Simulator::start(topology).context("cannot start the simulator")?;
    let mongos = sim
        .mongos("demo")
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
    let sys = actix_rt::System::new();
    let sig_log = log.clone();
    let started = Instant::now();
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
        let b = board.clone();
        actix_rt::spawn(async move {
            let mut stopping = false;
            loop {
                actix_rt::time::sleep(Duration::from_secs(1)).await;
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let table = b.lock().unwrap_or_else(|e| e.into_inner()).render(now_ms);
                let mut out = std::io::stdout().lock();
                if tty {
                    let _ = write!(out, "\x1b[2J\x1b[H");
                }
                let _ = writeln!(
                    out,
                    "mongomon demo: simulated cluster, seeds {mongos} (mongos) and {member} (rs-app); Ctrl-C to exit\n{table}agent log: {}\n",
                    log_path.display()
                );
                let _ = out.flush();
                if let Some(d) = duration {
                    if !stopping && started.elapsed() >= d {
                        stopping = true;
                        sup.do_send(Shutdown);
                    }
                }
            }
        });
    });
    sys.run().context("the actor system failed")?;
    sim.shutdown();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn board_computes_rates_lag_and_state() {
        let mut b = Board::default();
        let ss = |ts: i64, n: i64| {
            json!({"host": "h:1", "role": "secondary", "replset": "rs", "command": "serverStatus", "ts_ms": ts,
            "reply": {"connections": {"current": 7}, "opcounters": {"insert": n, "query": n}}})
        };
        b.apply(&ss(1_000, 10));
        b.apply(&ss(3_000, 30));
        b.apply(&json!({"host": "h:1", "role": "secondary", "replset": "rs", "command": "replSetGetStatus", "ts_ms": 3_000,
            "reply": {"members": [
                {"name": "p:1", "stateStr": "PRIMARY", "optimeDate": {"$date": "2026-01-01T00:00:10Z"}},
                {"name": "h:1", "stateStr": "SECONDARY", "self": true, "optimeDate": {"$date": "2026-01-01T00:00:06.500Z"}}]}}));
        b.apply(&json!({"host": "h:1", "role": "secondary", "command": "status", "up": 1, "ts_ms": 3_000}));
        let r = &b.rows["h:1"];
        assert_eq!(r.ops_per_sec, Some(20.0));
        assert_eq!(r.connections, Some(7.0));
        assert_eq!(r.lag_secs, Some(3.5));
        assert_eq!(r.state, "SECONDARY");
        assert!(r.up);
        let table = b.render(5_000);
        assert!(table.contains("h:1"), "{table}");
        assert!(table.contains("SECONDARY"));
        assert!(
            table.lines().nth(1).unwrap().trim_end().ends_with("2.0"),
            "{table}"
        );
    }

    #[test]
    fn demo_topology_is_valid() {
        let t = Topology::from_toml_str(TOPOLOGY).expect("parses");
        t.validate().expect("valid");
        assert_eq!(t.host_count(), 3 * 3 + 2 + 3);
    }
}
