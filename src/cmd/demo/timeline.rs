//! The demo's timeline: what happens to the simulated deployment, and when.
//!
//! Every [`PERIOD_SECS`] the same story plays: the shard01 primary steps
//! down, an rs-app secondary is lost and comes back, a shard and a mongos
//! are added and, before the next round, removed again. Each event is told
//! in one line as it happens (pushed to the shared event log the drawer
//! shows above the table), so the viewer can compare the moment of the
//! event with the moment the table marks it: the agent has to notice every
//! change by itself, from what the hosts answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sim::{Action, SimHandle};

/// The sharded cluster of the demo topology.
pub const CLUSTER: &str = "demo";
/// The shard whose primary steps down.
const STEP_DOWN_SET: &str = "shard01";
/// The replica set that loses a member.
const LOSSY_SET: &str = "rs-app";
/// The shard added (and removed again) each round.
const NEW_SHARD: &str = "shard03";

/// When each event happens within a round, in seconds (before scaling).
const SCHEDULE: [(f64, Event); 6] = [
    (15.0, Event::StepDown),
    (30.0, Event::LoseMember),
    (45.0, Event::MemberBack),
    (60.0, Event::AddShard),
    (75.0, Event::AddMongos),
    (90.0, Event::RemoveAdded),
];

/// The length of a round (before scaling); the next one starts after it.
pub const PERIOD_SECS: f64 = 105.0;

/// When the first event happens, in seconds after the start.
pub fn first_event_secs(scale: f64) -> f64 {
    SCHEDULE[0].0 * scale
}

/// One change the timeline makes to the simulated deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    StepDown,
    LoseMember,
    MemberBack,
    AddShard,
    AddMongos,
    RemoveAdded,
}

/// The timeline's own state: which member it took down, what it added.
pub struct Timeline<'a> {
    sim: &'a SimHandle,
    /// Multiplies every time of the schedule (0.2 plays it five times faster).
    scale: f64,
    started: Instant,
    /// The rs-app secondary that is lost and comes back.
    member: Option<SocketAddr>,
    added_mongos: Option<SocketAddr>,
    shard_added: bool,
}

impl<'a> Timeline<'a> {
    pub fn new(sim: &'a SimHandle, scale: f64, started: Instant) -> Timeline<'a> {
        Timeline {
            sim,
            scale,
            started,
            member: None,
            added_mongos: None,
            shard_added: false,
        }
    }

    /// Plays the schedule round after round, appending one line per event
    /// to `log`, until `stop` is set.
    pub fn play(mut self, log: &Mutex<Vec<String>>, stop: &AtomicBool) {
        for round in 0u32.. {
            for (at, event) in SCHEDULE {
                let due =
                    Duration::from_secs_f64((f64::from(round) * PERIOD_SECS + at) * self.scale);
                while self.started.elapsed() < due {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(
                        Duration::from_millis(50).min(due - self.started.elapsed().min(due)),
                    );
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                self.perform(event, log);
            }
        }
    }

    /// Makes one change and tells it. The line goes to the log before the
    /// change, so that no drawing can show its effect before the event;
    /// what is only known afterwards (the new hosts' addresses, the new
    /// primary) is added to the line then.
    fn perform(&mut self, event: Event, log: &Mutex<Vec<String>>) {
        let t = self.started.elapsed().as_secs_f64().round();
        let say = |text: String| -> usize {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            l.push(format!("t+{t}s: {text}"));
            l.len() - 1
        };
        let amend = |at: usize, more: String| {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(line) = l.get_mut(at) {
                line.push_str(&more);
            }
        };
        let sim = self.sim;
        let outcome = match event {
            Event::StepDown => {
                let Some(old) = sim.primary(STEP_DOWN_SET) else {
                    say(format!("{STEP_DOWN_SET} has no primary to step down"));
                    return;
                };
                let at = say(format!("{STEP_DOWN_SET} primary {old} steps down"));
                let r = sim.step_down(STEP_DOWN_SET);
                if let (Ok(()), Some(new)) = (&r, sim.primary(STEP_DOWN_SET)) {
                    amend(at, format!("; {new} is elected"));
                }
                (at, r)
            }
            Event::LoseMember => {
                let primary = sim.primary(LOSSY_SET);
                // The seed's own set: the agent has to keep watching it
                // through the other members.
                let Some(m) = sim
                    .set_members(LOSSY_SET)
                    .into_iter()
                    .find(|&m| Some(m) != primary)
                else {
                    say(format!("{LOSSY_SET} has no secondary to lose"));
                    return;
                };
                self.member = Some(m);
                let at = say(format!(
                    "{LOSSY_SET} secondary {m} is lost (stops answering)"
                ));
                (at, sim.host_down(m))
            }
            Event::MemberBack => {
                let Some(m) = self.member.take() else {
                    return;
                };
                let at = say(format!("{LOSSY_SET} secondary {m} comes back"));
                (at, sim.host_up(m))
            }
            Event::AddShard => {
                let at = say(format!("{NEW_SHARD} is added to cluster {CLUSTER}"));
                let r = sim.apply(Action::AddShard {
                    cluster: CLUSTER.into(),
                    name: NEW_SHARD.into(),
                    members: 3,
                });
                if r.is_ok() {
                    self.shard_added = true;
                    amend(
                        at,
                        format!(" with members {}", list(&sim.set_members(NEW_SHARD))),
                    );
                }
                (at, r)
            }
            Event::AddMongos => {
                let before = sim.mongos(CLUSTER);
                let at = say(format!("a mongos is added to cluster {CLUSTER}"));
                let r = sim.apply(Action::AddMongos {
                    cluster: CLUSTER.into(),
                    host: None,
                });
                self.added_mongos = sim
                    .mongos(CLUSTER)
                    .into_iter()
                    .find(|m| !before.contains(m));
                if let Some(m) = self.added_mongos {
                    amend(at, format!(": {m}"));
                }
                (at, r)
            }
            Event::RemoveAdded => {
                let mongos = self.added_mongos.take();
                let mut what = Vec::new();
                if self.shard_added {
                    what.push(format!(
                        "{NEW_SHARD} ({})",
                        list(&sim.set_members(NEW_SHARD))
                    ));
                }
                if let Some(m) = mongos {
                    what.push(format!("mongos {m}"));
                }
                if what.is_empty() {
                    return;
                }
                let at = say(format!(
                    "{} removed from cluster {CLUSTER}",
                    what.join(" and ")
                ));
                let mut r = Ok(());
                if std::mem::take(&mut self.shard_added) {
                    r = sim.apply(Action::RemoveShard {
                        cluster: CLUSTER.into(),
                        name: NEW_SHARD.into(),
                    });
                }
                if let Some(m) = mongos {
                    r = r.and(sim.apply(Action::RemoveMongos {
                        cluster: CLUSTER.into(),
                        host: m.to_string(),
                    }));
                }
                (at, r)
            }
        };
        if let (at, Err(e)) = outcome {
            amend(at, format!(" (failed: {e})"));
        }
    }
}

/// Addresses separated by spaces.
fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_in_order_and_fits_a_round() {
        let times: Vec<f64> = SCHEDULE.iter().map(|(at, _)| *at).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        assert!(times.last().is_some_and(|&t| t < PERIOD_SECS));
    }
}
