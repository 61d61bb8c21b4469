//! Talking to MongoDB: one driver client per monitored host, and monitoring
//! commands run with a hard timeout and a failure classification.
//!
//! Each host gets its own `Client` in direct mode: the agent must see every
//! member as itself (a secondary's serverStatus, not the primary's), and a
//! slow or dead host must not hold up the others. The pool is one connection
//! (commands of a host run one after another) and the monitor polls instead
//! of streaming, so a host costs two sockets: the pool's and the monitor's.

use std::time::{Duration, Instant, SystemTime};

use bson::{doc, Document};
use mongodb::error::{Error, ErrorKind};
use mongodb::options::{ClientOptions, ServerAddress, ServerMonitoringMode};
use mongodb::Client;

use crate::config::{AgentSettings, TargetSettings};
use crate::sample::Failure;

/// Parses the target's URI into options shared by all of its hosts, with
/// the credentials resolved from the config (file, env or URI).
pub async fn target_options(target: &TargetSettings) -> Result<ClientOptions, Error> {
    let mut opts = ClientOptions::parse(target.uri.as_str()).await?;
    if let Some(user) = &target.username {
        let mut cred = opts.credential.take().unwrap_or_default();
        cred.username = Some(user.clone());
        if let Some(pw) = &target.password {
            cred.password = Some(pw.clone());
        }
        opts.credential = Some(cred);
    } else if let (Some(pw), Some(cred)) = (&target.password, opts.credential.as_mut()) {
        cred.password = Some(pw.clone());
    }
    Ok(opts)
}

/// Options for one host: the target's options narrowed to that address.
pub fn host_options(
    base: &ClientOptions,
    addr: &str,
    agent: &AgentSettings,
) -> Result<ClientOptions, Error> {
    let mut o = base.clone();
    o.hosts = vec![ServerAddress::parse(addr)?];
    o.direct_connection = Some(true);
    o.repl_set_name = None;
    o.app_name = Some(format!("mongomon {}", env!("CARGO_PKG_VERSION")));
    o.max_pool_size = Some(1);
    o.min_pool_size = Some(0);
    o.max_connecting = Some(1);
    o.connect_timeout = Some(agent.connect_timeout);
    o.server_selection_timeout = Some(agent.command_timeout);
    o.server_monitoring_mode = Some(ServerMonitoringMode::Poll);
    // The monitor's own heartbeat only serves to notice a host coming back;
    // the agent's commands already sample it every interval.
    o.heartbeat_freq = Some(agent.interval.max(Duration::from_millis(500)));
    o.retry_reads = Some(false);
    o.retry_writes = Some(false);
    Ok(o)
}

/// Builds a client for one host. Building does not connect; the first
/// command does.
pub fn host_client(opts: ClientOptions) -> Result<Client, Error> {
    Client::with_options(opts)
}

/// The outcome of one command.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub command: &'static str,
    pub started: SystemTime,
    pub duration: Duration,
    pub result: Result<Document, Failure>,
    /// The server's error code when the command failed with one (59 means
    /// the server does not know the command).
    pub code: Option<i32>,
}

/// Runs `{<name>: 1, ..extra}` on `admin` with a hard timeout.
pub async fn run(
    client: &Client,
    name: &'static str,
    extra: Option<Document>,
    timeout: Duration,
) -> CommandOutcome {
    let mut cmd = doc! { name: 1 };
    if let Some(extra) = extra {
        cmd.extend(extra);
    }
    run_on(client, "admin", name, cmd, timeout).await
}

/// Runs the whole command `cmd` on database `db` with a hard timeout;
/// `name` labels the outcome.
pub async fn run_on(
    client: &Client,
    db: &str,
    name: &'static str,
    cmd: Document,
    timeout: Duration,
) -> CommandOutcome {
    let started = SystemTime::now();
    let clock = Instant::now();
    let db = client.database(db);
    let fut = db.run_command(cmd);
    let mut code = None;
    let result = match actix_rt::time::timeout(timeout, fut).await {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => {
            code = command_code(&e);
            Err(classify(name, &e))
        }
        Err(_) => Err(Failure {
            kind: "timeout",
            command: name,
            message: format!("{name} did not answer within {} ms", timeout.as_millis()),
        }),
    };
    CommandOutcome {
        command: name,
        started,
        duration: clock.elapsed(),
        result,
        code,
    }
}

/// Reduces a driver error to a stable kind and a one-line message.
pub fn classify(command: &'static str, e: &Error) -> Failure {
    let kind = match e.kind.as_ref() {
        ErrorKind::Authentication { .. } => "auth",
        ErrorKind::Command(c) if c.code == 13 || c.code == 18 => "auth",
        ErrorKind::Command(_) => "command",
        ErrorKind::ServerSelection { message, .. } => {
            if message.contains("Authentication") || message.contains("auth") {
                "auth"
            } else if message.contains("timed out") || message.contains("TimedOut") {
                "timeout"
            } else {
                "unreachable"
            }
        }
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => "network",
        ErrorKind::DnsResolve { .. } => "dns",
        ErrorKind::InvalidTlsConfig { .. } => "tls",
        ErrorKind::InvalidResponse { .. } => "bad_reply",
        _ => "other",
    };
    // A command error says it all in code, name and errmsg; the driver's
    // Display would add labels and the raw reply as hex.
    let text = match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("error {} ({}): {}", c.code, c.code_name, c.message),
        _ => e.to_string(),
    };
    let message: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Failure {
        kind,
        command,
        message: truncate(&message, 400),
    }
}

/// The command error code of a failed command, if the server sent one.
pub fn command_code(e: &Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The first batch of a `find` reply (`cursor.firstBatch`).
pub fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get_array("firstBatch").ok())
        .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
        .unwrap_or_default()
}
