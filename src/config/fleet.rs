//! Typed `[fleet]`: several agents sharing one deployment through etcd
//! (see `crate::fleet`). Absent, the agent runs alone.
//!
//! The etcd password is read here, once, from the file or variable named;
//! the configuration never holds it inline.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawFleet;
use super::upload::{pem_pair, pem_path, secret, TlsSettings};
use super::ConfigError;

/// Typed `[fleet]`.
#[derive(Clone, PartialEq)]
pub struct FleetSettings {
    /// `http(s)://host:port` of each etcd member.
    pub endpoints: Vec<String>,
    /// Agents of the same name share hosts.
    pub name: String,
    /// This agent's id in the fleet: unique among live agents.
    pub agent_id: String,
    pub lease_ttl: Duration,
    /// Relative share of hosts.
    pub weight: f64,
    /// TLS towards etcd (when the endpoints are https://).
    pub tls: Option<TlsSettings>,
    /// etcd user and password.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for FleetSettings {
    // Hand-written so that `{:?}` of settings never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSettings")
            .field("endpoints", &self.endpoints)
            .field("name", &self.name)
            .field("agent_id", &self.agent_id)
            .field("lease_ttl", &self.lease_ttl)
            .field("weight", &self.weight)
            .field("tls", &self.tls.is_some())
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .finish()
    }
}

impl FleetSettings {
    /// How long one etcd call may take: a third of the TTL (so that a
    /// keepalive that fails on one member can still be retried on another
    /// before the lease runs out), at most 5 s.
    pub fn call_timeout(&self) -> Duration {
        (self.lease_ttl / 3).clamp(Duration::from_millis(300), Duration::from_secs(5))
    }
}

/// Names that become etcd key segments: no `/`, nothing invisible.
fn key_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'))
}

/// The default agent id: this machine's name and the process id, unique
/// among the agents of a fleet unless two share both.
pub fn default_agent_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| key_safe(h))
        .unwrap_or_else(|| "agent".into());
    format!("{host}-{}", std::process::id())
}

pub(super) fn validate(f: &RawFleet) -> Result<FleetSettings, ConfigError> {
    if f.etcd_endpoints.is_empty() {
        return Err(ConfigError::invalid(
            "fleet.etcd_endpoints",
            "is required in [fleet]: list every etcd member, e.g. [\"http://10.0.0.1:2379\", \"http://10.0.0.2:2379\"] (or remove [fleet] to run alone)",
        ));
    }
    let mut endpoints = Vec::new();
    let mut https = None;
    for e in &f.etcd_endpoints {
        let shown = crate::redact::redact_uri(e);
        let uri: Option<awc::http::Uri> = e.trim().parse().ok();
        let scheme = uri
            .as_ref()
            .and_then(|u| u.scheme_str().map(str::to_string));
        let ok = uri.as_ref().is_some_and(|u| {
            u.host().is_some() && u.authority().is_some_and(|a| !a.as_str().contains('@'))
        });
        let secure = match scheme.as_deref() {
            Some("http") if ok => false,
            Some("https") if ok => true,
            _ => {
                return Err(ConfigError::invalid(
                    "fleet.etcd_endpoints",
                    format!("\"{shown}\" is not an http:// or https:// URL with a host and no credentials; write e.g. \"http://127.0.0.1:2379\" (credentials go in fleet.username and fleet.password_file)"),
                ))
            }
        };
        if https.is_some_and(|h| h != secure) {
            return Err(ConfigError::invalid(
                "fleet.etcd_endpoints",
                "mixes http:// and https://; every member is reached the same way",
            ));
        }
        https = Some(secure);
        endpoints.push(e.trim().trim_end_matches('/').to_string());
    }
    if !key_safe(&f.name) {
        return Err(ConfigError::invalid(
            "fleet.name",
            "must be 1-128 letters, digits, '-', '_', '.', ':' or '@'; agents with the same name share hosts",
        ));
    }
    let agent_id = match &f.agent_id {
        Some(id) if key_safe(id) => id.clone(),
        Some(_) => {
            return Err(ConfigError::invalid(
                "fleet.agent_id",
                "must be 1-128 letters, digits, '-', '_', '.', ':' or '@' (or remove it: the default is the host name and pid)",
            ))
        }
        None => default_agent_id(),
    };
    let ttl = super::within("fleet.lease_ttl_secs", f.lease_ttl_secs, 2, 300)?;
    if !(f.weight.is_finite() && f.weight > 0.0 && f.weight <= 1000.0) {
        return Err(ConfigError::invalid(
            "fleet.weight",
            format!(
                "must be above 0 and at most 1000 (found {}); 1 is an even share",
                f.weight
            ),
        ));
    }
    let ca_file: Option<PathBuf> = pem_path("fleet.tls_ca_file", &f.tls_ca_file)?;
    let client = pem_pair("fleet", &f.tls_cert_file, &f.tls_key_file)?;
    let tls = if https == Some(true) {
        Some(TlsSettings {
            ca_file,
            client,
            insecure: false,
        })
    } else if ca_file.is_some() || client.is_some() {
        return Err(ConfigError::invalid(
            "fleet.tls_ca_file",
            "and the client certificate apply to https:// endpoints only; write fleet.etcd_endpoints as https://",
        ));
    } else {
        None
    };
    let password = secret(
        "fleet",
        "password",
        &None,
        &f.password_file,
        &f.password_env,
    )?;
    let credentials = match (&f.username, password) {
        (Some(u), Some(p)) if !u.is_empty() => Some((u.clone(), p)),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "fleet.username",
                "must not be empty; write the etcd user the agents log in as",
            ))
        }
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                "fleet.password_file",
                "is required with fleet.username (or set fleet.password_env)",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "fleet.username",
                "is required with fleet.password_file or fleet.password_env",
            ))
        }
        (None, None) => None,
    };
    Ok(FleetSettings {
        endpoints,
        name: f.name.clone(),
        agent_id,
        lease_ttl: Duration::from_secs(ttl),
        weight: f.weight,
        tls,
        credentials,
    })
}

#[cfg(test)]
// figment's Jail closures return figment::Error, which is large; fine in tests.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn raw(f: impl FnOnce(&mut RawFleet)) -> RawFleet {
        let mut r = RawFleet {
            etcd_endpoints: vec!["http://127.0.0.1:2379".into()],
            ..RawFleet::default()
        };
        f(&mut r);
        r
    }

    #[test]
    fn defaults_fill_in() {
        let s = validate(&raw(|_| {})).unwrap();
        assert_eq!(s.name, "default");
        assert_eq!(s.lease_ttl, Duration::from_secs(10));
        assert!(s.agent_id.ends_with(&format!("-{}", std::process::id())));
        assert_eq!(s.weight, 1.0);
        assert!(s.tls.is_none() && s.credentials.is_none());
        assert_eq!(s.call_timeout(), Duration::from_secs(10) / 3);
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let e = validate(&raw(|f| f.etcd_endpoints.clear())).unwrap_err();
        assert_eq!(e.key(), Some("fleet.etcd_endpoints"));
        let e = validate(&raw(|f| f.etcd_endpoints = vec!["127.0.0.1:2379".into()])).unwrap_err();
        assert!(e.to_string().contains("http://127.0.0.1:2379"), "{e}");
        let e = validate(&raw(|f| f.name = "a/b".into())).unwrap_err();
        assert_eq!(e.key(), Some("fleet.name"));
        let e = validate(&raw(|f| f.agent_id = Some("".into()))).unwrap_err();
        assert_eq!(e.key(), Some("fleet.agent_id"));
        let e = validate(&raw(|f| f.lease_ttl_secs = 1)).unwrap_err();
        assert_eq!(e.key(), Some("fleet.lease_ttl_secs"));
        let e = validate(&raw(|f| f.weight = 0.0)).unwrap_err();
        assert_eq!(e.key(), Some("fleet.weight"));
        let e = validate(&raw(|f| f.username = Some("u".into()))).unwrap_err();
        assert_eq!(e.key(), Some("fleet.password_file"));
        let e = validate(&raw(|f| {
            f.etcd_endpoints = vec!["http://a:1".into(), "https://b:1".into()]
        }))
        .unwrap_err();
        assert!(e.to_string().contains("mixes"), "{e}");
    }

    #[test]
    fn the_password_comes_from_a_file_or_variable_and_never_shows() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("pw", "pw-Fz62-secret\n")?;
            let s = validate(&raw(|f| {
                f.username = Some("agent".into());
                f.password_file = Some("pw".into());
            }))
            .map_err(|e| e.to_string())?;
            assert_eq!(
                s.credentials,
                Some(("agent".into(), "pw-Fz62-secret".into()))
            );
            assert!(!format!("{s:?}").contains("Fz62"));
            let e = validate(&raw(|f| {
                f.etcd_endpoints = vec!["http://agent:pw-Fz62-secret@h:2379".into()]
            }))
            .unwrap_err();
            assert!(!e.to_string().contains("Fz62"), "{e}");
            Ok(())
        });
    }
}
