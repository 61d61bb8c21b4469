//! The `HostMonitor` actor: schedule, rounds, and turning replies into samples.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bson::Document;
use mongodb::Client;
use slog::{debug, error, info, warn, Logger};

use super::{next_due_ms, phase_offset, ApplySettings, HostSpec, SamplesCollected, StopMonitoring};
use crate::actors::supervisor::ChildStopped;
use crate::actors::{ChildId, Route};
use crate::config::AgentSettings;
use crate::mongo::{self, CommandOutcome};
use crate::sample::{Body, Failure, Labels, Role, Sample};
use crate::stats::{AgentStats, Stats};

/// Samples one host. Owned by the supervisor; stops only when told to or
/// when its client cannot be built (then the supervisor restarts it).
pub struct HostMonitor {
    spec: HostSpec,
    agent: AgentSettings,
    client: Option<Client>,
    labels: Arc<Labels>,
    sink: Route<SamplesCollected>,
    supervisor: Recipient<ChildStopped>,
    generation: u64,
    stats: Stats,
    log: Logger,
    /// A round is running; the next tick is skipped rather than stacked.
    in_flight: bool,
    /// The server does not know `hello` (before 4.4.2 / 4.2.10): use `isMaster`.
    legacy_hello: bool,
    /// When buildInfo/hostInfo/getCmdLineOpts last succeeded.
    info_at: Option<Instant>,
    /// What the last serverStatus said, to notice restarts and upgrades.
    last_version: Option<String>,
    last_uptime: Option<f64>,
    /// Whether the host answered last round, to log transitions only.
    was_up: Option<bool>,
    stop_requested: bool,
    tick_handle: Option<SpawnHandle>,
}

impl HostMonitor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: HostSpec,
        agent: AgentSettings,
        sink: Route<SamplesCollected>,
        supervisor: Recipient<ChildStopped>,
        generation: u64,
        stats: Stats,
        log: &Logger,
    ) -> Self {
        let log = log.new(slog::o!("host" => spec.addr.clone()));
        let labels = Arc::new(Labels {
            host: spec.addr.clone(),
            cluster: spec.cluster.clone(),
            replset: None,
            role: Role::Unknown,
        });
        HostMonitor {
            spec,
            agent,
            client: None,
            labels,
            sink,
            supervisor,
            generation,
            stats,
            log,
            in_flight: false,
            legacy_hello: false,
            info_at: None,
            last_version: None,
            last_uptime: None,
            was_up: None,
            stop_requested: false,
            tick_handle: None,
        }
    }

    fn build_client(&mut self) -> Result<(), String> {
        let opts = mongo::host_options(&self.spec.base_options, &self.spec.addr, &self.agent)
            .map_err(|e| mongo::classify("connect", &e).message)?;
        let client =
            mongo::host_client(opts).map_err(|e| mongo::classify("connect", &e).message)?;
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

    fn want_info(&self) -> bool {
        match self.info_at {
            None => true,
            Some(t) => t.elapsed() >= self.agent.info_interval,
        }
    }

    fn start_round(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            AgentStats::add(&self.stats.rounds_skipped, 1);
            debug!(self.log, "Previous round still running; skipping this one.");
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        self.in_flight = true;
        let timeout = self.agent.command_timeout;
        let legacy = self.legacy_hello;
        let want_info = self.want_info();
        let member = self.labels.replset.is_some();
        let round = async move { collect_round(client, timeout, legacy, want_info, member).await };
        ctx.spawn(round.into_actor(self).map(|round, act, _ctx| {
            act.in_flight = false;
            act.finish_round(round);
        }));
    }

    fn finish_round(&mut self, round: Round) {
        if round.legacy_hello {
            self.legacy_hello = true;
        }
        let round_started = round.started;
        let round_duration = round.duration;
        // Labels first: the role and set this round's samples belong to.
        if let Some(Ok(hello)) = round.outcomes.first().map(|o| &o.result) {
            let role = Role::from_hello(hello);
            let replset = hello.get_str("setName").ok().map(str::to_string);
            if role != self.labels.role || replset != self.labels.replset {
                if self.labels.role != Role::Unknown {
                    info!(self.log, "Host changed role."; "from" => self.labels.role.as_str(), "to" => role.as_str());
                }
                self.labels = Arc::new(Labels {
                    host: self.spec.addr.clone(),
                    cluster: self.spec.cluster.clone(),
                    replset,
                    role,
                });
            }
        }
        let mut samples = Vec::with_capacity(round.outcomes.len() + 1);
        let mut failure: Option<Failure> = None;
        let mut info_ok = round.info_requested;
        for outcome in round.outcomes {
            let info = INFO_COMMANDS.contains(&outcome.command);
            match outcome.result {
                Ok(doc) => {
                    if outcome.command == "serverStatus" {
                        self.observe_server_status(&doc);
                    }
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
                Err(f) if info => {
                    // Slow-changing details; their absence is not an outage.
                    info_ok = false;
                    debug!(self.log, "Info command failed."; "command" => f.command, "error" => &f.message);
                }
                Err(f) => {
                    if failure.is_none() {
                        failure = Some(f);
                    }
                }
            }
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
            time: round_started,
            duration: round_duration,
            body: Body::Status { up, failure },
        });
        AgentStats::add(&self.stats.samples_taken, samples.len() as u64);
        if !up {
            AgentStats::add(&self.stats.samples_failed, 1);
        }
        if !self.sink.send(SamplesCollected(samples)) {
            error!(self.log, "No batcher to take samples; they are lost.");
        }
    }

    /// Notices a restart (uptime went down) or an upgrade (version changed),
    /// after which build and host details must be read again.
    fn observe_server_status(&mut self, doc: &Document) {
        let version = doc.get_str("version").ok().map(str::to_string);
        let uptime = doc
            .get("uptime")
            .and_then(crate::format::flatten::number)
            .map(|n| match n {
                crate::format::flatten::Number::Int(i) => i as f64,
                crate::format::flatten::Number::Float(f) => f,
            });
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
        self.last_version = version;
        self.last_uptime = uptime;
    }
}

/// Commands whose failure does not make the host `up = 0`.
const INFO_COMMANDS: [&str; 3] = ["buildInfo", "hostInfo", "getCmdLineOpts"];

struct Round {
    started: SystemTime,
    duration: Duration,
    outcomes: Vec<CommandOutcome>,
    legacy_hello: bool,
    info_requested: bool,
}

/// One round on one host. `hello` comes first: if it fails, nothing else is
/// tried, as the host is unreachable and each further command would only
/// wait out its own timeout.
async fn collect_round(
    client: Client,
    timeout: Duration,
    mut legacy: bool,
    want_info: bool,
    member_hint: bool,
) -> Round {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut outcomes = Vec::with_capacity(6);
    let mut hello = mongo::run(
        &client,
        if legacy { "isMaster" } else { "hello" },
        None,
        timeout,
    )
    .await;
    if !legacy && hello.code == Some(59) {
        legacy = true;
        hello = mongo::run(&client, "isMaster", None, timeout).await;
    }
    let member = match &hello.result {
        Ok(doc) => doc.get_str("setName").is_ok(),
        Err(_) => member_hint,
    };
    let reachable = hello.result.is_ok();
    outcomes.push(hello);
    if reachable {
        outcomes.push(mongo::run(&client, "serverStatus", None, timeout).await);
        if member {
            outcomes.push(mongo::run(&client, "replSetGetStatus", None, timeout).await);
        }
        if want_info {
            for cmd in INFO_COMMANDS {
                outcomes.push(mongo::run(&client, cmd, None, timeout).await);
            }
        }
    }
    Round {
        started,
        duration: clock.elapsed(),
        outcomes,
        legacy_hello: legacy,
        info_requested: want_info && reachable,
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
        if let Err(e) = self.build_client() {
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
            self.supervisor.do_send(ChildStopped {
                child: ChildId::Host(self.spec.addr.clone()),
                generation: self.generation,
            });
        }
        // Dropping the client closes its sockets and background tasks.
        self.client = None;
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
            || old.connect_timeout != self.agent.connect_timeout;
        if timing_changed {
            if let Err(e) = self.build_client() {
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
