//! [`AgentView`]: what the listener serves, kept up to date by the actors.
//!
//! Each host's latest round is one immutable [`HostSnapshot`] behind an
//! `Arc`. The batcher of the host's worker builds the next one (points
//! encoded, figures derived) with no lock held, then swaps the `Arc` under a
//! map lock held for the swap only; a scrape clones the `Arc`s under the
//! same short lock and renders on the listener's thread. So sampling never
//! waits for a scrape, and a scrape sees each host's whole round or the
//! previous one, never half of one.
//!
//! The supervisor registers a host when it starts its monitor and forgets it
//! when the host leaves the topology; a late round of a forgotten host is
//! dropped, so no series outlives its host.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::format::exposition::{self, Flavor, Point};
use crate::format::flatten::{raw_number, Number};
use crate::format::select::Selection;
use crate::sample::{Body, Labels, Sample};
use crate::stats::{Stats, UploadStats};

use super::status::{HostStatus, StatusReport, UploadStatus};

/// Commands that do not run every round (info hourly, dbStats on its own
/// schedule): their latest points stay until the host goes down, instead of
/// vanishing between two of their rounds.
const KEPT_BETWEEN_RUNS: [&str; 5] = [
    "buildInfo",
    "hostInfo",
    "getCmdLineOpts",
    "dbStats",
    "dbstats_round",
];

/// One host's latest round, as served.
#[derive(Debug)]
pub struct HostSnapshot {
    pub labels: Arc<Labels>,
    /// When the round started, and when it was recorded here.
    pub time: SystemTime,
    pub recorded: Instant,
    pub up: bool,
    /// The round's failure, redacted.
    pub error: Option<String>,
    /// Points by the command (or derived name) they came from.
    pub groups: Vec<(&'static str, Vec<Point>)>,
    /// Sum of serverStatus `opcounters`, for the rate.
    pub ops_total: Option<f64>,
    pub ops_per_sec: Option<f64>,
    pub connections: Option<f64>,
    pub lag_secs: Option<f64>,
    /// The member's state (`PRIMARY`, ...), for replica-set members.
    pub state: Option<String>,
}

/// An upload target as the listener reports it.
#[derive(Debug, Clone)]
pub struct TargetView {
    pub name: String,
    pub stats: Arc<UploadStats>,
    /// `spool.max_bytes`; `None` when batches wait in memory only.
    pub spool_budget: Option<u64>,
}

struct Inner {
    /// Registered hosts; `None` until their first round.
    hosts: Mutex<BTreeMap<String, Option<Arc<HostSnapshot>>>>,
    targets: Mutex<Vec<TargetView>>,
    stats: Stats,
    agent_labels: Arc<Labels>,
    started: Instant,
    rounds: AtomicU64,
    /// Fleet mode: the fleet's name, this agent's id and its lease gate.
    fleet: Mutex<Option<(String, String, crate::fleet::FleetGate)>>,
}

/// The shared view; clones are cheap and see the same state.
#[derive(Clone)]
pub struct AgentView {
    inner: Arc<Inner>,
}

impl AgentView {
    pub fn new(agent_name: &str, stats: Stats) -> Self {
        AgentView {
            inner: Arc::new(Inner {
                hosts: Mutex::new(BTreeMap::new()),
                targets: Mutex::new(Vec::new()),
                stats,
                agent_labels: crate::stats::agent_labels(agent_name),
                started: Instant::now(),
                rounds: AtomicU64::new(0),
                fleet: Mutex::new(None),
            }),
        }
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<Arc<HostSnapshot>>>> {
        self.inner.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fleet mode: report the membership in `/status` and `/readyz`.
    pub fn set_fleet(&self, name: &str, agent_id: &str, gate: crate::fleet::FleetGate) {
        *self.inner.fleet.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((name.to_string(), agent_id.to_string(), gate));
    }

    fn fleet(&self) -> Option<(String, String, crate::fleet::FleetGate)> {
        self.inner
            .fleet
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A monitor starts for `host`.
    pub fn register_host(&self, host: &str) {
        self.hosts().entry(host.to_string()).or_insert(None);
    }

    /// `host` left the topology: its series go with it.
    pub fn forget_host(&self, host: &str) {
        self.hosts().remove(host);
    }

    /// The upload targets, after start or a reload.
    pub fn set_targets(&self, targets: Vec<TargetView>) {
        *self.inner.targets.lock().unwrap_or_else(|e| e.into_inner()) = targets;
    }

    /// Rounds recorded since start.
    pub fn rounds(&self) -> u64 {
        self.inner.rounds.load(Ordering::Relaxed)
    }

    /// Records one host's round (the samples of one `SamplesCollected`),
    /// keeping the fields `sel` keeps. Called by the batchers.
    pub fn record(&self, samples: &[Sample], sel: &mut Selection) {
        let Some(last) = samples.last() else {
            return;
        };
        let host = last.labels.host.clone();
        let prev = match self.hosts().get(&host) {
            None => return, // forgotten (or never registered): dropped
            Some(p) => p.clone(),
        };
        let snap = Arc::new(build(samples, sel, prev.as_deref()));
        if let Some(slot) = self.hosts().get_mut(&host) {
            *slot = Some(snap);
        }
        self.inner.rounds.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshots(&self) -> Vec<(String, Option<Arc<HostSnapshot>>)> {
        self.hosts()
            .iter()
            .map(|(h, s)| (h.clone(), s.clone()))
            .collect()
    }

    fn targets(&self) -> Vec<TargetView> {
        self.inner
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `/metrics`: every host's latest points and the agent's own counters.
    pub fn metrics(&self, flavor: Flavor) -> Vec<u8> {
        let mut out = Vec::new();
        self.metrics_chunks(flavor, usize::MAX, &mut |c| {
            out.extend_from_slice(c);
            true
        });
        out
    }

    /// [`AgentView::metrics`] handed to `sink` in pieces of about `chunk`
    /// bytes, so that a scrape holds the hosts' snapshots and one piece,
    /// never the whole body.
    pub fn metrics_chunks(
        &self,
        flavor: Flavor,
        chunk: usize,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) {
        let snaps = self.snapshots();
        let mut own = Vec::new();
        let mut sel = Selection::full();
        for s in crate::stats::agent_samples(
            &self.inner.stats,
            &self.inner.agent_labels,
            SystemTime::now(),
        ) {
            exposition::collect(&s, &mut sel, &mut own);
        }
        let groups = snaps
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .flat_map(|s| s.groups.iter().map(|(_, p)| p.as_slice()))
            .chain(std::iter::once(own.as_slice()));
        exposition::render_chunks(groups, flavor, chunk, sink)
    }

    /// `/readyz`: `Ok` when at least one round is done and every upload
    /// target delivers or spools within its budget; otherwise the reasons.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let mut why = Vec::new();
        // A fleet agent whose share is empty (more agents than hosts need)
        // has nothing to sample and is ready all the same.
        let idle_in_fleet =
            self.fleet().is_some() && self.inner.stats.hosts_owned.load(Ordering::Relaxed) == 0;
        if self.rounds() == 0 && !idle_in_fleet {
            why.push("no host has been sampled yet (the first round has not finished)".into());
        }
        for t in self.targets() {
            if let Some(reason) = target_problem(&t) {
                why.push(reason);
            }
        }
        if let Some((name, _, gate)) = self.fleet() {
            if !gate.is_open() {
                why.push(format!(
                    "no lease in fleet {name}: not sampling until etcd answers (fleet.etcd_endpoints)"
                ));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why)
        }
    }

    /// `/status`.
    pub fn status(&self) -> StatusReport {
        let now = Instant::now();
        let hosts = self
            .snapshots()
            .into_iter()
            .map(|(host, snap)| match snap {
                None => HostStatus {
                    host,
                    last_error: Some("not sampled yet".into()),
                    ..HostStatus::default()
                },
                Some(s) => HostStatus {
                    host,
                    cluster: s.labels.cluster.clone(),
                    role: s.labels.role.as_str().to_string(),
                    replset: s.labels.replset.clone(),
                    shard: s.labels.shard.clone(),
                    state: s.state.clone(),
                    version: s.labels.version.clone(),
                    up: s.up,
                    sampled: true,
                    age_secs: Some(now.saturating_duration_since(s.recorded).as_secs_f64()),
                    last_error: s.error.clone(),
                    ops_per_sec: s.ops_per_sec,
                    connections: s.connections,
                    lag_secs: s.lag_secs,
                },
            })
            .collect();
        let uploads = self
            .targets()
            .iter()
            .map(|t| {
                let h = t.stats.health();
                let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
                UploadStatus {
                    name: t.name.clone(),
                    ok: target_problem(t).is_none(),
                    failing_secs: h.failing_since.map(|since| {
                        SystemTime::now()
                            .duration_since(since)
                            .unwrap_or_default()
                            .as_secs_f64()
                    }),
                    last_error: h.last_error,
                    queue_batches: get(&t.stats.queue_batches),
                    queue_samples: get(&t.stats.queue_samples),
                    spool_bytes: get(&t.stats.spool_bytes),
                    spool_budget_bytes: t.spool_budget,
                    samples_sent: get(&t.stats.samples_sent),
                }
            })
            .collect();
        let not_ready = self.readiness().err().unwrap_or_default();
        StatusReport {
            agent: self.inner.agent_labels.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.inner.started.elapsed().as_secs_f64(),
            ready: not_ready.is_empty(),
            not_ready,
            hosts,
            uploads,
            fleet: self.fleet().map(|(name, agent_id, gate)| {
                let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
                let st = &self.inner.stats;
                serde_json::json!({
                    "name": name,
                    "agent_id": agent_id,
                    "member": gate.is_open(),
                    "lease_left_secs": gate.remaining().as_secs_f64(),
                    "leader": get(&st.fleet_leader) == 1,
                    "agents": get(&st.fleet_agents),
                    "hosts_owned": get(&st.hosts_owned),
                    "handoffs": get(&st.fleet_handoffs),
                    "lease_losses": get(&st.fleet_lease_losses),
                })
            }),
        }
    }
}

/// Why a target holds readiness back: it cannot deliver, and what it cannot
/// deliver has nowhere durable to wait (no spool, or the spool is full).
fn target_problem(t: &TargetView) -> Option<String> {
    let h = t.stats.health();
    h.failing_since?;
    let err = h.last_error.as_deref().unwrap_or("unknown error");
    let spooled = t.stats.spool_bytes.load(Ordering::Relaxed);
    match t.spool_budget {
        None => Some(format!(
            "upload target {} cannot deliver ({err}) and has no spool (agent.spool_dir = \"\"): samples are lost if this lasts",
            t.name
        )),
        Some(max) if spooled >= max => Some(format!(
            "upload target {} cannot deliver ({err}) and its spool is full ({spooled} of {max} bytes)",
            t.name
        )),
        Some(_) => None,
    }
}

/// The next snapshot of a host from its round and its previous snapshot.
fn build(samples: &[Sample], sel: &mut Selection, prev: Option<&HostSnapshot>) -> HostSnapshot {
    let last = &samples[samples.len() - 1];
    let mut snap = HostSnapshot {
        labels: last.labels.clone(),
        time: last.time,
        recorded: Instant::now(),
        up: true,
        error: None,
        groups: Vec::new(),
        ops_total: None,
        ops_per_sec: None,
        connections: None,
        lag_secs: None,
        state: None,
    };
    for s in samples {
        let command = s.command();
        let pos = match snap.groups.iter().position(|(c, _)| *c == command) {
            Some(i) => i,
            None => {
                snap.groups.push((command, Vec::new()));
                snap.groups.len() - 1
            }
        };
        exposition::collect(s, sel, &mut snap.groups[pos].1);
        match &s.body {
            Body::Status { up, failure } => {
                snap.up = *up;
                snap.error = failure
                    .as_ref()
                    .map(|f| crate::redact::redact_text(&format!("{}: {}", f.command, f.message)));
            }
            Body::Reply {
                command: "serverStatus",
                doc,
            } => {
                snap.connections = doc
                    .get_document("connections")
                    .ok()
                    .and_then(|c| c.get("current").ok().flatten())
                    .and_then(raw_number)
                    .map(Number::as_f64);
                snap.ops_total = doc.get_document("opcounters").ok().map(|ops| {
                    ops.into_iter()
                        .filter_map(|e| e.ok())
                        .filter_map(|(_, v)| raw_number(v))
                        .map(Number::as_f64)
                        .sum()
                });
            }
            Body::Reply {
                command: "replSetGetStatus",
                doc,
            } => {
                snap.state = doc.get_array("members").ok().and_then(|members| {
                    members
                        .into_iter()
                        .filter_map(|m| m.ok().and_then(|m| m.as_document()))
                        .find(|m| m.get_bool("self").unwrap_or(false))
                        .and_then(|m| m.get_str("stateStr").ok())
                        .map(str::to_string)
                });
            }
            _ => {}
        }
    }
    // The lag the points already computed, on the member's own line.
    snap.lag_secs = snap
        .groups
        .iter()
        .filter(|(c, _)| *c == "replSetGetStatus")
        .flat_map(|(_, pts)| pts.iter())
        .find(|p| p.get("mongodb_replset_member_self") == Some(1.0))
        .and_then(|p| p.get("mongodb_replset_member_lag_seconds"));
    if let Some(prev) = prev {
        if let (Some(now), Some(before)) = (snap.ops_total, prev.ops_total) {
            let secs = snap
                .time
                .duration_since(prev.time)
                .unwrap_or_default()
                .as_secs_f64();
            // A restart resets the counters: no rate for that round.
            if secs > 0.0 && now >= before {
                snap.ops_per_sec = Some((now - before) / secs);
            }
        }
        if snap.up {
            for (command, points) in &prev.groups {
                if KEPT_BETWEEN_RUNS.contains(command)
                    && !snap.groups.iter().any(|(c, _)| c == command)
                {
                    snap.groups.push((command, points.clone()));
                }
            }
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Role;
    use std::time::Duration;

    fn labels(host: &str) -> Arc<Labels> {
        Arc::new(Labels {
            host: host.into(),
            cluster: "c".into(),
            replset: None,
            shard: None,
            role: Role::Standalone,
            version: None,
        })
    }

    fn round(host: &str, secs: u64, inserts: i64, up: bool, info: bool) -> Vec<Sample> {
        let l = labels(host);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let mut v = Vec::new();
        if up {
            let doc = bson::rawdoc! {"connections": {"current": 7}, "opcounters": {"insert": inserts, "query": 10_i64}};
            v.push(Sample {
                labels: l.clone(),
                time: at,
                duration: Duration::ZERO,
                body: Body::Reply {
                    command: "serverStatus",
                    doc,
                },
            });
        }
        if info {
            v.push(Sample {
                labels: l.clone(),
                time: at,
                duration: Duration::ZERO,
                body: Body::Reply {
                    command: "hostInfo",
                    doc: bson::rawdoc! {"system": {"numCores": 4}},
                },
            });
        }
        v.push(Sample {
            labels: l,
            time: at,
            duration: Duration::ZERO,
            body: Body::Status {
                up,
                failure: (!up).then(|| crate::sample::Failure {
                    kind: "unreachable",
                    command: "hello",
                    message: "connection refused to mongodb://u:pw-secret@h:1".into(),
                }),
            },
        });
        v
    }

    fn text(v: &AgentView) -> String {
        String::from_utf8(v.metrics(Flavor::Text)).unwrap()
    }

    #[test]
    fn rounds_replace_points_rates_follow_and_forgotten_hosts_vanish() {
        let v = AgentView::new("agent1", Arc::new(Default::default()));
        let mut sel = Selection::full();
        v.record(&round("a:1", 100, 5, true, true), &mut sel);
        assert!(!text(&v).contains("a:1"), "unregistered hosts are dropped");
        v.register_host("a:1");
        v.register_host("b:1");
        v.record(&round("a:1", 100, 5, true, true), &mut sel);
        v.record(&round("a:1", 110, 25, true, false), &mut sel);
        let t = text(&v);
        assert!(t.contains("mongodb_serverstatus_opcounters_insert{cluster=\"c\",host=\"a:1\",role=\"standalone\"} 25\n"), "{t}");
        assert!(
            t.contains("mongodb_hostinfo_system_numCores{"),
            "kept between its runs: {t}"
        );
        assert!(
            t.contains("mongomon_samples_taken{agent=\"agent1\"} 0\n"),
            "{t}"
        );
        let st = v.status();
        let a = st.hosts.iter().find(|h| h.host == "a:1").unwrap();
        assert_eq!(a.ops_per_sec, Some(2.0));
        assert_eq!(a.connections, Some(7.0));
        let b = st.hosts.iter().find(|h| h.host == "b:1").unwrap();
        assert!(!b.sampled && !b.up);

        v.record(&round("a:1", 120, 25, false, false), &mut sel);
        let t = text(&v);
        assert!(t.contains("mongodb_up{cluster=\"c\",error_kind=\"unreachable\",failed_command=\"hello\",host=\"a:1\",role=\"standalone\"} 0\n"), "{t}");
        assert!(
            !t.contains("opcounters"),
            "a down host keeps no stale values: {t}"
        );
        let st = v.status();
        let err = st.hosts[0].last_error.clone().unwrap();
        assert!(
            err.contains("connection refused") && !err.contains("pw-secret"),
            "{err}"
        );

        v.forget_host("a:1");
        v.record(&round("a:1", 130, 30, true, false), &mut sel);
        assert!(!text(&v).contains("a:1"));
    }

    #[test]
    fn readiness_needs_a_round_and_deliverable_targets() {
        let stats: Stats = Arc::new(Default::default());
        let v = AgentView::new("agent1", stats.clone());
        let up = crate::stats::upload_stats(&stats, "vm");
        v.set_targets(vec![TargetView {
            name: "vm".into(),
            stats: up.clone(),
            spool_budget: None,
        }]);
        assert!(v.readiness().unwrap_err()[0].contains("sampled"));
        v.register_host("a:1");
        v.record(&round("a:1", 100, 5, true, false), &mut Selection::full());
        assert_eq!(v.readiness(), Ok(()));
        up.failed("cannot connect: refused");
        let why = v.readiness().unwrap_err();
        assert!(
            why[0].contains("vm") && why[0].contains("no spool"),
            "{why:?}"
        );
        assert!(!v.status().uploads[0].ok);
        up.delivered();
        assert_eq!(v.readiness(), Ok(()));
    }
}
