//! The `Fleet` actor.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use slog::{debug, info, warn, Logger};

use super::{Leadership, LeaveFleet, OwnedHosts, PublishHosts};
use crate::config::FleetSettings;
use crate::fleet::etcd::{Etcd, EtcdError, EtcdOptions, Event, Kv, Op};
use crate::fleet::{owner, FleetGate, Keys, MemberInfo, PublishedHost};
use crate::stats::{AgentStats, Stats};

/// How often the lease clock is checked.
const TICK: Duration = Duration::from_millis(100);

/// How long changes to the host set are gathered before the share is
/// computed again.
const HOSTS_SETTLE: Duration = Duration::from_millis(200);

/// Where the fleet's decisions go.
pub struct FleetLinks {
    pub owned: Recipient<OwnedHosts>,
    pub leadership: Recipient<Leadership>,
    pub gate: FleetGate,
    pub stats: Stats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No lease: granting one (again).
    Joining,
    /// Lease held and renewed.
    Member,
    /// The lease could not be renewed for a TTL: sampling stopped; still
    /// trying to renew it (etcd may come back with the lease intact). The
    /// share is kept, its monitors idle behind the closed gate, so that a
    /// lease that held resumes on the sampling grid with the same monitors;
    /// only a lease found gone gives the share up.
    Suspended,
    Leaving,
}

/// Which etcd problems were logged: one line per activity and kind of
/// problem until etcd answers again. While etcd is down every retry fails
/// and the member named changes from one attempt to the next: that alone is
/// not news. A change of kind is: etcd coming back and refusing the
/// password (after being unreachable) is what the operator must fix.
#[derive(Debug, Default)]
struct Problems {
    /// Activity → whether the problem logged was "unavailable".
    logged: BTreeMap<&'static str, bool>,
}

impl Problems {
    /// Whether `e`, met while doing `what`, should be logged.
    fn is_news(&mut self, what: &'static str, e: &EtcdError) -> bool {
        self.logged.insert(what, e.unavailable) != Some(e.unavailable)
    }

    /// etcd answered: forgets every problem; true when there were some.
    fn clear(&mut self) -> bool {
        let had = !self.logged.is_empty();
        self.logged.clear();
        had
    }
}

/// Keeps this agent's membership, leadership and share.
pub struct Fleet {
    settings: FleetSettings,
    keys: Keys,
    etcd: Rc<Etcd>,
    links: FleetLinks,
    log: Logger,
    phase: Phase,
    lease: i64,
    ttl: Duration,
    /// When the last renewal that succeeded was sent.
    renewed_at: Option<Instant>,
    renewing: bool,
    /// A late renewal sent to every member is under way.
    renewing_everywhere: bool,
    /// Live agents (id → weight), the leader (id, lease) and the
    /// published hosts, as the watch tells them.
    agents: BTreeMap<String, f64>,
    leader: Option<(String, i64)>,
    hosts: BTreeMap<String, PublishedHost>,
    /// The view is loaded and watched.
    synced: bool,
    watch: Option<actix_rt::task::JoinHandle<()>>,
    watch_generation: u64,
    owned: BTreeSet<String>,
    assigned_once: bool,
    reassess_pending: Option<SpawnHandle>,
    leading: bool,
    campaigning: bool,
    /// What the leader's Discovery wants published, waiting for the write
    /// under way.
    to_publish: Option<Vec<PublishedHost>>,
    publishing: bool,
    /// The etcd problems logged, by what was being done, so that each is
    /// logged once until etcd answers again.
    problems: Problems,
    retry_at: Instant,
}

impl Fleet {
    pub fn new(settings: FleetSettings, links: FleetLinks, log: &Logger) -> Fleet {
        let opts = EtcdOptions {
            endpoints: settings.endpoints.clone(),
            tls: settings
                .tls
                .as_ref()
                .and_then(|t| crate::actors::uploader::connect::tls_config(t).ok()),
            credentials: settings.credentials.clone(),
            timeout: settings.call_timeout(),
        };
        links.gate.close();
        Fleet {
            keys: Keys::new(&settings.name),
            etcd: Rc::new(Etcd::new(opts)),
            log: log.new(slog::o!("actor" => "fleet", "fleet" => settings.name.clone(), "agent_id" => settings.agent_id.clone())),
            ttl: settings.lease_ttl,
            settings,
            links,
            phase: Phase::Joining,
            lease: 0,
            renewed_at: None,
            renewing: false,
            renewing_everywhere: false,
            agents: BTreeMap::new(),
            leader: None,
            hosts: BTreeMap::new(),
            synced: false,
            watch: None,
            watch_generation: 0,
            owned: BTreeSet::new(),
            assigned_once: false,
            reassess_pending: None,
            leading: false,
            campaigning: false,
            to_publish: None,
            publishing: false,
            problems: Problems::default(),
            retry_at: Instant::now(),
        }
    }

    fn me(&self) -> &str {
        &self.settings.agent_id
    }

    fn problem(&mut self, what: &'static str, e: &EtcdError) {
        if self.problems.is_news(what, e) {
            warn!(self.log, "etcd trouble."; "during" => what, "error" => e.to_string());
        }
    }

    fn etcd_answers(&mut self) {
        if self.problems.clear() {
            info!(self.log, "etcd answers again."; "etcd" => self.etcd.current_endpoint());
        }
    }

    fn lease_deadline(&self) -> Option<Instant> {
        self.renewed_at.map(|t| t + self.ttl)
    }

    fn join(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Joining || self.renewing {
            return;
        }
        self.renewing = true;
        let etcd = self.etcd.clone();
        let key = self.keys.agent(self.me());
        let info = MemberInfo {
            agent_id: self.me().to_string(),
            weight: self.settings.weight,
            pid: std::process::id(),
            started_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let ttl = self.settings.lease_ttl.as_secs();
        let fut = async move {
            let sent = Instant::now();
            let (id, granted) = etcd.grant(ttl).await?;
            let value = serde_json::to_vec(&info).unwrap_or_default();
            etcd.put(&key, &value, id).await?;
            Ok::<_, EtcdError>((id, granted, sent))
        };
        ctx.spawn(fut.into_actor(self).map(|r, act, ctx| {
            act.renewing = false;
            match r {
                Ok((id, granted, sent)) => {
                    act.lease = id;
                    act.ttl = Duration::from_secs(granted.max(1));
                    act.renewed_at = Some(sent);
                    act.phase = Phase::Member;
                    act.etcd_answers();
                    act.links.gate.open_until(sent + act.ttl);
                    info!(act.log, "Joined the fleet."; "lease_ttl_secs" => granted, "etcd" => act.etcd.current_endpoint());
                    act.resync(ctx);
                }
                Err(e) => {
                    act.problem("joining", &e);
                    act.retry_at = Instant::now() + Duration::from_millis(500);
                }
            }
        }));
    }

    /// Reads every key of the fleet, then watches from there.
    fn resync(&mut self, ctx: &mut Context<Self>) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        self.synced = false;
        self.watch_generation += 1;
        let generation = self.watch_generation;
        let etcd = self.etcd.clone();
        let root = self.keys.root.clone();
        ctx.spawn(
            async move { etcd.range_prefix(&root).await }
                .into_actor(self)
                .map(move |r, act, ctx| {
                    if generation != act.watch_generation || act.phase == Phase::Leaving {
                        return;
                    }
                    match r {
                        Ok((rev, kvs)) => {
                            act.agents.clear();
                            act.hosts.clear();
                            act.leader = None;
                            for kv in kvs {
                                act.apply_put(kv);
                            }
                            act.synced = true;
                            act.start_watch(rev + 1, ctx);
                            act.reassess(ctx);
                        }
                        Err(e) => {
                            act.problem("reading the fleet", &e);
                            ctx.run_later(Duration::from_millis(500), move |act, ctx| {
                                if generation == act.watch_generation {
                                    act.resync(ctx);
                                }
                            });
                        }
                    }
                }),
        );
    }

    fn start_watch(&mut self, from: i64, ctx: &mut Context<Self>) {
        let etcd = self.etcd.clone();
        let root = self.keys.root.clone();
        let addr = ctx.address();
        let generation = self.watch_generation;
        self.watch = Some(actix_rt::spawn(async move {
            let a = addr.clone();
            let err = etcd
                .watch(&root, from, move |events| {
                    a.do_send(WatchEvents { generation, events })
                })
                .await;
            addr.do_send(WatchEnded { generation, err });
        }));
    }

    fn apply_put(&mut self, kv: Kv) {
        let root = &self.keys.root;
        let Some(rest) = kv.key.strip_prefix(root.as_str()) else {
            return;
        };
        if let Some(id) = rest.strip_prefix("agents/") {
            let weight = serde_json::from_slice::<MemberInfo>(&kv.value)
                .map(|m| m.weight)
                .ok()
                .filter(|w| w.is_finite() && *w > 0.0)
                .unwrap_or(1.0);
            self.agents.insert(id.to_string(), weight);
        } else if rest == "leader" {
            let id = String::from_utf8_lossy(&kv.value).into_owned();
            self.leader = Some((id, kv.lease));
        } else if let Some(addr) = rest.strip_prefix("hosts/") {
            match serde_json::from_slice::<PublishedHost>(&kv.value) {
                Ok(mut h) => {
                    h.addr = addr.to_string();
                    self.hosts.insert(addr.to_string(), h);
                }
                Err(e) => {
                    debug!(self.log, "Ignoring a host entry that does not parse."; "host" => addr, "error" => e.to_string());
                }
            }
        }
    }

    fn apply_delete(&mut self, key: &str) {
        let Some(rest) = key.strip_prefix(self.keys.root.as_str()) else {
            return;
        };
        if let Some(id) = rest.strip_prefix("agents/") {
            self.agents.remove(id);
        } else if rest == "leader" {
            self.leader = None;
        } else if let Some(addr) = rest.strip_prefix("hosts/") {
            self.hosts.remove(addr);
        }
    }

    /// Recomputes the share and the leadership from the view, and tells
    /// the supervisor what changed.
    fn reassess(&mut self, ctx: &mut Context<Self>) {
        let member = self.phase == Phase::Member && self.links.gate.is_open();
        let mut agents = self.agents.clone();
        if member {
            // Our own key may not have come back through the watch yet.
            agents.insert(self.me().to_string(), self.settings.weight);
        }
        let owned: BTreeSet<String> = if member && self.synced {
            self.hosts
                .keys()
                .filter(|h| owner(h, &agents) == Some(self.me()))
                .cloned()
                .collect()
        } else if matches!(self.phase, Phase::Member | Phase::Suspended) {
            // The lease may still hold: the share stays, its rounds held
            // by the gate while it is closed (or, while the view is read
            // again, as it was). Stopping the monitors would start new
            // ones on resuming, and a new monitor samples at once: a
            // second sample in a round already sampled.
            self.owned.clone()
        } else {
            BTreeSet::new()
        };
        if owned != self.owned {
            if self.assigned_once {
                let moved = owned.symmetric_difference(&self.owned).count() as u64;
                AgentStats::add(&self.links.stats.fleet_handoffs, moved);
            }
            if member && self.synced {
                self.assigned_once = true;
            }
            info!(self.log, "Share of the fleet changed."; "hosts" => owned.len(),
                "taken" => owned.difference(&self.owned).count(), "released" => self.owned.difference(&owned).count(),
                "agents" => agents.len());
            self.owned = owned;
            let list = self
                .owned
                .iter()
                .filter_map(|h| self.hosts.get(h).cloned())
                .collect();
            self.links.owned.do_send(OwnedHosts(list));
        }
        AgentStats::set(&self.links.stats.hosts_owned, self.owned.len() as u64);
        AgentStats::set(&self.links.stats.fleet_agents, self.agents.len() as u64);

        let leading = member
            && self.synced
            && self
                .leader
                .as_ref()
                .is_some_and(|(id, lease)| id == self.me() && *lease == self.lease);
        if leading != self.leading {
            self.leading = leading;
            AgentStats::set(&self.links.stats.fleet_leader, leading as u64);
            if leading {
                info!(self.log, "Leading the fleet: running discovery."; "published_hosts" => self.hosts.len());
            } else {
                info!(self.log, "No longer leading the fleet.");
            }
            self.links.leadership.do_send(Leadership {
                leader: leading,
                published: self.hosts.values().cloned().collect(),
            });
        }
        if member && self.synced && self.leader.is_none() {
            self.campaign(ctx);
        }
        if leading {
            self.publish(ctx);
        }
    }

    fn campaign(&mut self, ctx: &mut Context<Self>) {
        if self.campaigning {
            return;
        }
        self.campaigning = true;
        let etcd = self.etcd.clone();
        let key = self.keys.leader();
        let me = self.me().as_bytes().to_vec();
        let lease = self.lease;
        ctx.spawn(
            async move { etcd.create(&key, &me, lease).await }
                .into_actor(self)
                .map(|r, act, _| {
                    act.campaigning = false;
                    match r {
                        Ok(true) => debug!(act.log, "Won the election."),
                        Ok(false) => {}
                        Err(e) => act.problem("campaigning", &e),
                    }
                    // The watch brings the leader key either way.
                }),
        );
    }

    /// Writes the difference between what Discovery found and what etcd
    /// holds, only while this agent still holds the leadership.
    fn publish(&mut self, ctx: &mut Context<Self>) {
        if self.publishing || !self.leading {
            return;
        }
        let Some(want) = self.to_publish.take() else {
            return;
        };
        let want: BTreeMap<String, PublishedHost> =
            want.into_iter().map(|h| (h.addr.clone(), h)).collect();
        let mut ops = Vec::new();
        for (addr, h) in &want {
            if self.hosts.get(addr) != Some(h) {
                ops.push(Op::Put {
                    key: self.keys.host(addr),
                    value: serde_json::to_vec(h).unwrap_or_default(),
                });
            }
        }
        for addr in self.hosts.keys() {
            if !want.contains_key(addr) {
                ops.push(Op::Delete {
                    key: self.keys.host(addr),
                });
            }
        }
        if ops.is_empty() {
            return;
        }
        self.publishing = true;
        let etcd = self.etcd.clone();
        let guard = self.keys.leader();
        let lease = self.lease;
        let n = ops.len();
        let pending: Vec<PublishedHost> = want.into_values().collect();
        ctx.spawn(
            async move { etcd.guarded_writes(&guard, lease, &ops).await }
                .into_actor(self)
                .map(move |r, act, ctx| {
                    act.publishing = false;
                    match r {
                        Ok(true) => {
                            info!(act.log, "Published the host set."; "changes" => n, "hosts" => pending.len());
                        }
                        Ok(false) => {
                            info!(act.log, "Lost the leadership while publishing; the new leader carries on.");
                        }
                        Err(e) => {
                            act.problem("publishing hosts", &e);
                            // Try again with the newest wish.
                            if act.to_publish.is_none() {
                                act.to_publish = Some(pending);
                            }
                            ctx.run_later(Duration::from_millis(500), |act, ctx| act.publish(ctx));
                            return;
                        }
                    }
                    act.publish(ctx);
                }),
        );
    }

    /// Renews the lease through the member that answered last, or, when
    /// `everywhere`, through every member at once (a renewal running late).
    /// One of each may be under way.
    fn renew(&mut self, ctx: &mut Context<Self>, everywhere: bool) {
        let busy = if everywhere {
            &mut self.renewing_everywhere
        } else {
            &mut self.renewing
        };
        if *busy {
            return;
        }
        *busy = true;
        // Each member may take what is left of the lease: a member that
        // waits for a new leader answers once there is one.
        let wait = everywhere.then(|| (self.ttl / 2).max(self.settings.call_timeout()));
        let etcd = self.etcd.clone();
        let id = self.lease;
        let sent = Instant::now();
        ctx.spawn(
            async move { etcd.keep_alive(id, wait).await }
                .into_actor(self)
                .map(move |r, act, ctx| {
                    if everywhere {
                        act.renewing_everywhere = false;
                    } else {
                        act.renewing = false;
                    }
                    if act.phase == Phase::Leaving || id != act.lease {
                        return;
                    }
                    match r {
                        Ok(ttl) if ttl > 0 => {
                            // With two renewals under way, the one sent
                            // later may answer first.
                            if act.renewed_at.is_none_or(|t| sent > t) {
                                act.renewed_at = Some(sent);
                                act.links.gate.open_until(sent + act.ttl);
                            }
                            act.etcd_answers();
                            if act.phase == Phase::Suspended {
                                info!(
                                    act.log,
                                    "etcd answers again and the lease held; sampling resumes."
                                );
                                act.phase = Phase::Member;
                                act.resync(ctx);
                            }
                        }
                        Ok(_) => {
                            warn!(
                                act.log,
                                "The lease is gone (expired in etcd); rejoining the fleet."
                            );
                            act.suspend(ctx);
                            act.phase = Phase::Joining;
                            act.lease = 0;
                            // The other agents own this share by now.
                            act.reassess(ctx);
                            act.join(ctx);
                        }
                        Err(e) => act.problem("renewing the lease", &e),
                    }
                }),
        );
    }

    /// Stops sampling and leading at once.
    fn suspend(&mut self, ctx: &mut Context<Self>) {
        self.links.gate.close();
        if self.phase == Phase::Member {
            AgentStats::add(&self.links.stats.fleet_lease_losses, 1);
            warn!(self.log, "Lease not renewed within its TTL: stopped sampling until etcd answers again."; "lease_ttl_secs" => self.ttl.as_secs());
        }
        self.phase = Phase::Suspended;
        self.reassess(ctx);
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        AgentStats::set(&self.links.stats.fleet_etcd_requests, self.etcd.calls.get());
        match self.phase {
            Phase::Joining => {
                if Instant::now() >= self.retry_at {
                    self.join(ctx);
                }
            }
            Phase::Member | Phase::Suspended => {
                let now = Instant::now();
                if self.phase == Phase::Member && self.lease_deadline().is_none_or(|d| now >= d) {
                    self.suspend(ctx);
                }
                // Every third of the TTL. Once half of it is gone (and
                // while suspended, as often as calls come back) every
                // member is asked at once: the member asked may be holding
                // the call while the cluster elects a new leader, and
                // asking the others one after another could outlast the
                // lease.
                let since = self.renewed_at.map(|t| now.saturating_duration_since(t));
                if since.is_none_or(|d| d >= self.ttl / 2) {
                    self.renew(ctx, true);
                } else if since.is_some_and(|d| d >= self.ttl / 3) {
                    self.renew(ctx, false);
                }
            }
            Phase::Leaving => {}
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct WatchEvents {
    generation: u64,
    events: Vec<Event>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct WatchEnded {
    generation: u64,
    err: EtcdError,
}

impl Actor for Fleet {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        info!(self.log, "Fleet mode: joining through etcd."; "endpoints" => self.settings.endpoints.len(),
            "lease_ttl_secs" => self.settings.lease_ttl.as_secs());
        self.join(ctx);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.links.gate.close();
        if let Some(w) = self.watch.take() {
            w.abort();
        }
    }
}

impl Handler<WatchEvents> for Fleet {
    type Result = ();

    fn handle(&mut self, msg: WatchEvents, ctx: &mut Self::Context) {
        if msg.generation != self.watch_generation {
            return;
        }
        let agents = self.keys.agents();
        let leader = self.keys.leader();
        let mut membership = false;
        for ev in msg.events {
            let key = match &ev {
                Event::Put(kv) => kv.key.as_str(),
                Event::Delete(k) => k.as_str(),
            };
            membership |= key.starts_with(&agents) || key == leader;
            match ev {
                Event::Put(kv) => self.apply_put(kv),
                Event::Delete(k) => self.apply_delete(&k),
            }
        }
        if membership {
            // Who samples what changes now: hand-offs wait for nothing.
            if let Some(h) = self.reassess_pending.take() {
                ctx.cancel_future(h);
            }
            self.reassess(ctx);
        } else if self.reassess_pending.is_none() {
            // Host-set changes come in bursts (a leader publishes
            // thousands of hosts a hundred at a time): one reassessment
            // for the burst.
            self.reassess_pending = Some(ctx.run_later(HOSTS_SETTLE, |act, ctx| {
                act.reassess_pending = None;
                act.reassess(ctx);
            }));
        }
    }
}

impl Handler<WatchEnded> for Fleet {
    type Result = ();

    fn handle(&mut self, msg: WatchEnded, ctx: &mut Self::Context) {
        if msg.generation != self.watch_generation || self.phase == Phase::Leaving {
            return;
        }
        self.problem("watching the fleet", &msg.err);
        let generation = self.watch_generation;
        // The next member is tried after a short pause; the view is read
        // anew there, so nothing that happened meanwhile is missed.
        ctx.run_later(Duration::from_millis(200), move |act, ctx| {
            if generation == act.watch_generation && act.phase != Phase::Joining {
                act.resync(ctx);
            }
        });
    }
}

impl Handler<PublishHosts> for Fleet {
    type Result = ();

    fn handle(&mut self, msg: PublishHosts, ctx: &mut Self::Context) {
        self.to_publish = Some(msg.0);
        self.publish(ctx);
    }
}

impl Handler<LeaveFleet> for Fleet {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: LeaveFleet, _: &mut Self::Context) -> Self::Result {
        self.links.gate.close();
        self.phase = Phase::Leaving;
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        let etcd = self.etcd.clone();
        let lease = self.lease;
        Box::pin(
            async move {
                if lease != 0 {
                    let _ = etcd.revoke(lease).await;
                }
            }
            .into_actor(self)
            .map(|_, act, _| {
                info!(
                    act.log,
                    "Left the fleet; the other agents take this agent's hosts now."
                );
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(message: &str, unavailable: bool) -> EtcdError {
        EtcdError {
            message: message.to_string(),
            unavailable,
        }
    }

    #[test]
    fn a_refusal_after_an_outage_is_logged_though_the_activity_was() {
        let mut p = Problems::default();
        assert!(p.is_news("renewing the lease", &err("cannot reach etcd at a", true)));
        // Another member, still down: not news.
        assert!(!p.is_news("renewing the lease", &err("cannot reach etcd at b", true)));
        // Another activity is.
        assert!(p.is_news("watching the fleet", &err("closed the watch", true)));
        // etcd is back and refuses the password: news, once.
        let refused = err("authentication failed", false);
        assert!(p.is_news("renewing the lease", &refused));
        assert!(!p.is_news("renewing the lease", &refused));
        // Down again: news again.
        assert!(p.is_news("renewing the lease", &err("cannot reach etcd at a", true)));
        assert!(p.clear());
        assert!(!p.clear());
        assert!(p.is_news("renewing the lease", &refused));
    }
}
