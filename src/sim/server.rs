//! Runtime of the simulator: one listener per simulated host, connection
//! tasks that decode requests, apply faults and answer through `commands`, the
//! timeline of scripted events, the HTTP/JSON control endpoint and the
//! [`SimHandle`] control API. Everything runs on a dedicated thread with its
//! own single-threaded tokio runtime so the agent can embed it in-process.

use super::commands::{self, ConnCtx};
use super::state::{Effect, HostCounters, HostId, HostKind, World};
use super::topology::FrameFault;
use super::topology::{parse_loopback, Action, Topology};
use super::SimError;
use crate::wire::frame::{self as wire, Framing, WireError};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Listener state of one host, broadcast to its listener and connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostSignal {
    up: bool,
    epoch: u64,
    retired: bool,
}

/// Socket side of one host.
struct HostIo {
    /// A freshly bound listener waiting for the listener task to adopt it.
    slot: Mutex<Option<std::net::TcpListener>>,
    state: watch::Sender<HostSignal>,
}

struct Shared {
    world: Mutex<World>,
    io: Mutex<Vec<Arc<HostIo>>>,
    topo: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    rt: tokio::runtime::Handle,
    /// Timeline events that could not be applied (there is no logger here).
    event_errors: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole simulator down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Public description of a simulated host.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HostInfo {
    /// Listening address.
    pub addr: SocketAddr,
    /// "standalone", "primary", "secondary", "arbiter", "removed" or "mongos".
    pub role: String,
    /// Replica set name for members.
    pub set: Option<String>,
    /// Sharded cluster name for shard/config members and mongos.
    pub cluster: Option<String>,
    /// Server version.
    pub version: String,
    /// Listener open.
    pub up: bool,
}

/// Entry point.
pub struct Simulator;

impl Simulator {
    /// Validates the topology, binds every listener, and starts serving on a
    /// dedicated thread. Returns once all listeners accept connections.
    pub fn start(topology: Topology) -> Result<SimHandle, SimError> {
        // 10,000 hosts need 10,000 listeners plus their connections.
        let _ = crate::daemon::raise_nofile_limit();
        let mut world = World::build(&topology)?;
        let mut listeners = Vec::with_capacity(world.hosts.len());
        for id in 0..world.hosts.len() {
            let l = bind(world.hosts[id].addr)?;
            let addr = l
                .local_addr()
                .map_err(|e| SimError::Bind(world.hosts[id].addr, e))?;
            world.set_bound_addr(id, addr);
            listeners.push(l);
        }
        let control = match topology.simulator.control_addr() {
            Some(a) => {
                let addr = parse_loopback(a).map_err(SimError::Config)?;
                Some(bind(addr)?)
            }
            None => None,
        };
        let control_addr = control.as_ref().and_then(|l| l.local_addr().ok());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let (shutdown, _) = watch::channel(false);
        let (topo, _) = watch::channel(0u64);
        let io: Vec<Arc<HostIo>> = listeners
            .into_iter()
            .map(|l| {
                Arc::new(HostIo {
                    slot: Mutex::new(Some(l)),
                    state: watch::channel(HostSignal {
                        up: true,
                        epoch: 0,
                        retired: false,
                    })
                    .0,
                })
            })
            .collect();
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            io: Mutex::new(io),
            topo,
            shutdown,
            rt: rt.handle().clone(),
            event_errors: Mutex::new(Vec::new()),
        });
        let events = topology.events.clone();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mongo-sim".into())
            .spawn(move || {
                rt.block_on(async move {
                    let n = lock(&sh.io).len();
                    for id in 0..n {
                        spawn_listener(&sh, id);
                    }
                    if let Some(l) = control {
                        if let Ok(l) = l
                            .set_nonblocking(true)
                            .and_then(|_| TcpListener::from_std(l))
                        {
                            tokio::spawn(control_endpoint(sh.clone(), l));
                        }
                    }
                    tokio::spawn(timeline(sh.clone(), events));
                    let mut stop = sh.shutdown.subscribe();
                    while !*stop.borrow_and_update() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                });
                // Dropping the runtime cancels every task and closes every socket.
                drop(rt);
            })
            .map_err(SimError::Runtime)?;
        Ok(SimHandle {
            shared,
            thread: Some(thread),
            control_addr,
        })
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, SimError> {
    // std sets SO_REUSEADDR on Unix, so a host can come back up while old
    // connections sit in TIME_WAIT.
    let l = std::net::TcpListener::bind(addr).map_err(|e| SimError::Bind(addr, e))?;
    l.set_nonblocking(true)
        .map_err(|e| SimError::Bind(addr, e))?;
    Ok(l)
}

/// Bind with retries: after a `Close` the old listener is dropped by its task
/// a moment later, so the port may still be busy for a few milliseconds.
fn bind_retry(addr: SocketAddr) -> Result<std::net::TcpListener, SimError> {
    let mut last = None;
    for _ in 0..200 {
        match bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    Err(last.unwrap_or_else(|| SimError::Config(format!("cannot bind {addr}"))))
}

fn spawn_listener(sh: &Arc<Shared>, id: HostId) {
    let io = lock(&sh.io).get(id).cloned();
    if let Some(io) = io {
        sh.rt.spawn(listener_task(sh.clone(), id, io));
    }
}

async fn listener_task(sh: Arc<Shared>, id: HostId, io: Arc<HostIo>) {
    let mut rx = io.state.subscribe();
    let mut stop = sh.shutdown.subscribe();
    loop {
        let sig = *rx.borrow_and_update();
        if sig.retired || *stop.borrow() {
            return;
        }
        let pending = if sig.up { lock(&io.slot).take() } else { None };
        if let Some(l) = pending {
            if let Ok(listener) = TcpListener::from_std(l) {
                loop {
                    tokio::select! {
                        r = listener.accept() => match r {
                            Ok((stream, _)) => {
                                tokio::spawn(connection(sh.clone(), id, stream, io.clone(), sig.epoch));
                            }
                            // EMFILE and friends: back off instead of spinning.
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        },
                        r = rx.changed() => { if r.is_err() { return; } break; }
                        _ = stop.changed() => return,
                    }
                }
                continue;
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// Decrements the open-connection gauge whatever way the task ends.
struct ConnGuard(Arc<super::state::HostCounters>);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.conns_current.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Snapshot of the faults that affect the transport.
struct Transport {
    hang: bool,
    latency: Duration,
    reset: bool,
    malformed: bool,
    frame: Option<FrameFault>,
}

async fn connection(sh: Arc<Shared>, id: HostId, stream: TcpStream, io: Arc<HostIo>, epoch: u64) {
    let _ = stream.set_nodelay(true);
    let counters = lock(&sh.world).hosts[id].counters.clone();
    counters.conns_current.fetch_add(1, Ordering::Relaxed);
    counters.conns_created.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(counters.clone());
    let conn_id = counters.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
    let mut ctx = ConnCtx {
        host: id,
        conn_id,
        auth_user: None,
        conversation: None,
        compressors: Vec::new(),
    };
    let mut state = io.state.subscribe();
    let mut stop = sh.shutdown.subscribe();
    let (mut rd, mut wr) = stream.into_split();
    let mut reply_id: i32 = 1;
    loop {
        let msg = tokio::select! {
            m = wire::read_message(&mut rd) => m,
            _ = state.changed() => {
                let s = *state.borrow();
                if !s.up || s.retired || s.epoch != epoch { return; }
                continue;
            }
            _ = stop.changed() => return,
        };
        let (header, body) = match msg {
            Ok(m) => m,
            // EOF, bad length: mongod closes the connection.
            Err(_) => return,
        };
        counters
            .bytes_in
            .fetch_add(header.length as u64, Ordering::Relaxed);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let compressed = if header.op_code == wire::OP_COMPRESSED {
            body.get(8)
                .and_then(|id| ctx.compressors.iter().copied().find(|c| c.id() == *id))
        } else {
            None
        };
        if let Some(c) = compressed {
            counters.compressed_requests.fetch_add(1, Ordering::Relaxed);
            counters
                .last_compressor
                .store(c.id() as u64, Ordering::Relaxed);
        }
        let req = match wire::decode_request_with(header, &body, &ctx.compressors) {
            Ok(r) => r,
            Err(e @ (WireError::Malformed(_) | WireError::Checksum))
                if header.op_code == wire::OP_MSG =>
            {
                let code = if matches!(e, WireError::Checksum) {
                    2
                } else {
                    22
                };
                let name = if code == 22 {
                    "InvalidBSON"
                } else {
                    "BadValue"
                };
                let mut d = commands::error_doc(code, &e.to_string());
                d.insert("codeName", name);
                let bytes = bson::to_vec(&d).unwrap_or_default();
                let out = wire::encode_op_msg(reply_id, header.request_id, 0, &bytes);
                reply_id = reply_id.wrapping_add(1);
                if wr.write_all(&out).await.is_err() {
                    return;
                }
                continue;
            }
            // OP_COMPRESSED (never negotiated), unknown opcodes, broken OP_QUERY: close.
            Err(_) => return,
        };
        // Awaitable hello with exhaustAllowed: like mongod 4.4+, answer with
        // moreToCome and keep streaming a reply per topology change (or per
        // maxAwaitTimeMS) without further requests.
        let more_to_come = req.more_to_come();
        let framing = req.framing;
        let mut cmd = req.command;
        // 5.1 and newer answer OP_QUERY only for the handshake.
        if framing == Framing::Query {
            let v = lock(&sh.world).hosts[id].version.clone();
            let name = cmd.keys().next().map(|k| k.to_ascii_lowercase());
            if v.at_least(5, 1) && !matches!(name.as_deref(), Some("hello") | Some("ismaster")) {
                let mut d = commands::error_doc(
                    352,
                    &format!(
                        "Unsupported OP_QUERY command: {}. The client driver may require an upgrade.",
                        name.unwrap_or_default()
                    ),
                );
                d.insert("codeName", "UnsupportedOpQueryCommand");
                let bytes = bson::to_vec(&d).unwrap_or_default();
                let out = wire::encode_op_reply(reply_id, header.request_id, &bytes);
                reply_id = reply_id.wrapping_add(1);
                if wr.write_all(&out).await.is_err() {
                    return;
                }
                continue;
            }
        }
        let exhaust = matches!(framing, Framing::Msg { flags } if flags & wire::FLAG_EXHAUST_ALLOWED != 0)
            && is_awaitable_hello(&cmd);
        let mut response_to = header.request_id;
        loop {
            let tr = {
                let w = lock(&sh.world);
                let f = &w.hosts[id].faults;
                Transport {
                    hang: f.hang,
                    latency: f.latency,
                    reset: f.reset_mid_reply,
                    malformed: f.malformed_reply,
                    frame: f.frame,
                }
            };
            if tr.hang {
                break;
            }
            tokio::select! {
                _ = maybe_await_hello(&sh, id, &cmd) => {}
                _ = state.changed() => {
                    let s = *state.borrow();
                    if !s.up || s.retired || s.epoch != epoch { return; }
                }
                _ = stop.changed() => return,
            }
            if !tr.latency.is_zero() {
                tokio::time::sleep(tr.latency).await;
            }
            let reply = {
                let w = lock(&sh.world);
                if !w.hosts[id].up {
                    return;
                }
                commands::dispatch(&w, &mut ctx, &cmd)
            };
            counters.commands.fetch_add(1, Ordering::Relaxed);
            // A conversation starts with saslStart, or inside the handshake
            // (hello's speculativeAuthenticate), as drivers do since 4.4.
            if cmd
                .keys()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("saslStart"))
                || cmd.contains_key("speculativeAuthenticate")
            {
                counters.auth_handshakes.fetch_add(1, Ordering::Relaxed);
            }
            if more_to_come {
                break;
            }
            let this_id = reply_id;
            reply_id = reply_id.wrapping_add(1);
            let stream_on = exhaust;
            let out = match framing {
                Framing::Msg { .. } => {
                    let flags = if stream_on {
                        wire::FLAG_MORE_TO_COME
                    } else {
                        0
                    };
                    wire::encode_op_msg(this_id, response_to, flags, &reply)
                }
                Framing::Query => wire::encode_op_reply(this_id, response_to, &reply),
            };
            // mongod answers a compressed request compressed.
            let out = match compressed {
                Some(c) => wire::compress(&out, c),
                None => out,
            };
            if let Some(fault) = tr.frame {
                let bad = broken_frame(fault, this_id, response_to, &reply, &out);
                let _ = wr.write_all(&bad).await;
                let _ = wr.flush().await;
                if matches!(fault, FrameFault::Oversized) {
                    // Keep the socket open: the client must not wait for 60 MB.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                return;
            }
            if tr.malformed {
                // Valid header, body that is not BSON: drivers must fail this reply.
                let mut bad = wire::encode_op_msg(this_id, response_to, 0, &[0xff; 12]);
                bad[20] = 0;
                let _ = wr.write_all(&bad).await;
                return;
            }
            if tr.reset {
                let _ = wr.write_all(&out[..out.len() / 2]).await;
                let _ = wr.flush().await;
                if let Ok(stream) = rd.reunite(wr) {
                    reset(stream);
                }
                return;
            }
            if wr.write_all(&out).await.is_err() {
                return;
            }
            counters
                .bytes_out
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            if !stream_on {
                break;
            }
            // Next streamed reply: answers our previous reply and waits on the
            // topologyVersion we just sent.
            response_to = this_id;
            match bson::Document::from_reader(reply.as_slice())
                .ok()
                .and_then(|d| d.get_document("topologyVersion").ok().cloned())
            {
                Some(tv) => {
                    cmd.insert("topologyVersion", tv);
                }
                None => break,
            }
        }
    }
}

/// The bytes of a reply broken as `fault` says (`reply` is the encoded
/// document, `whole` the correct message).
fn broken_frame(
    fault: FrameFault,
    id: i32,
    response_to: i32,
    reply: &[u8],
    whole: &[u8],
) -> Vec<u8> {
    match fault {
        FrameFault::None => whole.to_vec(),
        FrameFault::CloseMidReply => whole[..whole.len() / 2].to_vec(),
        FrameFault::Truncated => {
            let mut m = wire::encode_op_msg(id, response_to, 0, reply);
            let short = (m.len() - reply.len() / 2) as i32;
            m[0..4].copy_from_slice(&short.to_le_bytes());
            m.truncate(short as usize);
            m
        }
        FrameFault::Oversized => {
            let mut m = wire::encode_op_msg(id, response_to, 0, reply);
            m[0..4].copy_from_slice(&60_000_000i32.to_le_bytes());
            m.truncate(64);
            m
        }
        FrameFault::WrongResponseTo => {
            wire::encode_op_msg(id, response_to.wrapping_add(1000), 0, reply)
        }
        FrameFault::BadChecksum => {
            let mut m = wire::encode_op_msg(id, response_to, wire::FLAG_CHECKSUM_PRESENT, reply);
            let len = (m.len() + 4) as i32;
            m[0..4].copy_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
            m
        }
        FrameFault::InvalidBson => {
            // {ok: 1.0, s: {x: <type 0x20, unknown>}}: every length is right.
            let inner: Vec<u8> = {
                let mut d = vec![0, 0, 0, 0, 0x20, b'x', 0, 0];
                let l = d.len() as i32;
                d[0..4].copy_from_slice(&l.to_le_bytes());
                d
            };
            let mut doc = vec![0, 0, 0, 0];
            doc.push(0x01);
            doc.extend_from_slice(b"ok\0");
            doc.extend_from_slice(&1.0f64.to_le_bytes());
            doc.push(0x03);
            doc.extend_from_slice(b"s\0");
            doc.extend_from_slice(&inner);
            doc.push(0);
            let l = doc.len() as i32;
            doc[0..4].copy_from_slice(&l.to_le_bytes());
            wire::encode_op_msg(id, response_to, 0, &doc)
        }
        FrameFault::UnnegotiatedCompression => wire::compress(
            &wire::encode_op_msg(id, response_to, 0, reply),
            crate::wire::compress::Compressor::Zlib { level: 1 },
        ),
    }
}

fn is_awaitable_hello(cmd: &bson::Document) -> bool {
    let name = cmd.keys().next().map(|k| k.to_ascii_lowercase());
    matches!(name.as_deref(), Some("hello") | Some("ismaster"))
        && cmd.contains_key("maxAwaitTimeMS")
        && cmd.contains_key("topologyVersion")
}

/// Closes with RST (SO_LINGER 0) so the peer sees "connection reset".
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is a live socket owned by `stream`; the struct outlives the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &lg as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Awaitable hello (4.4+): when the client's topologyVersion is current, wait
/// for a topology change or maxAwaitTimeMS before answering.
async fn maybe_await_hello(sh: &Arc<Shared>, id: HostId, cmd: &bson::Document) {
    let Some(first) = cmd.keys().next() else {
        return;
    };
    let lower = first.to_ascii_lowercase();
    if lower != "hello" && lower != "ismaster" {
        return;
    }
    let max_await = match cmd.get("maxAwaitTimeMS") {
        Some(bson::Bson::Int32(n)) => *n as u64,
        Some(bson::Bson::Int64(n)) => *n as u64,
        Some(bson::Bson::Double(n)) => *n as u64,
        _ => return,
    };
    let Ok(tv) = cmd.get_document("topologyVersion") else {
        return;
    };
    let mut rx = sh.topo.subscribe();
    {
        let w = lock(&sh.world);
        let h = &w.hosts[id];
        let same = tv.get_object_id("processId").ok() == Some(h.process_id)
            && tv.get_i64("counter").ok() == Some(h.tv_counter);
        if !same || !h.version.at_least(4, 4) {
            return;
        }
        rx.borrow_and_update();
    }
    let deadline = Duration::from_millis(max_await.min(60_000));
    let _ = tokio::time::timeout(deadline, rx.changed()).await;
}

/// Handle to a running simulator: addresses, control API, shutdown.
pub struct SimHandle {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    control_addr: Option<SocketAddr>,
}

impl SimHandle {
    /// Every host (retired ones excluded).
    pub fn hosts(&self) -> Vec<HostInfo> {
        host_infos(&lock(&self.shared.world))
    }

    /// Each live host's counters (connections, bytes, commands, SCRAM
    /// handshakes), for benches that measure what a monitoring agent costs
    /// the servers.
    pub fn counters(&self) -> Vec<(SocketAddr, Arc<HostCounters>)> {
        let w = lock(&self.shared.world);
        w.hosts
            .iter()
            .filter(|h| h.alive)
            .map(|h| (h.addr, h.counters.clone()))
            .collect()
    }

    /// Server-side totals over the live hosts.
    pub fn totals(&self) -> Totals {
        totals(&lock(&self.shared.world))
    }

    /// Members of a replica set (config order), shards and config servers included.
    pub fn set_members(&self, set: &str) -> Vec<SocketAddr> {
        let w = lock(&self.shared.world);
        match w.set_id(set) {
            Ok(si) => w.sets[si]
                .members
                .iter()
                .map(|m| w.hosts[m.host].addr)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Current primary of a replica set.
    pub fn primary(&self, set: &str) -> Option<SocketAddr> {
        let w = lock(&self.shared.world);
        let si = w.set_id(set).ok()?;
        w.sets[si].primary.map(|p| w.hosts[p].addr)
    }

    /// mongos addresses of a sharded cluster.
    pub fn mongos(&self, cluster: &str) -> Vec<SocketAddr> {
        let w = lock(&self.shared.world);
        w.clusters
            .iter()
            .filter(|c| c.name == cluster)
            .flat_map(|c| c.mongos.iter().map(|&m| w.hosts[m].addr))
            .collect()
    }

    /// Standalone addresses.
    pub fn standalones(&self) -> Vec<SocketAddr> {
        let w = lock(&self.shared.world);
        w.hosts
            .iter()
            .filter(|h| h.alive && h.kind == HostKind::Standalone)
            .map(|h| h.addr)
            .collect()
    }

    /// HTTP control endpoint address, if enabled.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// Number of open connections on a host, as serverStatus reports it.
    pub fn open_connections(&self, addr: SocketAddr) -> Option<i64> {
        let w = lock(&self.shared.world);
        let id = w.host_id(&addr.to_string()).ok()?;
        Some(w.hosts[id].counters.conns_current.load(Ordering::Relaxed))
    }

    /// Applies a fault or topology change. Blocking for at most ~1 s (re-binding
    /// a listener); call it from a blocking context or another thread.
    pub fn apply(&self, action: Action) -> Result<(), SimError> {
        apply(&self.shared, &action)
    }

    /// Timeline events that failed (unknown host or set, impossible change).
    pub fn event_errors(&self) -> Vec<String> {
        lock(&self.shared.event_errors).clone()
    }

    /// Shorthand for [`Action::Down`].
    pub fn host_down(&self, addr: SocketAddr) -> Result<(), SimError> {
        self.apply(Action::Down {
            host: addr.to_string(),
        })
    }

    /// Shorthand for [`Action::Up`].
    pub fn host_up(&self, addr: SocketAddr) -> Result<(), SimError> {
        self.apply(Action::Up {
            host: addr.to_string(),
        })
    }

    /// Shorthand for [`Action::StepDown`].
    pub fn step_down(&self, set: &str) -> Result<(), SimError> {
        self.apply(Action::StepDown {
            set: set.to_string(),
            new_primary: None,
        })
    }

    /// Stops serving and joins the simulator thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.shared.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the live hosts answered, summed (`mongomon bench` reads it, in
/// process or through GET /counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Totals {
    pub commands: u64,
    /// Both directions.
    pub bytes: u64,
    pub connections: u64,
    pub authentications: u64,
}

fn totals(w: &World) -> Totals {
    let mut t = Totals::default();
    for h in w.hosts.iter().filter(|h| h.alive) {
        let c = &h.counters;
        t.commands += HostCounters::get(&c.commands);
        t.bytes += HostCounters::get(&c.bytes_in) + HostCounters::get(&c.bytes_out);
        t.connections += HostCounters::get(&c.conns_created);
        t.authentications += HostCounters::get(&c.auth_handshakes);
    }
    t
}

fn host_infos(w: &World) -> Vec<HostInfo> {
    w.hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.alive)
        .map(|(id, h)| {
            let (role, set, cluster) = match h.kind {
                HostKind::Standalone => ("standalone".to_string(), None, None),
                HostKind::Mongos { cluster } => (
                    "mongos".to_string(),
                    None,
                    Some(w.clusters[cluster].name.clone()),
                ),
                HostKind::Member { set } => {
                    let s = &w.sets[set];
                    (
                        w.member_state(id).1.to_ascii_lowercase(),
                        Some(s.name.clone()),
                        s.cluster.map(|c| w.clusters[c].name.clone()),
                    )
                }
            };
            HostInfo {
                addr: h.addr,
                role,
                set,
                cluster,
                version: h.version.text.clone(),
                up: h.up,
            }
        })
        .collect()
}

fn apply(sh: &Arc<Shared>, action: &Action) -> Result<(), SimError> {
    let mut w = lock(&sh.world);
    // Resolve aliases before the change (e.g. "primary:rs0" moves on Down).
    let down_addr = match action {
        Action::Down { host } => w.host_id(host).ok().map(|id| w.hosts[id].addr),
        _ => None,
    };
    let effects = w.apply(action)?;
    let mut result = Ok(());
    for e in effects {
        match e {
            Effect::Listen(id) => {
                let l = match bind_retry(w.hosts[id].addr) {
                    Ok(l) => l,
                    Err(err) => {
                        result = Err(err);
                        continue;
                    }
                };
                if let Ok(a) = l.local_addr() {
                    w.set_bound_addr(id, a);
                }
                let mut io = lock(&sh.io);
                if let Some(hio) = io.get(id).cloned() {
                    *lock(&hio.slot) = Some(l);
                    hio.state.send_modify(|s| {
                        s.up = true;
                        s.epoch += 1;
                    });
                } else {
                    io.push(Arc::new(HostIo {
                        slot: Mutex::new(Some(l)),
                        state: watch::channel(HostSignal {
                            up: true,
                            epoch: 0,
                            retired: false,
                        })
                        .0,
                    }));
                    drop(io);
                    spawn_listener(sh, id);
                }
            }
            Effect::Close(id) | Effect::Retire(id) => {
                let retired = matches!(e, Effect::Retire(_));
                if let Some(hio) = lock(&sh.io).get(id) {
                    lock(&hio.slot).take();
                    hio.state.send_modify(|s| {
                        s.up = false;
                        s.epoch += 1;
                        s.retired = retired;
                    });
                }
            }
        }
    }
    let generation = w.generation;
    drop(w);
    sh.topo.send_replace(generation);
    // Give the listener task a moment to drop the socket so that "down"
    // really refuses connections when this call returns.
    if let Some(addr) = down_addr {
        wait_closed(sh, addr);
    }
    result
}

/// After `Down`, wait (bounded) until the port refuses connections.
fn wait_closed(sh: &Arc<Shared>, addr: SocketAddr) {
    if std::thread::current().name() == Some("mongo-sim")
        || tokio::runtime::Handle::try_current()
            .map(|h| h.id() == sh.rt.id())
            .unwrap_or(false)
    {
        return;
    }
    for _ in 0..200 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
            Err(_) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

async fn timeline(sh: Arc<Shared>, mut events: Vec<super::topology::TimedEvent>) {
    events.sort_by(|a, b| a.at_secs.total_cmp(&b.at_secs));
    let start = tokio::time::Instant::now();
    for ev in events {
        tokio::time::sleep_until(start + Duration::from_secs_f64(ev.at_secs)).await;
        let sh2 = sh.clone();
        let action = ev.action.clone();
        let res = tokio::task::spawn_blocking(move || apply(&sh2, &action)).await;
        if let Ok(Err(e)) = res {
            lock(&sh.event_errors)
                .push(format!("event at {} s ({:?}): {e}", ev.at_secs, ev.action));
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP/JSON control endpoint: GET /hosts, POST /action (an `Action` as JSON).
// ---------------------------------------------------------------------------

async fn control_endpoint(sh: Arc<Shared>, l: TcpListener) {
    loop {
        let Ok((stream, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        tokio::spawn(control_conn(sh.clone(), stream));
    }
}

async fn control_conn(sh: Arc<Shared>, mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Bounded read: headers and body must fit in 64 KiB and arrive within 5 s.
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 65_536 {
                return None;
            }
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                            .map(|(_, v)| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() >= pos + 4 + len {
                    return Some((head, buf[pos + 4..pos + 4 + len].to_vec()));
                }
            }
        }
    };
    let Ok(Some((head, body))) = tokio::time::timeout(Duration::from_secs(5), read).await else {
        return;
    };
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (status, json) = match (method.as_str(), path.as_str()) {
        ("GET", "/hosts") => (
            200,
            serde_json::to_string(&host_infos(&lock(&sh.world))).unwrap_or_default(),
        ),
        ("GET", "/counters") => {
            let t = totals(&lock(&sh.world));
            (
                200,
                serde_json::json!({"commands": t.commands, "bytes": t.bytes, "connections": t.connections, "authentications": t.authentications})
                    .to_string(),
            )
        }
        ("POST", "/action") => match serde_json::from_slice::<Action>(&body) {
            Ok(action) => {
                let sh2 = sh.clone();
                match tokio::task::spawn_blocking(move || apply(&sh2, &action)).await {
                    Ok(Ok(())) => (200, r#"{"ok":true}"#.to_string()),
                    Ok(Err(e)) => (
                        400,
                        serde_json::json!({"ok": false, "error": e.to_string()}).to_string(),
                    ),
                    Err(_) => (500, r#"{"ok":false,"error":"internal error"}"#.to_string()),
                }
            }
            Err(e) => (
                400,
                serde_json::json!({"ok": false, "error": format!("invalid action: {e}")})
                    .to_string(),
            ),
        },
        _ => (
            404,
            r#"{"ok":false,"error":"use GET /hosts, GET /counters or POST /action"}"#.to_string(),
        ),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}
