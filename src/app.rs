//! What each subcommand does, once the CLI is parsed.

use std::process::ExitCode;

use actix::Actor;
use anyhow::Context as _;

use crate::actors::supervisor::{ReloadSource, Supervisor};
use crate::cli::{adjust_level, Cli, Command};
use crate::config::{self, RawConfig, Settings};
use crate::stats::AgentStats;

/// Runs the parsed command line; errors are printed by `main` as one line.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    crate::install_crypto_provider();
    let overrides = cli.overrides.to_value();
    let raw = config::load(&cli.config, &overrides)?;
    match cli.command {
        Command::Config => {
            print!("{}", config::to_toml(&config::redacted(&raw))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let settings = config::validate(&raw, Some(&cli.config))?;
            check(settings)
        }
        Command::Run => {
            let settings = config::validate(&raw, Some(&cli.config))?;
            run(settings, raw, &cli, overrides)
        }
    }
}

fn check(settings: Settings) -> anyhow::Result<ExitCode> {
    let sys = actix_rt::System::new();
    let lines = sys.block_on(async move { crate::check::run(&settings).await });
    let mut failed = 0;
    for l in &lines {
        println!("{l}");
        failed += (!l.ok) as usize;
    }
    if failed > 0 {
        println!("{failed} of {} checks failed", lines.len());
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn run(
    settings: Settings,
    _raw: RawConfig,
    cli: &Cli,
    overrides: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    let level = adjust_level(settings.agent.log_level, cli.verbose, cli.quiet);
    let (log, handle) = crate::logging::build(
        level,
        settings.agent.log_format,
        settings.agent.log_file.as_deref(),
    )
    .context("cannot set up logging (agent.log_file)")?;
    let reload = ReloadSource {
        path: cli.config.clone(),
        overrides,
    };
    let sys = actix_rt::System::new();
    let stats = std::sync::Arc::new(AgentStats::default());
    let sig_log = log.clone();
    sys.block_on(async move {
        let sup = Supervisor::new(settings, Some(reload), log, Some(handle), stats).start();
        crate::signals::install(sup, sig_log);
    });
    sys.run().context("the actor system failed")?;
    Ok(ExitCode::SUCCESS)
}
