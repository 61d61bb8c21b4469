//! The `/status` document: written by the listener, read by
//! `mongomon status`, so both sides share these types.

use serde::{Deserialize, Serialize};

/// The whole answer of `/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// `agent.name`.
    pub agent: String,
    /// The agent's version.
    pub version: String,
    pub uptime_secs: f64,
    /// What `/readyz` answers, and why not.
    pub ready: bool,
    #[serde(default)]
    pub not_ready: Vec<String>,
    pub hosts: Vec<HostStatus>,
    pub uploads: Vec<UploadStatus>,
    /// Fleet mode: the fleet, this agent's id, its lease, whether it
    /// leads, live agents, hosts owned, hand-offs; `null` when alone.
    pub fleet: Option<serde_json::Value>,
}

/// One monitored host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostStatus {
    /// `host:port`.
    pub host: String,
    pub cluster: String,
    pub role: String,
    pub replset: Option<String>,
    pub shard: Option<String>,
    /// Replica-set member state (`PRIMARY`, ...), when a member.
    pub state: Option<String>,
    pub version: Option<String>,
    /// Answered every command of its latest round.
    pub up: bool,
    /// Has finished a round since the agent started.
    pub sampled: bool,
    /// Seconds since its latest round was recorded.
    pub age_secs: Option<f64>,
    /// Why its latest round failed (redacted).
    pub last_error: Option<String>,
    pub ops_per_sec: Option<f64>,
    pub connections: Option<f64>,
    pub lag_secs: Option<f64>,
}

/// One upload target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadStatus {
    pub name: String,
    /// Delivers, or keeps what it cannot deliver within its spool budget.
    pub ok: bool,
    /// Seconds since deliveries started failing; `None` while they succeed.
    pub failing_secs: Option<f64>,
    /// The latest failure (kept after recovery, for the record).
    pub last_error: Option<String>,
    pub queue_batches: u64,
    pub queue_samples: u64,
    pub spool_bytes: u64,
    /// `spool.max_bytes`; `None` without a spool.
    pub spool_budget_bytes: Option<u64>,
    pub samples_sent: u64,
}
