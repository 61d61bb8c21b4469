//! The `Uploader` actor: up to `max_in_flight` POSTs, retries on a schedule.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use awc::http::header;
use slog::{debug, error, info, trace, warn, Logger};

use super::connect::{tls_config, TunnelConnector};
use super::queue::{Batch, Outcome, SharedQueue};
use super::retry::{parse_retry_after, Backoff, Jitter, UploadError};
use super::spool::DeadLetter;
use super::{ApplySettings, BatchQueued, BeginDrain, IsIdle, StopUploading};
use crate::actors::supervisor::ChildStopped;
use crate::actors::ChildId;
use crate::config::{redact_uri, RetrySettings, UploadFormat, UploadSettings};
use crate::stats::{AgentStats, UploadStats};
use std::sync::Arc;

/// Sends one target's queued batches to its receiver.
pub struct Uploader {
    settings: UploadSettings,
    client: Option<awc::Client>,
    queue: SharedQueue,
    /// When to try again after a failure; shared by every batch of the
    /// target, since what failed is (almost always) the receiver.
    backoff: Backoff,
    /// Failed attempts per batch, for `upload.max_retries`.
    attempts: HashMap<String, u32>,
    dead_letter: Option<DeadLetter>,
    stats: Arc<UploadStats>,
    log: Logger,
    supervisor: Recipient<ChildStopped>,
    generation: u64,
    in_flight: usize,
    /// A retry is scheduled; nothing new is sent before it.
    retry_pending: Option<SpawnHandle>,
    draining: bool,
    stop_requested: bool,
    /// Set at the first failure after a success, to log an outage once.
    failing_since: Option<SystemTime>,
}

fn target_backoff(retry: RetrySettings) -> RetrySettings {
    RetrySettings {
        max_retries: None,
        ..retry
    }
}

impl Uploader {
    pub fn new(
        settings: UploadSettings,
        queue: SharedQueue,
        stats: Arc<UploadStats>,
        supervisor: Recipient<ChildStopped>,
        generation: u64,
        log: &Logger,
    ) -> Self {
        let log = log.new(
            slog::o!("upload" => settings.name.clone(), "receiver" => redact_uri(&settings.url)),
        );
        Uploader {
            backoff: Backoff::new(target_backoff(settings.retry), Jitter::from_clock()),
            dead_letter: settings
                .spool
                .as_ref()
                .map(|s| DeadLetter::new(&s.dir, settings.dead_letter_max_bytes)),
            settings,
            client: None,
            queue,
            attempts: HashMap::new(),
            stats,
            log,
            supervisor,
            generation,
            in_flight: 0,
            retry_pending: None,
            draining: false,
            stop_requested: false,
            failing_since: None,
        }
    }

    fn build_client(&mut self) {
        let client = match client_for(&self.settings) {
            Ok(c) => c,
            Err(e) => {
                error!(self.log, "Cannot set up TLS for the receiver; batches wait in the queue. Fix the upload.tls_* files."; "error" => e);
                self.client = None;
                return;
            }
        };
        if self.settings.tls.insecure {
            warn!(self.log, "upload.tls_insecure_skip_verify is on: the receiver's certificate is NOT checked. Use tls_ca_file instead.");
        }
        if let Some(p) = &self.settings.proxy {
            info!(self.log, "Sending through a proxy."; "proxy" => format!("{}:{}", p.host, p.port), "from" => &p.source);
        }
        self.client = Some(client);
    }

    /// Starts POSTs until `max_in_flight` are under way, unless a retry is
    /// waiting.
    fn send_next(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < self.settings.max_in_flight && self.retry_pending.is_none() {
            let Some(client) = self.client.clone() else {
                return;
            };
            let Some(batch) = self.queue.lock().begin_send() else {
                return;
            };
            self.in_flight += 1;
            trace!(self.log, "Sending a batch."; "batch_id" => &batch.id, "samples" => batch.samples, "bytes" => batch.body.len(), "in_flight" => self.in_flight);
            let fut = post(client, self.settings.clone(), batch.clone());
            ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                act.in_flight -= 1;
                act.finish(batch, result, ctx);
            }));
        }
    }

    fn finish(&mut self, batch: Batch, result: Result<u16, UploadError>, ctx: &mut Context<Self>) {
        match result {
            Ok(status) => {
                self.queue.lock().end_send(&batch.id, Outcome::Delivered);
                self.attempts.remove(&batch.id);
                AgentStats::add(&self.stats.batches_sent, 1);
                AgentStats::add(&self.stats.samples_sent, batch.samples);
                self.stats.delivered();
                self.backoff.reset();
                if let Some(since) = self.failing_since.take() {
                    let secs = since.elapsed().map(|d| d.as_secs()).unwrap_or(0);
                    info!(self.log, "Receiver accepts batches again."; "outage_secs" => secs, "waiting_batches" => self.queue.lock().len());
                }
                debug!(self.log, "Batch delivered."; "batch_id" => &batch.id, "status" => status, "samples" => batch.samples);
            }
            Err(e) if e.is_retriable() => {
                self.stats.failed(&e.to_string());
                let n = self.attempts.entry(batch.id.clone()).or_insert(0);
                *n += 1;
                let out_of_retries = self.settings.retry.max_retries.is_some_and(|max| *n > max);
                if out_of_retries {
                    self.attempts.remove(&batch.id);
                    AgentStats::add(&self.stats.batches_expired, 1);
                    AgentStats::add(&self.stats.samples_expired, batch.samples);
                    error!(self.log, "Upload failed upload.max_retries times; batch moved to the dead-letter file."; "batch_id" => &batch.id, "samples" => batch.samples, "kind" => e.kind(), "error" => e.to_string());
                    self.dead_letter(&batch, &e);
                    self.queue.lock().end_send(&batch.id, Outcome::GivenUp);
                } else {
                    self.queue.lock().end_send(&batch.id, Outcome::Retry);
                    AgentStats::add(&self.stats.batches_retried, 1);
                    self.schedule_retry(&e, ctx);
                }
            }
            Err(e) => {
                // A refusal (4xx) is an answer: the receiver is reachable,
                // but the error is worth showing.
                self.stats.failed(&e.to_string());
                self.stats.delivered();
                self.attempts.remove(&batch.id);
                AgentStats::add(&self.stats.batches_dead_lettered, 1);
                AgentStats::add(&self.stats.samples_dead_lettered, batch.samples);
                error!(self.log, "Receiver refused the batch for good; moved to the dead-letter file."; "batch_id" => &batch.id, "samples" => batch.samples, "kind" => e.kind(), "error" => e.to_string());
                self.dead_letter(&batch, &e);
                self.queue.lock().end_send(&batch.id, Outcome::GivenUp);
            }
        }
        self.send_next(ctx);
    }

    fn dead_letter(&self, batch: &Batch, e: &UploadError) {
        match &self.dead_letter {
            Some(dl) => {
                if let Err(err) = dl.write(batch, &e.to_string()) {
                    error!(self.log, "Cannot write the dead-letter file; the batch is lost."; "path" => dl.path().display().to_string(), "error" => err.to_string());
                }
            }
            None => {
                warn!(self.log, "No spool directory (agent.spool_dir = \"\"), so no dead-letter file; the batch is dropped."; "batch_id" => &batch.id);
            }
        }
    }

    fn schedule_retry(&mut self, e: &UploadError, ctx: &mut Context<Self>) {
        if self.retry_pending.is_some() {
            return;
        }
        let delay = self.backoff.next_delay(e.retry_after()).unwrap_or_default();
        let delay = if self.draining {
            delay.min(Duration::from_millis(500))
        } else {
            delay
        };
        if self.failing_since.is_none() {
            self.failing_since = Some(SystemTime::now());
            warn!(self.log, "Upload failed; retrying with backoff."; "kind" => e.kind(), "error" => e.to_string());
        } else {
            debug!(self.log, "Upload failed again."; "kind" => e.kind(), "attempt" => self.backoff.attempts(), "delay_ms" => delay.as_millis() as u64);
        }
        self.retry_pending = Some(ctx.run_later(delay, |act, ctx| {
            act.retry_pending = None;
            act.send_next(ctx);
        }));
    }

    fn start_timers(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.settings.fsync_interval {
            ctx.run_interval(every, |act, _| act.queue.lock().sync());
        }
        ctx.run_interval(Duration::from_secs(10), |act, _| {
            act.queue.lock().flush_drop_log()
        });
    }
}

/// An HTTP client for one target: its proxy, its TLS, its timeouts.
fn client_for(s: &UploadSettings) -> Result<awc::Client, String> {
    let tls = tls_config(&s.tls)?;
    let connector = awc::Connector::new()
        .connector(TunnelConnector::new(s.proxy.clone()))
        .rustls_0_23(tls)
        .timeout(s.timeout)
        .handshake_timeout(s.timeout)
        .limit(s.max_in_flight.max(1));
    Ok(awc::Client::builder()
        .connector(connector)
        .timeout(s.timeout)
        .disable_redirects()
        .finish())
}

/// POSTs an empty body to the target as an upload would (for `check`);
/// the status whatever it is, or why no answer came.
pub async fn probe(s: &UploadSettings) -> Result<u16, UploadError> {
    let client = client_for(s).map_err(UploadError::Tls)?;
    let empty = Batch {
        id: super::super::batcher::new_batch_id(),
        body: bytes::Bytes::new(),
        class: super::queue::Class::Health,
        encoding: super::queue::Encoding::Identity,
        samples: 0,
        created: SystemTime::now(),
    };
    match post(client, s.clone(), empty).await {
        Ok(code) => Ok(code),
        Err(UploadError::Status { status, .. }) => Ok(status),
        Err(e) => Err(e),
    }
}

/// One POST. Returns the status on 2xx; reads (a bounded part of) the body
/// either way so the connection can be reused.
async fn post(client: awc::Client, s: UploadSettings, batch: Batch) -> Result<u16, UploadError> {
    let mut req = client
        .post(&s.url)
        .insert_header((header::CONTENT_TYPE, s.format.content_type()))
        .insert_header(("X-Mongomon-Batch-Id", batch.id.as_str()))
        .insert_header((
            header::USER_AGENT,
            concat!("mongomon/", env!("CARGO_PKG_VERSION")),
        ));
    if let Some(enc) = batch.encoding.header() {
        req = req.insert_header((header::CONTENT_ENCODING, enc));
    }
    if s.format == UploadFormat::RemoteWrite {
        req = req.insert_header(("X-Prometheus-Remote-Write-Version", "0.1.0"));
    }
    if let Some((h, key)) = &s.auth.api_key {
        req = req.insert_header((h.as_str(), key.as_str()));
    }
    if let Some(a) = &s.auth.authorization {
        req = req.insert_header((header::AUTHORIZATION, a.as_str()));
    }
    let mut resp = req
        .send_body(batch.body.clone())
        .await
        .map_err(send_error)?;
    let status = resp.status();
    let body = resp.body().limit(64 * 1024).await.unwrap_or_default();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    Err(UploadError::Status {
        status: status.as_u16(),
        retry_after,
        body: text.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

fn send_error(e: awc::error::SendRequestError) -> UploadError {
    use awc::error::{ConnectError, SendRequestError};
    match e {
        SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout) => {
            UploadError::Timeout
        }
        SendRequestError::Url(u) => UploadError::Url(u.to_string()),
        SendRequestError::Connect(c) => {
            let text = c.to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
            {
                UploadError::Tls(text)
            } else {
                UploadError::Connect(text)
            }
        }
        other => UploadError::Other(other.to_string()),
    }
}

impl Actor for Uploader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.build_client();
        self.start_timers(ctx);
        // Anything already queued (from the spool, or before a restart) goes first.
        self.send_next(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if !self.stop_requested {
            self.supervisor.do_send(ChildStopped {
                child: ChildId::Uploader(self.settings.name.clone()),
                generation: self.generation,
            });
        }
    }
}

impl Handler<BatchQueued> for Uploader {
    type Result = ();

    fn handle(&mut self, _: BatchQueued, ctx: &mut Self::Context) {
        self.send_next(ctx);
    }
}

impl Handler<ApplySettings> for Uploader {
    type Result = ();

    fn handle(&mut self, msg: ApplySettings, ctx: &mut Self::Context) {
        let new = msg.0;
        let rebuild = new.timeout != self.settings.timeout
            || new.tls != self.settings.tls
            || new.proxy != self.settings.proxy
            || new.max_in_flight != self.settings.max_in_flight;
        self.backoff.set_settings(target_backoff(new.retry));
        self.queue.lock().set_limits(
            new.max_queue_bytes,
            new.spool.clone().map(|s| (s, new.spool_mode)),
        );
        if new.url != self.settings.url {
            self.log = self.log.new(slog::o!("receiver" => redact_uri(&new.url)));
        }
        self.settings = new;
        if rebuild {
            self.build_client();
        }
        // New settings deserve a fresh try now rather than after the backoff.
        if let Some(h) = self.retry_pending.take() {
            ctx.cancel_future(h);
        }
        self.send_next(ctx);
    }
}

impl Handler<BeginDrain> for Uploader {
    type Result = ();

    fn handle(&mut self, _: BeginDrain, ctx: &mut Self::Context) {
        self.draining = true;
        if let Some(h) = self.retry_pending.take() {
            ctx.cancel_future(h);
        }
        self.send_next(ctx);
    }
}

impl Handler<IsIdle> for Uploader {
    type Result = bool;

    fn handle(&mut self, _: IsIdle, _: &mut Self::Context) -> bool {
        self.in_flight == 0 && self.queue.lock().is_empty()
    }
}

impl Handler<StopUploading> for Uploader {
    type Result = ();

    fn handle(&mut self, _: StopUploading, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}
