//! The alert rules of `alerts/mongomon.rules.yml`: Prometheus' own checker
//! and unit-test runner (`promtool`, Debian's `prometheus` package) accept
//! them and their tests in `alerts/tests/`, vmalert (Debian's
//! `victoria-metrics` package) loads them, and every alert has annotations
//! for the operator and unit tests that see it both fire and stay quiet.
//!
//! Whether the expressions name series mongomon really ships is
//! `tests/dashboards.rs`' business: it evaluates them against receivers the
//! agent filled.
//!
//! A missing tool is a failure with the command that installs it, never a
//! skipped test: `scripts/test.sh` installs everything.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rules_file() -> PathBuf {
    root().join("alerts/mongomon.rules.yml")
}

/// The unit-test files, sorted.
fn test_files() -> Vec<PathBuf> {
    let files = common::project_files("alerts/tests", "yml");
    assert!(!files.is_empty(), "no alerts/tests/*.yml");
    files
}

fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/test-deps.sh (apt-get install {package})")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// `(alert name, its lines)` for every `- alert:` entry of the rules file.
fn alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(rules_file()).expect("read the rules");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            out.push((name.trim().to_string(), String::new()));
        } else if t.starts_with("- name:") || t.starts_with("- record:") {
            // A new group or a recording rule ends the alert.
            out.push((String::new(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out.retain(|(n, _)| !n.is_empty());
    out
}

#[test]
fn promtool_checks_the_rules_clean() {
    let out = run(Command::new(tool("promtool", "prometheus"))
        .args(["check", "rules"])
        .arg(rules_file()));
    let n = alerts().len();
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "promtool found another number of rules than the {n} alerts:\n{out}"
    );
    assert!(!out.contains("WARNING"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let files = test_files();
    let out = run(Command::new(tool("promtool", "prometheus"))
        .args(["test", "rules"])
        .args(&files)
        .current_dir(root()));
    assert_eq!(
        out.matches("SUCCESS").count(),
        files.len(),
        "one SUCCESS per test file:\n{out}"
    );
}

#[test]
fn vmalert_loads_the_rules() {
    // -dryRun parses the groups, the expressions (MetricsQL) and the
    // annotation templates, and exits.
    run(Command::new(tool("vmalert", "victoria-metrics"))
        .arg("-dryRun")
        .arg(format!("-rule={}", rules_file().display())));
}

#[test]
fn every_alert_says_what_to_look_at() {
    let alerts = alerts();
    assert!(alerts.len() >= 10, "{} alerts", alerts.len());
    let mut names: Vec<&str> = alerts.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), alerts.len(), "alert names are unique");
    for (name, body) in &alerts {
        for key in ["expr:", "severity:", "summary:", "description:"] {
            assert!(body.contains(key), "{name} has no {key}\n{body}");
        }
        assert!(
            body.contains("severity: critical") || body.contains("severity: warning"),
            "{name}: severity is critical or warning"
        );
    }
}

/// Every alert has a unit test in which it fires (`exp_alerts` with an
/// entry) and one in which it stays quiet (`exp_alerts: []`).
#[test]
fn every_alert_is_tested_firing_and_quiet() {
    let mut fires: Vec<String> = Vec::new();
    let mut quiet: Vec<String> = Vec::new();
    for file in test_files() {
        let text = std::fs::read_to_string(&file).expect("read a test file");
        let mut current: Option<String> = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(name) = t.strip_prefix("alertname:") {
                current = Some(name.trim().to_string());
            } else if let Some(rest) = t.strip_prefix("exp_alerts:") {
                let name = current
                    .take()
                    .unwrap_or_else(|| panic!("{}: exp_alerts without alertname", file.display()));
                if rest.trim() == "[]" {
                    quiet.push(name);
                } else {
                    fires.push(name);
                }
            }
        }
    }
    let alerts = alerts();
    for (name, _) in &alerts {
        assert!(fires.contains(name), "no unit test where {name} fires");
        assert!(
            quiet.contains(name),
            "no unit test where {name} stays quiet"
        );
    }
    for name in fires.iter().chain(&quiet) {
        assert!(
            alerts.iter().any(|(n, _)| n == name),
            "a unit test names {name}, which is not an alert of the rules file"
        );
    }
}
