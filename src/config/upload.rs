//! Typed upload targets: `[upload]` or `[[upload]]`, with `[spool]`.
//!
//! Everything a POST needs is resolved here, once: secrets from their
//! file or variable, the proxy from `upload.proxy` or the environment
//! (`https_proxy`, `http_proxy`, `no_proxy`, as the deployment guide's
//! "Working with Proxies" asks), TLS files checked, and the spool directory
//! of each target.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

use super::raw::{RawConfig, RawSpool, RawUpload};
use super::spool::{FsyncPolicy, FullPolicy, SpoolMode, SpoolSettings};
use super::{limits, read_secret_file, redact_uri, within, ConfigError};

/// The wire format of uploaded batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadFormat {
    /// InfluxDB line protocol.
    Influx,
    /// One JSON document per sample, newline-separated.
    Json,
    /// Prometheus remote-write 1.0: a protobuf `WriteRequest`, snappy-compressed.
    RemoteWrite,
    /// JSON lines in VictoriaMetrics' `/api/v1/import` schema (numbers only).
    VmImport,
}

impl UploadFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            UploadFormat::Influx => "text/plain; charset=utf-8",
            UploadFormat::Json | UploadFormat::VmImport => "application/x-ndjson",
            UploadFormat::RemoteWrite => "application/x-protobuf",
        }
    }
}

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The retry schedule of an uploader (see `actors::uploader::retry`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// `None`: retry for ever.
    pub max_retries: Option<u32>,
}

/// How the receiver is told who we are.
#[derive(Clone, PartialEq, Default)]
pub struct Auth {
    /// `(header, key)`.
    pub api_key: Option<(String, String)>,
    /// A whole `Authorization` value: `Bearer …` or `Basic …`.
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("api_key_header", &self.api_key.as_ref().map(|(h, _)| h))
            .field(
                "authorization",
                &self
                    .authorization
                    .as_ref()
                    .map(|a| a.split(' ').next().unwrap_or("")),
            )
            .finish()
    }
}

/// TLS towards the receiver.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsSettings {
    /// Trust these CAs instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and its key.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate (tests only).
    pub insecure: bool,
}

/// A forward proxy reached with HTTP CONNECT.
#[derive(Clone, PartialEq)]
pub struct ProxySettings {
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization` value (`Basic …`).
    pub authorization: Option<String>,
    /// Where it came from, for logs and `check`: `upload.proxy` or the variable name.
    pub source: String,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} (from {}{})",
            self.host,
            self.port,
            self.source,
            if self.authorization.is_some() {
                ", with credentials"
            } else {
                ""
            }
        )
    }
}

/// One typed upload target.
#[derive(Clone, PartialEq)]
pub struct UploadSettings {
    /// Unique among targets; names its spool directory.
    pub name: String,
    pub url: String,
    pub format: UploadFormat,
    pub auth: Auth,
    pub tls: TlsSettings,
    /// `None`: a direct connection.
    pub proxy: Option<ProxySettings>,
    pub timeout: Duration,
    /// Of request bodies, except remote-write's (always snappy).
    pub compression: Compression,
    pub max_batch_bytes: usize,
    pub max_batch_age: Duration,
    pub max_queue_bytes: usize,
    pub max_in_flight: usize,
    pub retry: RetrySettings,
    /// `None`: memory only (`agent.spool_dir = ""`).
    pub spool: Option<SpoolSettings>,
    pub spool_mode: SpoolMode,
    pub fsync_interval: Option<Duration>,
    pub dead_letter_max_bytes: u64,
}

impl std::fmt::Debug for UploadSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSettings")
            .field("name", &self.name)
            .field("url", &redact_uri(&self.url))
            .field("format", &self.format)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_batch_age", &self.max_batch_age)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry", &self.retry)
            .field("spool", &self.spool)
            .finish()
    }
}

/// Replaces every secret of one raw entry, for `mongomon config`.
pub(super) fn redact(u: &mut RawUpload) {
    for s in [&mut u.api_key, &mut u.bearer_token, &mut u.password] {
        if s.is_some() {
            *s = Some("<redacted>".into());
        }
    }
    u.url = redact_uri(&u.url);
    if let Some(p) = &mut u.proxy {
        *p = redact_uri(p);
    }
}

/// Validates `[spool]` and every upload entry.
pub(super) fn validate_all(raw: &RawConfig) -> Result<Vec<UploadSettings>, ConfigError> {
    let entries = &raw.upload.entries;
    if entries.is_empty() {
        return Err(ConfigError::invalid(
            "upload",
            "no upload target configured; add [upload] with url = \"http://…\"",
        ));
    }
    let spool = validate_spool(&raw.spool)?;
    let spool_dir = raw.agent.spool_dir.trim();
    let mut out: Vec<UploadSettings> = Vec::with_capacity(entries.len());
    for (i, u) in entries.iter().enumerate() {
        let prefix = if raw.upload.many || entries.len() > 1 {
            format!("upload[{i}]")
        } else {
            "upload".to_string()
        };
        let mut s = validate_one(&prefix, u, &spool)?;
        if let Some(other) = out.iter().find(|o| o.name == s.name) {
            return Err(ConfigError::invalid(
                format!("{prefix}.name"),
                format!(
                    "\"{}\" is already the name of the target for {}; give each [[upload]] its own name",
                    s.name,
                    redact_uri(&other.url)
                ),
            ));
        }
        if !spool_dir.is_empty() {
            s.spool = Some(SpoolSettings {
                dir: PathBuf::from(spool_dir).join(&s.name),
                max_bytes: spool.max_bytes,
                segment_bytes: spool.segment_bytes,
                fsync: spool.fsync,
                on_full: spool.on_full,
            });
        }
        out.push(s);
    }
    Ok(out)
}

struct SpoolCommon {
    max_bytes: u64,
    segment_bytes: u64,
    fsync: FsyncPolicy,
    on_full: FullPolicy,
    mode: SpoolMode,
    dead_letter_max_bytes: u64,
}

fn validate_spool(s: &RawSpool) -> Result<SpoolCommon, ConfigError> {
    let max_bytes = within("spool.max_bytes", s.max_bytes, 1, limits::TIB)?;
    let segment_bytes = within("spool.segment_bytes", s.segment_bytes, 1, limits::GIB)?;
    if segment_bytes > max_bytes / 2 {
        return Err(ConfigError::invalid(
            "spool.segment_bytes",
            format!("must be at most half of spool.max_bytes ({max_bytes}) so that old segments can be freed, found {segment_bytes}"),
        ));
    }
    let fsync = match s.fsync.as_str() {
        "always" => FsyncPolicy::Always,
        "interval" => FsyncPolicy::Interval(Duration::from_millis(within(
            "spool.fsync_interval_ms",
            s.fsync_interval_ms,
            1,
            limits::HOUR_MS,
        )?)),
        "never" => FsyncPolicy::Never,
        other => {
            return Err(ConfigError::invalid(
                "spool.fsync",
                format!("\"{other}\" is not a policy; use \"always\", \"interval\" or \"never\""),
            ))
        }
    };
    let on_full = match s.on_full.as_str() {
        "drop_oldest" => FullPolicy::DropOldest,
        "refuse_new" => FullPolicy::RefuseNew,
        other => {
            return Err(ConfigError::invalid(
                "spool.on_full",
                format!("\"{other}\" is not a policy; use \"drop_oldest\" or \"refuse_new\""),
            ))
        }
    };
    let mode = match s.mode.as_str() {
        "always" => SpoolMode::Always,
        "overflow" => SpoolMode::Overflow,
        other => {
            return Err(ConfigError::invalid(
                "spool.mode",
                format!("\"{other}\" is not a mode; use \"always\" or \"overflow\""),
            ))
        }
    };
    Ok(SpoolCommon {
        max_bytes,
        segment_bytes,
        fsync,
        on_full,
        mode,
        dead_letter_max_bytes: within(
            "spool.dead_letter_max_bytes",
            s.dead_letter_max_bytes,
            1,
            limits::TIB,
        )?,
    })
}

/// One secret from exactly one of: the value, a file, a variable.
pub(super) fn secret(
    prefix: &str,
    name: &str,
    value: &Option<String>,
    file: &Option<String>,
    env: &Option<String>,
) -> Result<Option<String>, ConfigError> {
    let key = |suffix: &str| format!("{prefix}.{name}{suffix}");
    let set = [value.is_some(), file.is_some(), env.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if set > 1 {
        return Err(ConfigError::invalid(
            key(""),
            format!("set only one of {name}, {name}_file and {name}_env"),
        ));
    }
    if let Some(v) = value {
        if v.is_empty() {
            return Err(ConfigError::invalid(
                key(""),
                "must not be empty; remove the key instead",
            ));
        }
        return Ok(Some(v.clone()));
    }
    if let Some(f) = file {
        return read_secret_file(&key("_file"), f).map(Some);
    }
    if let Some(var) = env {
        return super::secret_from_env(&key("_env"), var, &format!("{name}_file")).map(Some);
    }
    Ok(None)
}

/// A PEM file named by `key`: it must be readable and hold a PEM block.
pub(super) fn pem_path(key: &str, path: &Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(p) = path else { return Ok(None) };
    match std::fs::read(p) {
        Ok(data) if data.windows(11).any(|w| w == b"-----BEGIN ") => Ok(Some(PathBuf::from(p))),
        Ok(_) => Err(ConfigError::invalid(
            key,
            format!("\"{p}\" holds no PEM block; give a PEM file"),
        )),
        Err(e) => Err(ConfigError::invalid(
            key,
            format!(
                "cannot read \"{p}\" ({e}); check the path and that the agent's user may read it"
            ),
        )),
    }
}

/// `{prefix}.tls_cert_file` and `{prefix}.tls_key_file`: both or neither.
pub(super) fn pem_pair(
    prefix: &str,
    cert: &Option<String>,
    key: &Option<String>,
) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    let (cert_key, key_key) = (
        format!("{prefix}.tls_cert_file"),
        format!("{prefix}.tls_key_file"),
    );
    match (pem_path(&cert_key, cert)?, pem_path(&key_key, key)?) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::invalid(
            key_key,
            format!("is required with {cert_key}; give the certificate's private key (PEM)"),
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            cert_key,
            format!("is required with {key_key}; give the certificate chain (PEM)"),
        )),
    }
}

pub(super) fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn validate_one(
    prefix: &str,
    u: &RawUpload,
    spool: &SpoolCommon,
) -> Result<UploadSettings, ConfigError> {
    let key = |k: &str| format!("{prefix}.{k}");
    if u.url.trim().is_empty() {
        return Err(ConfigError::invalid(
            key("url"),
            "is required, e.g. \"http://127.0.0.1:8428/write\" for VictoriaMetrics",
        ));
    }
    let uri: awc::http::Uri = match u.url.parse::<awc::http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http") | Some("https")) && uri.host().is_some() =>
        {
            uri
        }
        _ => {
            return Err(ConfigError::invalid(
                key("url"),
                format!(
                    "\"{}\" is not an http:// or https:// URL with a host",
                    redact_uri(&u.url)
                ),
            ))
        }
    };
    // `Uri` accepts any digits as a port and then reports "no port", which
    // would quietly mean port 80; so the written port is checked here.
    if let Some(p) = written_port(uri.authority().map_or("", |a| a.as_str())) {
        if !matches!(p.parse::<u16>(), Ok(1..)) {
            return Err(ConfigError::invalid(
                key("url"),
                format!(
                    "\"{}\" has port {p}, outside 1-65535; write the receiver's port",
                    redact_uri(&u.url),
                ),
            ));
        }
    }
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let format = match u.format.as_str() {
        "influx" => UploadFormat::Influx,
        "json" => UploadFormat::Json,
        "remote_write" | "prometheus" => UploadFormat::RemoteWrite,
        "vm_import" => UploadFormat::VmImport,
        other => {
            return Err(ConfigError::invalid(
                key("format"),
                format!("\"{other}\" is not a format; use \"influx\", \"json\", \"remote_write\" or \"vm_import\""),
            ))
        }
    };
    let name = match &u.name {
        Some(n) => {
            if n.is_empty()
                || n.starts_with('.')
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!("\"{n}\" must be letters, digits, '-', '_' or '.' (it names the spool directory)"),
                ));
            }
            n.clone()
        }
        None => format!(
            "{}_{port}",
            host.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
                "_"
            )
        ),
    };

    // Authentication.
    let api_key = secret(
        prefix,
        "api_key",
        &u.api_key,
        &u.api_key_file,
        &u.api_key_env,
    )?;
    if api_key.is_some() && awc::http::header::HeaderName::try_from(&u.api_key_header).is_err() {
        return Err(ConfigError::invalid(
            key("api_key_header"),
            format!("\"{}\" is not a valid HTTP header name", u.api_key_header),
        ));
    }
    let bearer = secret(
        prefix,
        "bearer_token",
        &u.bearer_token,
        &u.bearer_token_file,
        &u.bearer_token_env,
    )?;
    let password = secret(
        prefix,
        "password",
        &u.password,
        &u.password_file,
        &u.password_env,
    )?;
    let authorization =
        match (bearer, &u.username, password) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::invalid(
                    key("bearer_token"),
                    "set either a bearer token or username/password, not both",
                ))
            }
            (Some(t), None, _) => Some(format!("Bearer {t}")),
            (None, Some(user), Some(pass)) => Some(basic(user, &pass)),
            (None, Some(_), None) => return Err(ConfigError::invalid(
                key("password"),
                "a username is set but no password; set password, password_file or password_env",
            )),
            (None, None, Some(_)) => {
                return Err(ConfigError::invalid(
                    key("username"),
                    "a password is set but no username",
                ))
            }
            (None, None, None) => None,
        };
    if authorization.is_some()
        && api_key.is_some()
        && u.api_key_header.eq_ignore_ascii_case("authorization")
    {
        return Err(ConfigError::invalid(
            key("api_key_header"),
            "is Authorization, which the bearer token or basic auth already sets; use another header",
        ));
    }
    let auth = Auth {
        api_key: api_key.map(|k| (u.api_key_header.clone(), k)),
        authorization,
    };

    // TLS.
    let ca_file = pem_path(&key("tls_ca_file"), &u.tls_ca_file)?;
    let client = pem_pair(prefix, &u.tls_cert_file, &u.tls_key_file)?;
    if !https && (ca_file.is_some() || client.is_some() || u.tls_insecure_skip_verify) {
        return Err(ConfigError::invalid(
            key("url"),
            "is http:// but TLS settings are given; use an https:// URL or remove the tls_* keys",
        ));
    }
    let tls = TlsSettings {
        ca_file,
        client,
        insecure: u.tls_insecure_skip_verify,
    };

    // Proxy: config wins over the environment, and no_proxy may bypass it.
    let (proxy_text, proxy_source) = match &u.proxy {
        Some(p) => (Some(p.clone()), key("proxy")),
        None => {
            let vars: &[&str] = if https {
                &["https_proxy", "HTTPS_PROXY"]
            } else {
                &["http_proxy", "HTTP_PROXY"]
            };
            let found = vars.iter().find_map(|v| {
                std::env::var(v)
                    .ok()
                    .filter(|x| !x.trim().is_empty())
                    .map(|x| (x, v.to_string()))
            });
            match found {
                Some((v, var)) => (Some(v), format!("environment variable {var}")),
                None => (None, String::new()),
            }
        }
    };
    let no_proxy: Vec<String> = match &u.no_proxy {
        Some(list) => list.clone(),
        None => ["no_proxy", "NO_PROXY"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
    };
    let proxy = match proxy_text {
        Some(p) if p.trim().eq_ignore_ascii_case("none") || p.trim().is_empty() => None,
        Some(_) if bypasses(&no_proxy, &host, port) => None,
        Some(p) => Some(parse_proxy(&p, &proxy_source)?),
        None => None,
    };

    let compression = match (u.compression.as_deref(), u.gzip) {
        (None, true) => Compression::Gzip,
        (None, false) => Compression::None,
        (Some(_), false) => {
            return Err(ConfigError::invalid(
                key("gzip"),
                "is the older spelling of compression; set only compression (\"gzip\", \"zstd\" or \"none\")",
            ))
        }
        (Some("gzip"), true) => Compression::Gzip,
        (Some("zstd"), true) => Compression::Zstd,
        (Some("none"), true) => Compression::None,
        (Some(other), true) => {
            return Err(ConfigError::invalid(
                key("compression"),
                format!("\"{other}\" is not a compression; use \"gzip\", \"zstd\" or \"none\""),
            ))
        }
    };
    if format == UploadFormat::RemoteWrite && u.compression.is_some() {
        return Err(ConfigError::invalid(
            key("compression"),
            "does not apply to remote_write, whose bodies are snappy by protocol; remove it",
        ));
    }
    let max_batch_bytes =
        within(&key("max_batch_bytes"), u.max_batch_bytes, 1, 256 << 20)? as usize;
    let max_queue_bytes = within(
        &key("max_queue_bytes"),
        u.max_queue_bytes,
        1,
        64 * limits::GIB,
    )? as usize;
    if max_queue_bytes < max_batch_bytes {
        return Err(ConfigError::invalid(
            key("max_queue_bytes"),
            format!("must be at least {prefix}.max_batch_bytes ({max_batch_bytes}), found {max_queue_bytes}"),
        ));
    }
    let initial = Duration::from_millis(within(
        &key("retry_initial_ms"),
        u.retry_initial_ms,
        1,
        limits::HOUR_MS,
    )?);
    let max = Duration::from_millis(within(
        &key("retry_max_ms"),
        u.retry_max_ms,
        1,
        limits::DAY_MS,
    )?);
    if max < initial {
        return Err(ConfigError::invalid(
            key("retry_max_ms"),
            format!(
                "must be at least {prefix}.retry_initial_ms ({}), found {}",
                u.retry_initial_ms, u.retry_max_ms
            ),
        ));
    }
    if !(u.retry_multiplier.is_finite() && (1.0..=100.0).contains(&u.retry_multiplier)) {
        return Err(ConfigError::invalid(
            key("retry_multiplier"),
            format!(
                "must be a number between 1.0 and 100.0 (found {})",
                u.retry_multiplier
            ),
        ));
    }
    // 0 retries for ever.
    let max_retries = within(&key("max_retries"), u.max_retries, 0, 1_000_000)?;
    let max_in_flight = match within(&key("max_in_flight"), u.max_in_flight, 0, 64)? {
        0 if format == UploadFormat::RemoteWrite => 1,
        // A backlog drains ~6x faster at 32 than at 4 (BENCHMARKS.md);
        // in steady state one or two are under way whatever the bound.
        0 => 32,
        n => n as usize,
    };
    Ok(UploadSettings {
        name,
        url: u.url.clone(),
        format,
        auth,
        tls,
        proxy,
        timeout: Duration::from_secs(within(
            &key("timeout_secs"),
            u.timeout_secs,
            1,
            limits::HOUR_SECS,
        )?),
        compression,
        max_batch_bytes,
        max_batch_age: Duration::from_millis(within(
            &key("max_batch_age_ms"),
            u.max_batch_age_ms,
            1,
            limits::HOUR_MS,
        )?),
        max_queue_bytes,
        max_in_flight,
        retry: RetrySettings {
            initial,
            max,
            multiplier: u.retry_multiplier,
            max_retries: if max_retries == 0 {
                None
            } else {
                Some(max_retries as u32)
            },
        },
        spool: None,
        spool_mode: spool.mode,
        fsync_interval: match spool.fsync {
            FsyncPolicy::Interval(d) => Some(d),
            _ => None,
        },
        dead_letter_max_bytes: spool.dead_letter_max_bytes,
    })
}

/// `no_proxy` matching as curl does it: `*` for every host, an exact host
/// (optionally `:port`), or a domain (`example.com` or `.example.com`)
/// matching itself and its sub-domains.
pub fn bypasses(no_proxy: &[String], host: &str, port: u16) -> bool {
    no_proxy.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return false;
        }
        if entry == "*" {
            return true;
        }
        let (name, want_port) = match entry.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') || n.ends_with(']') => match p.parse::<u16>() {
                Ok(p) => (n.trim_matches(['[', ']']).to_string(), Some(p)),
                Err(_) => (entry.clone(), None),
            },
            _ => (entry.trim_matches(['[', ']']).to_string(), None),
        };
        if want_port.is_some_and(|p| p != port) {
            return false;
        }
        let name = name.trim_start_matches("*.").trim_start_matches('.');
        host == name || host.ends_with(&format!(".{name}"))
    })
}

/// The port as written in an authority (`user@host:port`, `[::1]:port`),
/// when there is one.
fn written_port(authority: &str) -> Option<&str> {
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let after_host = match hostport.rfind(']') {
        Some(i) => &hostport[i + 1..],
        None => hostport,
    };
    after_host.rsplit_once(':').map(|(_, p)| p)
}

/// `http://[user:pass@]host:port[/]`.
fn parse_proxy(text: &str, source: &str) -> Result<ProxySettings, ConfigError> {
    let bad = |why: &str| {
        ConfigError::invalid(
            source,
            format!(
                "\"{}\" {why}; expected http://host:port, optionally with user:password and an @ before the host",
                redact_uri(text)
            ),
        )
    };
    let rest = text.trim().strip_prefix("http://").ok_or_else(|| {
        bad("is not an http:// proxy URL (HTTPS to the proxy itself is not supported)")
    })?;
    let authority = rest.split('/').next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| bad("has no port"))?;
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => return Err(bad("has a port outside 1-65535")),
    };
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    let authorization = match userinfo {
        Some(ui) => {
            let (user, pass) = ui.split_once(':').unwrap_or((ui, ""));
            Some(basic(&percent_decode(user), &percent_decode(pass)))
        }
        None => None,
    };
    Ok(ProxySettings {
        host: host.to_string(),
        port,
        authorization,
        source: source.to_string(),
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_hosts_domains_ports_and_star() {
        let np = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(bypasses(&np(&["*"]), "anything", 443));
        assert!(bypasses(&np(&["example.com"]), "example.com", 443));
        assert!(bypasses(&np(&["example.com"]), "api.example.com", 443));
        assert!(bypasses(&np(&[".example.com"]), "api.example.com", 443));
        assert!(!bypasses(&np(&["example.com"]), "badexample.com", 443));
        assert!(bypasses(&np(&["127.0.0.1:8443"]), "127.0.0.1", 8443));
        assert!(!bypasses(&np(&["127.0.0.1:8443"]), "127.0.0.1", 9443));
        assert!(!bypasses(&np(&["", " "]), "h", 1));
    }

    #[test]
    fn proxy_urls_parse_with_credentials() {
        let p = parse_proxy("http://bob:s%40cret@127.0.0.1:8888/", "upload.proxy").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 8888));
        let b64 = base64::engine::general_purpose::STANDARD.encode("bob:s@cret");
        assert_eq!(p.authorization.unwrap(), format!("Basic {b64}"));
        let e = parse_proxy("https://p:1", "upload.proxy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("upload.proxy") && e.contains("http://"), "{e}");
        assert!(parse_proxy("http://p", "https_proxy")
            .unwrap_err()
            .to_string()
            .contains("no port"));
    }
}
