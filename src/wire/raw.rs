//! Raw BSON, read element by element straight from the bytes: the one
//! reader behind the check of every reply on arrival ([`validate`]) and
//! the flattening of replies into metrics ([`crate::format::flatten`]).
//!
//! Why not `bson`'s `RawDocument::iter_elements`: it decodes and
//! UTF-8-checks every key and builds a value for every element, and the
//! agent reads about 1,100 elements of a 38 KB `serverStatus` twice per
//! host and round (once to check it, once to flatten it). Here a key is a
//! byte slice and a value is its bytes, found from the type byte alone;
//! UTF-8 is checked once, on arrival, with a fast path for ASCII (nearly
//! every key and string of a MongoDB reply).
//!
//! Layout, from the specification (<https://bsonspec.org/spec.html>): a
//! document is an `int32` total length, elements, and a `0x00`; an element
//! is a type byte, a NUL-terminated key, and a value whose size follows
//! from the type. Every read is bounds-checked: a malformed document is an
//! error, never a panic, whatever its bytes.

/// The element types the agent reads by number.
pub mod kind {
    pub const DOUBLE: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const DOCUMENT: u8 = 0x03;
    pub const ARRAY: u8 = 0x04;
    pub const BINARY: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const OBJECT_ID: u8 = 0x07;
    pub const BOOLEAN: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const NULL: u8 = 0x0A;
    pub const REGEX: u8 = 0x0B;
    pub const DB_POINTER: u8 = 0x0C;
    pub const JAVASCRIPT: u8 = 0x0D;
    pub const SYMBOL: u8 = 0x0E;
    pub const JAVASCRIPT_WITH_SCOPE: u8 = 0x0F;
    pub const INT32: u8 = 0x10;
    pub const TIMESTAMP: u8 = 0x11;
    pub const INT64: u8 = 0x12;
    pub const DECIMAL128: u8 = 0x13;
    pub const MIN_KEY: u8 = 0xFF;
    pub const MAX_KEY: u8 = 0x7F;
}

/// Nesting deeper than this is refused by [`validate`]: no server reply
/// comes near it, and it bounds what a hostile reply can make us recurse.
pub const MAX_DEPTH: usize = 100;

/// What is wrong with a document, in words for an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// One element: its type byte, its key (not checked for UTF-8 here) and
/// the bytes of its value (for a document or an array: the whole nested
/// document, length prefix included).
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub kind: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl Element<'_> {
    /// A number a time-series receiver can store: int32, int64, a finite
    /// double, or a boolean (as 0/1).
    pub fn number(&self) -> Option<Number> {
        match self.kind {
            kind::INT32 => Some(Number::Int(i32::from_le_bytes(arr(self.value)?) as i64)),
            kind::INT64 => Some(Number::Int(i64::from_le_bytes(arr(self.value)?))),
            kind::DOUBLE => {
                let f = f64::from_le_bytes(arr(self.value)?);
                f.is_finite().then_some(Number::Float(f))
            }
            kind::BOOLEAN => self.value.first().map(|b| Number::Int((*b != 0) as i64)),
            _ => None,
        }
    }
}

/// A numeric leaf value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    /// The value as a float (integers beyond 2^53 round, as every
    /// time-series receiver stores them anyway).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.get(..N)?.try_into().ok()
}

fn le_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(arr(b.get(at..)?)?))
}

/// The elements of one document, in order.
pub struct Elements<'a> {
    doc: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Starts reading `doc`, which must be exactly one document: its length
/// prefix equal to its size and its last byte `0x00`.
pub fn elements(doc: &[u8]) -> Result<Elements<'_>, Malformed> {
    if doc.len() < 5 {
        return Err(bad("truncated BSON document"));
    }
    let len = le_i32(doc, 0).unwrap_or(0);
    if len < 5 || len as usize != doc.len() {
        return Err(bad(format!(
            "BSON document length {len} does not match its {} bytes",
            doc.len()
        )));
    }
    if doc[doc.len() - 1] != 0 {
        return Err(bad("BSON document not terminated by 0x00"));
    }
    Ok(Elements {
        doc,
        pos: 4,
        failed: false,
    })
}

impl<'a> Elements<'a> {
    fn next_element(&mut self) -> Result<Option<Element<'a>>, Malformed> {
        let d = self.doc;
        let end = d.len() - 1;
        if self.pos >= end {
            return Ok(None);
        }
        let kind = d[self.pos];
        let key_start = self.pos + 1;
        let key_len =
            memchr::memchr(0, &d[key_start..end]).ok_or_else(|| bad("BSON key not terminated"))?;
        let key = &d[key_start..key_start + key_len];
        let at = key_start + key_len + 1;
        let size = value_size(kind, &d[at..end])
            .map_err(|e| bad(format!("{e} (key {:?})", String::from_utf8_lossy(key))))?;
        let value = &d[at..at + size];
        self.pos = at + size;
        Ok(Some(Element { kind, key, value }))
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_element() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// How many bytes of `rest` the value of a `kind` element takes, checked
/// against what is there.
fn value_size(kind: u8, rest: &[u8]) -> Result<usize, Malformed> {
    let fixed = |n: usize| {
        if rest.len() >= n {
            Ok(n)
        } else {
            Err(bad(format!("BSON value of type {kind:#04x} truncated")))
        }
    };
    let prefixed = |min: i32, extra: usize| {
        let n = le_i32(rest, 0).ok_or_else(|| bad("BSON length prefix truncated"))?;
        if n < min {
            return Err(bad(format!(
                "BSON length {n} too small for type {kind:#04x}"
            )));
        }
        let size = (n as usize)
            .checked_add(extra)
            .ok_or_else(|| bad("BSON length overflows"))?;
        if size > rest.len() {
            return Err(bad(format!(
                "BSON value of type {kind:#04x} runs past its document"
            )));
        }
        Ok(size)
    };
    let cstring = |from: usize| {
        rest.get(from..)
            .and_then(|r| memchr::memchr(0, r))
            .map(|n| from + n + 1)
            .ok_or_else(|| bad("BSON cstring not terminated"))
    };
    match kind {
        kind::DOUBLE | kind::DATE_TIME | kind::TIMESTAMP | kind::INT64 => fixed(8),
        kind::INT32 => fixed(4),
        kind::DECIMAL128 => fixed(16),
        kind::OBJECT_ID => fixed(12),
        kind::BOOLEAN => fixed(1),
        kind::UNDEFINED | kind::NULL | kind::MIN_KEY | kind::MAX_KEY => Ok(0),
        kind::STRING | kind::JAVASCRIPT | kind::SYMBOL => prefixed(1, 4),
        kind::DOCUMENT | kind::ARRAY => prefixed(5, 0),
        kind::BINARY => prefixed(0, 5),
        kind::JAVASCRIPT_WITH_SCOPE => prefixed(14, 0),
        kind::DB_POINTER => prefixed(1, 4 + 12),
        kind::REGEX => cstring(0).and_then(cstring),
        other => Err(bad(format!("unknown BSON element type {other:#04x}"))),
    }
}

/// Checks all of `doc`, at every depth: lengths, terminators, element
/// types, booleans, and that every key and string is UTF-8. Once it
/// passed, [`elements`] over `doc` and over its nested documents yields no
/// error, and `bson`'s readers accept it too.
pub fn validate(doc: &[u8]) -> Result<(), Malformed> {
    validate_at(doc, 0)
}

fn validate_at(doc: &[u8], depth: usize) -> Result<(), Malformed> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("BSON nested deeper than {MAX_DEPTH} levels")));
    }
    for el in elements(doc)? {
        let el = el?;
        utf8(el.key, "key")?;
        match el.kind {
            kind::DOCUMENT | kind::ARRAY => validate_at(el.value, depth + 1)?,
            kind::STRING | kind::JAVASCRIPT | kind::SYMBOL => string(el.value)?,
            kind::DB_POINTER => string(&el.value[..el.value.len() - 12])?,
            kind::BOOLEAN if el.value[0] > 1 => {
                return Err(bad(format!("BSON boolean of value {}", el.value[0])))
            }
            kind::JAVASCRIPT_WITH_SCOPE => {
                // int32 total, string, document: the parts must fill it.
                let s = le_i32(el.value, 4).unwrap_or(-1);
                let scope_at = usize::try_from(s).ok().and_then(|s| s.checked_add(8));
                match scope_at {
                    Some(at) if s >= 1 && at < el.value.len() => {
                        string(&el.value[4..at])?;
                        validate_at(&el.value[at..], depth + 1)?;
                    }
                    _ => return Err(bad("BSON code-with-scope malformed")),
                }
            }
            kind::REGEX => {
                for part in el.value.split(|&b| b == 0).take(2) {
                    utf8(part, "regex")?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A length-prefixed string: the prefix counts the bytes and the NUL.
fn string(v: &[u8]) -> Result<(), Malformed> {
    match v.split_last() {
        Some((0, body)) if body.len() >= 4 => utf8(&body[4..], "string"),
        _ => Err(bad("BSON string not terminated")),
    }
}

fn utf8(b: &[u8], what: &str) -> Result<(), Malformed> {
    // MongoDB's keys and most strings are ASCII; the byte test is far
    // cheaper than a UTF-8 decode of many short slices.
    if b.is_ascii() || std::str::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(bad(format!("BSON {what} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Bson, RawDocumentBuf};

    fn bytes(d: bson::Document) -> Vec<u8> {
        RawDocumentBuf::from_document(&d).unwrap().into_bytes()
    }

    #[test]
    fn reads_every_element_type_as_bson_writes_it() {
        let d = doc! {
            "d": 1.5, "s": "héllo", "o": {"x": 1}, "a": [1, "two"],
            "b": Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] }),
            "u": Bson::Undefined, "id": bson::oid::ObjectId::new(), "t": true,
            "dt": bson::DateTime::now(), "n": Bson::Null,
            "re": Bson::RegularExpression(bson::Regex { pattern: "^a".into(), options: "i".into() }),
            "js": Bson::JavaScriptCode("x".into()),
            "jss": Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "y".into(), scope: doc!{"z": 1} }),
            "i": 7, "ts": Bson::Timestamp(bson::Timestamp { time: 1, increment: 2 }),
            "l": 8i64, "dec": Bson::Decimal128(bson::Decimal128::from_bytes([0; 16])),
            "min": Bson::MinKey, "max": Bson::MaxKey,
        };
        let b = bytes(d.clone());
        validate(&b).unwrap();
        let keys: Vec<String> = elements(&b)
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().key.to_vec()).unwrap())
            .collect();
        assert_eq!(keys, d.keys().cloned().collect::<Vec<_>>());
        let nums: Vec<Option<Number>> = elements(&b)
            .unwrap()
            .map(|e| e.unwrap().number())
            .filter(Option::is_some)
            .collect();
        assert_eq!(
            nums,
            vec![
                Some(Number::Float(1.5)),
                Some(Number::Int(1)),
                Some(Number::Int(7)),
                Some(Number::Int(8))
            ]
        );
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        let good = bytes(doc! {"a": {"b": "c"}, "n": 1});
        // Every truncation and every single-byte change: an error or a
        // document that still validates, never a panic.
        for cut in 0..good.len() {
            let _ = validate(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = validate(&b);
                if let Ok(it) = elements(&b) {
                    for e in it {
                        let _ = e.map(|e| e.number());
                    }
                }
            }
        }
        let mut unknown = vec![0, 0, 0, 0, 0x20, b'x', 0, 0];
        unknown[0] = unknown.len() as u8;
        assert!(validate(&unknown)
            .unwrap_err()
            .0
            .contains("unknown BSON element type"));
        let mut bad_bool = bytes(doc! {"t": true});
        let at = bad_bool.len() - 2;
        bad_bool[at] = 2;
        assert!(validate(&bad_bool).is_err());
        let mut not_utf8 = bytes(doc! {"s": "ab"});
        let at = not_utf8.len() - 3;
        not_utf8[at] = 0xff;
        assert!(validate(&not_utf8).unwrap_err().0.contains("UTF-8"));
    }

    #[test]
    fn depth_is_bounded() {
        let mut d = doc! {"x": 1};
        for _ in 0..(MAX_DEPTH + 1) {
            d = doc! {"x": d};
        }
        assert!(validate(&bytes(d)).unwrap_err().0.contains("deeper"));
    }
}
