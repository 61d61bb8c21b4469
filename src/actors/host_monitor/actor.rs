//! The `HostMonitor` actor: schedule, rounds, and turning replies into samples.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bson::Document;
use slog::{debug, error, info, trace, warn, Logger};

use super::collect::{collect_round, DbStatsPlan, Plan, Round, Weight};
use super::{next_due_ms, phase_offset, ApplySettings, HostSpec, SamplesCollected, StopMonitoring};
use crate::actors::discovery::TopologyObserved;
use crate::actors::supervisor::ChildStopped;
use crate::actors::{ChildId, Route};
use crate::config::AgentSettings;
use crate::format::flatten::Number;
use crate::format::schema;
use crate::mongo::{ClientKey, HostClients, SharedClient};
use crate::sample::{Body, Failure, Labels, Role, Sample};
use crate::stats::{AgentStats, Stats};

/// Where a monitor's output goes; the same for every monitor.
#[derive(Clone)]
pub struct MonitorLinks {
    pub samples: Route<SamplesCollected>,
    pub topology: Route<TopologyObserved>,
    pub supervisor: Recipient<ChildStopped>,
    pub stats: Stats,
    pub mongos_ping_window: Duration,
    /// Shared with discovery: the client its probe built is sampled with.
    pub clients: HostClients,
    /// Closed when this agent may not sample (fleet mode, lease lost).
    pub gate: crate::fleet::FleetGate,
}

/// Samples one host. Owned by the supervisor; stops only when told to or
/// when its client cannot be built (then the supervisor restarts it).
pub struct HostMonitor {
    spec: HostSpec,
    agent: AgentSettings,
    links: MonitorLinks,
    client: Option<SharedClient>,
    labels: Arc<Labels>,
    generation: u64,
    log: Logger,
    /// A round is running; the next tick is skipped rather than stacked.
    in_flight: bool,
    /// The server does not know `hello` (before 4.4.2 / 4.2.10): use `isMaster`.
    legacy_hello: bool,
    /// When buildInfo/hostInfo/getCmdLineOpts last succeeded.
    info_at: Option<Instant>,
    /// When dbStats last ran, and how long it took.
    dbstats_at: Option<Instant>,
    dbstats_took: Option<Duration>,
    /// What the last serverStatus said, to notice restarts and upgrades.
    last_version: Option<String>,
    last_uptime: Option<f64>,
    /// Whether the host answered last round, to log transitions only.
    was_up: Option<bool>,
    /// The topology fingerprint last reported to discovery.
    reported_topology: Option<u64>,
    /// serverStatus's top-level field count and unmapped-field count when
    /// last counted: counting walks and hashes every field name, so it is
    /// redone only when the shape may have changed (see `finish_round`).
    schema_seen: Option<(usize, i64)>,
    stop_requested: bool,
    tick_handle: Option<SpawnHandle>,
}

impl HostMonitor {
    pub fn new(
        spec: HostSpec,
        agent: AgentSettings,
        links: MonitorLinks,
        generation: u64,
        log: &Logger,
    ) -> Self {
        let log = log.new(slog::o!("host" => spec.addr.clone()));
        let labels = Arc::new(Labels {
            host: spec.addr.clone(),
            cluster: spec.cluster.clone(),
            replset: spec.replset.clone(),
            shard: spec.shard.clone(),
            role: Role::Unknown,
            version: None,
        });
        HostMonitor {
            spec,
            agent,
            links,
            client: None,
            labels,
            generation,
            log,
            in_flight: false,
            legacy_hello: false,
            info_at: None,
            dbstats_at: None,
            dbstats_took: None,
            last_version: None,
            last_uptime: None,
            was_up: None,
            reported_topology: None,
            schema_seen: None,
            stop_requested: false,
            tick_handle: None,
        }
    }

    fn client_key(&self) -> ClientKey {
        ClientKey {
            settings: self.spec.settings_hash,
            addr: self.spec.addr.clone(),
        }
    }

    /// Takes the host's shared client (the one discovery's probe already
    /// logged in with), or builds a fresh one when `fresh` (new timeouts).
    fn build_client(&mut self, fresh: bool) -> Result<(), String> {
        let key = self.client_key();
        let clients = &self.links.clients;
        let built = if fresh {
            clients.rebuild(&key, &self.spec.base_options, &self.agent)
        } else {
            clients.get_or_build(&key, &self.spec.base_options, &self.agent)
        };
        let client = built.map_err(|e| e.message)?;
        self.client = Some(client);
        Ok(())
    }

    /// Schedules the next round on the grid.
    fn schedule_next(&mut self, ctx: &mut Context<Self>) {
        let interval_ms = self.agent.interval.as_millis() as u64;
        let phase_ms = phase_offset(&self.spec.addr, self.agent.interval).as_millis() as u64;
        let now_ms = unix_ms(SystemTime::now());
        let due = next_due_ms(now_ms, interval_ms, phase_ms);
        let delay = Duration::from_millis(due.saturating_sub(now_ms));
        self.tick_handle = Some(ctx.run_later(delay, |act, ctx| {
            act.schedule_next(ctx);
            act.start_round(ctx);
        }));
    }

    fn plan(&self) -> Plan {
        let want_info = self
            .info_at
            .is_none_or(|t| t.elapsed() >= self.agent.info_interval);
        let dbstats = match self.dbstats_at {
            Some(t) if t.elapsed() < self.agent.dbstats_interval => DbStatsPlan::NotDue,
            _ if self
                .dbstats_took
                .is_some_and(|d| d > self.agent.dbstats_max) =>
            {
                DbStatsPlan::SkipSlow
            }
            _ => DbStatsPlan::Due,
        };
        Plan {
            timeout: self.agent.command_timeout,
            legacy_hello: self.legacy_hello,
            want_info,
            dbstats,
            max_databases: self.agent.dbstats_max_databases,
            mongos_ping_window: self.links.mongos_ping_window,
        }
    }

    fn start_round(&mut self, ctx: &mut Context<Self>) {
        crate::failpoint::hit("host_monitor.round");
        if !self.links.gate.is_open() {
            // The fleet lease ran out (etcd unreachable, or this process
            // was paused): another agent may own the host by now.
            return;
        }
        if self.in_flight {
            AgentStats::add(&self.links.stats.rounds_skipped, 1);
            debug!(self.log, "Previous round still running; skipping this one.");
            return;
        }
        let Some(client) = self.client.as_ref().map(|c| c.client.clone()) else {
            return;
        };
        self.in_flight = true;
        let plan = self.plan();
        if plan.dbstats != DbStatsPlan::NotDue {
            self.dbstats_at = Some(Instant::now());
            if plan.dbstats == DbStatsPlan::SkipSlow {
                // Skip once, then try again on the next schedule.
                self.dbstats_took = None;
            }
        }
        ctx.spawn(
            collect_round(client, plan)
                .into_actor(self)
                .map(|round, act, _ctx| {
                    act.in_flight = false;
                    act.finish_round(round);
                }),
        );
    }

    fn relabel(&mut self, hello: &Document) {
        let role = Role::from_hello(hello);
        let replset = hello.get_str("setName").ok().map(str::to_string);
        if role != self.labels.role || replset != self.labels.replset {
            if self.labels.role != Role::Unknown {
                info!(self.log, "Host changed role."; "from" => self.labels.role.as_str(), "to" => role.as_str());
            }
            let mut l = (*self.labels).clone();
            l.role = role;
            l.replset = replset;
            self.labels = Arc::new(l);
        }
    }

    fn finish_round(&mut self, round: Round) {
        if round.legacy_hello {
            self.legacy_hello = true;
        }
        if let Some(took) = round.dbstats_took {
            self.dbstats_took = Some(took);
        }
        if let Some(hello) = &round.hello {
            self.relabel(hello);
        }
        if let Some(fp) = round.topology_fingerprint {
            if self.reported_topology != Some(fp) {
                self.reported_topology = Some(fp);
                self.links.topology.send(TopologyObserved {
                    target: self.spec.target.clone(),
                    host: self.spec.addr.clone(),
                    fingerprint: fp,
                });
            }
        }
        let mut samples = Vec::with_capacity(round.steps.len() + round.derived.len() + 2);
        let mut failure: Option<Failure> = None;
        let mut info_ok = round.info_requested;
        for step in round.steps {
            let outcome = step.outcome;
            match outcome.result {
                Ok(doc) => {
                    if outcome.command == "serverStatus" {
                        self.observe_server_status(&doc);
                        // Fields come and go with the version and with
                        // sections that appear at first use (a new top-level
                        // key); counted again then and on every info round
                        // (hourly, after a restart or an upgrade).
                        let keys = crate::wire::raw::elements(doc.as_bytes())
                            .map(Iterator::count)
                            .unwrap_or(0);
                        let unmapped = match self.schema_seen {
                            Some((len, n)) if len == keys && !round.info_requested => n,
                            _ => {
                                let n = schema::unmapped_fields(&doc) as i64;
                                self.schema_seen = Some((keys, n));
                                n
                            }
                        };
                        samples.push(self.derived_sample(
                            "schema",
                            vec![],
                            vec![("unmapped_fields", Number::Int(unmapped))],
                            outcome.started,
                        ));
                    }
                    if step.emit {
                        samples.push(Sample {
                            labels: self.labels.clone(),
                            time: outcome.started,
                            duration: outcome.duration,
                            body: Body::Reply {
                                command: outcome.command,
                                doc,
                            },
                        });
                    }
                }
                Err(f) if step.weight == Weight::Optional => {
                    if super::collect::INFO_COMMANDS.contains(&f.command) {
                        info_ok = false;
                    }
                    debug!(self.log, "Optional command failed."; "command" => f.command, "error" => &f.message);
                }
                Err(f) => {
                    if failure.is_none() {
                        failure = Some(f);
                    }
                }
            }
        }
        for d in round.derived {
            samples.push(self.derived_sample(d.name, d.tags, d.fields, round.started));
        }
        if info_ok {
            self.info_at = Some(Instant::now());
        }
        let up = failure.is_none();
        match (&failure, self.was_up) {
            (Some(f), Some(true) | None) => {
                warn!(self.log, "Host is down."; "command" => f.command, "kind" => f.kind, "error" => &f.message)
            }
            (None, Some(false)) => info!(self.log, "Host is back up."),
            _ => {}
        }
        self.was_up = Some(up);
        samples.push(Sample {
            labels: self.labels.clone(),
            time: round.started,
            duration: round.duration,
            body: Body::Status { up, failure },
        });
        trace!(self.log, "Round done."; "up" => up, "samples" => samples.len(), "took_ms" => round.duration.as_millis() as u64);
        AgentStats::add(&self.links.stats.samples_taken, samples.len() as u64);
        if !up {
            AgentStats::add(&self.links.stats.samples_failed, 1);
        }
        if !self.links.samples.send(SamplesCollected(samples)) {
            error!(self.log, "No batcher to take samples; they are lost.");
        }
    }

    fn derived_sample(
        &self,
        name: &'static str,
        tags: Vec<(&'static str, String)>,
        fields: Vec<(&'static str, Number)>,
        time: SystemTime,
    ) -> Sample {
        Sample {
            labels: self.labels.clone(),
            time,
            duration: Duration::ZERO,
            body: Body::Derived { name, tags, fields },
        }
    }

    /// Notices a restart (uptime went down) or an upgrade (version changed),
    /// after which build and host details must be read again.
    fn observe_server_status(&mut self, doc: &bson::RawDocument) {
        let version = doc.get_str("version").ok().map(str::to_string);
        let uptime = doc
            .get("uptime")
            .ok()
            .flatten()
            .and_then(crate::format::flatten::raw_number)
            .map(Number::as_f64);
        let restarted = matches!((self.last_uptime, uptime), (Some(a), Some(b)) if b < a);
        let upgraded =
            version.is_some() && self.last_version.is_some() && version != self.last_version;
        if restarted || upgraded {
            info!(
                self.log,
                "Server restarted or changed version; reading its details again."
            );
            self.info_at = None;
        }
        if version != self.labels.version {
            let mut l = (*self.labels).clone();
            l.version = version.clone();
            self.labels = Arc::new(l);
        }
        self.last_version = version;
        self.last_uptime = uptime;
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Actor for HostMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Err(e) = self.build_client(false) {
            error!(self.log, "Cannot build a client for this host."; "error" => e);
            ctx.stop();
            return;
        }
        debug!(self.log, "Monitoring host."; "interval_secs" => self.agent.interval.as_secs());
        // First round now, so a fresh agent reports at once; then the grid.
        self.start_round(ctx);
        self.schedule_next(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if !self.stop_requested {
            self.links.supervisor.do_send(ChildStopped {
                child: ChildId::Host(self.spec.addr.clone()),
                generation: self.generation,
            });
        }
        // Dropping the last clone of the client closes its sockets and
        // background tasks; the shared cache holds one until released.
        if let Some(c) = self.client.take() {
            self.links.clients.release(&self.client_key(), c.id);
        }
    }
}

impl Handler<StopMonitoring> for HostMonitor {
    type Result = ();

    fn handle(&mut self, _: StopMonitoring, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}

impl Handler<ApplySettings> for HostMonitor {
    type Result = ();

    fn handle(&mut self, msg: ApplySettings, ctx: &mut Self::Context) {
        let old = std::mem::replace(&mut self.agent, msg.0);
        let timing_changed = old.command_timeout != self.agent.command_timeout
            || old.connect_timeout != self.agent.connect_timeout
            || old.interval != self.agent.interval;
        if timing_changed {
            if let Err(e) = self.build_client(true) {
                warn!(self.log, "Keeping the old client; the new settings do not build one."; "error" => e);
            }
        }
        if old.interval != self.agent.interval {
            if let Some(h) = self.tick_handle.take() {
                ctx.cancel_future(h);
            }
            self.schedule_next(ctx);
        }
    }
}

/// Describe what this monitor knows of its host (labels as of the last round).
#[derive(Message)]
#[rtype(result = "Labels")]
pub struct DescribeHost;

impl Handler<DescribeHost> for HostMonitor {
    type Result = MessageResult<DescribeHost>;

    fn handle(&mut self, _: DescribeHost, _: &mut Self::Context) -> Self::Result {
        MessageResult((*self.labels).clone())
    }
}
