//! The simulated topology as written in a TOML file: standalones, replica sets,
//! sharded clusters, generated fleets, users, counter rates and a timeline of
//! scripted events. Owns parsing, validation (with line numbers and fixes) and
//! address assignment; the running state lives in `state.rs`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use thiserror::Error;
use toml::Spanned;

/// Latest time (one year) a timeline event may be scheduled at.
pub const MAX_EVENT_SECS: f64 = 31_536_000.0;

/// Version used when neither the host nor its group names one.
pub const DEFAULT_VERSION: &str = "7.0.12";

/// Errors found while reading or validating a topology.
#[derive(Debug, Error)]
pub enum TopologyError {
    /// TOML syntax error or unknown/mistyped key (message names line and column).
    #[error("{0}")]
    Parse(String),
    /// A semantic problem; the message names the place and the fix.
    #[error("{0}")]
    Invalid(String),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Whole simulator configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Global settings (address mode, control endpoint, defaults).
    #[serde(default)]
    pub simulator: SimulatorSettings,
    /// Counter growth rates applied to every host (per second).
    #[serde(default)]
    pub rates: Rates,
    /// Standalone mongod hosts.
    #[serde(default)]
    pub standalone: Vec<StandaloneSpec>,
    /// Replica sets.
    #[serde(default)]
    pub replica_set: Vec<ReplicaSetSpec>,
    /// Sharded clusters.
    #[serde(default)]
    pub sharded_cluster: Vec<ShardedClusterSpec>,
    /// Generated fleets (many hosts without listing each one).
    #[serde(default)]
    pub fleet: Vec<FleetSpec>,
    /// Users accepted by SCRAM. Empty = authentication disabled.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Scripted events applied at given seconds after start.
    #[serde(default)]
    pub events: Vec<TimedEvent>,
}

/// How host addresses are chosen when a host does not give one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressMode {
    /// Missing addresses become `127.0.0.1:0` (a free port picked at start).
    #[default]
    Explicit,
    /// Missing addresses are spread over `127.x.y.z:<auto_port>` from `auto_base`.
    Auto,
}

/// `[simulator]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorSettings {
    /// `explicit` (default) or `auto`.
    pub addresses: AddressMode,
    /// First address used by auto mode (default 127.1.0.1; 127.0.0.1 is avoided
    /// because a real mongod may listen there).
    pub auto_base: String,
    /// Port used by auto mode (default 27017).
    pub auto_port: u16,
    /// Control endpoint address (port 0 = free port); `"off"` (or `None` in
    /// Rust) disables it.
    pub control: Option<String>,
    /// Server version for hosts that do not set one.
    pub version: String,
}

impl SimulatorSettings {
    /// The control endpoint address, or None when disabled (`None` or "off").
    pub fn control_addr(&self) -> Option<&str> {
        match self.control.as_deref() {
            None | Some("off") | Some("") => None,
            Some(a) => Some(a),
        }
    }
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        SimulatorSettings {
            addresses: AddressMode::Explicit,
            auto_base: "127.1.0.1".into(),
            auto_port: 27017,
            control: Some("127.0.0.1:0".into()),
            version: DEFAULT_VERSION.into(),
        }
    }
}

/// Per-second growth of the counters reported by serverStatus. Each host gets
/// a deterministic spread of ±30 % so a fleet does not look cloned.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rates {
    /// opcounters.insert per second (on primaries/standalones/mongos).
    pub insert: f64,
    /// opcounters.query per second.
    pub query: f64,
    /// opcounters.update per second.
    pub update: f64,
    /// opcounters.delete per second.
    pub delete: f64,
    /// opcounters.getmore per second.
    pub getmore: f64,
    /// opcounters.command per second.
    pub command: f64,
    /// network.bytesIn per second (on top of real traffic).
    pub bytes_in: f64,
    /// network.bytesOut per second (on top of real traffic).
    pub bytes_out: f64,
    /// network.numRequests per second (on top of real requests).
    pub requests: f64,
    /// connections.totalCreated per second (on top of real connections).
    pub connections_created: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            insert: 20.0,
            query: 50.0,
            update: 10.0,
            delete: 2.0,
            getmore: 15.0,
            command: 120.0,
            bytes_in: 40_000.0,
            bytes_out: 180_000.0,
            requests: 150.0,
            connections_created: 0.05,
        }
    }
}

/// A standalone mongod.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSpec {
    /// `127.x.y.z:port`; port 0 = free port. Omit to use the address mode.
    pub host: Option<Spanned<String>>,
    /// Server version, e.g. "6.0.14".
    pub version: Option<String>,
}

/// A replica set (also used for shards and config servers).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSetSpec {
    /// Replica set name (`setName`).
    pub name: String,
    /// Default version of the members.
    pub version: Option<String>,
    /// Oplog window in seconds (first oplog entry is this far in the past).
    #[serde(default = "default_oplog_window")]
    pub oplog_window_secs: u64,
    /// Index of the initial primary among `members` (default: first electable).
    pub primary: Option<usize>,
    /// Members in config order.
    #[serde(default)]
    pub members: Vec<MemberSpec>,
}

fn default_oplog_window() -> u64 {
    86_400
}

/// One replica set member.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    /// `127.x.y.z:port`; port 0 = free port. Omit to use the address mode.
    pub host: Option<Spanned<String>>,
    /// Election priority (0 = never primary; listed under `passives`).
    #[serde(default = "one_f64")]
    pub priority: f64,
    /// Hidden member (not in `hosts`, `hidden: true` in its own hello).
    #[serde(default)]
    pub hidden: bool,
    /// Arbiter (no data; listed under `arbiters`).
    #[serde(default)]
    pub arbiter_only: bool,
    /// Votes (0 or 1).
    #[serde(default = "one_i32")]
    pub votes: i32,
    /// Replica set tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Version of this member (overrides the set's).
    pub version: Option<String>,
    /// Delayed member: `secondaryDelaySecs` (5.0+) / `slaveDelay` (older).
    #[serde(default, alias = "slave_delay")]
    pub secondary_delay_secs: u64,
    /// Replication lag reported for this member in seconds (optime behind primary).
    #[serde(default)]
    pub lag_secs: u64,
}

impl Default for MemberSpec {
    fn default() -> Self {
        MemberSpec {
            host: None,
            priority: 1.0,
            hidden: false,
            arbiter_only: false,
            votes: 1,
            tags: BTreeMap::new(),
            version: None,
            secondary_delay_secs: 0,
            lag_secs: 0,
        }
    }
}

fn one_f64() -> f64 {
    1.0
}
fn one_i32() -> i32 {
    1
}

/// A sharded cluster.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShardedClusterSpec {
    /// Cluster label (used by the control API; not visible on the wire).
    pub name: String,
    /// Default version for all its hosts.
    pub version: Option<String>,
    /// Config server replica set.
    pub config_server: ReplicaSetSpec,
    /// Shards (each a replica set).
    #[serde(default)]
    pub shards: Vec<ReplicaSetSpec>,
    /// mongos routers.
    #[serde(default)]
    pub mongos: Vec<MongosSpec>,
}

/// One mongos.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MongosSpec {
    /// `127.x.y.z:port`; port 0 = free port. Omit to use the address mode.
    pub host: Option<Spanned<String>>,
    /// Version of this mongos.
    pub version: Option<String>,
}

/// Generated hosts: `replica_sets` sets of `members_per_set` plus `standalones`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// Prefix of generated set names (`<prefix>-<n>`).
    #[serde(default = "default_prefix")]
    pub name_prefix: String,
    /// Number of replica sets.
    #[serde(default)]
    pub replica_sets: usize,
    /// Members in each generated set.
    #[serde(default = "three")]
    pub members_per_set: usize,
    /// Number of standalones.
    #[serde(default)]
    pub standalones: usize,
    /// Versions assigned round-robin (default: the simulator version).
    #[serde(default)]
    pub versions: Vec<String>,
}

fn default_prefix() -> String {
    "fleet".into()
}
fn three() -> usize {
    3
}

/// A SCRAM user.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// User name.
    pub name: String,
    /// Clear-text password (this is a simulator).
    pub password: String,
    /// Authentication database.
    #[serde(default = "admin")]
    pub db: String,
    /// Allowed mechanisms (`SCRAM-SHA-256`, `SCRAM-SHA-1`).
    #[serde(default = "all_mechs")]
    pub mechanisms: Vec<String>,
}

fn admin() -> String {
    "admin".into()
}
fn all_mechs() -> Vec<String> {
    vec!["SCRAM-SHA-1".into(), "SCRAM-SHA-256".into()]
}

/// An event of the timeline. (No `deny_unknown_fields` here: serde cannot
/// combine it with `flatten`; the flattened [`Action`] rejects unknown keys.)
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TimedEvent {
    /// Seconds after the simulator started.
    pub at_secs: f64,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// A fault or topology change. The same type is used by the timeline, the
/// Rust control API and the HTTP control endpoint (JSON with an `action` tag).
///
/// One way a reply's frame can be broken ([`Action::FrameFault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameFault {
    /// Replies are whole again.
    None,
    /// Half of the reply, then the connection closes (FIN, not a reset).
    CloseMidReply,
    /// A header whose length is shorter than the document it carries.
    Truncated,
    /// A header claiming 60 MB, above any maxMessageSizeBytes.
    Oversized,
    /// A well-formed reply to another request id.
    WrongResponseTo,
    /// The checksum flag set and a checksum that does not match.
    BadChecksum,
    /// A document whose lengths are right but one nested element is of an
    /// unknown type.
    InvalidBson,
    /// The reply inside OP_COMPRESSED (zlib) although nothing was negotiated.
    UnnegotiatedCompression,
}

/// Every `host` field takes an address (`127.0.0.1:27017`) or an alias
/// resolved when the action runs: `rs0[1]` (member 1 of rs0 in config order),
/// `primary:rs0`, `mongos:<cluster>[0]`, `standalone[0]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Close the host's listener and its connections.
    Down {
        /// Host address.
        host: String,
    },
    /// Re-open the host's listener.
    Up {
        /// Host address.
        host: String,
    },
    /// Accept connections and read requests but never answer.
    Hang {
        /// Host address.
        host: String,
        /// true = hang, false = normal again.
        #[serde(default = "yes")]
        on: bool,
    },
    /// Add latency to every reply.
    Slow {
        /// Host address.
        host: String,
        /// Added milliseconds (0 = off).
        millis: u64,
    },
    /// Send half of the next replies then reset the connection.
    ResetMidReply {
        /// Host address.
        host: String,
        /// On/off.
        #[serde(default = "yes")]
        on: bool,
    },
    /// Break the framing of the next replies in one way (or `none`).
    FrameFault {
        /// Host address.
        host: String,
        /// What goes wrong.
        fault: FrameFault,
    },
    /// Send garbage instead of replies.
    MalformedReply {
        /// Host address.
        host: String,
        /// On/off.
        #[serde(default = "yes")]
        on: bool,
    },
    /// Answer a named command with an error.
    CommandError {
        /// Host address.
        host: String,
        /// Command name (case-insensitive).
        command: String,
        /// Error code (codeName is derived).
        #[serde(default = "default_error_code")]
        code: i32,
        /// Error message; default derived from the code.
        #[serde(default)]
        errmsg: Option<String>,
    },
    /// Remove a command error.
    ClearCommandError {
        /// Host address.
        host: String,
        /// Command name.
        command: String,
    },
    /// Make every authentication fail on the host.
    AuthFailure {
        /// Host address.
        host: String,
        /// On/off.
        #[serde(default = "yes")]
        on: bool,
    },
    /// Remove every fault from a host.
    ClearFaults {
        /// Host address.
        host: String,
    },
    /// Primary steps down; `new_primary` (address) or the best electable member wins.
    StepDown {
        /// Replica set name.
        set: String,
        /// Address of the member to elect.
        #[serde(default)]
        new_primary: Option<String>,
    },
    /// Add a member to a replica set (reconfig, setVersion+1).
    AddMember {
        /// Replica set name.
        set: String,
        /// Address (port 0 = free port; omitted = address mode).
        #[serde(default)]
        host: Option<String>,
        /// Hidden.
        #[serde(default)]
        hidden: bool,
        /// Priority.
        #[serde(default = "one_f64")]
        priority: f64,
        /// Arbiter.
        #[serde(default)]
        arbiter_only: bool,
    },
    /// Remove a member (reconfig); the process keeps running in state REMOVED.
    RemoveMember {
        /// Replica set name.
        set: String,
        /// Member address.
        host: String,
    },
    /// Change hidden flag (reconfig).
    SetHidden {
        /// Replica set name.
        set: String,
        /// Member address.
        host: String,
        /// Hidden or not.
        hidden: bool,
    },
    /// Set a member's replication lag.
    SetLag {
        /// Replica set name.
        set: String,
        /// Member address.
        host: String,
        /// Lag in seconds.
        secs: u64,
    },
    /// Add a shard of `members` new members to a sharded cluster.
    AddShard {
        /// Cluster name.
        cluster: String,
        /// Shard (replica set) name.
        name: String,
        /// Member count.
        #[serde(default = "three")]
        members: usize,
    },
    /// Remove a shard (its hosts are shut down).
    RemoveShard {
        /// Cluster name.
        cluster: String,
        /// Shard name.
        name: String,
    },
    /// Add a mongos.
    AddMongos {
        /// Cluster name.
        cluster: String,
        /// Address (port 0 = free port; omitted = address mode).
        #[serde(default)]
        host: Option<String>,
    },
    /// Remove a mongos (shut down, gone from config.mongos).
    RemoveMongos {
        /// Cluster name.
        cluster: String,
        /// Address.
        host: String,
    },
}

/// Address value for topologies built in Rust (no source span).
///
/// ```
/// use mongomon::sim::topology::{host, StandaloneSpec, Topology};
/// let mut t = Topology::default();
/// t.standalone.push(StandaloneSpec { host: host("127.0.0.1:0"), version: None });
/// assert!(t.validate().is_ok());
/// ```
pub fn host(addr: &str) -> Option<Spanned<String>> {
    Some(Spanned::new(0..0, addr.to_string()))
}

fn yes() -> bool {
    true
}
fn default_error_code() -> i32 {
    8000
}

impl Topology {
    /// Parses TOML text. Unknown keys and wrong types are reported with line
    /// and column by the TOML parser; semantic checks follow in [`Topology::validate`].
    pub fn from_toml_str(text: &str) -> Result<Topology, TopologyError> {
        let topo: Topology = toml::from_str(text)
            .map_err(|e| TopologyError::Parse(format!("invalid topology: {e}")))?;
        topo.validate_with_source(Some(text))?;
        Ok(topo)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|e| TopologyError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Topology::from_toml_str(&text).map_err(|e| match e {
            TopologyError::Parse(m) => TopologyError::Parse(format!("{}: {m}", path.display())),
            TopologyError::Invalid(m) => TopologyError::Invalid(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Checks the topology built in Rust (no source text, so no line numbers).
    pub fn validate(&self) -> Result<(), TopologyError> {
        self.validate_with_source(None)
    }

    fn validate_with_source(&self, src: Option<&str>) -> Result<(), TopologyError> {
        let mut seen: HashMap<SocketAddr, String> = HashMap::new();
        let mut errors = Vec::new();
        let mut check = |path: String, host: &Option<Spanned<String>>, errors: &mut Vec<String>| {
            let Some(h) = host else { return };
            let at = location(src, &path, h.span());
            match parse_loopback(h.get_ref()) {
                Err(msg) => errors.push(format!("{at}: {msg}")),
                Ok(addr) if addr.port() != 0 => {
                    if let Some(prev) = seen.get(&addr) {
                        errors.push(format!(
                            "{at}: duplicate address {addr} (already used by {prev}); give each host its own address or use port 0"
                        ));
                    } else {
                        seen.insert(addr, path.clone());
                    }
                }
                Ok(_) => {}
            }
        };
        for (i, s) in self.standalone.iter().enumerate() {
            check(format!("standalone[{i}].host"), &s.host, &mut errors);
        }
        let mut set_names: HashMap<String, String> = HashMap::new();
        let mut check_set = |path: String,
                             rs: &ReplicaSetSpec,
                             errors: &mut Vec<String>,
                             check: &mut HostCheck<'_>| {
            if rs.name.is_empty() {
                errors.push(format!(
                    "{path}: replica set without a name; add name = \"rs0\""
                ));
            } else if let Some(prev) = set_names.insert(rs.name.clone(), path.clone()) {
                errors.push(format!(
                    "{path}: replica set name '{}' already used by {prev}; names must be unique",
                    rs.name
                ));
            }
            if rs.members.is_empty() {
                errors.push(format!(
                    "{path} ('{}'): has no members; add at least one [[{path}.members]] table",
                    rs.name
                ));
            }
            if let Some(p) = rs.primary {
                if p >= rs.members.len() {
                    errors.push(format!(
                        "{path}.primary: index {p} but only {} members",
                        rs.members.len()
                    ));
                }
            }
            for (j, m) in rs.members.iter().enumerate() {
                check(format!("{path}.members[{j}].host"), &m.host, errors);
                if m.votes != 0 && m.votes != 1 {
                    errors.push(format!(
                        "{path}.members[{j}].votes: must be 0 or 1, got {}",
                        m.votes
                    ));
                }
                if m.priority < 0.0 {
                    errors.push(format!("{path}.members[{j}].priority: must be >= 0"));
                }
            }
        };
        for (i, rs) in self.replica_set.iter().enumerate() {
            check_set(format!("replica_set[{i}]"), rs, &mut errors, &mut check);
        }
        for (i, c) in self.sharded_cluster.iter().enumerate() {
            let path = format!("sharded_cluster[{i}]");
            check_set(
                format!("{path}.config_server"),
                &c.config_server,
                &mut errors,
                &mut check,
            );
            for (j, s) in c.shards.iter().enumerate() {
                check_set(format!("{path}.shards[{j}]"), s, &mut errors, &mut check);
            }
            for (j, m) in c.mongos.iter().enumerate() {
                check(format!("{path}.mongos[{j}].host"), &m.host, &mut errors);
            }
            if c.mongos.is_empty() {
                errors.push(format!(
                    "{path} ('{}'): no mongos; add a [[{path}.mongos]] table",
                    c.name
                ));
            }
        }
        if let Some(ctl) = self.simulator.control_addr() {
            if let Err(m) = parse_loopback(ctl) {
                errors.push(format!("simulator.control: {m}"));
            }
        }
        if self.simulator.addresses == AddressMode::Auto
            && self
                .simulator
                .auto_base
                .parse::<Ipv4Addr>()
                .map(|a| a.octets()[0] != 127)
                .unwrap_or(true)
        {
            errors.push("simulator.auto_base: must be an IPv4 address inside 127.0.0.0/8, e.g. \"127.1.0.1\"".into());
        }
        for (i, e) in self.events.iter().enumerate() {
            // Bounded so the Duration conversion can never overflow.
            if !(e.at_secs >= 0.0 && e.at_secs <= MAX_EVENT_SECS) {
                errors.push(format!(
                    "events[{i}].at_secs: must be between 0 and {MAX_EVENT_SECS} seconds"
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TopologyError::Invalid(format!(
                "invalid topology:\n  {}",
                errors.join("\n  ")
            )))
        }
    }

    /// Total number of hosts the topology describes (fleets included).
    pub fn host_count(&self) -> usize {
        let sets: usize = self.replica_set.iter().map(|r| r.members.len()).sum();
        let sharded: usize = self
            .sharded_cluster
            .iter()
            .map(|c| {
                c.config_server.members.len()
                    + c.shards.iter().map(|s| s.members.len()).sum::<usize>()
                    + c.mongos.len()
            })
            .sum();
        let fleet: usize = self
            .fleet
            .iter()
            .map(|f| f.replica_sets * f.members_per_set + f.standalones)
            .sum();
        self.standalone.len() + sets + sharded + fleet
    }
}

/// Callback checking one host address (used while validating).
type HostCheck<'a> = dyn FnMut(String, &Option<Spanned<String>>, &mut Vec<String>) + 'a;

fn location(src: Option<&str>, path: &str, span: std::ops::Range<usize>) -> String {
    match src {
        Some(s) if span.end > 0 && span.start <= s.len() => {
            let line = s[..span.start].bytes().filter(|&b| b == b'\n').count() + 1;
            format!("line {line} ({path})")
        }
        _ => path.to_string(),
    }
}

/// Parses `ip:port` and requires the IP to be in 127.0.0.0/8: the simulator
/// must never listen on a reachable interface.
pub fn parse_loopback(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|_| format!("'{s}' is not an ip:port address; write e.g. \"127.0.0.1:27017\" (port 0 = pick a free port)"))?;
    match addr {
        SocketAddr::V4(v4) if v4.ip().octets()[0] == 127 => Ok(addr),
        _ => Err(format!(
            "address {s} is outside 127.0.0.0/8; the simulator only listens on loopback, use e.g. \"127.0.0.1:{}\"",
            addr.port()
        )),
    }
}

/// Hands out auto-mode addresses: 127.x.y.z with z in 1..=254, skipping
/// addresses already used explicitly.
#[derive(Debug, Clone)]
pub struct AutoAddresses {
    next: u32,
    port: u16,
}

impl AutoAddresses {
    /// Starts at `base` (must be 127.x.y.z).
    pub fn new(base: Ipv4Addr, port: u16) -> Self {
        AutoAddresses {
            next: u32::from(base),
            port,
        }
    }

    /// Next free address.
    pub fn next_addr(&mut self, taken: &dyn Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        loop {
            let ip = Ipv4Addr::from(self.next);
            if ip.octets()[0] != 127 {
                return None;
            }
            self.next += 1;
            let last = ip.octets()[3];
            if last == 0 || last == 255 {
                continue;
            }
            let a = SocketAddr::V4(SocketAddrV4::new(ip, self.port));
            if !taken(&a) {
                return Some(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(parse_loopback("127.3.4.5:27017").is_ok());
        assert!(parse_loopback("10.0.0.1:27017")
            .unwrap_err()
            .contains("outside 127.0.0.0/8"));
        assert!(parse_loopback("localhost:1").is_err());
    }

    #[test]
    fn auto_addresses_skip_network_and_broadcast() {
        let mut a = AutoAddresses::new(Ipv4Addr::new(127, 1, 0, 254), 27017);
        let no = |_: &SocketAddr| false;
        assert_eq!(a.next_addr(&no).unwrap().to_string(), "127.1.0.254:27017");
        assert_eq!(a.next_addr(&no).unwrap().to_string(), "127.1.1.1:27017");
    }
}
