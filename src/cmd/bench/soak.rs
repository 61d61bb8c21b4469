//! `mongomon bench --soak-secs S --faults-every-secs F`: the long run.
//!
//! The fleet of a normal bench run (replica sets, a sharded cluster,
//! standalones), the real agent as a child process, and every F seconds
//! one fault from the fault matrix, held for half the period (at most
//! 30 s) and then cleared. The faults go to a small group of hosts set
//! apart at the start (three replica sets and one mongos) and to the
//! whole agent (the receiver refusing, SIGHUP with a good and a broken
//! file); every other host is "healthy", and what the soak proves is that
//! the healthy hosts lose nothing and the agent does not slowly grow.
//!
//! Every minute it reads the agent's RSS, open descriptors and threads
//! from `/proc`; at the end it counts, per minute, the grid points of the
//! healthy hosts that reached the receiver, and fits a line through RSS
//! and descriptors to give their drift per hour.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::fleet::Fleet;
use super::{
    agent_config, now_ms, phase_offset, proc_stat, sleep_checking, spawn_agent, start_fleet,
    stop_agent, write_config, BenchOptions, Receiver,
};
use crate::sim::{Action, FrameFault, HostInfo};

/// One minute of the soak.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Minute {
    pub minute: u64,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// Grid points of the healthy hosts due in this minute, and those
    /// that reached the receiver.
    pub healthy_due: u64,
    pub healthy_received: u64,
    /// The same for the hosts that took the faults.
    pub faulted_due: u64,
    pub faulted_received: u64,
    /// Faults started in this minute.
    pub faults: Vec<String>,
}

/// One fault as injected.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    pub at_secs: f64,
    pub fault: String,
    pub target: String,
    /// Why the simulator refused it, if it did.
    pub error: Option<String>,
}

/// The soak's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakReport {
    pub hosts: usize,
    pub healthy_hosts: usize,
    pub faulted_hosts: usize,
    pub interval_secs: u64,
    pub soak_secs: u64,
    pub faults_every_secs: u64,
    pub machine: String,
    pub date: String,
    pub minutes: Vec<Minute>,
    pub faults: Vec<FaultEvent>,
    pub rss_first_kib: u64,
    pub rss_last_kib: u64,
    pub rss_max_kib: u64,
    /// Least-squares slope over the minutes after the first.
    pub rss_drift_kib_per_hour: f64,
    pub fds_first: u64,
    pub fds_last: u64,
    pub fds_max: u64,
    pub fd_drift_per_hour: f64,
    pub threads_first: u64,
    pub threads_last: u64,
    /// Healthy hosts' grid points received over all grid points due.
    pub healthy_completeness: f64,
    /// The first healthy grid points that never arrived, as (host, due
    /// time in Unix ms): where to look when completeness is short.
    pub healthy_missing: Vec<(String, i64)>,
    pub faulted_completeness: f64,
}

/// The faults the soak cycles through, in order.
const FAULTS: [&str; 16] = [
    "host_down",
    "hang",
    "slow",
    "reset_mid_reply",
    "malformed_reply",
    "truncated_frame",
    "auth_failure",
    "command_error",
    "step_down",
    "member_added_then_removed",
    "member_hidden",
    "mongos_gone",
    "host_flapping",
    "receiver_503",
    "sighup_valid",
    "sighup_invalid",
];

/// Who takes the faults: three replica sets and a mongos.
struct Targets {
    /// Members of the first two sets: host-level faults, in turn.
    hosts: Vec<SocketAddr>,
    /// The third set: step-down, reconfig.
    set: String,
    mongos: Option<SocketAddr>,
    /// Every host set apart (the healthy ones are the rest).
    all: BTreeSet<String>,
}

fn targets(hosts: &[HostInfo]) -> anyhow::Result<Targets> {
    let mut sets: Vec<String> = hosts
        .iter()
        .filter(|h| h.cluster.is_none())
        .filter_map(|h| h.set.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    sets.truncate(3);
    if sets.len() < 3 {
        anyhow::bail!("a soak needs at least three replica sets: use --hosts 30 or more");
    }
    let members = |s: &str| -> Vec<SocketAddr> {
        hosts
            .iter()
            .filter(|h| h.set.as_deref() == Some(s))
            .map(|h| h.addr)
            .collect()
    };
    let mongos = hosts
        .iter()
        .rev()
        .find(|h| h.role == "mongos")
        .map(|h| h.addr);
    let mut all: BTreeSet<String> = sets
        .iter()
        .flat_map(|s| members(s))
        .map(|a| a.to_string())
        .collect();
    all.extend(mongos.map(|m| m.to_string()));
    Ok(Targets {
        hosts: sets[..2].iter().flat_map(|s| members(s)).collect(),
        set: sets[2].clone(),
        mongos,
        all,
    })
}

/// A fault in force, and how to end it.
struct Active {
    until: Instant,
    clear: Vec<Action>,
    receiver_down: bool,
    restore_config: bool,
    /// A host that goes down and up every few seconds until `until`.
    flapping: Option<(SocketAddr, Instant, bool)>,
}

/// Runs the soak.
pub fn run(o: &BenchOptions, soak: Duration, every: Duration) -> anyhow::Result<SoakReport> {
    let (sim, hosts) = start_fleet(o)?;
    let n = hosts.len();
    let t = targets(&hosts)?;
    let receiver = Receiver::start()?;
    let cfg_path = o.work_dir.join("mongomon.toml");
    let good_config = agent_config(&hosts, o, receiver.addr, None);
    write_config(&cfg_path, &good_config)?;
    let mut child = spawn_agent(o, &cfg_path)?;
    let pid = child.id();
    let every = every.max(Duration::from_secs(1));
    let hold = (every / 2).min(Duration::from_secs(30));
    let mut report = SoakReport {
        hosts: n,
        interval_secs: o.interval.as_secs(),
        soak_secs: soak.as_secs(),
        faults_every_secs: every.as_secs(),
        machine: super::machine(),
        date: httpdate::fmt_http_date(std::time::SystemTime::now()),
        ..SoakReport::default()
    };
    let result = (|| -> anyhow::Result<(i64, i64)> {
        sleep_checking(&mut child, o.warmup)?;
        let start_ms = now_ms();
        let t0 = Instant::now();
        let mut next_fault = t0 + every;
        let mut next_minute = t0;
        let mut active: Option<Active> = None;
        let mut turn = 0usize;
        while t0.elapsed() < soak {
            let now = Instant::now();
            if now >= next_minute {
                let m = report.minutes.len() as u64;
                let p = proc_stat(pid).unwrap_or_default();
                report.minutes.push(Minute {
                    minute: m,
                    rss_kib: p.rss_kib,
                    fds: fd_count(pid),
                    threads: p.threads,
                    ..Minute::default()
                });
                next_minute += Duration::from_secs(60);
            }
            if let Some(a) = active.as_mut() {
                if let Some((host, next, down)) = a.flapping.as_mut() {
                    if now >= *next {
                        let action = if *down {
                            Action::Up {
                                host: host.to_string(),
                            }
                        } else {
                            Action::Down {
                                host: host.to_string(),
                            }
                        };
                        let _ = sim.apply(&action);
                        *down = !*down;
                        *next = now + Duration::from_secs(3);
                    }
                }
                if now >= a.until {
                    if let Some(a) = active.take() {
                        end(&sim, &receiver, &cfg_path, &good_config, pid, a);
                    }
                }
            }
            if now >= next_fault && active.is_none() {
                let name = FAULTS[turn % FAULTS.len()];
                let host = t.hosts[turn % t.hosts.len()];
                let (target, started) =
                    begin(name, host, &t, &sim, &receiver, &cfg_path, pid, now + hold);
                report.faults.push(FaultEvent {
                    at_secs: t0.elapsed().as_secs_f64(),
                    fault: name.to_string(),
                    target,
                    error: started.as_ref().err().map(|e| format!("{e:#}")),
                });
                if let Some(m) = report.minutes.last_mut() {
                    m.faults.push(name.to_string());
                }
                active = started.ok();
                turn += 1;
                next_fault += every;
            }
            sleep_checking(&mut child, Duration::from_millis(250))?;
        }
        let end_ms = now_ms();
        if let Some(a) = active.take() {
            end(&sim, &receiver, &cfg_path, &good_config, pid, a);
        }
        // What was taken before the end may still be in a batch or the
        // spool (after a receiver fault): wait (up to 2 minutes) until
        // every healthy host's last grid point before the end arrived.
        let step = o.interval.as_millis().max(1) as i64;
        // Each healthy host with its last grid point before the end.
        let healthy: Vec<(String, i64)> = hosts
            .iter()
            .map(|h| h.addr.to_string())
            .filter(|a| !t.all.contains(a))
            .map(|a| {
                let phase = phase_offset(&a, o.interval).as_millis() as i64;
                let last = (end_ms - 1 - phase).div_euclid(step) * step + phase;
                (a, last)
            })
            .collect();
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_secs(120) {
            sleep_checking(&mut child, Duration::from_millis(500))?;
            receiver.settle(Duration::from_secs(10));
            let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
            let arrived = |(h, last): &(String, i64)| {
                seen.samples
                    .get(h)
                    .is_some_and(|v| v.iter().any(|(ts, _)| *ts >= last - step / 2))
            };
            if healthy.iter().all(arrived) {
                break;
            }
        }
        Ok((start_ms, end_ms))
    })();
    stop_agent(&mut child);
    let (start_ms, end_ms) = result?;
    count(&mut report, o, &hosts, &t.all, &receiver, start_ms, end_ms);
    Ok(report)
}

/// Starts fault `name`; returns what it hit and how to end it.
#[allow(clippy::too_many_arguments)]
fn begin(
    name: &str,
    host: SocketAddr,
    t: &Targets,
    sim: &Fleet,
    receiver: &Receiver,
    cfg: &Path,
    pid: u32,
    until: Instant,
) -> (String, anyhow::Result<Active>) {
    let h = host.to_string();
    let mut a = Active {
        until,
        clear: Vec::new(),
        receiver_down: false,
        restore_config: false,
        flapping: None,
    };
    let on_host = |on: Action, off: Action| -> anyhow::Result<Vec<Action>> {
        sim.apply(&on)?;
        Ok(vec![off])
    };
    let host_fault = |name: &str| -> anyhow::Result<Vec<Action>> {
        match name {
            "host_down" => on_host(
                Action::Down { host: h.clone() },
                Action::Up { host: h.clone() },
            ),
            "hang" => on_host(
                Action::Hang {
                    host: h.clone(),
                    on: true,
                },
                Action::Hang {
                    host: h.clone(),
                    on: false,
                },
            ),
            // Above the bench's 5 s command timeout.
            "slow" => on_host(
                Action::Slow {
                    host: h.clone(),
                    millis: 7_000,
                },
                Action::Slow {
                    host: h.clone(),
                    millis: 0,
                },
            ),
            "reset_mid_reply" => on_host(
                Action::ResetMidReply {
                    host: h.clone(),
                    on: true,
                },
                Action::ResetMidReply {
                    host: h.clone(),
                    on: false,
                },
            ),
            "malformed_reply" => on_host(
                Action::MalformedReply {
                    host: h.clone(),
                    on: true,
                },
                Action::MalformedReply {
                    host: h.clone(),
                    on: false,
                },
            ),
            "truncated_frame" => on_host(
                Action::FrameFault {
                    host: h.clone(),
                    fault: FrameFault::Truncated,
                },
                Action::FrameFault {
                    host: h.clone(),
                    fault: FrameFault::None,
                },
            ),
            "auth_failure" => on_host(
                Action::AuthFailure {
                    host: h.clone(),
                    on: true,
                },
                Action::AuthFailure {
                    host: h.clone(),
                    on: false,
                },
            ),
            "command_error" => on_host(
                Action::CommandError {
                    host: h.clone(),
                    command: "serverStatus".into(),
                    code: 13,
                    errmsg: None,
                },
                Action::ClearCommandError {
                    host: h.clone(),
                    command: "serverStatus".into(),
                },
            ),
            other => anyhow::bail!("unknown host fault {other}"),
        }
    };
    let result = (|| -> anyhow::Result<String> {
        match name {
            "step_down" => {
                sim.apply(&Action::StepDown {
                    set: t.set.clone(),
                    new_primary: None,
                })?;
                Ok(format!("set {}", t.set))
            }
            "member_added_then_removed" => {
                let before = set_members(sim, &t.set);
                sim.apply(&Action::AddMember {
                    set: t.set.clone(),
                    host: None,
                    hidden: false,
                    priority: 1.0,
                    arbiter_only: false,
                })?;
                let added = set_members(sim, &t.set)
                    .into_iter()
                    .find(|m| !before.contains(m))
                    .context("the added member is not listed")?;
                a.clear.push(Action::RemoveMember {
                    set: t.set.clone(),
                    host: added.clone(),
                });
                Ok(format!("set {} member {added}", t.set))
            }
            "member_hidden" => {
                // A member of the faulted sets, so the healthy count does
                // not depend on whether hidden members stay watched.
                let set = t.hosts_set(sim, host);
                sim.apply(&Action::SetHidden {
                    set: set.clone(),
                    host: h.clone(),
                    hidden: true,
                })?;
                a.clear.push(Action::SetHidden {
                    set: set.clone(),
                    host: h.clone(),
                    hidden: false,
                });
                Ok(format!("set {set} member {h}"))
            }
            "mongos_gone" => {
                let m = t.mongos.context("no mongos in this fleet")?.to_string();
                sim.apply(&Action::Down { host: m.clone() })?;
                a.clear.push(Action::Up { host: m.clone() });
                Ok(m)
            }
            "host_flapping" => {
                sim.apply(&Action::Down { host: h.clone() })?;
                a.flapping = Some((host, Instant::now() + Duration::from_secs(3), true));
                a.clear.push(Action::Up { host: h.clone() });
                Ok(h.clone())
            }
            "receiver_503" => {
                receiver.down.store(true, Ordering::Relaxed);
                a.receiver_down = true;
                Ok("receiver".into())
            }
            "sighup_valid" => {
                // The same file again: a reload that changes nothing.
                let text = std::fs::read(cfg)?;
                std::fs::write(cfg, text)?;
                hup(pid);
                Ok("agent".into())
            }
            "sighup_invalid" => {
                std::fs::write(cfg, "[agent\ninterval_secs = \"soon\"\n")?;
                hup(pid);
                a.restore_config = true;
                Ok("agent".into())
            }
            other => {
                a.clear = host_fault(other)?;
                Ok(h.clone())
            }
        }
    })();
    match result {
        Ok(target) => (target, Ok(a)),
        Err(e) => (h, Err(e)),
    }
}

impl Targets {
    /// The faulted set `host` belongs to.
    fn hosts_set(&self, sim: &Fleet, host: SocketAddr) -> String {
        sim.hosts()
            .into_iter()
            .find(|h| h.addr == host)
            .and_then(|h| h.set)
            .unwrap_or_else(|| self.set.clone())
    }
}

fn set_members(sim: &Fleet, set: &str) -> Vec<String> {
    sim.hosts()
        .into_iter()
        .filter(|h| h.set.as_deref() == Some(set))
        .map(|h| h.addr.to_string())
        .collect()
}

/// Ends a fault (errors are not expected: the actions undo what worked).
fn end(sim: &Fleet, receiver: &Receiver, cfg: &Path, good: &str, pid: u32, a: Active) {
    for action in &a.clear {
        if let Err(e) = sim.apply(action) {
            eprintln!("soak: clearing a fault failed: {e:#}");
        }
    }
    if a.receiver_down {
        receiver.down.store(false, Ordering::Relaxed);
    }
    if a.restore_config {
        if let Err(e) = std::fs::write(cfg, good) {
            eprintln!("soak: cannot restore the configuration: {e}");
        }
        hup(pid);
    }
}

fn hup(pid: u32) {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(pid as i32, libc::SIGHUP);
    }
}

/// Open descriptors of `pid`.
pub fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Fills in completeness per minute and the drifts.
fn count(
    r: &mut SoakReport,
    o: &BenchOptions,
    hosts: &[HostInfo],
    faulted: &BTreeSet<String>,
    receiver: &Receiver,
    start_ms: i64,
    end_ms: i64,
) {
    let interval = o.interval.as_millis().max(1) as i64;
    let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
    // Grid points received, by host: index k of k × interval + phase.
    let mut received: HashMap<String, BTreeSet<i64>> = HashMap::new();
    for (host, samples) in &seen.samples {
        let phase = phase_offset(host, o.interval).as_millis() as i64;
        let set = received.entry(host.clone()).or_default();
        for (ts, _) in samples {
            set.insert((ts - phase + interval / 2).div_euclid(interval));
        }
    }
    let minutes = r.minutes.len();
    for h in hosts {
        let addr = h.addr.to_string();
        let is_faulted = faulted.contains(&addr);
        let phase = phase_offset(&addr, o.interval).as_millis() as i64;
        let got = received.get(&addr);
        // The first grid point after the start, then every interval until
        // the end.
        let mut k = (start_ms - phase).div_euclid(interval) + 1;
        while k * interval + phase < end_ms {
            let due = k * interval + phase;
            let m = ((due - start_ms) / 60_000) as usize;
            if m < minutes {
                let hit = got.is_some_and(|g| g.contains(&k)) as u64;
                let row = &mut r.minutes[m];
                if is_faulted {
                    row.faulted_due += 1;
                    row.faulted_received += hit;
                } else {
                    row.healthy_due += 1;
                    row.healthy_received += hit;
                    if hit == 0 && r.healthy_missing.len() < 20 {
                        r.healthy_missing.push((addr.clone(), due));
                    }
                }
            }
            k += 1;
        }
    }
    r.faulted_hosts = hosts
        .iter()
        .filter(|h| faulted.contains(&h.addr.to_string()))
        .count();
    r.healthy_hosts = hosts.len() - r.faulted_hosts;
    let sum = |f: fn(&Minute) -> u64| r.minutes.iter().map(f).sum::<u64>();
    let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    r.healthy_completeness = share(sum(|m| m.healthy_received), sum(|m| m.healthy_due));
    r.faulted_completeness = share(sum(|m| m.faulted_received), sum(|m| m.faulted_due));
    if let (Some(first), Some(last)) = (r.minutes.first(), r.minutes.last()) {
        r.rss_first_kib = first.rss_kib;
        r.rss_last_kib = last.rss_kib;
        r.fds_first = first.fds;
        r.fds_last = last.fds;
        r.threads_first = first.threads;
        r.threads_last = last.threads;
    }
    r.rss_max_kib = r.minutes.iter().map(|m| m.rss_kib).max().unwrap_or(0);
    r.fds_max = r.minutes.iter().map(|m| m.fds).max().unwrap_or(0);
    // The first minute holds the start-up; the slope is over the rest.
    let tail: Vec<&Minute> = r.minutes.iter().skip(1).collect();
    r.rss_drift_kib_per_hour = slope_per_hour(&tail, |m| m.rss_kib as f64);
    r.fd_drift_per_hour = slope_per_hour(&tail, |m| m.fds as f64);
}

/// Least-squares slope of `f` over the minutes, per hour (0 for fewer
/// than two points).
fn slope_per_hour(ms: &[&Minute], f: impl Fn(&Minute) -> f64) -> f64 {
    if ms.len() < 2 {
        return 0.0;
    }
    let n = ms.len() as f64;
    let xs: Vec<f64> = ms.iter().map(|m| m.minute as f64).collect();
    let ys: Vec<f64> = ms.iter().map(|m| f(m)).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

/// The soak's table.
pub fn render(r: &SoakReport) -> String {
    let mut s = format!(
        "soak: {} hosts ({} healthy, {} taking faults), interval {} s, {} s with a fault every {} s\n\
         {}\n\n\
         {:>6} {:>9} {:>6} {:>8} {:>10} {:>10}  faults started\n",
        r.hosts,
        r.healthy_hosts,
        r.faulted_hosts,
        r.interval_secs,
        r.soak_secs,
        r.faults_every_secs,
        r.machine,
        "minute",
        "RSS MiB",
        "fds",
        "threads",
        "healthy %",
        "faulted %",
    );
    let pct = |a: u64, b: u64| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", 100.0 * a as f64 / b as f64)
        }
    };
    for m in &r.minutes {
        s.push_str(&format!(
            "{:>6} {:>9.1} {:>6} {:>8} {:>10} {:>10}  {}\n",
            m.minute,
            m.rss_kib as f64 / 1024.0,
            m.fds,
            m.threads,
            pct(m.healthy_received, m.healthy_due),
            pct(m.faulted_received, m.faulted_due),
            m.faults.join(", "),
        ));
    }
    let refused: Vec<String> = r
        .faults
        .iter()
        .filter_map(|f| f.error.as_ref().map(|e| format!("{} ({e})", f.fault)))
        .collect();
    s.push_str(&format!(
        "\nRSS: first {:.1} MiB, last {:.1} MiB, max {:.1} MiB, drift {:+.2} MiB/hour\n\
         descriptors: first {}, last {}, max {}, drift {:+.1}/hour\n\
         threads: first {}, last {}\n\
         completeness: healthy hosts {:.4} %, hosts taking faults {:.2} %\n\
         faults injected: {}{}\n",
        r.rss_first_kib as f64 / 1024.0,
        r.rss_last_kib as f64 / 1024.0,
        r.rss_max_kib as f64 / 1024.0,
        r.rss_drift_kib_per_hour / 1024.0,
        r.fds_first,
        r.fds_last,
        r.fds_max,
        r.fd_drift_per_hour,
        r.threads_first,
        r.threads_last,
        100.0 * r.healthy_completeness,
        100.0 * r.faulted_completeness,
        r.faults.len(),
        if refused.is_empty() {
            String::new()
        } else {
            format!(" (refused by the simulator: {})", refused.join("; "))
        },
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_the_least_squares_slope_per_hour() {
        let ms: Vec<Minute> = (0..10)
            .map(|i| Minute {
                minute: i,
                rss_kib: 1_000 + 2 * i,
                ..Minute::default()
            })
            .collect();
        let refs: Vec<&Minute> = ms.iter().collect();
        let d = slope_per_hour(&refs, |m| m.rss_kib as f64);
        assert!((d - 120.0).abs() < 1e-9, "{d}");
        assert_eq!(slope_per_hour(&refs[..1], |m| m.rss_kib as f64), 0.0);
        let flat: Vec<Minute> = (0..5)
            .map(|i| Minute {
                minute: i,
                fds: 7,
                ..Minute::default()
            })
            .collect();
        let refs: Vec<&Minute> = flat.iter().collect();
        assert_eq!(slope_per_hour(&refs, |m| m.fds as f64), 0.0);
    }
}
