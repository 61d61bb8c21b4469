//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0, for
//! the listener's `/metrics`.
//!
//! Samples become series through the same walk and the same naming as
//! remote-write ([`super::points`], [`super::remote_write`]'s names and
//! label rules), so a series scraped here and one pushed there are the same
//! series. [`collect`] turns samples into [`Point`]s (labels rendered once
//! per point), which the monitors' batchers keep per host; [`render`]
//! groups every host's series by metric name, as both formats require, on
//! the listener's thread. No timestamps are written: a scrape reports the
//! latest value, and Prometheus marks a series stale once it is gone, which
//! is how a host that left the topology disappears.
//! References: <https://prometheus.io/docs/instrumenting/exposition_formats/>,
//! <https://prometheus.io/docs/specs/om/open_metrics_spec/>

use std::collections::HashMap;
use std::io::Write as _;

use super::flatten::Number;
use super::points::{self, Points};
use super::remote_write::{sample_value, Head};
use super::select::Selection;
use crate::sample::Sample;

/// `Content-Type` of the text format.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One point of a sample: its rendered label set and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `{name="value",...}`, sorted, escaped; empty for no labels.
    pub labels: String,
    /// `(metric name, value)`.
    pub series: Vec<(String, f64)>,
}

impl Point {
    /// The value of series `name`, if this point has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.series.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Appends the points of `sample` (the fields `sel` keeps) to `out`.
pub fn collect(sample: &Sample, sel: &mut Selection, out: &mut Vec<Point>) {
    points::encode(
        sample,
        sel,
        &mut Collector {
            out,
            head: Head::default(),
            current: None,
        },
    );
}

struct Collector<'a> {
    out: &'a mut Vec<Point>,
    head: Head,
    current: Option<Point>,
}

impl Points for Collector<'_> {
    fn begin(&mut self, _ts: i128, measurement: &str) {
        self.head.begin(measurement);
        self.current = None;
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
        let labels = &self.head.labels;
        self.current
            .get_or_insert_with(|| Point {
                labels: render_labels(labels),
                series: Vec::new(),
            })
            .series
            .push((name, value));
    }

    fn end(&mut self) {
        if let Some(p) = self.current.take() {
            self.out.push(p);
        }
    }
}

fn render_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut s = String::with_capacity(labels.len() * 24);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// Which of the two formats to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Text,
    OpenMetrics,
}

impl Flavor {
    /// OpenMetrics when the `Accept` header names it (as Prometheus does),
    /// the text format otherwise.
    pub fn from_accept(accept: Option<&str>) -> Flavor {
        let wanted = |part: &str| {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim();
            // `q=0` means "not this one".
            let refused = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        };
        match accept {
            Some(a) if a.split(',').any(wanted) => Flavor::OpenMetrics,
            _ => Flavor::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Flavor::Text => TEXT,
            Flavor::OpenMetrics => OPENMETRICS,
        }
    }
}

/// Writes every point of every group, grouped by metric name (a family's
/// series together, under one `# TYPE` line). The agent cannot tell
/// counters from gauges in a reply (serverStatus mixes them), so every
/// family is `untyped` (`unknown` in OpenMetrics), as remote-write leaves
/// them too.
pub fn render<'a>(groups: impl IntoIterator<Item = &'a [Point]>, flavor: Flavor) -> Vec<u8> {
    let mut out = Vec::new();
    render_chunks(groups, flavor, usize::MAX, &mut |chunk| {
        out.extend_from_slice(chunk);
        true
    });
    out
}

/// [`render`] in pieces of about `chunk` bytes handed to `sink` as they are
/// written, so that a large scrape is never held whole in memory (1,000
/// hosts are about 45 MB of text). `sink` returns false to stop early (the
/// scraper went away).
pub fn render_chunks<'a>(
    groups: impl IntoIterator<Item = &'a [Point]>,
    flavor: Flavor,
    chunk: usize,
    sink: &mut dyn FnMut(&[u8]) -> bool,
) {
    let mut families: HashMap<&str, Vec<(&str, f64)>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for points in groups {
        for p in points {
            for (name, value) in &p.series {
                families
                    .entry(name.as_str())
                    .or_insert_with(|| {
                        order.push(name.as_str());
                        Vec::new()
                    })
                    .push((p.labels.as_str(), *value));
            }
        }
    }
    order.sort_unstable();
    let kind = match flavor {
        Flavor::Text => "untyped",
        Flavor::OpenMetrics => "unknown",
    };
    let mut out = Vec::with_capacity(chunk.min(1 << 20) + 4096);
    let mut ib = itoa::Buffer::new();
    for name in order {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in &families[name] {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(labels.as_bytes());
            out.push(b' ');
            // Whole numbers (most of them) without the float formatter.
            if v.fract() == 0.0 && v.abs() < 1e15 {
                out.extend_from_slice(ib.format(*v as i64).as_bytes());
            } else {
                let _ = write!(out, "{v}");
            }
            out.push(b'\n');
            if out.len() >= chunk {
                if !sink(&out) {
                    return;
                }
                out.clear();
            }
        }
    }
    if flavor == Flavor::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    if !out.is_empty() {
        sink(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Body, Labels, Role};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn status(host: &str, up: bool) -> Sample {
        Sample {
            labels: Arc::new(Labels {
                host: host.into(),
                cluster: "prod \"east\"".into(),
                replset: Some("rs0".into()),
                shard: None,
                role: Role::Secondary,
                version: Some("7.0.1".into()),
            }),
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(250),
            body: Body::Status { up, failure: None },
        }
    }

    #[test]
    fn chunks_add_up_to_the_whole_body_and_a_refusing_sink_stops_them() {
        let mut a = Vec::new();
        let mut sel = Selection::full();
        for h in 0..50 {
            collect(
                &status(&format!("h{h}:27017"), h % 2 == 0),
                &mut sel,
                &mut a,
            );
        }
        let whole = render([a.as_slice()], Flavor::OpenMetrics);
        let mut pieces = Vec::new();
        let mut joined = Vec::new();
        render_chunks([a.as_slice()], Flavor::OpenMetrics, 256, &mut |c| {
            pieces.push(c.len());
            joined.extend_from_slice(c);
            true
        });
        assert_eq!(joined, whole);
        assert!(pieces.len() > 3, "{pieces:?}");
        assert!(pieces.iter().all(|&n| n < 256 + 200), "{pieces:?}");
        let mut calls = 0;
        render_chunks([a.as_slice()], Flavor::Text, 256, &mut |_| {
            calls += 1;
            false
        });
        assert_eq!(calls, 1, "the first refusal ends the rendering");
    }

    #[test]
    fn series_are_grouped_by_family_with_escaped_sorted_labels() {
        let mut a = Vec::new();
        collect(&status("a:1", true), &mut Selection::full(), &mut a);
        let mut b = Vec::new();
        collect(&status("b:1", false), &mut Selection::full(), &mut b);
        let text = String::from_utf8(render([a.as_slice(), b.as_slice()], Flavor::Text)).unwrap();
        let want = "\
# TYPE mongodb_collect_seconds untyped
mongodb_collect_seconds{cluster=\"prod \\\"east\\\"\",host=\"a:1\",replset=\"rs0\",role=\"secondary\",version=\"7.0.1\"} 0.25
mongodb_collect_seconds{cluster=\"prod \\\"east\\\"\",host=\"b:1\",replset=\"rs0\",role=\"secondary\",version=\"7.0.1\"} 0.25
# TYPE mongodb_up untyped
mongodb_up{cluster=\"prod \\\"east\\\"\",host=\"a:1\",replset=\"rs0\",role=\"secondary\",version=\"7.0.1\"} 1
mongodb_up{cluster=\"prod \\\"east\\\"\",host=\"b:1\",replset=\"rs0\",role=\"secondary\",version=\"7.0.1\"} 0
";
        assert_eq!(text, want);
        let om = String::from_utf8(render([a.as_slice()], Flavor::OpenMetrics)).unwrap();
        assert!(om.contains("# TYPE mongodb_up unknown\n"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }

    #[test]
    fn openmetrics_only_when_accepted() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Flavor::from_accept(Some(prom)), Flavor::OpenMetrics);
        assert_eq!(Flavor::from_accept(Some("text/plain")), Flavor::Text);
        assert_eq!(Flavor::from_accept(Some("*/*")), Flavor::Text);
        assert_eq!(Flavor::from_accept(None), Flavor::Text);
        assert_eq!(
            Flavor::from_accept(Some("application/openmetrics-text; q=0")),
            Flavor::Text
        );
    }

    #[test]
    fn names_match_remote_write() {
        let mut pts = Vec::new();
        collect(&status("a:1", true), &mut Selection::full(), &mut pts);
        let mut rw = Vec::new();
        super::super::remote_write::encode(&status("a:1", true), &mut rw);
        for (name, _) in &pts[0].series {
            assert!(
                rw.windows(name.len()).any(|w| w == name.as_bytes()),
                "{name} in the remote-write request"
            );
        }
    }
}
