//! The `Discovery` actor.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix::prelude::*;
use mongodb::options::ClientOptions;
use slog::{error, info, warn, Logger};

use super::{ApplyTargets, HostSetChanged, StopDiscovery};
use crate::actors::host_monitor::HostSpec;
use crate::actors::supervisor::ChildStopped;
use crate::actors::ChildId;
use crate::config::TargetSettings;
use crate::mongo;

/// How soon a target whose URI could not be resolved (SRV, DNS) is retried.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// Keeps the wanted host set.
pub struct Discovery {
    targets: Vec<TargetSettings>,
    /// Options per target name, once resolved.
    options: HashMap<String, ClientOptions>,
    /// The host set last announced: addr → (cluster, target URI).
    announced: BTreeMap<String, (String, String)>,
    sink: Recipient<HostSetChanged>,
    supervisor: Recipient<ChildStopped>,
    generation: u64,
    log: Logger,
    stop_requested: bool,
    /// Bumped on every ApplyTargets so late results of an old one are ignored.
    epoch: u64,
}

impl Discovery {
    pub fn new(
        targets: Vec<TargetSettings>,
        sink: Recipient<HostSetChanged>,
        supervisor: Recipient<ChildStopped>,
        generation: u64,
        log: &Logger,
    ) -> Self {
        Discovery {
            targets,
            options: HashMap::new(),
            announced: BTreeMap::new(),
            sink,
            supervisor,
            generation,
            log: log.new(slog::o!("actor" => "discovery")),
            stop_requested: false,
            epoch: 0,
        }
    }

    /// Resolves every target's options, then announces the difference.
    fn refresh(&mut self, ctx: &mut Context<Self>) {
        self.epoch += 1;
        let epoch = self.epoch;
        let targets = self.targets.clone();
        let fut = async move {
            let mut out = Vec::with_capacity(targets.len());
            for t in targets {
                let opts = mongo::target_options(&t).await;
                out.push((t, opts));
            }
            out
        };
        ctx.spawn(fut.into_actor(self).map(move |results, act, ctx| {
            if epoch != act.epoch {
                return;
            }
            let mut unresolved = false;
            for (t, res) in results {
                match res {
                    Ok(o) => {
                        act.options.insert(t.name.clone(), o);
                    }
                    Err(e) => {
                        unresolved = true;
                        let f = mongo::classify("resolve", &e);
                        error!(act.log, "Cannot resolve target; keeping its previous hosts."; "target" => &t.name, "error" => f.message);
                    }
                }
            }
            act.announce();
            if unresolved {
                ctx.run_later(RESOLVE_RETRY, |act, ctx| act.refresh(ctx));
            }
        }));
    }

    fn announce(&mut self) {
        let mut wanted: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut specs: HashMap<String, HostSpec> = HashMap::new();
        for t in &self.targets {
            let Some(opts) = self.options.get(&t.name) else {
                // Not resolved yet: keep what this target had.
                for (addr, v) in self.announced.iter().filter(|(_, v)| v.0 == t.name) {
                    wanted.insert(addr.clone(), v.clone());
                }
                continue;
            };
            for host in &t.hosts {
                if let Some((other, _)) = wanted.get(host) {
                    if other != &t.name {
                        warn!(self.log, "Host listed by two targets; monitoring it once."; "host" => host, "kept" => other.clone(), "ignored" => &t.name);
                    }
                    continue;
                }
                wanted.insert(host.clone(), (t.name.clone(), t.uri.clone()));
                specs.insert(
                    host.clone(),
                    HostSpec {
                        addr: host.clone(),
                        cluster: t.name.clone(),
                        base_options: opts.clone(),
                        fingerprint: fingerprint(t),
                    },
                );
            }
        }
        let removed: Vec<String> = self
            .announced
            .keys()
            .filter(|a| !wanted.contains_key(*a))
            .cloned()
            .collect();
        // New hosts, and hosts whose target changed (name or URI), are
        // (re)started with the new options.
        let added: Vec<HostSpec> = wanted
            .iter()
            .filter(|(a, v)| self.announced.get(*a) != Some(v))
            .filter_map(|(a, _)| specs.remove(a))
            .collect();
        self.announced = wanted;
        if added.is_empty() && removed.is_empty() {
            return;
        }
        info!(self.log, "Host set changed."; "added" => added.len(), "removed" => removed.len(), "total" => self.announced.len());
        self.sink.do_send(HostSetChanged { added, removed });
    }
}

/// A hash of what a monitor's client is built from.
fn fingerprint(t: &TargetSettings) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&t.name, &t.uri, &t.username, &t.password).hash(&mut h);
    h.finish()
}

impl Actor for Discovery {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.refresh(ctx);
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
        self.targets = msg.0;
        self.options.clear();
        self.refresh(ctx);
    }
}

impl Handler<StopDiscovery> for Discovery {
    type Result = ();

    fn handle(&mut self, _: StopDiscovery, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}
