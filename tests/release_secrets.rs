//! The shipped binary (issues 11 and 15): `target/release/mongomon`, built
//! by scripts/test.sh before the suite, run through `config`, `check`, `run`
//! with reloads (one valid, one a malformed file), failures and shutdown,
//! at trace level, with a distinctive secret in every secret-bearing key
//! and in malformed variants of them. No secret may appear on stdout,
//! stderr, in the log file, the spool or the dead-letter file; the
//! receivers, the proxy and etcd still get the right credentials; and
//! trace lines are written (slog's compile-time caps once dropped them in
//! release builds).
//!
//! Where a secret can be: the MongoDB password in the URI (of a host that
//! answers, and of one that refuses connections) and in `password` (wrong,
//! so authentication fails); the receivers' API key, bearer token (inline
//! and from a file), basic-auth password and URL userinfo; the proxy's
//! password in `proxy` and in `http_proxy` (the proxy answers 407); and,
//! in fleet mode, the etcd user's password from `password_file` and from
//! `password_env`, through `check`, `config`, `fleet status`, reloads, a
//! password changed under the running agent and etcd going away.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use std::collections::BTreeSet;
use std::io::Write;

use base64::Engine;
use common::receiver::{Receiver, Request};
use mongomon::cmd::bench::etcd::EtcdCluster;

const URI_PW: &str = "URIPW-3c9d1f";
const TARGET_PW: &str = "TGTPW-a8e270";
const API_KEY: &str = "APIKEY-d41f9c";
const BEARER: &str = "BEARER-77ae21";
const BASIC_PW: &str = "BASICPW-5c0e3b";
const BEARER_FILE: &str = "BEARERFILE-e1b9d4";
const URL_PW: &str = "URLPW-60f2aa";
const CFG_PROXY_PW: &str = "CFGPROXY-19c4b7";
const ENV_PROXY_PW: &str = "ENVPROXY-d2a035";
const DOWN_PW: &str = "DOWNPW-4f7a92";
/// The etcd user's password, as the agent has it.
const ETCD_PW: &str = "ETCDPW-b5d3e1";
/// etcd's root password: only etcdctl knows it.
const ETCD_ROOT_PW: &str = "ETCDROOT-0a94c6";
/// What the etcd user's password is changed to under the running agent.
const ETCD_NEW_PW: &str = "ETCDNEW-c61f0d";
/// Every secret of this file: none may show anywhere.
const ALL: [&str; 13] = [
    URI_PW,
    TARGET_PW,
    API_KEY,
    BEARER,
    BASIC_PW,
    BEARER_FILE,
    URL_PW,
    CFG_PROXY_PW,
    ENV_PROXY_PW,
    DOWN_PW,
    ETCD_PW,
    ETCD_ROOT_PW,
    ETCD_NEW_PW,
];

/// The release binary; a missing or stale one is a failure that says how
/// to build it, never a skip.
fn release_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/mongomon");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run scripts/test.sh, or cargo build --release first",
                bin.display()
            )
        });
    let newest = newest_source(&root.join("src")).max(newest_source(&root.join("Cargo.toml")));
    assert!(
        built >= newest,
        "{} is older than the sources: run cargo build --release (scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn newest_source(path: &Path) -> SystemTime {
    let mut newest = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            newest = newest.max(newest_source(&e.path()));
        }
    }
    newest
}

fn assert_clean(what: &str, text: &str) {
    for s in ALL {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

/// Every file below `dir`, read as bytes (spool segments, dead letters).
fn assert_tree_clean(dir: &Path) {
    if !dir.exists() {
        return;
    }
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_tree_clean(&p);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            for s in ALL {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{} holds the secret {s}",
                    p.display()
                );
            }
        }
    }
}

fn run_cmd(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run the release binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

/// `Basic` credentials as they go on the wire.
fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `mongomon run -vv` of the release binary, stdout and stderr to files in
/// `dir`; killed on drop when the test fails before stopping it.
struct Running(Child);

impl Running {
    fn start(bin: &Path, cfg: &Path, dir: &Path, env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "-vv", "-c"])
            .arg(cfg)
            .env_remove("MONGOMON_CONFIG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if common::is_root() {
            cmd.arg("--allow-root");
        }
        Running(cmd.spawn().expect("start the release binary"))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then the exit status (30 s at most).
    fn stop(&mut self, log: impl Fn() -> String) -> ExitStatus {
        common::signal(self.0.id(), libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("no exit after SIGTERM; log:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A request as text, to look for secrets in: its target and headers.
fn request_text(r: &Request) -> String {
    let mut h: Vec<_> = r.headers.iter().collect();
    h.sort();
    format!("{} {h:?}", r.path)
}

struct Setup {
    dir: tempfile::TempDir,
    sim: mongomon::sim::SimHandle,
    keyed: Receiver,
    bearer: Receiver,
    /// A forward proxy that wants other credentials: 407 to every CONNECT.
    proxy: Receiver,
    /// Receivers nobody listens on (reached through the proxy).
    dead: u16,
    /// A MongoDB host that refuses connections.
    down: u16,
}

impl Setup {
    fn new() -> Setup {
        let topology = format!(
            "[[standalone]]\nhost = \"127.0.0.1:0\"\n[[standalone]]\nhost = \"127.0.0.1:0\"\n\
             [[users]]\nname = \"monitor\"\npassword = \"{URI_PW}\"\n"
        );
        let sim = mongomon::sim::Simulator::start(
            mongomon::sim::Topology::from_toml_str(&topology).unwrap(),
        )
        .unwrap();
        // The second receiver refuses for good (400), so batches go to the
        // dead-letter file, which must not hold credentials either.
        Setup {
            dir: tempfile::tempdir().unwrap(),
            sim,
            keyed: Receiver::accepting(),
            bearer: Receiver::scripted(|_, _| (400, vec![])),
            proxy: Receiver::scripted(|_, _| {
                (
                    407,
                    vec![("Proxy-Authenticate".into(), "Basic realm=\"test\"".into())],
                )
            }),
            dead: common::free_port(),
            down: common::free_port(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every secret-bearing key, each with its own distinctive secret.
    fn config(&self, interval_secs: u64) -> String {
        let hosts = self.sim.standalones();
        std::fs::write(self.path("bearer.txt"), format!("{BEARER_FILE}\n")).unwrap();
        let (dead, down, proxy) = (self.dead, self.down, self.proxy.port);
        format!(
            r#"[agent]
interval_secs = {interval_secs}
command_timeout_ms = 1000
connect_timeout_ms = 1000
log_level = "trace"
log_file = "{log}"
spool_dir = "{spool}"

[[targets]]
name = "good"
uri = "mongodb://monitor:{URI_PW}@{h0}/?authSource=admin"
discover = false

[[targets]]
name = "wrong-password"
uri = "mongodb://monitor@{h1}/?authSource=admin"
password = "{TARGET_PW}"
discover = false

[[targets]]
name = "down"
uri = "mongodb://monitor:{DOWN_PW}@127.0.0.1:{down}/?authSource=admin"
discover = false

[[upload]]
name = "keyed"
url = "{keyed}"
format = "json"
api_key = "{API_KEY}"
username = "basicuser"
password = "{BASIC_PW}"
proxy = "none"
max_batch_age_ms = 200

[[upload]]
name = "bearer"
url = "{bearer}"
format = "json"
bearer_token = "{BEARER}"
proxy = "none"
max_batch_age_ms = 200

[[upload]]
name = "bearer-file"
url = "http://127.0.0.1:{dead}/write"
bearer_token_file = "{bearer_file}"
proxy = "http://pxuser:{CFG_PROXY_PW}@127.0.0.1:{proxy}"
retry_initial_ms = 100
retry_max_ms = 200

[[upload]]
name = "userinfo"
url = "http://urluser:{URL_PW}@127.0.0.1:{dead}/write"
retry_initial_ms = 100
retry_max_ms = 200
"#,
            log = self.path("agent.log").display(),
            spool = self.path("spool").display(),
            h0 = hosts[0],
            h1 = hosts[1],
            keyed = self.keyed.url(),
            bearer = self.bearer.url(),
            bearer_file = self.path("bearer.txt").display(),
        )
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        // The last upload target takes its proxy from the environment.
        vec![(
            "http_proxy",
            format!(
                "http://envuser:{ENV_PROXY_PW}@127.0.0.1:{}",
                self.proxy.port
            ),
        )]
    }

    /// Whether the proxy was asked with the credentials of both proxied
    /// uploads (`proxy` and `http_proxy`).
    fn proxy_saw_both(&self) -> bool {
        let reqs = self.proxy.requests();
        [
            basic("pxuser", CFG_PROXY_PW),
            basic("envuser", ENV_PROXY_PW),
        ]
        .iter()
        .all(|want| {
            reqs.iter()
                .any(|r| r.header("proxy-authorization") == Some(want.as_str()))
        })
    }
}

/// Two reloads through SIGHUP: `valid` (applied), then `broken` (refused,
/// the running configuration kept), each waited for in `log`.
fn reload_good_then_bad(pid: u32, cfg: &Path, valid: &str, broken: &str, log: &dyn Fn() -> String) {
    std::fs::write(cfg, valid).unwrap();
    common::signal(pid, libc::SIGHUP);
    common::wait_for("the reload", Duration::from_secs(20), || {
        log().contains("Configuration reloaded").then_some(())
    });
    std::fs::write(cfg, broken).unwrap();
    common::signal(pid, libc::SIGHUP);
    common::wait_for("the refused reload", Duration::from_secs(20), || {
        log()
            .contains("keeping the running configuration")
            .then_some(())
    });
}

#[test]
fn the_release_binary_logs_at_trace_and_never_shows_a_secret() {
    let bin = release_bin();
    let s = Setup::new();
    let cfg = s.path("mongomon.toml");
    std::fs::write(&cfg, s.config(1)).unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let env = s.env();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // config: the effective file, redacted.
    let (code, out) = run_cmd(&bin, &["config", "-c", cfg_s], &env_ref);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
    assert_clean("config", &out);

    // check at trace level: every failure's detail too.
    let mut check_env = env_ref.clone();
    check_env.push(("MONGOMON_AGENT__LOG_LEVEL", "trace"));
    let (code, out) = run_cmd(&bin, &["check", "-vv", "-c", cfg_s], &check_env);
    assert_eq!(
        code,
        Some(1),
        "the down host, the wrong password and the proxy fail: {out}"
    );
    let line = |what: &str| {
        out.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("a line for {what}: {out}"))
            .to_string()
    };
    let down = line(&format!("127.0.0.1:{}", s.down));
    assert!(
        down.starts_with("FAIL") && down.contains("refused"),
        "{down}"
    );
    let wrong = line("wrong-password");
    assert!(
        wrong.starts_with("FAIL") && wrong.contains("auth"),
        "{wrong}"
    );
    assert!(out.contains("proxy requires authentication"), "{out}");
    assert_clean("check", &out);
    let (code, json) = run_cmd(&bin, &["check", "--json", "-c", cfg_s], &check_env);
    assert_eq!(code, Some(1), "{json}");
    assert_clean("check --json", &json);

    // Malformed variants of the secret-bearing lines, through config.
    let good = s.config(1);
    for (from, to) in [
        (
            format!("api_key = \"{API_KEY}\""),
            format!("api_key = \"{API_KEY}"),
        ),
        (
            format!("monitor:{URI_PW}@"),
            format!("monitor:{URI_PW}/x?y@"),
        ),
        (
            format!("monitor:{DOWN_PW}@127.0.0.1:{}", s.down),
            format!("monitor:{DOWN_PW}@127.0.0.1:99999"),
        ),
        (
            format!("proxy = \"http://pxuser:{CFG_PROXY_PW}@"),
            format!("proxy = \"pxuser:{CFG_PROXY_PW}@"),
        ),
        (
            format!("urluser:{URL_PW}@127.0.0.1:{}", s.dead),
            format!("urluser:{URL_PW}@127.0.0.1:99999"),
        ),
    ] {
        assert!(good.contains(&from), "{from}");
        let bad = s.path("bad.toml");
        std::fs::write(&bad, good.replace(&from, &to)).unwrap();
        let (code, out) = run_cmd(&bin, &["config", "-c", bad.to_str().unwrap()], &env_ref);
        assert_eq!(code, Some(2), "{to}: {out}");
        assert_clean("config on a malformed file", &out);
    }

    // run, at trace level, with two reloads.
    let mut child = Running::start(&bin, &cfg, s.dir.path(), &env_ref);
    let log = || std::fs::read_to_string(s.path("agent.log")).unwrap_or_default();
    common::wait_for(
        "samples at the keyed receiver",
        Duration::from_secs(30),
        || {
            s.keyed
                .requests()
                .iter()
                .any(|r| r.text().contains("serverStatus"))
                .then_some(())
        },
    );
    common::wait_for("dead letters", Duration::from_secs(30), || {
        (s.bearer.requests().len() >= 2).then_some(())
    });
    common::wait_for(
        "both proxied uploads at the proxy",
        Duration::from_secs(30),
        || s.proxy_saw_both().then_some(()),
    );

    // A valid reload (new interval), then a malformed file.
    reload_good_then_bad(
        child.pid(),
        &cfg,
        &s.config(2),
        &s.config(2).replace(
            &format!("api_key = \"{API_KEY}\""),
            &format!("api_key = \"{API_KEY}"),
        ),
        &log,
    );
    let since = Instant::now();
    common::wait_for(
        "sampling after the refused reload",
        Duration::from_secs(20),
        || {
            s.keyed
                .requests()
                .iter()
                .any(|r| r.at > since && r.text().contains("serverStatus"))
                .then_some(())
        },
    );
    let status = child.stop(log);
    assert!(status.success(), "{status:?}\n{}", log());

    let log = log();
    assert!(
        log.lines()
            .any(|l| l.contains("TRCE") && l.contains("Round done.")),
        "trace lines in the release build:\n{log}"
    );
    assert!(log.lines().any(|l| l.contains("DEBG")), "debug lines too");
    assert!(
        log.contains("line") && log.contains("upload[0].api_key"),
        "the refused reload names the key:\n{log}"
    );
    // The failures were logged (their secrets not: below).
    assert!(
        log.contains("proxy requires authentication"),
        "the 407 is logged:\n{log}"
    );
    let down_addr = format!("127.0.0.1:{}", s.down);
    assert!(
        log.lines()
            .any(|l| l.contains(&down_addr) && l.contains("refused")),
        "the refused connections to the down host are logged:\n{log}"
    );
    assert_clean("the log file", &log);
    for f in ["stdout", "stderr"] {
        assert_clean(f, &std::fs::read_to_string(s.path(f)).unwrap());
    }
    assert_tree_clean(&s.path("spool"));
    assert!(
        s.path("spool/bearer/dead-letter.log").exists(),
        "the refused batches were dead-lettered"
    );

    // ...while the receivers got exactly the configured credentials.
    let keyed = s.keyed.requests();
    let basic_auth = basic("basicuser", BASIC_PW);
    assert!(keyed.iter().all(|r| r.header("x-api-key") == Some(API_KEY)));
    assert!(keyed
        .iter()
        .all(|r| r.header("authorization") == Some(basic_auth.as_str())));
    let bearer = format!("Bearer {BEARER}");
    let refused = s.bearer.requests();
    assert!(!refused.is_empty());
    assert!(refused
        .iter()
        .all(|r| r.header("authorization") == Some(bearer.as_str())));
    // The proxy got its own credentials on CONNECT, and nothing meant for
    // the receiver behind it (bearer token, URL userinfo).
    let proxied = s.proxy.requests();
    let (cfg_proxy, env_proxy) = (
        basic("pxuser", CFG_PROXY_PW),
        basic("envuser", ENV_PROXY_PW),
    );
    let target = format!("127.0.0.1:{}", s.dead);
    for r in &proxied {
        let text = request_text(r);
        assert_eq!(r.path, target, "a CONNECT to the receiver: {text}");
        let auth = r.header("proxy-authorization");
        assert!(
            auth == Some(cfg_proxy.as_str()) || auth == Some(env_proxy.as_str()),
            "{text}"
        );
        let names: BTreeSet<&str> = r.headers.keys().map(String::as_str).collect();
        assert!(
            names.is_subset(&BTreeSet::from([
                "host",
                "proxy-authorization",
                "user-agent"
            ])),
            "{text}"
        );
        assert_clean("a request to the proxy", &text);
    }
    assert!(s.proxy_saw_both(), "{proxied:?}");
    for r in keyed.iter().chain(&refused) {
        assert_clean("a batch", &r.text());
    }
}

const ETCDCTL: &str = "/usr/bin/etcdctl";

/// etcdctl against `etcd`, as root when `as_root`, with `input` on stdin;
/// a failure fails the test.
fn etcdctl(etcd: &EtcdCluster, as_root: bool, args: &[&str], input: &str) -> String {
    assert!(
        Path::new(ETCDCTL).is_file(),
        "{ETCDCTL} is missing: apt-get install etcd-client (scripts/deps/50-fleet.sh does)"
    );
    let mut cmd = Command::new(ETCDCTL);
    cmd.env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(etcd.endpoints().join(","))
        .args(["--command-timeout", "5s"]);
    if as_root {
        cmd.arg("--user").arg(format!("root:{ETCD_ROOT_PW}"));
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ETCD_PW_VAR: &str = "MONGOMON_TEST_ETCD_PW";

/// Fleet mode: a one-member etcd with authentication on, its user
/// `mongomon` allowed the fleet's keys; a simulated host with a password;
/// a receiver with an API key.
struct FleetSetup {
    dir: tempfile::TempDir,
    endpoints: Vec<String>,
    sim: mongomon::sim::SimHandle,
    rcv: Receiver,
}

impl FleetSetup {
    /// The setup, and etcd (apart, so that the test can stop it).
    fn new() -> (FleetSetup, EtcdCluster) {
        let dir = tempfile::tempdir().unwrap();
        let etcd = EtcdCluster::start(1, &dir.path().join("etcd"))
            .unwrap_or_else(|e| panic!("etcd (scripts/deps/50-fleet.sh installs it): {e:#}"));
        let ctl = |args: &[&str]| etcdctl(&etcd, false, args, "");
        for step in common::etcd_auth_steps(ETCD_ROOT_PW, ETCD_PW) {
            ctl(&step.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let topology = format!(
            "[[standalone]]\nhost = \"127.0.0.1:0\"\n\
             [[users]]\nname = \"monitor\"\npassword = \"{URI_PW}\"\n"
        );
        let sim = mongomon::sim::Simulator::start(
            mongomon::sim::Topology::from_toml_str(&topology).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("etcd.pw"), format!("{ETCD_PW}\n")).unwrap();
        let setup = FleetSetup {
            dir,
            endpoints: etcd.endpoints(),
            sim,
            rcv: Receiver::accepting(),
        };
        (setup, etcd)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The configuration, the etcd password from `password_file` or (with
    /// `by_env`) from `password_env`.
    fn config(&self, interval_secs: u64, by_env: bool) -> String {
        let password = if by_env {
            format!("password_env = \"{ETCD_PW_VAR}\"")
        } else {
            format!("password_file = \"{}\"", self.path("etcd.pw").display())
        };
        format!(
            r#"[agent]
interval_secs = {interval_secs}
command_timeout_ms = 1000
connect_timeout_ms = 1000
log_level = "trace"
log_file = "{log}"
spool_dir = "{spool}"

[[targets]]
name = "good"
uri = "mongodb://monitor:{URI_PW}@{host}/?authSource=admin"
discover = false

[[upload]]
name = "keyed"
url = "{rcv}"
format = "json"
api_key = "{API_KEY}"
proxy = "none"
max_batch_age_ms = 200

[fleet]
etcd_endpoints = {endpoints}
name = "secrets"
agent_id = "secrets-agent"
lease_ttl_secs = 2
username = "mongomon"
{password}
"#,
            log = self.path("agent.log").display(),
            spool = self.path("spool").display(),
            host = self.sim.standalones()[0],
            rcv = self.rcv.url(),
            endpoints = toml_list(&self.endpoints),
        )
    }
}

/// Fleet mode with an etcd user: the password, from a file and from a
/// variable, never shows through `config`, `check`, `fleet status`, a run
/// with reloads, a password changed under the agent, etcd going away and
/// shutdown, while the agent did log in (it joined, sampled, and `fleet
/// status` lists it).
#[test]
fn fleet_mode_never_shows_the_etcd_password() {
    let bin = release_bin();
    let (f, mut etcd) = FleetSetup::new();
    let by_file = f.path("by-file.toml");
    let by_env = f.path("by-env.toml");
    std::fs::write(&by_file, f.config(1, false)).unwrap();
    std::fs::write(&by_env, f.config(1, true)).unwrap();
    let (file_s, env_s) = (by_file.to_str().unwrap(), by_env.to_str().unwrap());
    let env = [(ETCD_PW_VAR, ETCD_PW)];
    let trace = [
        (ETCD_PW_VAR, ETCD_PW),
        ("MONGOMON_AGENT__LOG_LEVEL", "trace"),
    ];

    // config, check and fleet status with each way of giving the password;
    // the etcd line is OK, so etcd took it.
    for cfg in [file_s, env_s] {
        let (code, out) = run_cmd(&bin, &["config", "-c", cfg], &env);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("username = \"mongomon\""), "{out}");
        assert_clean("config", &out);
        let (code, out) = run_cmd(&bin, &["check", "-vv", "-c", cfg], &trace);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("OK") && l.contains("etcd 3.")),
            "{out}"
        );
        assert_clean("check", &out);
        let (code, out) = run_cmd(&bin, &["check", "--json", "-c", cfg], &trace);
        assert_eq!(code, Some(0), "{out}");
        assert_clean("check --json", &out);
        let (code, out) = run_cmd(&bin, &["fleet", "status", "-c", cfg], &trace);
        assert_eq!(code, Some(1), "no agent yet: {out}");
        assert!(out.contains("0 agents"), "{out}");
        assert_clean("fleet status", &out);
    }

    // Malformed: the password inline (fleet takes it from a file or a
    // variable only), broken on its line, in the endpoint's userinfo, and
    // as an environment layer.
    let good = f.config(1, false);
    let pw_line = format!("password_file = \"{}\"", f.path("etcd.pw").display());
    assert!(good.contains(&pw_line));
    let endpoint = f.endpoints[0].clone();
    for bad in [
        good.replace(&pw_line, &format!("password = \"{ETCD_PW}\"")),
        good.replace(&pw_line, &format!("password_file = \"{ETCD_PW}")),
        good.replace(&pw_line, &format!("password = \"{ETCD_PW}")),
        good.replace(
            &format!("\"{endpoint}\""),
            &format!(
                "\"{}\"",
                endpoint.replace("http://", &format!("http://mongomon:{ETCD_PW}@"))
            ),
        ),
    ] {
        assert_ne!(bad, good);
        let path = f.path("bad.toml");
        std::fs::write(&path, &bad).unwrap();
        let (code, out) = run_cmd(&bin, &["config", "-c", path.to_str().unwrap()], &env);
        assert_eq!(code, Some(2), "{bad}\n{out}");
        assert_clean("config on a malformed file", &out);
        let (code, out) = run_cmd(&bin, &["check", "-c", path.to_str().unwrap()], &trace);
        assert_eq!(code, Some(2), "{bad}\n{out}");
        assert_clean("check on a malformed file", &out);
    }
    let mut layered = trace.to_vec();
    layered.push(("MONGOMON_FLEET__PASSWORD", ETCD_PW));
    let (code, out) = run_cmd(&bin, &["config", "-c", file_s], &layered);
    assert_eq!(code, Some(2), "{out}");
    assert_clean("config with MONGOMON_FLEET__PASSWORD", &out);

    // run, the password from the variable, at trace level.
    let mut child = Running::start(&bin, &by_env, f.dir.path(), &env);
    let log = || std::fs::read_to_string(f.path("agent.log")).unwrap_or_default();
    let sampled_since = |since: Instant| {
        f.rcv
            .requests()
            .iter()
            .any(|r| r.at > since && r.text().contains("serverStatus"))
    };
    let t0 = Instant::now();
    common::wait_for("samples through the fleet", Duration::from_secs(30), || {
        sampled_since(t0).then_some(())
    });
    assert!(log().contains("Joined the fleet."), "{}", log());
    for cfg in [file_s, env_s] {
        let (code, out) = run_cmd(&bin, &["fleet", "status", "-c", cfg], &trace);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("1 agents, 1 hosts published, leader: secrets-agent"),
            "{out}"
        );
        assert_clean("fleet status", &out);
        let (code, out) = run_cmd(&bin, &["fleet", "status", "--json", "-c", cfg], &trace);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("\"agent_id\": \"secrets-agent\""), "{out}");
        assert_clean("fleet status --json", &out);
    }

    // A valid reload, then a malformed file with the password on the
    // broken line.
    reload_good_then_bad(
        child.pid(),
        &by_env,
        &f.config(2, true),
        &f.config(2, true).replace(
            &format!("password_env = \"{ETCD_PW_VAR}\""),
            &format!("password = \"{ETCD_PW}"),
        ),
        &log,
    );
    let t1 = Instant::now();
    common::wait_for(
        "sampling after the refused reload",
        Duration::from_secs(20),
        || sampled_since(t1).then_some(()),
    );

    // The file as it was, for the commands below (no reload).
    std::fs::write(&by_env, f.config(2, true)).unwrap();

    // The password is changed under the running agent (its token still
    // holds), then etcd goes away: the agent says it cannot reach etcd and
    // `check` says refused. etcd comes back without the agent's token, so
    // the agent must log in again, with its now wrong password: refused,
    // and `check` and `fleet status` with that password say so.
    etcdctl(
        &etcd,
        true,
        &["user", "passwd", "mongomon", "--interactive=false"],
        &format!("{ETCD_NEW_PW}\n"),
    );
    etcd.stop(0);
    wait_for_line("etcd unreachable, logged", &log, |l| {
        l.contains("etcd trouble") && l.contains("cannot reach etcd")
    });
    let (code, out) = run_cmd(&bin, &["check", "-vv", "-c", env_s], &trace);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("etcd") && l.contains("refused")),
        "{out}"
    );
    assert_clean("check without etcd", &out);
    etcd.restart(0).expect("etcd starts again");
    etcd.wait_healthy(&[0], Duration::from_secs(30))
        .expect("etcd healthy again");
    wait_for_line("the agent's refused login", &log, |l| {
        l.contains("etcd trouble") && l.contains("authentication failed")
    });
    let (code, out) = run_cmd(&bin, &["check", "-vv", "-c", file_s], &trace);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("etcd"))
        .unwrap_or_else(|| panic!("an etcd line: {out}"));
    assert!(line.starts_with("FAIL") && line.contains("auth"), "{line}");
    assert_clean("check with the old password", &out);
    let (code, out) = run_cmd(&bin, &["fleet", "status", "-c", env_s], &trace);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("authentication failed"), "{out}");
    assert_clean("fleet status with the old password", &out);

    let status = child.stop(log);
    assert!(status.success(), "{status:?}\n{}", log());

    let log = log();
    assert!(
        log.lines()
            .any(|l| l.contains("TRCE") && l.contains("Round done.")),
        "trace lines:\n{log}"
    );
    assert!(
        log.contains("fleet.password"),
        "the refused reload names the key:\n{log}"
    );
    assert_clean("the log file", &log);
    for name in ["stdout", "stderr"] {
        assert_clean(name, &std::fs::read_to_string(f.path(name)).unwrap());
    }
    assert_tree_clean(&f.path("spool"));
    let reqs = f.rcv.requests();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|r| r.header("x-api-key") == Some(API_KEY)));
    for r in &reqs {
        assert_clean("a batch", &r.text());
    }
}

/// Waits (20 s at most) for a line of `log` that `want` takes; else fails
/// with the log's fleet lines.
fn wait_for_line(what: &str, log: &dyn Fn() -> String, want: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !log().lines().any(&want) {
        if start.elapsed() > Duration::from_secs(20) {
            let text = log();
            let fleet: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("etcd") || l.contains("fleet") || l.contains("Fleet"))
                .collect();
            panic!(
                "timed out waiting for {what}; the log's fleet lines:\n{}",
                fleet.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|e| format!("\"{e}\"")).collect();
    format!("[{}]", quoted.join(", "))
}
