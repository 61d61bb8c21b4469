//! mongomon: a MongoDB monitoring agent.
//!
//! One process watches every `mongod` and `mongos` of a deployment and pushes
//! what it collects to a time-series receiver, without losing samples when the
//! receiver is away.
//!
//! # Module map
//! - [`app`]: what each subcommand does (wiring config, logging and the actor system).
//! - [`cli`]: the command line (clap derive): `run`, `check`, `config`, `init`, `sim`, `demo`, `bench`.
//! - [`daemon`]: running as a service: the root refusal, the pid file, the world-readable-secret warning.
//! - [`config`]: defaults → TOML → `MONGOMON_` env → CLI, validated into [`config::Settings`].
//! - [`logging`]: slog drains (text or JSON, stderr or a reopenable file) with a level that can change at run time.
//! - [`sample`]: [`sample::Sample`], one collected reply or host status, with the host's labels.
//! - [`demo`]: `mongomon demo`, the agent against the built-in simulator with a live table.
//! - [`format`]: encoding samples as line protocol, JSON lines, Prometheus remote-write or VictoriaMetrics import lines.
//! - [`stats`]: the agent's own counters, shipped in the same stream.
//! - [`mongo`]: per-host driver clients (one per host, shared by discovery and the monitors) and monitoring commands with timeouts.
//! - [`actors`]: the actix actors: [`actors::supervisor`] owns [`actors::discovery`],
//!   one [`actors::host_monitor`] per host, [`actors::batcher`] and one [`actors::uploader`] per upload target
//!   (with its queue, durable spool, retry policy and proxy/TLS connector).
//! - [`init`]: `mongomon init`, a ready configuration from `config/mongomon.toml.template`.
//! - [`check`]: `mongomon check`, one OK/FAIL line per endpoint.
//! - [`sim`]: the MongoDB wire-protocol simulator (replica sets, sharded clusters, fleets, faults) behind `mongomon sim` and `mongomon demo`.
//! - [`signals`]: maps SIGTERM/SIGINT/SIGHUP to messages for the supervisor.
//! - [`http_body`]: reading one request body, for the in-process receivers of `demo` and `bench`.
//! - [`bench`]: `mongomon bench`, the many-host harness (simulator, agent process, counting receiver).
//! - [`redact`]: the one redaction of URLs and messages, used by every printer (config, errors, check, logs).
//! - [`clock`]: time arithmetic that saturates instead of panicking.
//! - [`fatal`]: the panic hook: one log line naming where, then a prompt exit (never a half-alive agent).
//! - [`failpoint`]: `MONGOMON_FAILPOINT`, named places where tests make the agent panic on purpose.

pub mod actors;
pub mod app;
pub mod bench;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod failpoint;
pub mod fatal;
pub mod format;
pub mod http_body;
pub mod init;
pub mod logging;
pub mod mongo;
pub mod redact;
pub mod sample;
pub mod signals;
pub mod sim;
pub mod stats;

/// Installs the process-wide TLS crypto provider (ring, the one the MongoDB
/// driver uses). awc's rustls connector panics at start when no provider, or
/// more than one, is available; calling this twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
