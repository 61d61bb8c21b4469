//! Fleet mode: several agents share one deployment through etcd.
//!
//! What lives in etcd, under `/mongomon/<fleet.name>/`:
//! - `agents/<agent_id>`: one key per live agent, held by its lease (the
//!   live agents are exactly the keys that exist), with its weight;
//! - `leader`: the agent that runs Discovery, held by its lease;
//! - `hosts/<host:port>`: the host set the leader published, with the
//!   labels a monitor needs (target, cluster, set, shard). Not leased: a new
//!   leader carries on from it.
//!
//! Each agent takes the hosts that rendezvous hashing ([`owner`]) gives it
//! among the live agents, so an agent joining or leaving moves only the
//! hosts that must move. Spools stay on each agent's disk; etcd holds
//! membership, leadership and the host set, nothing else.
//!
//! [`etcd`] is the client; [`crate::actors::fleet`] the actor that keeps
//! the lease, campaigns, watches and hands the supervisor its share;
//! [`FleetGate`] is what every monitor checks before a round, so that an
//! agent whose lease ran out (etcd unreachable, or the process paused)
//! never samples a host another agent may own by now.

pub mod etcd;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where a fleet's keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub root: String,
}

impl Keys {
    pub fn new(fleet: &str) -> Keys {
        Keys {
            root: format!("/mongomon/{fleet}/"),
        }
    }
    pub fn agents(&self) -> String {
        format!("{}agents/", self.root)
    }
    pub fn agent(&self, id: &str) -> String {
        format!("{}agents/{id}", self.root)
    }
    pub fn leader(&self) -> String {
        format!("{}leader", self.root)
    }
    pub fn hosts(&self) -> String {
        format!("{}hosts/", self.root)
    }
    pub fn host(&self, addr: &str) -> String {
        format!("{}hosts/{addr}", self.root)
    }
}

/// What an agent says of itself in its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub agent_id: String,
    /// Relative share of the hosts (1.0 by default).
    pub weight: f64,
    pub pid: u32,
    pub started_unix: u64,
}

/// One host as the leader published it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedHost {
    #[serde(skip)]
    pub addr: String,
    /// The configured target it was discovered from: every agent connects
    /// with its own copy of that target's settings.
    pub target: String,
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// A stable 64-bit hash of the pair, well mixed (FNV-1a, then the
/// splitmix64 finaliser: FNV alone leaves neighbouring addresses close).
fn pair_hash(agent: &str, host: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in agent.bytes().chain([0u8]).chain(host.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The agent that owns `host` among `agents` (id → weight): weighted
/// rendezvous hashing, each agent scoring `-weight / ln(u)` with `u` drawn
/// from the pair's hash, the highest score winning (ties by id). Adding or
/// removing an agent only moves the hosts it wins or held.
pub fn owner<'a>(host: &str, agents: &'a BTreeMap<String, f64>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for (id, &w) in agents {
        let u = ((pair_hash(id, host) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = -w.max(f64::MIN_POSITIVE) / u.ln();
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((id, score));
        }
    }
    best.map(|(id, _)| id)
}

/// Every agent's count of hosts, by [`owner`].
pub fn shares(hosts: &[String], agents: &BTreeMap<String, f64>) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = agents.keys().map(|a| (a.clone(), 0)).collect();
    for h in hosts {
        if let Some(o) = owner(h, agents) {
            *out.entry(o.to_string()).or_default() += 1;
        }
    }
    out
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Whether this agent may sample now: open for good outside fleet mode; in
/// fleet mode open until the lease's last renewal (as sent) plus its TTL.
/// Monitors check it before each round, so a paused process that wakes up
/// after its lease expired samples nothing, even before the fleet actor
/// has noticed and stopped them.
#[derive(Debug, Clone)]
pub struct FleetGate {
    /// Milliseconds since [`epoch`] until which sampling is allowed.
    until_ms: Arc<AtomicU64>,
}

impl Default for FleetGate {
    fn default() -> Self {
        FleetGate::open()
    }
}

impl FleetGate {
    /// Always open: the agent runs alone.
    pub fn open() -> FleetGate {
        FleetGate {
            until_ms: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// Closed until a lease opens it.
    pub fn closed() -> FleetGate {
        let _ = epoch();
        FleetGate {
            until_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn is_open(&self) -> bool {
        let now = epoch().elapsed().as_millis() as u64;
        now < self.until_ms.load(Ordering::Acquire)
    }

    /// Open until `until`.
    pub fn open_until(&self, until: Instant) {
        let ms = until.saturating_duration_since(epoch()).as_millis() as u64;
        self.until_ms.store(ms, Ordering::Release);
    }

    pub fn close(&self) {
        self.until_ms.store(0, Ordering::Release);
    }

    /// Time left before the gate closes by itself.
    pub fn remaining(&self) -> Duration {
        let until = self.until_ms.load(Ordering::Acquire);
        let now = epoch().elapsed().as_millis() as u64;
        Duration::from_millis(until.saturating_sub(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(ids: &[&str]) -> BTreeMap<String, f64> {
        ids.iter().map(|a| (a.to_string(), 1.0)).collect()
    }

    fn hosts(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("10.1.{}.{}:27017", i / 250, i % 250))
            .collect()
    }

    #[test]
    fn shares_are_even_and_stable() {
        let a = agents(&["a", "b", "c"]);
        let h = hosts(3000);
        let s = shares(&h, &a);
        for n in s.values() {
            assert!((850..1150).contains(n), "{s:?}");
        }
        assert_eq!(s, shares(&h, &a));
    }

    #[test]
    fn a_new_agent_takes_only_its_share_from_the_others() {
        let before = agents(&["a", "b", "c"]);
        let after = agents(&["a", "b", "c", "d"]);
        let h = hosts(4000);
        let mut moved = 0;
        for host in &h {
            let (o, n) = (owner(host, &before).unwrap(), owner(host, &after).unwrap());
            if o != n {
                // Every host that moves, moves to the newcomer.
                assert_eq!(n, "d");
                moved += 1;
            }
        }
        assert!((800..1200).contains(&moved), "{moved}");
        // And removing an agent moves only its hosts.
        let fewer = agents(&["a", "c"]);
        for host in &h {
            let o = owner(host, &before).unwrap();
            if o != "b" {
                assert_eq!(owner(host, &fewer).unwrap(), o);
            }
        }
    }

    #[test]
    fn weights_shift_the_share() {
        let mut a = agents(&["a", "b"]);
        a.insert("b".into(), 3.0);
        let s = shares(&hosts(4000), &a);
        assert!(s["b"] > 2 * s["a"], "{s:?}");
    }

    #[test]
    fn the_gate_closes_by_itself() {
        let g = FleetGate::closed();
        assert!(!g.is_open());
        g.open_until(Instant::now() + Duration::from_millis(200));
        assert!(g.is_open());
        std::thread::sleep(Duration::from_millis(250));
        assert!(!g.is_open());
        assert!(FleetGate::open().is_open());
    }
}
