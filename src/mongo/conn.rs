//! The agent's own MongoDB connection: one socket per host for everything
//! the agent sends it (the monitor's rounds, discovery's probes, `check`),
//! replies kept as raw BSON.
//!
//! Why not the driver: its `Client` holds two sockets, four tasks and a
//! 500 ms pool tick per host, builds a `Document` from every reply and
//! refuses servers older than 4.4. The agent sends a handful of read-only
//! commands, one at a time, to each host; this is exactly that and no more.
//!
//! A [`Conn`] opens its socket on first use and keeps it. A failed open is
//! retried with capped exponential backoff: between attempts a dead host
//! costs nothing, and its callers get the last error at once. A socket that
//! fails mid-command (or whose command timed out, leaving its stream in an
//! unknown place) is dropped and the next command opens a new one.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bson::{doc, Bson, Document, RawDocument, RawDocumentBuf};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::auth::{self, Credential};
use super::tls::{self, TlsSpec};
use crate::wire::compress::Compressor;
use crate::wire::frame::{self, WireError};

/// What every host of one target connects with.
#[derive(Debug, Clone)]
pub struct ConnSpec {
    pub tls: Option<TlsSpec>,
    pub credential: Option<Credential>,
    /// `appName` in the handshake's client metadata (server logs, currentOp).
    pub app_name: String,
    /// Offered in this order; the first the server accepts is used.
    pub compressors: Vec<Compressor>,
}

/// Why a command failed, with the kind the `mongodb_up` series is labelled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnError {
    /// `unreachable`, `dns`, `tls`, `auth`, `network`, `bad_reply`,
    /// `timeout`, `command`, `other`.
    pub kind: &'static str,
    pub message: String,
    /// The server's error code, for command errors.
    pub code: Option<i32>,
}

impl ConnError {
    fn new(kind: &'static str, message: impl Into<String>) -> ConnError {
        ConnError {
            kind,
            message: message.into(),
            code: None,
        }
    }
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Commands that must travel uncompressed (the handshake and logins).
const NEVER_COMPRESSED: [&str; 7] = [
    "hello",
    "ismaster",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "authenticate",
    "createuser",
];

/// A TCP stream, with or without TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open, handshaken, authenticated socket and its buffers.
pub struct Io {
    stream: Stream,
    compressor: Option<Compressor>,
    next_id: i32,
    wbuf: Vec<u8>,
    max_message: usize,
}

impl Io {
    fn new(stream: Stream) -> Io {
        Io {
            stream,
            compressor: None,
            next_id: 1,
            wbuf: Vec::with_capacity(512),
            max_message: frame::MAX_MESSAGE_SIZE,
        }
    }

    fn request_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Sends what is in `wbuf` and reads the reply to `id`.
    async fn round_trip(&mut self, id: i32) -> Result<RawDocumentBuf, ConnError> {
        self.stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| io_error(&e, "sending failed"))?;
        let mut body = Vec::new();
        let header = frame::read_message_into(&mut self.stream, &mut body)
            .await
            .map_err(wire_error)?;
        if header.length as usize > self.max_message {
            return Err(ConnError::new(
                "bad_reply",
                format!(
                    "reply of {} bytes is above the server's own maxMessageSizeBytes {}",
                    header.length, self.max_message
                ),
            ));
        }
        let compressors: &[Compressor] = match &self.compressor {
            Some(c) => std::slice::from_ref(c),
            None => &[],
        };
        frame::parse_reply(header, body, id, compressors).map_err(wire_error)
    }

    /// Runs `cmd` on `db` (OP_MSG; compressed when negotiated and allowed)
    /// and returns its reply when `ok` is 1.
    pub async fn command(
        &mut self,
        db: &str,
        mut cmd: Document,
        compress: bool,
    ) -> Result<RawDocumentBuf, ConnError> {
        let name = cmd.keys().next().map(|k| k.to_ascii_lowercase());
        cmd.insert("$db", db);
        let body = bson::to_vec(&cmd)
            .map_err(|e| ConnError::new("other", format!("cannot encode the command: {e}")))?;
        let id = self.request_id();
        frame::encode_command(&mut self.wbuf, id, &body, false);
        if let Some(c) = self.compressor.filter(|_| compress) {
            if !name.is_some_and(|n| NEVER_COMPRESSED.contains(&n.as_str())) {
                self.wbuf = frame::compress(&self.wbuf, c);
            }
        }
        let reply = self.round_trip(id).await?;
        check_ok(reply)
    }

    /// The first handshake, as OP_QUERY: the one message every server from
    /// 3.6 to 8.0 answers before anything is known about it.
    async fn legacy_hello(&mut self, cmd: &Document) -> Result<RawDocumentBuf, ConnError> {
        let body = bson::to_vec(cmd)
            .map_err(|e| ConnError::new("other", format!("cannot encode the handshake: {e}")))?;
        let id = self.request_id();
        frame::encode_query_command(&mut self.wbuf, id, "admin", &body);
        let reply = self.round_trip(id).await?;
        check_ok(reply)
    }
}

/// A transport error; a TLS alert the server sent after the handshake (it
/// refused our client certificate, say) is `tls`, not `network`.
fn io_error(e: &io::Error, what: &str) -> ConnError {
    let tls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    ConnError::new(if tls { "tls" } else { "network" }, format!("{what}: {e}"))
}

fn wire_error(e: WireError) -> ConnError {
    match e {
        WireError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            ConnError::new("network", "the server closed the connection mid-reply")
        }
        WireError::Io(e) => io_error(&e, "connection lost"),
        other => ConnError::new("bad_reply", other.to_string()),
    }
}

/// Turns a reply with `ok: 0` into the command's error.
fn check_ok(reply: RawDocumentBuf) -> Result<RawDocumentBuf, ConnError> {
    let ok = match reply.get("ok") {
        Ok(Some(v)) => match v {
            bson::RawBsonRef::Double(f) => f == 1.0,
            bson::RawBsonRef::Int32(i) => i == 1,
            bson::RawBsonRef::Int64(i) => i == 1,
            bson::RawBsonRef::Boolean(b) => b,
            _ => false,
        },
        _ => false,
    };
    if ok {
        return Ok(reply);
    }
    let code = reply.get_i32("code").ok();
    let name = reply.get_str("codeName").unwrap_or("");
    let msg = reply.get_str("errmsg").unwrap_or("no errmsg");
    let kind = if matches!(code, Some(13) | Some(18)) {
        "auth"
    } else {
        "command"
    };
    Err(ConnError {
        kind,
        message: format!("error {} ({name}): {msg}", code.unwrap_or(0)),
        code,
    })
}

/// Counts of what the agent's connections did, process-wide.
#[derive(Debug, Default)]
pub struct ConnCounters {
    pub opened: AtomicU64,
    pub authenticated: AtomicU64,
}

/// Process-wide connection counters (`mongomon bench` reads them).
pub static COUNTERS: ConnCounters = ConnCounters {
    opened: AtomicU64::new(0),
    authenticated: AtomicU64::new(0),
};

struct State {
    io: Option<Io>,
    failures: u32,
    retry_at: Option<Instant>,
    last: Option<ConnError>,
}

struct Inner {
    host: String,
    port: u16,
    /// The worker the socket lives on: every command runs there, whoever
    /// sends it (None: on the caller's runtime, as `check` does).
    home: Option<actix_rt::ArbiterHandle>,
    /// The home worker's thread, learnt at its first command there: a
    /// caller already on it (the host's monitor) runs the command in
    /// place instead of through the worker's queue and a channel.
    home_thread: std::sync::OnceLock<std::thread::ThreadId>,
    spec: Arc<ConnSpec>,
    connect_timeout: Duration,
    backoff_max: Duration,
    state: tokio::sync::Mutex<State>,
}

/// One host's connection, shared (by clone) by everyone who talks to it.
#[derive(Clone)]
pub struct Conn {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn({}:{})", self.inner.host, self.inner.port)
    }
}

/// The first reconnect waits this long, each further one twice as long.
const BACKOFF_START: Duration = Duration::from_millis(100);

impl Conn {
    /// A connection to `host:port`; nothing is opened until the first command.
    pub fn new(
        host: String,
        port: u16,
        home: Option<actix_rt::ArbiterHandle>,
        spec: Arc<ConnSpec>,
        connect_timeout: Duration,
        backoff_max: Duration,
    ) -> Conn {
        Conn {
            inner: Arc::new(Inner {
                host,
                port,
                home,
                home_thread: std::sync::OnceLock::new(),
                spec,
                connect_timeout,
                backoff_max,
                state: tokio::sync::Mutex::new(State {
                    io: None,
                    failures: 0,
                    retry_at: None,
                    last: None,
                }),
            }),
        }
    }

    /// Runs `cmd` on `db` within `timeout` (waiting for the socket, opening
    /// it and the round trip), on the connection's home worker.
    pub async fn command(
        &self,
        db: &str,
        cmd: Document,
        timeout: Duration,
    ) -> Result<RawDocumentBuf, ConnError> {
        let Some(home) = &self.inner.home else {
            return self.command_here(db, cmd, timeout).await;
        };
        if self.inner.home_thread.get() == Some(&std::thread::current().id()) {
            return self.command_here(db, cmd, timeout).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let db = db.to_string();
        let sent = home.spawn(async move {
            let _ = me.inner.home_thread.set(std::thread::current().id());
            let _ = tx.send(me.command_here(&db, cmd, timeout).await);
        });
        if !sent {
            return Err(ConnError::new(
                "other",
                "the connection's worker thread has stopped",
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(ConnError::new(
                "other",
                "the connection's worker thread stopped mid-command",
            ))
        })
    }

    async fn command_here(
        &self,
        db: &str,
        cmd: Document,
        timeout: Duration,
    ) -> Result<RawDocumentBuf, ConnError> {
        let name = cmd.keys().next().cloned().unwrap_or_default();
        match actix_rt::time::timeout(timeout, self.command_inner(db, cmd)).await {
            Ok(r) => r,
            // Dropping the inner future dropped the socket with it: its
            // stream may hold half a reply.
            Err(_) => Err(ConnError::new(
                "timeout",
                format!("{name} did not answer within {} ms", timeout.as_millis()),
            )),
        }
    }

    async fn command_inner(&self, db: &str, cmd: Document) -> Result<RawDocumentBuf, ConnError> {
        let mut st = self.inner.state.lock().await;
        let mut io = match st.io.take() {
            Some(io) => io,
            None => {
                if let (Some(at), Some(last)) = (st.retry_at, &st.last) {
                    let now = Instant::now();
                    if now < at {
                        let mut e = last.clone();
                        e.message = format!(
                            "{} (not retried for another {} ms)",
                            e.message,
                            (at - now).as_millis()
                        );
                        return Err(e);
                    }
                }
                match self.open().await {
                    Ok(io) => {
                        st.failures = 0;
                        st.retry_at = None;
                        st.last = None;
                        io
                    }
                    Err(e) => {
                        st.failures = st.failures.saturating_add(1);
                        let wait = BACKOFF_START
                            .saturating_mul(1 << (st.failures - 1).min(16))
                            .min(self.inner.backoff_max);
                        st.retry_at = Some(Instant::now() + wait);
                        st.last = Some(e.clone());
                        return Err(e);
                    }
                }
            }
        };
        let out = io.command(db, cmd, true).await;
        // A command error leaves the stream in order; only transport and
        // framing failures lose it.
        if out.is_ok() || matches!(&out, Err(e) if e.kind == "command" || e.code.is_some()) {
            st.io = Some(io);
        }
        out
    }

    /// Drops the socket (if any); the next command opens a new one.
    pub async fn close(&self) {
        self.inner.state.lock().await.io = None;
    }

    async fn open(&self) -> Result<Io, ConnError> {
        let i = &self.inner;
        let stream = actix_rt::time::timeout(i.connect_timeout, self.connect())
            .await
            .map_err(|_| {
                ConnError::new(
                    "timeout",
                    format!(
                        "connecting to {}:{} timed out after {} ms",
                        i.host,
                        i.port,
                        i.connect_timeout.as_millis()
                    ),
                )
            })??;
        COUNTERS.opened.fetch_add(1, Ordering::Relaxed);
        let mut io = Io::new(stream);
        let (mut hello, pending) = self.handshake_doc()?;
        let reply = match io.legacy_hello(&hello).await {
            Ok(r) => r,
            // A server that does not take OP_QUERY at all closes the socket
            // or refuses it; say hello again over OP_MSG on a new one.
            Err(e) if e.kind == "network" || e.kind == "bad_reply" || e.code == Some(352) => {
                let stream = actix_rt::time::timeout(i.connect_timeout, self.connect())
                    .await
                    .map_err(|_| e.clone())??;
                io = Io::new(stream);
                hello.remove("isMaster");
                let mut d = doc! {"hello": 1};
                d.extend(hello);
                hello = d;
                io.command("admin", hello, false).await?
            }
            Err(e) => return Err(e),
        };
        let wire = reply.get_i32("maxWireVersion").unwrap_or(0);
        if wire < 6 {
            return Err(ConnError::new(
                "other",
                format!(
                    "the server speaks wire version {wire}; mongomon needs MongoDB 3.6 or newer"
                ),
            ));
        }
        if let Ok(n) = reply.get_i32("maxMessageSizeBytes") {
            if n > 0 {
                io.max_message = (n as usize).min(frame::MAX_MESSAGE_SIZE);
            }
        }
        io.compressor = negotiated(&reply, &i.spec.compressors);
        if let Some(cred) = &i.spec.credential {
            auth::finish(&mut io, cred, pending, &reply).await?;
            COUNTERS.authenticated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(io)
    }

    async fn connect(&self) -> Result<Stream, ConnError> {
        let i = &self.inner;
        let addrs: Vec<_> = tokio::net::lookup_host((i.host.as_str(), i.port))
            .await
            .map_err(|e| ConnError::new("dns", format!("cannot resolve {}: {e}", i.host)))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("{a}: {e}")),
            }
        }
        let Some(tcp) = tcp else {
            return Err(ConnError::new(
                "unreachable",
                last.unwrap_or_else(|| format!("{} resolves to no address", i.host)),
            ));
        };
        let _ = tcp.set_nodelay(true);
        match &i.spec.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(t) => {
                let name = tls::server_name(&i.host).map_err(|m| ConnError::new("tls", m))?;
                let s = tokio_rustls::TlsConnector::from(t.config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        ConnError::new(
                            "tls",
                            format!("TLS handshake with {}:{} failed: {e}", i.host, i.port),
                        )
                    })?;
                Ok(Stream::Tls(Box::new(s)))
            }
        }
    }

    /// The handshake: `isMaster` with the client's metadata, the
    /// compressors on offer and the speculative login.
    fn handshake_doc(&self) -> Result<(Document, auth::Pending), ConnError> {
        let spec = &self.inner.spec;
        let os = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "Darwin",
            "windows" => "Windows",
            other => other,
        };
        let mut d = doc! {
            "isMaster": 1,
            "helloOk": true,
            "client": {
                "application": {"name": spec.app_name.as_str()},
                "driver": {"name": "mongomon", "version": env!("CARGO_PKG_VERSION")},
                "os": {"type": os, "architecture": std::env::consts::ARCH},
                "platform": "Rust",
            },
        };
        if !spec.compressors.is_empty() {
            let names: Vec<Bson> = spec
                .compressors
                .iter()
                .map(|c| Bson::String(c.name().into()))
                .collect();
            d.insert("compression", names);
        }
        let mut pending = auth::Pending::None;
        if let Some(cred) = &spec.credential {
            if let Some(who) = cred.sasl_supported_mechs() {
                d.insert("saslSupportedMechs", who);
            }
            let (spec_doc, p) = auth::speculative(cred)?;
            if let Some(s) = spec_doc {
                d.insert("speculativeAuthenticate", s);
            }
            pending = p;
        }
        Ok((d, pending))
    }
}

/// The first of our compressors that the server's `compression` lists.
fn negotiated(hello: &RawDocument, ours: &[Compressor]) -> Option<Compressor> {
    let theirs = hello.get_array("compression").ok()?;
    let names: Vec<&str> = theirs
        .into_iter()
        .filter_map(|v| v.ok().and_then(|v| v.as_str()))
        .collect();
    ours.iter().copied().find(|c| names.contains(&c.name()))
}
