//! `mongomon status`: a running agent's `/status` as the host table of
//! [`super::table`] (the one `demo` draws), once or redrawn with `--watch`.
//!
//! The listener's address and credentials come from the agent's own
//! configuration (`[http]`), so on the agent's machine the command needs no
//! flags; `--url` points it elsewhere. Exit status, for scripts: 0 when
//! every host is up and every upload target delivers (or spools within its
//! budget), 1 when a host is down or not sampled yet or a target is
//! failing, 2 when the agent could not be asked.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::table::{mark_changes, render, HostRow};
use crate::cli::StatusArgs;
use crate::config::{self, TlsSettings};
use crate::listener::status::StatusReport;
use crate::redact::{printable, redact_uri};

/// How long a change stays marked, in drawings.
const HOLD: u32 = 3;

/// Where to ask and how.
struct Endpoint {
    url: String,
    authorization: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

pub fn command(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let endpoint = endpoint(args)?;
    let sys = actix_rt::System::new();
    let Some(every) = args.watch else {
        let report = sys.block_on(fetch(&endpoint))?;
        let mut rows = rows(&report);
        mark_changes(&BTreeMap::new(), &mut rows, HOLD);
        print!("{}", draw(&report, &rows));
        return Ok(if healthy(&report) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };
    // SAFETY: isatty(2) only inspects the descriptor.
    let tty = unsafe { libc::isatty(1) } == 1;
    let mut prev: BTreeMap<String, HostRow> = BTreeMap::new();
    loop {
        let text = match sys.block_on(fetch(&endpoint)) {
            Ok(report) => {
                let mut rows = rows(&report);
                mark_changes(&prev, &mut rows, HOLD);
                prev = rows.iter().map(|r| (r.host.clone(), r.clone())).collect();
                draw(&report, &rows)
            }
            Err(e) => format!("mongomon: {}\n", printable(&format!("{e:#}"))),
        };
        if tty {
            print!("\x1b[2J\x1b[H{text}");
        } else {
            println!("{text}");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_secs(every));
    }
}

/// The URL and credentials: `--url`, else the configuration's
/// `http.listen`; credentials from the configuration's secret source.
fn endpoint(args: &StatusArgs) -> anyhow::Result<Endpoint> {
    let http = config::load(&args.config, &serde_json::json!({}))
        .and_then(|raw| config::validate_http(&raw));
    let http = match (http, &args.url) {
        (Ok(h), _) => Some(h),
        (Err(e), None) => {
            return Err(anyhow!(e).context(
                "cannot tell where the agent listens; fix the configuration or pass --url",
            ));
        }
        // An explicit URL needs no configuration (no credentials then).
        (Err(_), Some(_)) => None,
    };
    let url = match (&args.url, &http) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(h)) if h.enabled => h.base_url(),
        (None, _) => bail!(
            "{}: http.enabled is false, so the agent serves no /status; set [http] enabled = true (and restart it) or pass --url",
            args.config.display()
        ),
    };
    // The CA given, else the agent's own certificate (often self-signed);
    // with neither, the system's roots.
    let ca = args.ca_file.clone().or_else(|| {
        http.as_ref()
            .and_then(|h| h.tls.as_ref())
            .map(|(c, _)| c.clone())
    });
    let tls = match ca {
        Some(ca) if url.starts_with("https://") => Some(
            crate::actors::uploader::connect::tls_config(&TlsSettings {
                ca_file: Some(ca),
                ..TlsSettings::default()
            })
            .map_err(|e| anyhow!("the CA to trust for {}: {e}", redact_uri(&url)))?,
        ),
        _ => None,
    };
    Ok(Endpoint {
        url,
        authorization: http.and_then(|h| h.auth.header_value()),
        tls,
    })
}

async fn fetch(e: &Endpoint) -> anyhow::Result<StatusReport> {
    let mut connector = awc::Connector::new().timeout(Duration::from_secs(5));
    if let Some(tls) = &e.tls {
        connector = connector.rustls_0_23(tls.clone());
    }
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(15))
        .disable_redirects()
        .finish();
    let shown = redact_uri(&e.url);
    let mut req = client.get(format!("{}/status", e.url));
    if let Some(a) = &e.authorization {
        req = req.insert_header((awc::http::header::AUTHORIZATION, a.as_str()));
    }
    let mut resp = req.send().await.map_err(|err| {
        anyhow!("cannot reach the agent at {shown} ({err}); is it running with [http] enabled?")
    })?;
    let status = resp.status().as_u16();
    match status {
        200 => {}
        401 => bail!(
            "the agent at {shown} refused the credentials (401); check http.bearer_token_file / http.password_file in the configuration"
        ),
        s => bail!("the agent at {shown} answered HTTP {s} to /status"),
    }
    let body = resp
        .body()
        .limit(64 << 20)
        .await
        .map_err(|err| anyhow!("reading /status from {shown}: {err}"))?;
    serde_json::from_slice(&body)
        .map_err(|err| anyhow!("{shown}/status is not a mongomon status document ({err})"))
}

/// Every host up and every target delivering.
fn healthy(r: &StatusReport) -> bool {
    r.hosts.iter().all(|h| h.up) && r.uploads.iter().all(|u| u.ok)
}

/// The table's rows from `/status`.
fn rows(r: &StatusReport) -> Vec<HostRow> {
    r.hosts
        .iter()
        .map(|h| HostRow {
            host: h.host.clone(),
            role: h.role.clone(),
            replset: h.replset.clone().unwrap_or_default(),
            state: h.state.clone().unwrap_or_default(),
            version: h.version.clone().unwrap_or_default(),
            up: h.up,
            ops_per_sec: h.ops_per_sec,
            connections: h.connections,
            lag_secs: h.lag_secs,
            age_secs: h.age_secs,
            last_error: h.last_error.clone(),
            ..HostRow::default()
        })
        .collect()
}

/// The whole drawing: a header line, the host table, the upload targets.
fn draw(r: &StatusReport, rows: &[HostRow]) -> String {
    let down = r.hosts.iter().filter(|h| !h.up).count();
    let mut out = format!(
        "agent {} (mongomon {}), up {:.0} s: {} hosts, {} down; {}\n",
        r.agent,
        r.version,
        r.uptime_secs,
        r.hosts.len(),
        down,
        if r.ready { "ready" } else { "NOT READY" }
    );
    for why in &r.not_ready {
        out.push_str(&format!("  not ready: {why}\n"));
    }
    if let Some(f) = &r.fleet {
        let num = |k: &str| f[k].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "fleet {} as {}: {}, {} agents, {} hosts owned, lease {:.1} s left, {} hand-offs\n",
            f["name"].as_str().unwrap_or("?"),
            f["agent_id"].as_str().unwrap_or("?"),
            if f["leader"].as_bool() == Some(true) {
                "leader"
            } else if f["member"].as_bool() == Some(true) {
                "member"
            } else {
                "NO LEASE"
            },
            num("agents"),
            num("hosts_owned"),
            num("lease_left_secs"),
            num("handoffs"),
        ));
    }
    out.push('\n');
    out.push_str(&render(rows));
    out.push('\n');
    out.push_str(&format!(
        "{:<24} {:<8} {:>8} {:>12} {:>12}  {}\n",
        "UPLOAD", "STATE", "QUEUE", "SPOOL(B)", "SENT", "LAST ERROR"
    ));
    for u in &r.uploads {
        let line = format!(
            "{:<24} {:<8} {:>8} {:>12} {:>12}  {}",
            u.name,
            if u.ok { "ok" } else { "FAILING" },
            u.queue_batches,
            u.spool_bytes,
            u.samples_sent,
            u.last_error.as_deref().unwrap_or("-"),
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    printable_lines(&out)
}

/// Control characters a host could put in an error are escaped, lines kept.
fn printable_lines(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| {
            let (body, nl) = l.strip_suffix('\n').map_or((l, ""), |b| (b, "\n"));
            format!("{}{nl}", printable(body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::status::{HostStatus, UploadStatus};

    fn report(up: bool, ok: bool) -> StatusReport {
        StatusReport {
            agent: "a".into(),
            version: "0".into(),
            ready: ok,
            hosts: vec![HostStatus {
                host: "h:1".into(),
                role: "primary".into(),
                replset: Some("rs0".into()),
                state: Some("PRIMARY".into()),
                up,
                sampled: true,
                last_error: (!up).then(|| "hello: connection refused".into()),
                ..HostStatus::default()
            }],
            uploads: vec![UploadStatus {
                name: "vm".into(),
                ok,
                ..UploadStatus::default()
            }],
            ..StatusReport::default()
        }
    }

    #[test]
    fn health_decides_the_exit_status_and_the_table_shows_it() {
        assert!(healthy(&report(true, true)));
        assert!(!healthy(&report(false, true)));
        assert!(!healthy(&report(true, false)));
        let r = report(false, false);
        let text = draw(&r, &rows(&r));
        assert!(text.contains("NOT READY"), "{text}");
        assert!(text.contains("hello: connection refused"), "{text}");
        assert!(text.contains("FAILING"), "{text}");
        assert!(text.contains("HOST"), "{text}");
    }
}
