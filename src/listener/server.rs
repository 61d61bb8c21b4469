//! The actix-web server of the listener and its handlers.
//!
//! Every request but `/healthz` must carry the configured credentials
//! (`/healthz` only says that the process answers, and liveness probes
//! rarely carry secrets). Requests with a body larger than
//! `http.max_request_bytes` get 413, unknown paths 404, other methods than
//! GET 405; actix-web itself answers 400 to what is not HTTP and 431 to
//! oversized headers. At most `http.max_concurrent_scrapes` `/metrics`
//! answers are rendered or being sent at once; more get 429. A scrape is
//! rendered on actix-web's blocking pool and streamed in chunks, so the
//! listener thread keeps answering (and refusing) while a large one runs.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use slog::{debug, error, info, Logger};

use super::view::AgentView;
use crate::config::{HttpAuth, HttpSettings};
use crate::format::exposition::Flavor;

/// How much of a scrape's body is handed to the connection at a time: the
/// permit of a scrape is held until its last chunk is taken.
const CHUNK: usize = 64 * 1024;

struct State {
    view: AgentView,
    /// The exact `Authorization` value expected, if any.
    expected: Option<String>,
    challenge: &'static str,
    max_scrapes: usize,
    scrapes: Arc<AtomicUsize>,
    max_body: usize,
    log: Logger,
}

/// Binds `settings.listen` and serves on a thread of its own until the
/// process exits. Returns the bound address (a port of 0 picks one).
/// Errors (address taken, unreadable TLS files) name the key to fix.
pub fn start(settings: &HttpSettings, view: AgentView, log: &Logger) -> anyhow::Result<SocketAddr> {
    let log = log.new(slog::o!("actor" => "http"));
    let listener = TcpListener::bind(settings.listen).map_err(|e| {
        anyhow::anyhow!(
            "http.listen: cannot listen on {} ({e}); choose a free address:port or stop what holds it",
            settings.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    let (expected, challenge) = match &settings.auth {
        HttpAuth::None => (None, ""),
        HttpAuth::Bearer(_) => (settings.auth.header_value(), "Bearer realm=\"mongomon\""),
        HttpAuth::Basic { .. } => (settings.auth.header_value(), "Basic realm=\"mongomon\""),
    };
    let state = web::Data::new(State {
        view,
        expected,
        challenge,
        max_scrapes: settings.max_concurrent_scrapes,
        scrapes: Arc::new(AtomicUsize::new(0)),
        max_body: settings.max_request_bytes,
        log: log.clone(),
    });
    info!(log, "HTTP listener started."; "listen" => addr.to_string(), "tls" => tls.is_some(),
        "auth" => match settings.auth { HttpAuth::None => "none", HttpAuth::Bearer(_) => "bearer", HttpAuth::Basic { .. } => "basic" });
    std::thread::Builder::new()
        .name("mongomon-http".into())
        .spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .service(web::resource("/metrics").get(metrics).to(not_allowed))
                        .service(web::resource("/healthz").get(healthz).to(not_allowed))
                        .service(web::resource("/readyz").get(readyz).to(not_allowed))
                        .service(web::resource("/status").get(status).to(not_allowed))
                        .default_service(web::to(not_found))
                })
                .workers(1)
                // The agent handles SIGTERM/SIGINT itself.
                .disable_signals()
                .shutdown_timeout(1);
                let bound = match tls {
                    Some(cfg) => server.listen_rustls_0_23(listener, cfg),
                    None => server.listen(listener),
                };
                match bound {
                    Ok(s) => {
                        if let Err(e) = s.run().await {
                            error!(log, "The HTTP listener stopped."; "error" => e.to_string());
                        }
                    }
                    Err(e) => {
                        error!(log, "Cannot start the HTTP listener."; "error" => e.to_string())
                    }
                }
            });
        })?;
    Ok(addr)
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|_| {
            anyhow::anyhow!(
                "http.tls_cert_file: \"{}\" holds no readable PEM certificate; give the certificate chain in PEM",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "http.tls_cert_file: \"{}\" holds no certificate; give the certificate chain in PEM",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        anyhow::anyhow!(
            "http.tls_key_file: \"{}\" holds no readable PEM private key; give the certificate's key in PEM",
            key.display()
        )
    })?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("http: TLS set-up failed ({e})"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "http.tls_key_file: the key does not fit http.tls_cert_file ({e}); give the pair that belongs together"
            )
        })
}

/// Compares without stopping at the first difference, so that timing does
/// not tell a guesser how much of the token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, text: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text.into())
}

impl State {
    /// Checks the request's body size and credentials; `Some` is the refusal.
    fn refusal(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().parse::<u64>());
        match length {
            Some(Ok(n)) if n > self.max_body as u64 => {
                debug!(self.log, "Refused an oversized request."; "bytes" => n);
                return Some(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body of {n} bytes is over http.max_request_bytes ({}); these endpoints take no body\n",
                        self.max_body
                    ),
                ));
            }
            Some(Err(_)) => {
                return Some(plain(StatusCode::BAD_REQUEST, "invalid Content-Length\n"));
            }
            _ => {}
        }
        if let Some(expected) = &self.expected {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !same(given, expected.as_bytes()) {
                debug!(self.log, "Refused a request without valid credentials."; "peer" => req.peer_addr().map(|a| a.to_string()).unwrap_or_default());
                return Some(
                    HttpResponse::Unauthorized()
                        .insert_header((header::WWW_AUTHENTICATE, self.challenge))
                        .content_type("text/plain; charset=utf-8")
                        .body("missing or wrong credentials\n"),
                );
            }
        }
        None
    }
}

/// Held while a scrape is rendered and sent.
struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn metrics(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Some(refusal) = st.refusal(&req) {
        return refusal;
    }
    if st.scrapes.fetch_add(1, Ordering::AcqRel) >= st.max_scrapes {
        st.scrapes.fetch_sub(1, Ordering::AcqRel);
        debug!(st.log, "Refused a scrape: too many at once."; "limit" => st.max_scrapes);
        return HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "1"))
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "{} scrapes are already under way (http.max_concurrent_scrapes); try again\n",
                st.max_scrapes
            ));
    }
    let permit = Permit(st.scrapes.clone());
    let flavor = Flavor::from_accept(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let view = st.view.clone();
    // The body is rendered on the blocking pool and handed over a few
    // chunks at a time: a 1,000-host scrape (about 45 MB) never sits whole
    // in memory, and a scraper that goes away stops the rendering at its
    // next chunk. The permit travels with the stream, so the scrape keeps
    // its slot until its last chunk is taken.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    actix_web::rt::task::spawn_blocking(move || {
        view.metrics_chunks(flavor, CHUNK, &mut |c| {
            tx.blocking_send(Bytes::copy_from_slice(c)).is_ok()
        })
    });
    let chunks = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        // The permit is dropped with the state when the channel ends.
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), (rx, permit)))
    });
    HttpResponse::Ok()
        .content_type(flavor.content_type())
        .streaming(chunks)
}

async fn healthz() -> HttpResponse {
    plain(StatusCode::OK, "ok\n")
}

async fn readyz(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Some(refusal) = st.refusal(&req) {
        return refusal;
    }
    match st.view.readiness() {
        Ok(()) => plain(StatusCode::OK, "ready\n"),
        Err(why) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", why.join("\n")),
        ),
    }
}

async fn status(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Some(refusal) = st.refusal(&req) {
        return refusal;
    }
    HttpResponse::Ok().json(st.view.status())
}

async fn not_found() -> HttpResponse {
    plain(
        StatusCode::NOT_FOUND,
        "not found; try /metrics, /healthz, /readyz or /status\n",
    )
}

async fn not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .content_type("text/plain; charset=utf-8")
        .body("only GET is served\n")
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"Bearer abc", b"Bearer abc"));
        assert!(!same(b"Bearer abd", b"Bearer abc"));
        assert!(!same(b"Bearer ab", b"Bearer abc"));
        assert!(!same(b"", b"Bearer abc"));
    }
}
