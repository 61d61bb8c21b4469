//! The `Batcher` actor.

use std::io::Write;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use slog::{error, warn, Logger};

use super::{new_batch_id, ApplySettings, Flush, StopBatching};
use crate::actors::host_monitor::SamplesCollected;
use crate::actors::supervisor::ChildStopped;
use crate::actors::uploader::queue::{Batch, SharedQueue};
use crate::actors::uploader::BatchQueued;
use crate::actors::{ChildId, Route};
use crate::config::{AgentSettings, UploadSettings};
use crate::format;
use crate::sample::{Body, Labels, Role, Sample};
use crate::stats::{AgentStats, Stats};

/// Encodes samples into batches.
pub struct Batcher {
    upload: UploadSettings,
    agent: AgentSettings,
    queue: SharedQueue,
    uploader: Route<BatchQueued>,
    supervisor: Recipient<ChildStopped>,
    generation: u64,
    stats: Stats,
    log: Logger,
    buf: Vec<u8>,
    samples: u64,
    /// When the open batch got its first sample.
    opened: Option<Instant>,
    age_timer: Option<SpawnHandle>,
    self_metrics_timer: Option<SpawnHandle>,
    stop_requested: bool,
}

impl Batcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        upload: UploadSettings,
        agent: AgentSettings,
        queue: SharedQueue,
        uploader: Route<BatchQueued>,
        supervisor: Recipient<ChildStopped>,
        generation: u64,
        stats: Stats,
        log: &Logger,
    ) -> Self {
        Batcher {
            upload,
            agent,
            queue,
            uploader,
            supervisor,
            generation,
            stats,
            log: log.new(slog::o!("actor" => "batcher")),
            buf: Vec::new(),
            samples: 0,
            opened: None,
            age_timer: None,
            self_metrics_timer: None,
            stop_requested: false,
        }
    }

    fn add(&mut self, sample: &Sample, ctx: &mut Context<Self>) {
        format::encode(self.upload.format, sample, &mut self.buf);
        self.samples += 1;
        if self.opened.is_none() {
            self.opened = Some(Instant::now());
            let age = self.upload.max_batch_age;
            self.age_timer = Some(ctx.run_later(age, |act, _| {
                act.age_timer = None;
                act.cut();
            }));
        }
        if self.buf.len() >= self.upload.max_batch_bytes {
            if let Some(h) = self.age_timer.take() {
                ctx.cancel_future(h);
            }
            self.cut();
        }
    }

    /// Closes the open batch and queues it.
    fn cut(&mut self) {
        self.opened = None;
        if self.samples == 0 {
            return;
        }
        let raw = std::mem::take(&mut self.buf);
        let samples = std::mem::replace(&mut self.samples, 0);
        let (body, gzipped) = if self.upload.gzip {
            match gzip(&raw) {
                Ok(z) => (z, true),
                Err(e) => {
                    warn!(self.log, "Cannot gzip a batch; sending it uncompressed."; "error" => e.to_string());
                    (raw, false)
                }
            }
        } else {
            (raw, false)
        };
        let batch = Batch {
            id: new_batch_id(),
            body: Bytes::from(body),
            gzipped,
            samples,
            created: SystemTime::now(),
        };
        let dropped = self.queue.lock().push(batch);
        if dropped.batches > 0 {
            AgentStats::add(&self.stats.batches_dropped, dropped.batches);
            AgentStats::add(&self.stats.samples_dropped, dropped.samples);
            warn!(self.log, "Queue over upload.max_queue_bytes; dropped the oldest batches.";
                "batches" => dropped.batches, "samples" => dropped.samples);
        }
        if !self.uploader.send(BatchQueued) {
            error!(
                self.log,
                "No uploader running; the batch waits in the queue."
            );
        }
    }

    fn start_self_metrics(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.self_metrics_timer.take() {
            ctx.cancel_future(h);
        }
        let labels = Arc::new(Labels {
            host: self.agent.name.clone(),
            cluster: String::new(),
            replset: None,
            shard: None,
            role: Role::Unknown,
            version: None,
        });
        self.self_metrics_timer = Some(ctx.run_interval(self.agent.interval, move |act, ctx| {
            let sample = Sample {
                labels: labels.clone(),
                time: SystemTime::now(),
                duration: Default::default(),
                body: Body::Agent {
                    metrics: act.stats.snapshot(),
                },
            };
            act.add(&sample, ctx);
        }));
    }
}

fn gzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    // Level 1: most of the size win for a fraction of the CPU; line protocol
    // and JSON compress 5–10× even so.
    let mut enc = GzEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::fast());
    enc.write_all(raw)?;
    enc.finish()
}

impl Actor for Batcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_self_metrics(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Whatever is open goes to the queue, which outlives this actor.
        self.cut();
        if !self.stop_requested {
            self.supervisor.do_send(ChildStopped {
                child: ChildId::Batcher,
                generation: self.generation,
            });
        }
    }
}

impl Handler<SamplesCollected> for Batcher {
    type Result = ();

    fn handle(&mut self, msg: SamplesCollected, ctx: &mut Self::Context) {
        for sample in &msg.0 {
            self.add(sample, ctx);
        }
    }
}

impl Handler<Flush> for Batcher {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Self::Context) {
        if let Some(h) = self.age_timer.take() {
            ctx.cancel_future(h);
        }
        self.cut();
    }
}

impl Handler<ApplySettings> for Batcher {
    type Result = ();

    fn handle(&mut self, msg: ApplySettings, ctx: &mut Self::Context) {
        // The open batch was encoded in the old format: close it first.
        if msg.upload.format != self.upload.format {
            self.cut();
        }
        let interval_changed =
            msg.agent.interval != self.agent.interval || msg.agent.name != self.agent.name;
        self.upload = msg.upload;
        self.agent = msg.agent;
        if interval_changed {
            self.start_self_metrics(ctx);
        }
    }
}

impl Handler<StopBatching> for Batcher {
    type Result = ();

    fn handle(&mut self, _: StopBatching, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}
