//! Prometheus remote-write 1.0: every numeric field of every point becomes
//! one time series `<measurement>_<field>` with the point's tags as labels
//! and one sample (milliseconds). Names follow what VictoriaMetrics makes of
//! the same line protocol, so a dashboard works with either path.
//!
//! A `WriteRequest` is `repeated TimeSeries timeseries = 1`, and protobuf
//! concatenates repeated fields, so the batcher appends each sample's
//! series to one buffer and that buffer is a valid request; the batch is
//! snappy-compressed (block format) when cut, as the protocol demands.
//! Reference: <https://prometheus.io/docs/specs/remote_write_spec/>

use super::flatten::Number;
use super::points::{self, Points};
use super::select::Selection;
use crate::sample::Sample;

/// Appends `sample`'s series, each a `WriteRequest.timeseries` entry.
pub fn encode(sample: &Sample, out: &mut Vec<u8>) {
    encode_selected(sample, &mut Selection::full(), out)
}

/// Like [`encode`], with the reply fields that `sel` keeps.
pub fn encode_selected(sample: &Sample, sel: &mut Selection, out: &mut Vec<u8>) {
    points::encode(
        sample,
        sel,
        &mut Series {
            out,
            head: Head::default(),
            ts_ms: 0,
            scratch: Vec::new(),
        },
    );
}

/// The snappy block encoding of a whole request.
pub fn compress(raw: &[u8]) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(raw)
}

/// The point a Prometheus writer is on: its measurement and its labels
/// (remote-write here, the exposition formats for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct Head {
    measurement: String,
    /// Sorted by name when the first field is written.
    pub labels: Vec<(String, String)>,
}

impl Head {
    pub fn begin(&mut self, measurement: &str) {
        self.measurement.clear();
        self.measurement.push_str(measurement);
        self.labels.clear();
    }

    pub fn append(&mut self, more: &str) {
        self.measurement.push_str(more);
    }

    pub fn tag(&mut self, key: &str, value: &str) {
        push_label(&mut self.labels, key, value);
    }

    /// The series name of `field`; the labels are sorted and unique after.
    pub fn series(&mut self, field: &str) -> String {
        normalize_labels(&mut self.labels);
        metric_name(&self.measurement, field)
    }
}

struct Series<'a> {
    out: &'a mut Vec<u8>,
    head: Head,
    ts_ms: i64,
    scratch: Vec<u8>,
}

impl Points for Series<'_> {
    fn begin(&mut self, ts: i128, measurement: &str) {
        self.head.begin(measurement);
        self.ts_ms = (ts / 1_000_000) as i64;
    }

    fn append_measurement(&mut self, more: &str) {
        self.head.append(more);
    }

    fn tag(&mut self, key: &str, value: &str) {
        self.head.tag(key, value);
    }

    fn field(&mut self, key: &str, value: Number) {
        let Some(value) = sample_value(value) else {
            return;
        };
        let name = self.head.series(key);
        let ts = &mut self.scratch;
        ts.clear();
        label(ts, "__name__", &name);
        for (k, v) in &self.head.labels {
            label(ts, k, v);
        }
        // Sample { double value = 1; int64 timestamp = 2; }
        let mut s = Vec::with_capacity(20);
        s.push(0x09);
        s.extend_from_slice(&value.to_le_bytes());
        s.push(0x10);
        varint(&mut s, self.ts_ms as u64);
        ts.push(0x12);
        varint(ts, s.len() as u64);
        ts.extend_from_slice(&s);
        self.out.push(0x0a);
        varint(self.out, ts.len() as u64);
        self.out.extend_from_slice(ts);
    }

    fn end(&mut self) {}
}

/// A field as a Prometheus sample value; NaN and infinities are left out
/// (receivers and dashboards treat them as garbage, not as data).
pub(crate) fn sample_value(value: Number) -> Option<f64> {
    let v = value.as_f64();
    v.is_finite().then_some(v)
}

/// Adds a point's tag as a label: empty values are left out and the name
/// made valid; `__name__` is the metric's, so a tag of that name is dropped.
fn push_label(labels: &mut Vec<(String, String)>, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let key = label_name(key);
    if key == "__name__" {
        return;
    }
    labels.push((key, value.to_string()));
}

/// Sorted by name, and each name once (the first value wins): Prometheus
/// requires both, and a refused batch (or scrape) would stop the series.
fn normalize_labels(labels: &mut Vec<(String, String)>) {
    if labels.windows(2).any(|w| w[0].0 >= w[1].0) {
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.dedup_by(|b, a| a.0 == b.0);
    }
}

/// `Label { string name = 1; string value = 2; }` as `TimeSeries.labels`.
fn label(out: &mut Vec<u8>, name: &str, value: &str) {
    let len = 1
        + varint_len(name.len() as u64)
        + name.len()
        + 1
        + varint_len(value.len() as u64)
        + value.len();
    out.push(0x0a);
    varint(out, len as u64);
    out.push(0x0a);
    varint(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
    out.push(0x12);
    varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: anything else becomes `_`.
pub(crate) fn metric_name(measurement: &str, field: &str) -> String {
    let mut s = String::with_capacity(measurement.len() + field.len() + 1);
    for c in measurement
        .chars()
        .chain(std::iter::once('_'))
        .chain(field.chars())
    {
        s.push(if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        });
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Body, Labels, Role};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    /// A minimal protobuf reader, enough to check what we wrote.
    fn fields(mut b: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let rd = |b: &mut &[u8]| {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= ((byte & 0x7f) as u64) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        };
        while !b.is_empty() {
            let tag = rd(&mut b);
            match tag & 7 {
                2 => {
                    let len = rd(&mut b) as usize;
                    out.push((tag >> 3, b[..len].to_vec()));
                    b = &b[len..];
                }
                1 => {
                    out.push((tag >> 3, b[..8].to_vec()));
                    b = &b[8..];
                }
                0 => {
                    let v = rd(&mut b);
                    out.push((tag >> 3, v.to_le_bytes().to_vec()));
                }
                w => panic!("wire type {w}"),
            }
        }
        out
    }

    #[test]
    fn status_becomes_sorted_labelled_series_with_millisecond_samples() {
        let s = Sample {
            labels: Arc::new(Labels {
                host: "db1:27017".into(),
                cluster: "prod".into(),
                replset: Some("rs0".into()),
                shard: None,
                role: Role::Primary,
                version: None,
            }),
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            duration: Duration::from_millis(250),
            body: Body::Status {
                up: true,
                failure: None,
            },
        };
        let mut out = Vec::new();
        encode(&s, &mut out);
        let series = fields(&out);
        assert_eq!(series.len(), 2, "up and collect_seconds");
        let mut seen = Vec::new();
        for (field, ts) in &series {
            assert_eq!(*field, 1);
            let parts = fields(ts);
            let labels: Vec<(String, String)> = parts
                .iter()
                .filter(|(f, _)| *f == 1)
                .map(|(_, l)| {
                    let kv = fields(l);
                    (
                        String::from_utf8(kv[0].1.clone()).unwrap(),
                        String::from_utf8(kv[1].1.clone()).unwrap(),
                    )
                })
                .collect();
            let mut sorted = labels.clone();
            sorted.sort();
            assert_eq!(labels, sorted, "labels sorted by name");
            let sample = fields(&parts.iter().find(|(f, _)| *f == 2).unwrap().1);
            let value = f64::from_le_bytes(sample[0].1.clone().try_into().unwrap());
            let ts = u64::from_le_bytes(sample[1].1.clone().try_into().unwrap());
            assert_eq!(ts, 1_700_000_000_123);
            seen.push((labels[0].1.clone(), value));
            assert!(labels.contains(&("host".into(), "db1:27017".into())));
            assert!(labels.contains(&("replset".into(), "rs0".into())));
        }
        assert_eq!(seen[0], ("mongodb_up".into(), 1.0));
        assert_eq!(seen[1], ("mongodb_collect_seconds".into(), 0.25));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(
            metric_name("mongodb_serverstatus", "wiredTiger_cache_bytes.x"),
            "mongodb_serverstatus_wiredTiger_cache_bytes_x"
        );
        assert_eq!(metric_name("9lives", "a"), "_9lives_a");
        assert_eq!(label_name("member-state"), "member_state");
    }

    #[test]
    fn snappy_output_decompresses_to_the_request() {
        let raw = b"abcabcabcabcabcabcabcabc".repeat(100);
        let z = compress(&raw).unwrap();
        assert!(z.len() < raw.len() / 4);
        assert_eq!(snap::raw::Decoder::new().decompress_vec(&z).unwrap(), raw);
    }
}
