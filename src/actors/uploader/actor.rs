//! The `Uploader` actor: one POST at a time, retries on a schedule.

use std::time::{Duration, SystemTime};

use actix::prelude::*;
use awc::http::header;
use slog::{debug, error, info, warn, Logger};

use super::queue::{Batch, SharedQueue};
use super::retry::{parse_retry_after, Backoff, Jitter, UploadError};
use super::{ApplySettings, BatchQueued, BeginDrain, IsIdle, StopUploading};
use crate::actors::supervisor::ChildStopped;
use crate::actors::ChildId;
use crate::config::{redact_uri, UploadSettings};
use crate::stats::{AgentStats, Stats};

/// Sends queued batches to the receiver.
pub struct Uploader {
    settings: UploadSettings,
    client: Option<awc::Client>,
    queue: SharedQueue,
    backoff: Backoff,
    stats: Stats,
    log: Logger,
    supervisor: Recipient<ChildStopped>,
    generation: u64,
    /// A POST is under way.
    in_flight: bool,
    /// A retry is scheduled; new batches wait for it.
    retry_pending: Option<SpawnHandle>,
    draining: bool,
    stop_requested: bool,
    /// Failures since the last success, to log an outage once, not per try.
    failing_since: Option<SystemTime>,
}

impl Uploader {
    pub fn new(
        settings: UploadSettings,
        queue: SharedQueue,
        stats: Stats,
        supervisor: Recipient<ChildStopped>,
        generation: u64,
        log: &Logger,
    ) -> Self {
        let log = log.new(slog::o!("receiver" => redact_uri(&settings.url)));
        Uploader {
            backoff: Backoff::new(settings.retry, Jitter::from_clock()),
            settings,
            client: None,
            queue,
            stats,
            log,
            supervisor,
            generation,
            in_flight: false,
            retry_pending: None,
            draining: false,
            stop_requested: false,
            failing_since: None,
        }
    }

    fn build_client(&mut self) {
        let connector = awc::Connector::new().timeout(self.settings.timeout);
        self.client = Some(
            awc::Client::builder()
                .connector(connector)
                .timeout(self.settings.timeout)
                .disable_redirects()
                .finish(),
        );
    }

    fn update_gauges(&self) {
        let q = self.queue.lock();
        AgentStats::set(&self.stats.queue_batches, q.len() as u64);
        AgentStats::set(&self.stats.queue_bytes, q.bytes() as u64);
    }

    /// Starts the next POST unless one is running or a retry is waiting.
    fn send_next(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.retry_pending.is_some() {
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        let Some(batch) = self.queue.lock().begin_send() else {
            self.update_gauges();
            return;
        };
        self.in_flight = true;
        let fut = post(client, self.settings.clone(), batch.clone());
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            act.in_flight = false;
            act.finish(batch, result, ctx);
        }));
    }

    fn finish(&mut self, batch: Batch, result: Result<u16, UploadError>, ctx: &mut Context<Self>) {
        match result {
            Ok(status) => {
                self.queue.lock().end_send(&batch.id, true);
                AgentStats::add(&self.stats.batches_sent, 1);
                self.backoff.reset();
                if let Some(since) = self.failing_since.take() {
                    let secs = since.elapsed().map(|d| d.as_secs()).unwrap_or(0);
                    info!(self.log, "Receiver accepts batches again."; "outage_secs" => secs, "waiting_batches" => self.queue.lock().len());
                }
                debug!(self.log, "Batch delivered."; "batch_id" => &batch.id, "status" => status, "samples" => batch.samples);
                self.update_gauges();
                self.send_next(ctx);
            }
            Err(e) if e.is_retriable() => {
                self.queue.lock().end_send(&batch.id, false);
                let delay = if self.draining {
                    Some(
                        self.backoff
                            .next_delay(e.retry_after())
                            .unwrap_or_default()
                            .min(Duration::from_millis(500)),
                    )
                } else {
                    self.backoff.next_delay(e.retry_after())
                };
                match delay {
                    Some(delay) => {
                        AgentStats::add(&self.stats.batches_retried, 1);
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
                    None => {
                        error!(self.log, "Upload failed too many times; batch dropped."; "batch_id" => &batch.id, "samples" => batch.samples, "kind" => e.kind(), "error" => e.to_string());
                        self.give_up(&batch, ctx);
                    }
                }
                self.update_gauges();
            }
            Err(e) => {
                error!(self.log, "Receiver refused the batch; dropped."; "batch_id" => &batch.id, "samples" => batch.samples, "kind" => e.kind(), "error" => e.to_string());
                self.give_up(&batch, ctx);
            }
        }
    }

    fn give_up(&mut self, batch: &Batch, ctx: &mut Context<Self>) {
        self.queue.lock().end_send(&batch.id, true);
        AgentStats::add(&self.stats.batches_failed, 1);
        AgentStats::add(&self.stats.samples_dropped, batch.samples);
        self.backoff.reset();
        self.update_gauges();
        self.send_next(ctx);
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
    if batch.gzipped {
        req = req.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    if let Some(key) = &s.api_key {
        req = req.insert_header((s.api_key_header.as_str(), key.as_str()));
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
            if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
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
        // Anything already queued (e.g. before a restart) goes first.
        self.send_next(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if !self.stop_requested {
            self.supervisor.do_send(ChildStopped {
                child: ChildId::Uploader,
                generation: self.generation,
            });
        }
    }
}

impl Handler<BatchQueued> for Uploader {
    type Result = ();

    fn handle(&mut self, _: BatchQueued, ctx: &mut Self::Context) {
        self.update_gauges();
        self.send_next(ctx);
    }
}

impl Handler<ApplySettings> for Uploader {
    type Result = ();

    fn handle(&mut self, msg: ApplySettings, ctx: &mut Self::Context) {
        let rebuild = msg.0.timeout != self.settings.timeout;
        self.backoff.set_settings(msg.0.retry);
        self.queue.lock().set_max_bytes(msg.0.max_queue_bytes);
        if msg.0.url != self.settings.url {
            self.log = self.log.new(slog::o!("receiver" => redact_uri(&msg.0.url)));
        }
        self.settings = msg.0;
        if rebuild {
            self.build_client();
        }
        // A new URL deserves a fresh try now rather than after the backoff.
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
        !self.in_flight && self.queue.lock().is_empty()
    }
}

impl Handler<StopUploading> for Uploader {
    type Result = ();

    fn handle(&mut self, _: StopUploading, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}
