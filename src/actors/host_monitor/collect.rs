//! One round on one host: which commands run, by role, and what is derived
//! from them.
//!
//! - every host: `hello` (or `isMaster` on servers that predate it), then
//!   `serverStatus`;
//! - replica-set members: `replSetGetStatus`, and on data-bearing members
//!   the oplog window from the first and last entry of `local.oplog.rs`;
//!   arbiters only what they can answer (their failures do not count);
//! - mongos: the shard list, live routers and balancer state from `config`;
//! - at start and hourly: `buildInfo`, `hostInfo`, `getCmdLineOpts`;
//! - on its own slower schedule: `dbStats` per database, within a budget,
//!   never on members that are not ready (RECOVERING, STARTUP2).
//!
//! `hello` comes first and its failure ends the round: the host is down and
//! every further command would only wait out its own timeout.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

use crate::mongo::Client;
use bson::{doc, Bson, Document};

use crate::actors::discovery::expand::recently_pinged;
use crate::format::flatten::Number;
use crate::mongo::{self, CommandOutcome};
use crate::sample::Role;

/// Slow-changing details, read at start, hourly and after a restart.
pub const INFO_COMMANDS: [&str; 3] = ["buildInfo", "hostInfo", "getCmdLineOpts"];

/// What this round should do beyond the every-interval commands.
#[derive(Debug, Clone)]
pub struct Plan {
    pub timeout: Duration,
    pub legacy_hello: bool,
    pub want_info: bool,
    pub dbstats: DbStatsPlan,
    pub max_databases: usize,
    pub mongos_ping_window: Duration,
}

/// Whether `dbStats` runs this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbStatsPlan {
    NotDue,
    Due,
    /// Due, but the last round took longer than `agent.dbstats_max_secs`.
    SkipSlow,
}

/// How a step's failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Its failure makes the host `up = 0`.
    Required,
    /// Its failure is logged, not an outage (info commands, arbiters' extras).
    Optional,
}

/// One command run this round; `emit` says whether its reply is shipped.
#[derive(Debug)]
pub struct Step {
    pub outcome: CommandOutcome,
    pub weight: Weight,
    pub emit: bool,
}

/// A derived metric line.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub name: &'static str,
    pub tags: Vec<(&'static str, String)>,
    pub fields: Vec<(&'static str, Number)>,
}

/// Everything a round produced.
#[derive(Debug)]
pub struct Round {
    pub started: SystemTime,
    pub duration: Duration,
    pub steps: Vec<Step>,
    pub derived: Vec<Derived>,
    pub legacy_hello: bool,
    pub info_requested: bool,
    /// How long the dbStats part took, when it ran.
    pub dbstats_took: Option<Duration>,
    /// A hash of the host's view of the topology, for discovery.
    pub topology_fingerprint: Option<u64>,
    /// The round's `hello` reply as a Document, when it answered.
    pub hello: Option<Document>,
}

pub async fn collect_round(client: Client, plan: Plan) -> Round {
    let started = SystemTime::now();
    let clock = Instant::now();
    let t = plan.timeout;
    let mut round = Round {
        started,
        duration: Duration::ZERO,
        steps: Vec::with_capacity(8),
        derived: Vec::new(),
        legacy_hello: plan.legacy_hello,
        info_requested: false,
        dbstats_took: None,
        topology_fingerprint: None,
        hello: None,
    };
    let mut hello = mongo::run(
        &client,
        if plan.legacy_hello {
            "isMaster"
        } else {
            "hello"
        },
        None,
        t,
    )
    .await;
    if !plan.legacy_hello && hello.code == Some(59) {
        round.legacy_hello = true;
        hello = mongo::run(&client, "isMaster", None, t).await;
    }
    // hello is small and read field by field: the one reply of a round
    // made into a Document.
    let hello_doc = hello
        .result
        .as_ref()
        .ok()
        .and_then(|r| r.to_document().ok());
    round.steps.push(Step {
        outcome: hello,
        weight: Weight::Required,
        emit: true,
    });
    let Some(hello) = hello_doc else {
        round.duration = clock.elapsed();
        return round;
    };
    let role = Role::from_hello(&hello);
    let member = hello.get_str("setName").is_ok();
    let arbiter = role == Role::Arbiter;
    let extra = if arbiter {
        Weight::Optional
    } else {
        Weight::Required
    };
    round.topology_fingerprint = Some(hello_fingerprint(&hello));
    round.hello = Some(hello);

    let ss = mongo::run(&client, "serverStatus", None, t).await;
    round.steps.push(Step {
        outcome: ss,
        weight: extra,
        emit: true,
    });
    if member {
        let rs = mongo::run(&client, "replSetGetStatus", None, t).await;
        round.steps.push(Step {
            outcome: rs,
            weight: extra,
            emit: true,
        });
        if !arbiter {
            if let Some(d) = oplog_window(&client, t).await {
                round.derived.push(d);
            }
        }
    }
    if role == Role::Mongos {
        let (d, fp) = mongos_view(&client, t, plan.mongos_ping_window).await;
        round.derived.push(d);
        round.topology_fingerprint = Some(fp);
    }
    if plan.want_info {
        round.info_requested = true;
        for cmd in INFO_COMMANDS {
            let o = mongo::run(&client, cmd, None, t).await;
            round.steps.push(Step {
                outcome: o,
                weight: Weight::Optional,
                emit: true,
            });
        }
    }
    let data_bearing = matches!(
        role,
        Role::Primary | Role::Secondary | Role::Hidden | Role::Standalone | Role::ConfigSvr
    );
    match plan.dbstats {
        DbStatsPlan::NotDue => {}
        _ if !data_bearing => {
            if role == Role::Other {
                round
                    .derived
                    .push(dbstats_skipped("member_not_ready", None));
            }
        }
        DbStatsPlan::SkipSlow => round
            .derived
            .push(dbstats_skipped("last_round_too_slow", None)),
        DbStatsPlan::Due => {
            let began = Instant::now();
            db_stats(&client, t, plan.max_databases, &mut round).await;
            round.dbstats_took = Some(began.elapsed());
        }
    }
    round.duration = clock.elapsed();
    round
}

/// The parts of `hello` that change when the topology does.
fn hello_fingerprint(hello: &Document) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for key in [
        "setName",
        "setVersion",
        "electionId",
        "primary",
        "hosts",
        "passives",
        "arbiters",
        "hidden",
        "arbiterOnly",
        "topologyVersion",
    ] {
        key.hash(&mut h);
        if let Some(v) = hello.get(key) {
            v.to_string().hash(&mut h);
        }
    }
    h.finish()
}

async fn find(
    client: &Client,
    db: &str,
    coll: &str,
    extra: Document,
    t: Duration,
) -> Option<Vec<Document>> {
    let mut cmd = doc! {"find": coll};
    cmd.extend(extra);
    mongo::run_on(client, db, "find", cmd, t)
        .await
        .into_doc()
        .result
        .ok()
        .map(|r| mongo::first_batch(&r))
}

/// The oplog window: time between the first and the last entry of
/// `local.oplog.rs`, i.e. how long a secondary may be away and still catch up.
async fn oplog_window(client: &Client, t: Duration) -> Option<Derived> {
    let first = find(
        client,
        "local",
        "oplog.rs",
        doc! {"sort": {"$natural": 1}, "limit": 1},
        t,
    )
    .await?;
    let last = find(
        client,
        "local",
        "oplog.rs",
        doc! {"sort": {"$natural": -1}, "limit": 1},
        t,
    )
    .await?;
    let secs = |d: &Document| match d.get("ts") {
        Some(Bson::Timestamp(ts)) => Some(ts.time as i64),
        _ => None,
    };
    let first = secs(first.first()?)?;
    let last = secs(last.first()?)?;
    Some(Derived {
        name: "oplog",
        tags: vec![],
        fields: vec![
            (
                "window_hours",
                Number::Float((last - first).max(0) as f64 / 3600.0),
            ),
            ("first_seconds", Number::Int(first)),
            ("last_seconds", Number::Int(last)),
        ],
    })
}

/// What a mongos knows of its cluster, and a fingerprint of it.
async fn mongos_view(client: &Client, t: Duration, ping_window: Duration) -> (Derived, u64) {
    let shards = find(client, "config", "shards", doc! {}, t)
        .await
        .unwrap_or_default();
    let routers = find(client, "config", "mongos", doc! {}, t)
        .await
        .unwrap_or_default();
    let settings = find(
        client,
        "config",
        "settings",
        doc! {"filter": {"_id": "balancer"}},
        t,
    )
    .await
    .unwrap_or_default();
    let now = SystemTime::now();
    let mut live: Vec<String> = routers
        .iter()
        .filter(|m| recently_pinged(m, now, ping_window))
        .filter_map(|m| m.get_str("_id").ok().map(str::to_string))
        .collect();
    live.sort();
    let mut shard_list: Vec<String> = shards
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                s.get_str("_id").unwrap_or(""),
                s.get_str("host").unwrap_or("")
            )
        })
        .collect();
    shard_list.sort();
    let balancer = settings
        .iter()
        .find(|d| d.get_str("_id").ok() == Some("balancer"));
    // With no balancer document the balancer runs with its defaults.
    let enabled = balancer.is_none_or(|b| {
        !b.get_bool("stopped").unwrap_or(false) && b.get_str("mode").ok() != Some("off")
    });
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&shard_list, &live).hash(&mut h);
    (
        Derived {
            name: "mongos",
            tags: vec![],
            fields: vec![
                ("shards", Number::Int(shard_list.len() as i64)),
                ("mongos_live", Number::Int(live.len() as i64)),
                ("balancer_enabled", Number::Int(enabled as i64)),
            ],
        },
        h.finish(),
    )
}

fn dbstats_skipped(reason: &str, databases: Option<usize>) -> Derived {
    let mut fields = vec![("skipped", Number::Int(1))];
    if let Some(n) = databases {
        fields.push(("databases", Number::Int(n as i64)));
    }
    Derived {
        name: "dbstats_round",
        tags: vec![("reason", reason.to_string())],
        fields,
    }
}

async fn db_stats(client: &Client, t: Duration, max_databases: usize, round: &mut Round) {
    let began = Instant::now();
    let list = mongo::run(client, "listDatabases", Some(doc! {"nameOnly": true}), t)
        .await
        .into_doc();
    let names: Vec<String> = match &list.result {
        Ok(d) => d
            .get_array("databases")
            .map(|a| {
                a.iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|d| d.get_str("name").ok().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => {
            round
                .derived
                .push(dbstats_skipped("list_databases_failed", None));
            return;
        }
    };
    if names.len() > max_databases {
        round
            .derived
            .push(dbstats_skipped("too_many_databases", Some(names.len())));
        return;
    }
    let mut failed = 0i64;
    for name in &names {
        let o = mongo::run_on(client, name, "dbStats", doc! {"dbStats": 1}, t).await;
        failed += o.result.is_err() as i64;
        round.steps.push(Step {
            outcome: o,
            weight: Weight::Optional,
            emit: true,
        });
    }
    round.derived.push(Derived {
        name: "dbstats_round",
        tags: vec![],
        fields: vec![
            ("skipped", Number::Int(0)),
            ("databases", Number::Int(names.len() as i64)),
            ("failed", Number::Int(failed)),
            (
                "duration_seconds",
                Number::Float(began.elapsed().as_secs_f64()),
            ),
        ],
    });
}
