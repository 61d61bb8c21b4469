//! `mongomon check`: can the agent reach what it must reach?
//!
//! The deployment guide's networking rules: the agent must connect to every
//! mongod and mongos it monitors, and to the monitoring server. `check`
//! expands each target's seeds into the whole deployment the way `run` does
//! (replica-set members, shards, config servers, mongos), then tries each
//! host with the agent's own monitoring commands, and the receiver with an
//! empty batch. Each failure gets one precise reason (`dns`, `refused`,
//! `timeout`, `tls`, `auth`, `privileges`, `http`, `error`) and what to do
//! about it. Printed as a table, or as JSON with `--json`.

use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;

use crate::actors::discovery::expand;
use crate::actors::uploader::retry::UploadError;
use crate::config::{Settings, TargetSettings, UploadSettings};
use crate::mongo;
use crate::redact::{printable, redact_text, redact_uri};

/// One checked endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    pub ok: bool,
    /// `mongodb`, `upload`, `etcd`, or `files` (the configuration file and
    /// the spool directory, when `run` would refuse them).
    pub kind: &'static str,
    pub endpoint: String,
    /// The target's name for hosts, `upload` for the receiver.
    pub target: String,
    /// Why it failed: `dns`, `refused`, `timeout`, `tls`, `auth`,
    /// `privileges`, `http`, `permissions` or `error`; `None` when OK.
    pub reason: Option<&'static str>,
    /// What was found (role and version; the HTTP answer) or what to do.
    pub detail: String,
}

impl CheckLine {
    // Every line is built by these two, so the redaction is applied here,
    // once: a library's error text may name the receiver with its userinfo
    // (`… connections on user:password@host:port`).
    fn ok(kind: &'static str, endpoint: &str, target: &str, detail: String) -> Self {
        CheckLine {
            ok: true,
            kind,
            endpoint: redact_uri(endpoint),
            target: target.to_string(),
            reason: None,
            detail: printable(&redact_text(&detail)),
        }
    }

    fn fail(
        kind: &'static str,
        endpoint: &str,
        target: &str,
        reason: &'static str,
        detail: String,
    ) -> Self {
        CheckLine {
            ok: false,
            kind,
            endpoint: redact_uri(endpoint),
            target: target.to_string(),
            reason: Some(reason),
            detail: printable(&redact_text(&format!("{reason}: {detail}"))),
        }
    }
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<4}  {:<7}  {}  {}  {}",
            if self.ok { "OK" } else { "FAIL" },
            self.kind,
            self.endpoint,
            self.target,
            self.detail
        )
    }
}

/// The lines as an aligned table with a header and a summary line.
pub fn render_table(lines: &[CheckLine]) -> String {
    let head = ["RESULT", "KIND", "ENDPOINT", "TARGET", "DETAIL"];
    let rows: Vec<[String; 5]> = lines
        .iter()
        .map(|l| {
            [
                if l.ok { "OK" } else { "FAIL" }.to_string(),
                l.kind.to_string(),
                l.endpoint.clone(),
                l.target.clone(),
                l.detail.clone(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = fmt_row(head);
    for r in &rows {
        out.push_str(&fmt_row([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed == 0 {
        out.push_str(&format!("All {} checks passed.\n", lines.len()));
    } else {
        out.push_str(&format!("{failed} of {} checks failed.\n", lines.len()));
    }
    out
}

/// The lines as one JSON document, for automation.
pub fn render_json(lines: &[CheckLine]) -> String {
    let failed = lines.iter().filter(|l| !l.ok).count();
    let doc = serde_json::json!({
        "ok": failed == 0,
        "failed": failed,
        "checks": lines,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Expands every target into its hosts, checks each host and then the
/// receiver. Must run inside an actix System (awc needs its runtime).
pub async fn run(settings: &Settings) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    for (i, target) in settings.targets.iter().enumerate() {
        let base = match mongo::target_options(target).await {
            Ok(b) => b,
            Err(e) => {
                lines.push(CheckLine::fail(
                    "mongodb",
                    &redact_uri(&target.uri),
                    &target.name,
                    "error",
                    format!("{}; check targets[{i}].uri", e.message),
                ));
                continue;
            }
        };
        let hosts: Vec<String> = if target.discover {
            // The probes' clients end with the check.
            let probe_clients = mongo::HostClients::default();
            let found = expand::expand(
                &target.hosts,
                &base,
                &settings.agent,
                settings.discovery.mongos_ping_window,
                expand::Clients {
                    cache: &probe_clients,
                    settings: mongo::settings_hash(target),
                },
            )
            .await;
            found.hosts.into_keys().collect()
        } else {
            target.hosts.clone()
        };
        let checks = hosts
            .iter()
            .map(|h| check_host(&base, h, i, target, settings));
        lines.extend(join_all(checks).await);
    }
    for u in &settings.uploads {
        lines.push(check_upload(u).await);
    }
    if let Some(f) = &settings.fleet {
        lines.push(check_etcd(f).await);
    }
    lines
}

/// Fleet mode: can the agent reach etcd, and what does it say of the
/// fleet?
pub async fn check_etcd(f: &crate::config::FleetSettings) -> CheckLine {
    let endpoints = f.endpoints.join(",");
    let etcd = match super::fleet::client(f) {
        Ok(e) => e,
        Err(e) => return CheckLine::fail("etcd", &endpoints, &f.name, "tls", e.to_string()),
    };
    match super::fleet::report(f, &etcd).await {
        Ok(r) => CheckLine::ok(
            "etcd",
            &r.etcd_endpoint,
            &f.name,
            format!(
                "etcd {}; {} agents, leader {}, {} hosts published",
                r.etcd_version,
                r.agents.len(),
                r.leader.as_deref().unwrap_or("none"),
                r.hosts_published
            ),
        ),
        Err(e) => {
            let reason = if e.message.contains("refused") {
                "refused"
            } else if e.message.contains("password") || e.message.contains("401") {
                "auth"
            } else if e.unavailable {
                "timeout"
            } else {
                "error"
            };
            CheckLine::fail(
                "etcd",
                &endpoints,
                &f.name,
                reason,
                format!("{e}; check fleet.etcd_endpoints and that etcd runs"),
            )
        }
    }
}

async fn check_host(
    base: &mongo::TargetOptions,
    host: &str,
    index: usize,
    target: &TargetSettings,
    s: &Settings,
) -> CheckLine {
    let fail = |reason, detail| CheckLine::fail("mongodb", host, &target.name, reason, detail);
    // The same connection `run` opens: TLS, handshake, login, one socket.
    let client = match mongo::host_client(base, host, &s.agent) {
        Ok(c) => c,
        Err(e) => return fail("error", e.message),
    };
    let timeout = s.agent.command_timeout;
    // The connection gives up connecting after `connect_timeout` and says
    // why (refused, TLS, ...); the outer bound leaves it room to say so.
    let bound = timeout + Duration::from_millis(500);
    let hello = mongo::run(&client, "hello", None, bound).await.into_doc();
    let hello = if hello.code == Some(59) {
        mongo::run(&client, "isMaster", None, bound)
            .await
            .into_doc()
    } else {
        hello
    };
    let hello = match hello.result {
        Ok(d) => d,
        Err(f) => {
            let (reason, detail) = explain(&f, hello.code, host, index, target, timeout);
            return fail(reason, detail);
        }
    };
    let mut commands = vec!["serverStatus"];
    let arbiter = hello.get_bool("arbiterOnly").unwrap_or(false);
    if hello.get_str("setName").is_ok() && !arbiter {
        commands.push("replSetGetStatus");
    }
    let mut version = None;
    for command in commands {
        let out = mongo::run(&client, command, None, bound).await.into_doc();
        match out.result {
            Ok(d) => {
                if command == "serverStatus" {
                    version = d.get_str("version").ok().map(str::to_string);
                }
            }
            Err(f) => {
                let (reason, detail) = explain(&f, out.code, host, index, target, timeout);
                return fail(reason, detail);
            }
        }
    }
    let role = crate::sample::Role::from_hello(&hello);
    let mut detail = role.as_str().to_string();
    if let Ok(set) = hello.get_str("setName") {
        detail.push_str(&format!(" of {set}"));
    }
    if let Some(v) = version {
        detail.push_str(&format!(", version {v}"));
    }
    CheckLine::ok("mongodb", host, &target.name, detail)
}

/// The reason and the operator's next step for a failed command.
fn explain(
    f: &crate::sample::Failure,
    code: Option<i32>,
    host: &str,
    index: usize,
    target: &TargetSettings,
    timeout: Duration,
) -> (&'static str, String) {
    let user = target.username.as_deref().unwrap_or("(none)");
    let m = f.message.as_str();
    let lower = m.to_ascii_lowercase();
    if code == Some(13) || lower.contains("unauthorized") || lower.contains("not authorized") {
        let detail = match &target.username {
            Some(u) => format!(
                "{} is not allowed for user {u}; grant it the clusterMonitor role",
                f.command
            ),
            None => format!(
                "{} is not allowed without authentication; set targets[{index}].username to a user with the clusterMonitor role",
                f.command
            ),
        };
        return ("privileges", detail);
    }
    if f.kind == "auth" || code == Some(18) {
        return (
            "auth",
            format!(
                "authentication failed for user {user}; check targets[{index}].username and its password"
            ),
        );
    }
    if lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("dns")
        || f.kind == "dns"
    {
        return (
            "dns",
            format!("cannot resolve the host name of {host}; check DNS or /etc/hosts"),
        );
    }
    if lower.contains("connection refused") {
        return (
            "refused",
            format!("nothing accepts connections on {host}; is the server up, and the port open to this machine?"),
        );
    }
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        return ("tls", format!("TLS handshake failed ({m})"));
    }
    if f.kind == "timeout" || lower.contains("timed out") || lower.contains("timeout") {
        return (
            "timeout",
            format!(
                "no answer within {} ms; check firewalls between this machine and {host}",
                timeout.as_millis()
            ),
        );
    }
    ("error", m.to_string())
}

/// POSTs an empty batch to one upload target the way the uploader would
/// (same proxy tunnel, TLS settings and credentials): a receiver that
/// answers at all is reachable, 401/403 rejects our credentials, 404/405
/// means the URL is wrong.
pub async fn check_upload(u: &UploadSettings) -> CheckLine {
    let endpoint = redact_uri(&u.url);
    let authority = u
        .url
        .parse::<awc::http::Uri>()
        .ok()
        .and_then(|uri| {
            // host:port only: the authority would carry the userinfo.
            let host = uri.host()?;
            Some(match uri.port() {
                Some(p) => format!("{host}:{}", p.as_str()),
                None => host.to_string(),
            })
        })
        .unwrap_or_else(|| endpoint.clone());
    let via = match &u.proxy {
        Some(p) => format!(" through the proxy {}:{}", p.host, p.port),
        None => String::new(),
    };
    let fail = |reason, detail| CheckLine::fail("upload", &endpoint, &u.name, reason, detail);
    match crate::actors::uploader::probe(u).await {
        Ok(code) => match code {
            200..=299 => CheckLine::ok(
                "upload",
                &endpoint,
                &u.name,
                format!("HTTP {code}: accepted an empty batch{via}"),
            ),
            400 => CheckLine::ok(
                "upload",
                &endpoint,
                &u.name,
                format!("HTTP 400: reachable (refused an empty test batch){via}"),
            ),
            401 | 403 => fail(
                "auth",
                format!(
                    "HTTP {code}: the receiver rejected the credentials; check upload.api_key, bearer_token or username/password"
                ),
            ),
            404 | 405 => fail(
                "http",
                format!("HTTP {code}: no such endpoint; check the path of upload.url"),
            ),
            _ => fail(
                "http",
                format!("HTTP {code}: the receiver answered with an error"),
            ),
        },
        Err(e) => {
            let text = e.to_string();
            let lower = text.to_ascii_lowercase();
            match &e {
                UploadError::Timeout => fail(
                    "timeout",
                    format!(
                        "no answer from {authority}{via} within {} s; check firewalls and upload.timeout_secs",
                        u.timeout.as_secs()
                    ),
                ),
                UploadError::Tls(_) => fail("tls", format!("TLS handshake with {authority} failed ({text})")),
                _ if lower.contains("proxy requires authentication") => fail("auth", text),
                _ if lower.contains("proxy") => fail("refused", text),
                _ if lower.contains("resolv") || lower.contains("dns") => fail(
                    "dns",
                    format!("cannot resolve the host name of {authority}; check upload.url and DNS"),
                ),
                _ if lower.contains("refused") => fail(
                    "refused",
                    format!("nothing accepts connections on {authority}; is the receiver up, and the port open to this machine?"),
                ),
                _ => fail("error", text),
            }
        }
    }
}

/// `mongomon check`: the table (or JSON), exit status 1 if anything failed.
pub fn command(cfg: &crate::cli::ConfigArgs, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let (raw, _) = super::load(cfg)?;
    let settings = crate::config::validate(&raw, Some(&cfg.config))?;
    // What `run` would refuse, first. Root running `check` is usually an
    // operator looking at the service's files, which belong to its user:
    // the owner is then not compared (`run` as root still compares it).
    let euid = crate::daemon::euid();
    let mut lines: Vec<CheckLine> =
        crate::daemon::permission_problems(&cfg.config, &raw, (euid != 0).then_some(euid))
            .into_iter()
            .map(|p| {
                CheckLine::fail(
                    "files",
                    &p.path.display().to_string(),
                    p.key,
                    "permissions",
                    p.message,
                )
            })
            .collect();
    // It connects to every host at once, as `run` does.
    let _ = crate::daemon::raise_nofile_limit();
    let sys = actix_rt::System::new();
    lines.extend(sys.block_on(async move { run(&settings).await }));
    if json {
        print!("{}", render_json(&lines));
    } else {
        print!("{}", render_table(&lines));
    }
    Ok(if lines.iter().any(|l| !l.ok) {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_aligned_and_summarised() {
        let lines = vec![
            CheckLine::ok("mongodb", "h:1", "c", "standalone".into()),
            CheckLine::fail("upload", "http://u/", "upload", "refused", "x".into()),
        ];
        let t = render_table(&lines);
        assert_eq!(
            t,
            "RESULT  KIND     ENDPOINT   TARGET  DETAIL\n\
             OK      mongodb  h:1        c       standalone\n\
             FAIL    upload   http://u/  upload  refused: x\n\
             1 of 2 checks failed.\n"
        );
        let j: serde_json::Value = serde_json::from_str(&render_json(&lines)).unwrap();
        assert_eq!(j["ok"], false);
        assert_eq!(j["checks"][1]["reason"], "refused");
    }
}
