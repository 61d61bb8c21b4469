//! The `Supervisor` actor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::prelude::*;
use slog::{error, info, warn, Logger};

use super::restart::{Decision, RestartTracker};
use super::{ChildStatus, ChildStopped, ListChildren, ListHosts, Reload, Shutdown};
use crate::actors::batcher::Lane;
use crate::actors::batcher::{self, Batcher, Flush, StopBatching};
use crate::actors::discovery::{
    ApplyTargets, Discovery, DiscoveryLinks, HostSetChanged, StopDiscovery, TopologyObserved,
};
use crate::actors::fleet::{Fleet, FleetLinks, Leadership, LeaveFleet, OwnedHosts, PublishHosts};
use crate::actors::host_monitor::{
    self, DescribeHost, HostMonitor, HostSpec, MonitorLinks, SamplesCollected, StopMonitoring,
};
use crate::actors::uploader::queue::{BatchQueue, SharedQueue};
use crate::actors::uploader::spool::{Spool, SpoolError};
use crate::actors::uploader::{self, BeginDrain, IsIdle, StopUploading, Uploader};
use crate::actors::{ChildId, Route};
use crate::config::{self, Settings, UploadSettings};
use crate::fleet::{FleetGate, PublishedHost};
use crate::listener::{AgentView, TargetView};
use crate::logging::LogHandle;
use crate::mongo::HostClients;
use crate::sample::Labels;
use crate::stats::{upload_stats, AgentStats, Stats};

/// Opens one upload target's queue: its spool directory (replaying what an
/// earlier run left) or memory only.
pub fn open_lane(
    settings: &UploadSettings,
    stats: &AgentStats,
    log: &Logger,
) -> Result<Lane, SpoolError> {
    let ustats = upload_stats(stats, &settings.name);
    let log = log.new(slog::o!("upload" => settings.name.clone()));
    let spool = match &settings.spool {
        Some(s) => {
            let (spool, replay) = Spool::open(s.clone())?;
            Some((spool, replay, settings.spool_mode))
        }
        None => {
            warn!(log, "No spool (agent.spool_dir = \"\"): waiting batches are kept in memory only and lost if the agent stops.");
            None
        }
    };
    let queue = BatchQueue::new(settings.max_queue_bytes, spool, ustats.clone(), log);
    Ok(Lane {
        settings: settings.clone(),
        queue: SharedQueue::new(queue),
        uploader: Route::default(),
        stats: ustats,
    })
}

/// Where a reload reads the configuration from: the file and the CLI layer
/// that was merged over it at start.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    pub path: PathBuf,
    pub overrides: serde_json::Value,
}

/// The root of the actor tree.
pub struct Supervisor {
    settings: Settings,
    reload_source: Option<ReloadSource>,
    log: Logger,
    log_handle: Option<LogHandle>,
    stats: Stats,
    /// One per upload target, in configuration order.
    lanes: Vec<Lane>,
    /// One batcher per worker; a monitor feeds the one of its worker.
    to_batchers: Vec<Route<SamplesCollected>>,
    to_discovery: Route<TopologyObserved>,
    discovery: Option<Addr<Discovery>>,
    batchers: HashMap<usize, Addr<Batcher>>,
    uploaders: HashMap<String, Addr<Uploader>>,
    /// Hosts Discovery wants monitored.
    wanted: HashMap<String, HostSpec>,
    /// Monitors running now.
    monitors: HashMap<String, Addr<HostMonitor>>,
    /// The host count last warned about for the open-file limit.
    nofile_warned_at: usize,
    nofile_check: Option<actix::SpawnHandle>,
    generations: HashMap<ChildId, u64>,
    trackers: HashMap<ChildId, RestartTracker>,
    failed: HashSet<ChildId>,
    shutting_down: bool,
    /// One driver client per host, shared by discovery and the monitors.
    clients: HostClients,
    /// What the HTTP listener serves, when `[http]` is on.
    view: Option<AgentView>,
    /// Fleet mode: the membership actor, the gate every monitor checks,
    /// and, while this agent leads, the host set it publishes.
    fleet: Option<Addr<Fleet>>,
    gate: FleetGate,
    leading: bool,
    published: BTreeMap<String, PublishedHost>,
    /// The published set when the leadership began (Discovery carries on
    /// from it).
    inherited: BTreeMap<String, String>,
    /// The share `Fleet` gave last, and each target's client options
    /// (resolved once) to build its monitors with.
    share: Vec<PublishedHost>,
    /// What each monitor of the share was last built from.
    applied: HashMap<String, PublishedHost>,
    target_options: HashMap<String, crate::mongo::TargetOptions>,
    /// Targets being resolved now, and those the host set names but this
    /// agent's configuration lacks (warned about once).
    resolving: HashSet<String>,
    unknown_targets: HashSet<String>,
}

impl Supervisor {
    /// Opens every upload target's spool; fails when one cannot be used
    /// (the message names the directory and why).
    pub fn new(
        settings: Settings,
        reload_source: Option<ReloadSource>,
        log: Logger,
        log_handle: Option<LogHandle>,
        stats: Stats,
    ) -> Result<Self, SpoolError> {
        let lanes = settings
            .uploads
            .iter()
            .map(|u| open_lane(u, &stats, &log))
            .collect::<Result<Vec<_>, _>>()?;
        // Read at start only: monitors never move between workers.
        let workers = crate::mongo::Workers::start(settings.agent.workers);
        Ok(Supervisor {
            settings,
            reload_source,
            log,
            log_handle,
            stats,
            lanes,
            to_batchers: (0..workers.len().max(1))
                .map(|_| Route::default())
                .collect(),
            to_discovery: Route::default(),
            discovery: None,
            batchers: HashMap::new(),
            uploaders: HashMap::new(),
            wanted: HashMap::new(),
            monitors: HashMap::new(),
            nofile_warned_at: 0,
            nofile_check: None,
            generations: HashMap::new(),
            trackers: HashMap::new(),
            failed: HashSet::new(),
            shutting_down: false,
            clients: HostClients::with_workers(workers),
            view: None,
            fleet: None,
            gate: FleetGate::open(),
            leading: false,
            published: BTreeMap::new(),
            inherited: BTreeMap::new(),
            share: Vec::new(),
            applied: HashMap::new(),
            target_options: HashMap::new(),
            resolving: HashSet::new(),
            unknown_targets: HashSet::new(),
        })
    }

    /// Keeps `view` up to date (hosts, their latest rounds, upload
    /// targets) for the HTTP listener.
    pub fn with_view(mut self, view: AgentView) -> Self {
        self.view = Some(view);
        self.publish_targets();
        self
    }

    fn publish_targets(&self) {
        if let Some(v) = &self.view {
            v.set_targets(
                self.lanes
                    .iter()
                    .map(|l| TargetView {
                        name: l.settings.name.clone(),
                        stats: l.stats.clone(),
                        spool_budget: l.settings.spool.as_ref().map(|s| s.max_bytes),
                    })
                    .collect(),
            );
        }
    }

    fn next_generation(&mut self, id: &ChildId) -> u64 {
        let g = self.generations.entry(id.clone()).or_insert(0);
        *g += 1;
        *g
    }

    /// Starts (a fresh instance of) one child.
    fn start_child(&mut self, id: ChildId, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let generation = self.next_generation(&id);
        let me = ctx.address().recipient::<ChildStopped>();
        match &id {
            ChildId::Uploader(name) => {
                let Some(lane) = self.lanes.iter().find(|l| &l.settings.name == name) else {
                    return;
                };
                let addr = Uploader::new(
                    lane.settings.clone(),
                    lane.queue.clone(),
                    lane.stats.clone(),
                    me,
                    generation,
                    &self.log,
                )
                .start();
                lane.uploader.set(addr.clone().recipient());
                self.uploaders.insert(name.clone(), addr);
            }
            ChildId::Batcher(i) => {
                let i = *i;
                let batcher = Batcher::new(
                    self.lanes.clone(),
                    self.settings.agent.clone(),
                    &self.settings.collect,
                    me,
                    batcher::Place {
                        worker: i,
                        generation,
                    },
                    self.stats.clone(),
                    &self.log,
                )
                .with_view(self.view.clone());
                // On its worker, beside the monitors that feed it: their
                // samples never cross a thread before they are bytes.
                let addr = match self.clients.workers().get(i) {
                    Some(w) => Batcher::start_in_arbiter(&w, move |_| batcher),
                    None => batcher.start(),
                };
                self.to_batchers[i].set(addr.clone().recipient());
                self.batchers.insert(i, addr);
            }
            ChildId::Discovery => {
                let addr = Discovery::new(
                    self.settings.targets.clone(),
                    self.settings.discovery.clone(),
                    self.settings.agent.clone(),
                    DiscoveryLinks {
                        sink: ctx.address().recipient(),
                        supervisor: me,
                        clients: self.clients.clone(),
                    },
                    generation,
                    &self.log,
                )
                .inheriting(self.inherited.clone())
                .start();
                self.to_discovery.set(addr.clone().recipient());
                self.discovery = Some(addr);
            }
            ChildId::Host(host) => {
                let Some(spec) = self.wanted.get(host).cloned() else {
                    return;
                };
                if let Some(v) = &self.view {
                    v.register_host(host);
                }
                let worker = self.clients.workers().index_for(host).unwrap_or(0);
                let links = MonitorLinks {
                    samples: self.to_batchers[worker % self.to_batchers.len()].clone(),
                    topology: self.to_discovery.clone(),
                    supervisor: me,
                    stats: self.stats.clone(),
                    mongos_ping_window: self.settings.discovery.mongos_ping_window,
                    clients: self.clients.clone(),
                    gate: self.gate.clone(),
                };
                let monitor = HostMonitor::new(
                    spec,
                    self.settings.agent.clone(),
                    links,
                    generation,
                    &self.log,
                );
                // On the worker its connection lives on, for its whole life.
                let addr = match self.clients.worker_for(host) {
                    Some(w) => HostMonitor::start_in_arbiter(&w, move |_| monitor),
                    None => monitor.start(),
                };
                self.monitors.insert(host.clone(), addr);
                AgentStats::set(&self.stats.hosts_monitored, self.monitors.len() as u64);
            }
        }
    }

    fn is_running(&self, id: &ChildId) -> bool {
        match id {
            ChildId::Uploader(n) => self.uploaders.get(n).is_some_and(|a| a.connected()),
            ChildId::Batcher(i) => self.batchers.get(i).is_some_and(|a| a.connected()),
            ChildId::Discovery => self.discovery.as_ref().is_some_and(|a| a.connected()),
            ChildId::Host(h) => self.monitors.get(h).is_some_and(|a| a.connected()),
        }
    }

    fn stop_monitor(&mut self, host: &str) {
        if let Some(addr) = self.monitors.remove(host) {
            addr.do_send(StopMonitoring);
        }
        if let Some(v) = &self.view {
            v.forget_host(host);
        }
        let id = ChildId::Host(host.to_string());
        self.failed.remove(&id);
        self.trackers.remove(&id);
        AgentStats::set(&self.stats.hosts_monitored, self.monitors.len() as u64);
    }

    /// Upload targets after a reload: kept ones (by name) get their new
    /// settings and keep their queue; removed ones persist what waits to
    /// their spool and stop; new ones open their spool and start.
    fn apply_uploads(&mut self, ctx: &mut Context<Self>) {
        let mut lanes = Vec::with_capacity(self.settings.uploads.len());
        let mut old: Vec<Lane> = std::mem::take(&mut self.lanes);
        for u in self.settings.uploads.clone() {
            if let Some(pos) = old.iter().position(|l| l.settings.name == u.name) {
                let mut lane = old.remove(pos);
                if lane.settings.spool.as_ref().map(|s| &s.dir) != u.spool.as_ref().map(|s| &s.dir)
                {
                    warn!(self.log, "A new spool directory takes effect at the next start; the running one stays in use."; "upload" => &u.name);
                }
                if lane.settings != u {
                    if let Some(a) = self.uploaders.get(&u.name) {
                        a.do_send(uploader::ApplySettings(u.clone()));
                    }
                }
                lane.settings = u;
                lanes.push(lane);
            } else {
                match open_lane(&u, &self.stats, &self.log) {
                    Ok(lane) => {
                        info!(self.log, "Upload target added."; "upload" => &u.name);
                        lanes.push(lane);
                        self.lanes = lanes.clone();
                        self.start_child(ChildId::Uploader(u.name.clone()), ctx);
                        lanes = std::mem::take(&mut self.lanes);
                    }
                    Err(e) => {
                        error!(self.log, "Cannot open the spool of a new upload target; it is not started."; "upload" => &u.name, "error" => e.to_string());
                    }
                }
            }
        }
        for gone in old {
            info!(self.log, "Upload target removed; what it had waiting stays in its spool."; "upload" => &gone.settings.name);
            let left = gone.queue.lock().persist();
            if left > 0 {
                warn!(self.log, "Batches of a removed target could not be kept."; "upload" => &gone.settings.name, "batches" => left);
            }
            if let Some(a) = self.uploaders.remove(&gone.settings.name) {
                a.do_send(StopUploading);
            }
        }
        self.lanes = lanes;
        self.publish_targets();
    }

    fn apply(&mut self, new: Settings, ctx: &mut Context<Self>) {
        let old = std::mem::replace(&mut self.settings, new);
        if let Some(h) = &self.log_handle {
            h.set_level(self.settings.agent.log_level);
        }
        if old.agent.log_file != self.settings.agent.log_file
            || old.agent.log_format != self.settings.agent.log_format
        {
            warn!(self.log, "agent.log_file and agent.log_format take effect at the next start; the level changed now.");
        }
        if old.fleet != self.settings.fleet {
            warn!(
                self.log,
                "Changes to [fleet] take effect at the next start; the agent stays in its fleet as it is."
            );
            self.settings.fleet = old.fleet.clone();
        }
        if old.http != self.settings.http {
            warn!(
                self.log,
                "Changes to [http] take effect at the next start; the listener keeps its settings."
            );
        }
        if old.agent != self.settings.agent {
            for addr in self.monitors.values() {
                addr.do_send(host_monitor::ApplySettings(self.settings.agent.clone()));
            }
        }
        if old.uploads != self.settings.uploads {
            self.apply_uploads(ctx);
        }
        if old.agent != self.settings.agent
            || old.uploads != self.settings.uploads
            || old.collect != self.settings.collect
        {
            for b in self.batchers.values() {
                b.do_send(batcher::ApplySettings {
                    lanes: self.lanes.clone(),
                    agent: self.settings.agent.clone(),
                    collect: self.settings.collect.clone(),
                });
            }
        }
        if self.fleet.is_some() && old.targets != self.settings.targets {
            // The share's monitors are built from this agent's own target
            // settings: rebuild those whose target changed.
            let targets = &self.settings.targets;
            self.target_options.retain(|name, _| {
                old.targets.iter().find(|t| &t.name == name)
                    == targets.iter().find(|t| &t.name == name)
            });
            self.applied.clear();
            self.unknown_targets.clear();
            self.apply_share(ctx);
        }
        if old.targets != self.settings.targets
            || old.discovery != self.settings.discovery
            || old.agent != self.settings.agent
        {
            if let Some(d) = &self.discovery {
                d.do_send(ApplyTargets {
                    targets: self.settings.targets.clone(),
                    discovery: self.settings.discovery.clone(),
                    agent: self.settings.agent.clone(),
                });
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        info!(self.log, "Agent starting."; "version" => env!("CARGO_PKG_VERSION"), "targets" => self.settings.targets.len(),
            "interval_secs" => self.settings.agent.interval.as_secs());
        // Downstream first, so the first samples find a batcher and the
        // first batch an uploader.
        let names: Vec<String> = self.lanes.iter().map(|l| l.settings.name.clone()).collect();
        for name in names {
            self.start_child(ChildId::Uploader(name), ctx);
        }
        for i in 0..self.to_batchers.len() {
            self.start_child(ChildId::Batcher(i), ctx);
        }
        match self.settings.fleet.clone() {
            // Discovery runs on whichever agent the fleet elects.
            Some(fleet) => {
                self.gate = FleetGate::closed();
                if let Some(v) = &self.view {
                    v.set_fleet(&fleet.name, &fleet.agent_id, self.gate.clone());
                }
                let links = FleetLinks {
                    owned: ctx.address().recipient(),
                    leadership: ctx.address().recipient(),
                    gate: self.gate.clone(),
                    stats: self.stats.clone(),
                };
                // On a thread of its own: the lease must be renewed on
                // time however busy the main thread is (discovery of
                // thousands of targets, a reload).
                let log = self.log.clone();
                let arbiter = actix_rt::Arbiter::new();
                self.fleet = Some(Fleet::start_in_arbiter(&arbiter.handle(), move |_| {
                    Fleet::new(fleet, links, &log)
                }));
            }
            None => self.start_child(ChildId::Discovery, ctx),
        }
    }
}

impl Supervisor {
    /// Warns once per growth past the open-file limit: connections to the
    /// hosts beyond it would fail with "too many open files", host by host.
    fn check_nofile(&mut self) {
        let hosts = self.wanted.len();
        let Some(limit) = crate::daemon::nofile_limit() else {
            return;
        };
        if crate::daemon::hosts_fit(hosts, limit) {
            self.nofile_warned_at = 0;
            return;
        }
        if hosts > self.nofile_warned_at {
            self.nofile_warned_at = hosts;
            warn!(self.log, "The open-file limit is too low for this many hosts; some will fail to connect. Raise the hard limit: LimitNOFILE= in the systemd unit, or ulimit -Hn before starting.";
                "hosts" => hosts, "limit" => limit,
                "needed" => (hosts as u64) * crate::daemon::SOCKETS_PER_HOST + crate::daemon::NOFILE_RESERVE);
        }
    }
}

impl Handler<HostSetChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: HostSetChanged, ctx: &mut Self::Context) {
        if self.shutting_down {
            return;
        }
        if let Some(fleet) = &self.fleet {
            // The leader publishes; every agent (this one too) monitors
            // the share that comes back as OwnedHosts.
            for host in &msg.removed {
                self.published.remove(host);
            }
            for spec in &msg.added {
                self.published.insert(
                    spec.addr.clone(),
                    PublishedHost {
                        addr: spec.addr.clone(),
                        target: spec.target.clone(),
                        cluster: spec.cluster.clone(),
                        replset: spec.replset.clone(),
                        shard: spec.shard.clone(),
                    },
                );
            }
            if self.leading {
                fleet.do_send(PublishHosts(self.published.values().cloned().collect()));
            }
            return;
        }
        self.change_hosts(msg.added, msg.removed, ctx);
    }
}

impl Supervisor {
    /// Starts, restarts and stops monitors: `added` are new or changed
    /// hosts, `removed` hosts to stop.
    fn change_hosts(
        &mut self,
        added: Vec<HostSpec>,
        removed: Vec<String>,
        ctx: &mut Context<Self>,
    ) {
        for host in removed {
            info!(self.log, "Host no longer monitored."; "host" => &host);
            self.wanted.remove(&host);
            self.stop_monitor(&host);
        }
        for spec in added {
            let host = spec.addr.clone();
            let unchanged = self.wanted.get(&host).is_some_and(|old| {
                old.fingerprint == spec.fingerprint && old.cluster == spec.cluster
            });
            if unchanged && self.monitors.contains_key(&host) {
                continue;
            }
            self.stop_monitor(&host);
            self.wanted.insert(host.clone(), spec);
            self.start_child(ChildId::Host(host), ctx);
        }
        // Checked once the host set settles (targets resolve one by one),
        // so that one warning gives the final count.
        if let Some(h) = self.nofile_check.take() {
            ctx.cancel_future(h);
        }
        self.nofile_check = Some(ctx.run_later(Duration::from_secs(1), |act, _| {
            act.nofile_check = None;
            act.check_nofile();
        }));
    }
}

impl Supervisor {
    /// Turns the fleet's share into monitors: each host's spec is built
    /// from this agent's own copy of its target's settings. A target whose
    /// options are not resolved yet is resolved first (once), then the
    /// share is applied again.
    fn apply_share(&mut self, ctx: &mut Context<Self>) {
        let mut specs = Vec::new();
        let mut built = Vec::new();
        // A fleet can have thousands of targets: look them up by name.
        let targets: HashMap<&str, &config::TargetSettings> = self
            .settings
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let mut to_resolve = Vec::new();
        for h in &self.share {
            // Unchanged and running: nothing to build (a share of
            // thousands of hosts changes a few at a time).
            if self.applied.get(&h.addr) == Some(h) && self.monitors.contains_key(&h.addr) {
                continue;
            }
            let Some(target) = targets.get(h.target.as_str()) else {
                if self.unknown_targets.insert(h.target.clone()) {
                    warn!(self.log, "The fleet's host set names a target this agent's configuration lacks; every agent of a fleet needs the same [[targets]]."; "host" => &h.addr, "target" => &h.target);
                }
                continue;
            };
            match self.target_options.get(&h.target) {
                Some(opts) => {
                    specs.push(crate::actors::discovery::spec_for(
                        target,
                        opts,
                        &h.cluster,
                        &h.addr,
                        h.replset.clone(),
                        h.shard.clone(),
                    ));
                    built.push(h.clone());
                }
                None => {
                    if self.resolving.insert(h.target.clone()) {
                        to_resolve.push((*target).clone());
                    }
                }
            }
        }
        if !to_resolve.is_empty() {
            // Every target the share needs, resolved together; the share
            // is applied again once, when all have answered.
            let fut = async move {
                let results = futures_util::future::join_all(
                    to_resolve.iter().map(crate::mongo::target_options),
                )
                .await;
                to_resolve
                    .into_iter()
                    .map(|t| t.name)
                    .zip(results)
                    .collect::<Vec<_>>()
            };
            ctx.spawn(fut.into_actor(self).map(|results, act, ctx| {
                let mut failed = false;
                for (name, r) in results {
                    act.resolving.remove(&name);
                    match r {
                        Ok(o) => {
                            act.target_options.insert(name, o);
                        }
                        Err(e) => {
                            failed = true;
                            error!(act.log, "Cannot resolve a target of the fleet's share; trying again."; "target" => name, "error" => e.message);
                        }
                    }
                }
                if failed {
                    ctx.run_later(Duration::from_secs(5), |act, ctx| act.apply_share(ctx));
                }
                act.apply_share(ctx);
            }));
        }
        let keep: HashSet<&str> = self.share.iter().map(|h| h.addr.as_str()).collect();
        let removed: Vec<String> = self
            .wanted
            .keys()
            .filter(|h| !keep.contains(h.as_str()))
            .cloned()
            .collect();
        for h in built {
            self.applied.insert(h.addr.clone(), h);
        }
        for h in &removed {
            self.applied.remove(h);
        }
        self.change_hosts(specs, removed, ctx);
    }
}

impl Handler<OwnedHosts> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: OwnedHosts, ctx: &mut Self::Context) {
        if self.shutting_down {
            return;
        }
        self.share = msg.0;
        self.apply_share(ctx);
    }
}

impl Handler<Leadership> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Leadership, ctx: &mut Self::Context) {
        if self.shutting_down {
            return;
        }
        self.leading = msg.leader;
        if msg.leader {
            self.inherited = msg
                .published
                .iter()
                .map(|h| (h.addr.clone(), h.target.clone()))
                .collect();
            self.published = msg
                .published
                .into_iter()
                .map(|h| (h.addr.clone(), h))
                .collect();
            if !self.is_running(&ChildId::Discovery) {
                self.start_child(ChildId::Discovery, ctx);
            }
        } else if let Some(d) = self.discovery.take() {
            d.do_send(StopDiscovery);
        }
    }
}

impl Handler<ChildStopped> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildStopped, ctx: &mut Self::Context) {
        if self.shutting_down || self.generations.get(&msg.child) != Some(&msg.generation) {
            return;
        }
        if let ChildId::Host(h) = &msg.child {
            if !self.wanted.contains_key(h) {
                return;
            }
            self.monitors.remove(h);
        }
        let decision = self
            .trackers
            .entry(msg.child.clone())
            .or_default()
            .on_stop(Instant::now());
        match decision {
            Decision::RestartAfter(delay) => {
                AgentStats::add(&self.stats.restarts, 1);
                warn!(self.log, "Child stopped unexpectedly; restarting."; "child" => msg.child.to_string(), "delay_ms" => delay.as_millis() as u64);
                let id = msg.child;
                ctx.run_later(delay, move |act, ctx| {
                    if !act.is_running(&id) {
                        act.start_child(id, ctx);
                    }
                });
            }
            Decision::GiveUp => {
                error!(self.log, "Child keeps stopping; giving up on it. The rest of the agent keeps running."; "child" => msg.child.to_string());
                self.failed.insert(msg.child);
            }
        }
    }
}

impl Handler<ListChildren> for Supervisor {
    type Result = Vec<ChildStatus>;

    fn handle(&mut self, _: ListChildren, _: &mut Self::Context) -> Vec<ChildStatus> {
        let mut ids = vec![ChildId::Discovery];
        ids.extend((0..self.to_batchers.len()).map(ChildId::Batcher));
        ids.extend(
            self.lanes
                .iter()
                .map(|l| ChildId::Uploader(l.settings.name.clone())),
        );
        let mut hosts: Vec<&String> = self.wanted.keys().collect();
        hosts.sort();
        ids.extend(hosts.into_iter().map(|h| ChildId::Host(h.clone())));
        ids.into_iter()
            .map(|id| ChildStatus {
                generation: self.generations.get(&id).copied().unwrap_or(0),
                running: self.is_running(&id),
                failed: self.failed.contains(&id),
                id,
            })
            .collect()
    }
}

impl Handler<ListHosts> for Supervisor {
    type Result = ResponseFuture<Vec<Labels>>;

    fn handle(&mut self, _: ListHosts, _: &mut Self::Context) -> Self::Result {
        let monitors: Vec<Addr<HostMonitor>> = self.monitors.values().cloned().collect();
        Box::pin(async move {
            let mut out = Vec::with_capacity(monitors.len());
            for m in monitors {
                if let Ok(l) = m.send(DescribeHost).await {
                    out.push(l);
                }
            }
            out.sort_by(|a, b| a.host.cmp(&b.host));
            out
        })
    }
}

impl Handler<Reload> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Reload, ctx: &mut Self::Context) {
        if let Some(h) = &self.log_handle {
            if let Err(e) = h.reopen() {
                error!(self.log, "Cannot reopen the log file."; "error" => e.to_string());
            }
        }
        let Some(src) = self.reload_source.clone() else {
            warn!(
                self.log,
                "Reload asked, but this agent has no configuration file to reread."
            );
            return;
        };
        // The same permission checks as at start: a file that became
        // writable by others since then is no more trusted on a reload.
        let result = config::load(&src.path, &src.overrides)
            .and_then(|raw| Ok((config::validate(&raw, Some(&src.path))?, raw)))
            .map_err(|e| e.to_string())
            .and_then(|(new, raw)| {
                let euid = Some(crate::daemon::euid());
                match crate::daemon::permission_refusal(&src.path, &raw, euid) {
                    Some(msg) => Err(msg),
                    None => Ok(new),
                }
            });
        match result {
            Ok(new) => {
                info!(self.log, "Configuration reloaded."; "file" => src.path.display().to_string(), "targets" => new.targets.len());
                self.apply(new, ctx);
            }
            Err(e) => {
                error!(self.log, "Reload rejected; keeping the running configuration."; "error" => e);
            }
        }
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        if self.shutting_down {
            warn!(
                self.log,
                "Second stop signal; exiting without waiting for the receiver."
            );
            System::current().stop();
            return;
        }
        self.shutting_down = true;
        crate::failpoint::hit("supervisor.shutdown");
        let timeout = self.settings.agent.shutdown_timeout;
        info!(self.log, "Shutting down."; "drain_timeout_secs" => timeout.as_secs());
        if let Some(d) = self.discovery.take() {
            d.do_send(StopDiscovery);
        }
        // Each monitor's stop is awaited before the batchers flush: a round
        // that ends meanwhile sends its samples first (a stopped actor
        // polls no more futures), so the flush takes them. Not waiting let
        // a last round reach the batcher after its flush, to be batched
        // again and delivered to a fast receiver while a slower one was
        // already judged idle.
        let monitors_stopped = futures_util::future::join_all(
            self.monitors
                .drain()
                .map(|(_, addr)| addr.send(StopMonitoring))
                .collect::<Vec<_>>(),
        );
        let batchers: Vec<Addr<Batcher>> = self.batchers.values().cloned().collect();
        let uploaders: Vec<Addr<Uploader>> = self.uploaders.values().cloned().collect();
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        let fleet = self.fleet.clone();
        let drain = async move {
            let _ = actix_rt::time::timeout(timeout, monitors_stopped).await;
            if let Some(f) = fleet {
                let _ = f.send(LeaveFleet).await;
            }
            for b in &batchers {
                let _ = b.send(Flush).await;
            }
            for u in &uploaders {
                u.do_send(BeginDrain);
            }
            loop {
                let mut idle = true;
                for u in &uploaders {
                    idle &= u.send(IsIdle).await.unwrap_or(true);
                }
                if idle || Instant::now() >= deadline {
                    break;
                }
                actix_rt::time::sleep(Duration::from_millis(50)).await;
            }
        };
        ctx.spawn(drain.into_actor(self).map(|_, act, _| {
            for lane in &act.lanes {
                let mut q = lane.queue.lock();
                let (left, bytes) = (q.len(), q.bytes());
                q.flush_drop_log();
                if left == 0 {
                    info!(act.log, "All queued batches delivered."; "upload" => &lane.settings.name);
                    continue;
                }
                let lost = q.persist();
                if lost == 0 {
                    info!(act.log, "Receiver did not take everything in time; the rest waits in the spool for the next start."; "upload" => &lane.settings.name, "batches" => left, "bytes" => bytes);
                } else {
                    warn!(act.log, "Exiting with batches the receiver did not take and the spool could not keep; they are lost."; "upload" => &lane.settings.name, "batches" => lost);
                }
            }
            info!(act.log, "Exiting.");
            for (_, b) in act.batchers.drain() {
                b.do_send(StopBatching);
            }
            for (_, u) in act.uploaders.drain() {
                u.do_send(StopUploading);
            }
            System::current().stop();
        }));
    }
}
