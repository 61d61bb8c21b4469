//! InfluxDB line protocol: one line per point,
//! `measurement,tags fields timestamp_ns` (see [`super::points`] for what
//! the points are). Reference:
//! <https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/>

use std::io::Write;

use super::flatten::Number;
use super::points::{self, Points};
use super::select::Selection;
use crate::sample::Sample;

/// Appends `sample` as one or more lines.
pub fn encode(sample: &Sample, out: &mut Vec<u8>) {
    encode_selected(sample, &mut Selection::full(), out)
}

/// Like [`encode`], with the reply fields that `sel` keeps.
pub fn encode_selected(sample: &Sample, sel: &mut Selection, out: &mut Vec<u8>) {
    points::encode(
        sample,
        sel,
        &mut Lines {
            out,
            start: 0,
            fields: 0,
            ts: 0,
        },
    );
}

/// Writes points as lines; a point without fields is taken back, because
/// a line without fields is a syntax error for every receiver.
struct Lines<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    fields: usize,
    ts: i128,
}

impl Points for Lines<'_> {
    fn begin(&mut self, ts: i128, measurement: &str) {
        self.start = self.out.len();
        self.fields = 0;
        self.ts = ts;
        escape(self.out, measurement, &MEASUREMENT);
    }

    fn append_measurement(&mut self, more: &str) {
        escape(self.out, more, &MEASUREMENT);
    }

    fn tag(&mut self, key: &str, value: &str) {
        debug_assert_eq!(self.fields, 0);
        // Empty once trailing backslashes are dropped: no tag at all.
        if value.trim_end_matches('\\').is_empty() {
            return;
        }
        self.out.push(b',');
        escape(self.out, key, &KEY);
        self.out.push(b'=');
        escape(self.out, value, &KEY);
    }

    fn field(&mut self, key: &str, value: Number) {
        self.field_start();
        escape(self.out, key, &KEY);
        self.field_value(value);
    }

    fn field_sanitized(&mut self, key: &str, value: Number) {
        self.field_start();
        self.out.extend_from_slice(key.as_bytes());
        self.field_value(value);
    }

    fn end(&mut self) {
        if self.fields == 0 {
            self.out.truncate(self.start);
            return;
        }
        self.out.push(b' ');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(self.ts).as_bytes());
        self.out.push(b'\n');
    }
}

/// Which bytes need a backslash (or, for newlines, a replacement) in a
/// measurement (`,` and space) and in a tag or field key or tag value
/// (also `=`), as lookup tables: names are checked byte by byte for every
/// field of every sample.
const fn special_table(extra_eq: bool) -> [bool; 256] {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b' ' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'=' as usize] = extra_eq;
    t
}
static MEASUREMENT: [bool; 256] = special_table(false);
static KEY: [bool; 256] = special_table(true);

impl Lines<'_> {
    fn field_start(&mut self) {
        self.out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
    }

    fn field_value(&mut self, value: Number) {
        self.out.push(b'=');
        match value {
            Number::Int(i) => {
                self.out
                    .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                self.out.push(b'i');
            }
            // Writing into a Vec cannot fail.
            Number::Float(f) => {
                let _ = write!(self.out, "{f}");
            }
        }
    }
}

/// Backslash-escapes the special bytes of `table`; newlines, which line
/// protocol cannot carry at all, become spaces (escaped as well).
fn escape(out: &mut Vec<u8>, s: &str, table: &[bool; 256]) {
    // A name or tag value may not end with a backslash (the parser would
    // read it as escaping what follows): trailing ones are dropped, as
    // Telegraf does.
    let s = s.trim_end_matches('\\');
    // Flattened field names never need escaping: copy them whole.
    if !s.bytes().any(|b| table[b as usize]) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for &b in s.as_bytes() {
        let b = if b == b'\n' || b == b'\r' { b' ' } else { b };
        if table[b as usize] {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Body, Failure, Labels, Role};
    use bson::doc;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn raw(d: bson::Document) -> bson::RawDocumentBuf {
        bson::RawDocumentBuf::from_document(&d).unwrap()
    }

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
            doc: raw(doc! {"connections": {"current": 5}, "uptime": 2.5, "weird key,=": 1}),
        });
        assert_eq!(
            text(&s),
            "mongodb_serverstatus,host=db\\ 1\\,a\\=b:27017,cluster=prod,replset=rs0,role=primary \
             connections_current=5i,uptime=2.5,weird_key__=1i 1700000000000000000\n"
        );
    }

    /// Found by tests/fuzz.rs: a tag value ending with a backslash made a
    /// line no parser accepts (`cluster=\\ ` escapes the space).
    #[test]
    fn a_tag_value_ending_with_a_backslash_loses_it() {
        let mut s = sample(Body::Status {
            up: true,
            failure: None,
        });
        let mut l = (*s.labels).clone();
        l.cluster = "prod\\\\".into();
        l.replset = Some("\\".into());
        s.labels = Arc::new(l);
        assert_eq!(
            text(&s),
            "mongodb,host=db\\ 1\\,a\\=b:27017,cluster=prod,role=primary up=1i,collect_seconds=1.5 1700000000000000000\n"
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
            doc: raw(doc! {"db": "app", "objects": 12}),
        });
        assert!(
            text(&s).contains(",role=primary,db=app objects=12i "),
            "{}",
            text(&s)
        );
    }

    #[test]
    fn an_8_0_server_status_also_carries_the_old_ticket_names() {
        let s = sample(Body::Reply {
            command: "serverStatus",
            doc: raw(doc! {"queues": {"execution": {"read": {"available": 7}}}, "uptime": 1}),
        });
        let line = text(&s);
        assert!(
            line.contains(" queues_execution_read_available=7i,uptime=1i,wiredTiger_concurrentTransactions_read_available=7i "),
            "{line}"
        );
    }

    #[test]
    fn reply_without_numbers_writes_nothing() {
        let s = sample(Body::Reply {
            command: "getCmdLineOpts",
            doc: raw(doc! {"argv": ["mongod"]}),
        });
        assert_eq!(text(&s), "");
    }

    #[test]
    fn replset_members_get_lag_against_primary() {
        let t = |ms: i64| bson::DateTime::from_millis(ms);
        let s = sample(Body::Reply {
            command: "replSetGetStatus",
            doc: raw(doc! {"set": "rs0", "myState": 1, "members": [
                {"name": "a:1", "health": 1.0, "state": 1, "stateStr": "PRIMARY", "optimeDate": t(10_000), "self": true},
                {"name": "b:1", "health": 1.0, "state": 2, "stateStr": "SECONDARY", "optimeDate": t(7_500)},
                {"name": "c:1", "health": 0.0, "state": 8, "stateStr": "(not reachable/healthy)"},
                // Unreachable members report the epoch as their optime.
                {"name": "d:1", "health": 0.0, "state": 8, "stateStr": "(not reachable/healthy)", "optimeDate": t(0)},
                {"name": "e:1", "health": 0, "state": 6, "stateStr": "UNKNOWN", "optimeDate": t(5_000)},
            ]}),
        });
        let out = text(&s);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 6, "{out}");
        assert!(lines[0].starts_with("mongodb_replset,") && lines[0].contains(" myState=1i "));
        assert!(lines[1].contains("member=a:1,member_state=PRIMARY health=1,state=1i,self=1i,optime_seconds=10,lag_seconds=0 "));
        assert!(lines[2].contains("lag_seconds=2.5 "), "{}", lines[2]);
        assert!(lines[3].contains("member_state=(not\\ reachable/healthy) health=0,state=8i "));
        // No 57-year lag for the epoch, and no lag for an unhealthy member.
        assert!(
            !lines[4].contains("optime_seconds") && !lines[4].contains("lag_seconds"),
            "{}",
            lines[4]
        );
        assert!(
            lines[5].contains("optime_seconds=5 ") && !lines[5].contains("lag_seconds"),
            "{}",
            lines[5]
        );
    }

    #[test]
    fn real_server_status_fixture_flattens_to_one_valid_line() {
        let doc = crate::format::json::tests::fixture_server_status();
        let s = sample(Body::Reply {
            command: "serverStatus",
            doc: raw(doc),
        });
        let out = text(&s);
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains("opcounters_insert="));
        assert!(out.contains("connections_current="));
        assert!(!out.contains("NaN") && !out.contains("inf"));
    }
}
