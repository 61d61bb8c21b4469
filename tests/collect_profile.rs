//! `[collect]` (issue 12): the standard profile, `include` and `exclude`
//! decide which reply fields reach a real receiver (VictoriaMetrics), status
//! and derived series always do, and a reload switches the profile.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Agent, Victoria};

fn config(host: &str, vm: &Victoria, collect: &str) -> String {
    format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\n\
         [[targets]]\nuri = \"mongodb://{host}/\"\ndiscover = false\n\
         [upload]\nurl = \"{}\"\nmax_batch_age_ms = 200\n\
         {collect}",
        vm.write_url()
    )
}

/// The distinct serverStatus series names VictoriaMetrics holds.
fn server_status_names(vm: &Victoria) -> BTreeSet<String> {
    vm.export("{__name__=~\"mongodb_serverstatus_.+\"}")
        .into_iter()
        .filter_map(|s| s.label("__name__").map(str::to_string))
        .collect()
}

#[test]
fn the_profile_include_and_exclude_choose_the_fields_sent() {
    let (_sim, hosts) = common::deploy::standalones(1);
    let vm = Victoria::start();
    let collect = "[collect]\nprofile = \"standard\"\n\
                   include = [\"mongodb_serverstatus_logicalSessionRecordCache_*\"]\n\
                   exclude = [\"mongodb_serverstatus_opcounters_command\"]\n";
    let mut agent = Agent::start(&config(&hosts[0], &vm, collect));
    let names = common::wait_for("serverStatus series", Duration::from_secs(30), || {
        let n = server_status_names(&vm);
        n.contains("mongodb_serverstatus_connections_current")
            .then_some(n)
    });
    // Let a few more rounds arrive: the set must not grow past the profile.
    std::thread::sleep(Duration::from_secs(3));
    let names = server_status_names(&vm)
        .union(&names)
        .cloned()
        .collect::<BTreeSet<_>>();
    assert!(
        (150..=350).contains(&names.len()),
        "standard profile: {} series",
        names.len()
    );
    assert!(names.contains("mongodb_serverstatus_opcounters_insert"));
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("mongodb_serverstatus_logicalSessionRecordCache_")),
        "include adds to the profile: {names:?}"
    );
    assert!(
        !names.contains("mongodb_serverstatus_opcounters_command"),
        "exclude wins"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("_wiredTiger_reconciliation_")),
        "fields outside the profile are not sent"
    );
    // Status and derived series are never selected away.
    assert!(!vm.export("mongodb_up").is_empty(), "mongodb_up");
    assert!(
        !vm.export("mongodb_schema_unmapped_fields").is_empty(),
        "derived series"
    );

    // A reload to the full profile sends every numeric field.
    std::fs::write(agent.config_path(), config(&hosts[0], &vm, "")).unwrap();
    common::signal(agent.pid(), libc::SIGHUP);
    let all = common::wait_for("the full profile", Duration::from_secs(30), || {
        let n = server_status_names(&vm);
        (n.len() > 1_000).then_some(n)
    });
    assert!(all.contains("mongodb_serverstatus_opcounters_command"));
    agent.stop(Duration::from_secs(20));
}

#[test]
fn a_pattern_that_can_never_match_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(
        &path,
        "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n\
         [collect]\nexclude = [\"serverStatus.wiredTiger.*\"]\n",
    )
    .unwrap();
    let o = common::mongomon(&["config", "-c", path.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("collect.exclude[0]") && err.contains("can never match"),
        "{err}"
    );
    std::fs::write(
        &path,
        "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n\
         [collect]\nprofile = \"minimal\"\n",
    )
    .unwrap();
    let o = common::mongomon(&["config", "-c", path.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("collect.profile") && err.contains("\"standard\""),
        "{err}"
    );
}
