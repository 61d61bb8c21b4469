//! The fault matrix (issue 15): every fault the agent survives, driven by
//! one table, `tests/fault_matrix.toml`. Each stage below is one scenario
//! that injects the rows of its stage side by side (each row on hosts or
//! upload targets of its own), measures each row, checks the row's
//! expectation, and prints its part of the table with what it measured
//! (also written to `$CARGO_TARGET_TMPDIR/fault_matrix/<stage>.txt`).
//! A row without a runner, or a runner without a row, fails the test.
//!
//! The real agent binary runs every stage; the hosts are the wire
//! simulator (faults no real server can be made to show on demand), the
//! receivers are scripted HTTP servers, the proxy is tinyproxy, the clock
//! jump is libfaketime's.

mod common;
mod sim_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::receiver::{Receiver, Request};
use common::{signal, wait_for, Agent};
use mongomon::sim::{Action, FrameFault};
use serde::Deserialize;

// ---- the table ----------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: String,
    stage: String,
    fault: String,
    injected: String,
    expect: String,
    measures: String,
    #[serde(default)]
    error_kind: Option<String>,
    #[serde(default)]
    within_secs: Option<f64>,
    #[serde(default)]
    recover_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    row: Vec<Row>,
}

const STAGES: [&str; 5] = ["hosts", "topology", "receiver", "spool", "process"];

fn table() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fault_matrix.toml");
    let text = std::fs::read_to_string(path).expect("tests/fault_matrix.toml");
    toml::from_str::<Table>(&text)
        .expect("tests/fault_matrix.toml parses")
        .row
}

fn rows(stage: &str) -> Vec<Row> {
    table().into_iter().filter(|r| r.stage == stage).collect()
}

fn row<'a>(rows: &'a [Row], id: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("row {id} is not in tests/fault_matrix.toml"))
}

/// What a runner found for one row.
struct Outcome {
    id: String,
    measured: String,
    /// Why the expectation does not hold, if it does not.
    failed: Option<String>,
}

/// Collects the outcomes of one stage.
struct Results {
    stage: &'static str,
    rows: Vec<Row>,
    outcomes: Vec<Outcome>,
}

impl Results {
    fn new(stage: &'static str) -> Results {
        Results {
            stage,
            rows: rows(stage),
            outcomes: Vec::new(),
        }
    }

    fn row(&self, id: &str) -> Row {
        row(&self.rows, id).clone()
    }

    /// Records a row: `failed` is `None` when its expectation holds.
    fn record(&mut self, id: &str, measured: String, failed: Option<String>) {
        assert!(
            self.rows.iter().any(|r| r.id == id),
            "runner {id} of stage {} has no row in tests/fault_matrix.toml",
            self.stage
        );
        self.outcomes.push(Outcome {
            id: id.to_string(),
            measured,
            failed,
        });
    }

    /// Prints the stage's part of the table and fails on any row that did
    /// not hold or was not run.
    fn finish(self) {
        let mut out = format!("fault matrix, stage {}\n", self.stage);
        out.push_str(&format!(
            "{:<22} {:<6} {:<34} {}\n",
            "row", "result", "fault", "measured"
        ));
        let mut problems = Vec::new();
        for r in &self.rows {
            match self.outcomes.iter().find(|o| o.id == r.id) {
                Some(o) => {
                    out.push_str(&format!(
                        "{:<22} {:<6} {:<34} {}\n",
                        r.id,
                        if o.failed.is_none() { "ok" } else { "FAILED" },
                        r.fault,
                        o.measured
                    ));
                    if let Some(why) = &o.failed {
                        problems.push(format!(
                            "{}: expected {}; {why} (injected: {})",
                            r.id, r.expect, r.injected
                        ));
                    }
                }
                None => {
                    out.push_str(&format!("{:<22} NOT RUN\n", r.id));
                    problems.push(format!("{}: no runner in stage {}", r.id, self.stage));
                }
            }
        }
        println!("{out}");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault_matrix");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{}.txt", self.stage)), &out);
        assert!(problems.is_empty(), "{out}\n{}", problems.join("\n"));
    }
}

#[test]
fn the_table_names_known_stages_and_unique_rows() {
    let t = table();
    let mut ids = BTreeSet::new();
    for r in &t {
        assert!(ids.insert(r.id.clone()), "row {} appears twice", r.id);
        assert!(
            STAGES.contains(&r.stage.as_str()),
            "row {}: unknown stage {} (known: {STAGES:?})",
            r.id,
            r.stage
        );
        for (what, v) in [
            ("fault", &r.fault),
            ("injected", &r.injected),
            ("expect", &r.expect),
            ("measures", &r.measures),
        ] {
            assert!(!v.trim().is_empty(), "row {}: {what} is empty", r.id);
        }
    }
    // The list, at least.
    for id in [
        "host_down",
        "hang",
        "slow",
        "reset_mid_reply",
        "malformed_reply",
        "truncated_frame",
        "auth_failure",
        "command_error",
        "step_down",
        "member_added",
        "member_removed",
        "member_hidden",
        "mongos_gone",
        "shard_added",
        "shard_removed",
        "host_flapping",
        "receiver_500",
        "receiver_503",
        "receiver_429",
        "receiver_400",
        "receiver_timeout",
        "receiver_tls_error",
        "proxy_down",
        "proxy_auth_refused",
        "spool_disk_full",
        "spool_file_corrupted",
        "clock_jump",
        "sighup_storm",
        "kill_9",
    ] {
        assert!(ids.contains(id), "the table lacks row {id}");
    }
}

// ---- what the receiver saw ------------------------------------------------------

/// One host sample line of an accepted request.
#[derive(Debug, Clone)]
struct Obs {
    host: String,
    ts_ms: i64,
    /// Present on the `up` (status) sample of each round.
    up: Option<i64>,
    kind: Option<String>,
    failed_command: Option<String>,
    role: Option<String>,
    at: Instant,
}

fn lines(reqs: &[Request]) -> Vec<(Instant, serde_json::Value)> {
    common::receiver::accepted_json(reqs)
}

fn observations(rcv: &Receiver) -> Vec<Obs> {
    lines(&rcv.requests())
        .into_iter()
        .filter_map(|(at, v)| {
            Some(Obs {
                host: v["host"].as_str()?.to_string(),
                ts_ms: v["ts_ms"].as_i64()?,
                up: v["up"].as_i64(),
                kind: v["error_kind"].as_str().map(str::to_string),
                failed_command: v["failed_command"].as_str().map(str::to_string),
                role: v["role"].as_str().map(str::to_string),
                at,
            })
        })
        .collect()
}

/// Status samples (one per round) of `host`, in time order.
fn rounds<'a>(obs: &'a [Obs], host: &str) -> Vec<&'a Obs> {
    let mut v: Vec<&Obs> = obs
        .iter()
        .filter(|o| o.host == host && o.up.is_some())
        .collect();
    v.sort_by_key(|o| o.ts_ms);
    v
}

/// The largest gap between two rounds of any of `hosts` within
/// [from_ms, to_ms], in seconds (the edges count as rounds).
fn largest_gap(obs: &[Obs], hosts: &[String], from_ms: i64, to_ms: i64) -> f64 {
    hosts
        .iter()
        .map(|h| {
            let mut t: Vec<i64> = rounds(obs, h)
                .iter()
                .map(|o| o.ts_ms)
                .filter(|t| *t >= from_ms && *t <= to_ms)
                .collect();
            t.insert(0, from_ms);
            t.push(to_ms);
            t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as f64 / 1000.0
        })
        .fold(0.0, f64::max)
}

/// "Others on time": at a 1 s interval, no host without a fault goes
/// longer than this between two rounds. One round may be late (a loaded
/// machine), none may stop.
const ON_TIME_GAP_SECS: f64 = 2.5;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The agent's `/metrics`, as (name{labels}, value).
fn metrics(port: u16) -> BTreeMap<String, f64> {
    let Ok(r) = common::http::get(port, "/metrics") else {
        return BTreeMap::new();
    };
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// One upload target's counters from `/metrics`.
fn upload_counters(all: &BTreeMap<String, f64>, upload: &str) -> BTreeMap<String, u64> {
    let tag = format!("upload=\"{upload}\"");
    all.iter()
        .filter(|(k, _)| k.starts_with("mongomon_upload_") && k.contains(&tag))
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("mongomon_upload_")?.split('{').next()?;
            Some((name.to_string(), *v as u64))
        })
        .collect()
}

/// samples_queued = sent + dead-lettered + dropped + refused + expired + waiting.
fn conserved(c: &BTreeMap<String, u64>) -> bool {
    let g = |k: &str| c.get(k).copied().unwrap_or(u64::MAX / 8);
    g("samples_queued")
        == g("samples_sent")
            + g("samples_dead_lettered")
            + g("samples_dropped")
            + g("samples_refused")
            + g("samples_expired")
            + g("queue_samples")
}

// ---- stage: hosts ----------------------------------------------------------------

const HOST_ROWS: [&str; 9] = [
    "host_down",
    "hang",
    "slow",
    "reset_mid_reply",
    "malformed_reply",
    "truncated_frame",
    "auth_failure",
    "command_error",
    "host_flapping",
];

fn host_fault(id: &str, host: &str, on: bool) -> Action {
    let host = host.to_string();
    match id {
        "host_down" if on => Action::Down { host },
        "host_down" => Action::Up { host },
        "hang" => Action::Hang { host, on },
        "slow" => Action::Slow {
            host,
            millis: if on { 2_000 } else { 0 },
        },
        "reset_mid_reply" => Action::ResetMidReply { host, on },
        "malformed_reply" => Action::MalformedReply { host, on },
        "truncated_frame" => Action::FrameFault {
            host,
            fault: if on {
                FrameFault::Truncated
            } else {
                FrameFault::None
            },
        },
        "auth_failure" => Action::AuthFailure { host, on },
        "command_error" if on => Action::CommandError {
            host,
            command: "serverStatus".into(),
            code: 11600,
            errmsg: None,
        },
        "command_error" => Action::ClearCommandError {
            host,
            command: "serverStatus".into(),
        },
        other => panic!("no host fault {other}"),
    }
}

#[test]
fn hosts() {
    let mut res = Results::new("hosts");
    // One standalone per row, three without a fault.
    let mut topo: String = (0..HOST_ROWS.len() + 3)
        .map(|_| "[[standalone]]\nhost = \"127.0.0.1:0\"\n")
        .collect();
    topo.push_str("[[users]]\nname = \"mon\"\npassword = \"matrix-pw\"\n");
    let sim = Arc::new(sim_common::start(&topo));
    let hosts: Vec<String> = sim.standalones().iter().map(|a| a.to_string()).collect();
    let faulted = &hosts[..HOST_ROWS.len()];
    let healthy: Vec<String> = hosts[HOST_ROWS.len()..].to_vec();
    let host_of = |id: &str| faulted[HOST_ROWS.iter().position(|r| *r == id).unwrap()].clone();
    let rcv = Receiver::accepting();
    let mut cfg = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
         [upload]\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n",
        rcv.url()
    );
    for (i, h) in hosts.iter().enumerate() {
        cfg.push_str(&format!(
            "[[targets]]\nname = \"h{i}\"\nuri = \"mongodb://mon:matrix-pw@{h}/?authSource=admin\"\ndiscover = false\n"
        ));
    }
    // Refused from the first conversation on.
    sim.apply(host_fault("auth_failure", &host_of("auth_failure"), true))
        .unwrap();
    let started = Instant::now();
    let agent = Agent::start(&cfg);
    let others: Vec<String> = hosts
        .iter()
        .filter(|h| **h != host_of("auth_failure"))
        .cloned()
        .collect();
    wait_for(
        "every host up but the refused one",
        Duration::from_secs(30),
        || {
            let obs = observations(&rcv);
            others
                .iter()
                .all(|h| rounds(&obs, h).iter().any(|o| o.up == Some(1)))
                .then_some(())
        },
    );
    let t_inject = Instant::now();
    let inject_ms = now_ms();
    for id in HOST_ROWS {
        if id != "auth_failure" && id != "host_flapping" {
            sim.apply(host_fault(id, &host_of(id), true)).unwrap();
        }
    }
    // Flapping: down and up every 2 s for 8 s, from a thread of its own.
    let flapper = {
        let (sim, h) = (sim.clone(), host_of("host_flapping"));
        std::thread::spawn(move || {
            for i in 0..4 {
                sim.apply(Action::Down { host: h.clone() }).unwrap();
                std::thread::sleep(Duration::from_secs(2));
                sim.apply(Action::Up { host: h.clone() }).unwrap();
                if i < 3 {
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(8));
    flapper.join().unwrap();
    let t_clear = Instant::now();
    for id in HOST_ROWS {
        if id != "host_flapping" {
            sim.apply(host_fault(id, &host_of(id), false)).unwrap();
        }
    }
    let clear_ms = now_ms();
    // Back to normal: every host's newest round up after the clearing.
    let recovered: BTreeMap<String, Duration> = {
        let mut got = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < faulted.len() && Instant::now() < deadline {
            let obs = observations(&rcv);
            for h in faulted {
                if got.contains_key(h) {
                    continue;
                }
                if let Some(o) = rounds(&obs, h)
                    .into_iter()
                    .find(|o| o.at >= t_clear && o.up == Some(1) && o.ts_ms >= clear_ms)
                {
                    got.insert(h.clone(), o.at.saturating_duration_since(t_clear));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        got
    };
    std::thread::sleep(Duration::from_secs(2));
    let obs = observations(&rcv);
    let end_ms = now_ms() - 1_500;
    let gap = largest_gap(&obs, &healthy, inject_ms, end_ms);
    let others_ok = gap <= ON_TIME_GAP_SECS;
    for id in HOST_ROWS {
        let r = res.row(id);
        let h = host_of(id);
        let mine = rounds(&obs, &h);
        let recovery = recovered.get(&h).copied();
        let recover_ok = recovery.is_some_and(|d| d.as_secs_f64() <= r.recover_secs.unwrap());
        let rec_text = recovery.map_or("never".to_string(), secs);
        if id == "host_flapping" {
            let during: Vec<i64> = mine
                .iter()
                .filter(|o| o.ts_ms >= inject_ms && o.ts_ms < clear_ms)
                .map(|o| o.up.unwrap())
                .collect();
            let flips = during.windows(2).filter(|w| w[0] != w[1]).count();
            let measured = format!(
                "{} rounds while flapping, {flips} changes of state; up again {rec_text} after; others' largest gap {gap:.1} s",
                during.len()
            );
            let failed = if flips < 2 {
                Some(format!("only {flips} changes of state reported"))
            } else if !recover_ok || !others_ok {
                Some("not back up in time, or others late".into())
            } else {
                None
            };
            res.record(id, measured, failed);
            continue;
        }
        // The first round down after the fault began (auth: after the start).
        let (from, from_ms) = if id == "auth_failure" {
            (started, 0)
        } else {
            (t_inject, inject_ms)
        };
        let downs: Vec<&&Obs> = mine
            .iter()
            .filter(|o| o.ts_ms >= from_ms && o.up == Some(0) && o.ts_ms < clear_ms)
            .collect();
        // The kinds in the order they came: a host going down shows the
        // connection it had being closed (network) before the refused
        // connects (unreachable); what must hold is the steady state.
        let mut kinds: Vec<String> = Vec::new();
        for o in &downs {
            let k = o.kind.clone().unwrap_or_default();
            if kinds.last() != Some(&k) {
                kinds.push(k);
            }
        }
        let want = r.error_kind.clone().unwrap();
        let (measured, failed) = match (downs.first(), downs.last()) {
            (Some(o), Some(last)) => {
                let detect = o.at.saturating_duration_since(from);
                let kind = last.kind.clone().unwrap_or_default();
                let measured = format!(
                    "up=0 error_kind={}{} after {}; up again {rec_text} after clearing; others' largest gap {gap:.1} s",
                    kinds.join(" then "),
                    o.failed_command
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    secs(detect)
                );
                let failed = if kind != want {
                    Some(format!("error_kind {kind}, not {want}"))
                } else if detect.as_secs_f64() > r.within_secs.unwrap() {
                    Some(format!("detected after {}", secs(detect)))
                } else if !recover_ok {
                    Some(format!("recovery {rec_text}"))
                } else if !others_ok {
                    Some(format!("others' largest gap {gap:.1} s"))
                } else if id == "command_error"
                    && o.failed_command.as_deref() != Some("serverStatus")
                {
                    Some(format!("failed_command {:?}", o.failed_command))
                } else {
                    None
                };
                (measured, failed)
            }
            _ => (
                "never reported down".to_string(),
                Some("no up = 0 sample".to_string()),
            ),
        };
        res.record(id, measured, failed);
    }
    drop(agent);
    res.finish();
}

// ---- stage: topology -------------------------------------------------------------

/// Polls `f` every 100 ms for up to `limit`; how long it took, or `None`.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A round of `host` taken at or after `from_ms` that satisfies `f`.
fn round_since(rcv: &Receiver, host: &str, from_ms: i64, f: impl Fn(&Obs) -> bool) -> bool {
    rounds(&observations(rcv), host)
        .iter()
        .any(|o| o.ts_ms >= from_ms && f(o))
}

fn addrs(v: Vec<std::net::SocketAddr>) -> Vec<String> {
    v.into_iter().map(|a| a.to_string()).collect()
}

#[test]
fn topology() {
    let mut res = Results::new("topology");
    // rs0 (three members), and cluster c1: config servers, two shards of
    // three, two mongos.
    let sim = sim_common::start(&format!("{}{}", sim_common::RS3, sim_common::SHARDED));
    let rcv = Receiver::accepting();
    let rs = addrs(sim.set_members("rs0"));
    let mongos = addrs(sim.mongos("c1"));
    let cfg = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
         [discovery]\ninterval_secs = 1\nremoval_grace_secs = 2\n\
         [upload]\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n\
         [[targets]]\nname = \"rs\"\nuri = \"mongodb://{}\"\n\
         [[targets]]\nname = \"cluster\"\nuri = \"mongodb://{}\"\n",
        rcv.url(),
        rs[0],
        mongos[0]
    );
    let agent = Agent::start(&cfg);
    let all: Vec<String> = sim.hosts().iter().map(|h| h.addr.to_string()).collect();
    wait_for("every host sampled", Duration::from_secs(40), || {
        let obs = observations(&rcv);
        all.iter()
            .all(|h| rounds(&obs, h).iter().any(|o| o.up == Some(1)))
            .then_some(())
    });
    let table = res.rows.clone();
    let limit = |id: &str| Duration::from_secs_f64(row(&table, id).within_secs.unwrap());

    // Step-down: labels follow, no member misses a round.
    let old = sim.primary("rs0").unwrap().to_string();
    let t_ms = now_ms();
    sim.apply(Action::StepDown {
        set: "rs0".into(),
        new_primary: None,
    })
    .unwrap();
    let new = sim.primary("rs0").unwrap().to_string();
    let took = within(limit("step_down"), || {
        round_since(&rcv, &new, t_ms, |o| o.role.as_deref() == Some("primary"))
            && round_since(&rcv, &old, t_ms, |o| o.role.as_deref() == Some("secondary"))
    });
    std::thread::sleep(Duration::from_secs(2));
    let gap = largest_gap(&observations(&rcv), &rs, t_ms, now_ms() - 1_500);
    res.record(
        "step_down",
        format!(
            "new labels after {}; members' largest gap {gap:.1} s",
            took.map_or("never".into(), secs)
        ),
        match took {
            None => Some("the new primary was not labelled in time".into()),
            Some(_) if gap > ON_TIME_GAP_SECS => {
                Some(format!("a member went {gap:.1} s without a round"))
            }
            _ => None,
        },
    );

    // A member added by reconfig is found and sampled.
    let t_ms = now_ms();
    sim.apply(Action::AddMember {
        set: "rs0".into(),
        host: Some("127.0.0.1:0".into()),
        hidden: false,
        priority: 1.0,
        arbiter_only: false,
    })
    .unwrap();
    let added = addrs(sim.set_members("rs0"))
        .into_iter()
        .find(|m| !rs.contains(m))
        .expect("the new member");
    let took = within(limit("member_added"), || {
        round_since(&rcv, &added, t_ms, |o| o.up == Some(1))
    });
    res.record(
        "member_added",
        format!("first sample after {}", took.map_or("never".into(), secs)),
        took.is_none()
            .then(|| "the new member was not sampled in time".into()),
    );

    // A member turned hidden stays watched, under its new label.
    let hidden = rs
        .iter()
        .find(|m| **m != new && **m != old)
        .unwrap()
        .clone();
    let t_ms = now_ms();
    sim.apply(Action::SetHidden {
        set: "rs0".into(),
        host: hidden.clone(),
        hidden: true,
    })
    .unwrap();
    let took = within(limit("member_hidden"), || {
        round_since(&rcv, &hidden, t_ms, |o| {
            o.role.as_deref() == Some("hidden") && o.up == Some(1)
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let gap = largest_gap(
        &observations(&rcv),
        std::slice::from_ref(&hidden),
        t_ms,
        now_ms() - 1_500,
    );
    res.record(
        "member_hidden",
        format!(
            "labelled hidden after {}; its largest gap {gap:.1} s",
            took.map_or("never".into(), secs)
        ),
        match took {
            None => Some("not sampled as hidden in time".into()),
            Some(_) if gap > ON_TIME_GAP_SECS => {
                Some(format!("it went {gap:.1} s without a round"))
            }
            _ => None,
        },
    );

    // The added member leaves: dropped after the grace.
    let t_ms = now_ms();
    sim.apply(Action::RemoveMember {
        set: "rs0".into(),
        host: added.clone(),
    })
    .unwrap();
    let bound = limit("member_removed");
    std::thread::sleep(bound + Duration::from_millis(1_500));
    let last = rounds(&observations(&rcv), &added)
        .last()
        .map(|o| o.ts_ms)
        .unwrap_or(0);
    let after = (last - t_ms) as f64 / 1000.0;
    res.record(
        "member_removed",
        format!("last sample {after:.1} s after the removal"),
        (after > bound.as_secs_f64()).then(|| format!("still sampled {after:.1} s after")),
    );

    // The second mongos goes away: down for it, the cluster on time.
    let cluster: Vec<String> = all
        .iter()
        .filter(|h| !rs.contains(h) && !mongos.contains(h))
        .cloned()
        .collect();
    let t_ms = now_ms();
    sim.apply(Action::Down {
        host: mongos[1].clone(),
    })
    .unwrap();
    let want = res.row("mongos_gone").error_kind.unwrap();
    let took = within(limit("mongos_gone"), || {
        round_since(&rcv, &mongos[1], t_ms, |o| {
            o.up == Some(0) && o.kind.as_deref() == Some(want.as_str())
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let gap = largest_gap(&observations(&rcv), &cluster, t_ms, now_ms() - 1_500);
    res.record(
        "mongos_gone",
        format!(
            "up=0 error_kind={want} after {}; shards' and config servers' largest gap {gap:.1} s",
            took.map_or("never".into(), secs)
        ),
        match took {
            None => Some(format!("no up = 0 with {want} in time")),
            Some(_) if gap > ON_TIME_GAP_SECS => {
                Some(format!("the cluster went {gap:.1} s without a round"))
            }
            _ => None,
        },
    );

    // A shard added: its members sampled.
    let before: BTreeSet<String> = sim.hosts().iter().map(|h| h.addr.to_string()).collect();
    let t_ms = now_ms();
    sim.apply(Action::AddShard {
        cluster: "c1".into(),
        name: "shard03".into(),
        members: 3,
    })
    .unwrap();
    let fresh: Vec<String> = sim
        .hosts()
        .iter()
        .map(|h| h.addr.to_string())
        .filter(|h| !before.contains(h))
        .collect();
    assert_eq!(fresh.len(), 3, "the simulator added three hosts");
    let took = within(limit("shard_added"), || {
        fresh
            .iter()
            .all(|h| round_since(&rcv, h, t_ms, |o| o.up == Some(1)))
    });
    res.record(
        "shard_added",
        format!(
            "all three sampled after {}",
            took.map_or("never".into(), secs)
        ),
        took.is_none()
            .then(|| "the new shard's members were not all sampled in time".into()),
    );

    // A shard removed: its members dropped, the rest on time.
    let gone = addrs(sim.set_members("shard01"));
    let rest: Vec<String> = cluster
        .iter()
        .filter(|h| !gone.contains(h))
        .cloned()
        .collect();
    let t_ms = now_ms();
    sim.apply(Action::RemoveShard {
        cluster: "c1".into(),
        name: "shard01".into(),
    })
    .unwrap();
    let bound = limit("shard_removed");
    std::thread::sleep(bound + Duration::from_millis(1_500));
    let obs = observations(&rcv);
    let last = gone
        .iter()
        .filter_map(|h| rounds(&obs, h).last().map(|o| o.ts_ms))
        .max()
        .unwrap_or(0);
    let after = (last - t_ms) as f64 / 1000.0;
    let gap = largest_gap(&obs, &rest, t_ms, now_ms() - 1_500);
    res.record(
        "shard_removed",
        format!("last sample {after:.1} s after the removal; the rest's largest gap {gap:.1} s"),
        if after > bound.as_secs_f64() {
            Some(format!("still sampled {after:.1} s after"))
        } else if gap > ON_TIME_GAP_SECS {
            Some(format!("the rest went {gap:.1} s without a round"))
        } else {
            None
        },
    );
    drop(agent);
    res.finish();
}

// ---- stage: receiver -------------------------------------------------------------

/// The upload targets of the receiver stage, by row: each its own
/// receiver (or proxy) and fault.
const RECEIVER_ROWS: [&str; 8] = [
    "receiver_500",
    "receiver_503",
    "receiver_429",
    "receiver_400",
    "receiver_timeout",
    "receiver_tls_error",
    "proxy_down",
    "proxy_auth_refused",
];

/// A receiver that answers `status` (with `extra` headers) while the fault
/// lasts, 204 after.
fn failing_until(
    until: Arc<Mutex<Option<Instant>>>,
    status: u16,
    extra: Vec<(String, String)>,
) -> Receiver {
    Receiver::scripted(move |_, _| {
        let failing = until.lock().unwrap().is_none_or(|t| Instant::now() < t);
        if failing {
            (status, extra.clone())
        } else {
            (204, vec![])
        }
    })
}

/// Grid points (1 s) of `host` missing between its first and last round
/// among `lines`, and rounds delivered more than once.
fn missing_and_repeated(lines: &[(Instant, serde_json::Value)], host: &str) -> (usize, usize) {
    let mut ts: Vec<i64> = lines
        .iter()
        .filter(|(_, v)| v["host"] == host && v["up"].is_i64())
        .filter_map(|(_, v)| v["ts_ms"].as_i64())
        .collect();
    ts.sort();
    let n = ts.len();
    ts.dedup();
    let repeated = n - ts.len();
    let missing = ts
        .windows(2)
        .map(|w| ((w[1] - w[0] + 500) / 1000 - 1).max(0) as usize)
        .sum();
    (missing, repeated)
}

#[test]
fn receiver() {
    let mut res = Results::new("receiver");
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    // Every fault lasts until this instant (set once the agent runs).
    let until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let r500 = failing_until(until.clone(), 500, vec![]);
    let r503 = failing_until(until.clone(), 503, vec![]);
    let r429 = failing_until(until.clone(), 429, vec![("Retry-After".into(), "1".into())]);
    let slow = failing_until(
        until.clone(),
        204,
        vec![("x-test-delay-ms".into(), "2500".into())],
    );
    let refused_once =
        Receiver::scripted(|n, _| if n == 0 { (400, vec![]) } else { (204, vec![]) });
    // TLS: an HTTPS front whose certificate no CA of the agent's signed.
    let tls_upstream = Receiver::accepting();
    let stranger = common::servers::TestCa::new("fault-matrix-stranger");
    let tls = common::servers::TlsFront::start(&stranger, tls_upstream.port);
    // A proxy that is not there yet, and one that wants other credentials.
    let behind_late_proxy = Receiver::accepting();
    let late_proxy_port = common::free_port();
    let behind_strict_proxy = Receiver::accepting();
    let strict = common::servers::Tinyproxy::start(
        &[behind_strict_proxy.port],
        Some(("matrix", "right-pw")),
    );
    let listen = common::free_port();
    let upload = |name: &str, url: &str, extra: &str| {
        format!(
            "[[upload]]\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n\
             retry_initial_ms = 50\nretry_max_ms = 500\ntimeout_secs = 1\nmax_in_flight = 1\n{extra}"
        )
    };
    let mut cfg = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
         [http]\nenabled = true\nlisten = \"127.0.0.1:{listen}\"\n\
         [[targets]]\nname = \"t\"\nuri = \"mongodb://{host}\"\ndiscover = false\n"
    );
    cfg += &upload("receiver_500", &r500.url(), "proxy = \"none\"\n");
    cfg += &upload("receiver_503", &r503.url(), "proxy = \"none\"\n");
    cfg += &upload("receiver_429", &r429.url(), "proxy = \"none\"\n");
    cfg += &upload("receiver_400", &refused_once.url(), "proxy = \"none\"\n");
    cfg += &upload("receiver_timeout", &slow.url(), "proxy = \"none\"\n");
    cfg += &upload(
        "receiver_tls_error",
        &tls.url("/ingest"),
        "proxy = \"none\"\n",
    );
    cfg += &upload(
        "proxy_down",
        &behind_late_proxy.url(),
        &format!("proxy = \"http://127.0.0.1:{late_proxy_port}\"\n"),
    );
    cfg += &upload(
        "proxy_auth_refused",
        &behind_strict_proxy.url(),
        &format!(
            "proxy = \"http://matrix:wrong-pw@127.0.0.1:{}\"\n",
            strict.port
        ),
    );
    let agent = Agent::start(&cfg);
    *until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(4));
    std::thread::sleep(Duration::from_secs(4));
    let late_proxy =
        common::servers::Tinyproxy::start_at(late_proxy_port, &[behind_late_proxy.port], None);
    // The recoverable ones catch up: nothing waits, and rounds taken after
    // the fault have arrived.
    let recoverable = [
        "receiver_500",
        "receiver_503",
        "receiver_429",
        "receiver_400",
        "receiver_timeout",
        "proxy_down",
    ];
    let caught_up = within(Duration::from_secs(40), || {
        let m = metrics(listen);
        recoverable.iter().all(|u| {
            let c = upload_counters(&m, u);
            c.get("queue_samples") == Some(&0) && c.get("batches_sent").is_some_and(|s| *s >= 5)
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let m = metrics(listen);
    let log = agent.log();
    let counters: BTreeMap<&str, BTreeMap<String, u64>> = RECEIVER_ROWS
        .iter()
        .map(|u| (*u, upload_counters(&m, u)))
        .collect();
    let by_row: BTreeMap<&str, &Receiver> = [
        ("receiver_500", &r500),
        ("receiver_503", &r503),
        ("receiver_429", &r429),
        ("receiver_400", &refused_once),
        ("receiver_timeout", &slow),
        ("receiver_tls_error", &tls_upstream),
        ("proxy_down", &behind_late_proxy),
        ("proxy_auth_refused", &behind_strict_proxy),
    ]
    .into_iter()
    .collect();
    for id in RECEIVER_ROWS {
        let c = &counters[id];
        let g = |k: &str| c.get(k).copied().unwrap_or(0);
        let reqs = by_row[id].requests();
        let got = lines(&reqs);
        // The refused batch counts as delivered to the dead-letter file:
        // what must not go missing is everything else.
        let (missing, repeated) = if id == "receiver_400" {
            let all: Vec<Request> = reqs
                .iter()
                .cloned()
                .map(|mut r| {
                    r.status = 204;
                    r
                })
                .collect();
            missing_and_repeated(&lines(&all), &host)
        } else {
            missing_and_repeated(&got, &host)
        };
        let accounting = format!(
            "queued {} = sent {} + dead-lettered {} + dropped {} + waiting {}",
            g("samples_queued"),
            g("samples_sent"),
            g("samples_dead_lettered"),
            g("samples_dropped"),
            g("queue_samples")
        );
        let mut failed = None;
        let mut fail = |why: String| {
            if failed.is_none() {
                failed = Some(why);
            }
        };
        if c.is_empty() {
            fail("no counters on /metrics".into());
        }
        if !conserved(c) {
            fail(format!("accounting does not add up: {accounting}"));
        }
        if g("samples_dropped") + g("samples_expired") + g("samples_refused") > 0 {
            fail(format!("samples lost: {accounting}"));
        }
        if g("batches_retried") == 0 && id != "receiver_400" {
            fail("no failed attempt counted".into());
        }
        let measured = match id {
            "receiver_tls_error" | "proxy_auth_refused" => {
                if g("batches_sent") > 0 || !got.is_empty() {
                    fail("something went through".into());
                }
                if g("queue_samples") == 0 {
                    fail("nothing waits".into());
                }
                let (needle, what) = if id == "receiver_tls_error" {
                    ("kind: tls", "a TLS failure")
                } else {
                    ("proxy refused the tunnel", "the proxy's refusal")
                };
                let named = log
                    .lines()
                    .any(|l| l.contains(&format!("upload: {id}")) && l.contains(needle));
                if !named {
                    fail(format!("the log does not show {what} for {id}"));
                }
                format!(
                    "{} failed attempts, nothing sent, {} samples waiting, none dropped; log names {what}",
                    g("batches_retried"),
                    g("queue_samples")
                )
            }
            _ => {
                if caught_up.is_none() {
                    fail("the backlog did not drain within 40 s".into());
                }
                if missing > 0 {
                    fail(format!("{missing} grid points never arrived"));
                }
                // Every failed attempt came back under the same batch id
                // and was taken (the slow 204s count as failed: the agent
                // gave up on them first).
                let fault_end = (*until.lock().unwrap()).unwrap();
                let failed_ids: Vec<String> = reqs
                    .iter()
                    .filter(|r| {
                        !(200..300).contains(&r.status)
                            || (id == "receiver_timeout" && r.at < fault_end)
                    })
                    .filter(|r| r.status != 400)
                    .map(batch_id)
                    .collect();
                let not_resent = failed_ids
                    .iter()
                    .filter(|b| {
                        reqs.iter()
                            .filter(|r| batch_id(r) == **b && (200..300).contains(&r.status))
                            .count()
                            < if id == "receiver_timeout" { 2 } else { 1 }
                    })
                    .count();
                if not_resent > 0 {
                    fail(format!(
                        "{not_resent} failed attempts never taken under their batch id"
                    ));
                }
                let mut extra = String::new();
                if id == "receiver_429" {
                    let after: Vec<Duration> = reqs
                        .windows(2)
                        .filter(|w| w[0].status == 429)
                        .map(|w| w[1].at.saturating_duration_since(w[0].at))
                        .collect();
                    let shortest = after.iter().min().copied().unwrap_or_default();
                    if after.is_empty() || shortest < Duration::from_millis(950) {
                        fail(format!("waited only {shortest:?} after a 429"));
                    }
                    extra = format!(
                        "; shortest wait after a 429 {:.2} s",
                        shortest.as_secs_f64()
                    );
                }
                if id == "receiver_400" {
                    let refused = reqs
                        .iter()
                        .find(|r| r.status == 400)
                        .and_then(|r| r.header("x-mongomon-batch-id"))
                        .unwrap_or_default()
                        .to_string();
                    let again = reqs
                        .iter()
                        .filter(|r| r.header("x-mongomon-batch-id") == Some(refused.as_str()))
                        .count();
                    // The body as it was sent (compressed), the id in clear.
                    let dead = String::from_utf8_lossy(
                        &std::fs::read(agent.dir.path().join("spool/receiver_400/dead-letter.log"))
                            .unwrap_or_default(),
                    )
                    .to_string();
                    if g("batches_dead_lettered") != 1 || refused.is_empty() {
                        fail(format!(
                            "{} batches dead-lettered",
                            g("batches_dead_lettered")
                        ));
                    }
                    if again != 1 {
                        fail(format!("the refused batch was sent {again} times"));
                    }
                    if !dead.contains(&refused) {
                        fail("the refused batch is not in the dead-letter file".into());
                    }
                    extra = format!(
                        "; dead-lettered {} batch ({} samples), in the dead-letter file, sent once",
                        g("batches_dead_lettered"),
                        g("samples_dead_lettered")
                    );
                }
                let attempts = if id == "receiver_400" {
                    "refused for good, not retried".to_string()
                } else {
                    format!(
                        "{} failed attempts, each taken later under its batch id",
                        g("batches_retried")
                    )
                };
                format!(
                    "{attempts}; {accounting}; {missing} grid points missing, {repeated} delivered twice{extra}"
                )
            }
        };
        res.record(id, measured, failed);
    }
    drop(agent);
    drop(late_proxy);
    res.finish();
}

// ---- stage: spool ----------------------------------------------------------------

fn batch_id(r: &Request) -> String {
    r.header("x-mongomon-batch-id").unwrap_or("").to_string()
}

type RowResult = (String, Option<String>);

fn spool_disk_full() -> RowResult {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let rcv = Receiver::accepting();
    let listen = common::free_port();
    let cfg = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
         [http]\nenabled = true\nlisten = \"127.0.0.1:{listen}\"\n\
         [[targets]]\nname = \"t\"\nuri = \"mongodb://{host}\"\ndiscover = false\n\
         [upload]\nname = \"rcv\"\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n",
        rcv.url()
    );
    // Files may not grow past 16 KiB: the first segment soon takes no more.
    let mut agent = Agent::start_env(&cfg, &[], Some(16 * 1024));
    let c = within(Duration::from_secs(40), || {
        let c = upload_counters(&metrics(listen), "rcv");
        c.get("spool_write_errors").is_some_and(|e| *e > 0)
            && c.get("batches_sent").is_some_and(|s| *s > 10)
    })
    .map(|_| upload_counters(&metrics(listen), "rcv"));
    let alive = agent.is_running();
    let said = agent.log().matches("Cannot write the spool").count();
    let (missing, _) = missing_and_repeated(&lines(&rcv.requests()), &host);
    let Some(c) = c else {
        return (
            "no spool write error with deliveries going on within 40 s".into(),
            Some("the spool never failed, or delivery stopped".into()),
        );
    };
    let g = |k: &str| c.get(k).copied().unwrap_or(0);
    let measured = format!(
        "{} spool write errors; {} batches sent; queued {} = sent {} + dropped {} + waiting {}; {missing} grid points missing; said {said} time(s) in the log",
        g("spool_write_errors"),
        g("batches_sent"),
        g("samples_queued"),
        g("samples_sent"),
        g("samples_dropped"),
        g("queue_samples")
    );
    let failed = if !alive {
        Some("the agent exited".into())
    } else if !conserved(&c) || g("samples_dropped") > 0 {
        Some("samples lost or not accounted for".into())
    } else if missing > 0 {
        Some(format!("{missing} grid points never arrived"))
    } else if said != 1 {
        Some(format!("the log said it {said} times, not once"))
    } else {
        None
    };
    (measured, failed)
}

fn spool_file_corrupted() -> RowResult {
    let topo: String = (0..3)
        .map(|_| "[[standalone]]\nhost = \"127.0.0.1:0\"\n")
        .collect();
    let sim = sim_common::start(&topo);
    let down = Arc::new(AtomicBool::new(true));
    let d2 = down.clone();
    let rcv = Receiver::scripted(move |_, _| {
        if d2.load(Ordering::Relaxed) {
            (503, vec![])
        } else {
            (204, vec![])
        }
    });
    let spool = tempfile::tempdir().unwrap();
    let listen = common::free_port();
    let mut cfg = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
         spool_dir = \"{}\"\nshutdown_timeout_secs = 1\n\
         [spool]\nfsync = \"always\"\n\
         [http]\nenabled = true\nlisten = \"127.0.0.1:{listen}\"\n\
         [upload]\nname = \"rcv\"\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 100\n\
         retry_initial_ms = 50\nretry_max_ms = 200\n",
        spool.path().display(),
        rcv.url()
    );
    for (i, h) in sim.standalones().iter().enumerate() {
        cfg.push_str(&format!(
            "[[targets]]\nname = \"h{i}\"\nuri = \"mongodb://{h}\"\ndiscover = false\n"
        ));
    }
    // First run: the receiver refuses, batches pile up in the spool.
    let mut first = Agent::start(&cfg);
    std::thread::sleep(Duration::from_secs(4));
    first.stop(Duration::from_secs(20));
    let dir = spool.path().join("rcv");
    let before = common::spooled_batches(&dir);
    // Damage the middle of the largest segment.
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a spool segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    let (mid, len) = (bytes.len() / 2, bytes.len());
    for b in &mut bytes[mid..(mid + 64).min(mid + len / 4)] {
        *b ^= 0x5a;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let intact = common::spooled_batches(&dir);
    // Second run: the receiver takes everything.
    down.store(false, Ordering::Relaxed);
    let second = Agent::start(&cfg);
    let delivered = within(Duration::from_secs(30), || {
        let ok: BTreeSet<String> = rcv
            .requests()
            .iter()
            .filter(|r| r.status == 204)
            .map(batch_id)
            .collect();
        intact.iter().all(|b| ok.contains(b))
    });
    let c = upload_counters(&metrics(listen), "rcv");
    drop(second);
    let corrupt = c.get("spool_corrupt_records").copied().unwrap_or(0);
    let ok: BTreeSet<String> = rcv
        .requests()
        .iter()
        .filter(|r| r.status == 204)
        .map(batch_id)
        .collect();
    let got = intact.iter().filter(|b| ok.contains(*b)).count();
    let measured = format!(
        "{} batches spooled, {} intact after the damage, {got} of them delivered by the next run; {corrupt} damaged record(s) counted, {} bytes skipped",
        before.len(),
        intact.len(),
        c.get("spool_truncated_bytes").copied().unwrap_or(0)
    );
    let failed = if before.len() < 3 {
        Some("too few batches spooled to prove anything".into())
    } else if intact.len() >= before.len() {
        Some("the damage hit no batch".into())
    } else if intact.len() + 2 < before.len() {
        Some(format!(
            "64 damaged bytes cost {} batches: the records after the damage were lost",
            before.len() - intact.len()
        ))
    } else if delivered.is_none() {
        Some("not every intact batch was delivered".into())
    } else if corrupt == 0 {
        Some("the damaged record was not counted".into())
    } else {
        None
    };
    (measured, failed)
}

#[test]
fn spool() {
    let mut res = Results::new("spool");
    let (full, damaged) = std::thread::scope(|s| {
        let a = s.spawn(spool_disk_full);
        let b = s.spawn(spool_file_corrupted);
        (a.join().unwrap(), b.join().unwrap())
    });
    res.record("spool_disk_full", full.0, full.1);
    res.record("spool_file_corrupted", damaged.0, damaged.1);
    res.finish();
}

// ---- stage: process ----------------------------------------------------------------

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn clock_jump(bound: Duration) -> RowResult {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: run scripts/test-deps.sh (Debian package faketime)"
    );
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let rcv = Receiver::accepting();
    let interval = Duration::from_secs(2);
    let cfg = format!(
        "[agent]\ninterval_secs = 2\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
         [[targets]]\nname = \"t\"\nuri = \"mongodb://{host}\"\ndiscover = false\n\
         [upload]\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n",
        rcv.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    // Only the wall clock jumps, as when NTP steps it; the monotonic
    // clock goes on.
    let agent = Agent::start_env(
        &cfg,
        &[
            ("LD_PRELOAD", LIBFAKETIME.to_string()),
            ("FAKETIME_TIMESTAMP_FILE", offset.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("DONT_FAKE_MONOTONIC", "1".into()),
        ],
        None,
    );
    let phase = mongomon::actors::host_monitor::phase_offset(&host, interval).as_millis() as i64;
    let step = interval.as_millis() as i64;
    let on_grid = |ts: i64| {
        let l = (ts - phase).rem_euclid(step);
        !(250..step - 250).contains(&l)
    };
    wait_for("rounds on the grid", Duration::from_secs(20), || {
        (rounds(&observations(&rcv), &host).len() >= 2).then_some(())
    });
    let mut parts = Vec::new();
    let mut failed = None;
    // +1 h 1 s (off the old grid by 1 s), then back.
    for (label, text) in [("ahead 3601 s", "+3601\n"), ("back 3601 s", "+0\n")] {
        let t = Instant::now();
        std::fs::write(&offset, text).unwrap();
        std::thread::sleep(Duration::from_secs(7));
        let obs = observations(&rcv);
        let after: Vec<&Obs> = rounds(&obs, &host)
            .into_iter()
            .filter(|o| o.at > t)
            .collect();
        let mut by_arrival = after.clone();
        by_arrival.sort_by_key(|o| o.at);
        // The first round from which every later one is on the grid.
        let settled = (0..by_arrival.len())
            .find(|&i| by_arrival[i..].iter().all(|o| on_grid(o.ts_ms)))
            .map(|i| by_arrival[i].at.saturating_duration_since(t));
        let off = by_arrival.iter().filter(|o| !on_grid(o.ts_ms)).count();
        parts.push(format!(
            "{label}: {} rounds in 7 s ({off} off the grid), on the grid {} after",
            by_arrival.len(),
            settled.map_or("never".into(), secs)
        ));
        if failed.is_none() {
            failed = match settled {
                None => Some(format!("{label}: the grid never came back")),
                Some(d) if d > bound => Some(format!("{label}: grid back only after {}", secs(d))),
                _ if by_arrival.len() > 5 => Some(format!(
                    "{label}: {} rounds in 7 s at a 2 s interval",
                    by_arrival.len()
                )),
                _ if by_arrival.len() < 2 => Some(format!("{label}: sampling stopped")),
                _ => None,
            };
        }
    }
    drop(agent);
    (parts.join("; "), failed)
}

fn sighup_storm() -> RowResult {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let rcv = Receiver::accepting();
    let cfg = |interval: u64| {
        format!(
            "[agent]\ninterval_secs = {interval}\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\n\
             [[targets]]\nname = \"t\"\nuri = \"mongodb://{host}\"\ndiscover = false\n\
             [upload]\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n",
            rcv.url()
        )
    };
    let mut agent = Agent::start(&cfg(1));
    let path = agent.config_path();
    wait_for("rounds", Duration::from_secs(20), || {
        (rounds(&observations(&rcv), &host).len() >= 2).then_some(())
    });
    let start_ms = now_ms();
    // 40 signals in 4 s; the file alternates, the last one is valid with
    // a 2 s interval.
    for i in 0..40 {
        let text = if i == 39 {
            cfg(2)
        } else if i % 2 == 0 {
            "[agent\ninterval_secs = \"soon\"\n".to_string()
        } else {
            cfg(1)
        };
        std::fs::write(&path, text).unwrap();
        signal(agent.pid(), libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(100));
    }
    let storm_end_ms = now_ms();
    std::thread::sleep(Duration::from_secs(8));
    let alive = agent.is_running();
    let log = agent.log();
    let applied = log.matches("Configuration reloaded.").count();
    let refused = log
        .matches("Reload rejected; keeping the running configuration.")
        .count();
    let obs = observations(&rcv);
    let gap = largest_gap(&obs, std::slice::from_ref(&host), start_ms, storm_end_ms);
    // After the storm: the last file's 2 s interval.
    let tail: Vec<i64> = rounds(&obs, &host)
        .iter()
        .map(|o| o.ts_ms)
        .filter(|t| *t > storm_end_ms + 2_500)
        .collect();
    let steps: Vec<i64> = tail.windows(2).map(|w| w[1] - w[0]).collect();
    let two_s = !steps.is_empty() && steps.iter().all(|s| (1_500..=2_500).contains(s));
    let measured = format!(
        "{applied} reloads applied, {refused} refused; largest gap during the storm {gap:.1} s; after it {} rounds {} apart",
        tail.len(),
        steps
            .iter()
            .map(|s| format!("{:.1} s", *s as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join("/")
    );
    let failed = if !alive {
        Some("the agent exited".into())
    } else if applied == 0 || refused == 0 {
        Some("reloads were not both applied and refused".into())
    } else if gap > 2.5 {
        Some(format!("sampling stalled {gap:.1} s"))
    } else if !two_s {
        Some("the last valid file (interval 2 s) is not what runs".into())
    } else {
        None
    };
    let _ = agent.stop(Duration::from_secs(20));
    (measured, failed)
}

fn kill_9() -> RowResult {
    let topo: String = (0..4)
        .map(|_| "[[standalone]]\nhost = \"127.0.0.1:0\"\n")
        .collect();
    let sim = sim_common::start(&topo);
    // Slow while the killed runs live, so batches are on the wire and in
    // the spool when they die; quick for the last run.
    let (rcv, slow) = Receiver::slow_while();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 800\nconnect_timeout_ms = 500\nspool_dir = \"{}\"\n\
         [spool]\nfsync = \"always\"\n\
         [upload]\nname = \"rcv\"\nurl = \"{}\"\nformat = \"json\"\nmax_batch_age_ms = 100\nmax_in_flight = 1\n\
         retry_initial_ms = 50\nretry_max_ms = 200\n",
        spool.path().display(),
        rcv.url()
    );
    for (i, h) in sim.standalones().iter().enumerate() {
        cfg.push_str(&format!(
            "[[targets]]\nname = \"h{i}\"\nuri = \"mongodb://{h}\"\ndiscover = false\n"
        ));
    }
    // A random point in each run (the seed is printed with the result).
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let kills = 5;
    let mut spooled = BTreeSet::new();
    let dir = spool.path().join("rcv");
    let mut at = Vec::new();
    for _ in 0..kills {
        let mut a = Agent::start(&cfg);
        let ms = 1_200 + next() % 2_800;
        at.push(format!("{:.1}", ms as f64 / 1000.0));
        std::thread::sleep(Duration::from_millis(ms));
        signal(a.pid(), libc::SIGKILL);
        a.stop_killed(Duration::from_secs(10));
        if dir.exists() {
            spooled.extend(common::spooled_batches(&dir));
        }
    }
    slow.store(false, Ordering::Relaxed);
    let mut last = Agent::start(&cfg);
    let ok_ids = || -> BTreeSet<String> {
        rcv.requests()
            .iter()
            .filter(|r| r.status == 204)
            .map(batch_id)
            .collect()
    };
    let delivered = within(Duration::from_secs(60), || {
        let ok = ok_ids();
        spooled.iter().all(|b| ok.contains(b))
    });
    let _ = last.stop(Duration::from_secs(20));
    let ok = ok_ids();
    let got = spooled.iter().filter(|b| ok.contains(*b)).count();
    // A sample delivered twice must come in batches of one id.
    let split = common::receiver::split_across_batches(&rcv.requests()).len();
    let measured = format!(
        "{kills} kills (at {} s; seed {seed}); {got} of {} spooled batches delivered later; {split} samples under two batch ids",
        at.join("/"),
        spooled.len()
    );
    let failed = if spooled.is_empty() {
        Some("no kill left anything in the spool".into())
    } else if delivered.is_none() {
        Some(format!(
            "{} spooled batches never delivered",
            spooled.len() - got
        ))
    } else if split > 0 {
        Some(format!("{split} samples delivered under two batch ids"))
    } else {
        None
    };
    (measured, failed)
}

#[test]
fn process() {
    let mut res = Results::new("process");
    let bound = Duration::from_secs_f64(res.row("clock_jump").within_secs.unwrap());
    let (jump, storm, kills) = std::thread::scope(|s| {
        let a = s.spawn(move || clock_jump(bound));
        let b = s.spawn(sighup_storm);
        let c = s.spawn(kill_9);
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    res.record("clock_jump", jump.0, jump.1);
    res.record("sighup_storm", storm.0, storm.1);
    res.record("kill_9", kills.0, kills.1);
    res.finish();
}
