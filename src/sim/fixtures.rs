//! Real captured server replies (see `tests/fixtures/mongodb/NOTICE.md`) compiled
//! into the binary, and the conversion of their various JSON dialects into BSON.
//!
//! The captures come in three dialects: canonical/relaxed Extended JSON
//! (`$oid`, `$date`, `$timestamp`, `$numberLong`, `$binary`), and Percona's Go
//! rendering (`{"T":..,"I":..}` timestamps, RFC 3339 date strings). Both are
//! mapped to proper BSON types so replies look like mongod's, not like JSON.

use bson::{Bson, Document};
use std::sync::OnceLock;

macro_rules! fixture {
    ($p:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mongodb/",
            $p
        ))
    };
}

/// Percona getDiagnosticData, mongod 4.2.8 PRIMARY (holds serverStatus and replSetGetStatus).
pub const DIAGNOSTIC_DATA_42: &str =
    fixture!("percona-mongodb_exporter/exporter/testdata/get_diagnostic_data.json");
/// Percona getDiagnosticData, mongod 3.6.20 PRIMARY (its serverStatus is
/// the 3.6 hosts' template).
pub const DIAGNOSTIC_DATA_36: &str =
    fixture!("percona-mongodb_exporter/exporter/testdata/diagnostic_data_3.6.json");
/// OTel serverStatus, mongod 4.0.25 (trimmed upstream; the 4.0 hosts' template).
pub const SERVER_STATUS_40: &str =
    fixture!("otel-collector-contrib/receiver/mongodbreceiver/testdata/serverStatus.json");
/// OTel buildInfo, mongod 4.4.10.
pub const BUILD_INFO_44: &str =
    fixture!("otel-collector-contrib/receiver/mongodbreceiver/testdata/buildInfo.json");
/// DataDog hostInfo (2024, 7.x era).
pub const HOST_INFO: &str = fixture!("datadog-integrations-core/mongo/tests/fixtures/hostInfo");
/// DataDog getCmdLineOpts of a mongos.
pub const CMDLINE_MONGOS: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/getCmdLineOpts-mongos");
/// DataDog getCmdLineOpts of a replica-set member.
pub const CMDLINE_REPLICA: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/getCmdLineOpts-replica-primary");
/// DataDog getCmdLineOpts of a config server.
pub const CMDLINE_CONFIGSVR: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/getCmdLineOpts-configsvr-primary");
/// DataDog getCmdLineOpts of a standalone.
pub const CMDLINE_STANDALONE: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/getCmdLineOpts-standalone");
/// DataDog `top` of a shard primary.
pub const TOP: &str = fixture!("datadog-integrations-core/mongo/tests/fixtures/top");
/// DataDog connPoolStats of a mongos.
pub const CONN_POOL_STATS: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/connPoolStats");
/// DataDog replSetGetConfig (used for the `settings` sub-document).
pub const REPL_SET_GET_CONFIG: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/replSetGetConfig");
/// DataDog dbStats of `local`.
pub const DBSTATS_LOCAL: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/dbstats-local");
/// DataDog isMaster of a replica-set primary (4.2), used by fidelity tests.
pub const IS_MASTER_PRIMARY: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/isMaster-replica-primary");
/// DataDog isMaster of a mongos, used by fidelity tests.
pub const IS_MASTER_MONGOS: &str =
    fixture!("datadog-integrations-core/mongo/tests/fixtures/isMaster-mongos");

/// Parses one of the embedded fixtures; they are compiled in and tested, so a
/// failure is a build defect, reported as an empty document rather than a panic.
pub fn parse(text: &str) -> Document {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => match json_to_bson(v) {
            Bson::Document(d) => d,
            _ => Document::new(),
        },
        Err(_) => Document::new(),
    }
}

/// Converts a JSON value in any of the fixture dialects into BSON.
pub fn json_to_bson(v: serde_json::Value) -> Bson {
    use serde_json::Value;
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(small) => Bson::Int32(small),
                    Err(_) => Bson::Int64(i),
                }
            } else {
                Bson::Double(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => match looks_like_date(&s) {
            Some(dt) => Bson::DateTime(dt),
            None => Bson::String(s),
        },
        Value::Array(a) => Bson::Array(a.into_iter().map(json_to_bson).collect()),
        Value::Object(m) => {
            if let Some(special) = extended(&m) {
                return special;
            }
            let mut d = Document::new();
            for (k, v) in m {
                d.insert(k, json_to_bson(v));
            }
            Bson::Document(d)
        }
    }
}

fn extended(m: &serde_json::Map<String, serde_json::Value>) -> Option<Bson> {
    use serde_json::Value;
    let keys: Vec<&str> = m.keys().map(String::as_str).collect();
    match keys.as_slice() {
        ["$oid"] => m["$oid"]
            .as_str()
            .and_then(|s| bson::oid::ObjectId::parse_str(s).ok())
            .map(Bson::ObjectId),
        ["$numberLong"] => m["$numberLong"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Bson::Int64),
        ["$numberInt"] => m["$numberInt"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Bson::Int32),
        ["$numberDouble"] => m["$numberDouble"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Bson::Double),
        ["$date"] => match &m["$date"] {
            Value::Number(n) => n
                .as_i64()
                .map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
            Value::String(s) => bson::DateTime::parse_rfc3339_str(s)
                .ok()
                .map(Bson::DateTime),
            Value::Object(o) => o
                .get("$numberLong")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
            _ => None,
        },
        ["$timestamp"] => {
            let t = m["$timestamp"].get("t")?.as_u64()? as u32;
            let i = m["$timestamp"].get("i")?.as_u64()? as u32;
            Some(Bson::Timestamp(bson::Timestamp {
                time: t,
                increment: i,
            }))
        }
        // Percona's Go rendering of a Timestamp.
        ["I", "T"] | ["T", "I"] => {
            let t = m["T"].as_u64()? as u32;
            let i = m["I"].as_u64()? as u32;
            Some(Bson::Timestamp(bson::Timestamp {
                time: t,
                increment: i,
            }))
        }
        ["$binary", "$type"] | ["$type", "$binary"] => {
            binary(m["$binary"].as_str()?, m["$type"].as_str()?)
        }
        ["$binary"] => {
            let b = m["$binary"].as_object()?;
            binary(b.get("base64")?.as_str()?, b.get("subType")?.as_str()?)
        }
        _ => None,
    }
}

fn binary(b64: &str, subtype: &str) -> Option<Bson> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let st = u8::from_str_radix(subtype, 16).ok()?;
    Some(Bson::Binary(bson::Binary {
        subtype: bson::spec::BinarySubtype::from(st),
        bytes,
    }))
}

/// Percona stores dates as RFC 3339 strings; only strings of that exact shape
/// are converted so that ordinary text is left alone.
fn looks_like_date(s: &str) -> Option<bson::DateTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b.len() > 35
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
    {
        return None;
    }
    if !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    bson::DateTime::parse_rfc3339_str(s).ok()
}

/// The parsed 4.2.8 serverStatus (Percona capture), shared by all hosts.
pub fn server_status_42() -> &'static Document {
    static CELL: OnceLock<Document> = OnceLock::new();
    CELL.get_or_init(|| {
        parse(DIAGNOSTIC_DATA_42)
            .get_document("serverStatus")
            .cloned()
            .unwrap_or_default()
    })
}

/// The parsed 3.6.20 serverStatus (Percona capture).
pub fn server_status_36() -> &'static Document {
    static CELL: OnceLock<Document> = OnceLock::new();
    CELL.get_or_init(|| {
        parse(DIAGNOSTIC_DATA_36)
            .get_document("serverStatus")
            .cloned()
            .unwrap_or_default()
    })
}

/// The parsed 4.0.25 serverStatus (OTel capture).
pub fn server_status_40() -> &'static Document {
    static CELL: OnceLock<Document> = OnceLock::new();
    CELL.get_or_init(|| parse(SERVER_STATUS_40))
}

/// An 8.0 serverStatus, DERIVED from the 4.2.8 capture: 8.0 reports the
/// storage engine's read/write tickets as `queues.execution` instead of
/// `wiredTiger.concurrentTransactions` (MongoDB manual, serverStatus,
/// "queues"). No 8.0 capture is available (../shared/fixtures README).
pub fn server_status_80() -> &'static Document {
    static CELL: OnceLock<Document> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut d = server_status_42().clone();
        let mut tickets = Document::new();
        if let Ok(wt) = d.get_document_mut("wiredTiger") {
            if let Some(Bson::Document(ct)) = wt.remove("concurrentTransactions") {
                tickets = ct;
            }
        }
        d.insert("queues", bson::doc! { "execution": tickets });
        d
    })
}

/// The parsed 4.2.8 replSetGetStatus (Percona capture).
pub fn repl_set_get_status_42() -> &'static Document {
    static CELL: OnceLock<Document> = OnceLock::new();
    CELL.get_or_init(|| {
        parse(DIAGNOSTIC_DATA_42)
            .get_document("replSetGetStatus")
            .cloned()
            .unwrap_or_default()
    })
}

/// Lazily parsed fixture by constant; small helper so each command parses once.
pub fn cached(text: &'static str) -> Document {
    static CELL: OnceLock<std::sync::Mutex<std::collections::HashMap<usize, Document>>> =
        OnceLock::new();
    let map = CELL.get_or_init(Default::default);
    let key = text.as_ptr() as usize;
    let mut g = match map.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    g.entry(key).or_insert_with(|| parse(text)).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_fixtures_parse_to_non_empty_documents() {
        for f in [
            DIAGNOSTIC_DATA_42,
            BUILD_INFO_44,
            HOST_INFO,
            CMDLINE_MONGOS,
            CMDLINE_REPLICA,
            CMDLINE_CONFIGSVR,
            CMDLINE_STANDALONE,
            TOP,
            CONN_POOL_STATS,
            REPL_SET_GET_CONFIG,
            DBSTATS_LOCAL,
            IS_MASTER_PRIMARY,
            IS_MASTER_MONGOS,
        ] {
            assert!(!parse(f).is_empty());
        }
        let ss = server_status_42();
        assert_eq!(ss.get_str("version").unwrap(), "4.2.8");
        assert!(matches!(ss.get("localTime"), Some(Bson::DateTime(_))));
        let rs = repl_set_get_status_42();
        let m0 = rs.get_array("members").unwrap()[0].as_document().unwrap();
        assert!(matches!(
            m0.get("optime")
                .and_then(|o| o.as_document())
                .and_then(|o| o.get("ts")),
            Some(Bson::Timestamp(_))
        ));
        let im = parse(IS_MASTER_PRIMARY);
        assert!(matches!(im.get("electionId"), Some(Bson::ObjectId(_))));
    }
}
