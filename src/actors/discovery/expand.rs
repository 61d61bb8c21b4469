//! Expanding one target's seeds into the whole deployment.
//!
//! A breadth-first walk over hosts, each probed through its direct client
//! from [`HostClients`] (the one its monitor samples with, so a probe
//! neither opens new sockets nor logs in again once the host is monitored):
//! - a replica-set member contributes `hello`'s `hosts`, `passives` and
//!   `arbiters`, plus the members `hello` does not list (hidden, delayed)
//!   from `replSetGetConfig`, or `replSetGetStatus` when the user may not
//!   read the config;
//! - a mongos contributes every shard of `config.shards` (each `rs/h1,h2`
//!   seed walked as a replica set), the config-server set (`getShardMap`, or
//!   `getCmdLineOpts` `sharding.configDB`) and the other routers of
//!   `config.mongos` that pinged recently;
//! - a standalone is just itself.
//!
//! Hosts are named as they name themselves (`me`), and a process reached
//! under two names (same `topologyVersion.processId`) is kept once.
//! Anything unexpected (a set name that contradicts the seed list, an
//! unparsable shard entry, a missing privilege) becomes a `problem` for the
//! caller to log once; the walk goes on with the rest.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use crate::mongo::TargetOptions;
use bson::{doc, Bson, Document};
use futures_util::future::join_all;

use crate::config::AgentSettings;
use crate::mongo::{self, ClientKey, HostClients};

/// What a host is, as far as discovery knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Standalone,
    Member,
    Arbiter,
    Mongos,
    /// Listed by the topology but not reachable right now.
    Unreachable,
}

/// One host of the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub addr: String,
    pub kind: HostKind,
    pub replset: Option<String>,
    /// The shard this host belongs to, for shard members.
    pub shard: Option<String>,
    pub config_server: bool,
}

/// The result of one walk.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    pub hosts: BTreeMap<String, Found>,
    /// Some member or mongos answered with the topology, so a known host
    /// missing from `hosts` really left it (rather than the seeds being down).
    pub authoritative: bool,
    /// The name the deployment goes by: the config-server set of a sharded
    /// cluster, else the replica set.
    pub cluster_name: Option<String>,
    /// Things to log once.
    pub problems: Vec<String>,
}

/// What the walk expects of a host, from where it was found.
#[derive(Debug, Clone, Default)]
struct Context {
    expected_set: Option<String>,
    shard: Option<String>,
    config_server: bool,
}

/// What one probe learned.
#[derive(Debug, Default)]
struct ProbeResult {
    reachable: bool,
    me: Option<String>,
    process_id: Option<String>,
    set_name: Option<String>,
    kind: Option<HostKind>,
    config_server: bool,
    /// More hosts to visit, with their context.
    next: Vec<(String, Context)>,
    config_set: Option<String>,
    problems: Vec<String>,
    error: Option<String>,
}

/// How many hosts are probed at once.
const WAVE: usize = 64;

/// Where a walk gets its clients: the shared cache and the target's key.
#[derive(Clone, Copy)]
pub struct Clients<'a> {
    pub cache: &'a HostClients,
    pub settings: u64,
}

/// Walks the deployment from `seeds`.
pub async fn expand(
    seeds: &[String],
    base: &TargetOptions,
    agent: &AgentSettings,
    mongos_ping_window: Duration,
    clients: Clients<'_>,
) -> Expansion {
    let mut out = Expansion::default();
    let mut queue: VecDeque<(String, Context)> = seeds
        .iter()
        .map(|s| {
            (
                s.clone(),
                Context {
                    expected_set: base.driver.repl_set_name.clone(),
                    ..Context::default()
                },
            )
        })
        .collect();
    let mut probed: HashSet<String> = HashSet::new();
    let mut processes: HashMap<String, String> = HashMap::new();
    while !queue.is_empty() {
        let mut wave = Vec::new();
        while let Some((addr, ctx)) = queue.pop_front() {
            if probed.insert(addr.clone()) && !out.hosts.contains_key(&addr) {
                wave.push((addr, ctx));
                if wave.len() == WAVE {
                    break;
                }
            }
        }
        let results = join_all(wave.into_iter().map(|(addr, ctx)| async move {
            let r = probe(&addr, &ctx, base, agent, mongos_ping_window, clients).await;
            (addr, ctx, r)
        }))
        .await;
        for (addr, ctx, r) in results {
            out.problems.extend(r.problems.iter().cloned());
            if !r.reachable {
                out.hosts.entry(addr.clone()).or_insert(Found {
                    addr,
                    kind: HostKind::Unreachable,
                    replset: ctx.expected_set.clone(),
                    shard: ctx.shard.clone(),
                    config_server: ctx.config_server,
                });
                continue;
            }
            let name = r.me.clone().unwrap_or_else(|| addr.clone());
            probed.insert(name.clone());
            if let Some(pid) = &r.process_id {
                if let Some(first) = processes.get(pid) {
                    if first != &name {
                        continue; // the same process under another name
                    }
                } else {
                    processes.insert(pid.clone(), name.clone());
                }
            }
            if let (Some(want), Some(got)) = (&ctx.expected_set, &r.set_name) {
                if want != got {
                    out.problems.push(format!(
                        "{addr} says it belongs to replica set \"{got}\", but its seed list names \"{want}\"; monitoring it without following its members"
                    ));
                    out.hosts.insert(name.clone(), found(&name, &r, &ctx));
                    continue;
                }
            }
            if !r.next.is_empty() {
                out.authoritative = true;
            }
            if r.kind == Some(HostKind::Mongos) {
                out.authoritative = true;
                if r.config_set.is_some() {
                    out.cluster_name = r.config_set.clone();
                }
            } else if out.cluster_name.is_none() {
                out.cluster_name = r.set_name.clone();
            }
            // A placeholder left by an earlier failed probe of this name.
            out.hosts.insert(name.clone(), found(&name, &r, &ctx));
            queue.extend(r.next);
        }
    }
    out
}

fn found(name: &str, r: &ProbeResult, ctx: &Context) -> Found {
    Found {
        addr: name.to_string(),
        kind: r.kind.unwrap_or(HostKind::Standalone),
        replset: r.set_name.clone(),
        shard: ctx.shard.clone(),
        config_server: r.config_server || ctx.config_server,
    }
}

async fn probe(
    addr: &str,
    ctx: &Context,
    base: &TargetOptions,
    agent: &AgentSettings,
    ping_window: Duration,
    clients: Clients<'_>,
) -> ProbeResult {
    let mut r = ProbeResult::default();
    let key = ClientKey {
        settings: clients.settings,
        addr: addr.to_string(),
    };
    let client = match clients.cache.get_or_build(&key, base, agent) {
        Ok(c) => c.client,
        Err(e) => {
            r.problems.push(format!("{addr}: {}", e.message));
            return r;
        }
    };
    let t = agent.command_timeout;
    let mut hello = mongo::run(&client, "hello", None, t).await.into_doc();
    if hello.code == Some(59) {
        hello = mongo::run(&client, "isMaster", None, t).await.into_doc();
    }
    let hello = match hello.result {
        Ok(h) => h,
        Err(f) => {
            r.error = Some(f.message);
            return r;
        }
    };
    r.reachable = true;
    r.me = hello.get_str("me").ok().map(str::to_string);
    r.process_id = hello
        .get_document("topologyVersion")
        .ok()
        .and_then(|tv| tv.get("processId"))
        .map(|p| p.to_string());
    r.set_name = hello.get_str("setName").ok().map(str::to_string);
    r.config_server = hello.contains_key("configsvr");
    if hello.get_str("msg").ok() == Some("isdbgrid") {
        r.kind = Some(HostKind::Mongos);
        probe_mongos(addr, &client, t, ping_window, &mut r).await;
    } else if let Some(set) = r.set_name.clone() {
        let arbiter = hello.get_bool("arbiterOnly").unwrap_or(false);
        r.kind = Some(if arbiter {
            HostKind::Arbiter
        } else {
            HostKind::Member
        });
        let next_ctx = Context {
            expected_set: Some(set.clone()),
            shard: ctx.shard.clone(),
            config_server: ctx.config_server || r.config_server,
        };
        let mut names: Vec<String> = Vec::new();
        for key in ["hosts", "passives", "arbiters"] {
            if let Ok(list) = hello.get_array(key) {
                names.extend(list.iter().filter_map(Bson::as_str).map(str::to_string));
            }
        }
        if !arbiter {
            names.extend(hidden_members(addr, &client, t, &mut r.problems).await);
        }
        names.sort();
        names.dedup();
        r.next = names.into_iter().map(|n| (n, next_ctx.clone())).collect();
    } else {
        r.kind = Some(HostKind::Standalone);
    }
    r
}

/// Every member in the set's configuration (hidden and delayed ones too).
async fn hidden_members(
    addr: &str,
    client: &mongo::Client,
    t: Duration,
    problems: &mut Vec<String>,
) -> Vec<String> {
    let cfg = mongo::run(client, "replSetGetConfig", None, t)
        .await
        .into_doc();
    match cfg.result {
        Ok(doc) => {
            let members = doc
                .get_document("config")
                .ok()
                .and_then(|c| c.get_array("members").ok());
            return members
                .map(|m| {
                    m.iter()
                        .filter_map(Bson::as_document)
                        .filter_map(|m| m.get_str("host").ok().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
        }
        Err(f) => {
            // Unauthorized is fixed by a role; a server without the command
            // (59) is not, and saying "grant a role" there would mislead.
            let fix = match cfg.code {
                Some(59) => "this server has no replSetGetConfig",
                Some(13) => "grant the user the clusterMonitor role to see hidden members",
                _ => "hidden members may be missed",
            };
            problems.push(format!(
                "{addr}: cannot read replSetGetConfig ({}: {}); falling back to replSetGetStatus ({fix})",
                f.kind, f.message
            ))
        }
    }
    let status = mongo::run(client, "replSetGetStatus", None, t)
        .await
        .into_doc();
    match status.result {
        Ok(doc) => doc
            .get_array("members")
            .map(|m| {
                m.iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|m| m.get_str("name").ok().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(f) => {
            problems.push(format!(
                "{addr}: cannot read replSetGetStatus either ({}); only members listed by hello are monitored",
                f.kind
            ));
            Vec::new()
        }
    }
}

async fn probe_mongos(
    addr: &str,
    client: &mongo::Client,
    t: Duration,
    ping_window: Duration,
    r: &mut ProbeResult,
) {
    let shards = mongo::run_on(client, "config", "find", doc! {"find": "shards"}, t)
        .await
        .into_doc();
    match shards.result {
        Ok(reply) => {
            for s in mongo::first_batch(&reply) {
                let id = s.get_str("_id").ok().map(str::to_string);
                match (id, s.get_str("host").ok().and_then(parse_seed_list)) {
                    (Some(id), Some((set, hosts))) => {
                        let ctx = Context {
                            expected_set: set,
                            shard: Some(id),
                            config_server: false,
                        };
                        r.next.extend(hosts.into_iter().map(|h| (h, ctx.clone())));
                    }
                    _ => r.problems.push(format!(
                        "{addr}: cannot parse config.shards entry {s}; skipping it"
                    )),
                }
            }
        }
        Err(f) => r.problems.push(format!(
            "{addr}: cannot read config.shards ({}: {})",
            f.kind, f.message
        )),
    }
    // The config servers: getShardMap first, the command line second.
    let mut config = None;
    if let Ok(map) = mongo::run(client, "getShardMap", None, t)
        .await
        .into_doc()
        .result
    {
        config = map
            .get_document("map")
            .ok()
            .and_then(|m| m.get_str("config").ok())
            .and_then(parse_seed_list);
    }
    if config.is_none() {
        if let Ok(opts) = mongo::run(client, "getCmdLineOpts", None, t)
            .await
            .into_doc()
            .result
        {
            config = opts
                .get_document("parsed")
                .ok()
                .and_then(|p| p.get_document("sharding").ok())
                .and_then(|s| s.get_str("configDB").ok())
                .and_then(parse_seed_list);
        }
    }
    match config {
        Some((set, hosts)) => {
            r.config_set = set.clone();
            let ctx = Context {
                expected_set: set,
                shard: None,
                config_server: true,
            };
            r.next.extend(hosts.into_iter().map(|h| (h, ctx.clone())));
        }
        None => r.problems.push(format!(
            "{addr}: cannot find the config servers (getShardMap, getCmdLineOpts)"
        )),
    }
    let routers = mongo::run_on(client, "config", "find", doc! {"find": "mongos"}, t)
        .await
        .into_doc();
    if let Ok(reply) = routers.result {
        let now = SystemTime::now();
        for m in mongo::first_batch(&reply) {
            if !recently_pinged(&m, now, ping_window) {
                continue;
            }
            if let Ok(id) = m.get_str("_id") {
                r.next.push((id.to_string(), Context::default()));
            }
        }
    }
}

/// Whether a `config.mongos` document pinged within `window` of `now`.
pub fn recently_pinged(m: &Document, now: SystemTime, window: Duration) -> bool {
    match m.get("ping") {
        Some(Bson::DateTime(d)) => {
            let ping = crate::clock::from_unix_millis(d.timestamp_millis().max(0) as u64);
            now.duration_since(ping)
                .map(|age| age <= window)
                .unwrap_or(true)
        }
        _ => false,
    }
}

/// Parses `set/h1:p,h2:p` (or a bare `h1:p,h2:p`) into the set name and hosts.
pub fn parse_seed_list(s: &str) -> Option<(Option<String>, Vec<String>)> {
    let (set, list) = match s.split_once('/') {
        Some((set, list)) if !set.is_empty() => (Some(set.to_string()), list),
        Some(_) => return None,
        None => (None, s),
    };
    let hosts: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:27017")
            }
        })
        .collect();
    if hosts.is_empty()
        || hosts
            .iter()
            .any(|h| h.contains(char::is_whitespace) || h.contains('/'))
    {
        return None;
    }
    Some((set, hosts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists() {
        assert_eq!(
            parse_seed_list("rs0/a:1,b:2"),
            Some((Some("rs0".into()), vec!["a:1".into(), "b:2".into()]))
        );
        assert_eq!(parse_seed_list("a"), Some((None, vec!["a:27017".into()])));
        assert_eq!(parse_seed_list("/a:1"), None);
        assert_eq!(parse_seed_list("rs0/"), None);
        assert_eq!(parse_seed_list("rs0/a b:1"), None);
    }

    #[test]
    fn ping_window() {
        let now = SystemTime::now();
        let at = |secs_ago: u64| doc! {"ping": bson::DateTime::from_system_time(now - Duration::from_secs(secs_ago))};
        assert!(recently_pinged(&at(30), now, Duration::from_secs(60)));
        assert!(!recently_pinged(&at(90), now, Duration::from_secs(60)));
        assert!(!recently_pinged(&doc! {}, now, Duration::from_secs(60)));
    }
}
