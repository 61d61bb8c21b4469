//! The point model shared by the numeric formats (line protocol and
//! Prometheus remote-write): every sample becomes points, each a
//! measurement with tags and numeric fields at one time.
//!
//! Each command maps to a measurement (`serverStatus` →
//! `mongodb_serverstatus`); `replSetGetStatus` also yields one
//! `mongodb_replset_member` point per member with its health, state and
//! replication lag, which operators need as series of their own. Host
//! status is `mongodb` with `up`. Tags are `host`, `cluster`, `replset` and
//! `shard` (when the host is a member), `role` and `version`.

use bson::{RawBsonRef, RawDocument};

use super::flatten::{flatten, raw_number, Number};
use super::select::Selection;
use crate::sample::{Body, Sample};

/// A writer of points. Calls come as `begin`, tags, fields, `end`; every
/// tag comes before the first field.
pub trait Points {
    /// Starts a point at `ts` (Unix nanoseconds).
    fn begin(&mut self, ts: i128, measurement: &str);
    /// Extends the measurement name (before any tag).
    fn append_measurement(&mut self, more: &str);
    /// Adds a tag; empty values are left out (no format can carry them).
    fn tag(&mut self, key: &str, value: &str);
    fn field(&mut self, key: &str, value: Number);
    /// A field whose key is a flattened name (only `[A-Za-z0-9_]`), which
    /// a writer may copy without escaping.
    fn field_sanitized(&mut self, key: &str, value: Number) {
        self.field(key, value)
    }
    /// Ends the point; a point without fields writes nothing.
    fn end(&mut self);
}

fn labels<P: Points>(out: &mut P, sample: &Sample) {
    let l = &sample.labels;
    out.tag("host", &l.host);
    out.tag("cluster", &l.cluster);
    if let Some(rs) = &l.replset {
        out.tag("replset", rs);
    }
    if let Some(shard) = &l.shard {
        out.tag("shard", shard);
    }
    out.tag("role", l.role.as_str());
    if let Some(v) = &l.version {
        out.tag("version", v);
    }
}

/// Walks `sample` as points (measurement, tags, numeric fields); reply
/// fields go through `sel`.
pub fn encode<P: Points>(sample: &Sample, sel: &mut Selection, out: &mut P) {
    let ts = sample.unix_nanos();
    match &sample.body {
        Body::Reply { command, doc } => match *command {
            "replSetGetStatus" => {
                reply_line(sample, "mongodb_replset", doc, ts, sel, out);
                replset_members(sample, doc, ts, out);
            }
            "buildInfo" => buildinfo_line(sample, doc, ts, sel, out),
            "dbStats" => {
                out.begin(ts, "mongodb_dbstats");
                labels(out, sample);
                if let Ok(db) = doc.get_str("db") {
                    out.tag("db", db);
                }
                flatten(doc, "", &mut |name, value| {
                    if sel.keeps("mongodb_dbstats", name) {
                        out.field_sanitized(name, value)
                    }
                });
                out.end();
            }
            other => {
                let mut m = String::from("mongodb_");
                m.push_str(&other.to_ascii_lowercase());
                reply_line(sample, &m, doc, ts, sel, out);
            }
        },
        Body::Status { up, failure } => {
            out.begin(ts, "mongodb");
            labels(out, sample);
            if let Some(f) = failure {
                out.tag("error_kind", f.kind);
                out.tag("failed_command", f.command);
            }
            out.field("up", Number::Int(*up as i64));
            out.field(
                "collect_seconds",
                Number::Float(sample.duration.as_secs_f64()),
            );
            out.end();
        }
        Body::Derived { name, tags, fields } => {
            out.begin(ts, "mongodb_");
            out.append_measurement(name);
            labels(out, sample);
            for (k, v) in tags {
                out.tag(k, v);
            }
            for (k, v) in fields {
                out.field(k, *v);
            }
            out.end();
        }
        Body::Agent { metrics, upload } => {
            out.begin(
                ts,
                if upload.is_some() {
                    "mongomon_upload"
                } else {
                    "mongomon"
                },
            );
            out.tag("agent", &sample.labels.host);
            if let Some(u) = upload {
                out.tag("upload", u);
            }
            for (name, value) in metrics {
                out.field(name, Number::Int(*value as i64));
            }
            out.end();
        }
    }
}

fn reply_line<P: Points>(
    sample: &Sample,
    measurement: &str,
    doc: &RawDocument,
    ts: i128,
    sel: &mut Selection,
    out: &mut P,
) {
    out.begin(ts, measurement);
    labels(out, sample);
    let mut keep = |name: &str, value| {
        if sel.keeps(measurement, name) {
            out.field_sanitized(name, value)
        }
    };
    flatten(doc, "", &mut keep);
    if measurement == "mongodb_serverstatus" {
        super::schema::legacy_names(doc, &mut keep);
    }
    out.end();
}

fn buildinfo_line<P: Points>(
    sample: &Sample,
    doc: &RawDocument,
    ts: i128,
    sel: &mut Selection,
    out: &mut P,
) {
    out.begin(ts, "mongodb_buildinfo");
    labels(out, sample);
    // The host's labels carry the version once it is known; a second tag
    // of the same name is refused by InfluxDB and Prometheus alike.
    if let (None, Ok(v)) = (&sample.labels.version, doc.get_str("version")) {
        out.tag("version", v);
    }
    if let Ok(parts) = doc.get_array("versionArray") {
        for (name, part) in ["version_major", "version_minor", "version_patch"]
            .iter()
            .zip(parts)
        {
            if let Some(n) = part.ok().and_then(raw_number) {
                out.field(name, n);
            }
        }
    }
    flatten(doc, "", &mut |name, value| {
        if sel.keeps("mongodb_buildinfo", name) {
            out.field_sanitized(name, value)
        }
    });
    out.end();
}

/// One line per member of a `replSetGetStatus` reply. Lag is the primary's
/// optime date minus the member's, in seconds, as the primary is the
/// reference every member replicates from (directly or not).
fn replset_members<P: Points>(sample: &Sample, doc: &RawDocument, ts: i128, out: &mut P) {
    let Ok(members) = doc.get_array("members") else {
        return;
    };
    let members: Vec<&RawDocument> = members
        .into_iter()
        .filter_map(|m| m.ok().and_then(|m| m.as_document()))
        .collect();
    let optime_ms = |m: &RawDocument| {
        m.get_datetime("optimeDate")
            .ok()
            .map(|d| d.timestamp_millis())
    };
    let primary_optime = members
        .iter()
        .find(|m| {
            m.get_i32("state").ok() == Some(1) || m.get_str("stateStr").ok() == Some("PRIMARY")
        })
        .and_then(|m| optime_ms(m));
    for member in members {
        out.begin(ts, "mongodb_replset_member");
        labels(out, sample);
        if let Ok(name) = member.get_str("name") {
            out.tag("member", name);
        }
        if let Ok(state) = member.get_str("stateStr") {
            out.tag("member_state", state);
        }
        for key in ["health", "state", "uptime", "pingMs", "configVersion"] {
            if let Some(n) = member.get(key).ok().flatten().and_then(raw_number) {
                out.field(key, n);
            }
        }
        if let Ok(Some(RawBsonRef::Boolean(s))) = member.get("self") {
            out.field("self", Number::Int(s as i64));
        }
        // A member the reporting node cannot reach shows the epoch as its
        // optime (mongod does so too): no lag of 57 years, just no lag.
        let health = member.get("health").ok().flatten().and_then(raw_number);
        let reachable = !matches!(health, Some(Number::Int(0)) | Some(Number::Float(0.0)));
        if let Some(ms) = optime_ms(member).filter(|ms| *ms > 0) {
            out.field("optime_seconds", Number::Float(ms as f64 / 1000.0));
            let is_arbiter = member.get_str("stateStr").ok() == Some("ARBITER");
            if let (Some(p), false, true) =
                (primary_optime.filter(|p| *p > 0), is_arbiter, reachable)
            {
                out.field(
                    "lag_seconds",
                    Number::Float((p - ms).max(0) as f64 / 1000.0),
                );
            }
        }
        out.end();
    }
}
