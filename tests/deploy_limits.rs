//! The open-file limit (issue 12): the agent raises its soft limit to the
//! hard one at start, and says when even the hard limit is too low for the
//! hosts it was given, naming the fix, instead of failing host by host with
//! "too many open files".

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::receiver::Receiver;

fn soft_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn the_soft_limit_is_raised_and_a_too_low_hard_limit_is_named() {
    // 70 hosts need about 70 × 1 + 64 descriptors: more than a hard limit
    // of 120, fewer than the default.
    let (_sim, hosts) = common::deploy::standalones(70);
    let receiver = Receiver::accepting();
    let dir = tempfile::tempdir().unwrap();
    let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let config = common::deploy::config(&refs, 2, &receiver);
    let path = dir.path().join("m.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("agent.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongomon"));
    cmd.args(["run", "--config"])
        .arg(&path)
        .arg("--log-file")
        .arg(&log)
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if common::is_root() {
        cmd.arg("--allow-root");
    }
    // SAFETY: only setrlimit between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 50,
                rlim_max: 120,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn mongomon");
    let mut agent = common::Agent::adopt(child, dir);
    let text = common::wait_for("the limit warning", Duration::from_secs(30), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        t.contains("open-file limit is too low").then_some(t)
    });
    assert_eq!(
        soft_limit(agent.pid()),
        Some(120),
        "soft raised to the hard limit"
    );
    assert!(text.contains("Raised the open-file limit"), "{text}");
    let warning = text
        .lines()
        .find(|l| l.contains("open-file limit is too low"))
        .unwrap();
    assert!(
        warning.contains("hosts: 70") && warning.contains("limit: 120"),
        "{warning}"
    );
    assert!(warning.contains("LimitNOFILE"), "names the fix: {warning}");
    assert_eq!(
        text.matches("open-file limit is too low").count(),
        1,
        "warned once: {text}"
    );
    agent.stop(Duration::from_secs(20));
}
