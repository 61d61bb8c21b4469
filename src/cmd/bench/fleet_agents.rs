//! `bench --fleet-agents K`: K agents share the simulated hosts through a
//! 3-member etcd cluster the bench starts (Debian's etcd), each sending to
//! a receiver of its own so that every sample says who took it.
//!
//! Measured, in one run: each agent's CPU and RSS over the window, the
//! fleet's completeness (host-samples expected, taken once, taken twice),
//! etcd requests per agent per minute in steady state (the agents' own
//! `fleet_etcd_requests` counter); then one agent is killed with SIGKILL
//! and the bench measures how long each of its hosts went unsampled (its
//! last sample by the dead agent to its first by a survivor) and how many
//! host-samples were taken twice around the hand-off. Last, a single agent
//! alone over N/K hosts runs on the same simulator, for the per-agent
//! ratios.

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::etcd::EtcdCluster;
use super::{
    agent_config, now_ms, proc_stat, quantiles, sleep_checking, spawn_agent, stop_agent,
    BenchOptions, ProcStat, Quantiles, Receiver,
};
use crate::sim::HostInfo;

/// One agent of the fleet over the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetAgentFigures {
    pub agent_id: String,
    pub hosts_owned: u64,
    pub cpu_seconds: f64,
    pub cores: f64,
    pub rss_kib: u64,
    pub etcd_requests_per_minute: f64,
}

/// What `bench --fleet-agents` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetReport {
    pub hosts: usize,
    pub agents: usize,
    pub interval_secs: u64,
    pub lease_ttl_secs: u64,
    pub window_secs: f64,
    pub per_agent: Vec<FleetAgentFigures>,
    pub expected_host_samples: u64,
    pub host_samples: u64,
    /// Host-samples beyond one per host and grid point, in the window.
    pub duplicate_host_samples: u64,
    pub missing_host_samples: u64,
    /// After SIGKILL of one agent: per moved host, last sample by the dead
    /// agent to the first by a survivor.
    pub moved_hosts: usize,
    pub rehoming: Quantiles,
    /// Host-samples taken twice from the kill until the end, per moved host.
    pub duplicates_per_handoff: f64,
    /// The same hosts' share (N/K) watched by one agent alone, same run.
    pub single_agent_hosts: usize,
    pub single_agent_cpu_seconds_per_1000_host_samples: f64,
    pub single_agent_cores: f64,
    pub single_agent_rss_kib: u64,
    /// Mean per fleet agent / the single agent.
    pub cores_ratio: f64,
    pub rss_ratio: f64,
}

struct Member {
    child: Child,
    receiver: Receiver,
    cpu0: f64,
    peak: ProcStat,
}

/// The newest value of `field` in an agent's own lines, and the one at or
/// before `at_ms`.
fn agent_field(receiver: &Receiver, field: &str, at_ms: Option<i64>) -> Option<f64> {
    let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.agent_lines
        .iter()
        .filter(|(t, _)| at_ms.is_none_or(|a| *t <= a))
        .max_by_key(|(t, _)| *t)
        .and_then(|(_, f)| {
            f.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == field)
                    .then(|| v.trim_end_matches('i').parse::<f64>().ok())
                    .flatten()
            })
        })
}

/// Every sample of the run: host → [(sample ms, agent index)], sorted.
fn samples(members: &[Member]) -> HashMap<String, Vec<(i64, usize)>> {
    let mut out: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        let seen = m.receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
        for (h, v) in &seen.samples {
            out.entry(h.clone())
                .or_default()
                .extend(v.iter().map(|(t, _)| (*t, i)));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Samples of one host closer than half an interval to the one before.
fn doubles(v: &[(i64, usize)], interval_ms: i64) -> u64 {
    v.windows(2)
        .filter(|w| w[1].0 - w[0].0 < interval_ms / 2)
        .count() as u64
}

pub fn run(o: &BenchOptions, agents: usize, ttl_secs: u64) -> anyhow::Result<FleetReport> {
    // Held to the end: the simulator stops when it is dropped.
    let (_sim, hosts) = super::start_fleet(o)?;
    let n = hosts.len();
    let etcd = EtcdCluster::start(3, &o.work_dir.join("etcd"))?;
    let interval_ms = o.interval.as_millis() as i64;
    let mut members = Vec::new();
    for i in 0..agents {
        let mut oi = o.clone();
        oi.work_dir = o.work_dir.join(format!("agent-{i}"));
        std::fs::create_dir_all(&oi.work_dir)?;
        let receiver = Receiver::start()?;
        let cfg = oi.work_dir.join("mongomon.toml");
        let text = agent_config(&hosts, &oi, receiver.addr, None).replace(
            "name = \"bench\"",
            &format!("name = \"bench-{i}\""),
        ) + &format!(
            "[fleet]\netcd_endpoints = {}\nname = \"bench\"\nagent_id = \"bench-{i}\"\nlease_ttl_secs = {ttl_secs}\n",
            etcd.endpoints_toml()
        );
        std::fs::write(&cfg, text)?;
        std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let child = spawn_agent(&oi, &cfg)?;
        members.push(Member {
            child,
            receiver,
            cpu0: 0.0,
            peak: ProcStat::default(),
        });
    }
    let result = measure(o, &hosts, n, &mut members, interval_ms, ttl_secs);
    for m in &mut members {
        stop_agent(&mut m.child);
    }
    drop(etcd);
    let mut report = result?;
    // One agent alone over the share of one, on the same simulator.
    let share: Vec<HostInfo> = hosts.iter().take(n / agents.max(1)).cloned().collect();
    let single = single_agent(o, &share)?;
    report.single_agent_hosts = share.len();
    report.single_agent_cpu_seconds_per_1000_host_samples = single.0;
    report.single_agent_cores = single.1;
    report.single_agent_rss_kib = single.2;
    let k = report.per_agent.len().max(1) as f64;
    let mean_cores = report.per_agent.iter().map(|a| a.cores).sum::<f64>() / k;
    let mean_rss = report
        .per_agent
        .iter()
        .map(|a| a.rss_kib as f64)
        .sum::<f64>()
        / k;
    report.cores_ratio = mean_cores / single.1.max(1e-9);
    report.rss_ratio = mean_rss / (single.2 as f64).max(1.0);
    Ok(report)
}

fn measure(
    o: &BenchOptions,
    hosts: &[HostInfo],
    n: usize,
    members: &mut [Member],
    interval_ms: i64,
    ttl_secs: u64,
) -> anyhow::Result<FleetReport> {
    for m in members.iter_mut() {
        sleep_checking(&mut m.child, Duration::ZERO)?;
    }
    std::thread::sleep(o.warmup);
    let from = now_ms();
    for m in members.iter_mut() {
        m.cpu0 = proc_stat(m.child.id())
            .context("agent vanished")?
            .cpu_seconds;
    }
    let t0 = Instant::now();
    while t0.elapsed() < o.duration {
        std::thread::sleep(Duration::from_secs(1).min(o.duration));
        for m in members.iter_mut() {
            sleep_checking(&mut m.child, Duration::ZERO)?;
            m.peak.observe(m.child.id());
        }
    }
    let window = t0.elapsed().as_secs_f64();
    let to = now_ms();
    // Let the window's last batches arrive.
    std::thread::sleep(Duration::from_secs(3));
    for m in members.iter() {
        m.receiver.settle(Duration::from_secs(60));
    }
    let mut per_agent = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let req = |at| agent_field(&m.receiver, "fleet_etcd_requests", Some(at));
        let rate = match (req(from), req(to)) {
            (Some(a), Some(b)) => (b - a) / (window / 60.0),
            _ => 0.0,
        };
        let cpu = m.peak.cpu_seconds - m.cpu0;
        per_agent.push(FleetAgentFigures {
            agent_id: format!("bench-{i}"),
            hosts_owned: agent_field(&m.receiver, "hosts_owned", Some(to)).unwrap_or(0.0) as u64,
            cpu_seconds: cpu,
            cores: cpu / window,
            rss_kib: m.peak.rss_kib,
            etcd_requests_per_minute: rate,
        });
    }
    // Completeness over the window: one sample per host and grid point.
    let all = samples(members);
    let (mut expected, mut got, mut dup) = (0u64, 0u64, 0u64);
    let slack = 3_000.min(interval_ms);
    for h in hosts {
        let addr = h.addr.to_string();
        let due = ((to - slack - from) / interval_ms).max(0) as u64;
        expected += due;
        let v: Vec<(i64, usize)> = all
            .get(&addr)
            .map(|v| {
                v.iter()
                    .filter(|(t, _)| *t >= from && *t < to - slack)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let d = doubles(&v, interval_ms);
        dup += d;
        got += (v.len() as u64 - d).min(due);
    }
    // Kill one agent that does not lead (the leader's death also moves
    // discovery; this measures the hosts' hand-off).
    let victim = (0..members.len())
        .find(|&i| agent_field(&members[i].receiver, "fleet_leader", None) == Some(0.0))
        .unwrap_or(0);
    let killed = now_ms();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(members[victim].child.id() as i32, libc::SIGKILL);
    }
    let _ = members[victim].child.wait();
    std::thread::sleep(Duration::from_millis(
        ttl_secs * 1000 + 4 * interval_ms as u64 + 3_000,
    ));
    for m in members.iter() {
        m.receiver.settle(Duration::from_secs(60));
    }
    let all = samples(members);
    let (mut gaps, mut moved_dups, mut moved) = (Vec::new(), 0u64, 0usize);
    for v in all.values() {
        let Some(last) = v
            .iter()
            .filter(|(t, a)| *a == victim && *t >= killed - 2 * interval_ms)
            .map(|(t, _)| *t)
            .max()
        else {
            continue;
        };
        moved += 1;
        if let Some(first) = v
            .iter()
            .filter(|(t, a)| *a != victim && *t > last)
            .map(|(t, _)| *t)
            .min()
        {
            gaps.push((first - last) as f64);
        }
        let after: Vec<(i64, usize)> = v
            .iter()
            .filter(|(t, _)| *t >= killed - interval_ms)
            .copied()
            .collect();
        moved_dups += doubles(&after, interval_ms);
    }
    Ok(FleetReport {
        hosts: n,
        agents: members.len(),
        interval_secs: o.interval.as_secs(),
        lease_ttl_secs: ttl_secs,
        window_secs: window,
        per_agent,
        expected_host_samples: expected,
        host_samples: got,
        duplicate_host_samples: dup,
        missing_host_samples: expected.saturating_sub(got),
        moved_hosts: moved,
        rehoming: quantiles(gaps),
        duplicates_per_handoff: moved_dups as f64 / moved.max(1) as f64,
        ..FleetReport::default()
    })
}

/// One agent alone over `share`: (CPU s per 1,000 host-samples, cores,
/// peak RSS KiB).
fn single_agent(o: &BenchOptions, share: &[HostInfo]) -> anyhow::Result<(f64, f64, u64)> {
    let mut oi = o.clone();
    oi.work_dir = o.work_dir.join("single");
    std::fs::create_dir_all(&oi.work_dir)?;
    let receiver = Receiver::start()?;
    let cfg = oi.work_dir.join("mongomon.toml");
    std::fs::write(&cfg, agent_config(share, &oi, receiver.addr, None))?;
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut child = spawn_agent(&oi, &cfg)?;
    let r = (|| -> anyhow::Result<(f64, f64, u64)> {
        sleep_checking(&mut child, o.warmup)?;
        let cpu0 = proc_stat(child.id()).context("agent vanished")?.cpu_seconds;
        let from = now_ms();
        let t0 = Instant::now();
        let mut peak = ProcStat::default();
        while t0.elapsed() < o.duration {
            sleep_checking(&mut child, Duration::from_secs(1).min(o.duration))?;
            peak.observe(child.id());
        }
        let window = t0.elapsed().as_secs_f64();
        let to = now_ms();
        std::thread::sleep(Duration::from_secs(3));
        receiver.settle(Duration::from_secs(60));
        let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
        let got: usize = seen
            .samples
            .values()
            .map(|v| v.iter().filter(|(t, _)| *t >= from && *t < to).count())
            .sum();
        let cpu = peak.cpu_seconds - cpu0;
        Ok((
            cpu / (got.max(1) as f64 / 1000.0),
            cpu / window,
            peak.rss_kib,
        ))
    })();
    stop_agent(&mut child);
    r
}

pub fn render(r: &FleetReport) -> String {
    let mut out = format!(
        "fleet: {} agents over {} hosts at {} s (lease TTL {} s), window {:.0} s\n",
        r.agents, r.hosts, r.interval_secs, r.lease_ttl_secs, r.window_secs
    );
    out.push_str("AGENT     HOSTS  CORES   RSS_MIB  ETCD_REQ/MIN\n");
    for a in &r.per_agent {
        out.push_str(&format!(
            "{:<8}  {:<5}  {:<6.3}  {:<7.1}  {:.1}\n",
            a.agent_id,
            a.hosts_owned,
            a.cores,
            a.rss_kib as f64 / 1024.0,
            a.etcd_requests_per_minute
        ));
    }
    out.push_str(&format!(
        "host-samples: {} of {} expected, {} missing, {} taken twice\n",
        r.host_samples, r.expected_host_samples, r.missing_host_samples, r.duplicate_host_samples
    ));
    out.push_str(&format!(
        "kill -9 of one agent: {} hosts moved, re-homing p50 {:.0} ms, max {:.0} ms; {:.2} duplicate host-samples per hand-off\n",
        r.moved_hosts, r.rehoming.p50_ms, r.rehoming.max_ms, r.duplicates_per_handoff
    ));
    out.push_str(&format!(
        "one agent alone over {} hosts: {:.3} cores, {:.1} MiB, {:.3} CPU-s per 1,000 host-samples; fleet agent / single: cores {:.2}x, RSS {:.2}x\n",
        r.single_agent_hosts,
        r.single_agent_cores,
        r.single_agent_rss_kib as f64 / 1024.0,
        r.single_agent_cpu_seconds_per_1000_host_samples,
        r.cores_ratio,
        r.rss_ratio
    ));
    out
}
