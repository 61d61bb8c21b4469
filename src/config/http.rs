//! Typed `[http]`: the agent's listener (see `crate::listener`).
//!
//! Off by default. When on, its secrets are read here, once, from the file
//! or variable named (the configuration never holds them inline, so that
//! neither `mongomon config` nor a copied file shows them), and the TLS
//! files are checked, so that a mistake stops the start with the key named
//! rather than a listener that refuses every client.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawHttp;
use super::upload::{basic, pem_pair, secret};
use super::{within, ConfigError};

/// Who may read the listener's answers.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum HttpAuth {
    /// Anyone who can reach the address.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic …`: the user name and the whole expected
    /// header value (base64 of `user:password`).
    Basic { username: String, header: String },
}

impl std::fmt::Debug for HttpAuth {
    // Hand-written so that `{:?}` of settings never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::None => f.write_str("None"),
            HttpAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            HttpAuth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

impl HttpAuth {
    /// The `Authorization` header value a client sends, if any.
    pub fn header_value(&self) -> Option<String> {
        match self {
            HttpAuth::None => None,
            HttpAuth::Bearer(t) => Some(format!("Bearer {t}")),
            HttpAuth::Basic { header, .. } => Some(header.clone()),
        }
    }
}

/// Typed `[http]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Certificate chain and key: HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub auth: HttpAuth,
    pub max_concurrent_scrapes: usize,
    pub max_request_bytes: usize,
}

impl HttpSettings {
    /// The base URL clients use (`mongomon status`): a wildcard listen
    /// address is reached through loopback.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("{scheme}://{addr}")
    }
}

pub(super) fn validate(h: &RawHttp) -> Result<HttpSettings, ConfigError> {
    let listen: SocketAddr = h.listen.trim().parse().map_err(|_| {
        ConfigError::invalid(
            "http.listen",
            format!(
                "\"{}\" is not address:port; write e.g. \"127.0.0.1:9216\" (or \"0.0.0.0:9216\" for every interface)",
                crate::redact::printable(&h.listen)
            ),
        )
    })?;
    let max_concurrent_scrapes = within(
        "http.max_concurrent_scrapes",
        h.max_concurrent_scrapes,
        1,
        1_000,
    )? as usize;
    let max_request_bytes = within(
        "http.max_request_bytes",
        h.max_request_bytes,
        1_024,
        16 << 20,
    )? as usize;
    let disabled = HttpSettings {
        enabled: false,
        listen,
        tls: None,
        auth: HttpAuth::None,
        max_concurrent_scrapes,
        max_request_bytes,
    };
    if !h.enabled {
        // Files named by a switched-off listener are not read: they may
        // not exist on this machine.
        return Ok(disabled);
    }
    let tls = pem_pair("http", &h.tls_cert_file, &h.tls_key_file)?;
    let bearer = secret(
        "http",
        "bearer_token",
        &None,
        &h.bearer_token_file,
        &h.bearer_token_env,
    )?;
    let password = secret("http", "password", &None, &h.password_file, &h.password_env)?;
    let auth = match (bearer, &h.username, password) {
        (Some(_), Some(_), _) | (Some(_), None, Some(_)) => {
            return Err(ConfigError::invalid(
                "http.bearer_token_file",
                "and basic authentication (username, password_file/password_env) are both set; keep one",
            ))
        }
        (Some(t), None, None) => HttpAuth::Bearer(t),
        (None, Some(u), Some(p)) => {
            if u.is_empty() || u.contains(':') {
                return Err(ConfigError::invalid(
                    "http.username",
                    "must be non-empty and without ':'; write the user name clients send",
                ));
            }
            HttpAuth::Basic {
                username: u.clone(),
                header: basic(u, &p),
            }
        }
        (None, Some(_), None) => {
            return Err(ConfigError::invalid(
                "http.password_file",
                "is required with http.username (or set http.password_env)",
            ))
        }
        (None, None, Some(_)) => {
            return Err(ConfigError::invalid(
                "http.username",
                "is required with http.password_file or http.password_env",
            ))
        }
        (None, None, None) => HttpAuth::None,
    };
    Ok(HttpSettings {
        enabled: true,
        tls,
        auth,
        ..disabled
    })
}

#[cfg(test)]
// figment's Jail closures return figment::Error, which is large; fine in tests.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn raw(f: impl FnOnce(&mut RawHttp)) -> RawHttp {
        let mut h = RawHttp {
            enabled: true,
            ..RawHttp::default()
        };
        f(&mut h);
        h
    }

    #[test]
    fn off_by_default_and_the_customary_port_when_on() {
        let s = validate(&RawHttp::default()).unwrap();
        assert!(!s.enabled);
        let s = validate(&raw(|_| {})).unwrap();
        assert!(s.enabled);
        assert_eq!(s.listen.to_string(), "127.0.0.1:9216");
        assert_eq!(s.auth, HttpAuth::None);
        assert_eq!(s.base_url(), "http://127.0.0.1:9216");
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let e = validate(&raw(|h| h.listen = "localhost".into())).unwrap_err();
        assert!(e.to_string().contains("http.listen"), "{e}");
        assert!(e.to_string().contains("127.0.0.1:9216"), "{e}");
        let e = validate(&raw(|h| h.max_concurrent_scrapes = 0)).unwrap_err();
        assert_eq!(e.key(), Some("http.max_concurrent_scrapes"));
        let e = validate(&raw(|h| h.username = Some("u".into()))).unwrap_err();
        assert_eq!(e.key(), Some("http.password_file"));
        let e = validate(&raw(|h| h.tls_cert_file = Some("/nonexistent.pem".into()))).unwrap_err();
        assert_eq!(e.key(), Some("http.tls_cert_file"));
        let e = validate(&raw(|h| {
            h.bearer_token_env = Some("MONGOMON_NO_SUCH_VAR_X".into())
        }))
        .unwrap_err();
        assert_eq!(e.key(), Some("http.bearer_token_env"));
    }

    #[test]
    fn secrets_come_from_files_or_variables_and_never_show() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("tok", "tok-Zq81-secret\n")?;
            jail.set_env("MONGOMON_TEST_HTTP_PW", "pw-Zq81-secret");
            let s = validate(&raw(|h| h.bearer_token_file = Some("tok".into())))
                .map_err(|e| e.to_string())?;
            assert_eq!(s.auth, HttpAuth::Bearer("tok-Zq81-secret".into()));
            assert!(!format!("{s:?}").contains("Zq81"));
            let s = validate(&raw(|h| {
                h.username = Some("prom".into());
                h.password_env = Some("MONGOMON_TEST_HTTP_PW".into());
            }))
            .map_err(|e| e.to_string())?;
            assert!(matches!(&s.auth, HttpAuth::Basic { username, .. } if username == "prom"));
            assert!(!format!("{s:?}").contains("Zq81"));
            let e = validate(&raw(|h| {
                h.bearer_token_file = Some("tok".into());
                h.username = Some("prom".into());
                h.password_env = Some("MONGOMON_TEST_HTTP_PW".into());
            }))
            .unwrap_err();
            assert!(!e.to_string().contains("Zq81"), "{e}");
            Ok(())
        });
    }
}
