//! `mongomon config`: the effective configuration, secrets redacted.

use std::process::ExitCode;

use crate::cli::ConfigArgs;
use crate::config;

/// Prints what was merged, then says whether `run` would take it: an
/// operator checking a file wants both.
pub fn command(cfg: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let (raw, _) = super::load(cfg)?;
    print!("{}", config::to_toml(&config::redacted(&raw))?);
    config::validate(&raw, Some(&cfg.config))?;
    Ok(ExitCode::SUCCESS)
}
