//! The running state of the simulated world: hosts, replica sets, sharded
//! clusters, per-host faults and counters, and the topology changes (elections,
//! reconfigs, shard/mongos add/remove) applied by [`World::apply`].
//!
//! `World` is plain data behind one mutex owned by the server; every command
//! reply is computed from it so that all hosts always agree with each other.
//! Socket work requested by a change is returned as [`Effect`]s for the server.

use super::topology::{
    parse_loopback, Action, AddressMode, AutoAddresses, MemberSpec, Rates, ReplicaSetSpec,
    Topology, TopologyError,
};
use crate::wire::scram::ScramCredentials;
use bson::oid::ObjectId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Index of a host in [`World::hosts`].
pub type HostId = usize;

/// Errors of the control API.
#[derive(Debug, Error, PartialEq)]
pub enum ControlError {
    /// No host with that address.
    #[error("unknown host {0}")]
    UnknownHost(String),
    /// No replica set with that name.
    #[error("unknown replica set {0}")]
    UnknownSet(String),
    /// No sharded cluster with that name.
    #[error("unknown sharded cluster {0}")]
    UnknownCluster(String),
    /// The change is not possible (message says why).
    #[error("{0}")]
    Invalid(String),
}

/// Socket-level work the server must perform after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Bind (or re-bind) the host's listener.
    Listen(HostId),
    /// Close the listener and all connections; may come back with `Listen`.
    Close(HostId),
    /// Close for good (host removed from the world).
    Retire(HostId),
}

/// Parsed server version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Full text, e.g. "7.0.12".
    pub text: String,
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// Parses "X.Y.Z" (missing parts are 0).
    pub fn parse(s: &str) -> Result<Version, String> {
        let mut it = s.split('.').map(|p| p.parse::<u32>());
        let major = it
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| format!("invalid server version '{s}', expected e.g. \"7.0.12\""))?;
        let minor = it.next().and_then(Result::ok).unwrap_or(0);
        let patch = it.next().and_then(Result::ok).unwrap_or(0);
        if major < 3 {
            return Err(format!(
                "server version '{s}' is too old; the simulator models 3.6 and later"
            ));
        }
        Ok(Version {
            text: s.to_string(),
            major,
            minor,
            patch,
        })
    }

    /// `maxWireVersion` for this release (from the MongoDB driver specifications).
    pub fn max_wire_version(&self) -> i32 {
        match (self.major, self.minor) {
            (3, _) => 6,
            (4, 0) | (4, 1) => 7,
            (4, 2) | (4, 3) => 8,
            (4, 4) => 9,
            (4, _) => 12,
            (5, 0) => 13,
            (5, m) => 13 + m.min(3) as i32,
            (6, 0) => 17,
            (6, m) => 17 + m.min(3) as i32,
            (7, 0) => 21,
            (7, m) => 21 + m.min(3) as i32,
            (8, 0) => 25,
            (8, m) => 25 + m.min(3) as i32,
            _ => 28,
        }
    }

    /// True for 4.4 and newer (hello/isWritablePrimary, awaitable hello).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// Which cluster role a replica set plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetRole {
    /// Plain replica set.
    Plain,
    /// A shard (`clusterRole: shardsvr`).
    Shard,
    /// Config servers (`clusterRole: configsvr`).
    Config,
}

/// What a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Standalone mongod.
    Standalone,
    /// Member of `sets[set]`.
    Member {
        /// Index into [`World::sets`].
        set: usize,
    },
    /// mongos of `clusters[cluster]`.
    Mongos {
        /// Index into [`World::clusters`].
        cluster: usize,
    },
}

/// Faults injected on one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Accept and read, never answer.
    pub hang: bool,
    /// Added latency per reply.
    pub latency: Duration,
    /// Send half a reply then reset.
    pub reset_mid_reply: bool,
    /// Send garbage instead of replies.
    pub malformed_reply: bool,
    /// Break every reply's frame this way.
    pub frame: Option<super::topology::FrameFault>,
    /// Lower-case command name → (code, errmsg).
    pub command_errors: HashMap<String, (i32, Option<String>)>,
    /// All authentications fail.
    pub auth_failure: bool,
}

/// Live counters updated by connection tasks without taking the world lock.
#[derive(Debug, Default)]
pub struct HostCounters {
    /// Open connections right now.
    pub conns_current: AtomicI64,
    /// Connections accepted since start.
    pub conns_created: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Requests received.
    pub requests: AtomicU64,
    /// Commands answered.
    pub commands: AtomicU64,
    /// SCRAM conversations started (`saslStart`).
    pub auth_handshakes: AtomicU64,
    /// Requests that arrived as OP_COMPRESSED.
    pub compressed_requests: AtomicU64,
    /// The wire id of the last compressor a request used (0: none yet).
    pub last_compressor: AtomicU64,
    /// Next connectionId.
    pub next_conn_id: AtomicI64,
}

impl HostCounters {
    /// Snapshot helper.
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// One simulated process.
#[derive(Debug)]
pub struct HostState {
    /// Listening address (port resolved after bind).
    pub addr: SocketAddr,
    /// Role.
    pub kind: HostKind,
    /// Version.
    pub version: Version,
    /// `topologyVersion.processId`, new on every (re)start.
    pub process_id: ObjectId,
    /// `topologyVersion.counter`.
    pub tv_counter: i64,
    /// Fake pid.
    pub pid: i64,
    /// When this process (re)started.
    pub started: Instant,
    /// Uptime the process already had when the simulator started.
    pub uptime_offset: f64,
    /// Listener open?
    pub up: bool,
    /// False once removed for good.
    pub alive: bool,
    /// Injected faults.
    pub faults: Faults,
    /// Live counters.
    pub counters: Arc<HostCounters>,
    /// Per-host factor applied to the rates (0.7..1.3), deterministic.
    pub rate_factor: f64,
    /// Counter values at start (so hosts do not all start from zero).
    pub base: f64,
    /// Seconds spent as primary before `primary_since` (for monotonic counters).
    pub primary_acc: f64,
    /// Since when the host is primary (None when not primary).
    pub primary_since: Option<Instant>,
}

/// A member of a replica set config.
#[derive(Debug, Clone)]
pub struct MemberState {
    /// Host.
    pub host: HostId,
    /// Member `_id`.
    pub id: i32,
    /// Priority.
    pub priority: f64,
    /// Hidden.
    pub hidden: bool,
    /// Arbiter.
    pub arbiter: bool,
    /// Votes.
    pub votes: i32,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// secondaryDelaySecs.
    pub delay_secs: u64,
    /// Simulated replication lag.
    pub lag_secs: u64,
}

/// A replica set.
#[derive(Debug, Clone)]
pub struct SetState {
    /// setName.
    pub name: String,
    /// Config members (removed members are no longer listed).
    pub members: Vec<MemberState>,
    /// Hosts removed from the config but still running (state REMOVED).
    pub removed: Vec<HostId>,
    /// Current primary.
    pub primary: Option<HostId>,
    /// Election term.
    pub term: i64,
    /// Config version.
    pub set_version: i32,
    /// Role in a sharded cluster.
    pub role: SetRole,
    /// Cluster index when sharded.
    pub cluster: Option<usize>,
    /// Oplog window.
    pub oplog_window_secs: u64,
    /// Wall clock of the last election.
    pub election_date: SystemTime,
    /// Next member _id.
    pub next_member_id: i32,
    /// False once a shard is removed.
    pub alive: bool,
}

impl SetState {
    /// `electionId` as mongod builds it: 0x7fffffff followed by the term.
    pub fn election_id(&self) -> ObjectId {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        b[4..].copy_from_slice(&self.term.to_be_bytes());
        ObjectId::from_bytes(b)
    }

    /// Member entry of a host.
    pub fn member(&self, host: HostId) -> Option<&MemberState> {
        self.members.iter().find(|m| m.host == host)
    }

    /// `rs/h1,h2,...` connection string (data-bearing visible members).
    pub fn conn_string(&self, w: &World) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.hidden && !m.arbiter)
            .map(|m| w.hosts[m.host].addr.to_string())
            .collect();
        format!("{}/{}", self.name, hosts.join(","))
    }
}

/// A sharded cluster.
#[derive(Debug, Clone)]
pub struct ClusterState {
    /// Label.
    pub name: String,
    /// Config server set.
    pub config_set: usize,
    /// Shard sets (only alive ones).
    pub shards: Vec<usize>,
    /// mongos hosts (only alive ones).
    pub mongos: Vec<HostId>,
    /// Default version for added hosts.
    pub version: Version,
}

/// A configured user with SCRAM credentials per mechanism.
#[derive(Debug, Clone)]
pub struct User {
    /// Name.
    pub name: String,
    /// Auth db.
    pub db: String,
    /// mechanism name → credentials.
    pub creds: HashMap<String, ScramCredentials>,
}

/// Everything the simulator knows.
#[derive(Debug)]
pub struct World {
    /// All hosts ever created (retired ones stay with `alive = false`).
    pub hosts: Vec<HostState>,
    /// Replica sets.
    pub sets: Vec<SetState>,
    /// Sharded clusters.
    pub clusters: Vec<ClusterState>,
    /// Users (empty = auth disabled).
    pub users: Vec<User>,
    /// Counter rates.
    pub rates: Rates,
    /// Simulator start.
    pub started: Instant,
    /// Default version.
    pub default_version: Version,
    /// Bumped on every topology change (wakes awaitable hellos).
    pub generation: u64,
    address_mode: AddressMode,
    auto: AutoAddresses,
    by_addr: HashMap<SocketAddr, HostId>,
    /// Addresses requested but not yet bound.
    requested: HashSet<SocketAddr>,
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn mix(seed: u64) -> u64 {
    // splitmix64: cheap deterministic spread per host.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl World {
    /// Builds the world from a validated topology. Addresses with port 0 are
    /// resolved later by [`World::set_bound_addr`].
    pub fn build(t: &Topology) -> Result<World, TopologyError> {
        t.validate()?;
        let inv = |m: String| TopologyError::Invalid(m);
        let default_version = Version::parse(&t.simulator.version)
            .map_err(|e| inv(format!("simulator.version: {e}")))?;
        let base: Ipv4Addr = t
            .simulator
            .auto_base
            .parse()
            .unwrap_or(Ipv4Addr::new(127, 1, 0, 1));
        let mut w = World {
            hosts: Vec::new(),
            sets: Vec::new(),
            clusters: Vec::new(),
            users: Vec::new(),
            rates: t.rates.clone(),
            started: Instant::now(),
            default_version: default_version.clone(),
            generation: 0,
            address_mode: t.simulator.addresses,
            auto: AutoAddresses::new(base, t.simulator.auto_port),
            by_addr: HashMap::new(),
            requested: HashSet::new(),
        };
        // Reserve explicit non-zero addresses first so auto mode skips them.
        let mut explicit = Vec::new();
        for s in &t.standalone {
            explicit.extend(s.host.as_ref().map(|h| h.get_ref().clone()));
        }
        let all_sets = t.replica_set.iter().chain(
            t.sharded_cluster
                .iter()
                .flat_map(|c| std::iter::once(&c.config_server).chain(c.shards.iter())),
        );
        for rs in all_sets {
            explicit.extend(
                rs.members
                    .iter()
                    .filter_map(|m| m.host.as_ref().map(|h| h.get_ref().clone())),
            );
        }
        for c in &t.sharded_cluster {
            explicit.extend(
                c.mongos
                    .iter()
                    .filter_map(|m| m.host.as_ref().map(|h| h.get_ref().clone())),
            );
        }
        for h in explicit {
            if let Ok(a) = parse_loopback(&h) {
                if a.port() != 0 {
                    w.requested.insert(a);
                }
            }
        }
        let ver = |v: Option<&String>, dflt: &Version| -> Result<Version, TopologyError> {
            match v {
                Some(s) => Version::parse(s).map_err(inv),
                None => Ok(dflt.clone()),
            }
        };
        for s in &t.standalone {
            let v = ver(s.version.as_ref(), &default_version)?;
            let a = w.address(s.host.as_ref().map(|h| h.get_ref().as_str()))?;
            w.add_host(a, HostKind::Standalone, v);
        }
        for rs in &t.replica_set {
            let v = ver(rs.version.as_ref(), &default_version)?;
            w.add_set(rs, SetRole::Plain, None, &v)?;
        }
        for c in &t.sharded_cluster {
            let cv = ver(c.version.as_ref(), &default_version)?;
            let ci = w.clusters.len();
            let mut cfg = c.config_server.clone();
            if cfg.name.is_empty() {
                cfg.name = "configRepl".into();
            }
            let config_set = w.add_set(&cfg, SetRole::Config, Some(ci), &cv)?;
            w.clusters.push(ClusterState {
                name: c.name.clone(),
                config_set,
                shards: Vec::new(),
                mongos: Vec::new(),
                version: cv.clone(),
            });
            for s in &c.shards {
                let si = w.add_set(s, SetRole::Shard, Some(ci), &cv)?;
                w.clusters[ci].shards.push(si);
            }
            for m in &c.mongos {
                let v = ver(m.version.as_ref(), &cv)?;
                let a = w.address(m.host.as_ref().map(|h| h.get_ref().as_str()))?;
                let id = w.add_host(a, HostKind::Mongos { cluster: ci }, v);
                w.clusters[ci].mongos.push(id);
            }
        }
        for f in &t.fleet {
            let versions: Vec<Version> = if f.versions.is_empty() {
                vec![default_version.clone()]
            } else {
                f.versions
                    .iter()
                    .map(|s| Version::parse(s).map_err(inv))
                    .collect::<Result<_, _>>()?
            };
            for i in 0..f.replica_sets {
                let spec = ReplicaSetSpec {
                    name: format!("{}-{}", f.name_prefix, i),
                    version: None,
                    oplog_window_secs: 86_400,
                    primary: None,
                    members: (0..f.members_per_set)
                        .map(|_| MemberSpec::default())
                        .collect(),
                };
                let v = versions[i % versions.len()].clone();
                w.add_set(&spec, SetRole::Plain, None, &v)?;
            }
            for i in 0..f.standalones {
                let a = w.address(None)?;
                w.add_host(
                    a,
                    HostKind::Standalone,
                    versions[i % versions.len()].clone(),
                );
            }
        }
        for u in &t.users {
            let mut creds = HashMap::new();
            for m in &u.mechanisms {
                let c = ScramCredentials::derive(m, &u.name, &u.password).ok_or_else(|| {
                    inv(format!(
                        "users '{}': unknown mechanism '{m}', use SCRAM-SHA-256 or SCRAM-SHA-1",
                        u.name
                    ))
                })?;
                creds.insert(m.clone(), c);
            }
            w.users.push(User {
                name: u.name.clone(),
                db: u.db.clone(),
                creds,
            });
        }
        Ok(w)
    }

    fn address(&mut self, explicit: Option<&str>) -> Result<SocketAddr, TopologyError> {
        if let Some(h) = explicit {
            return parse_loopback(h).map_err(TopologyError::Invalid);
        }
        match self.address_mode {
            AddressMode::Explicit => Ok(SocketAddr::from(([127, 0, 0, 1], 0))),
            AddressMode::Auto => {
                let requested = &self.requested;
                let by_addr = &self.by_addr;
                self.auto
                    .next_addr(&|a| requested.contains(a) || by_addr.contains_key(a))
                    .ok_or_else(|| {
                        TopologyError::Invalid("auto addresses exhausted 127.0.0.0/8".into())
                    })
            }
        }
    }

    fn add_host(&mut self, addr: SocketAddr, kind: HostKind, version: Version) -> HostId {
        let id = self.hosts.len();
        let r = mix(id as u64);
        if addr.port() != 0 {
            self.by_addr.insert(addr, id);
        }
        self.hosts.push(HostState {
            addr,
            kind,
            version,
            process_id: ObjectId::new(),
            tv_counter: 0,
            pid: 100 + (r % 30_000) as i64,
            started: Instant::now(),
            uptime_offset: (r >> 16) as f64 % 86_400.0 + 600.0,
            up: true,
            alive: true,
            faults: Faults::default(),
            counters: Arc::new(HostCounters::default()),
            rate_factor: 0.7 + ((r >> 8) % 600) as f64 / 1000.0,
            base: ((r >> 24) % 100_000) as f64,
            primary_acc: 0.0,
            primary_since: None,
        });
        id
    }

    fn add_set(
        &mut self,
        rs: &ReplicaSetSpec,
        role: SetRole,
        cluster: Option<usize>,
        dflt: &Version,
    ) -> Result<usize, TopologyError> {
        let set_version = match &rs.version {
            Some(v) => Version::parse(v).map_err(TopologyError::Invalid)?,
            None => dflt.clone(),
        };
        let si = self.sets.len();
        let mut members = Vec::new();
        for (j, m) in rs.members.iter().enumerate() {
            let v = match &m.version {
                Some(v) => Version::parse(v).map_err(TopologyError::Invalid)?,
                None => set_version.clone(),
            };
            let a = self.address(m.host.as_ref().map(|h| h.get_ref().as_str()))?;
            let host = self.add_host(a, HostKind::Member { set: si }, v);
            members.push(MemberState {
                host,
                id: j as i32,
                priority: if m.arbiter_only { 0.0 } else { m.priority },
                hidden: m.hidden,
                arbiter: m.arbiter_only,
                votes: m.votes,
                tags: m.tags.clone(),
                delay_secs: m.secondary_delay_secs,
                lag_secs: m.lag_secs,
            });
        }
        let primary = match rs.primary {
            Some(i) => members.get(i).filter(|m| electable(m)).map(|m| m.host),
            None => members
                .iter()
                .filter(|m| electable(m))
                .max_by(|a, b| a.priority.total_cmp(&b.priority).then(b.id.cmp(&a.id)))
                .map(|m| m.host),
        };
        let n = members.len() as i32;
        if let Some(p) = primary {
            self.hosts[p].primary_since = Some(Instant::now());
        }
        self.sets.push(SetState {
            name: rs.name.clone(),
            members,
            removed: Vec::new(),
            primary,
            term: 1 + (mix(si as u64 + 77) % 5) as i64,
            set_version: 1 + (mix(si as u64) % 4) as i32,
            role,
            cluster,
            oplog_window_secs: rs.oplog_window_secs,
            election_date: SystemTime::now() - Duration::from_secs(3600),
            next_member_id: n,
            alive: true,
        });
        Ok(si)
    }

    /// Records the address a listener actually got (port 0 resolution).
    pub fn set_bound_addr(&mut self, id: HostId, addr: SocketAddr) {
        if let Some(h) = self.hosts.get_mut(id) {
            self.by_addr.remove(&h.addr);
            h.addr = addr;
            self.by_addr.insert(addr, id);
        }
    }

    /// Host by address text, or by alias (useful in timelines where ports
    /// are picked at start): `rs0[1]` (member 1 of set rs0 in config order),
    /// `primary:rs0` (its current primary), `mongos:c1[0]`, `standalone[2]`.
    pub fn host_id(&self, addr: &str) -> Result<HostId, ControlError> {
        let unknown = || ControlError::UnknownHost(addr.to_string());
        if let Ok(a) = addr.parse::<SocketAddr>() {
            return self
                .by_addr
                .get(&a)
                .copied()
                .filter(|&id| self.hosts[id].alive)
                .ok_or_else(unknown);
        }
        if let Some(set) = addr.strip_prefix("primary:") {
            let si = self.set_id(set).map_err(|_| unknown())?;
            return self.sets[si].primary.ok_or_else(unknown);
        }
        let (name, index) = addr
            .strip_suffix(']')
            .and_then(|s| s.split_once('['))
            .and_then(|(n, i)| i.parse::<usize>().ok().map(|i| (n, i)))
            .ok_or_else(unknown)?;
        let found = if let Some(cluster) = name.strip_prefix("mongos:") {
            self.clusters
                .iter()
                .find(|c| c.name == cluster)
                .and_then(|c| c.mongos.get(index).copied())
        } else if name == "standalone" {
            self.hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.alive && h.kind == HostKind::Standalone)
                .nth(index)
                .map(|(id, _)| id)
        } else {
            let si = self.set_id(name).map_err(|_| unknown())?;
            self.sets[si].members.get(index).map(|m| m.host)
        };
        found.filter(|&id| self.hosts[id].alive).ok_or_else(unknown)
    }

    /// Replica set by name.
    pub fn set_id(&self, name: &str) -> Result<usize, ControlError> {
        self.sets
            .iter()
            .position(|s| s.name == name && s.alive)
            .ok_or_else(|| ControlError::UnknownSet(name.to_string()))
    }

    fn cluster_id(&self, name: &str) -> Result<usize, ControlError> {
        self.clusters
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| ControlError::UnknownCluster(name.to_string()))
    }

    /// Seconds since the simulated process started (with its initial offset).
    pub fn uptime(&self, id: HostId) -> f64 {
        let h = &self.hosts[id];
        h.started.elapsed().as_secs_f64() + h.uptime_offset
    }

    /// Seconds since the simulator started (drives the rates).
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Member state number and string (1 PRIMARY, 2 SECONDARY, 7 ARBITER, 10 REMOVED).
    pub fn member_state(&self, id: HostId) -> (i32, &'static str) {
        match self.hosts[id].kind {
            HostKind::Member { set } => {
                let s = &self.sets[set];
                match s.member(id) {
                    None => (10, "REMOVED"),
                    Some(m) if m.arbiter => (7, "ARBITER"),
                    Some(_) if s.primary == Some(id) => (1, "PRIMARY"),
                    Some(_) => (2, "SECONDARY"),
                }
            }
            _ => (0, "STARTUP"),
        }
    }

    fn bump_set(&mut self, si: usize) {
        let hosts: Vec<HostId> = self.sets[si]
            .members
            .iter()
            .map(|m| m.host)
            .chain(self.sets[si].removed.iter().copied())
            .collect();
        for h in hosts {
            self.hosts[h].tv_counter += 1;
        }
        self.generation += 1;
    }

    fn elect(
        &mut self,
        si: usize,
        exclude: Option<HostId>,
        wanted: Option<HostId>,
    ) -> Result<(), ControlError> {
        let s = &self.sets[si];
        let hosts = &self.hosts;
        let winner = match wanted {
            Some(h) => {
                let m = s.member(h).ok_or_else(|| {
                    ControlError::Invalid(format!(
                        "{} is not a member of {}",
                        hosts[h].addr, s.name
                    ))
                })?;
                if !electable(m) || !hosts[h].up {
                    return Err(ControlError::Invalid(format!(
                        "{} cannot become primary (arbiter, hidden, priority 0 or down)",
                        hosts[h].addr
                    )));
                }
                Some(h)
            }
            None => s
                .members
                .iter()
                .filter(|m| electable(m) && Some(m.host) != exclude && hosts[m.host].up)
                .max_by(|a, b| a.priority.total_cmp(&b.priority).then(b.id.cmp(&a.id)))
                .map(|m| m.host),
        };
        self.set_primary(si, winner);
        let s = &mut self.sets[si];
        s.term += 1;
        s.election_date = SystemTime::now();
        self.bump_set(si);
        Ok(())
    }

    fn set_primary(&mut self, si: usize, new: Option<HostId>) {
        if let Some(old) = self.sets[si].primary {
            let h = &mut self.hosts[old];
            if let Some(since) = h.primary_since.take() {
                h.primary_acc += since.elapsed().as_secs_f64();
            }
        }
        if let Some(n) = new {
            self.hosts[n].primary_since = Some(Instant::now());
        }
        self.sets[si].primary = new;
    }

    /// Seconds this host accepted writes (primary/standalone/mongos) and
    /// seconds it replicated them (secondary), since the simulator started.
    /// Counters derived from them never go backwards across elections.
    pub fn role_seconds(&self, id: HostId) -> (f64, f64) {
        let total = self.elapsed();
        let h = &self.hosts[id];
        match h.kind {
            HostKind::Member { .. } => {
                let p = h.primary_acc
                    + h.primary_since
                        .map(|s| s.elapsed().as_secs_f64())
                        .unwrap_or(0.0);
                let p = p.min(total);
                (p, total - p)
            }
            _ => (total, 0.0),
        }
    }

    fn new_member(
        &mut self,
        si: usize,
        host: Option<&str>,
        hidden: bool,
        priority: f64,
        arbiter: bool,
        version: Version,
    ) -> Result<HostId, ControlError> {
        let addr = self
            .address(host)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        if addr.port() != 0 && self.by_addr.contains_key(&addr) {
            return Err(ControlError::Invalid(format!(
                "address {addr} is already used"
            )));
        }
        let id = self.add_host(addr, HostKind::Member { set: si }, version);
        let s = &mut self.sets[si];
        let mid = s.next_member_id;
        s.next_member_id += 1;
        s.members.push(MemberState {
            host: id,
            id: mid,
            priority: if arbiter { 0.0 } else { priority },
            hidden,
            arbiter,
            votes: 1,
            tags: BTreeMap::new(),
            delay_secs: 0,
            lag_secs: 0,
        });
        Ok(id)
    }

    /// Applies a fault or topology change and returns the socket work to do.
    pub fn apply(&mut self, action: &Action) -> Result<Vec<Effect>, ControlError> {
        let mut effects = Vec::new();
        match action {
            Action::Down { host } => {
                let id = self.host_id(host)?;
                self.hosts[id].up = false;
                effects.push(Effect::Close(id));
                // A real set elects a new primary once the old one is unreachable.
                if let HostKind::Member { set } = self.hosts[id].kind {
                    if self.sets[set].primary == Some(id) {
                        self.elect(set, Some(id), None)?;
                    } else {
                        self.bump_set(set);
                    }
                } else {
                    self.generation += 1;
                }
            }
            Action::Up { host } => {
                let id = self.host_id(host)?;
                if !self.hosts[id].up {
                    let h = &mut self.hosts[id];
                    h.up = true;
                    h.process_id = ObjectId::new();
                    h.tv_counter = 0;
                    h.started = Instant::now();
                    h.uptime_offset = 0.0;
                    effects.push(Effect::Listen(id));
                    if let HostKind::Member { set } = self.hosts[id].kind {
                        if self.sets[set].primary.is_none() {
                            self.elect(set, None, None)?;
                        } else {
                            self.bump_set(set);
                        }
                    }
                }
            }
            Action::Hang { host, on } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults.hang = *on;
            }
            Action::Slow { host, millis } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults.latency = Duration::from_millis(*millis);
            }
            Action::ResetMidReply { host, on } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults.reset_mid_reply = *on;
            }
            Action::FrameFault { host, fault } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults.frame =
                    Some(*fault).filter(|f| *f != super::topology::FrameFault::None);
            }
            Action::MalformedReply { host, on } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults.malformed_reply = *on;
            }
            Action::CommandError {
                host,
                command,
                code,
                errmsg,
            } => {
                let id = self.host_id(host)?;
                self.hosts[id]
                    .faults
                    .command_errors
                    .insert(command.to_ascii_lowercase(), (*code, errmsg.clone()));
            }
            Action::ClearCommandError { host, command } => {
                let id = self.host_id(host)?;
                self.hosts[id]
                    .faults
                    .command_errors
                    .remove(&command.to_ascii_lowercase());
            }
            Action::AuthFailure { host, on } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults.auth_failure = *on;
            }
            Action::ClearFaults { host } => {
                let id = self.host_id(host)?;
                self.hosts[id].faults = Faults::default();
            }
            Action::StepDown { set, new_primary } => {
                let si = self.set_id(set)?;
                let old = self.sets[si].primary;
                let wanted = match new_primary {
                    Some(a) => Some(self.host_id(a)?),
                    None => None,
                };
                self.elect(si, old, wanted)?;
                if self.sets[si].primary.is_none() {
                    // Nobody else is electable: the old primary wins the new term.
                    self.set_primary(si, old);
                }
            }
            Action::AddMember {
                set,
                host,
                hidden,
                priority,
                arbiter_only,
            } => {
                let si = self.set_id(set)?;
                let v = self.sets[si]
                    .members
                    .first()
                    .map(|m| self.hosts[m.host].version.clone())
                    .unwrap_or_else(|| self.default_version.clone());
                let id =
                    self.new_member(si, host.as_deref(), *hidden, *priority, *arbiter_only, v)?;
                self.sets[si].set_version += 1;
                self.bump_set(si);
                effects.push(Effect::Listen(id));
            }
            Action::RemoveMember { set, host } => {
                let si = self.set_id(set)?;
                let id = self.host_id(host)?;
                let s = &mut self.sets[si];
                let pos = s.members.iter().position(|m| m.host == id).ok_or_else(|| {
                    ControlError::Invalid(format!("{host} is not a member of {set}"))
                })?;
                if s.members.len() == 1 {
                    return Err(ControlError::Invalid(format!(
                        "cannot remove the last member of {set}"
                    )));
                }
                s.members.remove(pos);
                s.removed.push(id);
                s.set_version += 1;
                if s.primary == Some(id) {
                    self.elect(si, Some(id), None)?;
                } else {
                    self.bump_set(si);
                }
            }
            Action::SetHidden { set, host, hidden } => {
                let si = self.set_id(set)?;
                let id = self.host_id(host)?;
                let s = &mut self.sets[si];
                if s.primary == Some(id) && *hidden {
                    return Err(ControlError::Invalid(
                        "the primary cannot be hidden; step it down first".into(),
                    ));
                }
                let m = s.members.iter_mut().find(|m| m.host == id).ok_or_else(|| {
                    ControlError::Invalid(format!("{host} is not a member of {set}"))
                })?;
                m.hidden = *hidden;
                if *hidden {
                    m.priority = 0.0;
                }
                s.set_version += 1;
                self.bump_set(si);
            }
            Action::SetLag { set, host, secs } => {
                let si = self.set_id(set)?;
                let id = self.host_id(host)?;
                let m = self.sets[si]
                    .members
                    .iter_mut()
                    .find(|m| m.host == id)
                    .ok_or_else(|| {
                        ControlError::Invalid(format!("{host} is not a member of {set}"))
                    })?;
                m.lag_secs = *secs;
            }
            Action::AddShard {
                cluster,
                name,
                members,
            } => {
                let ci = self.cluster_id(cluster)?;
                if self.sets.iter().any(|s| s.alive && &s.name == name) {
                    return Err(ControlError::Invalid(format!(
                        "a replica set named {name} already exists"
                    )));
                }
                // Bounded: each member is a listener and file descriptor.
                if *members == 0 || *members > 50 {
                    return Err(ControlError::Invalid(
                        "a shard needs between 1 and 50 members".into(),
                    ));
                }
                let spec = ReplicaSetSpec {
                    name: name.clone(),
                    version: Some(self.clusters[ci].version.text.clone()),
                    oplog_window_secs: 86_400,
                    primary: None,
                    members: (0..*members).map(|_| MemberSpec::default()).collect(),
                };
                let v = self.clusters[ci].version.clone();
                let si = self
                    .add_set(&spec, SetRole::Shard, Some(ci), &v)
                    .map_err(|e| ControlError::Invalid(e.to_string()))?;
                self.clusters[ci].shards.push(si);
                effects.extend(self.sets[si].members.iter().map(|m| Effect::Listen(m.host)));
                self.generation += 1;
            }
            Action::RemoveShard { cluster, name } => {
                let ci = self.cluster_id(cluster)?;
                let pos = self.clusters[ci]
                    .shards
                    .iter()
                    .position(|&s| self.sets[s].name == *name)
                    .ok_or_else(|| ControlError::UnknownSet(name.clone()))?;
                let si = self.clusters[ci].shards.remove(pos);
                self.sets[si].alive = false;
                for m in self.sets[si].members.clone() {
                    self.retire(m.host, &mut effects);
                }
                self.generation += 1;
            }
            Action::AddMongos { cluster, host } => {
                let ci = self.cluster_id(cluster)?;
                let addr = self
                    .address(host.as_deref())
                    .map_err(|e| ControlError::Invalid(e.to_string()))?;
                if addr.port() != 0 && self.by_addr.contains_key(&addr) {
                    return Err(ControlError::Invalid(format!(
                        "address {addr} is already used"
                    )));
                }
                let v = self.clusters[ci].version.clone();
                let id = self.add_host(addr, HostKind::Mongos { cluster: ci }, v);
                self.clusters[ci].mongos.push(id);
                effects.push(Effect::Listen(id));
                self.generation += 1;
            }
            Action::RemoveMongos { cluster, host } => {
                let ci = self.cluster_id(cluster)?;
                let id = self.host_id(host)?;
                let pos = self.clusters[ci]
                    .mongos
                    .iter()
                    .position(|&m| m == id)
                    .ok_or_else(|| {
                        ControlError::Invalid(format!("{host} is not a mongos of {cluster}"))
                    })?;
                self.clusters[ci].mongos.remove(pos);
                self.retire(id, &mut effects);
                self.generation += 1;
            }
        }
        Ok(effects)
    }

    fn retire(&mut self, id: HostId, effects: &mut Vec<Effect>) {
        let h = &mut self.hosts[id];
        h.alive = false;
        h.up = false;
        let addr = h.addr;
        self.by_addr.remove(&addr);
        effects.push(Effect::Retire(id));
    }
}

/// Can this member become primary?
pub fn electable(m: &MemberState) -> bool {
    !m.arbiter && !m.hidden && m.priority > 0.0 && m.delay_secs == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs3() -> World {
        let t = Topology::from_toml_str(
            r#"
            [[replica_set]]
            name = "rs0"
            [[replica_set.members]]
            host = "127.0.0.1:41001"
            [[replica_set.members]]
            host = "127.0.0.1:41002"
            [[replica_set.members]]
            host = "127.0.0.1:41003"
            priority = 0.0
            "#,
        )
        .unwrap();
        World::build(&t).unwrap()
    }

    #[test]
    fn wire_versions() {
        let w = |s: &str| Version::parse(s).unwrap().max_wire_version();
        assert_eq!(
            (
                w("4.2.8"),
                w("4.4.1"),
                w("5.0.3"),
                w("6.0.1"),
                w("7.0.12"),
                w("8.0.0")
            ),
            (8, 9, 13, 17, 21, 25)
        );
    }

    #[test]
    fn step_down_elects_other_member_and_bumps_term() {
        let mut w = rs3();
        assert_eq!(w.sets[0].primary, Some(0));
        let term = w.sets[0].term;
        w.apply(&Action::StepDown {
            set: "rs0".into(),
            new_primary: None,
        })
        .unwrap();
        assert_eq!(w.sets[0].primary, Some(1));
        assert_eq!(w.sets[0].term, term + 1);
        assert_eq!(w.hosts[2].tv_counter, 1);
        // priority 0 member cannot be chosen.
        let e = w.apply(&Action::StepDown {
            set: "rs0".into(),
            new_primary: Some("127.0.0.1:41003".into()),
        });
        assert!(matches!(e, Err(ControlError::Invalid(_))));
    }

    #[test]
    fn host_aliases_resolve() {
        let w = rs3();
        assert_eq!(w.host_id("rs0[2]"), Ok(2));
        assert_eq!(w.host_id("primary:rs0"), Ok(0));
        assert_eq!(w.host_id("127.0.0.1:41002"), Ok(1));
        assert!(w.host_id("rs0[9]").is_err());
        assert!(w.host_id("nope[0]").is_err());
        assert!(w.host_id("mongos:x[0]").is_err());
    }

    #[test]
    fn primary_down_triggers_election() {
        let mut w = rs3();
        let fx = w
            .apply(&Action::Down {
                host: "127.0.0.1:41001".into(),
            })
            .unwrap();
        assert_eq!(fx, vec![Effect::Close(0)]);
        assert_eq!(w.sets[0].primary, Some(1));
        assert_eq!(w.member_state(0), (2, "SECONDARY"));
    }
}
