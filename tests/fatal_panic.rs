//! A panic anywhere ends the process (issue 11): one log line naming where,
//! a non-zero exit, no pid file left behind, never an agent that holds its
//! pid and does nothing. `MONGOMON_FAILPOINT` makes the agent panic at a
//! named place, since correct code cannot be made to panic from outside.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::receiver::Receiver;

struct Run {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Run {
    fn start(failpoint: &str, interval_secs: u64) -> (Run, mongomon::sim::SimHandle, Receiver) {
        let (sim, hosts) = common::deploy::standalones(1);
        let receiver = Receiver::accepting();
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::deploy::config(&[&hosts[0]], interval_secs, &receiver);
        config = config.replace(
            "[agent]\n",
            &format!(
                "[agent]\nlog_file = \"{}\"\n",
                dir.path().join("agent.log").display()
            ),
        );
        let path = dir.path().join("m.toml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongomon"));
        cmd.args(["run", "--config"])
            .arg(&path)
            .arg("--pidfile")
            .arg(dir.path().join("agent.pid"))
            .env_remove("MONGOMON_CONFIG")
            .env("MONGOMON_FAILPOINT", failpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        if common::is_root() {
            cmd.arg("--allow-root");
        }
        let child = cmd.spawn().expect("spawn mongomon");
        (Run { child, dir }, sim, receiver)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// The exit status within `limit`, or a failure that says the process
    /// was left running (and kills it).
    fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the agent was still running {limit:?} after the panic; log:\n{}\nstderr:\n{}",
                    self.log(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_one_panic_line(run: &Run, file: &str) {
    let log = run.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("panic at")).collect();
    assert_eq!(lines.len(), 1, "one panic line in the log:\n{log}");
    assert!(lines[0].contains(file), "names where: {}", lines[0]);
    assert!(lines[0].contains("CRIT"), "{}", lines[0]);
    let err = run.stderr();
    assert_eq!(
        err.lines().filter(|l| l.contains("panic at")).count(),
        1,
        "one line on stderr too: {err}"
    );
    assert!(
        !run.dir.path().join("agent.pid").exists(),
        "pid file removed"
    );
}

#[test]
fn a_panic_in_the_shutdown_handler_still_ends_the_process() {
    let (mut run, _sim, receiver) = Run::start("supervisor.shutdown", 1);
    common::wait_for("a first delivery", Duration::from_secs(30), || {
        (!receiver.requests().is_empty()).then_some(())
    });
    assert!(run.dir.path().join("agent.pid").exists());
    common::signal(run.child.id(), libc::SIGTERM);
    let status = run.exit_within(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(mongomon::fatal::EXIT_PANIC),
        "{status:?}"
    );
    assert_one_panic_line(&run, "src/actors/supervisor/actor.rs");
}

#[test]
fn a_panic_in_a_host_monitor_ends_the_process_without_a_signal() {
    let (mut run, _sim, _receiver) = Run::start("host_monitor.round", 1);
    let status = run.exit_within(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(mongomon::fatal::EXIT_PANIC),
        "{status:?}"
    );
    assert_one_panic_line(&run, "src/actors/host_monitor/actor.rs");
}

#[test]
fn the_overflowing_shutdown_timeout_is_refused_at_start() {
    let (sim, hosts) = common::deploy::standalones(1);
    let receiver = Receiver::accepting();
    let dir = tempfile::tempdir().unwrap();
    let config = common::deploy::config(&[&hosts[0]], 1, &receiver).replace(
        "[agent]\n",
        "[agent]\nshutdown_timeout_secs = 9223372036854775807\n",
    );
    let path = dir.path().join("m.toml");
    std::fs::write(&path, config).unwrap();
    let o = common::mongomon(&["run", "--allow-root", "-c", path.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "agent.shutdown_timeout_secs must be between 1 and 3600 (found 9223372036854775807)"
        ),
        "{err}"
    );
    drop(sim);
}
