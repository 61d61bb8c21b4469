//! JSON lines: one object per sample, the whole reply included.
//!
//! `{"ts": "...", "ts_ms": .., "host": .., "cluster": .., "replset": ..,
//! "role": .., "command": "serverStatus", "duration_ms": .., "reply": {..}}`.
//! Replies are relaxed Extended JSON (numbers stay numbers, dates become
//! `{"$date": "..."}`), so a receiver keeps every field a server reported.
//! Reference: <https://www.mongodb.com/docs/manual/reference/mongodb-extended-json/>

use bson::Bson;
use serde_json::{json, Map, Value};

use crate::sample::{Body, Sample};

/// Appends `sample` as one JSON line.
pub fn encode(sample: &Sample, out: &mut Vec<u8>) {
    let value = to_value(sample);
    // Serialising a serde_json::Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
    out.push(b'\n');
}

/// The JSON object of one sample.
pub fn to_value(sample: &Sample) -> Value {
    let l = &sample.labels;
    let mut obj = Map::new();
    obj.insert(
        "ts".into(),
        Value::String(
            bson::DateTime::from_millis(sample.unix_millis())
                .try_to_rfc3339_string()
                .unwrap_or_default(),
        ),
    );
    obj.insert("ts_ms".into(), json!(sample.unix_millis()));
    obj.insert("host".into(), json!(l.host));
    obj.insert("cluster".into(), json!(l.cluster));
    if let Some(rs) = &l.replset {
        obj.insert("replset".into(), json!(rs));
    }
    if let Some(shard) = &l.shard {
        obj.insert("shard".into(), json!(shard));
    }
    obj.insert("role".into(), json!(l.role.as_str()));
    if let Some(v) = &l.version {
        obj.insert("version".into(), json!(v));
    }
    obj.insert("command".into(), json!(sample.command()));
    obj.insert(
        "duration_ms".into(),
        json!(sample.duration.as_secs_f64() * 1000.0),
    );
    match &sample.body {
        Body::Reply { command, doc } => {
            // JSON keeps whole documents, so this is the one format that
            // builds one; serverStatus gains its sections' old names.
            let reply = match doc.to_document() {
                Ok(mut d) => {
                    if *command == "serverStatus" {
                        super::schema::normalize_server_status(&mut d);
                    }
                    Bson::Document(d).into_relaxed_extjson()
                }
                Err(_) => Value::Null,
            };
            obj.insert("reply".into(), reply);
        }
        Body::Status { up, failure } => {
            obj.insert("up".into(), json!(*up as u8));
            if let Some(f) = failure {
                obj.insert("error_kind".into(), json!(f.kind));
                obj.insert("failed_command".into(), json!(f.command));
                obj.insert("error".into(), json!(f.message));
            }
        }
        Body::Derived { tags, fields, .. } => {
            for (k, v) in tags {
                obj.insert((*k).into(), json!(v));
            }
            let m: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        crate::format::flatten::Number::Int(i) => json!(i),
                        crate::format::flatten::Number::Float(f) => json!(f),
                    };
                    (k.to_string(), v)
                })
                .collect();
            obj.insert("fields".into(), Value::Object(m));
        }
        Body::Agent { metrics, upload } => {
            obj.remove("cluster");
            obj.remove("role");
            obj.remove("host");
            obj.insert("agent".into(), json!(l.host));
            if let Some(u) = upload {
                obj.insert("upload".into(), json!(u));
            }
            let m: Map<String, Value> = metrics
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            obj.insert("metrics".into(), Value::Object(m));
        }
    }
    Value::Object(obj)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sample::{Labels, Role};
    use bson::Document;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    /// A real serverStatus (canonical Extended JSON), see tests/fixtures/mongodb/NOTICE.md.
    pub(crate) fn fixture_server_status() -> Document {
        let text = include_str!(
            "../../tests/fixtures/mongodb/otel-collector-contrib/receiver/mongodbreceiver/testdata/serverStatus.json"
        );
        let value: Value = serde_json::from_str(text).expect("fixture is JSON");
        match Bson::try_from(value).expect("fixture is Extended JSON") {
            Bson::Document(d) => d,
            other => panic!("fixture is not a document: {other:?}"),
        }
    }

    #[test]
    fn whole_reply_round_trips_through_extended_json() {
        let doc = fixture_server_status();
        let s = Sample {
            labels: Arc::new(Labels {
                host: "h:1".into(),
                cluster: "c".into(),
                replset: None,
                shard: None,
                role: Role::Standalone,
                version: None,
            }),
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            duration: Duration::from_millis(3),
            body: Body::Reply {
                command: "serverStatus",
                doc: bson::RawDocumentBuf::from_document(&doc).unwrap(),
            },
        };
        let mut out = Vec::new();
        encode(&s, &mut out);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["command"], "serverStatus");
        assert_eq!(v["ts_ms"], 1_700_000_000_123i64);
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123Z");
        assert!(v.get("replset").is_none());
        // Every top-level key of the reply is there, with the same values.
        let back = match Bson::try_from(v["reply"].clone()).unwrap() {
            Bson::Document(d) => d,
            _ => unreachable!(),
        };
        assert_eq!(
            back.keys().collect::<Vec<_>>(),
            doc.keys().collect::<Vec<_>>()
        );
        assert_eq!(back.get("connections"), doc.get("connections"));
    }
}
