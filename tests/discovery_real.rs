//! Discovery and per-role collection against a real server (SecantusDB, a
//! single-node replica set), shipped to a real VictoriaMetrics; and the
//! agent's handling of a seed that contradicts its configuration.

mod common;

use std::time::Duration;

use common::{insert_docs, wait_for, Agent, Secantus, Victoria};

fn host_series(vm: &Victoria, metric: &str, host: &str) -> Option<common::Series> {
    vm.export(metric)
        .into_iter()
        .find(|s| s.label("host") == Some(host))
}

#[test]
fn replica_set_member_metrics_and_oplog_window_from_a_real_server() {
    let db = Secantus::replset();
    insert_docs(&db.uri(), 3);
    let vm = Victoria::start();
    let mut agent = Agent::start(&format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\n\
         [[targets]]\nname = \"real\"\nuri = \"{}\"\n\
         [upload]\nurl = \"{}\"\nmax_batch_age_ms = 200\n",
        db.uri(),
        vm.write_url()
    ));
    // Discovery finds the one member (under the name it calls itself) and
    // labels it with its set and role.
    let up = wait_for("mongodb_up", Duration::from_secs(60), || {
        vm.export("mongodb_up")
            .into_iter()
            .find(|s| s.label("cluster") == Some("real"))
    });
    let host = up.label("host").unwrap().to_string();
    assert!(host.ends_with(&format!(":{}", db.port)), "{host}");
    assert_eq!(up.label("role"), Some("primary"));
    let set = up.label("replset").expect("replset label").to_string();
    assert!(up.label("version").is_some(), "version label: {up:?}");

    // replSetGetStatus: the member is healthy PRIMARY with no lag.
    let health = wait_for("member health", Duration::from_secs(30), || {
        host_series(&vm, "mongodb_replset_member_health", &host)
    });
    assert_eq!(health.last().unwrap().1, 1.0);
    assert_eq!(health.label("member_state"), Some("PRIMARY"));
    assert_eq!(health.label("replset"), Some(set.as_str()));
    let lag = wait_for("lag", Duration::from_secs(30), || {
        host_series(&vm, "mongodb_replset_member_lag_seconds", &host)
    });
    assert_eq!(lag.last().unwrap().1, 0.0);

    // Oplog window from the first and last entries of local.oplog.rs.
    let first = wait_for("oplog first", Duration::from_secs(30), || {
        host_series(&vm, "mongodb_oplog_first_seconds", &host)
    });
    let last = host_series(&vm, "mongodb_oplog_last_seconds", &host).expect("oplog last");
    let window = host_series(&vm, "mongodb_oplog_window_hours", &host).expect("oplog window");
    let (f, l, w) = (
        first.last().unwrap().1,
        last.last().unwrap().1,
        window.last().unwrap().1,
    );
    assert!(l >= f && f > 1.0e9, "first {f} last {l}");
    assert!(
        (w - (l - f) / 3600.0).abs() < 1e-6,
        "window {w} = (last - first) / 3600"
    );

    // dbStats ran at start, per database, with the documents we inserted.
    let objects = wait_for("dbStats of test", Duration::from_secs(30), || {
        vm.export("mongodb_dbstats_objects")
            .into_iter()
            .find(|s| s.label("db") == Some("test"))
    });
    assert_eq!(objects.last().unwrap().1, 3.0);
    let round = wait_for("dbstats round", Duration::from_secs(30), || {
        host_series(&vm, "mongodb_dbstats_round_skipped", &host)
    });
    assert_eq!(round.last().unwrap().1, 0.0);
    assert!(agent.stop(Duration::from_secs(20)).success());
}

#[test]
fn a_seed_that_claims_another_set_is_logged_once_and_still_monitored() {
    let db = Secantus::replset();
    let other = Secantus::standalone();
    let vm = Victoria::start();
    let mut agent = Agent::start(&format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\n\
         [discovery]\ninterval_secs = 1\n\
         [[targets]]\nname = \"wrongset\"\nuri = \"mongodb://{}/?replicaSet=not-the-real-name\"\n\
         [[targets]]\nname = \"fine\"\nuri = \"{}\"\n\
         [upload]\nurl = \"{}\"\nmax_batch_age_ms = 200\n",
        db.addr(),
        other.uri(),
        vm.write_url()
    ));
    wait_for("both targets monitored", Duration::from_secs(60), || {
        let up = vm.export("mongodb_up");
        (up.iter()
            .any(|s| s.label("cluster") == Some("wrongset") && s.values.contains(&1.0))
            && up
                .iter()
                .any(|s| s.label("cluster") == Some("fine") && s.values.contains(&1.0)))
        .then_some(())
    });
    // Several discovery rounds later, the problem was still logged only once.
    std::thread::sleep(Duration::from_secs(3));
    let log = agent.log();
    let n = log
        .matches("but its seed list names \\\"not-the-real-name\\\"")
        .count()
        + log
            .matches("but its seed list names \"not-the-real-name\"")
            .count();
    assert_eq!(n, 1, "logged once:\n{log}");
    assert!(agent.stop(Duration::from_secs(20)).success());
}
