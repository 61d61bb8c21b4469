//! `mongomon check`: can the agent reach what it must reach?
//!
//! One line per MongoDB host and per receiver, OK or FAIL with the reason,
//! the way the deployment guide's "networking rules" ask an operator to
//! verify: the agent must connect to every mongod/mongos and to the
//! monitoring server.

use crate::config::{redact_uri, Settings, UploadSettings};
use crate::mongo;

/// One checked endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub ok: bool,
    /// `mongodb` or `upload`.
    pub kind: &'static str,
    pub endpoint: String,
    pub detail: String,
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<4}  {:<7}  {}  {}",
            if self.ok { "OK" } else { "FAIL" },
            self.kind,
            self.endpoint,
            self.detail
        )
    }
}

/// Checks every seed host of every target, then the receiver. Must run
/// inside an actix System (awc needs its runtime).
pub async fn run(settings: &Settings) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    for target in &settings.targets {
        let base = match mongo::target_options(target).await {
            Ok(b) => b,
            Err(e) => {
                lines.push(CheckLine {
                    ok: false,
                    kind: "mongodb",
                    endpoint: redact_uri(&target.uri),
                    detail: mongo::classify("resolve", &e).message,
                });
                continue;
            }
        };
        for host in &target.hosts {
            lines.push(check_host(&base, host, settings).await);
        }
    }
    for u in &settings.uploads {
        lines.push(check_upload(u).await);
    }
    lines
}

async fn check_host(base: &mongodb::options::ClientOptions, host: &str, s: &Settings) -> CheckLine {
    let fail = |detail: String| CheckLine {
        ok: false,
        kind: "mongodb",
        endpoint: host.to_string(),
        detail,
    };
    let client = match mongo::host_options(base, host, &s.agent).and_then(mongo::host_client) {
        Ok(c) => c,
        Err(e) => return fail(mongo::classify("connect", &e).message),
    };
    let timeout = s.agent.command_timeout;
    let hello = mongo::run(&client, "hello", None, timeout).await;
    let hello = if hello.code == Some(59) {
        mongo::run(&client, "isMaster", None, timeout).await
    } else {
        hello
    };
    let hello = match hello.result {
        Ok(d) => d,
        Err(f) => return fail(format!("{}: {}", f.kind, f.message)),
    };
    let status = mongo::run(&client, "serverStatus", None, timeout).await;
    let status = match status.result {
        Ok(d) => d,
        Err(f) => return fail(format!("serverStatus {}: {}", f.kind, f.message)),
    };
    let role = crate::sample::Role::from_hello(&hello);
    let mut detail = role.as_str().to_string();
    if let Ok(set) = hello.get_str("setName") {
        detail.push_str(&format!(" of {set}"));
    }
    if let Ok(v) = status.get_str("version") {
        detail.push_str(&format!(", version {v}"));
    }
    CheckLine {
        ok: true,
        kind: "mongodb",
        endpoint: host.to_string(),
        detail,
    }
}

/// POSTs an empty batch the way the uploader would (same proxy, TLS and
/// authentication): a receiver that answers at all is reachable, one that
/// says 401/403 rejects our credentials, 404/405 means the URL is wrong.
async fn check_upload(u: &UploadSettings) -> CheckLine {
    let endpoint = match &u.proxy {
        Some(p) => format!("{} (via proxy {}:{})", redact_uri(&u.url), p.host, p.port),
        None => redact_uri(&u.url),
    };
    match crate::actors::uploader::probe(u).await {
        Ok(code) => {
            let (ok, why) = match code {
                200..=299 => (true, "accepted an empty batch"),
                400 => (true, "reachable (refused an empty test batch)"),
                401 | 403 => (false, "rejected the credentials; check the upload's api_key, bearer_token or username/password"),
                404 | 405 => (false, "no such endpoint; check the path of upload.url"),
                407 => (false, "the proxy wants credentials; put user:password in the proxy URL"),
                500.. => (false, "receiver error"),
                _ => (false, "unexpected answer"),
            };
            CheckLine {
                ok,
                kind: "upload",
                endpoint,
                detail: format!("HTTP {code}: {why}"),
            }
        }
        Err(e) => CheckLine {
            ok: false,
            kind: "upload",
            endpoint,
            detail: format!("{} ({})", e, e.kind()),
        },
    }
}
