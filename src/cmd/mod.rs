//! The subcommands, one file each; [`main`] hands the parsed command line to
//! the one asked for.
//!
//! `run`, `check`, `config` and `fleet status` read a configuration ([`load`]); `status`
//! reads only its `[http]` section; `init`, `sim`, `demo` and `bench` need
//! none, and their flags are their own.

pub mod bench;
pub mod check;
pub mod config;
pub mod demo;
pub mod fleet;
pub mod init;
pub mod run;
pub mod sim;
pub mod status;
pub mod table;

use std::process::ExitCode;

use crate::cli::{adjust_level, Cli, Command, ConfigArgs};
use crate::config::RawConfig;

/// Runs the parsed command line; errors are printed by `main` as one line.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    crate::fatal::install();
    crate::install_crypto_provider();
    match cli.command {
        Command::Run {
            cfg,
            pidfile,
            allow_root,
        } => run::command(&cfg, pidfile, allow_root),
        Command::Check { cfg, json } => check::command(&cfg, json),
        Command::Config { cfg } => config::command(&cfg),
        Command::Init {
            api_key,
            api_key_file,
            upload_url,
            targets,
            output,
            force,
        } => init::command(
            init::InitRequest {
                api_key,
                api_key_file,
                upload_url: upload_url.unwrap_or_default(),
                targets,
            },
            &output,
            force,
        ),
        Command::Sim {
            topology,
            duration_secs,
        } => sim::command(&topology, duration_secs.map(std::time::Duration::from_secs)),
        Command::Demo {
            duration_secs,
            timeline_scale,
        } => demo::run(demo::DemoOptions {
            duration: duration_secs.map(std::time::Duration::from_secs),
            timeline_scale,
        }),
        Command::Bench(args) => bench::command(args),
        Command::Status(args) => status::command(&args),
        Command::Fleet(crate::cli::FleetCommand::Status { cfg, json }) => fleet::status(&cfg, json),
    }
}

/// The merged raw configuration of `run`, `check` and `config`, and the CLI
/// layer it was merged with (kept for reloads).
pub(crate) fn load(cfg: &ConfigArgs) -> anyhow::Result<(RawConfig, serde_json::Value)> {
    let mut overrides = cfg.overrides.to_value();
    // -v/-q become the agent.log_level of the CLI layer, so that a reload
    // (which reapplies the configured level) keeps them.
    if cfg.verbose > 0 || cfg.quiet > 0 {
        let level = adjust_level(slog::Level::Info, cfg.verbose, cfg.quiet);
        let name = match level {
            slog::Level::Critical | slog::Level::Error => "error",
            slog::Level::Warning => "warn",
            slog::Level::Info => "info",
            slog::Level::Debug => "debug",
            slog::Level::Trace => "trace",
        };
        if let Some(root) = overrides.as_object_mut() {
            let agent = root.entry("agent").or_insert_with(|| serde_json::json!({}));
            if let Some(agent) = agent.as_object_mut() {
                agent.insert("log_level".into(), serde_json::json!(name));
            }
        }
    }
    let raw = crate::config::load(&cfg.config, &overrides)?;
    Ok((raw, overrides))
}
