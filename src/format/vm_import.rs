//! JSON lines in VictoriaMetrics' import schema (`/api/v1/import`): the
//! numeric part of every sample, one series per line,
//! `{"metric":{"__name__":…,tags…},"values":[v],"timestamps":[ms]}`. Names
//! are the same as the line-protocol path gives (`<measurement>_<field>`).
//! Reference: <https://docs.victoriametrics.com/#how-to-import-data-in-json-line-format>

use serde_json::{Map, Value};

use super::flatten::Number;
use super::points::{self, Points};
use super::select::Selection;
use crate::sample::Sample;

/// Appends one line per numeric field of `sample`.
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
            measurement: String::new(),
            tags: Map::new(),
            ts_ms: 0,
        },
    );
}

struct Lines<'a> {
    out: &'a mut Vec<u8>,
    measurement: String,
    tags: Map<String, Value>,
    ts_ms: i64,
}

impl Points for Lines<'_> {
    fn begin(&mut self, ts: i128, measurement: &str) {
        self.measurement.clear();
        self.measurement.push_str(measurement);
        self.tags.clear();
        self.ts_ms = (ts / 1_000_000) as i64;
    }

    fn append_measurement(&mut self, more: &str) {
        self.measurement.push_str(more);
    }

    fn tag(&mut self, key: &str, value: &str) {
        if !value.is_empty() && key != "__name__" {
            self.tags
                .insert(key.to_string(), Value::String(value.to_string()));
        }
    }

    fn field(&mut self, key: &str, value: Number) {
        let v = match value {
            Number::Int(i) => Value::from(i),
            Number::Float(f) if f.is_finite() => Value::from(f),
            Number::Float(_) => return,
        };
        let mut metric = self.tags.clone();
        metric.insert(
            "__name__".into(),
            Value::String(format!("{}_{key}", self.measurement)),
        );
        let line = serde_json::json!({
            "metric": Value::Object(metric),
            "values": [v],
            "timestamps": [self.ts_ms],
        });
        // Serialising a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &line);
        self.out.push(b'\n');
    }

    fn end(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Body, Labels, Role};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn one_line_per_field_in_the_import_schema() {
        let s = Sample {
            labels: Arc::new(Labels {
                host: "h:1".into(),
                cluster: "c".into(),
                replset: None,
                shard: None,
                role: Role::Standalone,
                version: None,
            }),
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
            duration: Duration::from_millis(20),
            body: Body::Status {
                up: false,
                failure: None,
            },
        };
        let mut out = Vec::new();
        encode(&s, &mut out);
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["metric"]["__name__"], "mongodb_up");
        assert_eq!(lines[0]["metric"]["host"], "h:1");
        assert_eq!(lines[0]["values"][0], 0);
        assert_eq!(lines[0]["timestamps"][0], 1_700_000_000_500i64);
        assert_eq!(lines[1]["metric"]["__name__"], "mongodb_collect_seconds");
    }
}
