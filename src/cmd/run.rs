//! `mongomon run`: the agent in the foreground, as a service runs it.

use std::process::ExitCode;

use actix::Actor;
use anyhow::Context as _;

use crate::actors::supervisor::{ReloadSource, Supervisor};
use crate::cli::{adjust_level, ConfigArgs};
use crate::config::{self, RawConfig, Settings};
use crate::listener::AgentView;
use crate::stats::AgentStats;

/// Validates the configuration, refuses a configuration file or spool
/// directory that others can write, refuses root (after validation, so an
/// operator fixing a service sees the configuration errors first), then
/// runs the actor system until it stops.
pub fn command(
    cfg: &ConfigArgs,
    pidfile: Option<std::path::PathBuf>,
    allow_root: bool,
) -> anyhow::Result<ExitCode> {
    let (raw, overrides) = super::load(cfg)?;
    let settings = config::validate(&raw, Some(&cfg.config))?;
    let euid = Some(crate::daemon::euid());
    if let Some(msg) = crate::daemon::permission_refusal(&cfg.config, &raw, euid) {
        anyhow::bail!(msg);
    }
    if let Some(msg) = crate::daemon::root_refusal(crate::daemon::euid(), allow_root) {
        anyhow::bail!(msg);
    }
    run(settings, raw, cfg, overrides, allow_root, pidfile)
}

fn run(
    settings: Settings,
    raw: RawConfig,
    cli: &ConfigArgs,
    overrides: serde_json::Value,
    allow_root: bool,
    pidfile: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    // A file-size limit (ulimit -f) must turn a spool write into an error
    // the spool handles (EFBIG), not a signal that kills the agent.
    // SAFETY: setting a signal's disposition to "ignore" has no handler to race with.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let level = adjust_level(settings.agent.log_level, cli.verbose, cli.quiet);
    let (log, handle) = crate::logging::build(
        level,
        settings.agent.log_format,
        settings.agent.log_file.as_deref(),
    )
    .context("cannot set up logging (agent.log_file)")?;
    crate::fatal::log_to(
        settings.agent.log_file.clone(),
        settings.agent.log_format == crate::config::LogFormat::Json,
    );
    if allow_root && crate::daemon::euid() == 0 {
        slog::warn!(log, "Running as root because of --allow-root; create a service user and drop the flag."; "hint" => crate::daemon::CREATE_USER_HINT);
    }
    match crate::daemon::raise_nofile_limit() {
        Some((before, now)) if now > before => {
            slog::info!(log, "Raised the open-file limit to the hard limit."; "from" => before, "to" => now)
        }
        _ => {}
    }
    if let Some(w) = crate::daemon::world_readable_secret_warning(&cli.config, &raw) {
        slog::warn!(log, "{}", w);
    }
    // Held until the System stops; dropping it removes the file.
    let _pidfile = match &pidfile {
        Some(p) => Some(crate::daemon::PidFile::create(p)?),
        None => None,
    };
    crate::fatal::remove_on_panic(pidfile.clone());
    let reload = ReloadSource {
        path: cli.config.clone(),
        overrides,
    };
    let sys = actix_rt::System::new();
    let stats = std::sync::Arc::new(AgentStats::default());
    // The listener binds before any host is sampled: an address in use or a
    // bad certificate stops the start with the key to fix.
    let view = if settings.http.enabled {
        let view = AgentView::new(&settings.agent.name, stats.clone());
        crate::listener::start(&settings.http, view.clone(), &log)?;
        Some(view)
    } else {
        None
    };
    let sig_log = log.clone();
    sys.block_on(async move {
        match Supervisor::new(settings, Some(reload), log.clone(), Some(handle), stats) {
            Ok(sup) => {
                let sup = match view {
                    Some(v) => sup.with_view(v),
                    None => sup,
                };
                crate::signals::install(sup.start(), sig_log)
            }
            Err(e) => {
                slog::crit!(log, "Cannot open the spool; not starting. Fix agent.spool_dir (or its permissions), or set it to \"\" to keep batches in memory only."; "error" => e.to_string());
                eprintln!("mongomon: {e}; fix agent.spool_dir (or its permissions), or set it to \"\" to keep batches in memory only");
                std::process::exit(2);
            }
        }
    });
    sys.run().context("the actor system failed")?;
    Ok(ExitCode::SUCCESS)
}
