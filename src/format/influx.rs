//! InfluxDB line protocol.
//!
//! One line per measurement: `measurement,tags fields timestamp_ns`. Tags are
//! `host`, `cluster`, `replset` (when the host is a member) and `role`. Each
//! command maps to a measurement (`serverStatus` → `mongodb_serverstatus`);
//! `replSetGetStatus` also yields one `mongodb_replset_member` line per
//! member with its health, state and replication lag, which operators need
//! as series of their own. Host status is `mongodb up=1i`. Reference:
//! <https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/>

use std::io::Write;

use bson::{Bson, Document};

use super::flatten::{flatten, number, Number};
use crate::sample::{Body, Sample};

/// Appends `sample` as one or more lines.
pub fn encode(sample: &Sample, out: &mut Vec<u8>) {
    let ts = sample.unix_nanos();
    match &sample.body {
        Body::Reply { command, doc } => match *command {
            "replSetGetStatus" => {
                reply_line(sample, "mongodb_replset", doc, ts, out);
                replset_members(sample, doc, ts, out);
            }
            "buildInfo" => buildinfo_line(sample, doc, ts, out),
            "dbStats" => {
                let mut line = Line::start(out, "mongodb_dbstats");
                line.labels(sample);
                if let Ok(db) = doc.get_str("db") {
                    line.tag("db", db);
                }
                flatten(doc, "", &mut |name, value| line.field(name, value));
                line.finish(ts);
            }
            other => {
                let mut m = String::from("mongodb_");
                m.push_str(&other.to_ascii_lowercase());
                reply_line(sample, &m, doc, ts, out);
            }
        },
        Body::Status { up, failure } => {
            let mut line = Line::start(out, "mongodb");
            line.labels(sample);
            if let Some(f) = failure {
                line.tag("error_kind", f.kind);
                line.tag("failed_command", f.command);
            }
            line.field("up", Number::Int(*up as i64));
            line.field(
                "collect_seconds",
                Number::Float(sample.duration.as_secs_f64()),
            );
            line.finish(ts);
        }
        Body::Derived { name, tags, fields } => {
            let mut line = Line::start(out, "mongodb_");
            line.append_measurement(name);
            line.labels(sample);
            for (k, v) in tags {
                line.tag(k, v);
            }
            for (k, v) in fields {
                line.field(k, *v);
            }
            line.finish(ts);
        }
        Body::Agent { metrics } => {
            let mut line = Line::start(out, "mongomon");
            line.tag("agent", &sample.labels.host);
            for (name, value) in metrics {
                line.field(name, Number::Int(*value as i64));
            }
            line.finish(ts);
        }
    }
}

fn reply_line(sample: &Sample, measurement: &str, doc: &Document, ts: i128, out: &mut Vec<u8>) {
    let mut line = Line::start(out, measurement);
    line.labels(sample);
    flatten(doc, "", &mut |name, value| line.field(name, value));
    line.finish(ts);
}

fn buildinfo_line(sample: &Sample, doc: &Document, ts: i128, out: &mut Vec<u8>) {
    let mut line = Line::start(out, "mongodb_buildinfo");
    line.labels(sample);
    if let Ok(v) = doc.get_str("version") {
        line.tag("version", v);
    }
    if let Ok(parts) = doc.get_array("versionArray") {
        for (name, part) in ["version_major", "version_minor", "version_patch"]
            .iter()
            .zip(parts)
        {
            if let Some(n) = number(part) {
                line.field(name, n);
            }
        }
    }
    flatten(doc, "", &mut |name, value| line.field(name, value));
    line.finish(ts);
}

/// One line per member of a `replSetGetStatus` reply. Lag is the primary's
/// optime date minus the member's, in seconds, as the primary is the
/// reference every member replicates from (directly or not).
fn replset_members(sample: &Sample, doc: &Document, ts: i128, out: &mut Vec<u8>) {
    let Ok(members) = doc.get_array("members") else {
        return;
    };
    let optime_ms = |m: &Document| match m.get("optimeDate") {
        Some(Bson::DateTime(d)) => Some(d.timestamp_millis()),
        _ => None,
    };
    let primary_optime = members
        .iter()
        .filter_map(Bson::as_document)
        .find(|m| {
            m.get_i32("state").ok() == Some(1) || m.get_str("stateStr").ok() == Some("PRIMARY")
        })
        .and_then(optime_ms);
    for member in members.iter().filter_map(Bson::as_document) {
        let mut line = Line::start(out, "mongodb_replset_member");
        line.labels(sample);
        if let Ok(name) = member.get_str("name") {
            line.tag("member", name);
        }
        if let Ok(state) = member.get_str("stateStr") {
            line.tag("member_state", state);
        }
        for key in ["health", "state", "uptime", "pingMs", "configVersion"] {
            if let Some(n) = member.get(key).and_then(number) {
                line.field(key, n);
            }
        }
        if let Some(Bson::Boolean(s)) = member.get("self") {
            line.field("self", Number::Int(*s as i64));
        }
        if let Some(ms) = optime_ms(member) {
            line.field("optime_seconds", Number::Float(ms as f64 / 1000.0));
            let is_arbiter = member.get_str("stateStr").ok() == Some("ARBITER");
            if let (Some(p), false) = (primary_optime, is_arbiter) {
                line.field(
                    "lag_seconds",
                    Number::Float((p - ms).max(0) as f64 / 1000.0),
                );
            }
        }
        line.finish(ts);
    }
}

/// Builds one line; writes nothing when no field was added, because a line
/// without fields is a syntax error for every receiver.
struct Line<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    fields: usize,
}

impl<'a> Line<'a> {
    fn start(out: &'a mut Vec<u8>, measurement: &str) -> Self {
        let start = out.len();
        escape(out, measurement, b", ");
        Line {
            out,
            start,
            fields: 0,
        }
    }

    fn labels(&mut self, sample: &Sample) {
        let l = &sample.labels;
        self.tag("host", &l.host);
        self.tag("cluster", &l.cluster);
        if let Some(rs) = &l.replset {
            self.tag("replset", rs);
        }
        if let Some(shard) = &l.shard {
            self.tag("shard", shard);
        }
        self.tag("role", l.role.as_str());
        if let Some(v) = &l.version {
            self.tag("version", v);
        }
    }

    /// Extends the measurement name (before any tag is written).
    fn append_measurement(&mut self, more: &str) {
        escape(self.out, more, b", ");
    }

    /// Tags must all come before the first field; an empty value is not
    /// allowed in line protocol, so it is left out.
    fn tag(&mut self, key: &str, value: &str) {
        debug_assert_eq!(self.fields, 0);
        if value.is_empty() {
            return;
        }
        self.out.push(b',');
        escape(self.out, key, b",= ");
        self.out.push(b'=');
        escape(self.out, value, b",= ");
    }

    fn field(&mut self, key: &str, value: Number) {
        self.out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        escape(self.out, key, b",= ");
        self.out.push(b'=');
        // Writing into a Vec cannot fail.
        let _ = match value {
            Number::Int(i) => write!(self.out, "{i}i"),
            Number::Float(f) => write!(self.out, "{f}"),
        };
    }

    fn finish(self, ts: i128) {
        if self.fields == 0 {
            self.out.truncate(self.start);
            return;
        }
        let _ = writeln!(self.out, " {ts}");
    }
}

/// Backslash-escapes the given special bytes; newlines, which line protocol
/// cannot carry at all, become spaces (escaped as well).
fn escape(out: &mut Vec<u8>, s: &str, special: &[u8]) {
    for &b in s.as_bytes() {
        let b = if b == b'\n' || b == b'\r' { b' ' } else { b };
        if special.contains(&b) || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Failure, Labels, Role};
    use bson::doc;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample(body: Body) -> Sample {
        Sample {
            labels: Arc::new(Labels {
                host: "db 1,a=b:27017".into(),
                cluster: "prod".into(),
                replset: Some("rs0".into()),
                shard: None,
                role: Role::Primary,
                version: None,
            }),
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(1500),
            body,
        }
    }

    fn text(s: &Sample) -> String {
        let mut out = Vec::new();
        encode(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tags_and_fields_are_escaped() {
        let s = sample(Body::Reply {
            command: "serverStatus",
            doc: doc! {"connections": {"current": 5}, "uptime": 2.5, "weird key,=": 1},
        });
        assert_eq!(
            text(&s),
            "mongodb_serverstatus,host=db\\ 1\\,a\\=b:27017,cluster=prod,replset=rs0,role=primary \
             connections_current=5i,uptime=2.5,weird_key__=1i 1700000000000000000\n"
        );
    }

    #[test]
    fn status_line_carries_failure_kind() {
        let s = sample(Body::Status {
            up: false,
            failure: Some(Failure {
                kind: "timeout",
                command: "hello",
                message: "x".into(),
            }),
        });
        assert_eq!(
            text(&s),
            "mongodb,host=db\\ 1\\,a\\=b:27017,cluster=prod,replset=rs0,role=primary,error_kind=timeout,failed_command=hello \
             up=0i,collect_seconds=1.5 1700000000000000000\n"
        );
    }

    #[test]
    fn derived_and_dbstats_lines() {
        let s = sample(Body::Derived {
            name: "oplog",
            tags: vec![],
            fields: vec![("window_hours", Number::Float(48.0))],
        });
        assert!(text(&s).starts_with("mongodb_oplog,host="), "{}", text(&s));
        assert!(text(&s).contains(" window_hours=48 "));
        let s = sample(Body::Reply {
            command: "dbStats",
            doc: doc! {"db": "app", "objects": 12},
        });
        assert!(
            text(&s).contains(",role=primary,db=app objects=12i "),
            "{}",
            text(&s)
        );
    }

    #[test]
    fn reply_without_numbers_writes_nothing() {
        let s = sample(Body::Reply {
            command: "getCmdLineOpts",
            doc: doc! {"argv": ["mongod"]},
        });
        assert_eq!(text(&s), "");
    }

    #[test]
    fn replset_members_get_lag_against_primary() {
        let t = |ms: i64| bson::DateTime::from_millis(ms);
        let s = sample(Body::Reply {
            command: "replSetGetStatus",
            doc: doc! {"set": "rs0", "myState": 1, "members": [
                {"name": "a:1", "health": 1.0, "state": 1, "stateStr": "PRIMARY", "optimeDate": t(10_000), "self": true},
                {"name": "b:1", "health": 1.0, "state": 2, "stateStr": "SECONDARY", "optimeDate": t(7_500)},
                {"name": "c:1", "health": 0.0, "state": 8, "stateStr": "(not reachable/healthy)"},
            ]},
        });
        let out = text(&s);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("mongodb_replset,") && lines[0].contains(" myState=1i "));
        assert!(lines[1].contains("member=a:1,member_state=PRIMARY health=1,state=1i,self=1i,optime_seconds=10,lag_seconds=0 "));
        assert!(lines[2].contains("lag_seconds=2.5 "), "{}", lines[2]);
        assert!(lines[3].contains("member_state=(not\\ reachable/healthy) health=0,state=8i "));
    }

    #[test]
    fn real_server_status_fixture_flattens_to_one_valid_line() {
        let doc = crate::format::json::tests::fixture_server_status();
        let s = sample(Body::Reply {
            command: "serverStatus",
            doc,
        });
        let out = text(&s);
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains("opcounters_insert="));
        assert!(out.contains("connections_current="));
        assert!(!out.contains("NaN") && !out.contains("inf"));
    }
}
