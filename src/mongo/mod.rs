//! Talking to MongoDB: one connection of the agent's own per monitored
//! host ([`conn::Conn`]), and monitoring commands run with a hard timeout
//! and a failure classification.
//!
//! Each host gets its own connection, opened directly to it: the agent
//! must see every member as itself (a secondary's serverStatus, not the
//! primary's), and a slow or dead host must not hold up the others. The
//! commands of a host run one after another over that one socket.
//!
//! Discovery's probes and the monitors share it through [`HostClients`]:
//! the connection a probe opened (and authenticated) is the one the host's
//! monitor then samples with, and later re-expansions probe over the
//! monitor's. A host is authenticated once per agent run, not once per probe.
//!
//! The official driver is used for one thing: parsing the connection
//! string ([`mongodb::options::ClientOptions::parse`]: hosts, credentials,
//! `authSource`/`authMechanism`, TLS options, `mongodb+srv://` seed lists).

pub mod auth;
pub mod conn;
pub mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bson::{doc, Document, RawDocumentBuf};
use mongodb::options::{AuthMechanism, ClientOptions, ServerAddress, Tls};

use crate::config::{AgentSettings, TargetSettings};
use crate::sample::Failure;
use crate::wire::compress::Compressor;
use crate::wire::scram::Mechanism;

pub use conn::{Conn as Client, ConnError, ConnSpec};

/// A target's parsed connection string and what every one of its hosts
/// connects with (TLS configuration, credential, compressors), built once.
#[derive(Clone, Debug)]
pub struct TargetOptions {
    pub driver: ClientOptions,
    pub conn: Arc<ConnSpec>,
}

/// Parses the target's URI into options shared by all of its hosts, with
/// the credentials resolved from the config (file, env or URI).
pub async fn target_options(target: &TargetSettings) -> Result<TargetOptions, Failure> {
    let fail = |message: String| Failure {
        kind: "other",
        command: "resolve",
        message: truncate(
            &message.split_whitespace().collect::<Vec<_>>().join(" "),
            400,
        ),
    };
    let mut opts = ClientOptions::parse(driver_uri(&target.uri).as_ref())
        .await
        .map_err(|e| fail(e.to_string()))?;
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
    let conn = conn_spec(&opts, &target.uri).map_err(fail)?;
    Ok(TargetOptions {
        driver: opts,
        conn: Arc::new(conn),
    })
}

/// What the connections of a target need from its options.
pub fn conn_spec(opts: &ClientOptions, uri: &str) -> Result<ConnSpec, String> {
    let tls = match &opts.tls {
        Some(Tls::Enabled(t)) => {
            let yes = |k| uri_option(uri, k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
            Some(tls::build(
                t,
                yes("tlsAllowInvalidHostnames") || yes("tlsInsecure"),
            )?)
        }
        _ => None,
    };
    let credential = match &opts.credential {
        None => None,
        Some(c) => {
            let source = |dflt: &str| {
                c.source
                    .clone()
                    .or_else(|| opts.default_database.clone())
                    .unwrap_or_else(|| dflt.to_string())
            };
            let user = c.username.clone();
            let password = c.password.clone();
            match &c.mechanism {
                Some(AuthMechanism::MongoDbX509) => Some(auth::Credential::X509 { user }),
                Some(AuthMechanism::Plain) => Some(auth::Credential::Plain {
                    user: user.ok_or("authMechanism=PLAIN needs a user name")?,
                    password: password.ok_or("authMechanism=PLAIN needs a password")?,
                    source: c.source.clone().unwrap_or_else(|| "$external".into()),
                }),
                m @ (None | Some(AuthMechanism::ScramSha1) | Some(AuthMechanism::ScramSha256)) => {
                    match (user, password) {
                        (Some(user), Some(password)) => Some(auth::Credential::Scram {
                            mechanism: match m {
                                Some(AuthMechanism::ScramSha1) => Some(Mechanism::Sha1),
                                Some(AuthMechanism::ScramSha256) => Some(Mechanism::Sha256),
                                _ => None,
                            },
                            user,
                            password,
                            source: source("admin"),
                        }),
                        (Some(_), None) => {
                            return Err("a user name is set but no password; set the target's password (or password_env)".into())
                        }
                        _ => None,
                    }
                }
                // config::validate refuses these at start, naming the target.
                Some(other) => {
                    return Err(format!(
                        "authMechanism {} is not supported by mongomon",
                        other.as_str()
                    ))
                }
            }
        }
    };
    Ok(ConnSpec {
        tls,
        credential,
        app_name: opts
            .app_name
            .clone()
            .unwrap_or_else(|| format!("mongomon {}", env!("CARGO_PKG_VERSION"))),
        compressors: uri_compressors(uri)?,
    })
}

/// The value of option `key` (case-insensitive) in the URI's query, for
/// the few options the driver's build here does not keep: `compressors`
/// and `zlibCompressionLevel` (no compression features) and
/// `tlsAllowInvalidHostnames` (OpenSSL builds only).
pub fn uri_option<'a>(uri: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = uri.split_once('?')?;
    query
        .split(['&', ';'])
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .next_back()
}

/// The options [`uri_option`] reads for the agent's connection, which the
/// driver (without compression features, with rustls) refuses.
const OWN_OPTIONS: [&str; 3] = [
    "compressors",
    "zlibCompressionLevel",
    "tlsAllowInvalidHostnames",
];

/// The URI without [`OWN_OPTIONS`], for the driver's parser.
pub fn driver_uri(uri: &str) -> std::borrow::Cow<'_, str> {
    let Some((head, query)) = uri.split_once('?') else {
        return uri.into();
    };
    let own = |pair: &str| {
        let k = pair.split_once('=').map_or(pair, |(k, _)| k);
        OWN_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(k))
    };
    if !query.split(['&', ';']).any(own) {
        return uri.into();
    }
    let kept: Vec<&str> = query.split(['&', ';']).filter(|p| !own(p)).collect();
    if kept.is_empty() {
        format!("{head}?").into()
    } else {
        format!("{head}?{}", kept.join("&")).into()
    }
}

/// `compressors=` (in order of preference) and `zlibCompressionLevel=`.
pub fn uri_compressors(uri: &str) -> Result<Vec<Compressor>, String> {
    let level = match uri_option(uri, "zlibCompressionLevel") {
        Some(v) => Some(
            v.parse::<i32>()
                .map_err(|_| format!("zlibCompressionLevel={v} is not a number; use -1 to 9"))?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for name in uri_option(uri, "compressors")
        .unwrap_or("")
        .split(',')
        .filter(|n| !n.is_empty())
    {
        match Compressor::from_name(name, level) {
            Some(c) => out.push(c),
            None => {
                return Err(format!(
                "compressors={name} is not a compressor mongomon speaks; use snappy, zstd or zlib"
            ))
            }
        }
    }
    Ok(out)
}

/// The host and port of one address as discovery or the config names it.
fn split_addr(addr: &str) -> Result<(String, u16), String> {
    match ServerAddress::parse(addr).map_err(|e| e.to_string())? {
        ServerAddress::Tcp { host, port } => Ok((host, port.unwrap_or(27017))),
        #[allow(unreachable_patterns)]
        _ => Err(format!("{addr} is not a host:port address")),
    }
}

/// The worker threads (actix Arbiters) hosts are spread over: a host's
/// monitor and its connection live on one of them for their whole life,
/// picked by a stable hash of the address.
#[derive(Clone, Default)]
pub struct Workers {
    arbiters: Arc<Vec<actix_rt::ArbiterHandle>>,
}

impl Workers {
    /// Starts `n` worker threads; they stop with the actix System.
    pub fn start(n: usize) -> Workers {
        let arbiters = (0..n.max(1))
            .map(|_| actix_rt::Arbiter::new().handle())
            .collect();
        Workers {
            arbiters: Arc::new(arbiters),
        }
    }

    /// The worker of `addr` (None without workers: the caller's thread).
    pub fn for_addr(&self, addr: &str) -> Option<actix_rt::ArbiterHandle> {
        self.index_for(addr).map(|i| self.arbiters[i].clone())
    }

    /// Which worker `addr` lives on: a stable hash of the address, so a
    /// host's monitor, its connection and its batcher share one thread.
    pub fn index_for(&self, addr: &str) -> Option<usize> {
        use std::hash::{Hash, Hasher};
        if self.arbiters.is_empty() {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        addr.hash(&mut h);
        Some((h.finish() % self.arbiters.len() as u64) as usize)
    }

    /// Worker `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<actix_rt::ArbiterHandle> {
        self.arbiters.get(i).cloned()
    }

    pub fn len(&self) -> usize {
        self.arbiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arbiters.is_empty()
    }
}

/// Builds the connection of one host, on the caller's runtime. Building
/// does not connect; the first command does.
pub fn host_client(
    base: &TargetOptions,
    addr: &str,
    agent: &AgentSettings,
) -> Result<Client, Failure> {
    host_client_on(base, addr, agent, None)
}

/// [`host_client`] with its socket on the worker `home`.
pub fn host_client_on(
    base: &TargetOptions,
    addr: &str,
    agent: &AgentSettings,
    home: Option<actix_rt::ArbiterHandle>,
) -> Result<Client, Failure> {
    let (host, port) = split_addr(addr).map_err(|message| Failure {
        kind: "other",
        command: "connect",
        message,
    })?;
    Ok(Client::new(
        host,
        port,
        home,
        base.conn.clone(),
        agent.connect_timeout,
        // A dead host is tried again at most once per interval.
        agent
            .interval
            .clamp(Duration::from_secs(1), Duration::from_secs(30)),
    ))
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

/// The per-host connections shared by discovery and the monitors.
///
/// Entries live until the host's monitor stops ([`HostClients::release`]),
/// discovery drops hosts it no longer lists ([`HostClients::retain`]), or
/// the target's settings change ([`HostClients::forget_settings`]). A
/// holder keeps its own clone, so an eviction never breaks a running
/// monitor; it only means the next probe opens a new connection.
#[derive(Clone, Default)]
pub struct HostClients {
    inner: Arc<Mutex<HashMap<ClientKey, SharedClient>>>,
    next_id: Arc<AtomicU64>,
    workers: Workers,
}

impl HostClients {
    /// Connections that live on `workers`.
    pub fn with_workers(workers: Workers) -> HostClients {
        HostClients {
            workers,
            ..HostClients::default()
        }
    }

    /// The worker of `addr`, where its monitor runs too.
    pub fn worker_for(&self, addr: &str) -> Option<actix_rt::ArbiterHandle> {
        self.workers.for_addr(addr)
    }

    /// The workers the connections live on.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, SharedClient>> {
        // A panic while holding this lock cannot leave the map half-written
        // (every change is one insert or remove), so a poisoned lock is safe.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached connection for `key`, or a new one built from `base`.
    pub fn get_or_build(
        &self,
        key: &ClientKey,
        base: &TargetOptions,
        agent: &AgentSettings,
    ) -> Result<SharedClient, Failure> {
        if let Some(c) = self.map().get(key) {
            return Ok(c.clone());
        }
        self.rebuild(key, base, agent)
    }

    /// Builds a new connection for `key` (new timeouts, say) and caches it
    /// in place of the old one.
    pub fn rebuild(
        &self,
        key: &ClientKey,
        base: &TargetOptions,
        agent: &AgentSettings,
    ) -> Result<SharedClient, Failure> {
        let client = host_client_on(base, &key.addr, agent, self.worker_for(&key.addr))?;
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

/// The outcome of one command: the raw reply, or as a `Document`
/// ([`CommandOutcome::into_doc`]) for code that reads a few fields.
#[derive(Debug, Clone)]
pub struct CommandOutcome<T = RawDocumentBuf> {
    pub command: &'static str,
    pub started: SystemTime,
    pub duration: Duration,
    pub result: Result<T, Failure>,
    /// The server's error code when the command failed with one (59 means
    /// the server does not know the command).
    pub code: Option<i32>,
}

impl CommandOutcome {
    /// The reply as a `Document`: for discovery, `check` and the small
    /// replies the monitor reads fields of (never for sampled ones).
    pub fn into_doc(self) -> CommandOutcome<Document> {
        let command = self.command;
        CommandOutcome {
            command,
            started: self.started,
            duration: self.duration,
            result: self.result.and_then(|r| {
                r.to_document().map_err(|e| Failure {
                    kind: "bad_reply",
                    command,
                    message: format!("{command}: the reply is not valid BSON: {e}"),
                })
            }),
            code: self.code,
        }
    }
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
    let mut code = None;
    let result = match client.command(db, cmd, timeout).await {
        Ok(raw) => Ok(raw),
        Err(e) => {
            code = e.code;
            Err(classify(name, &e))
        }
    };
    CommandOutcome {
        command: name,
        started,
        duration: clock.elapsed(),
        result,
        code,
    }
}

/// A connection's error as a [`Failure`] of `command`, one line, bounded.
pub fn classify(command: &'static str, e: &ConnError) -> Failure {
    let message: String = e.message.split_whitespace().collect::<Vec<_>>().join(" ");
    Failure {
        kind: e.kind,
        command,
        message: truncate(&message, 400),
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
