//! The shipped binary (issue 11): `target/release/mongomon`, built by
//! scripts/test.sh before the suite, run through `config`, `check`, `run`
//! with reloads (one valid, one a malformed file) and shutdown, at trace
//! level, with a distinctive secret in every secret-bearing key and in
//! malformed variants of them. No secret may appear on stdout, stderr, in
//! the log file, the spool or the dead-letter file; the receivers still get
//! the right credentials; and trace lines are written (slog's compile-time
//! caps once dropped them in release builds).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use common::receiver::Receiver;

const URI_PW: &str = "URIPW-3c9d1f";
const TARGET_PW: &str = "TGTPW-a8e270";
const API_KEY: &str = "APIKEY-d41f9c";
const BEARER: &str = "BEARER-77ae21";
const BASIC_PW: &str = "BASICPW-5c0e3b";
const BEARER_FILE: &str = "BEARERFILE-e1b9d4";
const URL_PW: &str = "URLPW-60f2aa";
const CFG_PROXY_PW: &str = "CFGPROXY-19c4b7";
const ENV_PROXY_PW: &str = "ENVPROXY-d2a035";
const ALL: [&str; 9] = [
    URI_PW,
    TARGET_PW,
    API_KEY,
    BEARER,
    BASIC_PW,
    BEARER_FILE,
    URL_PW,
    CFG_PROXY_PW,
    ENV_PROXY_PW,
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

struct Setup {
    dir: tempfile::TempDir,
    sim: mongomon::sim::SimHandle,
    keyed: Receiver,
    bearer: Receiver,
    dead: u16,
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
            dead: common::free_port(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every secret-bearing key, each with its own distinctive secret.
    fn config(&self, interval_secs: u64) -> String {
        let hosts = self.sim.standalones();
        std::fs::write(self.path("bearer.txt"), format!("{BEARER_FILE}\n")).unwrap();
        let dead = self.dead;
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
proxy = "http://pxuser:{CFG_PROXY_PW}@127.0.0.1:{dead}"
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
            format!("http://envuser:{ENV_PROXY_PW}@127.0.0.1:{}", self.dead),
        )]
    }
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
        "the dead receivers and the wrong password fail: {out}"
    );
    assert!(out.contains("auth"), "{out}");
    assert!(out.contains("refused"), "{out}");
    assert_clean("check", &out);

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
    let mut cmd = Command::new(&bin);
    cmd.args(["run", "-vv", "-c", cfg_s])
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(s.path("stdout")).unwrap())
        .stderr(std::fs::File::create(s.path("stderr")).unwrap());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    if common::is_root() {
        cmd.arg("--allow-root");
    }
    let mut child = cmd.spawn().unwrap();
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

    // A valid reload (new interval), then a malformed file.
    std::fs::write(&cfg, s.config(2)).unwrap();
    common::signal(child.id(), libc::SIGHUP);
    common::wait_for("the reload", Duration::from_secs(20), || {
        log().contains("Configuration reloaded").then_some(())
    });
    std::fs::write(
        &cfg,
        s.config(2).replace(
            &format!("api_key = \"{API_KEY}\""),
            &format!("api_key = \"{API_KEY}"),
        ),
    )
    .unwrap();
    common::signal(child.id(), libc::SIGHUP);
    common::wait_for("the refused reload", Duration::from_secs(20), || {
        log()
            .contains("keeping the running configuration")
            .then_some(())
    });
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
    common::signal(child.id(), libc::SIGTERM);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("no exit after SIGTERM; log:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
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
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("basicuser:{BASIC_PW}"))
    );
    assert!(keyed.iter().all(|r| r.header("x-api-key") == Some(API_KEY)));
    assert!(keyed
        .iter()
        .all(|r| r.header("authorization") == Some(basic.as_str())));
    let bearer = format!("Bearer {BEARER}");
    assert!(s
        .bearer
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(bearer.as_str())));
}
