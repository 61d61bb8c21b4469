//! `mongomon bench`: the many-host harness.
//!
//! One run: the simulator serves N hosts in this process (3-member replica
//! sets, a sharded cluster whose mongos make up about 5 % of the fleet, the
//! real 4.2.8 `serverStatus` everywhere, SCRAM-SHA-256 on), a receiver in
//! this process counts every `mongodb` (up) line that arrives, and the real
//! agent binary runs as a child process with one seed per replica set and
//! one mongos for the cluster, so discovery does the rest. After a warm-up,
//! the measured window gives:
//!
//! - the agent's CPU seconds per 1,000 host-samples, RSS (total, per host),
//!   threads and sockets per host, from `/proc`;
//! - schedule accuracy: each sample's lateness against its grid point
//!   (`k × interval + the host's phase`, as the agent schedules), p50/p99/max,
//!   and the share of samples more than 1 s late or missing;
//! - freshness: sample time to its arrival at the receiver, p50/p99;
//! - what it cost the servers, from the simulator's counters: commands and
//!   bytes per host per interval, connections opened and SCRAM handshakes
//!   per host over the run.
//!
//! Peers (`--peer NAME=SCRIPT`) run after the agent against the same
//! simulated hosts, same interval and duration; each script writes a
//! `summary.json` whose CPU and RSS figures are set beside the agent's.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Serialize;

use crate::actors::host_monitor::phase_offset;
pub mod etcd;
mod fleet;
mod fleet_agents;
mod scrape;
mod soak;

use crate::sim::HostInfo;
use fleet::Fleet;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub hosts: usize,
    pub interval: Duration,
    /// Measured window, after the warm-up.
    pub duration: Duration,
    pub warmup: Duration,
    /// The agent binary (default: this executable).
    pub agent_bin: PathBuf,
    /// Where configs, logs and the spool go.
    pub work_dir: PathBuf,
    /// `(name, script)`: run as `script HOSTS_FILE INTERVAL_SECS DURATION_SECS OUT_DIR`.
    pub peers: Vec<(String, PathBuf)>,
    /// The receiver answers 503 for this long at the start of the measured
    /// window, then accepts: how fast the backlog drains.
    pub outage: Duration,
    /// The agent's `collect.profile` and `upload.compression`.
    pub collect_profile: String,
    pub compression: String,
    /// `/metrics` scrapes to time in the window (0: the listener stays off).
    pub scrapes: u32,
}

/// Distribution of a set of milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Quantiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub(crate) fn quantiles(mut v: Vec<f64>) -> Quantiles {
    if v.is_empty() {
        return Quantiles::default();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Quantiles {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: v[v.len() - 1],
    }
}

/// One process's resources, as read from `/proc`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcStat {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub threads: u64,
    pub sockets: u64,
}

impl ProcStat {
    /// Folds a new reading of `pid` in: peaks of RSS, threads and sockets,
    /// the latest CPU total.
    pub fn observe(&mut self, pid: u32) {
        if let Some(p) = proc_stat(pid) {
            self.rss_kib = self.rss_kib.max(p.rss_kib);
            self.threads = self.threads.max(p.threads);
            self.sockets = self.sockets.max(p.sockets);
            self.cpu_seconds = p.cpu_seconds;
        }
    }
}

/// Reads utime+stime, VmRSS, Threads and socket fds of `pid`.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: ") S ppid ...".
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .count() as u64
        })
        .unwrap_or(0);
    Some(ProcStat {
        cpu_seconds: ticks / hz,
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        sockets,
    })
}

/// CPU ticks of each thread of `pid`, by thread id, with its name.
pub fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.insert(tid, (name, ticks));
    }
    out
}

/// Each thread's share of the process's CPU between two [`thread_ticks`]
/// readings, largest first, as (name, share).
fn thread_shares(
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
) -> Vec<(String, f64)> {
    let deltas: Vec<(String, u64)> = after
        .iter()
        .map(|(tid, (name, t))| {
            let t0 = before.get(tid).map(|b| b.1).unwrap_or(0);
            (name.clone(), t.saturating_sub(t0))
        })
        .collect();
    let total: u64 = deltas.iter().map(|d| d.1).sum();
    let mut shares: Vec<(String, f64)> = deltas
        .into_iter()
        .filter(|d| d.1 > 0)
        .map(|(n, d)| (n, d as f64 / total.max(1) as f64))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
}

/// What the receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// host → (sample time ms, arrival ms) of each `mongodb` line.
    samples: HashMap<String, Vec<(i64, i64)>>,
    requests: u64,
    bytes: u64,
    lines: u64,
    /// (arrival ms, body bytes as sent, time of its oldest line in ms) of each
    /// accepted request: a drain is over when the last request holding a
    /// line from the outage arrived, whichever measurement it carried.
    arrivals: Vec<(i64, u64, i64)>,
    /// (sample time ms, fields) of the agent's own `mongomon` lines.
    agent_lines: Vec<(i64, String)>,
}

/// One plain HTTP/1.1 request to a loopback service the harness started
/// (a simulator's control endpoint, an etcd member), read to the end
/// (`Connection: close`): the status code and the body. A JSON `body`
/// makes it a POST, none a GET.
pub(crate) fn loopback_http(
    addr: SocketAddr,
    path: &str,
    body: Option<&str>,
    read_timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    use std::io::Read as _;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(read_timeout))?;
    match body {
        Some(body) => write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?,
        None => write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?,
    }
    let mut all = String::new();
    s.read_to_string(&mut all)?;
    let Some((head, body)) = all.split_once("\r\n\r\n") else {
        anyhow::bail!("{addr}{path}: no answer");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A line-protocol receiver that answers 204 and records `mongodb` lines.
///
/// Its request threads only read a body, note when it arrived and answer;
/// one decoder thread decompresses and reads the lines behind them. So the
/// receiver's own speed does not pace what it measures (a drain after an
/// outage sends hundreds of megabytes of line protocol in seconds), and
/// [`Receiver::settle`] waits for the decoder before figures are read.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    /// Answer 503 to everything (a receiver outage).
    down: Arc<AtomicBool>,
    /// Bodies handed to the decoder, and bodies it has read.
    queued: Arc<AtomicU64>,
    decoded: Arc<AtomicU64>,
}

/// One accepted request, for the decoder.
struct Arrival {
    at_ms: i64,
    body: Vec<u8>,
    encoding: crate::http_body::BodyEncoding,
}

impl Receiver {
    fn start() -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicU64::new(0));
        let decoded = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<Arrival>();
        let (s, dec) = (seen.clone(), decoded.clone());
        std::thread::spawn(move || {
            // Ends when every sender (the request threads) is gone.
            for a in rx {
                record(&s, a);
                dec.fetch_add(1, Ordering::Relaxed);
            }
        });
        let (st, dn, q) = (stop.clone(), down.clone(), queued.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (st, dn, q, tx) = (st.clone(), dn.clone(), q.clone(), tx.clone());
                        std::thread::spawn(move || serve(conn, tx, q, st, dn));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Receiver {
            addr,
            seen,
            stop,
            down,
            queued,
            decoded,
        })
    }

    /// Waits (up to `limit`) until the decoder has read every body
    /// received so far.
    fn settle(&self, limit: Duration) {
        let t0 = Instant::now();
        while self.decoded.load(Ordering::Relaxed) < self.queued.load(Ordering::Relaxed)
            && t0.elapsed() < limit
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    decoder: std::sync::mpsc::Sender<Arrival>,
    queued: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while !stop.load(Ordering::Relaxed) {
        let (body, encoding) = match crate::http_body::read_raw_body(&mut r) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        if down.load(Ordering::Relaxed) {
            if w.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
            continue;
        }
        let at_ms = now_ms();
        queued.fetch_add(1, Ordering::Relaxed);
        if decoder
            .send(Arrival {
                at_ms,
                body,
                encoding,
            })
            .is_err()
        {
            return;
        }
        if w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// The decoder's part: one request's lines into `seen`.
fn record(seen: &Mutex<Seen>, a: Arrival) {
    let sent = a.body.len() as u64;
    let Ok(body) = crate::http_body::decode_body(a.body, a.encoding) else {
        return;
    };
    let arrived = a.at_ms;
    let text = String::from_utf8_lossy(&body);
    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
    s.requests += 1;
    s.bytes += body.len() as u64;
    let mut oldest = i64::MAX;
    for l in text.lines() {
        s.lines += 1;
        let ts = l.rsplit(' ').next().and_then(|t| t.parse::<i64>().ok());
        if let Some(t) = ts {
            oldest = oldest.min(t / 1_000_000);
        }
        if let (Some(rest), Some(t)) = (l.strip_prefix("mongomon,"), ts) {
            if let Some((_, fields)) = rest.split_once(' ') {
                let fields = fields.rsplit_once(' ').map_or(fields, |(f, _)| f);
                s.agent_lines.push((t / 1_000_000, fields.to_string()));
            }
            continue;
        }
        let Some(rest) = l.strip_prefix("mongodb,") else {
            continue;
        };
        let host = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("host="))
            .map(|h| h.split(' ').next().unwrap_or(h));
        if let (Some(h), Some(ts)) = (host, ts) {
            s.samples
                .entry(h.to_string())
                .or_default()
                .push((ts / 1_000_000, arrived));
        }
    }
    s.arrivals.push((arrived, sent, oldest));
}

/// The simulated fleet for `n` hosts.
/// The fleet of `n` hosts as simulator topologies: one, or one per
/// simulator process when `n` is above [`fleet::HOSTS_PER_PROCESS`] (the
/// sharded cluster in the first, replica sets spread over all, each
/// process on its own 127.x block). Returns the parts and the host count.
fn topology(n: usize) -> (Vec<String>, usize) {
    let mongos = (n / 20).max(1);
    let cluster = 3 + 2 * 3 + mongos;
    let rest = n.saturating_sub(cluster);
    let sets = rest / 3;
    let standalones = rest - sets * 3;
    let parts = n.div_ceil(fleet::HOSTS_PER_PROCESS).max(1);
    // Sets per part: the first also carries the cluster.
    let per_part = n.div_ceil(parts);
    let mut set_counts = vec![0usize; parts];
    let mut left = sets;
    set_counts[0] = (per_part.saturating_sub(cluster) / 3).min(left);
    left -= set_counts[0];
    for (i, c) in set_counts.iter_mut().enumerate().skip(1) {
        let remaining_parts = parts - i;
        *c = left.div_ceil(remaining_parts);
        left -= *c;
    }
    set_counts[0] += left;
    let mut out = Vec::with_capacity(parts);
    for (i, sets_here) in set_counts.iter().enumerate() {
        let alone = if i + 1 == parts { standalones } else { 0 };
        // Ports of their own for big fleets (127.x.y.z:27017, like real
        // hosts); free ports on 127.0.0.1 for small ones.
        let addresses = if n > 500 {
            format!(
                "addresses = \"auto\"\nauto_base = \"127.{}.0.1\"\nauto_port = 27017\n",
                3 + i
            )
        } else {
            String::new()
        };
        let prefix = if parts == 1 {
            "rs".to_string()
        } else {
            format!("p{i}rs")
        };
        let mut t = format!(
            "[simulator]\n{addresses}\n\
             [[users]]\nname = \"mongomon\"\npassword = \"bench-pw\"\n"
        );
        if sets_here + alone > 0 {
            t.push_str(&format!(
                "[[fleet]]\nname_prefix = \"{prefix}\"\nreplica_sets = {sets_here}\nmembers_per_set = 3\nstandalones = {alone}\nversions = [\"4.4.29\"]\n"
            ));
        }
        if i == 0 {
            t.push_str(
                "[[sharded_cluster]]\nname = \"shop\"\nversion = \"4.4.29\"\n\
                 [sharded_cluster.config_server]\nname = \"cfg\"\nmembers = [{}, {}, {}]\n",
            );
            for s in 0..2 {
                t.push_str(&format!(
                    "[[sharded_cluster.shards]]\nname = \"shard{s:02}\"\nmembers = [{{}}, {{}}, {{}}]\n"
                ));
            }
            for _ in 0..mongos {
                t.push_str("[[sharded_cluster.mongos]]\n");
            }
        }
        out.push(t);
    }
    (out, cluster + sets * 3 + standalones)
}

/// The agent's configuration: one seed per replica set and per standalone,
/// one mongos for the cluster.
fn agent_config(
    hosts: &[HostInfo],
    o: &BenchOptions,
    receiver: SocketAddr,
    listen: Option<SocketAddr>,
) -> String {
    let dir = o.work_dir.display();
    let mut c = format!(
        "[agent]\ninterval_secs = {}\ncommand_timeout_ms = 5000\nconnect_timeout_ms = 3000\n\
         spool_dir = \"{dir}/spool\"\nlog_file = \"{dir}/agent.log\"\nshutdown_timeout_secs = 10\nname = \"bench\"\n\
         [spool]\nmax_bytes = 8589934592\n\
         [collect]\nprofile = \"{}\"\n\
         [upload]\nurl = \"http://{receiver}/write\"\ncompression = \"{}\"\n",
        o.interval.as_secs().max(1),
        o.collect_profile,
        o.compression,
    );
    if let Some(l) = listen {
        c.push_str(&format!("[http]\nenabled = true\nlisten = \"{l}\"\n"));
    }
    let mut seeded = std::collections::BTreeSet::new();
    for h in hosts {
        let seed = match (&h.set, &h.cluster, h.role.as_str()) {
            (_, Some(cluster), "mongos") => format!("cluster:{cluster}"),
            (Some(_), Some(_), _) => continue,
            (Some(set), None, _) => format!("set:{set}"),
            _ => format!("host:{}", h.addr),
        };
        if seeded.insert(seed.clone()) {
            c.push_str(&format!(
                "[[targets]]\nname = \"{}\"\nuri = \"mongodb://mongomon:bench-pw@{}/?authSource=admin\"\n",
                seed.replace(':', "-"),
                h.addr
            ));
        }
    }
    c
}

/// The figures of one agent (or peer) run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentFigures {
    pub cpu_seconds: f64,
    pub cpu_seconds_per_1000_host_samples: f64,
    pub cores: f64,
    pub rss_kib: u64,
    pub rss_kib_per_host: f64,
    pub threads: u64,
    pub sockets_per_host: f64,
    /// Each thread's share of the agent's CPU in the window, largest
    /// first (thread name, share): how evenly the work spreads.
    pub thread_cpu_shares: Vec<(String, f64)>,
}

/// What `bench` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub hosts: usize,
    pub hosts_seen: usize,
    pub interval_secs: u64,
    pub window_secs: f64,
    pub machine: String,
    pub date: String,
    pub agent: AgentFigures,
    pub host_samples: u64,
    pub expected_host_samples: u64,
    pub lateness: Quantiles,
    /// Share of expected samples more than 1 s late or missing.
    pub late_or_missing_share: f64,
    pub missing: u64,
    pub freshness: Quantiles,
    pub server_commands_per_host_per_interval: f64,
    pub server_bytes_per_host_per_interval: f64,
    pub connections_opened_per_host: f64,
    pub scram_handshakes_per_host: f64,
    pub receiver_requests: u64,
    pub receiver_bytes: u64,
    /// The simulator and receiver (this process), for scale.
    pub simulator_cpu_seconds: f64,
    pub simulator_rss_kib: u64,
    pub drain: Option<Drain>,
    /// `--scrapes`: how long `/metrics` took to answer.
    pub scrape: Option<scrape::ScrapeFigures>,
    pub peers: Vec<PeerFigures>,
}

/// How the backlog of a receiver outage drained.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Drain {
    pub outage_secs: f64,
    /// Spool bytes on disk at the end of the outage, per host-sample taken during it.
    pub spool_bytes: u64,
    pub spool_bytes_per_host_sample: f64,
    /// From the receiver's return to the arrival of the last request that
    /// holds data taken during the outage (any measurement).
    pub drain_secs: f64,
    /// From the receiver's return to the first batch it accepted: the
    /// agent's retry delay, up to `upload.retry_max_ms`.
    pub resume_secs: f64,
    /// From that first accepted batch to the end of the drain.
    pub transfer_secs: f64,
    pub backlog_host_samples: u64,
    /// Backlog host-samples over `drain_secs` (the retry wait included).
    pub host_samples_per_sec: f64,
    /// Backlog host-samples over `transfer_secs`: how fast the agent
    /// delivers a backlog once the receiver takes it.
    pub transfer_host_samples_per_sec: f64,
    pub backlog_bytes: u64,
    pub batches: u64,
    pub batches_per_sec: f64,
    /// The collection rate, for comparison.
    pub ingest_host_samples_per_sec: f64,
}

/// A peer's figures beside the agent's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerFigures {
    pub name: String,
    pub hosts: usize,
    /// Hosts the peer collected anything from.
    pub hosts_reporting: Option<f64>,
    /// Host-samples the peer collected in the measured window.
    pub host_samples: Option<f64>,
    pub cpu_seconds_per_1000_host_samples: Option<f64>,
    pub rss_kib_per_host: Option<f64>,
    /// Values (fields, data points, series) per host and gather.
    pub values_per_host_sample: Option<f64>,
    pub log_errors: Option<f64>,
    /// Why the peer produced no figures.
    pub error: Option<String>,
    pub summary: serde_json::Value,
    /// mongomon / peer, CPU per host-sample (lower is better for mongomon).
    pub cpu_per_host_sample_ratio: Option<f64>,
    /// mongomon / peer, RSS per host.
    pub rss_per_host_ratio: Option<f64>,
}

/// `mongomon bench`: one run, the table on stdout, the report as JSON.
pub fn command(args: crate::cli::BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let crate::cli::BenchArgs {
        hosts,
        interval_secs,
        duration_secs,
        warmup_secs,
        outage_secs,
        json,
        work_dir,
        agent_bin,
        peer: peers,
        collect_profile,
        compression,
        scrapes,
        fleet_agents,
        lease_ttl_secs,
        soak_secs,
        faults_every_secs,
    } = args;
    let o = BenchOptions {
        hosts,
        interval: Duration::from_secs(interval_secs),
        duration: Duration::from_secs(duration_secs),
        warmup: Duration::from_secs(warmup_secs),
        outage: Duration::from_secs(outage_secs),
        collect_profile,
        compression,
        scrapes,
        agent_bin: match agent_bin {
            Some(p) => p,
            None => std::env::current_exe().context("cannot find this executable")?,
        },
        work_dir: work_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("mongomon-bench-{}", std::process::id()))
        }),
        peers: peers
            .iter()
            .map(|p| match p.split_once('=') {
                Some((n, s)) => Ok((n.to_string(), PathBuf::from(s))),
                None => Err(anyhow::anyhow!(
                    "--peer {p}: expected NAME=SCRIPT, e.g. telegraf=benches/peers/telegraf.sh"
                )),
            })
            .collect::<anyhow::Result<_>>()?,
    };
    if soak_secs > 0 {
        let report = soak::run(
            &o,
            Duration::from_secs(soak_secs),
            Duration::from_secs(faults_every_secs),
        )?;
        print!("{}", soak::render(&report));
        if let Some(path) = json {
            std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if fleet_agents > 0 {
        let report = fleet_agents::run(&o, fleet_agents as usize, lease_ttl_secs)?;
        print!("{}", fleet_agents::render(&report));
        if let Some(path) = json {
            std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let report = run(&o)?;
    print!("{}", render(&report));
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = json {
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The work directory, the open-file limit and the simulated fleet of
/// `o.hosts` hosts, with their list: what every kind of run starts with.
fn start_fleet(o: &BenchOptions) -> anyhow::Result<(Fleet, Vec<HostInfo>)> {
    std::fs::create_dir_all(&o.work_dir)
        .with_context(|| format!("cannot create {}", o.work_dir.display()))?;
    let _ = crate::daemon::raise_nofile_limit();
    let (parts, n) = topology(o.hosts);
    let sim = Fleet::start(&parts, &o.work_dir)?;
    let hosts = sim.hosts();
    if hosts.len() != n {
        anyhow::bail!("the simulator serves {} hosts, {n} expected", hosts.len());
    }
    Ok((sim, hosts))
}

/// Writes an agent's configuration, private: it holds the bench user's
/// password, and the agent refuses a file others can write.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// Runs one benchmark.
pub fn run(o: &BenchOptions) -> anyhow::Result<Report> {
    let (sim, hosts) = start_fleet(o)?;
    let n = hosts.len();
    let receiver = Receiver::start()?;
    let cfg_path = o.work_dir.join("mongomon.toml");
    let listen = if o.scrapes > 0 {
        Some(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
    } else {
        None
    };
    write_config(&cfg_path, &agent_config(&hosts, o, receiver.addr, listen))?;
    let mut child = spawn_agent(o, &cfg_path)?;
    let pid = child.id();
    let run = (|| -> anyhow::Result<Report> {
        sleep_checking(&mut child, o.warmup)?;
        let start_ms = now_ms();
        let cpu0 = proc_stat(pid).context("agent vanished")?.cpu_seconds;
        let threads0 = thread_ticks(pid);
        let srv0 = sim.totals();
        let kids0 = sim.children_stat().0;
        let mut peak = ProcStat::default();
        let me0 = proc_stat(std::process::id())
            .unwrap_or_default()
            .cpu_seconds;
        let t0 = Instant::now();
        let mut outage_end_ms = None;
        let mut spool_at_end = 0;
        if !o.outage.is_zero() {
            receiver.down.store(true, Ordering::Relaxed);
        }
        let scraper = listen.map(|addr| scrape::Scraper::start(addr, o.scrapes, o.duration));
        while t0.elapsed() < o.duration {
            sleep_checking(&mut child, Duration::from_secs(1).min(o.duration))?;
            if outage_end_ms.is_none() && !o.outage.is_zero() && t0.elapsed() >= o.outage {
                spool_at_end = dir_bytes(&o.work_dir.join("spool"));
                receiver.down.store(false, Ordering::Relaxed);
                outage_end_ms = Some(now_ms());
            }
            peak.observe(pid);
        }
        let window = t0.elapsed();
        let end_ms = now_ms();
        let cpu = peak.cpu_seconds - cpu0;
        let thread_cpu = thread_shares(&threads0, &thread_ticks(pid));
        let srv1 = sim.totals();
        // Samples due up to a few seconds before the end may still be on
        // their way: count those due in [start, end - slack].
        let slack = 3_000.min(o.interval.as_millis() as i64);
        // What arrived in the window is read before it is counted.
        receiver.settle(Duration::from_secs(120));
        let me = proc_stat(std::process::id()).unwrap_or_default();
        let mut r = figures(
            o,
            n,
            &hosts,
            &receiver,
            start_ms,
            end_ms - slack,
            window,
            cpu,
            &peak,
            srv0,
            srv1,
        );
        let (kids_cpu, kids_rss) = sim.children_stat();
        r.simulator_cpu_seconds = me.cpu_seconds - me0 + (kids_cpu - kids0);
        r.simulator_rss_kib = me.rss_kib + kids_rss;
        r.agent.thread_cpu_shares = thread_cpu;
        r.scrape = scraper.map(scrape::Scraper::finish);
        if let Some(end) = outage_end_ms {
            r.drain = Some(drain(o, n, &receiver, start_ms, end, spool_at_end));
        }
        Ok(r)
    })();
    stop_agent(&mut child);
    let mut report = run?;
    for (name, script) in &o.peers {
        report.peers.push(
            run_peer(o, &hosts, &report, name, script).unwrap_or_else(|e| {
                // One failing peer does not throw away the agent's figures.
                eprintln!("bench: peer {name}: {e:#}");
                PeerFigures {
                    name: name.clone(),
                    hosts: hosts.len(),
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                }
            }),
        );
    }
    Ok(report)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn drain(
    o: &BenchOptions,
    n: usize,
    receiver: &Receiver,
    start_ms: i64,
    end_ms: i64,
    spool: u64,
) -> Drain {
    let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
    let backlog: Vec<i64> = seen
        .samples
        .values()
        .flatten()
        .filter(|(t, arrived)| *t >= start_ms && *t < end_ms && *arrived >= end_ms)
        .map(|(_, arrived)| *arrived)
        .collect();
    // Requests after the return that carry data from before it.
    let backlog_requests: Vec<&(i64, u64, i64)> = seen
        .arrivals
        .iter()
        .filter(|(a, _, oldest)| *a >= end_ms && *oldest < end_ms)
        .collect();
    let last = backlog_requests
        .iter()
        .map(|r| r.0)
        .chain(backlog.iter().copied())
        .max()
        .unwrap_or(end_ms);
    let first = seen
        .arrivals
        .iter()
        .map(|r| r.0)
        .filter(|a| *a >= end_ms)
        .min()
        .unwrap_or(end_ms);
    let drain_secs = ((last - end_ms) as f64 / 1000.0).max(0.001);
    let resume_secs = (first - end_ms) as f64 / 1000.0;
    let transfer_secs = ((last - first) as f64 / 1000.0).max(0.001);
    let batches = backlog_requests.len() as u64;
    let backlog_bytes = backlog_requests.iter().map(|r| r.1).sum();
    let outage_secs = (end_ms - start_ms) as f64 / 1000.0;
    let taken = (n as f64 * outage_secs / o.interval.as_secs_f64()).max(1.0);
    Drain {
        outage_secs,
        spool_bytes: spool,
        spool_bytes_per_host_sample: spool as f64 / taken,
        drain_secs,
        resume_secs,
        transfer_secs,
        backlog_host_samples: backlog.len() as u64,
        host_samples_per_sec: backlog.len() as f64 / drain_secs,
        transfer_host_samples_per_sec: backlog.len() as f64 / transfer_secs,
        backlog_bytes,
        batches,
        batches_per_sec: batches as f64 / transfer_secs,
        ingest_host_samples_per_sec: n as f64 / o.interval.as_secs_f64(),
    }
}

fn spawn_agent(o: &BenchOptions, cfg: &Path) -> anyhow::Result<Child> {
    let mut cmd = Command::new(&o.agent_bin);
    cmd.arg("run");
    if crate::daemon::euid() == 0 {
        cmd.arg("--allow-root");
    }
    cmd.arg("-c")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(o.work_dir.join("agent.stderr"))?)
        .spawn()
        .with_context(|| format!("cannot start {}", o.agent_bin.display()))
}

fn sleep_checking(child: &mut Child, d: Duration) -> anyhow::Result<()> {
    std::thread::sleep(d);
    if let Some(status) = child.try_wait()? {
        anyhow::bail!("the agent exited during the run ({status}); see agent.log and agent.stderr in the work directory");
    }
    Ok(())
}

fn stop_agent(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[allow(clippy::too_many_arguments)]
fn figures(
    o: &BenchOptions,
    n: usize,
    hosts: &[HostInfo],
    receiver: &Receiver,
    from_ms: i64,
    to_ms: i64,
    window: Duration,
    cpu: f64,
    peak: &ProcStat,
    srv0: crate::sim::server::Totals,
    srv1: crate::sim::server::Totals,
) -> Report {
    let interval_ms = o.interval.as_millis() as i64;
    let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
    let (mut late, mut fresh) = (Vec::new(), Vec::new());
    let (mut expected, mut got, mut late_1s) = (0u64, 0u64, 0u64);
    for h in hosts {
        let addr = h.addr.to_string();
        let phase = phase_offset(&addr, o.interval).as_millis() as i64;
        // Grid points k × interval + phase inside the window.
        let first = from_ms - (from_ms - phase).rem_euclid(interval_ms) + interval_ms;
        let mut due = first;
        let mut due_points = 0;
        while due <= to_ms {
            due_points += 1;
            due += interval_ms;
        }
        expected += due_points;
        let mine: Vec<&(i64, i64)> = seen
            .samples
            .get(&addr)
            .map(|v| {
                v.iter()
                    .filter(|(t, _)| *t >= first - interval_ms / 2 && *t <= to_ms + interval_ms / 2)
                    .collect()
            })
            .unwrap_or_default();
        let taken = (mine.len() as u64).min(due_points);
        got += taken;
        for (t, arrived) in mine {
            let l = (t - phase).rem_euclid(interval_ms);
            // A sample a hair early (clock granularity) is on time, not
            // almost an interval late.
            let l = if l > interval_ms - 50 { 0 } else { l };
            if l > 1_000 {
                late_1s += 1;
            }
            late.push(l as f64);
            fresh.push((arrived - t) as f64);
        }
    }
    let missing = expected.saturating_sub(got);
    let hosts_seen = seen.samples.len();
    let intervals = window.as_secs_f64() / o.interval.as_secs_f64();
    let per_host_interval = |d: u64| d as f64 / n as f64 / intervals.max(1e-9);
    Report {
        hosts: n,
        hosts_seen,
        interval_secs: o.interval.as_secs(),
        window_secs: window.as_secs_f64(),
        machine: machine(),
        date: httpdate::fmt_http_date(SystemTime::now()),
        agent: AgentFigures {
            cpu_seconds: cpu,
            cpu_seconds_per_1000_host_samples: if got > 0 {
                cpu / (got as f64 / 1000.0)
            } else {
                0.0
            },
            cores: cpu / window.as_secs_f64(),
            rss_kib: peak.rss_kib,
            rss_kib_per_host: peak.rss_kib as f64 / n as f64,
            threads: peak.threads,
            sockets_per_host: peak.sockets as f64 / n as f64,
            thread_cpu_shares: Vec::new(),
        },
        host_samples: got,
        expected_host_samples: expected,
        lateness: quantiles(late),
        late_or_missing_share: if expected > 0 {
            (late_1s + missing) as f64 / expected as f64
        } else {
            0.0
        },
        missing,
        freshness: quantiles(fresh),
        server_commands_per_host_per_interval: per_host_interval(srv1.commands - srv0.commands),
        server_bytes_per_host_per_interval: per_host_interval(srv1.bytes - srv0.bytes),
        connections_opened_per_host: srv1.connections as f64 / n as f64,
        scram_handshakes_per_host: srv1.authentications as f64 / n as f64,
        receiver_requests: seen.requests,
        receiver_bytes: seen.bytes,
        simulator_cpu_seconds: 0.0,
        simulator_rss_kib: 0,
        drain: None,
        scrape: None,
        peers: Vec::new(),
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!("{cpus} cores, {} GiB", mem_kib / (1 << 20))
}

/// Runs a peer script against the same hosts and reads its summary.
fn run_peer(
    o: &BenchOptions,
    hosts: &[HostInfo],
    me: &Report,
    name: &str,
    script: &Path,
) -> anyhow::Result<PeerFigures> {
    let dir = o.work_dir.join(format!("peer-{name}"));
    std::fs::create_dir_all(&dir)?;
    let hosts_file = dir.join("bench-hosts.txt");
    let hosts: Vec<String> = hosts.iter().map(|h| h.addr.to_string()).collect();
    std::fs::write(&hosts_file, hosts.join("\n") + "\n")?;
    let status = Command::new(script)
        .arg(&hosts_file)
        .arg(o.interval.as_secs().to_string())
        .arg((o.warmup + o.duration).as_secs().to_string())
        .arg(&dir)
        .env("MONGOMON_BENCH_USER", "mongomon")
        .env("MONGOMON_BENCH_PASSWORD", "bench-pw")
        // The peer is measured over the same window as the agent: after
        // the warm-up (its start-up and first gathers left out).
        .env("MONGOMON_BENCH_WARMUP_SECS", o.warmup.as_secs().to_string())
        .status()
        .with_context(|| format!("cannot run the peer script {}", script.display()))?;
    if !status.success() {
        anyhow::bail!("peer {name} failed ({status}); see {}", dir.display());
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json"))?)
            .context("the peer's summary.json")?;
    // benches/peers/peerstat.py's summary: n_hosts, hosts_reporting,
    // host_gathers_ok (one per host and gather, also for Percona's
    // /scrapeall), values_per_host_gather, log_errors, and `window`: CPU,
    // gathers and peak RSS per host inside the agent's measured window.
    let num = |k: &str| summary[k].as_f64();
    let win = |k: &str| summary["window"][k].as_f64();
    let peer_hosts = num("n_hosts").unwrap_or(hosts.len() as f64);
    let samples = win("host_gathers_ok").or_else(|| num("host_gathers_ok"));
    let cpu = win("cpu_seconds").or_else(|| num("cpu_seconds_total"));
    // A peer that collected nothing has no cost per sample to compare.
    let cpu_per = cpu.zip(samples.filter(|s| *s > 0.0)).map(|(c, s)| c / s);
    let my_cpu_per = me.agent.cpu_seconds / (me.host_samples as f64).max(1.0);
    let rss_per = win("rss_kib_per_host_max").or_else(|| {
        num("rss_mib_total_max")
            .or_else(|| num("rss_mib_total"))
            .map(|r| r * 1024.0 / peer_hosts.max(1.0))
    });
    Ok(PeerFigures {
        name: name.to_string(),
        hosts: peer_hosts as usize,
        hosts_reporting: num("hosts_reporting"),
        host_samples: samples,
        cpu_seconds_per_1000_host_samples: cpu_per.map(|c| c * 1000.0),
        rss_kib_per_host: rss_per,
        values_per_host_sample: num("values_per_host_gather"),
        log_errors: num("log_errors"),
        error: None,
        cpu_per_host_sample_ratio: cpu_per.filter(|c| *c > 0.0).map(|c| my_cpu_per / c),
        rss_per_host_ratio: rss_per
            .filter(|r| *r > 0.0)
            .map(|r| me.agent.rss_kib_per_host / r),
        summary,
    })
}

/// The report as a table for people.
pub fn render(r: &Report) -> String {
    let a = &r.agent;
    let mut s = String::new();
    let mut row = |k: &str, v: String| s.push_str(&format!("{k:<44} {v}\n"));
    row(
        "hosts (seen by the receiver)",
        format!("{} ({})", r.hosts, r.hosts_seen),
    );
    row(
        "interval / measured window",
        format!("{} s / {:.0} s", r.interval_secs, r.window_secs),
    );
    row(
        "host-samples (expected)",
        format!("{} ({})", r.host_samples, r.expected_host_samples),
    );
    row(
        "agent CPU s per 1,000 host-samples",
        format!("{:.3}", a.cpu_seconds_per_1000_host_samples),
    );
    row("agent cores used", format!("{:.3}", a.cores));
    row(
        "agent RSS total / per host",
        format!(
            "{:.1} MiB / {:.1} KiB",
            a.rss_kib as f64 / 1024.0,
            a.rss_kib_per_host
        ),
    );
    row(
        "agent threads / sockets per host",
        format!("{} / {:.2}", a.threads, a.sockets_per_host),
    );
    row(
        "agent CPU share per thread",
        a.thread_cpu_shares
            .iter()
            .map(|(name, share)| format!("{name} {:.0} %", share * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
    );
    row(
        "lateness p50 / p99 / max",
        format!(
            "{:.0} / {:.0} / {:.0} ms",
            r.lateness.p50_ms, r.lateness.p99_ms, r.lateness.max_ms
        ),
    );
    row(
        "late > 1 s or missing",
        format!(
            "{:.3} % ({} missing)",
            r.late_or_missing_share * 100.0,
            r.missing
        ),
    );
    row(
        "freshness p50 / p99",
        format!("{:.0} / {:.0} ms", r.freshness.p50_ms, r.freshness.p99_ms),
    );
    row(
        "server: commands / bytes per host per interval",
        format!(
            "{:.1} / {:.0}",
            r.server_commands_per_host_per_interval, r.server_bytes_per_host_per_interval
        ),
    );
    row(
        "server: connections / SCRAM handshakes per host",
        format!(
            "{:.2} / {:.2}",
            r.connections_opened_per_host, r.scram_handshakes_per_host
        ),
    );
    row(
        "simulator + receiver CPU s / RSS",
        format!(
            "{:.1} s / {:.1} MiB",
            r.simulator_cpu_seconds,
            r.simulator_rss_kib as f64 / 1024.0
        ),
    );
    if let Some(sc) = &r.scrape {
        row(
            "/metrics scrapes: answered (failed)",
            format!("{} ({})", sc.scrapes, sc.failures),
        );
        row(
            "/metrics scrape p50 / p99 / max",
            format!(
                "{:.0} / {:.0} / {:.0} ms",
                sc.duration.p50_ms, sc.duration.p99_ms, sc.duration.max_ms
            ),
        );
        row(
            "/metrics body / series",
            format!("{:.1} MB / {}", sc.body_bytes as f64 / 1e6, sc.series),
        );
    }
    if let Some(d) = &r.drain {
        row(
            "outage / spool bytes per host-sample",
            format!(
                "{:.0} s / {:.0} B",
                d.outage_secs, d.spool_bytes_per_host_sample
            ),
        );
        row(
            "drain: seconds, host-samples/s (ingest)",
            format!(
                "{:.1} s, {:.0}/s ({:.0}/s)",
                d.drain_secs, d.host_samples_per_sec, d.ingest_host_samples_per_sec
            ),
        );
        row(
            "drain: retry wait, transfer seconds",
            format!("{:.2} s, {:.2} s", d.resume_secs, d.transfer_secs),
        );
        row(
            "drain: transfer host-samples/s, batches/s",
            format!(
                "{:.0}/s, {:.1}/s ({:.1} MB sent)",
                d.transfer_host_samples_per_sec,
                d.batches_per_sec,
                d.backlog_bytes as f64 / 1e6
            ),
        );
    }
    for p in &r.peers {
        if let Some(e) = &p.error {
            row(&format!("peer {}", p.name), format!("no figures: {e}"));
            continue;
        }
        let f = |v: Option<f64>, digits: usize| v.map_or("n/a".into(), |x| format!("{x:.digits$}"));
        row(
            &format!("peer {}: hosts reporting", p.name),
            format!(
                "{} of {}, {} host-samples in the window",
                f(p.hosts_reporting, 0),
                p.hosts,
                f(p.host_samples, 0)
            ),
        );
        row(
            &format!("peer {}: CPU s / 1,000, RSS / host", p.name),
            format!(
                "{}, {} KiB",
                f(p.cpu_seconds_per_1000_host_samples, 3),
                f(p.rss_kib_per_host, 1)
            ),
        );
        row(
            &format!("peer {}: values / host-sample, log errors", p.name),
            format!("{}, {}", f(p.values_per_host_sample, 0), f(p.log_errors, 0)),
        );
        row(
            &format!("mongomon / {}: CPU/host-sample, RSS/host", p.name),
            format!(
                "{} , {}",
                p.cpu_per_host_sample_ratio
                    .map_or("n/a (collected nothing)".into(), |x| format!("{x:.3}×")),
                p.rss_per_host_ratio
                    .map_or("n/a".into(), |x| format!("{x:.3}×"))
            ),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_mix_adds_up_and_has_mongos() {
        for n in [100, 1000, 5000, 10_000] {
            let (parts, total) = topology(n);
            assert!(total <= n && total + 3 > n, "{n}: {total}");
            assert_eq!(parts.len(), n.div_ceil(fleet::HOSTS_PER_PROCESS), "{n}");
            let mut mongos = 0;
            for t in &parts {
                let topo = crate::sim::Topology::from_toml_str(t).unwrap();
                assert!(topo.validate().is_ok(), "{n}");
                let routers = t.matches("[[sharded_cluster.mongos]]").count();
                let sets: usize = t
                    .lines()
                    .filter_map(|l| l.strip_prefix("replica_sets = "))
                    .map(|v| v.parse::<usize>().unwrap())
                    .sum();
                let here = sets * 3 + routers + if routers > 0 { 9 } else { 0 };
                assert!(
                    here <= fleet::HOSTS_PER_PROCESS + 3,
                    "{n}: a part of {here} hosts"
                );
                mongos += routers;
            }
            assert_eq!(mongos, (n / 20).max(1), "{n}: mongos");
        }
    }

    #[test]
    fn quantiles_of_known_values() {
        let q = quantiles((1..=100).map(|x| x as f64).collect());
        assert_eq!((q.p50_ms, q.p99_ms, q.max_ms), (51.0, 99.0, 100.0));
        assert_eq!(quantiles(vec![]), Quantiles::default());
    }
}
