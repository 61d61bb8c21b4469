//! The raw configuration, exactly as an operator writes it.
//!
//! These structs mirror the TOML file (and the `MONGOMON_…` environment and
//! CLI layers merged over it by [`super::load`]). They keep what was written,
//! with units in the key names, so that `mongomon config` can print it back;
//! [`super::validate`] turns them into typed [`super::Settings`].
//!
//! Numbers are signed on purpose: an operator who writes `interval_secs = -5`
//! should read "agent.interval_secs must be between 1 and 86400 (found -5)", not a
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
    /// Where collected samples are sent: one `[upload]` table, or several
    /// `[[upload]]` entries, each with its own queue, spool and retries.
    pub upload: RawUploads,
    /// The durable spool of every upload target (under `agent.spool_dir`).
    pub spool: RawSpool,
    /// How the deployment behind each seed is found and followed.
    pub discovery: RawDiscovery,
    /// Which fields of the replies are sent.
    pub collect: RawCollect,
    /// The agent's own HTTP listener: `/metrics` for Prometheus, health
    /// and status. Off unless `enabled`.
    pub http: RawHttp,
    /// Fleet mode: share the deployment with other agents through etcd.
    /// Absent: this agent runs alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<RawFleet>,
}

/// `[fleet]`: agents of the same `name` divide the hosts among themselves,
/// coordinated through etcd. The password comes only from a file or a
/// variable, never inline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawFleet {
    /// Every etcd member, as `http(s)://host:port`.
    pub etcd_endpoints: Vec<String>,
    /// The fleet: agents with the same name share hosts.
    pub name: String,
    /// This agent's id; the host name and pid when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The agent's lease: when it cannot renew it for this long (etcd
    /// unreachable, process paused), it stops sampling and the others take
    /// its hosts.
    pub lease_ttl_secs: i64,
    /// Relative share of the hosts this agent takes (1 = even).
    pub weight: f64,
    /// CA, client certificate and key for https:// endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<String>,
    /// etcd user, with the password from `password_file` or `password_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

impl Default for RawFleet {
    fn default() -> Self {
        RawFleet {
            etcd_endpoints: Vec::new(),
            name: "default".into(),
            agent_id: None,
            lease_ttl_secs: 10,
            weight: 1.0,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            username: None,
            password_file: None,
            password_env: None,
        }
    }
}

/// `[http]`: the listener that serves `/metrics`, `/healthz`, `/readyz` and
/// `/status`. Secrets come only from a file or a variable, never inline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    /// Serve at all; off by default (nothing listens unless asked).
    pub enabled: bool,
    /// `address:port` to listen on; 9216 is the port MongoDB exporters use.
    pub listen: String,
    /// PEM certificate chain and key: serve HTTPS instead of HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<String>,
    /// A file whose first line is the token clients send as
    /// `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// An environment variable holding that token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// Basic authentication instead: the user name, with the password from
    /// `password_file` or `password_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// `/metrics` answers being rendered or sent at once; more get 429, so
    /// that a scrape storm cannot make the agent hold many large bodies.
    pub max_concurrent_scrapes: i64,
    /// Requests whose body is larger than this get 413 (the endpoints take
    /// no body; this bounds what a client can make the agent read).
    pub max_request_bytes: i64,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            enabled: false,
            listen: "127.0.0.1:9216".into(),
            tls_cert_file: None,
            tls_key_file: None,
            bearer_token_file: None,
            bearer_token_env: None,
            username: None,
            password_file: None,
            password_env: None,
            max_concurrent_scrapes: 2,
            max_request_bytes: 16 * 1024,
        }
    }
}

/// `[collect]`: which fields are sent, as globs on series names
/// (`mongodb_serverstatus_connections_current`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawCollect {
    /// `full`: every numeric field (about 1,100 for serverStatus);
    /// `standard`: what operators chart and alert on (config/collect/standard.txt).
    pub profile: String,
    /// Series names kept whatever the profile says (`*` and `?` globs).
    pub include: Vec<String>,
    /// Series names dropped, whatever else matches.
    pub exclude: Vec<String>,
}

impl Default for RawCollect {
    fn default() -> Self {
        RawCollect {
            profile: "full".into(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
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
    /// Threads (actix Arbiters) the host monitors and their connections are
    /// spread over; defaults to the number of cores. Read at start only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<i64>,
    /// Batches waiting for a receiver are kept here (one sub-directory per
    /// upload target) so that restarts and crashes lose nothing. An empty
    /// string keeps them in memory only.
    pub spool_dir: String,
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
            workers: None,
            spool_dir: "/var/lib/mongomon/spool".into(),
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

/// `[upload]` / `[[upload]]`: a receiver and how batches are cut, sent and
/// retried.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpload {
    /// Names this target in logs, self-metrics (`upload` tag) and its spool
    /// directory; defaults to the URL's `host_port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The receiver's URL, e.g. `http://127.0.0.1:8428/write` for
    /// VictoriaMetrics' line-protocol endpoint.
    pub url: String,
    /// `influx` (line protocol, numeric fields), `json` (one whole document
    /// per sample, one sample per line), `remote_write` (Prometheus
    /// remote-write: protobuf, snappy) or `vm_import` (JSON lines for
    /// VictoriaMetrics' `/api/v1/import`, numbers only).
    pub format: String,
    /// API key sent with every request in the header `api_key_header`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// A file whose first line is the API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// An environment variable holding the API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// `Authorization: Bearer <token>`; or from a file or variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// HTTP basic authentication with the receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// PEM file of the CA(s) that sign the receiver's certificate, instead
    /// of the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// PEM client certificate chain and key, for receivers that ask for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<String>,
    /// Accept any server certificate. Only for tests; warned at every start.
    pub tls_insecure_skip_verify: bool,
    /// Forward proxy (`http://[user:pass@]host:port`), reached with HTTP
    /// CONNECT; `"none"` for a direct connection. Unset: `https_proxy` /
    /// `http_proxy` (or upper-case) from the environment, by URL scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Hosts reached without the proxy (`host`, `.domain`, `*`); unset:
    /// `no_proxy` / `NO_PROXY` from the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<Vec<String>>,
    /// POSTs under way at once while catching up; 0 picks 32, or 1 for
    /// `remote_write` (Prometheus refuses out-of-order samples).
    pub max_in_flight: i64,
    /// The header carrying the API key; with `Authorization` the key is sent
    /// as it is (so it may hold `Bearer …`).
    pub api_key_header: String,
    /// Upper bound for one POST, from connect to the last response byte.
    pub timeout_secs: i64,
    /// Compress request bodies with gzip (`Content-Encoding: gzip`); the
    /// older spelling of `compression = "gzip"` / `"none"`.
    pub gzip: bool,
    /// `gzip` (default), `zstd` (VictoriaMetrics 1.9x and later take it;
    /// it costs less CPU than gzip) or `none`. `remote_write` bodies are
    /// snappy, as its protocol requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
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
            name: None,
            url: String::new(),
            format: "influx".into(),
            api_key: None,
            api_key_file: None,
            api_key_env: None,
            bearer_token: None,
            bearer_token_file: None,
            bearer_token_env: None,
            username: None,
            password: None,
            password_file: None,
            password_env: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_insecure_skip_verify: false,
            proxy: None,
            no_proxy: None,
            max_in_flight: 0,
            api_key_header: "X-Api-Key".into(),
            timeout_secs: 10,
            gzip: true,
            compression: None,
            max_batch_bytes: 1 << 20,
            max_batch_age_ms: 1_000,
            max_queue_bytes: 64 << 20,
            retry_initial_ms: 500,
            retry_max_ms: 5_000,
            retry_multiplier: 2.0,
            max_retries: 0,
        }
    }
}

/// `[spool]`: how batches are kept on disk until a receiver takes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawSpool {
    /// Disk budget of each upload target's spool.
    pub max_bytes: i64,
    /// `always`: every batch is written before its first send, so even a
    /// crash loses nothing; `overflow`: only what does not fit in
    /// `upload.max_queue_bytes` (and what is left at shutdown).
    pub mode: String,
    /// `always` (after every batch), `interval` (every `fsync_interval_ms`)
    /// or `never` (left to the OS): how much a power loss may cost.
    pub fsync: String,
    pub fsync_interval_ms: i64,
    /// When the budget is reached: `drop_oldest` batches, or `refuse_new`
    /// ones. Either way every lost sample is counted and logged.
    pub on_full: String,
    /// Size of one segment file; whole segments are freed once delivered.
    pub segment_bytes: i64,
    /// Batches a receiver refused for good go to `dead-letter.log` in the
    /// target's spool directory; it is rotated once past this size.
    pub dead_letter_max_bytes: i64,
}

impl Default for RawSpool {
    fn default() -> Self {
        RawSpool {
            max_bytes: 256 << 20,
            mode: "always".into(),
            fsync: "interval".into(),
            fsync_interval_ms: 1_000,
            on_full: "drop_oldest".into(),
            segment_bytes: 16 << 20,
            dead_letter_max_bytes: 64 << 20,
        }
    }
}

/// One `[upload]` table or several `[[upload]]` entries. Printed back the
/// way it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct RawUploads {
    pub entries: Vec<RawUpload>,
    /// Written as an array of tables.
    pub many: bool,
}

impl Default for RawUploads {
    fn default() -> Self {
        RawUploads {
            entries: vec![RawUpload::default()],
            many: false,
        }
    }
}

impl Serialize for RawUploads {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.many, self.entries.as_slice()) {
            (false, [one]) => one.serialize(s),
            (_, all) => all.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawUploads {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawUploads;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an [upload] table or [[upload]] entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawUploads, A::Error> {
                let one =
                    RawUpload::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawUploads {
                    entries: vec![one],
                    many: false,
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<RawUploads, A::Error> {
                let entries = Vec::<RawUpload>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(RawUploads {
                    entries,
                    many: true,
                })
            }
        }
        d.deserialize_any(V)
    }
}
