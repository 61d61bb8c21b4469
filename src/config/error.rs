//! Configuration errors, each one line that names the key and the fix.

use std::path::{Path, PathBuf};

use figment::error::Kind;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: file {} not found; create it (see config/mongomon.example.toml or `mongomon init`) or pass --config PATH", path.display())]
    MissingFile { path: PathBuf },
    #[error("config: cannot read {}: {source}; check the path and its permissions", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key holds a value that is not allowed.
    #[error("config: {key} {message}")]
    Invalid { key: String, message: String },
    /// The file is not valid TOML or another error without a key.
    #[error("config: {file}: {message}")]
    Syntax { file: String, message: String },
}

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
    /// about what is allowed there.
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
        match &err.kind {
            Kind::UnknownField(field, allowed) => ConfigError::invalid(
                join(field),
                format!("is not a known key; allowed here: {}", allowed.join(", ")),
            ),
            Kind::MissingField(field) => {
                ConfigError::invalid(join(field), "is required but missing")
            }
            Kind::InvalidType(actual, expected) => ConfigError::invalid(
                path,
                format!("has the wrong type: found {actual}, expected {expected}"),
            ),
            Kind::InvalidValue(actual, expected) => ConfigError::invalid(
                path,
                format!("has an invalid value: found {actual}, expected {expected}"),
            ),
            Kind::DuplicateField(field) => {
                ConfigError::invalid(join(field), "is given twice; keep one")
            }
            Kind::Message(msg) if path.is_empty() => ConfigError::Syntax {
                file: file.display().to_string(),
                message: msg.lines().collect::<Vec<_>>().join(" "),
            },
            other => ConfigError::invalid(path, other.to_string()),
        }
    }
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
