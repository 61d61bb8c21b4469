//! The `Batcher` actor.

use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use slog::{error, trace, warn, Logger};

use super::gzip::Gzip;
use super::{new_batch_id, ApplySettings, Flush, Lane, Place, StopBatching};
use crate::actors::host_monitor::SamplesCollected;
use crate::actors::supervisor::ChildStopped;
use crate::actors::uploader::queue::{Batch, Class, Encoding};
use crate::actors::uploader::BatchQueued;
use crate::actors::ChildId;
use crate::config::{AgentSettings, CollectSettings, Compression, UploadFormat};
use crate::format;
use crate::listener::AgentView;
use crate::sample::Sample;
use crate::stats::Stats;

/// A batch being filled.
#[derive(Default)]
struct Open {
    buf: Vec<u8>,
    samples: u64,
    /// When it got its first sample.
    opened: Option<Instant>,
}

/// One target's open batches, health and bulk.
struct LaneState {
    lane: Lane,
    open: [Open; 2],
}

/// Encodes samples into batches.
pub struct Batcher {
    lanes: Vec<LaneState>,
    agent: AgentSettings,
    supervisor: Recipient<ChildStopped>,
    /// Which worker's batcher this is; batcher 0 also emits the agent's
    /// self-metrics.
    index: usize,
    generation: u64,
    stats: Stats,
    log: Logger,
    age_timer: Option<SpawnHandle>,
    self_metrics_timer: Option<SpawnHandle>,
    stop_requested: bool,
    gzip: Gzip,
    /// `[collect]`, with its cache of decisions per series name.
    selection: format::select::Selection,
    /// Where each host's latest round goes for the HTTP listener.
    view: Option<AgentView>,
}

fn slot(class: Class) -> usize {
    match class {
        Class::Health => 0,
        Class::Bulk => 1,
    }
}

impl Batcher {
    pub fn new(
        lanes: Vec<Lane>,
        agent: AgentSettings,
        collect: &CollectSettings,
        supervisor: Recipient<ChildStopped>,
        place: Place,
        stats: Stats,
        log: &Logger,
    ) -> Self {
        Batcher {
            lanes: lanes
                .into_iter()
                .map(|lane| LaneState {
                    lane,
                    open: Default::default(),
                })
                .collect(),
            agent,
            supervisor,
            index: place.worker,
            generation: place.generation,
            stats,
            log: log.new(slog::o!("actor" => "batcher", "worker" => place.worker)),
            age_timer: None,
            self_metrics_timer: None,
            stop_requested: false,
            gzip: Gzip::default(),
            selection: format::select::Selection::new(collect),
            view: None,
        }
    }

    /// Also records each round in `view` (the HTTP listener's), encoded
    /// here on the worker with the same selection as the uploads.
    pub fn with_view(mut self, view: Option<AgentView>) -> Self {
        self.view = view;
        self
    }

    fn add(&mut self, sample: &Sample) {
        let class = if sample.is_health() {
            Class::Health
        } else {
            Class::Bulk
        };
        for i in 0..self.lanes.len() {
            let l = &mut self.lanes[i];
            let open = &mut l.open[slot(class)];
            format::encode(
                l.lane.settings.format,
                sample,
                &mut self.selection,
                &mut open.buf,
            );
            open.samples += 1;
            if open.opened.is_none() {
                open.opened = Some(Instant::now());
            }
            if open.buf.len() >= l.lane.settings.max_batch_bytes {
                self.cut(i, class);
            }
        }
    }

    /// Cuts every open batch whose first sample is old enough.
    fn cut_aged(&mut self) {
        for i in 0..self.lanes.len() {
            let age = self.lanes[i].lane.settings.max_batch_age;
            for class in [Class::Health, Class::Bulk] {
                let due = self.lanes[i].open[slot(class)]
                    .opened
                    .is_some_and(|t| t.elapsed() >= age);
                if due {
                    self.cut(i, class);
                }
            }
        }
    }

    fn cut_all(&mut self) {
        for i in 0..self.lanes.len() {
            self.cut(i, Class::Health);
            self.cut(i, Class::Bulk);
        }
    }

    /// Closes one open batch and queues it.
    fn cut(&mut self, lane: usize, class: Class) {
        let l = &mut self.lanes[lane];
        let mut open = std::mem::take(&mut l.open[slot(class)]);
        if open.samples == 0 {
            l.open[slot(class)].buf = open.buf;
            return;
        }
        let settings = &l.lane.settings;
        let (body, encoding) = match settings.format {
            // The protocol requires snappy; it is not optional.
            UploadFormat::RemoteWrite => match format::remote_write::compress(&open.buf) {
                Ok(z) => {
                    reuse(&mut l.open[slot(class)], &mut open.buf);
                    (z, Encoding::Snappy)
                }
                Err(e) => {
                    error!(self.log, "Cannot snappy-compress a remote-write batch; dropped."; "upload" => &settings.name, "error" => e.to_string(), "samples" => open.samples);
                    return;
                }
            },
            _ if settings.compression == Compression::Zstd => {
                // Level 1: zstd's fastest full-ratio level, smaller than
                // gzip's fastest at a fraction of its CPU.
                match zstd::bulk::compress(&open.buf, 1) {
                    Ok(z) => {
                        reuse(&mut l.open[slot(class)], &mut open.buf);
                        (z, Encoding::Zstd)
                    }
                    Err(e) => {
                        warn!(self.log, "Cannot zstd-compress a batch; sending it uncompressed."; "error" => e.to_string());
                        (open.buf, Encoding::Identity)
                    }
                }
            }
            _ if settings.compression == Compression::Gzip => match self.gzip.compress(&open.buf) {
                Ok(z) => {
                    reuse(&mut l.open[slot(class)], &mut open.buf);
                    (z, Encoding::Gzip)
                }
                Err(e) => {
                    warn!(self.log, "Cannot gzip a batch; sending it uncompressed."; "error" => e.to_string());
                    (open.buf, Encoding::Identity)
                }
            },
            _ => (open.buf, Encoding::Identity),
        };
        let batch = Batch {
            id: new_batch_id(),
            body: Bytes::from(body),
            class,
            encoding,
            samples: open.samples,
            created: SystemTime::now(),
        };
        trace!(self.log, "Batch cut."; "upload" => &settings.name, "batch_id" => &batch.id, "samples" => batch.samples, "bytes" => batch.body.len());
        l.lane.queue.lock().push(batch);
        if !l.lane.uploader.send(BatchQueued) {
            error!(self.log, "No uploader running for this target; the batch waits in its queue."; "upload" => &settings.name);
        }
    }

    fn start_timers(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.self_metrics_timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(h) = self.age_timer.take() {
            ctx.cancel_future(h);
        }
        // Ages are checked a few times per shortest batch age: a batch is
        // cut at most a quarter of its age late, at a negligible cost.
        let shortest = self
            .lanes
            .iter()
            .map(|l| l.lane.settings.max_batch_age)
            .min()
            .unwrap_or(Duration::from_secs(1));
        let tick = (shortest / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        self.age_timer = Some(ctx.run_interval(tick, |act, _| act.cut_aged()));
        if self.index != 0 {
            return;
        }
        let labels = crate::stats::agent_labels(&self.agent.name);
        self.self_metrics_timer = Some(ctx.run_interval(self.agent.interval, move |act, _| {
            let samples = crate::stats::agent_samples(&act.stats, &labels, SystemTime::now());
            for s in &samples {
                act.add(s);
            }
        }));
    }
}

/// Hands a compressed batch's raw buffer back to its slot: the next batch
/// fills the same memory instead of growing a new buffer by doubling (and
/// faulting in fresh pages) up to `max_batch_bytes` again.
fn reuse(slot: &mut Open, buf: &mut Vec<u8>) {
    buf.clear();
    slot.buf = std::mem::take(buf);
}

impl Actor for Batcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_timers(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Whatever is open goes to the queues, which outlive this actor.
        self.cut_all();
        if !self.stop_requested {
            self.supervisor.do_send(ChildStopped {
                child: ChildId::Batcher(self.index),
                generation: self.generation,
            });
        }
    }
}

impl Handler<SamplesCollected> for Batcher {
    type Result = ();

    fn handle(&mut self, msg: SamplesCollected, _: &mut Self::Context) {
        for sample in &msg.0 {
            self.add(sample);
        }
        if let Some(v) = &self.view {
            v.record(&msg.0, &mut self.selection);
        }
    }
}

impl Handler<Flush> for Batcher {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Self::Context) {
        self.cut_all();
    }
}

impl Handler<ApplySettings> for Batcher {
    type Result = ();

    fn handle(&mut self, msg: ApplySettings, ctx: &mut Self::Context) {
        // Open batches were encoded for the old targets and formats: close
        // them into their (old) queues first, then switch.
        self.cut_all();
        self.lanes = msg
            .lanes
            .into_iter()
            .map(|lane| LaneState {
                lane,
                open: Default::default(),
            })
            .collect();
        self.agent = msg.agent;
        self.selection = format::select::Selection::new(&msg.collect);
        self.start_timers(ctx);
    }
}

impl Handler<StopBatching> for Batcher {
    type Result = ();

    fn handle(&mut self, _: StopBatching, ctx: &mut Self::Context) {
        self.stop_requested = true;
        ctx.stop();
    }
}
