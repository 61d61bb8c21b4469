//! Configuration: three layers merged, then validated into typed settings.
//!
//! Layers, lowest first: built-in defaults ([`RawConfig::default`]), the TOML
//! file, environment variables `MONGOMON_<SECTION>__<KEY>`, and CLI flags.
//! [`load`] merges them with figment and [`validate`] turns the result into
//! [`Settings`] made of `Duration`s and checked values. Every error names the
//! key and says what is allowed, because the operator reading it is usually
//! looking at a failed service start.

mod collect;
mod error;
mod fleet;
mod http;
mod raw;
mod spool;
mod upload;

/// The one redaction of URLs, re-exported where settings are printed.
pub use crate::redact::redact_uri;
pub use collect::{CollectProfile, CollectSettings};
pub use error::ConfigError;
pub use fleet::FleetSettings;
pub use http::{HttpAuth, HttpSettings};
pub use raw::{
    RawAgent, RawCollect, RawConfig, RawDiscovery, RawHttp, RawSpool, RawTarget, RawUpload,
    RawUploads,
};
pub use spool::{FsyncPolicy, FullPolicy, SpoolMode, SpoolSettings};
pub use upload::{
    Auth, Compression, ProxySettings, RetrySettings, TlsSettings, UploadFormat, UploadSettings,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

/// Where the service looks when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mongomon/mongomon.toml";

/// Environment variables with this prefix override file keys; `__` separates
/// the section from the key (`MONGOMON_AGENT__INTERVAL_SECS=5`).
pub const ENV_PREFIX: &str = "MONGOMON_";

/// Reads the file at `path` (which must exist), merges the environment and
/// `overrides` (the CLI layer, a partial config) over it, and extracts the raw
/// config. Unknown keys anywhere are errors.
pub fn load(path: &Path, overrides: &serde_json::Value) -> Result<RawConfig, ConfigError> {
    let text = read_file(path)?;
    // Parsed here first so that a syntax error is reported by position and
    // key, never with the parser's quote of the offending line (which, on
    // an `api_key` or `uri` line, is the secret).
    if let Err(e) = text.parse::<toml::Table>() {
        return Err(ConfigError::from_toml(&e, &text, path));
    }
    let figment = Figment::from(Serialized::defaults(RawConfig::default()))
        .merge(Toml::string(&text))
        .merge(env_provider())
        .merge(Serialized::defaults(overrides.clone()));
    figment
        .extract::<RawConfig>()
        .map_err(|e| ConfigError::from_figment(e, path))
}

/// Merges only defaults, the given TOML text and `overrides`: for `init`, for
/// embedded configurations and for tests that must not see the environment.
pub fn load_str(text: &str, overrides: &serde_json::Value) -> Result<RawConfig, ConfigError> {
    let file = Path::new("<inline>");
    if let Err(e) = text.parse::<toml::Table>() {
        return Err(ConfigError::from_toml(&e, text, file));
    }
    Figment::from(Serialized::defaults(RawConfig::default()))
        .merge(Toml::string(text))
        .merge(Serialized::defaults(overrides.clone()))
        .extract::<RawConfig>()
        .map_err(|e| ConfigError::from_figment(e, file))
}

/// Reads the configuration file as text, with one message per way it can
/// be unusable: each says what is wrong, where, and what to do, and gives
/// the OS error once.
fn read_file(path: &Path) -> Result<String, ConfigError> {
    let unreadable = |why: String| ConfigError::Unreadable {
        path: path.to_path_buf(),
        why,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(match (e.kind(), e.raw_os_error()) {
                (_, Some(libc::ELOOP)) => unreadable(
                    "is a symbolic link that loops back on itself (too many levels of symbolic links); point it at the real configuration file".into(),
                ),
                (std::io::ErrorKind::NotFound, _) if link => unreadable(
                    "is a symbolic link to a file that does not exist; fix the link or pass --config with the real file".into(),
                ),
                (std::io::ErrorKind::NotFound, _) => ConfigError::MissingFile {
                    path: path.to_path_buf(),
                },
                (_, Some(libc::EISDIR)) => unreadable(
                    "is a directory, not a file; pass --config with the configuration file inside it (e.g. mongomon.toml)".into(),
                ),
                (_, Some(libc::ENOTDIR)) => unreadable(
                    "has a path component that is not a directory; check the path".into(),
                ),
                (std::io::ErrorKind::PermissionDenied, _) => unreadable(format!(
                    "cannot be read by this user (uid {}): permission denied; make it readable by the agent's user, e.g. chgrp mongomon FILE && chmod 0640 FILE",
                    crate::daemon::euid()
                )),
                _ => unreadable(format!("cannot be read ({e}); check the path and the disk")),
            });
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let good = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or("");
        let (line, column) = error::line_column(good, at);
        unreadable(format!(
            "is not UTF-8 text: its first invalid byte is at line {line}, column {column} (byte offset {at}); convert the file, e.g. with iconv -t UTF-8"
        ))
    })?;
    if let Some(at) = text.find('\0') {
        let (line, column) = error::line_column(&text, at);
        return Err(unreadable(format!(
            "holds a NUL byte at line {line}, column {column}, so it is not a text file; check that --config names the configuration file"
        )));
    }
    Ok(text)
}

fn env_provider() -> Env {
    // Every setting lives in a section, so only `SECTION__KEY` names are
    // config; single-word names such as `MONGOMON_CONFIG` (the file path) or a
    // wrapper script's own `MONGOMON_SOMETHING` are not, and must not turn
    // into "unknown key" errors at start-up.
    Env::prefixed(ENV_PREFIX)
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

/// Validated, typed settings: what the actors run on.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub agent: AgentSettings,
    pub targets: Vec<TargetSettings>,
    /// Every upload target, in configuration order; at least one.
    pub uploads: Vec<UploadSettings>,
    pub discovery: DiscoverySettings,
    /// Which reply fields are sent.
    pub collect: CollectSettings,
    /// The HTTP listener (`/metrics`, `/status`, ...).
    pub http: HttpSettings,
    /// Fleet mode through etcd; `None`: this agent runs alone.
    pub fleet: Option<FleetSettings>,
    /// The file these settings came from, reread on SIGHUP.
    pub source: Option<PathBuf>,
}

/// Typed `[discovery]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverySettings {
    pub interval: Duration,
    pub removal_grace: Duration,
    pub mongos_ping_window: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Typed `[agent]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub interval: Duration,
    pub command_timeout: Duration,
    pub connect_timeout: Duration,
    pub info_interval: Duration,
    pub shutdown_timeout: Duration,
    /// The `agent` tag on self-metrics.
    pub name: String,
    pub log_level: slog::Level,
    pub log_format: LogFormat,
    pub log_file: Option<PathBuf>,
    pub dbstats_interval: Duration,
    pub dbstats_max_databases: usize,
    pub dbstats_max: Duration,
    /// Worker threads for the host monitors (at least 1).
    pub workers: usize,
}

/// Typed `[[targets]]` entry. `password` is resolved from the URI, the file
/// or the environment, and never printed.
#[derive(Clone, PartialEq)]
pub struct TargetSettings {
    /// The `cluster` tag.
    pub name: String,
    /// The URI as written, credentials included; use [`redact_uri`] to show it.
    pub uri: String,
    /// The seed hosts of the URI, `host:port`.
    pub hosts: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Expand seeds into the whole deployment.
    pub discover: bool,
    /// Whether `name` was written by the operator (otherwise discovery may
    /// name the cluster after its config-server or replica set).
    pub name_explicit: bool,
}

impl std::fmt::Debug for TargetSettings {
    // Hand-written so that `{:?}` of settings can never leak a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSettings")
            .field("name", &self.name)
            .field("uri", &redact_uri(&self.uri))
            .field("hosts", &self.hosts)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("discover", &self.discover)
            .finish()
    }
}

/// Checks every key and builds [`Settings`]. The first problem found is
/// returned; its message names the key and the fix.
pub fn validate(raw: &RawConfig, source: Option<&Path>) -> Result<Settings, ConfigError> {
    let agent = validate_agent(&raw.agent)?;
    if raw.targets.is_empty() {
        return Err(ConfigError::invalid(
            "targets",
            "no [[targets]] configured; add at least one, e.g. [[targets]] uri = \"mongodb://127.0.0.1:27017\"",
        ));
    }
    let mut targets = Vec::with_capacity(raw.targets.len());
    for (i, t) in raw.targets.iter().enumerate() {
        targets.push(validate_target(i, t)?);
    }
    let mut names = std::collections::HashSet::new();
    for (i, t) in targets.iter().enumerate() {
        if !names.insert(t.name.clone()) {
            return Err(ConfigError::invalid(
                format!("targets[{i}].name"),
                format!(
                    "\"{}\" is used by two targets; give each target its own name",
                    t.name
                ),
            ));
        }
    }
    let uploads = upload::validate_all(raw)?;
    let d = &raw.discovery;
    let discovery = DiscoverySettings {
        interval: Duration::from_secs(within(
            "discovery.interval_secs",
            d.interval_secs,
            1,
            limits::WEEK_SECS,
        )?),
        removal_grace: Duration::from_secs(within(
            "discovery.removal_grace_secs",
            d.removal_grace_secs,
            0,
            limits::WEEK_SECS,
        )?),
        mongos_ping_window: Duration::from_secs(within(
            "discovery.mongos_ping_window_secs",
            d.mongos_ping_window_secs,
            1,
            limits::WEEK_SECS,
        )?),
    };
    let collect = collect::validate(&raw.collect)?;
    let http = http::validate(&raw.http)?;
    let fleet = raw.fleet.as_ref().map(fleet::validate).transpose()?;
    Ok(Settings {
        agent,
        targets,
        uploads,
        discovery,
        collect,
        http,
        fleet,
        source: source.map(Path::to_path_buf),
    })
}

/// Only `[http]`, checked and with its secrets read: what `mongomon status`
/// needs of the agent's configuration.
pub fn validate_http(raw: &RawConfig) -> Result<HttpSettings, ConfigError> {
    http::validate(&raw.http)
}

/// A whole number within `[min, max]`. Every duration and size key has an
/// upper bound: a value that large is always a typo, and unbounded values
/// overflow the time arithmetic they feed.
pub(crate) fn within(key: &str, value: i64, min: i64, max: i64) -> Result<u64, ConfigError> {
    if value < min || value > max {
        Err(ConfigError::invalid(
            key,
            format!("must be between {min} and {max} (found {value})"),
        ))
    } else {
        Ok(value.max(0) as u64)
    }
}

/// Bounds shared by several keys.
pub(crate) mod limits {
    /// One day, in seconds: the longest interval or timeout that makes sense.
    pub const DAY_SECS: i64 = 86_400;
    pub const WEEK_SECS: i64 = 7 * DAY_SECS;
    pub const HOUR_SECS: i64 = 3_600;
    pub const TEN_MINUTES_MS: i64 = 600_000;
    pub const HOUR_MS: i64 = HOUR_SECS * 1_000;
    pub const DAY_MS: i64 = DAY_SECS * 1_000;
    pub const GIB: i64 = 1 << 30;
    pub const TIB: i64 = 1 << 40;
}

fn validate_agent(a: &RawAgent) -> Result<AgentSettings, ConfigError> {
    let interval = Duration::from_secs(within(
        "agent.interval_secs",
        a.interval_secs,
        1,
        limits::DAY_SECS,
    )?);
    let command_timeout = Duration::from_millis(within(
        "agent.command_timeout_ms",
        a.command_timeout_ms,
        1,
        limits::TEN_MINUTES_MS,
    )?);
    let connect_timeout = Duration::from_millis(within(
        "agent.connect_timeout_ms",
        a.connect_timeout_ms,
        1,
        limits::TEN_MINUTES_MS,
    )?);
    let info_interval = Duration::from_secs(within(
        "agent.info_interval_secs",
        a.info_interval_secs,
        1,
        limits::WEEK_SECS,
    )?);
    let shutdown_timeout = Duration::from_secs(within(
        "agent.shutdown_timeout_secs",
        a.shutdown_timeout_secs,
        1,
        limits::HOUR_SECS,
    )?);
    let log_level = match a.log_level.to_ascii_lowercase().as_str() {
        "error" => slog::Level::Error,
        "warn" | "warning" => slog::Level::Warning,
        "info" => slog::Level::Info,
        "debug" => slog::Level::Debug,
        "trace" => slog::Level::Trace,
        other => {
            return Err(ConfigError::invalid(
                "agent.log_level",
                format!("\"{other}\" is not a level; use one of error, warn, info, debug, trace"),
            ))
        }
    };
    let log_format = match a.log_format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError::invalid(
                "agent.log_format",
                format!("\"{other}\" is not a format; use \"text\" or \"json\""),
            ))
        }
    };
    let name = match &a.name {
        Some(n) if n.trim().is_empty() => {
            return Err(ConfigError::invalid(
                "agent.name",
                "must not be empty; remove the key to use the host name",
            ))
        }
        Some(n) => n.clone(),
        None => local_hostname(),
    };
    let log_file = match &a.log_file {
        Some(p) if p.trim().is_empty() => {
            return Err(ConfigError::invalid(
                "agent.log_file",
                "must not be empty; remove the key to log to stderr",
            ))
        }
        Some(p) => Some(PathBuf::from(p)),
        None => None,
    };
    Ok(AgentSettings {
        interval,
        command_timeout,
        connect_timeout,
        info_interval,
        shutdown_timeout,
        name,
        log_level,
        log_format,
        log_file,
        dbstats_interval: Duration::from_secs(within(
            "agent.dbstats_interval_secs",
            a.dbstats_interval_secs,
            1,
            limits::WEEK_SECS,
        )?),
        dbstats_max_databases: within(
            "agent.dbstats_max_databases",
            a.dbstats_max_databases,
            0,
            1_000_000,
        )? as usize,
        dbstats_max: Duration::from_secs(within(
            "agent.dbstats_max_secs",
            a.dbstats_max_secs,
            1,
            limits::HOUR_SECS,
        )?),
        workers: match a.workers {
            Some(n) => within("agent.workers", n, 1, 256)? as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    })
}

fn validate_target(i: usize, t: &RawTarget) -> Result<TargetSettings, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    if t.uri.trim().is_empty() {
        return Err(ConfigError::invalid(
            key("uri"),
            "is required: a MongoDB URI such as \"mongodb://127.0.0.1:27017\"",
        ));
    }
    if let Some(mech) = unsupported_mechanism(&t.uri) {
        let target = t.name.clone().unwrap_or_else(|| redact_uri(&t.uri));
        return Err(ConfigError::invalid(
            key("uri"),
            format!(
                "(target {target}) asks for authMechanism={mech}, which mongomon does not speak; use SCRAM-SHA-256, SCRAM-SHA-1, MONGODB-X509 or PLAIN"
            ),
        ));
    }
    if let Err(why) = crate::mongo::uri_compressors(&t.uri) {
        let target = t.name.clone().unwrap_or_else(|| redact_uri(&t.uri));
        return Err(ConfigError::invalid(
            key("uri"),
            format!("(target {target}) {why}"),
        ));
    }
    let cs = mongodb::options::ConnectionString::parse(crate::mongo::driver_uri(&t.uri).as_ref()).map_err(|e| {
        // The driver's reason may quote part of the URI; with userinfo in
        // it, that part can be the password (a raw '/' in a password makes
        // the driver read the rest as a host), so it is only repeated for a
        // URI without userinfo.
        let why = if t.uri.contains('@') {
            "check the hosts and options, and percent-encode any '/', '?', '#', '@' or ':' in the user name or password (%2F %3F %23 %40 %3A)".to_string()
        } else {
            crate::redact::redact_text(first_line(&e.kind.to_string()))
        };
        ConfigError::invalid(
            key("uri"),
            format!(
                "\"{}\" is not a valid MongoDB URI ({why}); expected mongodb://host:port[,host:port]/[?options], with user:password and an @ before the hosts when needed",
                redact_uri(&t.uri),
            ),
        )
    })?;
    let hosts = match &cs.host_info {
        mongodb::options::HostInfo::HostIdentifiers(h) => {
            h.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        }
        mongodb::options::HostInfo::DnsRecord(name) => vec![name.clone()],
        _ => Vec::new(),
    };
    if hosts.is_empty() {
        return Err(ConfigError::invalid(key("uri"), "names no host"));
    }
    let uri_cred = cs.credential.as_ref();
    let username = t
        .username
        .clone()
        .or_else(|| uri_cred.and_then(|c| c.username.clone()));
    let sources = [
        t.password.is_some(),
        t.password_file.is_some(),
        t.password_env.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if sources > 1 {
        return Err(ConfigError::invalid(
            key("password"),
            "set only one of password, password_file and password_env",
        ));
    }
    let password = if let Some(p) = &t.password {
        Some(p.clone())
    } else if let Some(file) = &t.password_file {
        Some(read_secret_file(&key("password_file"), file)?)
    } else if let Some(var) = &t.password_env {
        Some(secret_from_env(&key("password_env"), var, "password_file")?)
    } else {
        uri_cred.and_then(|c| c.password.clone())
    };
    if password.is_some() && username.is_none() {
        return Err(ConfigError::invalid(
            key("username"),
            "a password is set but no user name; set username or put user@ in the URI",
        ));
    }
    let name = match &t.name {
        Some(n) if n.trim().is_empty() => {
            return Err(ConfigError::invalid(
                key("name"),
                "must not be empty; remove the key to name the target after its first host",
            ))
        }
        Some(n) => n.clone(),
        None => hosts[0].clone(),
    };
    Ok(TargetSettings {
        name,
        uri: t.uri.clone(),
        hosts,
        username,
        password,
        discover: t.discover,
        name_explicit: t.name.is_some(),
    })
}

/// A secret from the environment variable `var`, named by `key`; each way it
/// can be missing gets its own message (never the value).
pub(crate) fn secret_from_env(
    key: &str,
    var: &str,
    alternative: &str,
) -> Result<String, ConfigError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        Ok(_) => Err(ConfigError::invalid(
            key,
            format!("names the environment variable {var}, which is set but empty; put the secret in it or use {alternative}"),
        )),
        Err(std::env::VarError::NotPresent) => Err(ConfigError::invalid(
            key,
            format!("names the environment variable {var}, which is not set; export it (systemd: Environment= or EnvironmentFile=) or use {alternative}"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::invalid(
            key,
            format!("names the environment variable {var}, whose value is not UTF-8 text; set it to the secret as UTF-8 or use {alternative}"),
        )),
    }
}

/// The `authMechanism` of a URI when it is one the agent cannot use:
/// Kerberos, AWS IAM and OIDC need machinery (a KDC, instance metadata, an
/// identity provider) that a monitoring agent does not carry, and
/// MONGODB-CR was removed from MongoDB 4.0. Read from the query directly,
/// so that the operator learns this rather than a parse error.
fn unsupported_mechanism(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if !k.eq_ignore_ascii_case("authMechanism") {
            return None;
        }
        let v = v.to_ascii_uppercase();
        matches!(
            v.as_str(),
            "GSSAPI" | "MONGODB-AWS" | "MONGODB-OIDC" | "MONGODB-CR"
        )
        .then_some(v)
    })
}

pub(crate) fn read_secret_file(key: &str, path: &str) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::invalid(
            key,
            format!("cannot read \"{path}\" ({e}); check the path and that the agent's user may read it"),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::invalid(
            key,
            format!("\"{path}\" is not UTF-8 text; write the secret as UTF-8 on its first line"),
        )
    })?;
    let secret = text.lines().next().unwrap_or("").trim_end().to_string();
    if secret.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("\"{path}\" is empty; put the secret on its first line"),
        ));
    }
    Ok(secret)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The machine's host name, or `"localhost"` when it cannot be read.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The raw config with every secret replaced, for `mongomon config`.
pub fn redacted(raw: &RawConfig) -> RawConfig {
    let mut out = raw.clone();
    for t in &mut out.targets {
        t.uri = redact_uri(&t.uri);
        if t.password.is_some() {
            t.password = Some("<redacted>".into());
        }
    }
    for u in &mut out.upload.entries {
        upload::redact(u);
    }
    // An endpoint may carry userinfo although the password belongs in
    // fleet.password_file; it is printed before validation refuses it.
    if let Some(f) = &mut out.fleet {
        for e in &mut f.etcd_endpoints {
            *e = redact_uri(e);
        }
    }
    out
}

/// Renders a raw config as TOML.
pub fn to_toml(raw: &RawConfig) -> Result<String, ConfigError> {
    toml::to_string_pretty(raw).map_err(|e| ConfigError::invalid("<config>", e.to_string()))
}

#[cfg(test)]
// figment's Jail closures return figment::Error, which is large; fine in tests.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn check(toml: &str) -> Result<Settings, ConfigError> {
        let raw = load_str(toml, &serde_json::json!({}))?;
        validate(&raw, None)
    }

    const MINIMAL: &str = r#"
        [[targets]]
        uri = "mongodb://127.0.0.1:27017"
        [upload]
        url = "http://127.0.0.1:8428/write"
    "#;

    #[test]
    fn minimal_config_takes_defaults() {
        let s = check(MINIMAL).expect("valid");
        assert_eq!(s.agent.interval, Duration::from_secs(10));
        assert_eq!(s.targets[0].hosts, vec!["127.0.0.1:27017".to_string()]);
        assert_eq!(s.targets[0].name, "127.0.0.1:27017");
        assert_eq!(s.uploads[0].format, UploadFormat::Influx);
        assert_eq!(s.uploads[0].retry.max_retries, None);
    }

    #[test]
    fn negative_interval_names_key_and_value() {
        let err = check(&format!("[agent]\ninterval_secs = -5\n{MINIMAL}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: agent.interval_secs must be between 1 and 86400 (found -5)"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_section() {
        let err = check(&format!("[agent]\nintervall_secs = 5\n{MINIMAL}")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("agent.intervall_secs"), "{msg}");
        assert!(msg.contains("interval_secs"), "lists allowed keys: {msg}");
    }

    #[test]
    fn bad_uri_is_rejected_without_leaking_password() {
        let err =
            check("[[targets]]\nuri = \"mongodb://bob:hunter2@\"\n[upload]\nurl = \"http://x/\"\n")
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("targets[0].uri"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn wrong_type_names_key() {
        let err = check(&format!("[agent]\ninterval_secs = \"ten\"\n{MINIMAL}")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("agent.interval_secs"), "{msg}");
    }

    #[test]
    fn missing_targets_and_url_are_explained() {
        let err = check("[upload]\nurl = \"http://x/\"\n").unwrap_err();
        assert!(err.to_string().contains("targets"));
        let err = check("[[targets]]\nuri = \"mongodb://h\"\n").unwrap_err();
        assert!(err.to_string().contains("upload.url"));
    }

    #[test]
    fn password_from_file_and_env() {
        Jail::expect_with(|jail| {
            jail.create_file("pw", "s3cret\n")?;
            jail.set_env("MONGO_PW_TEST", "fromenv");
            let s = check(
                "[[targets]]\nname=\"a\"\nuri = \"mongodb://u@h:1\"\npassword_file = \"pw\"\n\
                 [[targets]]\nname=\"b\"\nuri = \"mongodb://u@h:2\"\npassword_env = \"MONGO_PW_TEST\"\n\
                 [upload]\nurl = \"http://x/\"\n",
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(s.targets[0].password.as_deref(), Some("s3cret"));
            assert_eq!(s.targets[1].password.as_deref(), Some("fromenv"));
            assert!(!format!("{s:?}").contains("s3cret"));
            Ok(())
        });
    }

    #[test]
    fn env_layer_overrides_file_and_cli_overrides_env() {
        Jail::expect_with(|jail| {
            jail.create_file("m.toml", MINIMAL)?;
            jail.set_env("MONGOMON_AGENT__INTERVAL_SECS", "7");
            jail.set_env("MONGOMON_CONFIG", "ignored-by-figment");
            jail.set_env("MONGOMON_TEST_VENV", "/not/a/config/key");
            let raw =
                load(Path::new("m.toml"), &serde_json::json!({})).map_err(|e| e.to_string())?;
            assert_eq!(raw.agent.interval_secs, 7);
            let raw = load(
                Path::new("m.toml"),
                &serde_json::json!({"agent": {"interval_secs": 3}}),
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(raw.agent.interval_secs, 3);
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_one_clear_line() {
        let err = load(Path::new("/nonexistent/m.toml"), &serde_json::json!({})).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/m.toml"));
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn redaction_hides_passwords_and_keys() {
        assert_eq!(
            redact_uri("mongodb://bob:pw@h1:1,h2:2/?authSource=admin"),
            "mongodb://bob:<redacted>@h1:1,h2:2/?authSource=admin"
        );
        assert_eq!(redact_uri("mongodb://h1:1"), "mongodb://h1:1");
        let raw = load_str(
            "[[targets]]\nuri = \"mongodb://u:p@h\"\npassword = \"x\"\n[upload]\nurl=\"http://x/\"\napi_key = \"k\"\n",
            &serde_json::json!({}),
        )
        .unwrap();
        let text = to_toml(&redacted(&raw)).unwrap();
        assert!(!text.contains("u:p@"), "{text}");
        assert!(!text.contains("api_key = \"k\""), "{text}");
        assert!(text.contains("<redacted>"));
        let raw = load_str(
            "[[targets]]\nuri = \"mongodb://h\"\n[upload]\nurl=\"http://x/\"\n\
             [fleet]\netcd_endpoints = [\"http://root:ETCD-SECRET-91@127.0.0.1:2379\"]\n",
            &serde_json::json!({}),
        )
        .unwrap();
        let text = to_toml(&redacted(&raw)).unwrap();
        assert!(!text.contains("ETCD-SECRET-91"), "{text}");
        assert!(text.contains("root:<redacted>@127.0.0.1:2379"), "{text}");
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../config/mongomon.example.toml");
        let raw = load_str(text, &serde_json::json!({})).expect("example parses");
        validate(&raw, None).expect("example validates");
    }
}
