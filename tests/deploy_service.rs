//! Running the agent as a service, as the deployment guide describes it:
//! the LSB init script driven through every action with the real
//! start-stop-daemon as the `mongomon` user, the systemd unit checked by
//! `systemd-analyze verify` and rated OK or better by `systemd-analyze
//! security`, the shipped logrotate file rotating a live log,
//! the `nohup … &` detach, and the refusal to run as root.
//!
//! The init script and logrotate tests need root (a system user, chown) and
//! fail with the reason otherwise; CI runs as root.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::deploy::{self, ensure_service_user, SERVICE_USER};
use common::receiver::Receiver;
use common::wait_for;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn chown(path: &Path, owner: &str) {
    let st = Command::new("chown")
        .arg(owner)
        .arg(path)
        .status()
        .expect("chown");
    assert!(st.success(), "chown {owner} {}", path.display());
}

fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/test-deps.sh (apt-get install {package})");
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: the init script's stop must really end it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Whether `pid` is gone entirely (reaped, not even a zombie).
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The init script and what it runs, installed under a temporary root.
struct InitRoot {
    dir: tempfile::TempDir,
}

impl InitRoot {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // The agent runs as mongomon and must reach its binary and config.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = InitRoot { dir };
        for d in ["etc/init.d", "etc/default", "etc/mongomon", "usr/bin"] {
            std::fs::create_dir_all(r.path(d)).unwrap();
        }
        std::fs::copy(
            Path::new(REPO).join("config/init.d/mongomon"),
            r.path("etc/init.d/mongomon"),
        )
        .unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_mongomon"), r.path("usr/bin/mongomon")).unwrap();
        let defaults = format!(
            "DAEMON={root}/usr/bin/mongomon\nCONFIG={root}/etc/mongomon/mongomon.toml\n\
             LOGFILE={root}/var/log/mongomon/mongomon.log\nPIDFILE={root}/run/mongomon/mongomon.pid\n\
             https_proxy=http://proxy.invalid:3128\nno_proxy=127.0.0.1,localhost\nSTOP_TIMEOUT=15\nSTART_WAIT=4\n",
            root = r.dir.path().display()
        );
        std::fs::write(r.path("etc/default/mongomon"), defaults).unwrap();
        r
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write_config(&self, text: &str) {
        let p = self.path("etc/mongomon/mongomon.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        chown(&p, &format!("root:{SERVICE_USER}"));
    }

    /// Runs `/etc/init.d/mongomon ACTION` with a clean environment, as
    /// `service` does.
    fn action(&self, action: &str) -> (i32, String) {
        let o = Command::new(self.path("etc/init.d/mongomon"))
            .arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("MONGOMON_DEFAULTS", self.path("etc/default/mongomon"))
            .stdin(Stdio::null())
            .output()
            .expect("run the init script");
        (o.status.code().unwrap_or(-1), text(&o))
    }

    fn pid(&self) -> Option<u32> {
        read_pid(&self.path("run/mongomon/mongomon.pid"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("var/log/mongomon/mongomon.log")).unwrap_or_default()
    }
}

impl Drop for InitRoot {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            common::signal(pid, libc::SIGKILL);
        }
    }
}

fn uid_of_process(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .expect("effective uid")
}

#[test]
fn init_script_drives_the_agent_through_every_action() {
    tool("start-stop-daemon", "dpkg");
    let uid = ensure_service_user();
    let (_sim, hosts) = deploy::standalones(2);
    let receiver = Receiver::accepting();
    let root = InitRoot::new();

    // Unconfigured: nothing to start, LSB 6; nothing running: 3 and 7.
    let (code, out) = root.action("start");
    assert_eq!(code, 6, "start without a config: {out}");
    assert!(out.contains("mongomon init"), "{out}");
    assert_eq!(root.action("status").0, 3);
    assert_eq!(root.action("reload").0, 7);
    assert_eq!(root.action("stop").0, 0, "stopping a stopped service is OK");

    root.write_config(&deploy::config(&[&hosts[0]], 1, &receiver));
    let started = Instant::now();
    let (code, out) = root.action("start");
    assert_eq!(code, 0, "start: {out}\nlog:\n{}", root.log());
    let pid = root.pid().expect("the agent wrote its pid file");
    assert!(alive(pid));
    assert_eq!(uid_of_process(pid), uid, "runs as {SERVICE_USER}, not root");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ
            .split('\0')
            .any(|v| v == "https_proxy=http://proxy.invalid:3128"),
        "the proxy setting of /etc/default/mongomon reaches the agent: {environ:?}"
    );
    wait_for("samples of the first host", Duration::from_secs(20), || {
        deploy::seen_since(&receiver, &hosts[0], started).then_some(())
    });

    // start again: already running, same process.
    let (code, out) = root.action("start");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already running"), "{out}");
    assert_eq!(root.pid(), Some(pid));
    let (code, out) = root.action("status");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&pid.to_string()), "{out}");

    // reload: SIGHUP to the same process, which rereads the configuration.
    root.write_config(&deploy::config(&[&hosts[0], &hosts[1]], 1, &receiver));
    let reloaded = Instant::now();
    let (code, out) = root.action("reload");
    assert_eq!(code, 0, "{out}");
    wait_for(
        "samples of the host added by reload",
        Duration::from_secs(20),
        || deploy::seen_since(&receiver, &hosts[1], reloaded).then_some(()),
    );
    assert_eq!(root.pid(), Some(pid), "reload keeps the process");
    assert!(
        root.log().contains("Configuration reloaded."),
        "{}",
        root.log()
    );
    assert_eq!(root.action("force-reload").0, 0);

    // restart: the old process drains and exits, a new one runs.
    let (code, out) = root.action("restart");
    assert_eq!(code, 0, "{out}\n{}", root.log());
    let new_pid = root.pid().expect("pid file after restart");
    assert_ne!(new_pid, pid);
    assert!(!alive(pid), "the old agent is gone");
    assert!(alive(new_pid));
    assert!(
        root.log().contains("Shutting down."),
        "SIGTERM was received"
    );

    // stop: gone, pid file removed, stopped status.
    let (code, out) = root.action("stop");
    assert_eq!(code, 0, "{out}");
    assert!(!alive(new_pid));
    assert!(!root.path("run/mongomon/mongomon.pid").exists());
    assert_eq!(root.action("status").0, 3);
    assert_eq!(root.action("reload").0, 7);

    // A crashed agent leaves its pid file: status 1, and start recovers.
    let (code, out) = root.action("start");
    assert_eq!(code, 0, "{out}");
    let pid = root.pid().unwrap();
    common::signal(pid, libc::SIGKILL);
    // Gone, not a zombie: init has reaped it, as after a real crash.
    wait_for(
        "the killed agent to be reaped",
        Duration::from_secs(10),
        || gone(pid).then_some(()),
    );
    let (code, out) = root.action("status");
    assert_eq!(code, 1, "dead with a pid file: {out}");
    assert_eq!(root.action("start").0, 0);
    let pid = root.pid().unwrap();
    assert!(alive(pid));
    assert_eq!(root.action("stop").0, 0);
    assert!(!alive(pid));

    // A configuration the agent rejects: start fails, the reason is logged.
    root.write_config("[agent]\ninterval_secs = -1\n");
    let (code, out) = root.action("start");
    assert_eq!(code, 1, "{out}");
    assert!(
        root.log()
            .contains("agent.interval_secs must be between 1 and 86400"),
        "{}",
        root.log()
    );
    assert_eq!(root.action("bogus").0, 2, "usage error");
}

#[test]
fn systemd_analyze_accepts_the_unit() {
    let analyze = tool("systemd-analyze", "systemd");
    // verify checks that ExecStart's binary exists, so the unit is checked
    // inside a root that has the binary where the package puts it.
    // The system's own units (targets the unit orders against) and /bin/kill
    // come along; /bin and /lib are the merged-/usr links of Debian 12.
    let root = tempfile::tempdir().unwrap();
    let unit_dir = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    let sys_units = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&sys_units).unwrap();
    std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
    std::os::unix::fs::symlink("usr/lib", root.path().join("lib")).unwrap();
    for e in std::fs::read_dir("/usr/lib/systemd/system").expect("systemd units") {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), sys_units.join(e.file_name())).unwrap();
        }
    }
    std::fs::copy(tool("kill", "procps"), root.path().join("usr/bin/kill")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_mongomon"),
        root.path().join("usr/bin/mongomon"),
    )
    .unwrap();
    let unit = unit_dir.join("mongomon.service");
    std::fs::copy(
        Path::new(REPO).join("config/systemd/mongomon.service"),
        &unit,
    )
    .unwrap();
    let o = Command::new(&analyze)
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg(&unit)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze");
    let out = text(&o);
    assert!(o.status.success(), "systemd-analyze verify failed:\n{out}");
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("mongomon.service"))
        .collect();
    assert!(ours.is_empty(), "warnings about the unit:\n{out}");

    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for want in [
        "User=mongomon",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mongomon /var/log/mongomon",
        "PrivateTmp=yes",
        "EnvironmentFile=-/etc/default/mongomon",
    ] {
        assert!(unit_text.lines().any(|l| l == want), "unit lacks {want}");
    }

    // A broken unit is rejected: the check can fail.
    std::fs::write(
        &unit,
        unit_text.replace("Restart=on-failure", "Restart=sometimes"),
    )
    .unwrap();
    let o = Command::new(&analyze)
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg(&unit)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(
        out.contains("mongomon.service") && out.contains("sometimes"),
        "a bad Restart= is reported: {out}"
    );
}

/// The exposure `systemd-analyze security --offline=true` gives `unit`, its
/// level word, and the settings of its ✗ lines, with its whole output.
fn security(analyze: &Path, unit: &Path) -> (f64, String, Vec<String>, String) {
    let o = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze security");
    let out = text(&o);
    assert!(
        o.status.success(),
        "systemd-analyze security failed:\n{out}"
    );
    // "→ Overall exposure level for mongomon.service: 1.2 OK 🙂"
    let overall = out
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for mongomon.service:"))
        .map(|(_, rest)| rest.split_whitespace().take(2).collect::<Vec<_>>())
        .unwrap_or_else(|| panic!("no overall exposure line:\n{out}"));
    let exposure: f64 = overall[0]
        .parse()
        .unwrap_or_else(|_| panic!("exposure {:?} is not a number:\n{out}", overall[0]));
    let level = overall.get(1).copied().unwrap_or("").to_string();
    // "✗ ProcSubset=   Service has full access …   0.1": the setting is the
    // part of the first word before its '='.
    let open = out
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('✗'))
        .filter_map(|l| l.split_whitespace().next())
        .map(|w| w.split('=').next().unwrap_or(w).to_string())
        .collect();
    (exposure, level, open, out)
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok_or_better() {
    let analyze = tool("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("mongomon.service");
    let shipped =
        std::fs::read_to_string(Path::new(REPO).join("config/systemd/mongomon.service")).unwrap();
    std::fs::write(&unit, &shipped).unwrap();
    let (exposure, level, open, out) = security(&analyze, &unit);
    println!("systemd-analyze security --offline=true: exposure {exposure} {level}");
    // systemd's levels: PERFECT, SAFE, OK (below 5.0), then MEDIUM, EXPOSED,
    // UNSAFE.
    assert!(
        ["OK", "SAFE", "PERFECT"].contains(&level.as_str()) && exposure <= 4.9,
        "exposure {exposure} {level}, OK or better wanted:\n{out}"
    );
    // Each check left open is explained in the unit, by name, in a comment.
    let comments: Vec<&str> = shipped
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    let unexplained: Vec<&String> = open
        .iter()
        .filter(|name| !comments.iter().any(|c| c.contains(&format!("{name}="))))
        .collect();
    assert!(
        !open.is_empty() && unexplained.is_empty(),
        "open checks without a comment saying why (e.g. \"# Open: Name=, because …\"): {unexplained:?}\n{out}"
    );

    // The check can fail: without the hardening the level drops.
    let bare: String = shipped
        .lines()
        .filter(|l| {
            ![
                "Protect",
                "Private",
                "Restrict",
                "SystemCall",
                "Capability",
                "MemoryDeny",
                "NoNewPriv",
                "LockPers",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&unit, bare).unwrap();
    let (bare_exposure, bare_level, _, out) = security(&analyze, &unit);
    assert!(
        bare_exposure > 4.9 && !["OK", "SAFE", "PERFECT"].contains(&bare_level.as_str()),
        "an unhardened unit rates {bare_exposure} {bare_level}:\n{out}"
    );
}

#[test]
fn logrotate_rotates_the_live_log_without_losing_lines() {
    let logrotate = tool("logrotate", "logrotate");
    ensure_service_user();
    let (_sim, hosts) = deploy::standalones(1);
    let receiver = Receiver::accepting();
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("log");
    let rundir = dir.path().join("run");
    std::fs::create_dir_all(&logdir).unwrap();
    std::fs::create_dir_all(&rundir).unwrap();
    let log = logdir.join("mongomon.log");
    let pidfile = rundir.join("mongomon.pid");
    // The shipped file, with only its paths moved into the test's directory.
    let conf = std::fs::read_to_string(Path::new(REPO).join("config/logrotate/mongomon"))
        .unwrap()
        .replace("/var/log/mongomon", logdir.to_str().unwrap())
        .replace("/run/mongomon", rundir.to_str().unwrap());
    let conf_path = dir.path().join("logrotate.conf");
    std::fs::write(&conf_path, conf).unwrap();

    let mut agent = common::Agent::start_with(
        &deploy::config(&[&hosts[0]], 1, &receiver),
        &[
            "--log-file",
            log.to_str().unwrap(),
            "--pidfile",
            pidfile.to_str().unwrap(),
        ],
    );
    wait_for("the pid file", Duration::from_secs(10), || {
        read_pid(&pidfile).filter(|p| *p == agent.pid())
    });
    let delivered = |s: &str| s.matches("Batch delivered.").count();
    wait_for("a few deliveries logged", Duration::from_secs(20), || {
        (delivered(&std::fs::read_to_string(&log).unwrap_or_default()) >= 3).then_some(())
    });

    let o = Command::new(&logrotate)
        .arg("-f")
        .arg("-s")
        .arg(dir.path().join("state"))
        .arg(&conf_path)
        .output()
        .expect("logrotate");
    assert!(o.status.success(), "logrotate: {}", text(&o));
    let rotated = logdir.join("mongomon.log.1");
    assert!(
        rotated.exists(),
        "rotated file (delaycompress keeps .1 plain)"
    );
    let rotated_at = Instant::now();
    wait_for(
        "deliveries logged in the new file",
        Duration::from_secs(20),
        || (delivered(&std::fs::read_to_string(&log).unwrap_or_default()) >= 3).then_some(()),
    );
    assert!(rotated_at.elapsed() < Duration::from_secs(20));
    let status = agent.stop(Duration::from_secs(20));
    assert!(status.success(), "{status}");

    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.mode() & 0o777, 0o640, "created with the shipped mode");
    // Every batch the receiver took was logged once, in one of the files.
    let accepted = receiver
        .requests()
        .iter()
        .filter(|r| r.status == 204)
        .count();
    assert_eq!(
        delivered(&old) + delivered(&new),
        accepted,
        "old:\n{old}\nnew:\n{new}"
    );
    assert!(
        new.contains("Shutting down."),
        "the last lines are in the new file"
    );
    assert!(!old.contains("Shutting down."));
    assert!(!pidfile.exists(), "the pid file is removed on exit");
}

#[test]
fn nohup_detach_writes_pid_and_log_without_a_terminal() {
    let (_sim, hosts) = deploy::standalones(1);
    let receiver = Receiver::accepting();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mongomon.toml");
    std::fs::write(&cfg, deploy::config(&[&hosts[0]], 1, &receiver)).unwrap();
    let (pidfile, log) = (dir.path().join("m.pid"), dir.path().join("agent.log"));
    let allow = if common::is_root() {
        "--allow-root"
    } else {
        ""
    };
    // The guide's command, in a new session (setsid): no controlling terminal.
    let script = format!(
        "cd {dir} && nohup {bin} run {allow} -c {cfg} --pidfile {pid} --log-file {log} > nohup.out 2>&1 &",
        dir = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_mongomon"),
        cfg = cfg.display(),
        pid = pidfile.display(),
        log = log.display(),
    );
    let st = Command::new("setsid")
        .args(["-w", "sh", "-c", &script])
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("setsid sh");
    assert!(st.success());
    let pid = wait_for("the pid file", Duration::from_secs(10), || {
        read_pid(&pidfile)
    });
    wait_for("samples at the receiver", Duration::from_secs(20), || {
        deploy::seen_since(
            &receiver,
            &hosts[0],
            Instant::now() - Duration::from_secs(60),
        )
        .then_some(())
    });
    assert!(alive(pid));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Agent starting."), "{logged}");
    // SIGHUP (what a closing terminal would send) reloads, it does not kill.
    common::signal(pid, libc::SIGHUP);
    wait_for("the reload", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("Configuration reloaded.")
            .then_some(())
    });
    assert!(alive(pid));
    common::signal(pid, libc::SIGTERM);
    wait_for("the agent to exit", Duration::from_secs(20), || {
        (!alive(pid)).then_some(())
    });
    assert!(!pidfile.exists(), "pid file removed on exit");
    let nohup_out = std::fs::read_to_string(dir.path().join("nohup.out")).unwrap_or_default();
    assert!(
        nohup_out.trim().is_empty(),
        "everything went to the log file: {nohup_out}"
    );
}

#[test]
fn running_as_root_is_refused_without_allow_root() {
    assert!(
        common::is_root(),
        "this test checks the root refusal and must run as root (CI does); run it with sudo"
    );
    let (_sim, hosts) = deploy::standalones(1);
    let receiver = Receiver::accepting();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mongomon.toml");
    std::fs::write(&cfg, deploy::config(&[&hosts[0]], 1, &receiver)).unwrap();
    let o = common::mongomon(&["run", "-c", cfg.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Refusing to run as root")
            && err.contains("useradd --system")
            && err.contains("--allow-root"),
        "{err}"
    );
    assert!(receiver.requests().is_empty(), "nothing was started");

    // --allow-root starts, with a warning.
    let mut agent = common::Agent::start(&deploy::config(&[&hosts[0]], 1, &receiver));
    wait_for("the warning", Duration::from_secs(10), || {
        agent
            .log()
            .contains("Running as root because of --allow-root")
            .then_some(())
    });
    assert!(agent.stop(Duration::from_secs(20)).success());
}
