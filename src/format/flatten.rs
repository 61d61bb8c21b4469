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

use bson::{RawBsonRef, RawDocument};

pub use crate::wire::raw::Number;
use crate::wire::raw::{self, kind};

/// Calls `emit(name, value)` for every numeric leaf of `doc`, depth first,
/// in document order. `prefix` is prepended (with `_`) when not empty.
pub fn flatten(doc: &RawDocument, prefix: &str, emit: &mut dyn FnMut(&str, Number)) {
    let mut name = String::with_capacity(64);
    name.push_str(prefix);
    walk(doc.as_bytes(), &mut name, emit, 0);
}

/// Deeper documents than this are not worth a metric name and would only
/// make a hostile reply expensive.
const MAX_DEPTH: usize = 12;

fn walk(doc: &[u8], name: &mut String, emit: &mut dyn FnMut(&str, Number), depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    // Replies are validated when they arrive; a broken element ends this
    // document's walk rather than the sample.
    let Ok(elements) = raw::elements(doc) else {
        return;
    };
    for el in elements {
        let Ok(el) = el else { return };
        // The type byte decides before anything else is read: strings,
        // arrays, dates and ids are passed over untouched.
        let nested = el.kind == kind::DOCUMENT;
        if !nested
            && !matches!(
                el.kind,
                kind::INT32 | kind::INT64 | kind::DOUBLE | kind::BOOLEAN
            )
        {
            continue;
        }
        if el.key.first() == Some(&b'$') {
            continue;
        }
        let len = name.len();
        if !name.is_empty() {
            name.push('_');
        }
        push_sanitized_bytes(name, el.key);
        if nested {
            walk(el.value, name, emit, depth + 1);
        } else if let Some(n) = el.number() {
            emit(name, n);
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
    push_sanitized_bytes(out, key.as_bytes())
}

/// Each byte as it appears in a series name: `[A-Za-z0-9_]` as itself,
/// anything else as `_`.
const fn name_table() -> [u8; 256] {
    let mut t = [b'_'; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = c;
        }
        b += 1;
    }
    t
}
static NAME_BYTE: [u8; 256] = name_table();

/// [`push_sanitized`] for a key as raw bytes (UTF-8, as checked on
/// arrival): one `_` per character that is not `[A-Za-z0-9_]`, so a
/// multi-byte character counts once, as in a walk over `chars()`.
pub fn push_sanitized_bytes(out: &mut String, key: &[u8]) {
    // SAFETY: only ASCII bytes are appended (NAME_BYTE maps every byte to
    // one of `[A-Za-z0-9_]`), so the String stays UTF-8. This runs for
    // every key of every reply, a third of them WiredTiger's with spaces
    // in them: one branch-free mapping pass from the key into the name
    // beats a checked conversion, a push per byte, and a copy mapped in
    // place afterwards (profiles).
    let v = unsafe { out.as_mut_vec() };
    if key.is_empty() {
        // An empty key (no real reply has one; a broken one may) still
        // makes a name part: a field named "" is invalid in every format.
        v.push(b'_');
        return;
    }
    if key.is_ascii() {
        // A mapped slice iterator has an exact length: no capacity check
        // per byte.
        v.extend(key.iter().map(|&b| NAME_BYTE[b as usize]));
        return;
    }
    v.reserve(key.len());
    for &b in key {
        // A UTF-8 continuation byte (0b10xx_xxxx) belongs to the character
        // already mapped to `_`.
        if b & 0xC0 != 0x80 {
            v.push(NAME_BYTE[b as usize]);
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

    /// Found by tests/fuzz.rs: an empty key made an empty field name,
    /// which no line-protocol or remote-write receiver accepts.
    #[test]
    fn an_empty_key_still_makes_a_name() {
        let v = collect(&doc! {"": 1, "a": {"": 2}});
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["_", "a__"]);
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

    #[test]
    fn non_ascii_keys_map_each_character_to_one_underscore() {
        let d = doc! {"héllo wörld": 1, "日本": {"x": 2.5}, "ok": 1};
        let got = collect(&d);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["h_llo_w_rld", "___x", "ok"]);
        // The same mapping as over `chars()`.
        let mut by_chars = String::new();
        push_sanitized(&mut by_chars, "日本");
        assert_eq!(by_chars, "__");
    }
}
