//! The command line, declared with clap's derive API.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::config::DEFAULT_CONFIG_PATH;

const EXAMPLES: &str = "\
Examples:
  mongomon run --config /etc/mongomon/mongomon.toml
  mongomon run -c mongomon.toml --target mongodb://127.0.0.1:27017 --upload-url http://127.0.0.1:8428/write
  mongomon init --api-key KEY --upload-url https://mon.example.net/write --target mongodb://db1:27017 --output mongomon.toml
  mongomon check -c mongomon.toml        # one OK/FAIL line per host and receiver
  mongomon config -c mongomon.toml       # the effective configuration, secrets redacted
  mongomon demo                          # a simulated sharded cluster, monitored live
  mongomon sim --topology config/sim/replica-set.toml   # simulated hosts for testing
  MONGOMON_AGENT__INTERVAL_SECS=30 mongomon run   # any key through the environment

Signals (run): SIGTERM/SIGINT stop gracefully, SIGHUP rereads the configuration.";

/// mongomon: watches every mongod and mongos of a deployment and ships what
/// it sees to a time-series receiver, without losing samples.
#[derive(Debug, Parser)]
#[command(name = "mongomon", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration file, the logging level and the flags that override
/// configuration keys: what every subcommand that reads a configuration
/// takes (`run`, `check`, `config`), and no other.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML).
    #[arg(short, long, env = "MONGOMON_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// More logging (-v debug, -vv trace); overrides agent.log_level.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less logging (-q warn, -qq error); overrides agent.log_level.
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    #[command(flatten)]
    pub overrides: Overrides,
}

/// Flags that override configuration keys (the top configuration layer).
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// Monitor this MongoDB URI instead of the file's [[targets]] (repeatable).
    #[arg(long = "target", value_name = "URI")]
    pub targets: Vec<String>,

    /// upload.url: where batches are POSTed.
    #[arg(long, value_name = "URL")]
    pub upload_url: Option<String>,

    /// upload.format: influx, json, remote_write or vm_import.
    #[arg(long, value_name = "FORMAT")]
    pub upload_format: Option<String>,

    /// agent.interval_secs: seconds between two samples of a host.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub interval_secs: Option<i64>,

    /// agent.log_file: log to this file instead of stderr.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<String>,

    /// agent.log_level: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// http.listen, and http.enabled = true: serve /metrics, /healthz,
    /// /readyz and /status on ADDRESS:PORT.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub http_listen: Option<String>,
}

impl Overrides {
    /// The flags as a partial configuration, merged over file and env.
    pub fn to_value(&self) -> Value {
        let mut agent = Map::new();
        if let Some(v) = self.interval_secs {
            agent.insert("interval_secs".into(), json!(v));
        }
        if let Some(v) = &self.log_file {
            agent.insert("log_file".into(), json!(v));
        }
        if let Some(v) = &self.log_level {
            agent.insert("log_level".into(), json!(v));
        }
        let mut upload = Map::new();
        if let Some(v) = &self.upload_url {
            upload.insert("url".into(), json!(v));
        }
        if let Some(v) = &self.upload_format {
            upload.insert("format".into(), json!(v));
        }
        let mut root = Map::new();
        if let Some(v) = &self.http_listen {
            root.insert("http".into(), json!({"enabled": true, "listen": v}));
        }
        if !agent.is_empty() {
            root.insert("agent".into(), Value::Object(agent));
        }
        if !upload.is_empty() {
            root.insert("upload".into(), Value::Object(upload));
        }
        if !self.targets.is_empty() {
            let t: Vec<Value> = self.targets.iter().map(|u| json!({ "uri": u })).collect();
            root.insert("targets".into(), Value::Array(t));
        }
        Value::Object(root)
    }
}

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground until SIGTERM or SIGINT. Refuses to
    /// run as root.
    Run {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Write the agent's pid to this file (removed on a clean exit); for
        /// `nohup`, init scripts and logrotate's postrotate.
        #[arg(long, value_name = "PATH")]
        pidfile: Option<PathBuf>,
        /// Run even as root (not recommended: the agent needs no privileges).
        #[arg(long)]
        allow_root: bool,
    },
    /// Discover every host from the targets' seeds (as `run` does), connect
    /// to each and to the receiver; a table of OK or the precise failure
    /// (dns, refused, timeout, tls, auth, privileges, http); exit status 1 if
    /// anything failed.
    Check {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Fleet mode (`[fleet]`): ask etcd about the fleet.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Print the effective configuration as TOML, secrets redacted.
    Config {
        #[command(flatten)]
        cfg: ConfigArgs,
    },
    /// Write a ready configuration from the shipped template (mode 0600):
    /// `mongomon init --api-key KEY --upload-url URL --target URI`.
    Init {
        /// The receiver's API key (@API_KEY@ of the template). Prefer the
        /// environment variable to the command line, which others can see.
        #[arg(
            long,
            value_name = "KEY",
            env = "MONGOMON_API_KEY",
            hide_env_values = true
        )]
        api_key: Option<String>,
        /// Reference this file (first line: the key) instead of writing the key.
        #[arg(long, value_name = "PATH", conflicts_with = "api_key")]
        api_key_file: Option<String>,
        /// The receiver's URL (@UPLOAD_URL@ of the template).
        #[arg(long, value_name = "URL")]
        upload_url: Option<String>,
        /// A MongoDB URI to monitor (repeatable).
        #[arg(long = "target", value_name = "URI")]
        targets: Vec<String>,
        /// Where to write; `-` for stdout.
        #[arg(long, short = 'o', value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Serve simulated MongoDB hosts (replica sets, sharded clusters,
    /// fleets, faults) on loopback from a topology file, until SIGINT/SIGTERM.
    Sim {
        /// Topology file (TOML); examples in config/sim/.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// Stop after this many seconds instead of waiting for a signal.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(..=MAX_RUN_SECS))]
        duration_secs: Option<u64>,
    },
    /// The many-host harness: the simulator with N hosts, the real agent
    /// at the given interval against a counting receiver; a table on stdout
    /// and a JSON report (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// A running agent's hosts and upload targets, from its /status (its
    /// [http] listener): the live table, once or redrawn with --watch.
    /// Exit status: 0 all hosts up and every target delivering, 1 a host
    /// down (or not sampled yet) or a target failing, 2 the agent could not
    /// be asked (no answer, credentials refused, not an agent) or the
    /// configuration is unusable.
    Status(StatusArgs),
    /// The agent against a built-in simulated cluster, shown live in the
    /// terminal. Needs no MongoDB, receiver or configuration.
    Demo {
        /// Stop after this many seconds instead of waiting for Ctrl-C.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(..=MAX_RUN_SECS))]
        duration_secs: Option<u64>,
        /// Multiply the times of the demo's timeline by this factor (0.2
        /// plays the step-down, the lost member and the new shard and
        /// mongos five times sooner; the agent's pace stays the same).
        #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = timeline_scale)]
        timeline_scale: f64,
    },
}

/// Smallest and largest `demo --timeline-scale`: below, the events come
/// faster than the agent's 2 s rounds can show them apart; above, the
/// first one would be minutes away.
const TIMELINE_SCALE: std::ops::RangeInclusive<f64> = 0.05..=10.0;

fn timeline_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if TIMELINE_SCALE.contains(&f) => Ok(f),
        _ => Err(format!(
            "expected a number between {} and {} (1 = real time, 0.2 = five times faster), found {s:?}",
            TIMELINE_SCALE.start(),
            TIMELINE_SCALE.end()
        )),
    }
}

/// `mongomon status`'s flags.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The agent's configuration: where its listener is (http.listen) and
    /// the credentials it wants (http.bearer_token_file, ...).
    #[arg(short, long, env = "MONGOMON_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// The agent's listener, e.g. http://127.0.0.1:9216 (default: from
    /// the configuration's http.listen).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// For an https URL: trust this CA (PEM) instead of the agent's own
    /// http.tls_cert_file (which suits a self-signed certificate).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Redraw every SECS seconds, marking what changed, until interrupted.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub watch: Option<u64>,
}

/// `mongomon bench`'s flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Simulated hosts (a mix of replica-set members and mongos).
    #[arg(long, default_value_t = 100)]
    pub hosts: usize,
    /// The agent's agent.interval_secs.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval_secs: u64,
    /// Measured window, after the warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=MAX_RUN_SECS))]
    pub duration_secs: u64,
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(..=MAX_RUN_SECS))]
    pub warmup_secs: u64,
    /// The receiver refuses everything (503) for this long at the start
    /// of the window, then accepts: measures the drain of the backlog.
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=MAX_RUN_SECS))]
    pub outage_secs: u64,
    /// Write the report here as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Configs, logs and the spool of the run (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The agent binary to measure (default: this one).
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<PathBuf>,
    /// A peer to run on the same hosts afterwards: NAME=SCRIPT (see benches/peers/).
    #[arg(long, value_name = "NAME=SCRIPT")]
    pub peer: Vec<String>,
    /// The agent's collect.profile: full or standard.
    #[arg(long, value_name = "PROFILE", default_value = "full", value_parser = ["full", "standard"])]
    pub collect_profile: String,
    /// The agent's upload.compression: gzip, zstd or none.
    #[arg(long, value_name = "COMPRESSION", default_value = "gzip", value_parser = ["gzip", "zstd", "none"])]
    pub compression: String,
    /// Turn the agent's HTTP listener on and time this many /metrics
    /// scrapes (as Prometheus asks for them), spread over the window.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=100_000))]
    pub scrapes: u32,
    /// Fleet mode: this many agents share the hosts through a 3-member
    /// etcd cluster the bench starts (Debian's etcd); one is killed with
    /// SIGKILL after the window, and one agent alone over N/K hosts runs
    /// last for comparison.
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=16))]
    pub fleet_agents: u64,
    /// The fleet agents' fleet.lease_ttl_secs.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_ttl_secs: u64,
    /// A soak instead of a measured window: this long, with a fault from
    /// the fault matrix every --faults-every-secs, and the agent's RSS,
    /// descriptors, threads and the healthy hosts' completeness per minute.
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=MAX_RUN_SECS))]
    pub soak_secs: u64,
    /// How often the soak injects a fault (held for half of this, at most 30 s).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub faults_every_secs: u64,
}

/// The longest run a `--duration-secs` (or warm-up, outage) may ask for:
/// 30 days, far past any benchmark, and far from overflowing time sums.
pub const MAX_RUN_SECS: u64 = 30 * 86_400;

/// The log level after -v/-q.
pub fn adjust_level(base: slog::Level, verbose: u8, quiet: u8) -> slog::Level {
    use slog::Level::*;
    if verbose >= 2 {
        Trace
    } else if verbose == 1 {
        Debug
    } else if quiet >= 2 {
        Error
    } else if quiet == 1 {
        Warning
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_become_config_keys() {
        let cli = Cli::parse_from([
            "mongomon",
            "run",
            "--interval-secs",
            "-3",
            "--target",
            "mongodb://a",
            "--upload-url",
            "http://u/",
        ]);
        let Command::Run { cfg, .. } = cli.command else {
            panic!("run")
        };
        assert_eq!(
            cfg.overrides.to_value(),
            json!({"agent": {"interval_secs": -3}, "upload": {"url": "http://u/"}, "targets": [{"uri": "mongodb://a"}]})
        );
    }

    #[test]
    fn each_subcommand_takes_only_its_own_flags() {
        let help = |sub: &str| {
            let mut cmd = Cli::command();
            cmd.find_subcommand_mut(sub)
                .expect(sub)
                .render_long_help()
                .to_string()
        };
        for sub in ["sim", "demo", "bench", "init"] {
            let h = help(sub);
            assert!(!h.contains("--config"), "{sub}: {h}");
            assert!(!h.contains("--upload-format"), "{sub}: {h}");
            assert!(!h.contains("--log-level"), "{sub}: {h}");
        }
        for sub in ["sim", "demo", "bench"] {
            assert!(!help(sub).contains("--upload-url"), "{sub}");
            assert!(!help(sub).contains("--target"), "{sub}");
        }
        for sub in ["run", "check", "config"] {
            let h = help(sub);
            assert!(
                h.contains("--config") && h.contains("--upload-url"),
                "{sub}: {h}"
            );
        }
        assert!(
            Cli::try_parse_from(["mongomon", "sim", "--upload-url", "x", "--topology", "t"])
                .is_err()
        );
    }
}

/// `mongomon fleet …`.
#[derive(Debug, Clone, Subcommand)]
pub enum FleetCommand {
    /// The fleet's agents with their leases' time left, the leader, and
    /// how many hosts each owns; exit status 1 without a leader, 2 when
    /// etcd cannot be reached.
    Status {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}
