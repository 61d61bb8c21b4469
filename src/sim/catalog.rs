//! The simulated catalog: which databases and collections each host holds, the
//! documents of the few collections monitoring tools read (`config.chunks`,
//! `config.collections`, `config.version`, `config.shards`, ...), and the
//! commands that read them: `listCollections`, `collStats`, `count` and
//! `aggregate` (the pipeline subset peers send: `$match`, `$group`, `$project`,
//! `$sort`, `$skip`, `$limit`, `$count`, and the `$collStats`, `$indexStats`,
//! `$currentOp` sources).
//!
//! Peers that need these: Telegraf's mongodb input counts jumbo chunks with
//! `CountDocuments` (an `aggregate` on `config.chunks`) on every host, lists
//! collections for `collStats`; Percona's exporter finds `config.version`,
//! aggregates `config.chunks` per shard and reads `$collStats`/`$indexStats`.
//!
//! Shapes: `collStats` starts from the real 4.2.8 `local.oplog.rs.stats`
//! capture; the config documents and listCollections entries follow the
//! MongoDB manual ("Config Database", "listCollections") and are marked
//! DERIVED in `tests/fixtures/mongodb/NOTICE.md`. No user data is simulated:
//! the catalog holds what a fresh deployment holds.

use super::commands::error_doc;
use super::fixtures;
use super::state::{now_millis, HostId, HostKind, SetRole, World};
use bson::{doc, Binary, Bson, DateTime, Document, Timestamp};
use std::cmp::Ordering;

/// One collection of the simulated catalog.
#[derive(Debug, Clone)]
struct Coll {
    name: &'static str,
    /// Documents and average size, for collStats and listDatabases-like figures.
    count: i64,
    avg_obj_size: i64,
    capped: bool,
}

const fn coll(name: &'static str, count: i64, avg_obj_size: i64) -> Coll {
    Coll {
        name,
        count,
        avg_obj_size,
        capped: false,
    }
}

/// True when the host answers for the config database of a cluster (mongos
/// routes config reads to the config servers).
fn serves_config(w: &World, h: HostId) -> bool {
    match w.hosts[h].kind {
        HostKind::Mongos { .. } => true,
        HostKind::Member { set } => w.sets[set].role == SetRole::Config,
        HostKind::Standalone => false,
    }
}

fn cluster_of(w: &World, h: HostId) -> Option<usize> {
    match w.hosts[h].kind {
        HostKind::Mongos { cluster } => Some(cluster),
        HostKind::Member { set } => w.sets[set].cluster,
        HostKind::Standalone => None,
    }
}

/// Collections of `db` on host `h`, as a fresh deployment of that role has them.
fn collections(w: &World, h: HostId, db: &str) -> Vec<Coll> {
    let member = matches!(w.hosts[h].kind, HostKind::Member { .. });
    let mut out = Vec::new();
    match db {
        "admin" => {
            out.push(coll("system.version", 2, 59));
            if serves_config(w, h) {
                out.push(coll("system.keys", 4, 85));
            }
        }
        "config" => {
            if serves_config(w, h) {
                let shards = cluster_of(w, h).map_or(0, |c| w.clusters[c].shards.len() as i64);
                let mongos = cluster_of(w, h).map_or(0, |c| w.clusters[c].mongos.len() as i64);
                out.extend([
                    coll("actionlog", 12, 380),
                    coll("changelog", 30, 410),
                    coll("chunks", shards.max(1), 290),
                    coll("collections", 1, 220),
                    coll("databases", 0, 0),
                    coll("lockpings", mongos + shards * 3, 70),
                    coll("locks", 2, 230),
                    coll("migrations", 0, 0),
                    coll("mongos", mongos, 180),
                    coll("settings", 2, 45),
                    coll("shards", shards, 120),
                    coll("tags", 0, 0),
                    coll("version", 1, 83),
                ]);
            }
            if member || serves_config(w, h) {
                out.push(coll("system.sessions", 3, 99));
                out.push(coll("transactions", 0, 0));
            }
        }
        "local" if member => {
            out.extend([
                Coll {
                    capped: true,
                    ..coll("oplog.rs", 7552, 247)
                },
                coll("replset.election", 1, 60),
                coll("replset.minvalid", 1, 45),
                coll("replset.oplogTruncateAfterPoint", 1, 71),
                coll("startup_log", 1, 4500),
                coll("system.replset", 1, 800),
                coll("system.rollback.id", 1, 41),
            ]);
        }
        "local" if matches!(w.hosts[h].kind, HostKind::Standalone) => {
            out.push(coll("startup_log", 1, 4500));
        }
        _ => {}
    }
    out
}

/// `(collections, objects, dataSize)` of a database, for `dbStats`.
pub fn db_figures(w: &World, h: HostId, db: &str) -> (i64, i64, i64) {
    let colls = collections(w, h, db);
    let objects = colls.iter().map(|c| c.count).sum();
    let size = colls.iter().map(|c| c.count * c.avg_obj_size).sum();
    (colls.len() as i64, objects, size)
}

fn find_coll(w: &World, h: HostId, db: &str, name: &str) -> Option<Coll> {
    collections(w, h, db).into_iter().find(|c| c.name == name)
}

/// Stable UUID of a namespace (same on every call, differs per namespace).
fn uuid_of(ns: &str) -> Binary {
    let mut bytes = [0u8; 16];
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, b) in ns.bytes().chain(ns.bytes().rev()).enumerate() {
        x ^= b as u64;
        x = x.wrapping_mul(0x0100_0000_01b3);
        bytes[i % 16] ^= (x >> 24) as u8;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: bytes.to_vec(),
    }
}

fn oid_of(ns: &str) -> bson::oid::ObjectId {
    let u = uuid_of(ns).bytes;
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&1_600_000_000u32.to_be_bytes());
    b[4..].copy_from_slice(&u[..8]);
    bson::oid::ObjectId::from_bytes(b)
}

const SESSIONS_NS: &str = "config.system.sessions";

/// Documents of a config collection as a cluster's config servers hold them;
/// `None` for collections the catalog does not simulate by content.
pub fn config_documents(w: &World, h: HostId, coll: &str) -> Option<Vec<Document>> {
    if !serves_config(w, h) {
        return None;
    }
    let ci = cluster_of(w, h)?;
    let c = &w.clusters[ci];
    let new_style = w.hosts[h].version.at_least(5, 0);
    let docs = match coll {
        "shards" => c
            .shards
            .iter()
            .map(|&si| {
                let s = &w.sets[si];
                doc! { "_id": s.name.clone(), "host": s.conn_string(w), "state": 1 }
            })
            .collect(),
        "mongos" => c
            .mongos
            .iter()
            .map(|&m| {
                let host = &w.hosts[m];
                doc! {
                    "_id": host.addr.to_string(),
                    "advisoryHostFQDNs": [],
                    "mongoVersion": host.version.text.clone(),
                    "ping": DateTime::from_millis(now_millis() - 5_000),
                    "up": w.uptime(m) as i64,
                    "waiting": true,
                }
            })
            .collect(),
        "settings" => vec![
            doc! { "_id": "balancer", "mode": "full", "stopped": false },
            doc! { "_id": "chunksize", "value": 128 },
        ],
        // Manual, "config.version": one document with the cluster id.
        "version" => vec![doc! {
            "_id": 1,
            "minCompatibleVersion": 5,
            "currentVersion": 6,
            "clusterId": oid_of(&c.name),
        }],
        // The only sharded collection of a fresh cluster is config.system.sessions.
        "collections" => {
            let mut d = doc! {
                "_id": SESSIONS_NS,
                "lastmodEpoch": oid_of(SESSIONS_NS),
                "lastmod": DateTime::from_millis(1_600_000_000_000),
            };
            if new_style {
                d.insert(
                    "timestamp",
                    Timestamp {
                        time: 1_600_000_000,
                        increment: 1,
                    },
                );
            } else {
                d.insert("dropped", false);
            }
            d.insert("uuid", uuid_of(SESSIONS_NS));
            d.insert("key", doc! { "_id": 1 });
            d.insert("unique", false);
            if new_style {
                d.insert("noBalance", false);
            }
            vec![d]
        }
        // One chunk of config.system.sessions per shard, none jumbo.
        "chunks" => {
            let n = c.shards.len().max(1);
            (0..n)
                .map(|i| {
                    let shard = c
                        .shards
                        .get(i)
                        .map(|&si| w.sets[si].name.clone())
                        .unwrap_or_default();
                    let bound = |k: usize| -> Bson {
                        if k == 0 {
                            Bson::MinKey
                        } else if k == n {
                            Bson::MaxKey
                        } else {
                            Bson::String(format!("{:x}", k * 0x10000 / n))
                        }
                    };
                    let lastmod = Timestamp {
                        time: 1,
                        increment: i as u32,
                    };
                    let history = vec![Bson::Document(doc! {
                        "validAfter": Timestamp { time: 1_600_000_000, increment: 1 },
                        "shard": shard.clone(),
                    })];
                    let mut d = Document::new();
                    if new_style {
                        d.insert("_id", oid_of(&format!("{SESSIONS_NS}-chunk-{i}")));
                        d.insert("uuid", uuid_of(SESSIONS_NS));
                    } else {
                        let min = match bound(i) {
                            Bson::MinKey => "MinKey".to_string(),
                            Bson::String(s) => format!("\"{s}\""),
                            other => other.to_string(),
                        };
                        d.insert("_id", format!("{SESSIONS_NS}-_id_{min}"));
                        d.insert("ns", SESSIONS_NS);
                    }
                    d.insert("min", doc! { "_id": bound(i) });
                    d.insert("max", doc! { "_id": bound(i + 1) });
                    d.insert("shard", shard);
                    d.insert("lastmod", lastmod);
                    if !new_style {
                        d.insert("lastmodEpoch", oid_of(SESSIONS_NS));
                    }
                    if w.hosts[h].version.at_least(7, 0) {
                        d.insert(
                            "onCurrentShardSince",
                            Timestamp {
                                time: 1_600_000_000,
                                increment: 1,
                            },
                        );
                    }
                    d.insert("history", history);
                    d
                })
                .collect()
        }
        "databases" | "tags" | "migrations" => Vec::new(),
        _ => return None,
    };
    Some(docs)
}

/// Documents of `db.coll` on host `h` that the catalog knows by content
/// (config collections, `admin.system.version`); empty for the others.
pub fn documents(w: &World, h: HostId, db: &str, coll: &str) -> Vec<Document> {
    match db {
        "config" => config_documents(w, h, coll).unwrap_or_default(),
        "admin" if coll == "system.version" => {
            let v = &w.hosts[h].version;
            vec![
                doc! { "_id": "featureCompatibilityVersion", "version": format!("{}.{}", v.major, v.minor) },
            ]
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Query matching: the filter subset peers send.
// ---------------------------------------------------------------------------

fn num(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(n) => Some(*n as f64),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

/// BSON comparison good enough for sorting and range filters.
fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    fn rank(b: &Bson) -> u8 {
        match b {
            Bson::MinKey => 0,
            Bson::Null => 1,
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => 2,
            Bson::String(_) => 3,
            Bson::Document(_) => 4,
            Bson::Array(_) => 5,
            Bson::Binary(_) => 6,
            Bson::ObjectId(_) => 7,
            Bson::Boolean(_) => 8,
            Bson::DateTime(_) => 9,
            Bson::Timestamp(_) => 10,
            Bson::MaxKey => 12,
            _ => 11,
        }
    }
    match (a, b) {
        (Bson::String(x), Bson::String(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => rank(a).cmp(&rank(b)),
        },
    }
}

fn equal(a: &Bson, b: &Bson) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Value at a dotted path.
fn get_path<'a>(d: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut cur = d;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let v = cur.get(p)?;
        if parts.peek().is_none() {
            return Some(v);
        }
        cur = v.as_document()?;
    }
    None
}

fn regex_match(value: &str, pattern: &str, options: &str) -> bool {
    let ci = options.contains('i');
    let (v, p) = if ci {
        (value.to_lowercase(), pattern.to_lowercase())
    } else {
        (value.to_string(), pattern.to_string())
    };
    // Literal patterns with optional anchors; `.` matches any character.
    let (anchored, p) = match p.strip_prefix('^') {
        Some(rest) => (true, rest.to_string()),
        None => (false, p),
    };
    let lit_match = |s: &str| -> bool {
        let pc: Vec<char> = p.chars().collect();
        let sc: Vec<char> = s.chars().collect();
        sc.len() >= pc.len() && pc.iter().zip(sc.iter()).all(|(a, b)| *a == '.' || a == b)
    };
    if anchored {
        lit_match(&v)
    } else {
        v.char_indices().any(|(i, _)| lit_match(&v[i..]))
    }
}

fn op_matches(value: Option<&Bson>, op: &str, arg: &Bson, spec: &Document) -> bool {
    match op {
        "$exists" => {
            let want = match arg {
                Bson::Boolean(b) => *b,
                other => num(other).is_some_and(|n| n != 0.0),
            };
            value.is_some() == want
        }
        "$eq" => value.is_some_and(|v| equal(v, arg)),
        "$ne" => !value.is_some_and(|v| equal(v, arg)),
        "$in" => arg
            .as_array()
            .is_some_and(|a| a.iter().any(|x| value.is_some_and(|v| equal(v, x)))),
        "$nin" => !arg
            .as_array()
            .is_some_and(|a| a.iter().any(|x| value.is_some_and(|v| equal(v, x)))),
        "$gt" => value.is_some_and(|v| cmp_bson(v, arg) == Ordering::Greater),
        "$gte" => value.is_some_and(|v| cmp_bson(v, arg) != Ordering::Less),
        "$lt" => value.is_some_and(|v| cmp_bson(v, arg) == Ordering::Less),
        "$lte" => value.is_some_and(|v| cmp_bson(v, arg) != Ordering::Greater),
        "$regex" => {
            let opts = spec.get_str("$options").unwrap_or("");
            let (pat, opts) = match arg {
                Bson::String(s) => (s.clone(), opts.to_string()),
                Bson::RegularExpression(r) => (r.pattern.clone(), r.options.clone()),
                _ => return false,
            };
            matches!(value, Some(Bson::String(s)) if regex_match(s, &pat, &opts))
        }
        "$options" => true,
        _ => false,
    }
}

/// True when `d` satisfies `filter` (equality, `$exists`, `$in`, `$nin`,
/// `$eq`, `$ne`, ranges, `$regex`, `$and`, `$or`).
pub fn matches(d: &Document, filter: &Document) -> bool {
    filter.iter().all(|(k, cond)| match k.as_str() {
        "$and" => cond.as_array().is_some_and(|a| {
            a.iter()
                .all(|f| f.as_document().is_some_and(|f| matches(d, f)))
        }),
        "$or" => cond.as_array().is_some_and(|a| {
            a.iter()
                .any(|f| f.as_document().is_some_and(|f| matches(d, f)))
        }),
        _ => {
            let value = get_path(d, k);
            match cond {
                Bson::Document(spec) if spec.keys().next().is_some_and(|k| k.starts_with('$')) => {
                    spec.iter()
                        .all(|(op, arg)| op_matches(value, op, arg, spec))
                }
                Bson::RegularExpression(r) => {
                    matches!(value, Some(Bson::String(s)) if regex_match(s, &r.pattern, &r.options))
                }
                other => value.is_some_and(|v| equal(v, other)),
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Commands.
// ---------------------------------------------------------------------------

fn cursor(ns: &str, batch: Vec<Document>) -> Document {
    doc! { "cursor": { "firstBatch": batch, "id": 0i64, "ns": ns } }
}

fn db_of(cmd: &Document) -> &str {
    cmd.get_str("$db").unwrap_or("test")
}

/// `listCollections` (manual: <https://www.mongodb.com/docs/manual/reference/command/listCollections/>).
pub fn list_collections(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let db = db_of(cmd);
    let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
    let filter = cmd.get_document("filter").cloned().unwrap_or_default();
    let docs: Vec<Document> = collections(w, h, db)
        .into_iter()
        .map(|c| {
            let ns = format!("{db}.{}", c.name);
            let mut options = Document::new();
            if c.capped {
                options.insert("capped", true);
                options.insert("size", 16_777_216i64);
                options.insert("autoIndexId", false);
            }
            let mut d = doc! { "name": c.name, "type": "collection" };
            if !name_only {
                d.insert("options", options);
                d.insert("info", doc! { "readOnly": false, "uuid": uuid_of(&ns) });
                if !c.capped {
                    d.insert(
                        "idIndex",
                        doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                    );
                }
            }
            d
        })
        .filter(|d| matches(d, &filter))
        .collect();
    Ok(cursor(&format!("{db}.$cmd.listCollections"), docs))
}

/// `collStats` (manual: <https://www.mongodb.com/docs/manual/reference/command/collStats/>),
/// shaped like the real 4.2.8 `local.oplog.rs.stats` capture.
pub fn coll_stats(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let db = db_of(cmd);
    let name = cmd
        .get_str("collStats")
        .or_else(|_| cmd.get_str("collstats"))
        .unwrap_or("");
    let ns = format!("{db}.{name}");
    let Some(c) = find_coll(w, h, db, name) else {
        return Err(error_doc(26, &format!("Collection [{ns}] not found.")));
    };
    let scale = match cmd.get("scale").and_then(num) {
        Some(s) if s >= 1.0 => s as i64,
        _ => 1,
    };
    Ok(storage_stats(
        &ns,
        &c,
        scale,
        matches!(w.hosts[h].kind, HostKind::Mongos { .. }),
    ))
}

fn storage_stats(ns: &str, c: &Coll, scale: i64, via_mongos: bool) -> Document {
    let tpl = fixtures::cached(fixtures::DIAGNOSTIC_DATA_42);
    let mut d = tpl
        .get_document("local.oplog.rs.stats")
        .cloned()
        .unwrap_or_default();
    for k in ["start", "end", "ok", "sleepCount", "sleepMS"] {
        d.remove(k);
    }
    let size = c.count * c.avg_obj_size;
    let storage = ((size / 4096) + 1) * 4096 * 2;
    let idx = if c.capped { 0 } else { 4096 * 5 };
    d.insert("ns", ns);
    d.insert("size", size / scale);
    d.insert("count", c.count);
    if c.count > 0 {
        d.insert("avgObjSize", c.avg_obj_size);
    } else {
        d.remove("avgObjSize");
    }
    d.insert("storageSize", storage / scale);
    d.insert("freeStorageSize", 0i64);
    d.insert("capped", c.capped);
    if c.capped {
        d.insert("max", -1i64);
        d.insert("maxSize", 16_777_216i64 / scale);
    } else {
        d.remove("max");
        d.remove("maxSize");
    }
    d.insert("nindexes", if c.capped { 0 } else { 1 });
    // The Go rendering of the capture shows empty documents as []; mongod sends documents.
    let mut sizes = Document::new();
    let mut details = Document::new();
    if !c.capped {
        sizes.insert("_id_", idx / scale);
        details.insert(
            "_id_",
            doc! { "metadata": { "formatVersion": 8 }, "type": "file" },
        );
    }
    d.insert("indexDetails", details);
    d.insert("indexBuilds", Vec::<Bson>::new());
    d.insert("totalIndexSize", idx / scale);
    d.insert("totalSize", (storage + idx) / scale);
    d.insert("indexSizes", sizes);
    d.insert("scaleFactor", scale);
    if via_mongos {
        // mongos adds the per-shard breakdown; keep the merged figures only.
        d.insert("sharded", false);
    }
    d
}

/// `count` (manual: <https://www.mongodb.com/docs/manual/reference/command/count/>).
pub fn count(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let db = db_of(cmd);
    let name = cmd.get_str("count").unwrap_or("");
    let filter = cmd.get_document("query").cloned().unwrap_or_default();
    let docs = documents(w, h, db, name);
    let n = if docs.is_empty() && filter.is_empty() {
        find_coll(w, h, db, name).map_or(0, |c| c.count)
    } else {
        docs.iter().filter(|d| matches(d, &filter)).count() as i64
    };
    Ok(doc! { "n": n as i32 })
}

fn unrecognized_stage(name: &str) -> Document {
    error_doc(
        40324,
        &format!("Unrecognized pipeline stage name: '{name}'"),
    )
}

/// `aggregate` (manual: <https://www.mongodb.com/docs/manual/reference/command/aggregate/>)
/// over the catalog's documents, with the stage subset listed in the module header.
pub fn aggregate(w: &World, h: HostId, cmd: &Document) -> Result<Document, Document> {
    let db = db_of(cmd);
    let target = cmd.get("aggregate").cloned().unwrap_or(Bson::Null);
    let pipeline: Vec<Document> = match cmd.get_array("pipeline") {
        Ok(a) => a.iter().filter_map(|s| s.as_document().cloned()).collect(),
        Err(_) => {
            return Err(error_doc(
                9,
                "'pipeline' option must be specified as an array",
            ))
        }
    };
    if !cmd.contains_key("cursor") && !cmd.contains_key("explain") {
        return Err(error_doc(
            9,
            "The 'cursor' option is required, except for aggregate with the explain argument",
        ));
    }
    let (ns, mut docs) = match &target {
        Bson::String(coll) => (format!("{db}.{coll}"), documents(w, h, db, coll)),
        _ => (format!("{db}.$cmd.aggregate"), Vec::new()),
    };
    let coll_name = target.as_str().unwrap_or("");
    for (i, stage) in pipeline.iter().enumerate() {
        let Some((name, spec)) = stage.iter().next() else {
            return Err(error_doc(
                40323,
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        docs = match name.as_str() {
            "$collStats" if i == 0 => {
                let Some(c) = find_coll(w, h, db, coll_name) else {
                    return Err(error_doc(26, &format!("Collection [{ns}] not found.")));
                };
                let spec = spec.as_document().cloned().unwrap_or_default();
                let mut d = doc! {
                    "ns": ns.clone(),
                    "host": w.hosts[h].addr.to_string(),
                    "localTime": DateTime::now(),
                };
                if spec.contains_key("latencyStats") {
                    let zero = doc! { "latency": 0i64, "ops": 0i64 };
                    d.insert(
                        "latencyStats",
                        doc! { "reads": zero.clone(), "writes": zero.clone(), "commands": zero.clone(), "transactions": zero },
                    );
                }
                if spec.contains_key("storageStats") {
                    d.insert("storageStats", storage_stats(&ns, &c, 1, false));
                }
                if spec.contains_key("count") {
                    d.insert("count", c.count);
                }
                if spec.contains_key("queryExecStats") {
                    d.insert(
                        "queryExecStats",
                        doc! { "collectionScans": { "total": 0i64, "nonTailable": 0i64 } },
                    );
                }
                vec![d]
            }
            "$indexStats" if i == 0 => match find_coll(w, h, db, coll_name) {
                Some(c) if !c.capped => vec![doc! {
                    "name": "_id_",
                    "key": { "_id": 1 },
                    "host": w.hosts[h].addr.to_string(),
                    "accesses": { "ops": 0i64, "since": DateTime::from_millis(now_millis() - (w.uptime(h) * 1000.0) as i64) },
                    "spec": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                }],
                Some(_) => Vec::new(),
                None => return Err(error_doc(26, &format!("Collection [{ns}] not found."))),
            },
            // No client operation is ever in progress in the simulator.
            "$currentOp" if i == 0 => Vec::new(),
            "$collStats" | "$indexStats" | "$currentOp" => {
                return Err(error_doc(
                    40602,
                    &format!("{name} is only valid as the first stage in a pipeline."),
                ))
            }
            "$match" => {
                let f = spec.as_document().cloned().unwrap_or_default();
                docs.into_iter().filter(|d| matches(d, &f)).collect()
            }
            "$group" => group(docs, spec.as_document().cloned().unwrap_or_default()),
            "$project" => {
                let p = spec.as_document().cloned().unwrap_or_default();
                docs.into_iter().map(|d| project(&d, &p)).collect()
            }
            "$sort" => {
                let s = spec.as_document().cloned().unwrap_or_default();
                docs.sort_by(|a, b| {
                    for (k, dir) in &s {
                        let o = cmp_bson(
                            get_path(a, k).unwrap_or(&Bson::Null),
                            get_path(b, k).unwrap_or(&Bson::Null),
                        );
                        let o = if num(dir).unwrap_or(1.0) < 0.0 {
                            o.reverse()
                        } else {
                            o
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
                docs
            }
            "$skip" => docs
                .into_iter()
                .skip(num(spec).unwrap_or(0.0).max(0.0) as usize)
                .collect(),
            "$limit" => docs
                .into_iter()
                .take(num(spec).unwrap_or(0.0).max(0.0) as usize)
                .collect(),
            "$count" => {
                let field = spec.as_str().unwrap_or("count");
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let mut d = Document::new();
                    d.insert(field, docs.len() as i32);
                    vec![d]
                }
            }
            other => return Err(unrecognized_stage(other)),
        };
    }
    Ok(cursor(&ns, docs))
}

/// Evaluates an aggregation expression: `"$path"`, or a constant.
fn expr(d: &Document, e: &Bson) -> Bson {
    match e {
        Bson::String(s) if s.starts_with('$') => {
            get_path(d, &s[1..]).cloned().unwrap_or(Bson::Null)
        }
        Bson::Document(sub) if !sub.keys().any(|k| k.starts_with('$')) => {
            Bson::Document(sub.iter().map(|(k, v)| (k.clone(), expr(d, v))).collect())
        }
        other => other.clone(),
    }
}

fn add(a: &Bson, b: &Bson) -> Bson {
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => match x.checked_add(*y) {
            Some(s) => Bson::Int32(s),
            None => Bson::Int64(*x as i64 + *y as i64),
        },
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            let x = num(a).unwrap_or(0.0) as i64;
            let y = num(b).unwrap_or(0.0) as i64;
            Bson::Int64(x + y)
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => Bson::Double(x + y),
            (Some(_), None) => a.clone(),
            (None, Some(_)) => b.clone(),
            _ => Bson::Int32(0),
        },
    }
}

/// `$group` with `$sum`, `$max`, `$min`, `$first`, `$last` accumulators.
fn group(docs: Vec<Document>, spec: Document) -> Vec<Document> {
    let id_expr = spec.get("_id").cloned().unwrap_or(Bson::Null);
    let mut groups: Vec<(Bson, Document)> = Vec::new();
    for d in &docs {
        let key = expr(d, &id_expr);
        let pos = match groups.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                groups.push((key.clone(), doc! { "_id": key }));
                groups.len() - 1
            }
        };
        let acc = &mut groups[pos].1;
        for (field, a) in spec.iter().filter(|(k, _)| k.as_str() != "_id") {
            let Some((op, arg)) = a.as_document().and_then(|a| a.iter().next()) else {
                continue;
            };
            let v = expr(d, arg);
            let cur = acc.get(field).cloned();
            let next = match op.as_str() {
                "$sum" => {
                    let v = if num(&v).is_some() { v } else { Bson::Int32(0) };
                    add(&cur.unwrap_or(Bson::Int32(0)), &v)
                }
                "$max" => match cur {
                    Some(c) if cmp_bson(&c, &v) != Ordering::Less => c,
                    _ => v,
                },
                "$min" => match cur {
                    Some(c) if cmp_bson(&c, &v) != Ordering::Greater => c,
                    _ => v,
                },
                "$first" => cur.unwrap_or(v),
                _ => v,
            };
            acc.insert(field.clone(), next);
        }
    }
    groups.into_iter().map(|(_, d)| d).collect()
}

/// `$project`: inclusion (`1`/`true`), exclusion of `_id`, renames (`"$path"`).
fn project(d: &Document, p: &Document) -> Document {
    let excluding = p
        .iter()
        .filter(|(k, _)| k.as_str() != "_id")
        .all(|(_, v)| matches!(v, Bson::Int32(0) | Bson::Int64(0) | Bson::Boolean(false)))
        && p.len() > usize::from(p.contains_key("_id"));
    if excluding {
        let mut out = d.clone();
        for k in p.keys() {
            out.remove(k);
        }
        return out;
    }
    let mut out = Document::new();
    let keep_id = !matches!(
        p.get("_id"),
        Some(Bson::Int32(0) | Bson::Int64(0) | Bson::Boolean(false))
    );
    if keep_id {
        if let Some(id) = d.get("_id") {
            out.insert("_id", id.clone());
        }
    }
    for (k, v) in p.iter().filter(|(k, _)| k.as_str() != "_id") {
        match v {
            Bson::Int32(0) | Bson::Int64(0) | Bson::Boolean(false) => {}
            Bson::Int32(_) | Bson::Int64(_) | Bson::Boolean(true) | Bson::Double(_) => {
                if let Some(x) = get_path(d, k) {
                    out.insert(k.clone(), x.clone());
                }
            }
            e => {
                out.insert(k.clone(), expr(d, e));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_the_server() {
        let d = doc! { "_id": "config.system.sessions", "jumbo": false, "n": 3, "a": { "b": "x" } };
        assert!(matches(&d, &doc! {}));
        assert!(!matches(&d, &doc! { "jumbo": true }));
        assert!(matches(&d, &doc! { "jumbo": { "$ne": true } }));
        assert!(matches(&d, &doc! { "n": 3i64 }));
        assert!(matches(&d, &doc! { "n": { "$gte": 3.0, "$lt": 4 } }));
        assert!(matches(&d, &doc! { "a.b": { "$in": ["y", "x"] } }));
        assert!(matches(&d, &doc! { "ts": { "$exists": false } }));
        assert!(matches(
            &d,
            &doc! { "_id": { "$regex": "^CONFIG.", "$options": "i" } }
        ));
        assert!(!matches(&d, &doc! { "_id": { "$regex": "^admin." } }));
    }

    #[test]
    fn group_counts_and_projects() {
        let docs = vec![
            doc! { "shard": "s1" },
            doc! { "shard": "s2" },
            doc! { "shard": "s1" },
        ];
        let g = group(docs, doc! { "_id": "$shard", "cnt": { "$sum": 1 } });
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].get_i32("cnt").unwrap(), 2);
        let p = project(
            &g[0],
            &doc! { "_id": 0, "shard": "$_id", "nChunks": "$cnt" },
        );
        assert_eq!(p, doc! { "shard": "s1", "nChunks": 2 });
    }
}
