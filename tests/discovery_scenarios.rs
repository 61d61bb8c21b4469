//! Discovery, table-driven: every `tests/scenarios/*.toml` file describes a
//! simulated topology, the seeds the agent gets, and after start and after
//! each step (a simulator action: election, reconfig, shard or mongos added
//! or removed) the host set and roles the agent must be monitoring.
//!
//! The agent runs in-process (Supervisor and every actor) with a 1 s
//! interval; each expectation must hold within one interval of the action
//! (plus a little scheduling slack), and the monitored hosts must be exactly
//! the live hosts of the simulated deployment.
//!
//! `MONGOMON_SCENARIO=<file stem>` runs a single scenario.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use mongomon::actors::supervisor::{ListHosts, Shutdown, Supervisor};
use mongomon::sample::Labels;
use mongomon::sim::{Action, SimHandle, Simulator, Topology};
use serde::Deserialize;

const INTERVAL: Duration = Duration::from_secs(1);
/// Detection happens at a monitor's next round (≤ one interval); this is
/// what expansion and scheduling may add on a loaded CI machine.
const SLACK: Duration = Duration::from_millis(1500);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    seeds: Vec<String>,
    topology: toml::Value,
    #[serde(default)]
    setup: Vec<Action>,
    expect: Expect,
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    action: Action,
    expect: Expect,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Expect {
    total: usize,
    #[serde(default)]
    roles: BTreeMap<String, usize>,
    /// Host alias → role.
    #[serde(default)]
    hosts: BTreeMap<String, String>,
}

/// `rs0[1]`, `primary:rs0`, `mongos:c1[0]`, `standalone[0]`; a `name@`
/// prefix swaps the IP for that host name (to reach a host by another name).
fn resolve(sim: &SimHandle, alias: &str) -> String {
    let (name, alias) = match alias.split_once('@') {
        Some((n, a)) => (Some(n), a),
        None => (None, alias),
    };
    let index = |s: &str| -> (String, usize) {
        let (base, rest) = s.split_once('[').expect("alias with [i]");
        (
            base.to_string(),
            rest.trim_end_matches(']').parse().expect("index"),
        )
    };
    let addr: SocketAddr = if let Some(set) = alias.strip_prefix("primary:") {
        sim.primary(set).expect("set has a primary")
    } else if let Some(rest) = alias.strip_prefix("mongos:") {
        let (cluster, i) = index(rest);
        sim.mongos(&cluster)[i]
    } else if alias.starts_with("standalone[") {
        sim.standalones()[index(alias).1]
    } else {
        let (set, i) = index(alias);
        sim.set_members(&set)[i]
    };
    match name {
        Some(n) => format!("{n}:{}", addr.port()),
        None => addr.to_string(),
    }
}

fn mismatch(sim: &SimHandle, want: &Expect, got: &[Labels]) -> Option<String> {
    let monitored: BTreeSet<String> = got.iter().map(|l| l.host.clone()).collect();
    if monitored.len() != want.total {
        return Some(format!(
            "{} hosts monitored, want {}",
            monitored.len(),
            want.total
        ));
    }
    let live = common::live_hosts(sim);
    if monitored != live {
        return Some(format!(
            "monitored {monitored:?} but the simulator serves {live:?}"
        ));
    }
    let mut roles: BTreeMap<String, usize> = BTreeMap::new();
    for l in got {
        *roles.entry(l.role.as_str().to_string()).or_default() += 1;
    }
    for (role, n) in &want.roles {
        if roles.get(role).copied().unwrap_or(0) != *n {
            return Some(format!("roles {roles:?}, want {:?}", want.roles));
        }
    }
    for (alias, role) in &want.hosts {
        let addr = resolve(sim, alias);
        match got.iter().find(|l| l.host == addr) {
            Some(l) if l.role.as_str() == role => {}
            other => {
                return Some(format!(
                    "{alias} ({addr}) is {:?}, want {role}",
                    other.map(|l| l.role)
                ))
            }
        }
    }
    None
}

async fn hosts(sup: &actix::Addr<Supervisor>) -> Vec<Labels> {
    sup.send(ListHosts).await.unwrap_or_default()
}

/// Waits until `want` holds; returns how long it took, or the last mismatch.
async fn settle(
    sup: &actix::Addr<Supervisor>,
    sim: &SimHandle,
    want: &Expect,
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let got = hosts(sup).await;
        match mismatch(sim, want, &got) {
            None => return Ok(start.elapsed()),
            Some(why) if start.elapsed() > limit => return Err(why),
            Some(_) => actix_rt::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn run_scenario(path: &Path) {
    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let sc: Scenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let topology = Topology::from_toml_str(&toml::to_string(&sc.topology).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let sim = Arc::new(Simulator::start(topology).unwrap_or_else(|e| panic!("{name}: {e}")));
    for a in &sc.setup {
        sim.apply(a.clone())
            .unwrap_or_else(|e| panic!("{name}: setup {a:?}: {e}"));
    }
    let receiver = common::receiver::Receiver::accepting();
    let seeds: Vec<String> = sc.seeds.iter().map(|s| resolve(&sim, s)).collect();
    let config = format!(
        "[agent]\ninterval_secs = {}\ncommand_timeout_ms = 1000\nconnect_timeout_ms = 500\nspool_dir = \"\"\n\
         [discovery]\nremoval_grace_secs = 0\n\
         [[targets]]\nname = \"{name}\"\nuri = \"mongodb://{}\"\n\
         [upload]\nurl = \"{}\"\n",
        INTERVAL.as_secs(),
        seeds.join(","),
        receiver.url()
    );
    let raw = mongomon::config::load_str(&config, &serde_json::json!({})).unwrap();
    let settings = mongomon::config::validate(&raw, None).unwrap();
    eprintln!("scenario {name}: {}", sc.description);

    let sys = actix_rt::System::new();
    let result: Result<(), String> = sys.block_on(async {
        let stats = Arc::new(mongomon::stats::AgentStats::default());
        let sup = Supervisor::new(settings, None, mongomon::logging::discard(), None, stats)
            .expect("supervisor")
            .start();
        let out = async {
            // Start-up: a complete expansion from the seeds (no step timing).
            settle(&sup, &sim, &sc.expect, Duration::from_secs(20))
                .await
                .map_err(|e| format!("after start: {e}"))?;
            for (i, step) in sc.steps.iter().enumerate() {
                let s = sim.clone();
                let action = step.action.clone();
                tokio::task::spawn_blocking(move || s.apply(action))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("step {i}: {e}"))?;
                let took = settle(&sup, &sim, &step.expect, Duration::from_secs(15))
                    .await
                    .map_err(|e| format!("step {i} ({:?}): {e}", step.action))?;
                eprintln!("  step {i}: reflected after {took:?}");
                if took > INTERVAL + SLACK {
                    return Err(format!(
                        "step {i} ({:?}) took {took:?}, more than one interval",
                        step.action
                    ));
                }
            }
            Ok(())
        }
        .await;
        sup.do_send(Shutdown);
        out
    });
    if let Err(e) = result {
        panic!("scenario {name}: {e}");
    }
}

#[test]
fn discovery_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let only = std::env::var("MONGOMON_SCENARIO").ok();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| p.file_stem().is_some_and(|s| s == o))
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no scenario in {} matches {only:?}",
        dir.display()
    );
    for f in files {
        run_scenario(&f);
    }
}
