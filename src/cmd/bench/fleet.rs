//! The simulated fleet of a bench run: in this process for small runs, or
//! split over `mongomon sim` child processes when one process would need
//! more descriptors than it may have (a listener and the agent's
//! connection per host, plus a peer's).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::sim::server::Totals;
use crate::sim::{HostInfo, SimHandle, Simulator, Topology};

/// Hosts one simulator process serves at most: each costs its listener and
/// the agent's socket (2 descriptors), and up to 3 more for a peer such as
/// Telegraf; 3,000 × 5 stays under 18,000 with room for the runtime.
pub const HOSTS_PER_PROCESS: usize = 3_000;

pub enum Fleet {
    Local(SimHandle),
    Split(Vec<SimProcess>),
}

/// One `mongomon sim` child and its control endpoint.
pub struct SimProcess {
    child: Child,
    control: SocketAddr,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // Our own child, by pid: SIGTERM, then wait for it.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Fleet {
    /// Starts the fleet described by `toml` parts: one process per part
    /// when there are several, in this process when there is one.
    pub fn start(parts: &[String], work_dir: &std::path::Path) -> anyhow::Result<Fleet> {
        if parts.len() == 1 {
            let sim =
                Simulator::start(Topology::from_toml_str(&parts[0]).context("bench topology")?)
                    .context("cannot start the simulator")?;
            return Ok(Fleet::Local(sim));
        }
        let exe = std::env::current_exe().context("cannot find the mongomon binary")?;
        let mut procs = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            // Checked here, so a bad part fails before any child starts.
            Topology::from_toml_str(part).context("bench topology")?;
            let path = work_dir.join(format!("sim-{i}.toml"));
            std::fs::write(&path, part)?;
            let mut child = Command::new(&exe)
                .arg("sim")
                .arg("--topology")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("cannot start a simulator process")?;
            let out = child.stdout.take().context("simulator stdout")?;
            let mut control = None;
            let mut ready = false;
            for line in BufReader::new(out).lines() {
                let line = line?;
                if let Some(rest) = line.strip_prefix("control endpoint: http://") {
                    control = rest.split('/').next().and_then(|a| a.parse().ok());
                }
                if line.starts_with("serving ") {
                    ready = true;
                    break;
                }
            }
            let Some(control) = control.filter(|_| ready) else {
                let _ = child.kill();
                let _ = child.wait();
                bail!("simulator process {i} did not start (see its errors above)");
            };
            procs.push(SimProcess { child, control });
        }
        Ok(Fleet::Split(procs))
    }

    pub fn hosts(&self) -> Vec<HostInfo> {
        match self {
            Fleet::Local(sim) => sim.hosts(),
            Fleet::Split(procs) => procs
                .iter()
                .flat_map(|p| {
                    get(p.control, "/hosts")
                        .ok()
                        .and_then(|b| serde_json::from_str::<Vec<HostInfo>>(&b).ok())
                        .unwrap_or_default()
                })
                .collect(),
        }
    }

    pub fn totals(&self) -> Totals {
        match self {
            Fleet::Local(sim) => sim.totals(),
            Fleet::Split(procs) => procs
                .iter()
                .filter_map(|p| {
                    get(p.control, "/counters")
                        .ok()
                        .and_then(|b| serde_json::from_str::<Totals>(&b).ok())
                })
                .fold(Totals::default(), |a, b| Totals {
                    commands: a.commands + b.commands,
                    bytes: a.bytes + b.bytes,
                    connections: a.connections + b.connections,
                    authentications: a.authentications + b.authentications,
                }),
        }
    }

    /// Applies a fault or topology change: in this process, or through the
    /// control endpoint of each simulator process until one knows the host
    /// (or set, or cluster) it names.
    pub fn apply(&self, action: &crate::sim::topology::Action) -> anyhow::Result<()> {
        match self {
            Fleet::Local(sim) => sim
                .apply(action.clone())
                .map_err(|e| anyhow::anyhow!("{e}")),
            Fleet::Split(procs) => {
                let body = serde_json::to_string(action)?;
                let mut last = None;
                for p in procs {
                    match post(p.control, "/action", &body) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| anyhow::anyhow!("no simulator process")))
            }
        }
    }

    /// CPU seconds and RSS of the simulator processes (0 when in process:
    /// the bench's own figures cover it).
    pub fn children_stat(&self) -> (f64, u64) {
        match self {
            Fleet::Local(_) => (0.0, 0),
            Fleet::Split(procs) => procs
                .iter()
                .filter_map(|p| super::proc_stat(p.child.id()))
                .fold((0.0, 0), |(c, r), s| (c + s.cpu_seconds, r + s.rss_kib)),
        }
    }
}

/// A JSON POST to a simulator's control endpoint; an error carries the
/// simulator's reason.
fn post(addr: SocketAddr, path: &str, body: &str) -> anyhow::Result<()> {
    match super::loopback_http(addr, path, Some(body), Duration::from_secs(30))? {
        (200, _) => Ok(()),
        (_, answer) => bail!("{addr}{path}: {answer}"),
    }
}

/// A plain HTTP GET to a simulator's control endpoint (loopback).
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    match super::loopback_http(addr, path, None, Duration::from_secs(30)) {
        Ok((200, body)) => Ok(body),
        _ => bail!("{addr}{path}: unexpected answer"),
    }
}
