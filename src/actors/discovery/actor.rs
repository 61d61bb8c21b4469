//! The `Discovery` actor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::mongo::TargetOptions;
use actix::prelude::*;
use slog::{debug, error, info, warn, Logger};

use super::expand::{self, Expansion, Found, HostKind};
use super::{ApplyTargets, HostSetChanged, StopDiscovery, TopologyObserved};
use crate::actors::host_monitor::HostSpec;
use crate::actors::supervisor::ChildStopped;
use crate::actors::ChildId;
use crate::config::{AgentSettings, DiscoverySettings, TargetSettings};
use crate::mongo::{self, HostClients};

/// How soon a target whose URI could not be resolved (SRV, DNS) is retried.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// What discovery knows about one target.
struct TargetState {
    settings: TargetSettings,
    options: Option<TargetOptions>,
    hosts: BTreeMap<String, Found>,
    /// Hosts the last authoritative expansion no longer listed, and since when.
    missing_since: HashMap<String, Instant>,
    cluster_label: String,
    expanding: bool,
    /// Another expansion was asked for while one ran.
    again: bool,
    /// Problems already logged, so each is logged once.
    warned: HashSet<String>,
    /// Last fingerprint reported per host.
    fingerprints: HashMap<String, u64>,
}

/// Keeps the wanted host set.
pub struct Discovery {
    targets: BTreeMap<String, TargetState>,
    discovery: DiscoverySettings,
    agent: AgentSettings,
    /// The host set last announced: addr → spec.
    announced: BTreeMap<String, HostSpec>,
    sink: Recipient<HostSetChanged>,
    supervisor: Recipient<ChildStopped>,
    generation: u64,
    log: Logger,
    stop_requested: bool,
    tick: Option<SpawnHandle>,
    announce_pending: Option<SpawnHandle>,
    /// The per-host clients, shared with the monitors.
    clients: HostClients,
    /// Fleet mode: hosts (→ target) an earlier leader published that this
    /// discovery has not confirmed yet.
    inherited: BTreeMap<String, String>,
}

/// How long resolved targets wait to be announced together.
const ANNOUNCE_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Where discovery's results go, and the clients it shares with the monitors.
pub struct DiscoveryLinks {
    pub sink: Recipient<HostSetChanged>,
    pub supervisor: Recipient<ChildStopped>,
    pub clients: HostClients,
}

impl Discovery {
    pub fn new(
        targets: Vec<TargetSettings>,
        discovery: DiscoverySettings,
        agent: AgentSettings,
        links: DiscoveryLinks,
        generation: u64,
        log: &Logger,
    ) -> Self {
        let DiscoveryLinks {
            sink,
            supervisor,
            clients,
        } = links;
        let mut d = Discovery {
            targets: BTreeMap::new(),
            discovery,
            agent,
            announced: BTreeMap::new(),
            sink,
            supervisor,
            generation,
            log: log.new(slog::o!("actor" => "discovery")),
            stop_requested: false,
            tick: None,
            announce_pending: None,
            clients,
            inherited: BTreeMap::new(),
        };
        d.set_targets(targets);
        d
    }

    /// Fleet mode: carry on from the host set an earlier leader published
    /// (`host:port` → target); hosts not found again are announced removed
    /// once their target has been expanded.
    pub fn inheriting(mut self, hosts: BTreeMap<String, String>) -> Self {
        self.inherited = hosts;
        self
    }

    fn set_targets(&mut self, targets: Vec<TargetSettings>) {
        let mut old = std::mem::take(&mut self.targets);
        for t in targets {
            let state = match old.remove(&t.name) {
                // Same settings: keep what was learned.
                Some(s) if s.settings == t => s,
                prev => {
                    if let Some(p) = prev {
                        self.clients
                            .forget_settings(mongo::settings_hash(&p.settings));
                    }
                    TargetState {
                        cluster_label: t.name.clone(),
                        settings: t.clone(),
                        options: None,
                        hosts: BTreeMap::new(),
                        missing_since: HashMap::new(),
                        expanding: false,
                        again: false,
                        warned: HashSet::new(),
                        fingerprints: HashMap::new(),
                    }
                }
            };
            self.targets.insert(t.name, state);
        }
        // Clients logged in with settings that are gone are not reused.
        for gone in old.values() {
            self.clients
                .forget_settings(mongo::settings_hash(&gone.settings));
        }
    }

    fn refresh_all(&mut self, ctx: &mut Context<Self>) {
        let names: Vec<String> = self.targets.keys().cloned().collect();
        for n in names {
            self.refresh(&n, ctx);
        }
    }

    /// Expands one target in the background, then announces the result.
    fn refresh(&mut self, name: &str, ctx: &mut Context<Self>) {
        let Some(state) = self.targets.get_mut(name) else {
            return;
        };
        if state.expanding {
            state.again = true;
            return;
        }
        state.expanding = true;
        let settings = state.settings.clone();
        let options = state.options.clone();
        let agent = self.agent.clone();
        let window = self.discovery.mongos_ping_window;
        let clients = self.clients.clone();
        let fut = async move {
            let options = match options {
                Some(o) => o,
                None => match mongo::target_options(&settings).await {
                    Ok(o) => o,
                    Err(e) => return (settings, Err(e.message)),
                },
            };
            let expansion = if settings.discover {
                let clients = expand::Clients {
                    cache: &clients,
                    settings: mongo::settings_hash(&settings),
                };
                expand::expand(&settings.hosts, &options, &agent, window, clients).await
            } else {
                seeds_only(&settings.hosts)
            };
            (settings, Ok((options, expansion)))
        };
        let name = name.to_string();
        ctx.spawn(fut.into_actor(self).map(move |(settings, result), act, ctx| {
            let Some(state) = act.targets.get_mut(&name) else {
                return;
            };
            state.expanding = false;
            if state.settings != settings {
                // Replaced by a reload while we were walking; walk again.
                act.refresh(&name, ctx);
                return;
            }
            match result {
                Ok((options, expansion)) => {
                    if state.options.is_none() {
                        if let Some(weak) = options.conn.tls.as_ref().and_then(|t| t.weakened) {
                            warn!(act.log, "TLS verification is relaxed for this target by its URI."; "target" => &name, "option" => weak);
                        }
                    }
                    state.options = Some(options);
                    act.merge(&name, expansion, ctx);
                }
                Err(msg) => {
                    error!(act.log, "Cannot resolve target; keeping its previous hosts."; "target" => &name, "error" => msg);
                    ctx.run_later(RESOLVE_RETRY, move |act, ctx| act.refresh(&name, ctx));
                    return;
                }
            }
            let again = act.targets.get_mut(&name).map(|s| std::mem::replace(&mut s.again, false)).unwrap_or(false);
            act.announce_soon(ctx);
            if again {
                act.refresh(&name, ctx);
            }
        }));
    }

    /// Folds an expansion into the target's host set, applying the grace
    /// period to hosts that left.
    fn merge(&mut self, name: &str, e: Expansion, ctx: &mut Context<Self>) {
        let grace = self.discovery.removal_grace;
        let Some(state) = self.targets.get_mut(name) else {
            return;
        };
        for p in &e.problems {
            if state.warned.insert(p.clone()) {
                warn!(self.log, "Discovery problem."; "target" => name, "problem" => p);
            }
        }
        if !state.settings.name_explicit {
            if let Some(c) = &e.cluster_name {
                state.cluster_label = c.clone();
            }
        }
        let now = Instant::now();
        let mut recheck_in: Option<Duration> = None;
        let previous: Vec<String> = state.hosts.keys().cloned().collect();
        for (addr, f) in &e.hosts {
            state.missing_since.remove(addr);
            // An unreachable host keeps what was known of it before.
            match (f.kind, state.hosts.get(addr)) {
                (HostKind::Unreachable, Some(old)) => {
                    let mut keep = old.clone();
                    keep.replset = keep.replset.or_else(|| f.replset.clone());
                    state.hosts.insert(addr.clone(), keep);
                }
                _ => {
                    state.hosts.insert(addr.clone(), f.clone());
                }
            }
        }
        if e.authoritative {
            for addr in previous.into_iter().filter(|a| !e.hosts.contains_key(a)) {
                let since = *state.missing_since.entry(addr.clone()).or_insert(now);
                let gone_for = now.duration_since(since);
                if gone_for >= grace {
                    info!(self.log, "Host left the topology; no longer monitored."; "target" => name, "host" => &addr);
                    state.hosts.remove(&addr);
                    state.missing_since.remove(&addr);
                    state.fingerprints.remove(&addr);
                } else {
                    let left = grace - gone_for;
                    recheck_in = Some(recheck_in.map_or(left, |r: Duration| r.min(left)));
                }
            }
        }
        // Clients probed under a name the walk did not keep (an alias of a
        // host known by its `me`) or of hosts that left are not needed.
        let hosts = &state.hosts;
        self.clients
            .retain(mongo::settings_hash(&state.settings), |a| {
                hosts.contains_key(a)
            });
        if let Some(delay) = recheck_in {
            let name = name.to_string();
            ctx.run_later(delay + Duration::from_millis(50), move |act, ctx| {
                act.refresh(&name, ctx)
            });
        }
    }

    /// Announces soon rather than now: when thousands of targets resolve
    /// within moments of each other (a fleet configured host by host), one
    /// announcement covers them all instead of one per target, each
    /// walking every host.
    fn announce_soon(&mut self, ctx: &mut Context<Self>) {
        if self.announce_pending.is_some() {
            return;
        }
        self.announce_pending = Some(ctx.run_later(ANNOUNCE_DELAY, |act, _| {
            act.announce_pending = None;
            act.announce();
        }));
    }

    fn announce(&mut self) {
        let mut wanted: BTreeMap<String, HostSpec> = BTreeMap::new();
        // Targets not resolved yet keep what they had: one pass over the
        // announced hosts, not one per target.
        for (addr, spec) in &self.announced {
            if self
                .targets
                .get(&spec.target)
                .is_some_and(|t| t.options.is_none())
            {
                wanted.insert(addr.clone(), spec.clone());
            }
        }
        for (name, state) in &self.targets {
            let Some(opts) = &state.options else {
                continue;
            };
            for (addr, f) in &state.hosts {
                if let Some(other) = wanted.get(addr) {
                    if &other.target != name {
                        debug!(self.log, "Host found by two targets; monitoring it once."; "host" => addr, "kept" => other.target.clone());
                    }
                    continue;
                }
                wanted.insert(
                    addr.clone(),
                    spec_for(
                        &state.settings,
                        opts,
                        &state.cluster_label,
                        addr,
                        f.replset.clone(),
                        f.shard.clone(),
                    ),
                );
            }
        }
        let mut removed: Vec<String> = self
            .announced
            .keys()
            .filter(|a| !wanted.contains_key(*a))
            .cloned()
            .collect();
        // Hosts an earlier leader published: once their target has been
        // expanded here (or is configured no more), those not found again
        // are gone.
        let targets = &self.targets;
        self.inherited.retain(|addr, target| {
            let settled = targets.get(target).is_none_or(|t| t.options.is_some());
            if settled && !wanted.contains_key(addr) {
                removed.push(addr.clone());
            }
            !settled
        });
        let added: Vec<HostSpec> = wanted
            .values()
            .filter(|s| self.announced.get(&s.addr).map(|o| o.fingerprint) != Some(s.fingerprint))
            .cloned()
            .collect();
        self.announced = wanted;
        if added.is_empty() && removed.is_empty() {
            return;
        }
        info!(self.log, "Host set changed."; "added" => added.len(), "removed" => removed.len(), "total" => self.announced.len());
        self.sink.do_send(HostSetChanged { added, removed });
    }

    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.tick.take() {
            ctx.cancel_future(h);
        }
        self.tick =
            Some(ctx.run_interval(self.discovery.interval, |act, ctx| act.refresh_all(ctx)));
    }
}

fn seeds_only(seeds: &[String]) -> Expansion {
    let mut e = Expansion::default();
    for s in seeds {
        e.hosts.insert(
            s.clone(),
            Found {
                addr: s.clone(),
                kind: HostKind::Standalone,
                replset: None,
                shard: None,
                config_server: false,
            },
        );
    }
    e
}

/// What a monitor of `addr` is built from: the target's settings and
/// client options, and the labels discovery found. Fleet agents build the
/// same from the host set their leader published.
pub fn spec_for(
    t: &TargetSettings,
    options: &mongo::TargetOptions,
    cluster: &str,
    addr: &str,
    replset: Option<String>,
    shard: Option<String>,
) -> HostSpec {
    HostSpec {
        addr: addr.to_string(),
        target: t.name.clone(),
        cluster: cluster.to_string(),
        fingerprint: fingerprint(t, cluster, &shard),
        replset,
        shard,
        base_options: options.clone(),
        settings_hash: mongo::settings_hash(t),
    }
}

/// A hash of what a monitor is built from: target settings and labels. A
/// monitor is restarted only when it changes.
fn fingerprint(t: &TargetSettings, cluster: &str, shard: &Option<String>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&t.name, &t.uri, &t.username, &t.password, cluster, shard).hash(&mut h);
    h.finish()
}

impl Actor for Discovery {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.refresh_all(ctx);
        self.schedule_tick(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if !self.stop_requested {
            self.supervisor.do_send(ChildStopped {
                child: ChildId::Discovery,
                generation: self.generation,
            });
        }
    }
}

impl Handler<ApplyTargets> for Discovery {
    type Result = ();

    fn handle(&mut self, msg: ApplyTargets, ctx: &mut Self::Context) {
        let interval_changed = msg.discovery.interval != self.discovery.interval;
        self.discovery = msg.discovery;
        self.agent = msg.agent;
        self.set_targets(msg.targets);
        if interval_changed {
            self.schedule_tick(ctx);
        }
        self.refresh_all(ctx);
        // Targets that are gone take their hosts with them now.
        self.announce();
    }
}

impl Handler<TopologyObserved> for Discovery {
    type Result = ();

    fn handle(&mut self, msg: TopologyObserved, ctx: &mut Self::Context) {
        let Some(state) = self.targets.get_mut(&msg.target) else {
            return;
        };
        let before = state.fingerprints.insert(msg.host.clone(), msg.fingerprint);
        // A host discovery could not reach (a seed that was down or slow
        // at start) answering now is a reason to walk from it at once,
        // not at the next periodic expansion minutes later.
        let was_unreachable = state
            .hosts
            .get(&msg.host)
            .is_some_and(|f| f.kind == HostKind::Unreachable);
        if before.is_some_and(|b| b != msg.fingerprint) || (before.is_none() && was_unreachable) {
            debug!(self.log, "Topology changed or a host became reachable; expanding again."; "target" => &msg.target, "seen_by" => &msg.host);
            self.refresh(&msg.target, ctx);
        }
    }
}

impl Handler<StopDiscovery> for Discovery {
    type Result = ();

    fn handle(&mut self, _: StopDiscovery, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}
