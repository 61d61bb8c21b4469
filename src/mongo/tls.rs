//! TLS for the agent's MongoDB connections: rustls with the ring provider
//! (the one the whole process uses), built once per target from the
//! connection string's `tls*` options.

use std::sync::Arc;

use mongodb::options::TlsOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// A target's TLS settings, ready for every host's connection.
#[derive(Clone)]
pub struct TlsSpec {
    pub config: Arc<rustls::ClientConfig>,
    /// What the operator turned off (`tlsInsecure`, `tlsAllowInvalidHostnames`,
    /// `tlsAllowInvalidCertificates`), for one warning at start.
    pub weakened: Option<&'static str>,
}

impl std::fmt::Debug for TlsSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSpec")
            .field("weakened", &self.weakened)
            .finish_non_exhaustive()
    }
}

/// Builds the client configuration. Errors name the option and the file
/// (paths are not secrets) and say what to fix.
/// `any_name` is `tlsAllowInvalidHostnames` (or `tlsInsecure`), which the
/// driver's rustls build does not carry in its options.
pub fn build(o: &TlsOptions, any_name: bool) -> Result<TlsSpec, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &o.ca_file_path {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("tlsCAFile {}: cannot read it ({e})", path.display()))?;
            for c in certs {
                let c = c.map_err(|e| {
                    format!(
                        "tlsCAFile {}: not a PEM certificate file ({e})",
                        path.display()
                    )
                })?;
                roots.add(c).map_err(|e| {
                    format!(
                        "tlsCAFile {}: a certificate in it is invalid ({e})",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "tlsCAFile {}: holds no certificate; point it at the CA's PEM file",
                    path.display()
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let insecure = o.allow_invalid_certificates.unwrap_or(false);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("TLS: cannot use the CA certificates ({e})"))?;
        Arc::new(Verifier {
            webpki: Some(webpki),
            insecure,
            any_name,
            provider: provider.clone(),
        })
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &o.cert_key_file_path {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    format!(
                        "tlsCertificateKeyFile {}: cannot read it ({e})",
                        path.display()
                    )
                })?
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    format!(
                        "tlsCertificateKeyFile {}: not a PEM file ({e})",
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "tlsCertificateKeyFile {}: holds no certificate; it must hold the client certificate and its key",
                    path.display()
                ));
            }
            let key = PrivateKeyDer::from_pem_file(path).map_err(|_| {
                format!(
                    "tlsCertificateKeyFile {}: holds no private key; it must hold the client certificate and its key",
                    path.display()
                )
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("tlsCertificateKeyFile {}: {e}", path.display()))?
        }
        None => builder.with_no_client_auth(),
    };
    let weakened = if insecure {
        Some("tlsInsecure/tlsAllowInvalidCertificates: the server's certificate is not checked at all")
    } else if any_name {
        Some("tlsAllowInvalidHostnames: the server's certificate may name another host")
    } else {
        None
    };
    Ok(TlsSpec {
        config: Arc::new(config),
        weakened,
    })
}

/// The name to verify the server's certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host} is not a valid TLS server name"))
}

/// webpki's verification, relaxed as far as the connection string asks;
/// also the upload connector's `tls_insecure_skip_verify`
/// ([`Verifier::accept_any`]). Signatures are always checked, so the
/// handshake stays well-formed.
#[derive(Debug)]
pub struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    insecure: bool,
    any_name: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Verifier {
    /// Accepts any certificate chain (but still checks signatures).
    pub fn accept_any(provider: Arc<rustls::crypto::CryptoProvider>) -> Verifier {
        Verifier {
            webpki: None,
            insecure: true,
            any_name: true,
            provider,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(webpki) = self.webpki.as_ref().filter(|_| !self.insecure) else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.any_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
