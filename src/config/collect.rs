//! Typed `[collect]`: which fields of the replies are sent (see
//! `format::select`).

use super::raw::RawCollect;
use super::ConfigError;

/// The base set of fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectProfile {
    /// Every numeric field of every reply.
    Full,
    /// The fields in config/collect/standard.txt.
    Standard,
}

/// Typed `[collect]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectSettings {
    pub profile: CollectProfile,
    /// Series-name globs kept whatever the profile says.
    pub include: Vec<String>,
    /// Series-name globs dropped whatever else matches.
    pub exclude: Vec<String>,
}

impl Default for CollectSettings {
    fn default() -> Self {
        CollectSettings {
            profile: CollectProfile::Full,
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

pub(super) fn validate(c: &RawCollect) -> Result<CollectSettings, ConfigError> {
    let profile = match c.profile.as_str() {
        "full" => CollectProfile::Full,
        "standard" => CollectProfile::Standard,
        other => {
            return Err(ConfigError::invalid(
                "collect.profile",
                format!("\"{other}\" is not a profile; use \"full\" (every numeric field) or \"standard\" (config/collect/standard.txt)"),
            ))
        }
    };
    let globs = |key: &str, list: &[String]| -> Result<Vec<String>, ConfigError> {
        for (i, p) in list.iter().enumerate() {
            if !crate::format::select::valid_pattern(p) {
                return Err(ConfigError::invalid(
                    format!("collect.{key}[{i}]"),
                    format!("\"{p}\" can never match: series names hold only letters, digits and '_'; write a name such as mongodb_serverstatus_connections_* (with * and ?)"),
                ));
            }
        }
        Ok(list.to_vec())
    };
    Ok(CollectSettings {
        profile,
        include: globs("include", &c.include)?,
        exclude: globs("exclude", &c.exclude)?,
    })
}
