//! The command line as an operator meets it: help, config printing with
//! secrets redacted, `check`, `sim` and `demo`, and one-line errors for bad
//! input.

mod common;

use std::time::Duration;

use common::{mongomon, Secantus, Victoria};

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("m.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn help_shows_examples_and_version_prints() {
    let o = mongomon(&["--help"], &[]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Examples:") && out.contains("mongomon check"),
        "{out}"
    );
    let o = mongomon(&["--version"], &[]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("mongomon "));
}

#[test]
fn config_prints_effective_toml_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "[[targets]]\nuri = \"mongodb://bob:hunter2@127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\napi_key = \"sekrit\"\n",
    );
    let o = mongomon(
        &["config", "-c", &path, "--interval-secs", "7"],
        &[("MONGOMON_UPLOAD__FORMAT", "json")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("hunter2") && !out.contains("sekrit"), "{out}");
    assert!(out.contains("<redacted>"));
    assert!(
        out.contains("interval_secs = 7"),
        "CLI layer applied: {out}"
    );
    assert!(
        out.contains("format = \"json\""),
        "env layer applied: {out}"
    );
    let parsed: toml::Value = toml::from_str(&out).expect("output is TOML");
    assert!(parsed.get("agent").is_some());
}

#[test]
fn bad_config_gives_one_line_naming_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good_rest = "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("[agent]\ninterval_secs = -5\n{good_rest}"),
            "agent.interval_secs must be between 1 and 86400 (found -5)",
        ),
        (
            format!("[agent]\nbogus = 1\n{good_rest}"),
            "agent.bogus is not a known key",
        ),
        (
            "[[targets]]\nuri = \"postgres://x\"\n[upload]\nurl = \"http://127.0.0.1:2/\"\n".into(),
            "targets[0].uri",
        ),
        (
            "[[targets]]\nuri = \"mongodb://h\"\n[upload]\nurl = \"ftp://x/\"\n".into(),
            "upload.url",
        ),
    ];
    for (text, want) in cases {
        let path = write_config(&dir, &text);
        let o = mongomon(&["run", "-c", &path], &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "want {want:?} in {err:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    }
    let o = mongomon(&["run", "-c", "/nonexistent/mongomon.toml"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/mongomon.toml not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_reports_each_endpoint_and_fails_on_any_failure() {
    let db = Secantus::standalone();
    let vm = Victoria::start();
    let dead = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let ok_only = write_config(
        &dir,
        &format!("[agent]\ncommand_timeout_ms = 1500\n[[targets]]\nuri = \"{}\"\n[upload]\nurl = \"{}\"\n", db.uri(), vm.write_url()),
    );
    let o = mongomon(&["check", "-c", &ok_only], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK") && l.contains(&db.addr()) && l.contains("standalone")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK") && l.contains("upload")),
        "{out}"
    );

    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\ncommand_timeout_ms = 1500\n[[targets]]\nuri = \"{}\"\n[[targets]]\nuri = \"mongodb://127.0.0.1:{dead}\"\n[upload]\nurl = \"http://127.0.0.1:{dead}/write\"\n",
            db.uri()
        ),
    )
    .unwrap();
    let o = mongomon(&["check", "-c", cfg.to_str().unwrap()], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("FAIL")
            && l.contains(&format!("127.0.0.1:{dead}"))
            && l.contains("mongodb")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("upload")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK") && l.contains(&db.addr())),
        "{out}"
    );
}

#[test]
fn sim_serves_a_topology_file_and_rejects_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("t.toml");
    std::fs::write(&topo, "[[replica_set]]\nname = \"rs0\"\nmembers = [{ host = \"127.0.0.1:0\" }, { host = \"127.0.0.1:0\" }]\n").unwrap();
    let o = mongomon(
        &[
            "sim",
            "--topology",
            topo.to_str().unwrap(),
            "--duration-secs",
            "1",
        ],
        &[],
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("serving 2 simulated hosts"), "{out}");
    assert!(out.contains("primary") && out.contains("rs0"), "{out}");

    std::fs::write(&topo, "[[standalone]]\nhost = \"10.1.2.3:27017\"\n").unwrap();
    let o = mongomon(
        &[
            "sim",
            "--topology",
            topo.to_str().unwrap(),
            "--duration-secs",
            "1",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("127.0.0.0/8"), "{}", stderr(&o));
}

#[test]
fn demo_runs_without_any_configuration() {
    let o = common::mongomon_timeout(&["demo", "--duration-secs", "8"], Duration::from_secs(60));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let last = out.rsplit("mongomon demo:").next().unwrap_or("");
    assert!(last.contains("mongos") && last.contains("rs-app"), "{last}");
    assert!(
        !last
            .lines()
            .any(|l| l.contains("127.77.") && l.split_whitespace().nth(4) == Some("0")),
        "every host up: {last}"
    );
}

#[test]
fn config_also_says_when_run_would_refuse_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "[[targets]]\nname = \"a\"\nuri = \"mongodb://127.0.0.1:1\"\n[[targets]]\nname = \"a\"\nuri = \"mongodb://127.0.0.1:2\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n",
    );
    let o = mongomon(&["config", "-c", &path], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("targets[1].name"), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[[targets]]"),
        "still printed"
    );
}

#[test]
fn check_never_prints_the_receivers_userinfo() {
    let dir = tempfile::tempdir().unwrap();
    let dead = common::free_port();
    let path = write_config(
        &dir,
        &format!(
            "[agent]\ncommand_timeout_ms = 500\nconnect_timeout_ms = 500\n[[targets]]\nuri = \"mongodb://127.0.0.1:{dead}\"\ndiscover = false\n\
             [upload]\nurl = \"http://basicuser:CHECK-SECRET-1e7@127.0.0.1:{dead}/write\"\nproxy = \"none\"\n"
        ),
    );
    for args in [
        vec!["check", "-c", &path],
        vec!["check", "--json", "-c", &path],
    ] {
        let o = mongomon(&args, &[]);
        let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(out.contains(&format!("127.0.0.1:{dead}")), "{out}");
        assert!(out.contains("refused"), "{out}");
        assert!(!out.contains("CHECK-SECRET-1e7"), "{out}");
    }
}
