//! Command handlers: turn a decoded command plus the [`World`] into the reply
//! document a real mongod/mongos of that role and version would send.
//!
//! Replies start from the real captures in `fixtures.rs` where one exists and
//! patch every field that must agree with the simulated topology. Shapes with
//! no capture (hello 4.4+ fields, listShards, config.mongos, oplog entries)
//! follow the MongoDB manual and are marked "derived" in NOTICE.md.

use super::catalog;
use super::fixtures;
use super::state::{now_millis, HostId, HostKind, SetRole, World};
use crate::wire::scram::{client_first_user, Conversation, Mechanism};
use bson::{doc, Bson, DateTime, Document, Timestamp};
use std::sync::OnceLock;

/// Per-connection state the handlers may change.
#[derive(Debug)]
pub struct ConnCtx {
    /// Host the connection belongs to.
    pub host: HostId,
    /// `connectionId` reported by hello.
    pub conn_id: i64,
    /// Authenticated user (`user@db`).
    pub auth_user: Option<String>,
    /// SCRAM conversation in progress.
    pub conversation: Option<Conversation>,
    /// Compressors agreed in this connection's handshake.
    pub compressors: Vec<crate::wire::compress::Compressor>,
}

/// Name of mongod error codes used by the simulator (`codeName`).
pub fn code_name(code: i32) -> &'static str {
    match code {
        1 => "InternalError",
        2 => "BadValue",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        9 => "FailedToParse",
        8 => "UnknownError",
        11 => "UserNotFound",
        13 => "Unauthorized",
        18 => "AuthenticationFailed",
        26 => "NamespaceNotFound",
        43 => "CursorNotFound",
        59 => "CommandNotFound",
        72 => "InvalidOptions",
        76 => "NoReplicationEnabled",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        93 => "InvalidReplicaSetConfig",
        94 => "NotYetInitialized",
        189 => "PrimarySteppedDown",
        10107 => "NotWritablePrimary",
        11600 => "InterruptedAtShutdown",
        11602 => "InterruptedDueToReplStateChange",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        _ => "Location",
    }
}

/// `{ok: 0.0, errmsg, code, codeName}` exactly as mongod shapes errors.
pub fn error_doc(code: i32, errmsg: &str) -> Document {
    let name = code_name(code);
    let name = if name == "Location" {
        format!("Location{code}")
    } else {
        name.to_string()
    };
    doc! { "ok": 0.0, "errmsg": errmsg, "code": code, "codeName": name }
}

fn ts(secs: i64, inc: u32) -> Timestamp {
    Timestamp {
        time: secs.max(0) as u32,
        increment: inc,
    }
}

/// True when the host adds `$clusterTime`/`operationTime` (replica-set data members and mongos).
fn gossips_cluster_time(w: &World, h: HostId) -> bool {
    match w.hosts[h].kind {
        HostKind::Mongos { .. } => true,
        HostKind::Member { .. } => !matches!(w.member_state(h).0, 7 | 10),
        HostKind::Standalone => false,
    }
}

fn append_cluster_time(w: &World, h: HostId, d: &mut Document) {
    if gossips_cluster_time(w, h) {
        let now = now_millis() / 1000;
        d.insert(
            "$clusterTime",
            doc! {
                "clusterTime": ts(now, 1),
                "signature": { "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] }, "keyId": 0i64 },
            },
        );
        d.insert("operationTime", ts(now, 1));
    }
}

/// Removes the reply trailer of a capture (ok, gossip fields) before reuse.
fn strip_trailer(mut d: Document) -> Document {
    for k in [
        "ok",
        "operationTime",
        "lastCommittedOpTime",
        "$clusterTime",
        "$gleStats",
        "$configServerState",
    ] {
        d.remove(k);
    }
    d
}

/// Commands that work before authentication, as on mongod.
fn allowed_unauthenticated(name: &str) -> bool {
    matches!(
        name,
        "hello"
            | "ismaster"
            | "ping"
            | "buildinfo"
            | "saslstart"
            | "saslcontinue"
            | "getnonce"
            | "logout"
            | "authenticate"
    )
}

/// Result of a command: an encoded BSON document.
pub type Encoded = Vec<u8>;

fn enc(d: &Document) -> Encoded {
    bson::to_vec(d).unwrap_or_else(|_| {
        bson::to_vec(&error_doc(1, "failed to encode reply")).unwrap_or_default()
    })
}

/// Handles one command and returns the encoded reply document.
pub fn dispatch(w: &World, ctx: &mut ConnCtx, cmd: &Document) -> Encoded {
    let h = ctx.host;
    let Some(first) = cmd.keys().next() else {
        return enc(&error_doc(59, "no such command: ''"));
    };
    let name = first.to_ascii_lowercase();
    if let Some((code, msg)) = w.hosts[h].faults.command_errors.get(&name) {
        let msg = msg
            .clone()
            .unwrap_or_else(|| format!("simulated failure of {first} ({})", code_name(*code)));
        let mut d = error_doc(*code, &msg);
        append_cluster_time(w, h, &mut d);
        return enc(&d);
    }
    if !w.users.is_empty() && ctx.auth_user.is_none() && !allowed_unauthenticated(&name) {
        let mut d = error_doc(13, &format!("command {first} requires authentication"));
        append_cluster_time(w, h, &mut d);
        return enc(&d);
    }
    if name == "serverstatus" {
        return server_status(w, h, cmd);
    }
    let is_mongos = matches!(w.hosts[h].kind, HostKind::Mongos { .. });
    let reply = match name.as_str() {
        // `hello` arrived in 4.4.2 (and 5.0); older servers only know isMaster.
        "hello" if !w.hosts[h].version.at_least(4, 4) => {
            Err(error_doc(59, "no such command: 'hello'"))
        }
        "hello" => Ok(hello(w, ctx, cmd, true)),
        "ismaster" => Ok(hello(w, ctx, cmd, false)),
        "ping" => Ok(Document::new()),
        "buildinfo" => Ok(build_info(w, h)),
        "hostinfo" => Ok(host_info(w, h)),
        "getcmdlineopts" => Ok(cmd_line_opts(w, h)),
        "replsetgetstatus" if is_mongos => {
            // Real mongos shape (captured 4.0/4.4 shells): info + errmsg, no code.
            Err(
                doc! { "info": "mongos", "ok": 0.0, "errmsg": "replSetGetStatus is not supported through mongos" },
            )
        }
        "replsetgetstatus" => repl_set_get_status(w, h),
        "replsetgetconfig" if !is_mongos => repl_set_get_config(w, h),
        "getshardmap" => get_shard_map(w, h),
        "listshards" if is_mongos => list_shards(w, h),
        "find" => find(w, h, cmd),
        "count" => catalog::count(w, h, cmd),
        "aggregate" => catalog::aggregate(w, h, cmd),
        "listcollections" => catalog::list_collections(w, h, cmd),
        "collstats" => catalog::coll_stats(w, h, cmd),
        // Removed in 5.0 (Telegraf asks 4.x hosts for it, 5.0+ for connPoolStats).
        "shardconnpoolstats" if !w.hosts[h].version.at_least(5, 0) => {
            Ok(shard_conn_pool_stats(w, h))
        }
        "getparameter" => get_parameter(w, h, cmd),
        "getmore" => {
            let id = cmd.get_i64(first).unwrap_or(0);
            Err(error_doc(43, &format!("cursor id {id} not found")))
        }
        "killcursors" => {
            let ids = cmd.get_array("cursors").cloned().unwrap_or_default();
            Ok(
                doc! { "cursorsKilled": [], "cursorsNotFound": ids, "cursorsAlive": [], "cursorsUnknown": [] },
            )
        }
        "dbstats" => Ok(db_stats(w, h, cmd)),
        "listdatabases" => Ok(list_databases(w, h, cmd)),
        "top" if !is_mongos => Ok(strip_trailer(fixtures::cached(fixtures::TOP))),
        "connpoolstats" => Ok(conn_pool_stats(w, h)),
        "getlog" => get_log(w, h, cmd),
        "endsessions" | "logout" => Ok(Document::new()),
        "saslstart" => sasl_start(w, ctx, cmd).map(|(d, _)| d),
        "saslcontinue" => sasl_continue(w, ctx, cmd),
        "getdiagnosticdata" => Ok(diagnostic_data(w, h)),
        _ => Err(error_doc(59, &format!("no such command: '{first}'"))),
    };
    let mut d = match reply {
        Ok(mut d) => {
            d.insert("ok", 1.0);
            d
        }
        Err(e) => e,
    };
    append_cluster_time(w, h, &mut d);
    enc(&d)
}

fn topology_version(w: &World, h: HostId) -> Document {
    doc! { "processId": w.hosts[h].process_id, "counter": w.hosts[h].tv_counter }
}

/// Optime of a member: now minus its lag (primary has none).
fn member_optime(w: &World, set: usize, h: HostId) -> (Timestamp, i64) {
    let s = &w.sets[set];
    let now = now_millis() / 1000;
    let lag = match s.member(h) {
        Some(m) if s.primary != Some(h) => (m.lag_secs + m.delay_secs) as i64,
        _ => 0,
    };
    (ts(now - lag, 1), s.term)
}

fn last_write(w: &World, set: usize, h: HostId) -> Document {
    let (t, term) = member_optime(w, set, h);
    let date = DateTime::from_millis(t.time as i64 * 1000);
    doc! {
        "opTime": { "ts": t, "t": term },
        "lastWriteDate": date,
        "majorityOpTime": { "ts": t, "t": term },
        "majorityWriteDate": date,
    }
}

/// The replica-set part of hello (also used by serverStatus.repl).
fn repl_fields(w: &World, set: usize, h: HostId, writable_key: &str, d: &mut Document) {
    let s = &w.sets[set];
    let addr = |id: HostId| w.hosts[id].addr.to_string();
    let Some(me) = s.member(h) else {
        d.insert(writable_key, false);
        d.insert("secondary", false);
        d.insert("info", "Does not have a valid replica set config");
        d.insert("isreplicaset", true);
        return;
    };
    let visible = |m: &&super::state::MemberState| !m.hidden && !m.arbiter;
    let hosts: Vec<String> = s
        .members
        .iter()
        .filter(visible)
        .filter(|m| m.priority > 0.0)
        .map(|m| addr(m.host))
        .collect();
    let passives: Vec<String> = s
        .members
        .iter()
        .filter(visible)
        .filter(|m| m.priority == 0.0)
        .map(|m| addr(m.host))
        .collect();
    let arbiters: Vec<String> = s
        .members
        .iter()
        .filter(|m| m.arbiter && !m.hidden)
        .map(|m| addr(m.host))
        .collect();
    d.insert("hosts", hosts);
    if !passives.is_empty() {
        d.insert("passives", passives);
    }
    if !arbiters.is_empty() {
        d.insert("arbiters", arbiters);
    }
    d.insert("setName", s.name.clone());
    d.insert("setVersion", s.set_version);
    let is_primary = s.primary == Some(h);
    d.insert(writable_key, is_primary);
    d.insert("secondary", !is_primary && !me.arbiter);
    if let Some(p) = s.primary {
        d.insert("primary", addr(p));
    }
    if me.arbiter {
        d.insert("arbiterOnly", true);
    }
    if !me.arbiter && me.priority == 0.0 && !me.hidden {
        d.insert("passive", true);
    }
    if me.hidden {
        d.insert("hidden", true);
    }
    if !me.tags.is_empty() {
        let tags: Document = me
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Bson::String(v.clone())))
            .collect();
        d.insert("tags", tags);
    }
    d.insert("me", addr(h));
    if is_primary {
        d.insert("electionId", s.election_id());
    }
    if !me.arbiter {
        d.insert("lastWrite", last_write(w, set, h));
    }
}

fn hello(w: &World, ctx: &mut ConnCtx, cmd: &Document, via_hello: bool) -> Document {
    let h = ctx.host;
    let host = &w.hosts[h];
    // 4.4+ answers `hello` with isWritablePrimary; isMaster always says ismaster.
    let key = if via_hello && host.version.at_least(4, 4) {
        "isWritablePrimary"
    } else {
        "ismaster"
    };
    let mut d = Document::new();
    if host.version.at_least(4, 4) {
        d.insert("topologyVersion", topology_version(w, h));
    }
    match host.kind {
        HostKind::Standalone => {
            d.insert(key, true);
        }
        HostKind::Mongos { .. } => {
            d.insert(key, true);
            d.insert("msg", "isdbgrid");
        }
        HostKind::Member { set } => {
            repl_fields(w, set, h, key, &mut d);
            if w.sets[set].role == SetRole::Config && w.sets[set].member(h).is_some() {
                d.insert("configsvr", 2);
            }
        }
    }
    d.insert("maxBsonObjectSize", 16_777_216);
    d.insert("maxMessageSizeBytes", 48_000_000);
    d.insert("maxWriteBatchSize", 100_000);
    d.insert("localTime", DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", 30);
    d.insert("connectionId", ctx.conn_id as i32);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", host.version.max_wire_version());
    d.insert("readOnly", false);
    if cmd.get_bool("helloOk").unwrap_or(false) && host.version.at_least(4, 4) {
        d.insert("helloOk", true);
    }
    if let Ok(who) = cmd.get_str("saslSupportedMechs") {
        if let Some((db, user)) = who.split_once('.') {
            if let Some(u) = w.users.iter().find(|u| u.db == db && u.name == user) {
                let mut mechs: Vec<&str> = u.creds.keys().map(String::as_str).collect();
                mechs.sort();
                d.insert("saslSupportedMechs", mechs);
            }
        }
    }
    if let Ok(offered) = cmd.get_array("compression") {
        // Like mongod: the offered ones it supports, in the client's order
        // (zstd since 4.2), and only in the handshake.
        let zstd = host.version.at_least(4, 2);
        ctx.compressors = offered
            .iter()
            .filter_map(|b| b.as_str())
            .filter_map(|n| crate::wire::compress::Compressor::from_name(n, None))
            .filter(|c| zstd || *c != crate::wire::compress::Compressor::Zstd)
            .collect();
        let names: Vec<&str> = ctx.compressors.iter().map(|c| c.name()).collect();
        d.insert("compression", names);
    }
    if let Ok(spec) = cmd.get_document("speculativeAuthenticate") {
        // Only SCRAM is simulated; an unsupported or failed start just omits the field,
        // which makes the driver fall back to a normal conversation.
        if spec.contains_key("saslStart") {
            if let Ok((reply, _)) = sasl_start(w, ctx, spec) {
                d.insert("speculativeAuthenticate", reply);
            }
        }
    }
    d
}

fn sasl_start(w: &World, ctx: &mut ConnCtx, cmd: &Document) -> Result<(Document, ()), Document> {
    let fail = || error_doc(18, "Authentication failed.");
    let mech_name = cmd.get_str("mechanism").unwrap_or("");
    let Some(mech) = Mechanism::from_name(mech_name) else {
        return Err(error_doc(
            2,
            &format!(
                "Received authentication for mechanism {mech_name} which is unknown or not enabled"
            ),
        ));
    };
    let payload = match cmd.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        Some(Bson::String(s)) => s.clone().into_bytes(),
        _ => return Err(error_doc(2, "saslStart requires a payload")),
    };
    let db = cmd
        .get_str("db")
        .or_else(|_| cmd.get_str("$db"))
        .unwrap_or("admin")
        .to_string();
    let user = client_first_user(&payload).map_err(|_| fail())?;
    let creds = w
        .users
        .iter()
        .find(|u| u.name == user && u.db == db)
        .and_then(|u| u.creds.get(mech.name()).cloned());
    let (mut conv, server_first) =
        Conversation::start(mech, &payload, creds).map_err(|_| fail())?;
    if w.hosts[ctx.host].faults.auth_failure {
        // Make the proof check fail whatever the client sends.
        conv = Conversation::start(mech, &payload, None)
            .map_err(|_| fail())?
            .0;
    }
    ctx.conversation = Some(conv);
    let _ = db;
    Ok((
        doc! { "conversationId": 1, "done": false, "payload": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: server_first } },
        (),
    ))
}

fn sasl_continue(w: &World, ctx: &mut ConnCtx, cmd: &Document) -> Result<Document, Document> {
    let fail = || error_doc(18, "Authentication failed.");
    let payload = match cmd.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        Some(Bson::String(s)) => s.clone().into_bytes(),
        _ => Vec::new(),
    };
    let conv = ctx
        .conversation
        .as_mut()
        .ok_or_else(|| error_doc(17, "No SASL session state found"))?;
    if conv.verified {
        // Final empty round of a conversation that did not skip it.
        ctx.conversation = None;
        return Ok(
            doc! { "conversationId": 1, "done": true, "payload": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![] } },
        );
    }
    let user = conv.user.clone();
    match conv.finish(&payload) {
        Ok(server_final) => {
            if w.hosts[ctx.host].faults.auth_failure {
                ctx.conversation = None;
                return Err(fail());
            }
            let db = w
                .users
                .iter()
                .find(|u| u.name == user)
                .map(|u| u.db.clone())
                .unwrap_or_else(|| "admin".into());
            ctx.auth_user = Some(format!("{user}@{db}"));
            // Drivers ask to skip the empty third round (options.skipEmptyExchange);
            // accept both flows.
            Ok(
                doc! { "conversationId": 1, "done": true, "payload": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: server_final } },
            )
        }
        Err(_) => {
            ctx.conversation = None;
            Err(fail())
        }
    }
}

fn build_info(w: &World, h: HostId) -> Document {
    let v = &w.hosts[h].version;
    let mut d = strip_trailer(fixtures::cached(fixtures::BUILD_INFO_44));
    d.insert("version", v.text.clone());
    d.insert(
        "versionArray",
        vec![v.major as i32, v.minor as i32, v.patch as i32, 0],
    );
    d.insert("maxBsonObjectSize", 16_777_216);
    d.insert(
        "storageEngines",
        vec!["devnull", "ephemeralForTest", "wiredTiger"],
    );
    d
}

fn host_info(w: &World, h: HostId) -> Document {
    let mut d = strip_trailer(fixtures::cached(fixtures::HOST_INFO));
    if let Ok(sys) = d.get_document_mut("system") {
        sys.insert("currentTime", DateTime::now());
        sys.insert("hostname", w.hosts[h].addr.to_string());
    }
    d
}

fn cmd_line_opts(w: &World, h: HostId) -> Document {
    let port = w.hosts[h].addr.port() as i32;
    let ip = w.hosts[h].addr.ip().to_string();
    let (tpl, set_name, role) = match w.hosts[h].kind {
        HostKind::Standalone => (fixtures::CMDLINE_STANDALONE, None, None),
        HostKind::Mongos { .. } => (fixtures::CMDLINE_MONGOS, None, None),
        HostKind::Member { set } => {
            let s = &w.sets[set];
            match s.role {
                SetRole::Config => (
                    fixtures::CMDLINE_CONFIGSVR,
                    Some(s.name.clone()),
                    Some("configsvr"),
                ),
                SetRole::Shard => (
                    fixtures::CMDLINE_REPLICA,
                    Some(s.name.clone()),
                    Some("shardsvr"),
                ),
                SetRole::Plain => (fixtures::CMDLINE_REPLICA, Some(s.name.clone()), None),
            }
        }
    };
    let mut d = strip_trailer(fixtures::cached(tpl));
    let mut parsed = d.get_document("parsed").cloned().unwrap_or_default();
    let mut net = parsed.get_document("net").cloned().unwrap_or_default();
    net.insert("bindIp", ip);
    net.insert("port", port);
    parsed.insert("net", net);
    if w.users.is_empty() {
        parsed.remove("security");
    }
    if let Some(name) = set_name {
        let mut repl = parsed
            .get_document("replication")
            .cloned()
            .unwrap_or_default();
        repl.insert("replSetName", name);
        parsed.insert("replication", repl);
    }
    if let Some(role) = role {
        parsed.insert("sharding", doc! { "clusterRole": role });
    }
    if let HostKind::Mongos { cluster } = w.hosts[h].kind {
        let cfg = &w.sets[w.clusters[cluster].config_set];
        let hosts: Vec<String> = cfg
            .members
            .iter()
            .map(|m| w.hosts[m.host].addr.to_string())
            .collect();
        parsed.insert(
            "sharding",
            doc! { "configDB": format!("{}/{}", cfg.name, hosts.join(",")) },
        );
    }
    d.insert("parsed", parsed);
    d
}

fn repl_set_get_status(w: &World, h: HostId) -> Result<Document, Document> {
    let HostKind::Member { set } = w.hosts[h].kind else {
        return Err(error_doc(76, "not running with --replSet"));
    };
    let s = &w.sets[set];
    if s.member(h).is_none() {
        return Err(error_doc(
            93,
            "Our replica set config is invalid or we are not a member of it",
        ));
    }
    let now = DateTime::now();
    let now_ms = now.timestamp_millis();
    let (my_state, _) = w.member_state(h);
    let primary_addr = s
        .primary
        .map(|p| w.hosts[p].addr.to_string())
        .unwrap_or_default();
    let primary_mid = s
        .primary
        .and_then(|p| s.member(p))
        .map(|m| m.id)
        .unwrap_or(-1);
    let (sync_host, sync_id) = if my_state == 2 && s.primary.is_some() {
        (primary_addr.clone(), primary_mid)
    } else {
        (String::new(), -1)
    };
    let mut members = Vec::new();
    for m in &s.members {
        let host = &w.hosts[m.host];
        let mut md = doc! { "_id": m.id, "name": host.addr.to_string() };
        let is_self = m.host == h;
        if !host.up {
            md.insert("health", 0.0);
            md.insert("state", 8);
            md.insert("stateStr", "(not reachable/healthy)");
            md.insert("uptime", 0);
            md.insert("optime", doc! { "ts": ts(0, 0), "t": -1i64 });
            md.insert("optimeDurable", doc! { "ts": ts(0, 0), "t": -1i64 });
            md.insert("optimeDate", DateTime::from_millis(0));
            md.insert("optimeDurableDate", DateTime::from_millis(0));
            md.insert("lastHeartbeat", DateTime::from_millis(now_ms - 800));
            md.insert("lastHeartbeatRecv", DateTime::from_millis(0));
            md.insert("pingMs", 0i64);
            md.insert(
                "lastHeartbeatMessage",
                format!(
                    "Error connecting to {} :: caused by :: Connection refused",
                    host.addr
                ),
            );
            md.insert("authenticated", false);
            md.insert("syncSourceHost", "");
            md.insert("syncSourceId", -1);
            md.insert("infoMessage", "");
            md.insert("configVersion", -1);
            members.push(Bson::Document(md));
            continue;
        }
        let (st, st_str) = w.member_state(m.host);
        md.insert("health", 1.0);
        md.insert("state", st);
        md.insert("stateStr", st_str);
        md.insert("uptime", w.uptime(m.host) as i32);
        if m.arbiter {
            md.insert("optime", doc! { "ts": ts(0, 0), "t": -1i64 });
            md.insert("optimeDate", DateTime::from_millis(0));
        } else {
            let (t, term) = member_optime(w, set, m.host);
            let date = DateTime::from_millis(t.time as i64 * 1000);
            md.insert("optime", doc! { "ts": t, "t": term });
            if !is_self {
                md.insert("optimeDurable", doc! { "ts": t, "t": term });
            }
            md.insert("optimeDate", date);
            if !is_self {
                md.insert("optimeDurableDate", date);
            }
            md.insert("lastAppliedWallTime", date);
            md.insert("lastDurableWallTime", date);
        }
        if !is_self {
            md.insert("lastHeartbeat", DateTime::from_millis(now_ms - 500));
            md.insert("lastHeartbeatRecv", DateTime::from_millis(now_ms - 1200));
            md.insert("pingMs", 0i64);
            md.insert("lastHeartbeatMessage", "");
        }
        let (ssh, ssi) = if st == 2 && s.primary.is_some() {
            (primary_addr.clone(), primary_mid)
        } else {
            (String::new(), -1)
        };
        md.insert("syncSourceHost", ssh);
        md.insert("syncSourceId", ssi);
        md.insert("infoMessage", "");
        if st == 1 {
            let ed = bson::DateTime::from_system_time(s.election_date);
            md.insert("electionTime", ts(ed.timestamp_millis() / 1000, 1));
            md.insert("electionDate", ed);
        }
        md.insert("configVersion", s.set_version);
        md.insert("configTerm", s.term);
        if is_self {
            md.insert("self", true);
            md.insert("lastHeartbeatMessage", "");
        }
        members.push(Bson::Document(md));
    }
    let voting = s.members.iter().filter(|m| m.votes > 0).count() as i32;
    let writable_voting = s
        .members
        .iter()
        .filter(|m| m.votes > 0 && !m.arbiter)
        .count() as i32;
    let majority = voting / 2 + 1;
    let (my_t, term) = member_optime(w, set, h);
    let my_date = DateTime::from_millis(my_t.time as i64 * 1000);
    let mut d = doc! { "set": s.name.clone(), "date": now, "myState": my_state, "term": term };
    d.insert("syncSourceHost", sync_host);
    d.insert("syncSourceId", sync_id);
    d.insert("heartbeatIntervalMillis", 2000i64);
    d.insert("majorityVoteCount", majority);
    d.insert("writeMajorityCount", majority.min(writable_voting));
    d.insert("votingMembersCount", voting);
    d.insert("writableVotingMembersCount", writable_voting);
    let optime = doc! { "ts": my_t, "t": term };
    d.insert(
        "optimes",
        doc! {
            "lastCommittedOpTime": optime.clone(),
            "lastCommittedWallTime": my_date,
            "readConcernMajorityOpTime": optime.clone(),
            "appliedOpTime": optime.clone(),
            "durableOpTime": optime,
            "lastAppliedWallTime": my_date,
            "lastDurableWallTime": my_date,
        },
    );
    d.insert("lastStableRecoveryTimestamp", my_t);
    if s.role == SetRole::Config {
        d.insert("configsvr", true);
    }
    if my_state == 1 {
        // Shape from the real 4.2.8 capture, values from the simulated election.
        let mut ecm = fixtures::repl_set_get_status_42()
            .get_document("electionCandidateMetrics")
            .cloned()
            .unwrap_or_default();
        let ed = bson::DateTime::from_system_time(s.election_date);
        ecm.insert("electionTerm", s.term);
        ecm.insert("lastElectionDate", ed);
        ecm.insert("newTermStartDate", ed);
        ecm.insert("wMajorityWriteAvailabilityDate", ed);
        ecm.insert("numVotesNeeded", majority);
        d.insert("electionCandidateMetrics", ecm);
    }
    d.insert("members", members);
    Ok(d)
}

fn repl_set_get_config(w: &World, h: HostId) -> Result<Document, Document> {
    let HostKind::Member { set } = w.hosts[h].kind else {
        return Err(error_doc(76, "not running with --replSet"));
    };
    let s = &w.sets[set];
    if s.member(h).is_none() {
        return Err(error_doc(94, "Node not yet initialized"));
    }
    let new_style = w.hosts[h].version.at_least(5, 0);
    let members: Vec<Bson> = s
        .members
        .iter()
        .map(|m| {
            let tags: Document = m
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), Bson::String(v.clone())))
                .collect();
            let mut md = doc! {
                "_id": m.id,
                "host": w.hosts[m.host].addr.to_string(),
                "arbiterOnly": m.arbiter,
                "buildIndexes": true,
                "hidden": m.hidden,
                "priority": m.priority,
                "tags": tags,
            };
            if new_style {
                md.insert("secondaryDelaySecs", m.delay_secs as i64);
            } else {
                md.insert("slaveDelay", m.delay_secs as i64);
            }
            md.insert("votes", m.votes);
            Bson::Document(md)
        })
        .collect();
    let tpl = fixtures::cached(fixtures::REPL_SET_GET_CONFIG);
    let settings = tpl
        .get_document("config")
        .and_then(|c| c.get_document("settings"))
        .cloned()
        .unwrap_or_default();
    let mut cfg = doc! { "_id": s.name.clone(), "version": s.set_version };
    if w.hosts[h].version.at_least(4, 4) {
        cfg.insert("term", s.term);
    }
    cfg.insert("protocolVersion", 1i64);
    cfg.insert("writeConcernMajorityJournalDefault", true);
    if s.role == SetRole::Config {
        cfg.insert("configsvr", true);
    }
    cfg.insert("members", members);
    cfg.insert("settings", settings);
    Ok(doc! { "config": cfg })
}

fn cluster_of(w: &World, h: HostId) -> Option<usize> {
    match w.hosts[h].kind {
        HostKind::Mongos { cluster } => Some(cluster),
        HostKind::Member { set } => w.sets[set].cluster,
        HostKind::Standalone => None,
    }
}

fn get_shard_map(w: &World, h: HostId) -> Result<Document, Document> {
    let Some(ci) = cluster_of(w, h) else {
        return Err(error_doc(59, "no such command: 'getShardMap'"));
    };
    let c = &w.clusters[ci];
    let mut map = Document::new();
    let mut hosts = Document::new();
    let mut conn = Document::new();
    let mut add = |id: &str, si: usize| {
        let s = &w.sets[si];
        let cs = s.conn_string(w);
        map.insert(id, cs.clone());
        conn.insert(cs, id);
        for m in &s.members {
            hosts.insert(w.hosts[m.host].addr.to_string(), id);
        }
    };
    for &si in &c.shards {
        add(&w.sets[si].name, si);
    }
    add("config", c.config_set);
    Ok(doc! { "map": map, "hosts": hosts, "connStrings": conn })
}

fn list_shards(w: &World, h: HostId) -> Result<Document, Document> {
    let Some(ci) = cluster_of(w, h) else {
        return Err(error_doc(59, "no such command: 'listShards'"));
    };
    let shards: Vec<Bson> = w.clusters[ci]
        .shards
        .iter()
        .map(|&si| {
            let s = &w.sets[si];
            Bson::Document(doc! { "_id": s.name.clone(), "host": s.conn_string(w), "state": 1, "topologyTime": ts(1_600_000_000, 1) })
        })
        .collect();
    Ok(doc! { "shards": shards })
}

fn cursor(ns: &str, batch: Vec<Document>) -> Document {
    doc! { "cursor": { "firstBatch": batch, "id": 0i64, "ns": ns } }
}

fn find(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let db = cmd.get_str("$db").unwrap_or("test");
    let coll = cmd.get_str("find").unwrap_or("");
    let ns = format!("{db}.{coll}");
    let limit = match cmd.get("limit") {
        Some(Bson::Int32(n)) => *n as i64,
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    };
    let mut docs: Vec<Document>;
    match (db, coll) {
        ("local", "oplog.rs") => {
            let HostKind::Member { set } = w.hosts[h].kind else {
                return Ok(cursor(&ns, vec![]));
            };
            if w.sets[set].member(h).is_none_or(|m| m.arbiter) {
                return Ok(cursor(&ns, vec![]));
            }
            let (last, term) = member_optime(w, set, h);
            let first_secs = last.time as i64 - w.sets[set].oplog_window_secs as i64;
            let entry = |t: Timestamp, term: i64| {
                doc! {
                    "op": "n", "ns": "", "o": { "msg": "periodic noop" },
                    "ts": t, "t": term, "v": 2i64,
                    "wall": DateTime::from_millis(t.time as i64 * 1000),
                }
            };
            let natural = cmd
                .get_document("sort")
                .ok()
                .and_then(|s| s.get("$natural"))
                .and_then(|v| match v {
                    Bson::Int32(n) => Some(*n as i64),
                    Bson::Int64(n) => Some(*n),
                    Bson::Double(n) => Some(*n as i64),
                    _ => None,
                });
            let first = entry(ts(first_secs, 1), 1);
            let lastd = entry(last, term);
            docs = match natural {
                Some(n) if n < 0 => vec![lastd, first],
                _ => vec![first, lastd],
            };
        }
        _ => docs = catalog::documents(w, h, db, coll),
    }
    if let Ok(filter) = cmd.get_document("filter") {
        docs.retain(|d| catalog::matches(d, filter));
    }
    let skip = match cmd.get("skip") {
        Some(Bson::Int32(n)) => *n as usize,
        Some(Bson::Int64(n)) => *n as usize,
        _ => 0,
    };
    docs.drain(..skip.min(docs.len()));
    if limit > 0 {
        docs.truncate(limit as usize);
    }
    Ok(cursor(&ns, docs))
}

fn db_stats(w: &World, h: HostId, cmd: &Document) -> Document {
    let db = cmd.get_str("$db").unwrap_or("admin").to_string();
    let mut d = strip_trailer(fixtures::cached(fixtures::DBSTATS_LOCAL));
    // Figures agree with the catalog (listCollections, collStats).
    let (colls, objects, size) = catalog::db_figures(w, h, &db);
    d.insert("collections", colls as i32);
    d.insert("objects", objects as i32);
    d.insert("dataSize", size as f64);
    if objects > 0 {
        d.insert("avgObjSize", size as f64 / objects as f64);
    } else {
        d.insert("avgObjSize", 0.0);
    }
    d.insert("db", db);
    if matches!(w.hosts[h].kind, HostKind::Mongos { .. }) {
        d.remove("fsUsedSize");
        d.remove("fsTotalSize");
    }
    d
}

/// `listDatabases`, honouring `filter` and `nameOnly` (Percona filters out the
/// system databases, drivers' `list_database_names` sends `nameOnly`).
fn list_databases(w: &World, h: HostId, cmd: &Document) -> Document {
    let mut dbs = vec![
        doc! { "name": "admin", "sizeOnDisk": 102_400i64, "empty": false },
        doc! { "name": "config", "sizeOnDisk": 110_592i64, "empty": false },
    ];
    if !matches!(w.hosts[h].kind, HostKind::Mongos { .. }) {
        dbs.push(doc! { "name": "local", "sizeOnDisk": 35_102_720i64, "empty": false });
    }
    if let Ok(filter) = cmd.get_document("filter") {
        dbs.retain(|d| catalog::matches(d, filter));
    }
    if cmd.get_bool("nameOnly").unwrap_or(false) {
        let names: Vec<Document> = dbs
            .iter()
            .filter_map(|d| d.get_str("name").ok())
            .map(|n| doc! { "name": n })
            .collect();
        return doc! { "databases": names };
    }
    let total: i64 = dbs
        .iter()
        .filter_map(|d| d.get_i64("sizeOnDisk").ok())
        .sum();
    doc! { "databases": dbs, "totalSize": total, "totalSizeMb": total / (1024 * 1024) }
}

fn conn_pool_stats(w: &World, h: HostId) -> Document {
    let mut d = strip_trailer(fixtures::cached(fixtures::CONN_POOL_STATS));
    let mut hosts = Document::new();
    if let Some(ci) = cluster_of(w, h) {
        let c = &w.clusters[ci];
        for &si in c.shards.iter().chain(std::iter::once(&c.config_set)) {
            for m in &w.sets[si].members {
                if m.host != h {
                    hosts.insert(
                        w.hosts[m.host].addr.to_string(),
                        doc! { "inUse": 0, "available": 1, "created": 3, "refreshing": 0 },
                    );
                }
            }
        }
    }
    let n = hosts.len() as i32;
    d.insert(
        "pools",
        doc! { "NetworkInterfaceTL-ShardRegistry": { "poolInUse": 0, "poolAvailable": n, "poolCreated": n * 3, "poolRefreshing": 0 } },
    );
    d.insert("hosts", hosts);
    d.insert("totalAvailable", n);
    d.insert("totalCreated", n * 3);
    d
}

/// `shardConnPoolStats` of 4.x (removed in 5.0), DERIVED from the manual:
/// <https://www.mongodb.com/docs/v4.4/reference/command/shardConnPoolStats/>.
/// Same pools as `connPoolStats`, plus the replica-set view of each shard.
fn shard_conn_pool_stats(w: &World, h: HostId) -> Document {
    let pools = conn_pool_stats(w, h);
    let hosts = pools.get_document("hosts").cloned().unwrap_or_default();
    let mut sets = Document::new();
    if let Some(ci) = cluster_of(w, h) {
        let c = &w.clusters[ci];
        for &si in c.shards.iter().chain(std::iter::once(&c.config_set)) {
            let s = &w.sets[si];
            let members: Vec<Bson> = s
                .members
                .iter()
                .filter(|m| !m.arbiter)
                .map(|m| {
                    Bson::Document(doc! {
                        "addr": w.hosts[m.host].addr.to_string(),
                        "ok": w.hosts[m.host].up,
                        "ismaster": s.primary == Some(m.host),
                        "hidden": m.hidden,
                        "secondary": s.primary != Some(m.host),
                        "pingTimeMillis": 0,
                    })
                })
                .collect();
            sets.insert(s.name.clone(), doc! { "hosts": members });
        }
    }
    let n = hosts.len() as i32;
    doc! {
        "hosts": hosts,
        "replicaSets": sets,
        "createdByType": { "master": n, "set": 0, "sync": 0 },
        "totalInUse": 0,
        "totalAvailable": n,
        "totalCreated": n * 3,
        "totalRefreshing": 0,
    }
}

/// `getParameter` (<https://www.mongodb.com/docs/manual/reference/command/getParameter/>):
/// `featureCompatibilityVersion` (mongod only, as in Percona's FCV collector)
/// and a few server parameters; `"*"` returns them all.
fn get_parameter(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let v = &w.hosts[h].version;
    let is_mongos = matches!(w.hosts[h].kind, HostKind::Mongos { .. });
    let mut all = Document::new();
    if !is_mongos {
        all.insert(
            "featureCompatibilityVersion",
            doc! { "version": format!("{}.{}", v.major, v.minor) },
        );
    }
    all.insert("logLevel", 0);
    all.insert("quiet", false);
    all.insert(
        "authenticationMechanisms",
        vec!["SCRAM-SHA-1", "SCRAM-SHA-256"],
    );
    all.insert("maxIncomingConnections", 838_860);
    all.insert("diagnosticDataCollectionEnabled", true);
    all.insert("diagnosticDataCollectionPeriodMillis", 1000);
    if cmd.get_str("getParameter") == Ok("*") {
        return Ok(all);
    }
    let wanted: Vec<&String> = cmd
        .keys()
        .filter(|k| !k.eq_ignore_ascii_case("getParameter") && !k.starts_with('$') && *k != "lsid")
        .collect();
    let mut out = Document::new();
    for k in wanted {
        if let Some(v) = all.get(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    if out.is_empty() {
        return Err(error_doc(72, "no option found to get"));
    }
    Ok(out)
}

fn get_log(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let which = cmd
        .get_str("getLog")
        .or_else(|_| cmd.get_str("getlog"))
        .unwrap_or("");
    let line = |msg: &str| {
        serde_json::json!({
            "t": {"$date": DateTime::now().try_to_rfc3339_string().unwrap_or_default()},
            "s": "I", "c": "NETWORK", "id": 23016, "ctx": "listener",
            "msg": msg, "attr": {"host": w.hosts[h].addr.to_string()}
        })
        .to_string()
    };
    match which {
        "*" => Ok(doc! { "names": ["global", "startupWarnings"] }),
        "global" => Ok(
            doc! { "totalLinesWritten": 2, "log": [line("Waiting for connections"), line("Connection accepted")] },
        ),
        "startupWarnings" => Ok(doc! { "totalLinesWritten": 0, "log": [] }),
        other => Err(error_doc(2, &format!("no RamLog named: {other}"))),
    }
}

/// `getDiagnosticData`: the latest FTDC sample, as in the real 4.2.8 capture.
/// mongod: serverStatus, replSetGetStatus (members), `local.oplog.rs.stats`
/// (data-bearing members), systemMetrics; mongos (FTDC since 3.6):
/// serverStatus, connPoolStats, systemMetrics.
fn diagnostic_data(w: &World, h: HostId) -> Document {
    let ss = Document::from_reader(server_status(w, h, &doc! {"serverStatus": 1}).as_slice())
        .unwrap_or_default();
    let start = DateTime::now();
    let tpl = fixtures::cached(fixtures::DIAGNOSTIC_DATA_42);
    let stamp = |mut d: Document| {
        d.insert("start", start);
        d.insert("end", start);
        d
    };
    let mut data = doc! { "start": start, "serverStatus": stamp(ss) };
    match w.hosts[h].kind {
        HostKind::Mongos { .. } => {
            let mut cps = conn_pool_stats(w, h);
            cps.insert("ok", 1.0);
            data.insert("connPoolStats", stamp(cps));
        }
        HostKind::Member { set } => {
            if let Ok(mut rs) = repl_set_get_status(w, h) {
                rs.insert("ok", 1.0);
                data.insert("replSetGetStatus", stamp(rs));
            }
            let data_bearing = w.sets[set].member(h).is_some_and(|m| !m.arbiter);
            if data_bearing {
                if let Ok(mut st) =
                    catalog::coll_stats(w, h, &doc! { "collStats": "oplog.rs", "$db": "local" })
                {
                    st.insert("ok", 1.0);
                    data.insert("local.oplog.rs.stats", stamp(st));
                }
            }
        }
        HostKind::Standalone => {}
    }
    if let Ok(sm) = tpl.get_document("systemMetrics") {
        data.insert("systemMetrics", stamp(sm.clone()));
    }
    data.insert("end", DateTime::now());
    doc! { "data": data }
}

// ---------------------------------------------------------------------------
// serverStatus: the real 4.2.8 document, split into static sections encoded
// once, plus a small dynamic head re-encoded per call.
// ---------------------------------------------------------------------------

/// Sections computed per call; everything else comes from the cached template.
const DYNAMIC: &[&str] = &[
    "host",
    "version",
    "process",
    "pid",
    "uptime",
    "uptimeMillis",
    "uptimeEstimate",
    "localTime",
    "connections",
    "opcounters",
    "opcountersRepl",
    "network",
    "repl",
    "ok",
    "start",
    "end",
];

/// Sections a mongos does not report.
const NOT_ON_MONGOS: &[&str] = &[
    "globalLock",
    "locks",
    "wiredTiger",
    "storageEngine",
    "flowControl",
    "electionMetrics",
    "oplogTruncation",
    "freeMonitoring",
    "opReadConcernCounters",
    "twoPhaseCommitCoordinator",
    "repl",
    "opcountersRepl",
];

struct StaticSections {
    mongod: Vec<(String, Vec<u8>)>,
    mongos: Vec<(String, Vec<u8>)>,
}

/// Which capture a host's serverStatus follows, by version: each release
/// line answers with the sections and fields of its own (see
/// `tests/fixtures/mongodb/NOTICE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusShape {
    /// 3.6.20 (Percona's capture).
    V36,
    /// 4.0.25 (OTel's capture, trimmed upstream).
    V40,
    /// 4.2.8 (Percona's capture), for 4.2 to 7.0.
    V42,
    /// 8.0: the 4.2.8 capture with `queues.execution` (derived).
    V80,
}

impl StatusShape {
    pub fn of(v: &crate::sim::state::Version) -> StatusShape {
        if !v.at_least(4, 0) {
            StatusShape::V36
        } else if !v.at_least(4, 2) {
            StatusShape::V40
        } else if v.at_least(8, 0) {
            StatusShape::V80
        } else {
            StatusShape::V42
        }
    }

    fn template(self) -> &'static Document {
        match self {
            StatusShape::V36 => fixtures::server_status_36(),
            StatusShape::V40 => fixtures::server_status_40(),
            StatusShape::V42 => fixtures::server_status_42(),
            StatusShape::V80 => fixtures::server_status_80(),
        }
    }
}

/// Encoded bytes of the elements of `d` (document without length and terminator).
fn elements(d: &Document) -> Vec<u8> {
    let v = bson::to_vec(d).unwrap_or_default();
    if v.len() >= 5 {
        v[4..v.len() - 1].to_vec()
    } else {
        Vec::new()
    }
}

fn static_sections(shape: StatusShape) -> &'static StaticSections {
    static CELLS: [OnceLock<StaticSections>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    CELLS[shape as usize].get_or_init(|| {
        let tpl = shape.template();
        let mut mongod = Vec::new();
        let mut mongos = Vec::new();
        for (k, v) in tpl {
            if DYNAMIC.contains(&k.as_str()) {
                continue;
            }
            let mut one = Document::new();
            one.insert(k.clone(), v.clone());
            let bytes = elements(&one);
            if !NOT_ON_MONGOS.contains(&k.as_str()) {
                mongos.push((k.clone(), bytes.clone()));
            }
            mongod.push((k.clone(), bytes));
        }
        StaticSections { mongod, mongos }
    })
}

/// Builds serverStatus; `cmd` may exclude sections with `{section: 0}`.
pub fn server_status(w: &World, h: HostId, cmd: &Document) -> Encoded {
    let host = &w.hosts[h];
    let excluded = |k: &str| {
        matches!(
            cmd.get(k),
            Some(Bson::Int32(0))
                | Some(Bson::Int64(0))
                | Some(Bson::Boolean(false))
                | Some(Bson::Double(0.0))
        )
    };
    let is_mongos = matches!(host.kind, HostKind::Mongos { .. });
    let elapsed = w.elapsed();
    let f = host.rate_factor;
    let r = &w.rates;
    let c = &host.counters;
    let get =
        |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as i64;
    let grow = |rate: f64, secs: f64, base: f64| (base * f + rate * f * secs) as i64;
    let (primary_secs, secondary_secs) = w.role_seconds(h);
    let base = host.base;

    let mut head = Document::new();
    head.insert("host", host.addr.to_string());
    head.insert("version", host.version.text.clone());
    head.insert("process", if is_mongos { "mongos" } else { "mongod" });
    head.insert("pid", host.pid);
    let up = w.uptime(h);
    head.insert("uptime", up.floor());
    head.insert("uptimeMillis", (up * 1000.0) as i64);
    head.insert("uptimeEstimate", up as i64);
    head.insert("localTime", DateTime::now());
    let current = c.conns_current.load(std::sync::atomic::Ordering::Relaxed) as i32;
    let created = get(&c.conns_created) + grow(r.connections_created, elapsed, base / 100.0);
    head.insert(
        "connections",
        doc! { "current": current, "available": 838_860 - current, "totalCreated": created, "active": current.clamp(0, 1) + current / 3 },
    );
    head.insert(
        "opcounters",
        doc! {
            "insert": grow(r.insert, primary_secs, base),
            "query": grow(r.query, elapsed, base),
            "update": grow(r.update, primary_secs, base / 2.0),
            "delete": grow(r.delete, primary_secs, base / 10.0),
            "getmore": grow(r.getmore, elapsed, base / 3.0),
            "command": grow(r.command, elapsed, base * 4.0) + get(&c.commands),
        },
    );
    if !is_mongos {
        head.insert(
            "opcountersRepl",
            doc! {
                "insert": grow(r.insert, secondary_secs, 0.0),
                "query": 0i64,
                "update": grow(r.update, secondary_secs, 0.0),
                "delete": grow(r.delete, secondary_secs, 0.0),
                "getmore": 0i64,
                "command": grow(r.command / 20.0, secondary_secs, 0.0),
            },
        );
    }
    let mut net = fixtures::server_status_42()
        .get_document("network")
        .cloned()
        .unwrap_or_default();
    net.insert(
        "bytesIn",
        get(&c.bytes_in) + grow(r.bytes_in, elapsed, base * 300.0),
    );
    net.insert(
        "bytesOut",
        get(&c.bytes_out) + grow(r.bytes_out, elapsed, base * 1500.0),
    );
    net.insert(
        "numRequests",
        get(&c.requests) + grow(r.requests, elapsed, base),
    );
    head.insert("network", net);
    if let HostKind::Member { set } = host.kind {
        let mut repl = Document::new();
        if host.version.at_least(4, 4) {
            repl.insert("topologyVersion", topology_version(w, h));
        }
        repl_fields(w, set, h, "ismaster", &mut repl);
        repl.insert("rbid", 1);
        head.insert("repl", repl);
    }
    let head: Document = head.into_iter().filter(|(k, _)| !excluded(k)).collect();

    let mut tail = doc! { "ok": 1.0 };
    append_cluster_time(w, h, &mut tail);

    let statics = static_sections(StatusShape::of(&host.version));
    let list = if is_mongos {
        &statics.mongos
    } else {
        &statics.mongod
    };
    let head_b = elements(&head);
    let tail_b = elements(&tail);
    let total = 4
        + head_b.len()
        + list
            .iter()
            .filter(|(k, _)| !excluded(k))
            .map(|(_, b)| b.len())
            .sum::<usize>()
        + tail_b.len()
        + 1;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as i32).to_le_bytes());
    out.extend_from_slice(&head_b);
    for (k, b) in list {
        if !excluded(k) {
            out.extend_from_slice(b);
        }
    }
    out.extend_from_slice(&tail_b);
    out.push(0);
    out
}
