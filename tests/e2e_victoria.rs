//! End to end: the real agent binary monitors real SecantusDB servers and
//! ships line protocol to a real VictoriaMetrics; what arrives is read back
//! with `/api/v1/export` and compared with what the servers report.

mod common;

use std::time::{Duration, Instant};

use common::{insert_docs, server_status, wait_for, Agent, Secantus, Series, Victoria};

fn config(vm: &Victoria, targets: &[(&str, String)], interval: u64) -> String {
    let mut s = format!(
        "[agent]\ninterval_secs = {interval}\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\nshutdown_timeout_secs = 10\n\
         [upload]\nurl = \"{}\"\nmax_batch_age_ms = 200\nretry_initial_ms = 100\nretry_max_ms = 1000\n",
        vm.write_url()
    );
    for (name, uri) in targets {
        s.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\nuri = \"{uri}\"\n"
        ));
    }
    s
}

fn series_for<'a>(all: &'a [Series], host: &str) -> Option<&'a Series> {
    all.iter().find(|s| s.label("host") == Some(host))
}

fn number(doc: &bson::Document, path: &[&str]) -> f64 {
    let mut d = doc;
    for p in &path[..path.len() - 1] {
        d = d.get_document(p).expect("path");
    }
    match d.get(path[path.len() - 1]).expect("leaf") {
        bson::Bson::Int32(i) => *i as f64,
        bson::Bson::Int64(i) => *i as f64,
        bson::Bson::Double(f) => *f,
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn server_status_values_arrive_in_victoriametrics() {
    let rs = Secantus::replset();
    let standalone = Secantus::standalone();
    let vm = Victoria::start();
    insert_docs(&rs.uri(), 7);
    let mut agent = Agent::start(&config(
        &vm,
        &[("rs", rs.uri()), ("single", standalone.uri())],
        1,
    ));

    // Both hosts up, with their roles.
    let up = wait_for("mongodb_up for both hosts", Duration::from_secs(60), || {
        let all = vm.export("mongodb_up");
        (series_for(&all, &rs.addr()).is_some() && series_for(&all, &standalone.addr()).is_some())
            .then_some(all)
    });
    let rs_up = series_for(&up, &rs.addr()).unwrap();
    assert_eq!(rs_up.label("role"), Some("primary"));
    assert_eq!(rs_up.label("cluster"), Some("rs"));
    assert!(
        rs_up.label("replset").is_some(),
        "replica-set member carries its set: {rs_up:?}"
    );
    let single_up = series_for(&up, &standalone.addr()).unwrap();
    assert_eq!(single_up.label("role"), Some("standalone"));
    assert_eq!(single_up.label("replset"), None);
    assert!(rs_up.values.iter().all(|v| *v == 1.0));

    // Values match what the server itself reports (read with the driver).
    // Counters that only move with traffic must match exactly once the
    // agent has sampled after our writes.
    let want_inserts = number(&server_status(&rs.uri()), &["opcounters", "insert"]);
    assert!(want_inserts >= 7.0);
    let inserts = wait_for("opcounters_insert", Duration::from_secs(30), || {
        let all = vm.export("mongodb_serverstatus_opcounters_insert");
        series_for(&all, &rs.addr())
            .and_then(|s| s.last())
            .filter(|(_, v)| *v >= want_inserts)
            .map(|(_, v)| v)
    });
    assert_eq!(
        inserts, want_inserts,
        "inserts counted by the agent equal the server's own count"
    );

    let status = server_status(&rs.uri());
    let want_uptime = number(&status, &["uptime"]);
    let all = vm.export("mongodb_serverstatus_uptime");
    let (_, uptime) = series_for(&all, &rs.addr())
        .and_then(Series::last)
        .expect("uptime series");
    assert!(
        (uptime - want_uptime).abs() <= 5.0,
        "uptime {uptime} vs server {want_uptime}"
    );

    let want_conns = number(&status, &["connections", "current"]);
    let all = vm.export("mongodb_serverstatus_connections_current");
    let (_, conns) = series_for(&all, &rs.addr())
        .and_then(Series::last)
        .expect("connections series");
    assert!(
        conns >= 1.0 && (conns - want_conns).abs() <= 3.0,
        "connections {conns} vs server {want_conns}"
    );

    // The replica-set view arrives too, with the member's state.
    let members = vm.export("mongodb_replset_member_health");
    let m = series_for(&members, &rs.addr()).expect("replset member series");
    assert_eq!(m.label("member_state"), Some("PRIMARY"));
    assert_eq!(m.last().map(|x| x.1), Some(1.0));

    // Self-metrics travel in the same stream.
    wait_for(
        "mongomon_samples_taken > 0",
        Duration::from_secs(20),
        || {
            vm.export("mongomon_samples_taken")
                .iter()
                .any(|s| s.last().is_some_and(|(_, v)| v > 0.0))
                .then_some(())
        },
    );

    assert!(agent.stop(Duration::from_secs(20)).success());
}

#[test]
fn killing_one_server_reports_it_down_while_others_continue() {
    let keep = Secantus::standalone();
    let mut doomed = Secantus::standalone();
    let vm = Victoria::start();
    let mut agent = Agent::start(&config(
        &vm,
        &[("keep", keep.uri()), ("doomed", doomed.uri())],
        1,
    ));
    wait_for("both hosts up", Duration::from_secs(60), || {
        let all = vm.export("mongodb_up");
        (series_for(&all, &keep.addr()).is_some() && series_for(&all, &doomed.addr()).is_some())
            .then_some(())
    });
    doomed.kill();
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // The killed host gets up = 0 with a reason; it is still monitored.
    let down = wait_for(
        "up = 0 for the killed host",
        Duration::from_secs(60),
        || {
            vm.export("mongodb_up")
                .into_iter()
                .filter(|s| s.label("host") == Some(doomed.addr().as_str()))
                .find(|s| s.values.contains(&0.0))
        },
    );
    assert!(
        down.label("error_kind").is_some(),
        "down sample names a reason: {down:?}"
    );

    // Several down rounds (a dead host's round lasts up to the command
    // timeout, so they come every few seconds), and the other host kept
    // arriving, all up, after the kill.
    let down_after_kill = |all: &[common::Series]| -> usize {
        all.iter()
            .filter(|s| s.label("host") == Some(doomed.addr().as_str()))
            .flat_map(|s| s.points())
            .filter(|(t, v)| *t > killed_at && *v == 0.0)
            .count()
    };
    let kept_after_kill = |all: &[common::Series]| -> Vec<(i64, f64)> {
        all.iter()
            .filter(|s| s.label("host") == Some(keep.addr().as_str()))
            .flat_map(|s| s.points())
            .filter(|(t, _)| *t > killed_at)
            .collect()
    };
    // Both conditions in one bounded wait: how fast rounds come is the
    // bench's business, that both keep coming is this test's.
    let kept = wait_for(
        "two down rounds of the killed host and four rounds of the other",
        Duration::from_secs(30),
        || {
            let all = vm.export("mongodb_up");
            let kept = kept_after_kill(&all);
            (down_after_kill(&all) >= 2 && kept.len() >= 4).then_some(kept)
        },
    );
    assert!(kept.iter().all(|(_, v)| *v == 1.0));
    assert!(agent.is_running());
    assert!(agent.log().contains("Host is down."));
    assert!(agent.stop(Duration::from_secs(20)).success());
}

#[test]
fn receiver_outage_of_30s_loses_nothing() {
    let db = Secantus::standalone();
    let mut vm = Victoria::start();
    let mut agent = Agent::start(&config(&vm, &[("db", db.uri())], 1));
    wait_for("first samples", Duration::from_secs(60), || {
        series_for(&vm.export("mongodb_up"), &db.addr()).map(|_| ())
    });
    let outage_start = Instant::now();
    vm.pause();
    std::thread::sleep(Duration::from_secs(30));
    vm.resume();
    let outage = outage_start.elapsed();
    // Let the backlog drain, then stop the agent so its last batch goes too.
    std::thread::sleep(Duration::from_secs(5));
    assert!(agent.stop(Duration::from_secs(30)).success());

    let all = vm.export("mongodb_up");
    let points: Vec<(i64, f64)> = all
        .iter()
        .filter(|s| s.label("host") == Some(db.addr().as_str()))
        .flat_map(|s| s.points())
        .collect();
    let mut times: Vec<i64> = points.iter().map(|p| p.0).collect();
    times.sort();
    times.dedup();
    // One round per second, from the first to the last, with no hole where
    // the receiver was away.
    let span = times.last().unwrap() - times.first().unwrap();
    assert!(
        span as u128 >= outage.as_millis(),
        "span {span} ms covers the outage {outage:?}"
    );
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 1_600)
        .collect();
    assert!(
        gaps.is_empty(),
        "no missing rounds, found gaps (ms) {gaps:?} in {} points",
        times.len()
    );
    assert!(
        times.len() as u128 >= outage.as_millis() / 1000,
        "{} points",
        times.len()
    );
    let log = agent.log();
    assert!(
        log.contains("Upload failed; retrying with backoff."),
        "{log}"
    );
    assert!(log.contains("Receiver accepts batches again."), "{log}");
}
