//! How the uploader reaches a receiver: TCP, directly or through an HTTP
//! CONNECT tunnel of a forward proxy, with awc's TLS on top.
//!
//! awc has no proxy support, but lets the TCP step be replaced
//! (`Connector::connector`). [`TunnelConnector`] is that step: it returns a
//! stream already connected to the receiver (through the tunnel when a
//! proxy is set), and awc then runs TLS over it with the receiver's host as
//! SNI, exactly as for a direct connection. The same tunnel carries plain
//! `http://` receivers too.

use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{ProxySettings, TlsSettings};

/// The TCP step of the receiver connection.
#[derive(Clone)]
pub struct TunnelConnector {
    proxy: Option<Rc<ProxySettings>>,
}

impl TunnelConnector {
    pub fn new(proxy: Option<ProxySettings>) -> Self {
        TunnelConnector {
            proxy: proxy.map(Rc::new),
        }
    }
}

impl Service<ConnectInfo<Uri>> for TunnelConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let host = req.hostname().to_string();
        let port = req.port();
        let uri = req.request().clone();
        let proxy = self.proxy.clone();
        Box::pin(async move {
            let stream = match proxy {
                None => connect(&host, port).await?,
                Some(p) => {
                    let mut s = connect(&p.host, p.port).await.map_err(|e| {
                        ConnectError::Io(std::io::Error::other(format!(
                            "cannot reach the proxy {}:{} (from {}): {e}",
                            p.host, p.port, p.source
                        )))
                    })?;
                    tunnel(&mut s, &host, port, p.authorization.as_deref())
                        .await
                        .map_err(ConnectError::Io)?;
                    s
                }
            };
            Ok(Connection::new(uri, stream))
        })
    }
}

/// Resolves `host` and connects to the first address that answers.
async fn connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| ConnectError::Resolver(Box::new(e)))?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::NoRecords);
    }
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Io(
        last.unwrap_or_else(|| std::io::Error::other("no address")),
    ))
}

/// Asks the proxy for a tunnel to `host:port`; Ok once it answered 2xx.
async fn tunnel(
    s: &mut TcpStream,
    host: &str,
    port: u16,
    authorization: Option<&str>,
) -> std::io::Result<()> {
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = authorization {
        req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    req.push_str(concat!(
        "User-Agent: mongomon/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n"
    ));
    s.write_all(req.as_bytes()).await?;
    // Read the response head byte by byte: nothing after it may be
    // consumed, it belongs to the TLS handshake.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::other(
                "proxy sent an over-long response to CONNECT",
            ));
        }
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::Error::other(
                "proxy closed the connection during CONNECT",
            ));
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("").trim().to_string();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(200..=299) => Ok(()),
        Some(407) => Err(std::io::Error::other(format!(
            "proxy requires authentication ({status_line}); put user:password in the proxy URL"
        ))),
        _ => Err(std::io::Error::other(format!(
            "proxy refused the tunnel to {target}: {status_line}"
        ))),
    }
}

/// The rustls client configuration for a receiver.
pub fn tls_config(t: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if t.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::mongo::tls::Verifier::accept_any(
                provider,
            )))
    } else {
        let roots = match &t.ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
                roots
            }
            None => system_roots(),
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match &t.client {
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: no private key ({e})", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The operating system's CA bundle (as OpenSSL would find it), or the
/// Mozilla roots built in when the machine has none.
fn system_roots() -> RootCertStore {
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        candidates.push(f.into());
    }
    for f in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ] {
        candidates.push(f.into());
    }
    for f in candidates {
        if let Ok(certs) = read_certs(&f) {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added > 0 {
                return roots;
            }
        }
    }
    actix_tls::connect::rustls_0_23::webpki_roots_cert_store()
}
