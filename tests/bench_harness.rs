//! The many-host harness at a small size, so it cannot rot: `mongomon
//! bench` with 30 simulated hosts at a 2 s interval for 10 s (after a 6 s
//! warm-up) must see every host, produce a JSON report with every figure
//! of the issue filled in, and set a peer's figures beside the agent's.
//! The numbers themselves are benchmarks (BENCHMARKS.md), not asserted.

mod common;

use std::time::Duration;

#[test]
fn bench_reports_every_figure_for_a_small_fleet_and_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    // A peer script that does what benches/peers/*.sh do at the end: write
    // its summary in peerstat.py's shape. (The real peers are built from
    // the Go proxy by benches/peers/install.sh and run on demand.)
    let peer = dir.path().join("peer.sh");
    std::fs::write(
        &peer,
        "#!/bin/sh\nn=$(wc -l < \"$1\")\n[ \"$2\" = 2 ] || exit 3\n\
         [ \"$MONGOMON_BENCH_WARMUP_SECS\" = 6 ] || exit 4\n\
         printf '{\"n_hosts\": %s, \"hosts_reporting\": 29, \"cpu_seconds_total\": 8.0, \"host_gathers_ok\": 400, \"rss_mib_total\": 300.0, \
         \"window\": {\"cpu_seconds\": 4.0, \"host_gathers_ok\": 150, \"rss_kib_per_host_max\": 12000.0}}\\n' \"$n\" > \"$4/summary.json\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&peer, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A peer that answered nothing in time (Percona's /scrapeall past its
    // breaking point): no ratio, said so.
    let idle = dir.path().join("idle.sh");
    std::fs::write(
        &idle,
        "#!/bin/sh\nprintf '{\"n_hosts\": 30, \"hosts_reporting\": 0, \"cpu_seconds_total\": 5.0, \"host_gathers_ok\": 0, \"rss_mib_total\": 900.0}\\n' > \"$4/summary.json\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&idle, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = common::mongomon_timeout(
        &[
            "bench",
            "--hosts",
            "30",
            "--interval-secs",
            "2",
            "--duration-secs",
            "10",
            "--warmup-secs",
            "6",
            "--json",
            json.to_str().unwrap(),
            "--work-dir",
            dir.path().join("work").to_str().unwrap(),
            "--peer",
            &format!("fake={}", peer.display()),
            "--peer",
            &format!("idle={}", idle.display()),
        ],
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for row in [
        "agent CPU s per 1,000 host-samples",
        "lateness p50 / p99 / max",
        "freshness p50 / p99",
        "peer fake: hosts reporting                   29 of 30",
        "mongomon / fake: CPU/host-sample",
        "mongomon / idle: CPU/host-sample, RSS/host   n/a (collected nothing)",
    ] {
        assert!(out.contains(row), "table row {row}: {out}");
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["hosts"], 30);
    assert_eq!(
        r["hosts_seen"], 30,
        "every simulated host reached the receiver: {r}"
    );
    let samples = r["host_samples"].as_u64().unwrap();
    let expected = r["expected_host_samples"].as_u64().unwrap();
    assert!(samples > 0 && samples <= expected, "{r}");
    assert_eq!(samples + r["missing"].as_u64().unwrap(), expected, "{r}");
    assert!(r["agent"]["cpu_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["agent"]["rss_kib"].as_u64().unwrap() > 1000, "{r}");
    assert!(r["agent"]["threads"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        r["agent"]["sockets_per_host"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert!(r["freshness"]["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(
        r["server_commands_per_host_per_interval"].as_f64().unwrap() >= 2.0,
        "hello and serverStatus at least: {r}"
    );
    assert!(
        r["server_bytes_per_host_per_interval"].as_f64().unwrap() > 1000.0,
        "{r}"
    );
    assert!(
        r["connections_opened_per_host"].as_f64().unwrap() >= 1.0,
        "{r}"
    );
    assert!(
        r["scram_handshakes_per_host"].as_f64().unwrap() >= 1.0,
        "the fleet has auth on: {r}"
    );
    let p = &r["peers"][0];
    assert_eq!(p["name"], "fake");
    let my_cpu = r["agent"]["cpu_seconds"].as_f64().unwrap() / samples as f64;
    // The peer's figures of the agent's window, not of its whole run.
    let ratio = p["cpu_per_host_sample_ratio"].as_f64().unwrap();
    assert!((ratio - my_cpu / (4.0 / 150.0)).abs() < 1e-9, "{p}");
    let rss_ratio = p["rss_per_host_ratio"].as_f64().unwrap();
    let mine = r["agent"]["rss_kib_per_host"].as_f64().unwrap();
    assert!((rss_ratio - mine / 12000.0).abs() < 1e-9, "{p}");
    assert_eq!(r["peers"][1]["name"], "idle");
    assert!(r["peers"][1]["cpu_per_host_sample_ratio"].is_null(), "{r}");
}

/// The soak at a small size: every fault of its rotation injected (none
/// refused by the simulator), one row per minute with the agent's RSS,
/// descriptors and threads, and every grid point of the healthy hosts
/// delivered. (The hour-long run and its drift are in BENCHMARKS.md.)
#[test]
fn soak_injects_its_faults_and_counts_the_healthy_hosts_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("soak.json");
    let o = common::mongomon_timeout(
        &[
            "bench",
            "--hosts",
            "30",
            "--interval-secs",
            "1",
            // Each fault is held for half its period: 1 s, a whole
            // interval, so a slow or hung reply surely meets a sample
            // (held 0.5 s, every fault could fall between two samples).
            "--soak-secs",
            "35",
            "--faults-every-secs",
            "2",
            "--warmup-secs",
            "4",
            "--json",
            json.to_str().unwrap(),
            "--work-dir",
            dir.path().join("work").to_str().unwrap(),
        ],
        Duration::from_secs(240),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let faults = r["faults"].as_array().unwrap();
    let names: std::collections::BTreeSet<&str> =
        faults.iter().filter_map(|f| f["fault"].as_str()).collect();
    assert_eq!(names.len(), 16, "the whole rotation ran: {names:?}");
    let refused: Vec<&serde_json::Value> =
        faults.iter().filter(|f| !f["error"].is_null()).collect();
    assert!(refused.is_empty(), "the simulator refused: {refused:?}");
    let minutes = r["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 1, "one row per started minute: {out}");
    let m = &minutes[0];
    assert!(
        m["rss_kib"].as_u64().unwrap() > 0 && m["fds"].as_u64().unwrap() > 0,
        "{m}"
    );
    assert!(m["threads"].as_u64().unwrap() > 0, "{m}");
    assert!(m["healthy_due"].as_u64().unwrap() > 10 * 20, "{m}");
    assert_eq!(
        r["healthy_completeness"], 1.0,
        "every grid point of the healthy hosts arrived, receiver outage included: {out}"
    );
    assert!(
        r["faulted_completeness"].as_f64().unwrap() < 1.0,
        "the faults cost the hosts that took them something: {out}"
    );
    assert!(
        out.contains("completeness: healthy hosts 100.0000 %"),
        "{out}"
    );
}
