//! Flattening a BSON reply into numeric leaves with stable names, straight
//! from the raw bytes the connection received.
//!
//! `{connections: {current: 5}}` becomes `connections_current = 5`. Only
//! numbers and booleans are kept (strings, dates, object ids and arrays of
//! documents carry no gauge or counter); NaN and infinities are dropped
//! because no time-series receiver accepts them. Keys starting with `$`
//! (`$clusterTime`) are driver plumbing, not metrics. Each element's type
//! is read before its value, so a string or an array is skipped without
//! being decoded.

use bson::spec::ElementType;
use bson::{RawBsonRef, RawDocument};

/// A numeric leaf value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

/// Calls `emit(name, value)` for every numeric leaf of `doc`, depth first,
/// in document order. `prefix` is prepended (with `_`) when not empty.
pub fn flatten(doc: &RawDocument, prefix: &str, emit: &mut dyn FnMut(&str, Number)) {
    let mut name = String::with_capacity(64);
    name.push_str(prefix);
    walk(doc, &mut name, emit, 0);
}

/// Deeper documents than this are not worth a metric name and would only
/// make a hostile reply expensive.
const MAX_DEPTH: usize = 12;

fn walk(doc: &RawDocument, name: &mut String, emit: &mut dyn FnMut(&str, Number), depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for el in doc.iter_elements() {
        // Replies are validated when they arrive; a broken element ends
        // this document's walk rather than the sample.
        let Ok(el) = el else { return };
        let kind = el.element_type();
        let nested = kind == ElementType::EmbeddedDocument;
        if !nested
            && !matches!(
                kind,
                ElementType::Int32
                    | ElementType::Int64
                    | ElementType::Double
                    | ElementType::Boolean
            )
        {
            continue;
        }
        let key = el.key();
        if key.starts_with('$') {
            continue;
        }
        let len = name.len();
        if !name.is_empty() {
            name.push('_');
        }
        push_sanitized(name, key);
        match el.value() {
            Ok(RawBsonRef::Document(inner)) => walk(inner, name, emit, depth + 1),
            Ok(v) => {
                if let Some(n) = raw_number(v) {
                    emit(name, n);
                }
            }
            Err(_) => {}
        }
        name.truncate(len);
    }
}

/// The numeric value of a raw leaf, if it has one that a receiver can store.
pub fn raw_number(value: RawBsonRef<'_>) -> Option<Number> {
    match value {
        RawBsonRef::Int32(i) => Some(Number::Int(i as i64)),
        RawBsonRef::Int64(i) => Some(Number::Int(i)),
        RawBsonRef::Double(f) if f.is_finite() => Some(Number::Float(f)),
        RawBsonRef::Boolean(b) => Some(Number::Int(b as i64)),
        _ => None,
    }
}

/// Keeps `[A-Za-z0-9_]` and maps everything else to `_`, so names survive
/// every receiver (Prometheus is the strictest).
pub fn push_sanitized(out: &mut String, key: &str) {
    // Nearly every key is clean already: copy it whole.
    if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push_str(key);
        return;
    }
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Document, RawDocumentBuf};

    fn collect(d: &Document) -> Vec<(String, Number)> {
        let raw = RawDocumentBuf::from_document(d).unwrap();
        let mut v = Vec::new();
        flatten(&raw, "", &mut |n, x| v.push((n.to_string(), x)));
        v
    }

    #[test]
    fn nested_numbers_get_joined_names() {
        let d = doc! {
            "host": "h", "uptime": 12.5, "ok": 1.0,
            "connections": {"current": 5, "available": 100i64},
            "$clusterTime": {"x": 1},
            "metrics": {"commands": {"<UNKNOWN>": 3, "find": {"total": 9i64}}},
            "flag": true, "nan": f64::NAN, "inf": f64::INFINITY,
            "arr": [1, 2],
        };
        let got = collect(&d);
        assert_eq!(
            got,
            vec![
                ("uptime".into(), Number::Float(12.5)),
                ("ok".into(), Number::Float(1.0)),
                ("connections_current".into(), Number::Int(5)),
                ("connections_available".into(), Number::Int(100)),
                ("metrics_commands__UNKNOWN_".into(), Number::Int(3)),
                ("metrics_commands_find_total".into(), Number::Int(9)),
                ("flag".into(), Number::Int(1)),
            ]
        );
    }
}
