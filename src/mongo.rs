//! Talking to MongoDB: one driver client per monitored host, and monitoring
//! commands run with a hard timeout and a failure classification.
//!
//! Each host gets its own `Client` in direct mode: the agent must see every
//! member as itself (a secondary's serverStatus, not the primary's), and a
//! slow or dead host must not hold up the others. The pool is one connection
//! (commands of a host run one after another) and the monitor polls instead
//! of streaming, so a host costs two sockets: the pool's and the monitor's.
//!
//! Discovery's probes and the monitors share one client per host through
//! [`HostClients`]: the client a probe built (and authenticated) is the one
//! the host's monitor then samples with, and later re-expansions probe over
//! the monitor's client. A host is authenticated once per agent run, not
//! once per probe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// Which client: the target's settings (a hash of name, URI and
/// credentials, so changed credentials never reuse an old login) and the
/// host's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub settings: u64,
    pub addr: String,
}

/// A client handed out by [`HostClients`], with the id that lets its holder
/// release exactly this one (and not a newer client built for the same key).
#[derive(Clone)]
pub struct SharedClient {
    pub id: u64,
    pub client: Client,
}

/// The per-host clients shared by discovery and the monitors.
///
/// Entries live until the host's monitor stops ([`HostClients::release`]),
/// discovery drops hosts it no longer lists ([`HostClients::retain`]), or
/// the target's settings change ([`HostClients::forget_settings`]). A
/// holder keeps its own clone, so an eviction never breaks a running
/// monitor; it only means the next probe builds a new client.
#[derive(Clone, Default)]
pub struct HostClients {
    inner: Arc<Mutex<HashMap<ClientKey, SharedClient>>>,
    next_id: Arc<AtomicU64>,
}

impl HostClients {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, SharedClient>> {
        // A panic while holding this lock cannot leave the map half-written
        // (every change is one insert or remove), so a poisoned lock is safe.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached client for `key`, or a new one built from `base`.
    pub fn get_or_build(
        &self,
        key: &ClientKey,
        base: &ClientOptions,
        agent: &AgentSettings,
    ) -> Result<SharedClient, Error> {
        if let Some(c) = self.map().get(key) {
            return Ok(c.clone());
        }
        self.rebuild(key, base, agent)
    }

    /// Builds a new client for `key` (new timeouts, say) and caches it in
    /// place of the old one.
    pub fn rebuild(
        &self,
        key: &ClientKey,
        base: &ClientOptions,
        agent: &AgentSettings,
    ) -> Result<SharedClient, Error> {
        let client = host_client(host_options(base, &key.addr, agent)?)?;
        let shared = SharedClient {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            client,
        };
        self.map().insert(key.clone(), shared.clone());
        Ok(shared)
    }

    /// Drops the cached client of `key` if it is still the one with `id`.
    pub fn release(&self, key: &ClientKey, id: u64) {
        let mut map = self.map();
        if map.get(key).is_some_and(|c| c.id == id) {
            map.remove(key);
        }
    }

    /// Keeps, for one target's settings, only the clients of hosts `keep`
    /// accepts (drops aliases and hosts that are gone).
    pub fn retain(&self, settings: u64, keep: impl Fn(&str) -> bool) {
        self.map()
            .retain(|k, _| k.settings != settings || keep(&k.addr));
    }

    /// Drops every client built for `settings` (a target changed or left).
    pub fn forget_settings(&self, settings: u64) {
        self.map().retain(|k, _| k.settings != settings);
    }
}

/// The [`ClientKey::settings`] of a target: what its logins depend on.
pub fn settings_hash(t: &TargetSettings) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&t.name, &t.uri, &t.username, &t.password).hash(&mut h);
    h.finish()
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
