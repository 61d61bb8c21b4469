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
    crate::fatal::install();
    crate::install_crypto_provider();
    // These two need no configuration file.
    match &cli.command {
        Command::Bench {
            hosts,
            duration_secs,
            warmup_secs,
            outage_secs,
            json,
            work_dir,
            agent_bin,
            peer,
        } => {
            let interval_secs = cli.overrides.interval_secs.unwrap_or(10).max(1) as u64;
            let (hosts, duration_secs, warmup_secs) = (*hosts, *duration_secs, *warmup_secs);
            return bench(crate::bench::BenchOptions {
                hosts,
                interval: std::time::Duration::from_secs(interval_secs),
                duration: std::time::Duration::from_secs(duration_secs.max(1)),
                warmup: std::time::Duration::from_secs(warmup_secs),
                outage: std::time::Duration::from_secs(*outage_secs),
                agent_bin: match agent_bin {
                    Some(p) => p.clone(),
                    None => std::env::current_exe().context("cannot find this executable")?,
                },
                work_dir: match work_dir {
                    Some(d) => d.clone(),
                    None => std::env::temp_dir().join(format!("mongomon-bench-{}", std::process::id())),
                },
                peers: peer
                    .iter()
                    .map(|p| match p.split_once('=') {
                        Some((n, s)) => Ok((n.to_string(), std::path::PathBuf::from(s))),
                        None => Err(anyhow::anyhow!("--peer {p}: expected NAME=SCRIPT, e.g. telegraf=benches/peers/telegraf.sh")),
                    })
                    .collect::<anyhow::Result<_>>()?,
            }, json.clone());
        }
        Command::Demo { duration_secs } => {
            return crate::demo::run(duration_secs.map(std::time::Duration::from_secs))
        }
        Command::Sim {
            topology,
            duration_secs,
        } => return sim(topology, duration_secs.map(std::time::Duration::from_secs)),
        Command::Init {
            api_key,
            api_key_file,
            output,
            force,
        } => {
            let req = crate::init::InitRequest {
                api_key: api_key.clone(),
                api_key_file: api_key_file.clone(),
                upload_url: cli.overrides.upload_url.clone().unwrap_or_default(),
                targets: cli.overrides.targets.clone(),
            };
            let text = crate::init::render(&req)?;
            crate::init::write(output, &text, *force)?;
            if output.as_os_str() != "-" {
                eprintln!("Wrote {} (mode 0600).", output.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut overrides = cli.overrides.to_value();
    // -v/-q become the agent.log_level of the CLI layer, so that a reload
    // (which reapplies the configured level) keeps them.
    if cli.verbose > 0 || cli.quiet > 0 {
        let level = adjust_level(slog::Level::Info, cli.verbose, cli.quiet);
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
    let raw = config::load(&cli.config, &overrides)?;
    match cli.command {
        Command::Config => {
            // Print what was merged, then say whether `run` would take it:
            // an operator checking a file wants both.
            print!("{}", config::to_toml(&config::redacted(&raw))?);
            config::validate(&raw, Some(&cli.config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { json } => {
            let settings = config::validate(&raw, Some(&cli.config))?;
            check(settings, json)
        }
        Command::Run {
            ref pidfile,
            allow_root,
        } => {
            let settings = config::validate(&raw, Some(&cli.config))?;
            // After validation, so an operator fixing a service sees the
            // configuration errors first, then this.
            if let Some(msg) = crate::daemon::root_refusal(crate::daemon::euid(), allow_root) {
                anyhow::bail!(msg);
            }
            let pidfile = pidfile.clone();
            run(settings, raw, &cli, overrides, allow_root, pidfile)
        }
        Command::Demo { .. }
        | Command::Sim { .. }
        | Command::Init { .. }
        | Command::Bench { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `mongomon bench`: one run, the table on stdout, the report as JSON.
fn bench(
    o: crate::bench::BenchOptions,
    json: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let report = crate::bench::run(&o)?;
    print!("{}", crate::bench::render(&report));
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = json {
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `mongomon sim`: serves the topology until a signal (or the duration).
fn sim(path: &std::path::Path, duration: Option<std::time::Duration>) -> anyhow::Result<ExitCode> {
    let topology = crate::sim::Topology::from_file(path)?;
    let handle = crate::sim::Simulator::start(topology)?;
    if let Some(ctl) = handle.control_addr() {
        println!("control endpoint: http://{ctl}/hosts (POST /action for faults)");
    }
    let hosts = handle.hosts();
    for h in hosts.iter().take(100) {
        println!(
            "{:<22} {:<10} {:<12} {}",
            h.addr,
            h.role,
            h.set.as_deref().unwrap_or("-"),
            h.version
        );
    }
    if hosts.len() > 100 {
        println!("... and {} more", hosts.len() - 100);
    }
    println!("serving {} simulated hosts", hosts.len());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let limit = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = limit => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    handle.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn check(settings: Settings, json: bool) -> anyhow::Result<ExitCode> {
    let sys = actix_rt::System::new();
    let lines = sys.block_on(async move { crate::check::run(&settings).await });
    if json {
        print!("{}", crate::check::render_json(&lines));
    } else {
        print!("{}", crate::check::render_table(&lines));
    }
    if lines.iter().any(|l| !l.ok) {
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn run(
    settings: Settings,
    raw: RawConfig,
    cli: &Cli,
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
    let sig_log = log.clone();
    sys.block_on(async move {
        match Supervisor::new(settings, Some(reload), log.clone(), Some(handle), stats) {
            Ok(sup) => crate::signals::install(sup.start(), sig_log),
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
