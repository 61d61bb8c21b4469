//! The raw configuration, exactly as an operator writes it.
//!
//! These structs mirror the TOML file (and the `MONGOMON_…` environment and
//! CLI layers merged over it by [`super::load`]). They keep what was written,
//! with units in the key names, so that `mongomon config` can print it back;
//! [`super::validate`] turns them into typed [`super::Settings`].
//!
//! Numbers are signed on purpose: an operator who writes `interval_secs = -5`
//! should read "agent.interval_secs must be greater than 0 (found -5)", not a
//! serde message about `u64`.

use serde::{Deserialize, Serialize};

/// The whole file: `[agent]`, `[[targets]]` and `[upload]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// How the agent itself behaves: schedule, timeouts, logging.
    pub agent: RawAgent,
    /// The MongoDB deployments to watch, one seed URI each.
    pub targets: Vec<RawTarget>,
    /// Where collected samples are sent.
    pub upload: RawUpload,
    /// How the deployment behind each seed is found and followed.
    pub discovery: RawDiscovery,
}

/// `[discovery]`: expanding seeds into every member, and following changes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawDiscovery {
    /// Seconds between two full re-expansions of every target, on top of the
    /// re-expansions triggered at once when a monitor sees the topology change.
    pub interval_secs: i64,
    /// A host that left the topology (no longer listed by its set or
    /// cluster) stops being monitored after this many seconds; a host that is
    /// merely unreachable is never removed for that.
    pub removal_grace_secs: i64,
    /// mongos routers whose `config.mongos` ping is older than this are
    /// considered gone.
    pub mongos_ping_window_secs: i64,
}

impl Default for RawDiscovery {
    fn default() -> Self {
        RawDiscovery {
            interval_secs: 120,
            removal_grace_secs: 60,
            mongos_ping_window_secs: 600,
        }
    }
}

/// `[agent]`: schedule, timeouts and logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgent {
    /// Seconds between two samples of the same host.
    pub interval_secs: i64,
    /// Upper bound for one command (hello, serverStatus, ...) on one host;
    /// a host that does not answer in time is reported `up = 0`.
    pub command_timeout_ms: i64,
    /// Upper bound for opening a TCP (and TLS) connection to a host.
    pub connect_timeout_ms: i64,
    /// Seconds between two rounds of the slow-changing commands
    /// (buildInfo, hostInfo, getCmdLineOpts); they also run at start.
    pub info_interval_secs: i64,
    /// On SIGTERM/SIGINT, how long the uploader may keep delivering queued
    /// batches before the process exits.
    pub shutdown_timeout_secs: i64,
    /// Name of this agent in its own self-metrics (`agent` tag); defaults to
    /// the machine's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Minimum level logged: error, warn, info, debug or trace.
    pub log_level: String,
    /// `text` (human-readable) or `json` (one JSON object per line).
    pub log_format: String,
    /// Log to this file instead of stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
    /// Seconds between two rounds of `dbStats` over every database of a host
    /// (heavier than serverStatus, so on a slower schedule).
    pub dbstats_interval_secs: i64,
    /// Hosts with more databases than this skip `dbStats` (and say so).
    pub dbstats_max_databases: i64,
    /// When a `dbStats` round took longer than this, the next one is skipped.
    pub dbstats_max_secs: i64,
}

impl Default for RawAgent {
    fn default() -> Self {
        RawAgent {
            interval_secs: 10,
            command_timeout_ms: 5_000,
            connect_timeout_ms: 3_000,
            info_interval_secs: 3_600,
            shutdown_timeout_secs: 10,
            name: None,
            log_level: "info".into(),
            log_format: "text".into(),
            log_file: None,
            dbstats_interval_secs: 300,
            dbstats_max_databases: 100,
            dbstats_max_secs: 30,
        }
    }
}

/// `[[targets]]`: one MongoDB deployment, reached through a seed URI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawTarget {
    /// Label carried as the `cluster` tag on every sample of this target;
    /// defaults to the first host of the URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A MongoDB connection string: `mongodb://[user[:pass]@]host[:port][,...]/[?options]`.
    pub uri: String,
    /// User name, when it is not in the URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password in clear; prefer `password_file` or `password_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A file whose first line is the password (keep it mode 0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// The name of an environment variable holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Expand the seeds into the whole deployment (every replica-set member,
    /// every shard, config server and mongos). `false` monitors exactly the
    /// hosts of the URI.
    pub discover: bool,
}

impl Default for RawTarget {
    fn default() -> Self {
        RawTarget {
            name: None,
            uri: String::new(),
            username: None,
            password: None,
            password_file: None,
            password_env: None,
            discover: true,
        }
    }
}

/// `[upload]`: the receiver and how batches are cut and retried.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpload {
    /// The receiver's URL, e.g. `http://127.0.0.1:8428/write` for
    /// VictoriaMetrics' line-protocol endpoint.
    pub url: String,
    /// `influx` (line protocol, numeric fields) or `json` (one whole document
    /// per sample, one sample per line).
    pub format: String,
    /// API key sent with every request in the header `api_key_header`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// A file whose first line is the API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// The header carrying the API key; with `Authorization` the key is sent
    /// as it is (so it may hold `Bearer …`).
    pub api_key_header: String,
    /// Upper bound for one POST, from connect to the last response byte.
    pub timeout_secs: i64,
    /// Compress request bodies with gzip (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// A batch is cut when its encoded size reaches this many bytes...
    pub max_batch_bytes: i64,
    /// ...or when its oldest sample is this old, whichever comes first.
    pub max_batch_age_ms: i64,
    /// Bound on batches waiting in memory for the receiver; past it the
    /// oldest batch is dropped and counted.
    pub max_queue_bytes: i64,
    /// First retry delay after a failed POST.
    pub retry_initial_ms: i64,
    /// The retry delay never grows past this.
    pub retry_max_ms: i64,
    /// Growth of the retry delay between attempts.
    pub retry_multiplier: f64,
    /// Give up on a batch after this many retries; 0 retries for ever.
    pub max_retries: i64,
}

impl Default for RawUpload {
    fn default() -> Self {
        RawUpload {
            url: String::new(),
            format: "influx".into(),
            api_key: None,
            api_key_file: None,
            api_key_header: "X-Api-Key".into(),
            timeout_secs: 10,
            gzip: true,
            max_batch_bytes: 1 << 20,
            max_batch_age_ms: 1_000,
            max_queue_bytes: 64 << 20,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            retry_multiplier: 2.0,
            max_retries: 0,
        }
    }
}
