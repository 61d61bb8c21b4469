//! Permission checks at start (issue 15): `run` refuses a configuration
//! file or spool directory that others can write, or a spool directory of
//! another user, with the path, the mode or owner and the command that fixes
//! it, and never a secret of the configuration; `check` reports the same as
//! FAIL lines, and a SIGHUP reload refuses such a file and keeps the
//! running configuration. The spool it creates itself is private:
//! directories 0700, files 0600, whatever the umask.
//!
//! The owner test needs root (chown, a second user) and fails with the
//! reason otherwise; CI runs as root.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::deploy::{self, ensure_service_user, SERVICE_USER};
use common::{free_port, is_root, mongomon_timeout, wait_for};

const API_KEY: &str = "HARDEN-APIKEY-3f9d1c";
const PASSWORD: &str = "HARDEN-PASS-77ae04";

/// A configuration holding two distinctive secrets, monitoring `db`
/// (`host:port`) and uploading to a closed port: every batch waits in the
/// spool (`<spool_dir>/main/`).
fn config(spool_dir: &Path, db: &str) -> String {
    format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 500\nconnect_timeout_ms = 500\nspool_dir = \"{spool}\"\n\
         [[targets]]\nname = \"db\"\nuri = \"mongodb://monitor:{PASSWORD}@{db}/\"\ndiscover = false\n\
         [upload]\nname = \"main\"\nurl = \"http://127.0.0.1:{up}/write\"\napi_key = \"{API_KEY}\"\n",
        spool = spool_dir.display(),
        up = free_port(),
    )
}

/// A MongoDB address nothing listens on.
fn closed() -> String {
    format!("127.0.0.1:{}", free_port())
}

fn write_config(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let p = dir.join("mongomon.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_secret(text: &str) {
    for s in [API_KEY, PASSWORD] {
        assert!(!text.contains(s), "a secret of the config leaked: {text}");
    }
}

/// `mongomon run -c cfg` (with `--allow-root` as root, so that the refusal
/// seen is this one), bounded in time: an agent that does not refuse would
/// otherwise run on.
fn run(cfg: &Path) -> Output {
    let cfg = cfg.to_str().unwrap();
    let mut args = vec!["run", "-c", cfg];
    if is_root() {
        args.insert(1, "--allow-root");
    }
    mongomon_timeout(&args, Duration::from_secs(15))
}

/// `run` refused: exit 2, one line on stderr, no secret; returns the line.
fn refused(cfg: &Path) -> String {
    let o = run(cfg);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "refused with 2: {}", out(&o));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert_no_secret(&out(&o));
    err
}

/// `mongomon check -c cfg`: its FAIL lines of kind `files`, after checking
/// that no secret is printed and that it exits 1 (everything else fails
/// too, the ports are closed).
fn check_files_lines(cfg: &Path) -> Vec<String> {
    let o = mongomon_timeout(
        &["check", "-c", cfg.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_no_secret(&text);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("files"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_world_writable_config_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config(Path::new(""), &closed()), 0o666);
    let p = cfg.display().to_string();
    let err = refused(&cfg);
    assert!(
        err.contains(&format!(
            "The configuration file {p} is writable by its group and every user (mode 0666)"
        )) && err.contains(&format!("chmod 0640 {p}"))
            && err.contains(&format!("chmod 0600 {p}")),
        "names the file, its mode and the fix: {err}"
    );
    let lines = check_files_lines(&cfg);
    assert!(
        lines.len() == 1
            && lines[0].starts_with("FAIL")
            && lines[0].contains("--config")
            && lines[0].contains("permissions: The configuration file")
            && lines[0].contains(&format!("chmod 0640 {p}")),
        "check reports it: {lines:?}"
    );

    // Group-writable is refused too (sshd's StrictModes).
    chmod(&cfg, 0o620);
    let err = refused(&cfg);
    assert!(
        err.contains("writable by its group (mode 0620)")
            && err.contains(&format!("chmod 0640 {p}")),
        "{err}"
    );

    // Readable by all (warned about elsewhere) but writable by its owner
    // only: no permission problem.
    chmod(&cfg, 0o644);
    assert_eq!(check_files_lines(&cfg), Vec::<String>::new());
}

#[test]
fn a_group_writable_spool_dir_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    chmod(&spool, 0o770);
    let cfg = write_config(dir.path(), &config(&spool, &closed()), 0o600);
    let d = spool.display().to_string();
    let err = refused(&cfg);
    assert!(
        err.contains(&format!(
            "agent.spool_dir {d} is writable by its group (mode 0770)"
        )) && err.contains(&format!("chmod 0700 {d}")),
        "names the key, the directory, its mode and the fix: {err}"
    );
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "refused before the spool was opened"
    );
    let lines = check_files_lines(&cfg);
    assert!(
        lines.len() == 1
            && lines[0].contains("agent.spool_dir")
            && lines[0].contains("permissions:")
            && lines[0].contains(&format!("chmod 0700 {d}")),
        "check reports it: {lines:?}"
    );

    // World-writable, even with the sticky bit of /tmp, and together with a
    // bad configuration file: both in the one line.
    chmod(&spool, 0o1777);
    chmod(&cfg, 0o602);
    let err = refused(&cfg);
    assert!(
        err.contains("(mode 1777)")
            && err.contains(&format!("chmod 0700 {d}"))
            && err.contains("(mode 0602)")
            && err.contains(&format!("chmod 0640 {}", cfg.display())),
        "{err}"
    );
    assert_eq!(check_files_lines(&cfg).len(), 2);

    // 0755 (what mkdir gives with the usual umask) and the package's 0750
    // are fine.
    chmod(&cfg, 0o600);
    for ok in [0o755, 0o750, 0o700] {
        chmod(&spool, ok);
        assert_eq!(check_files_lines(&cfg), Vec::<String>::new(), "{ok:o}");
    }
}

/// Starts `mongomon run` with `umask 000`, so that only the modes the agent
/// asks for count, logging to `dir/agent.log`.
fn start_with_umask_000(dir: tempfile::TempDir, cfg: &Path) -> common::Agent {
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_mongomon"))
        .args(["run", "-v"]);
    if is_root() {
        cmd.arg("--allow-root");
    }
    let child: Child = cmd
        .arg("-c")
        .arg(cfg)
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("sh");
    common::Agent::adopt(child, dir)
}

/// The first spooled segment under `spool` (the receiver is a closed port),
/// failing if the agent exits first.
fn first_segment(agent: &mut common::Agent, spool: &Path) -> PathBuf {
    wait_for("a spooled segment", Duration::from_secs(30), || {
        if !agent.is_running() {
            panic!("the agent exited:\n{}", agent.log());
        }
        files_under(spool)
            .into_iter()
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn the_spool_dir_is_created_private_and_spool_files_are_0600() {
    let (_sim, hosts) = deploy::standalones(1);
    let dir = tempfile::tempdir().unwrap();
    // Two levels that do not exist yet.
    let spool = dir.path().join("lib/spool");
    // The simulator's host is sampled; the receiver is a closed port.
    let text = config(&spool, &hosts[0]);
    let cfg = write_config(dir.path(), &text, 0o600);
    let mut agent = start_with_umask_000(dir, &cfg);
    let seg = first_segment(&mut agent, &spool);
    let target_dir = seg.parent().unwrap().to_path_buf();
    for d in [spool.parent().unwrap(), &spool, &target_dir] {
        assert_eq!(mode(d), 0o700, "{} (umask 000)", d.display());
    }
    let files: Vec<PathBuf> = files_under(&spool)
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(
        files.iter().any(|p| p.ends_with("LOCK")) && files.contains(&seg),
        "{files:?}"
    );
    for f in &files {
        assert_eq!(mode(f), 0o600, "{} (umask 000)", f.display());
    }
    assert!(agent.stop(Duration::from_secs(20)).success());
    assert_no_secret(&agent.log());
}

/// A reload checks what a start checks: a file made writable by others
/// since the start is refused on SIGHUP (the path, the mode and the fix in
/// the log, the running configuration kept, no secret); once fixed, the
/// next SIGHUP applies it.
#[test]
fn a_reload_of_a_config_others_can_write_is_refused_with_the_fix() {
    let (_sim, hosts) = deploy::standalones(1);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let cfg = write_config(dir.path(), &config(&spool, &hosts[0]), 0o600);
    let p = cfg.display().to_string();
    let mut agent = start_with_umask_000(dir, &cfg);
    // A spooled batch: the agent is up, signal handlers and all.
    first_segment(&mut agent, &spool);

    // An edit that would be valid, in a file everyone may now write.
    std::fs::write(
        &cfg,
        config(&spool, &hosts[0]).replace("interval_secs = 1", "interval_secs = 2"),
    )
    .unwrap();
    chmod(&cfg, 0o666);
    common::signal(agent.pid(), libc::SIGHUP);
    let rejected = wait_for("the rejection", Duration::from_secs(10), || {
        agent
            .log()
            .lines()
            .find(|l| l.contains("Reload rejected; keeping the running configuration."))
            .map(str::to_string)
    });
    assert!(
        rejected.contains(&format!(
            "The configuration file {p} is writable by its group and every user (mode 0666)"
        )) && rejected.contains(&format!("chmod 0640 {p}")),
        "names the file, its mode and the fix: {rejected}"
    );
    assert!(
        !agent.log().contains("Configuration reloaded."),
        "not applied:\n{}",
        agent.log()
    );
    assert!(agent.is_running(), "still running:\n{}", agent.log());

    // Fixed: the same file is applied on the next SIGHUP.
    chmod(&cfg, 0o600);
    common::signal(agent.pid(), libc::SIGHUP);
    wait_for("the reload", Duration::from_secs(10), || {
        agent
            .log()
            .contains("Configuration reloaded.")
            .then_some(())
    });
    assert!(agent.stop(Duration::from_secs(20)).success());
    assert_no_secret(&agent.log());
}

#[test]
fn a_spool_dir_owned_by_another_user_is_refused() {
    assert!(
        is_root(),
        "this test gives the spool directory to another user (chown) and must run as root (CI does); run it with sudo"
    );
    let uid = ensure_service_user();
    let dir = tempfile::tempdir().unwrap();
    // The service user must reach the configuration for the second half.
    chmod(dir.path(), 0o755);
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    chmod(&spool, 0o700);
    std::os::unix::fs::chown(&spool, Some(uid), None).unwrap();
    let cfg = write_config(dir.path(), &config(&spool, &closed()), 0o644);
    let d = spool.display().to_string();

    // Root (with --allow-root) in a directory the service user controls.
    let err = refused(&cfg);
    assert!(
        err.contains(&format!(
            "agent.spool_dir {d} belongs to user {SERVICE_USER} (uid {uid}), not to root (uid 0)"
        )) && err.contains(&format!("chown -R root {d}")),
        "names the owner and the fix: {err}"
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);

    // The owner itself is accepted: it opens (locks) the spool.
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let child = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={SERVICE_USER}"),
            "--clear-groups",
        ])
        .arg(env!("CARGO_BIN_EXE_mongomon"))
        .args(["run", "-c"])
        .arg(&cfg)
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("setpriv (util-linux)");
    let mut agent = common::Agent::adopt(child, dir);
    wait_for(
        "the owner's agent to lock the spool",
        Duration::from_secs(20),
        || {
            if !agent.is_running() {
                panic!("the owner's agent exited:\n{}", agent.log());
            }
            spool.join("main/LOCK").exists().then_some(())
        },
    );
    assert!(agent.stop(Duration::from_secs(20)).success());
}
