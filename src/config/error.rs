//! Configuration errors, each one line that names the key and the fix.
//!
//! No message here quotes configuration text. A typo on the `api_key` or
//! `uri` line must not print the secret on it, so parse errors give the
//! file, line, column and key, and type errors say what kind of value was
//! found, never the value. Messages are made printable (control characters
//! escaped) when displayed, since key names come from the file.

use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};

use crate::redact::printable;

/// Why a configuration could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file does not exist (or a path component is missing).
    MissingFile { path: PathBuf },
    /// The file exists but cannot be used as a configuration file; `why`
    /// already says what to do.
    Unreadable { path: PathBuf, why: String },
    /// A key holds a value that is not allowed.
    Invalid { key: String, message: String },
    /// The file is not valid TOML, or another error without a key.
    Syntax { file: String, message: String },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ConfigError::MissingFile { path } => format!(
                "config: file {} not found; create it (see config/mongomon.example.toml or `mongomon init`) or pass --config PATH",
                path.display()
            ),
            ConfigError::Unreadable { path, why } => {
                format!("config: {}: {why}", path.display())
            }
            ConfigError::Invalid { key, message } => format!("config: {key} {message}"),
            ConfigError::Syntax { file, message } => format!("config: {file}: {message}"),
        };
        f.write_str(&printable(&text))
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Turns figment's error into ours: the dotted key path plus a sentence
    /// about what is allowed there. Values are never quoted: figment's own
    /// messages say `found string "…"`, which for a secret-bearing key is
    /// the secret.
    pub(super) fn from_figment(err: figment::Error, file: &Path) -> Self {
        let path = dotted(&err.path);
        let join = |field: &str| {
            if err.path.last().map(String::as_str) == Some(field) {
                path.clone()
            } else if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            }
        };
        // Where the value came from, when it was not the file: an operator
        // looking at a correct file needs to be told to look at the unit's
        // Environment= lines instead.
        let from_env = err
            .metadata
            .as_ref()
            .filter(|m| m.name.contains("environment"))
            .map(|_| {
                let keys: Vec<String> = err.path.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{}{}", super::ENV_PREFIX, keys.join("__"))
            });
        let origin = match &from_env {
            Some(var) => format!(" (from the environment variable {var})"),
            None => String::new(),
        };
        match &err.kind {
            Kind::UnknownField(field, allowed) => ConfigError::invalid(
                join(field),
                format!(
                    "is not a known key{origin}; allowed here: {}",
                    allowed.join(", ")
                ),
            ),
            Kind::MissingField(field) => {
                ConfigError::invalid(join(field), "is required but missing")
            }
            Kind::InvalidType(Actual::Str(s), expected) if s.trim().is_empty() => {
                let expected = expected_text(expected);
                let fix = match &from_env {
                    Some(var) => format!("set {var} to {expected} or unset it"),
                    None => format!("write {expected} or remove the key"),
                };
                ConfigError::invalid(path, format!("is empty{origin}; {fix}"))
            }
            Kind::InvalidType(actual, expected) => ConfigError::invalid(
                path,
                format!(
                    "has the wrong type{origin}: found {}, expected {}",
                    kind_of(actual),
                    expected_text(expected)
                ),
            ),
            Kind::InvalidValue(actual, expected) => ConfigError::invalid(
                path,
                format!(
                    "has an invalid value{origin}: found {}, expected {expected}",
                    kind_of(actual)
                ),
            ),
            Kind::UnknownVariant(_, allowed) => ConfigError::invalid(
                path,
                format!(
                    "is not one of the allowed values{origin}: {}",
                    allowed.join(", ")
                ),
            ),
            Kind::InvalidLength(len, expected) => ConfigError::invalid(
                path,
                format!("has {len} entries{origin}, expected {expected}"),
            ),
            Kind::DuplicateField(field) => {
                ConfigError::invalid(join(field), "is given twice; keep one")
            }
            Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => ConfigError::invalid(
                path,
                format!("is out of range{origin}; write a smaller number"),
            ),
            Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => ConfigError::invalid(
                path,
                format!("holds {}{origin}, which is not supported here", kind_of(actual)),
            ),
            // A free-form message: from a parser or a custom deserializer;
            // it may quote what it read, so it is not repeated.
            Kind::Message(_) if path.is_empty() => ConfigError::Syntax {
                file: file.display().to_string(),
                message: format!(
                    "cannot be read as a configuration{origin}; run `mongomon config -c {}` after checking its syntax",
                    file.display()
                ),
            },
            Kind::Message(_) => ConfigError::invalid(
                path,
                format!("has a value that cannot be used here{origin}; see config/mongomon.example.toml for its form"),
            ),
        }
    }

    /// A TOML syntax error: where it is and what is wrong, from the parser's
    /// message (which describes the grammar, not the text) and its span.
    pub(super) fn from_toml(err: &toml::de::Error, text: &str, file: &Path) -> Self {
        let what = err
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let mut message = String::new();
        if let Some(span) = err.span() {
            let (line, column) = line_column(text, span.start);
            message.push_str(&format!("line {line}, column {column}"));
            if let Some(key) = key_at(text, line) {
                message.push_str(&format!(" (key {key})"));
            }
            message.push_str(": ");
        }
        message.push_str(&what);
        message.push_str(
            "; fix the TOML there (strings need matching quotes, tables [name] and [[name]])",
        );
        ConfigError::Syntax {
            file: file.display().to_string(),
            message,
        }
    }
}

/// serde's names for what was expected, in an operator's words.
fn expected_text(expected: &str) -> String {
    match expected {
        "i64" | "i32" | "u64" | "u32" | "usize" | "isize" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "string" => "a string in quotes".into(),
        other => other.to_string(),
    }
}

/// What kind of value was found, without the value.
fn kind_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number with a fraction",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "nothing",
        Actual::NewtypeStruct | Actual::Enum | Actual::UnitVariant => "an enum",
        Actual::NewtypeVariant | Actual::TupleVariant | Actual::StructVariant => "an enum",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        Actual::Other(_) => "a value of another kind",
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The dotted key written on `line` (1-based), with the table it is in:
/// `upload.api_key`, `targets[1].uri`. Only plain key names are returned,
/// so nothing but a key can come out of the file this way.
fn key_at(text: &str, line: usize) -> Option<String> {
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    let mut table = String::new();
    let mut arrays: std::collections::HashMap<String, usize> = Default::default();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if i + 1 == line {
            let name = t.split('=').next()?.trim();
            if !t.contains('=') || !bare(name) {
                return None;
            }
            return Some(if table.is_empty() {
                name.to_string()
            } else {
                format!("{table}.{name}")
            });
        }
        if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let inner = inner.trim();
            if bare(inner) {
                let n = arrays.entry(inner.to_string()).or_insert(0);
                table = format!("{inner}[{n}]");
                *n += 1;
            }
        } else if let Some(inner) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            let inner = inner.trim();
            if bare(inner) {
                table = inner.to_string();
            }
        }
    }
    None
}

/// `["targets", "0", "uri"]` → `targets[0].uri`.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_line_with_their_table() {
        let text = "[agent]\ninterval_secs = 1\n[[targets]]\nuri = \"a\"\n[[targets]]\nuri = \"b\n[upload]\napi_key = \"x\n";
        assert_eq!(key_at(text, 2).as_deref(), Some("agent.interval_secs"));
        assert_eq!(key_at(text, 4).as_deref(), Some("targets[0].uri"));
        assert_eq!(key_at(text, 6).as_deref(), Some("targets[1].uri"));
        assert_eq!(key_at(text, 8).as_deref(), Some("upload.api_key"));
        assert_eq!(key_at(text, 1), None);
        assert_eq!(line_column("ab\ncdé f", 7), (2, 4));
    }
}
