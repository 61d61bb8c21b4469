//! Fidelity with a second, independent driver: pymongo (from the test venv)
//! connects to the simulator in normal replica-set mode from one secondary
//! seed, finds the primary through its own server discovery, and parses
//! `serverStatus`, `replSetGetStatus` and, on a mongos, `listShards`.

mod common;
mod sim_common;

use std::process::Command;

#[test]
fn pymongo_discovers_the_primary_and_parses_monitoring_replies() {
    let rs = sim_common::start(sim_common::RS3);
    let cluster = sim_common::start(sim_common::SHARDED);
    let members = rs.set_members("rs0");
    let primary = rs.primary("rs0").expect("rs0 has a primary");
    let seed = members
        .iter()
        .find(|a| **a != primary)
        .expect("a secondary");
    let mongos = cluster.mongos("c1")[0];

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/pymongo_sim.py");
    let out = Command::new(common::venv_python())
        .args([script, &seed.to_string(), "rs0", &mongos.to_string()])
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pymongo script failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    // Discovery from a secondary seed reached the real primary.
    assert_eq!(v["primary"], primary.to_string(), "{v}");
    assert_eq!(v["hello_primary"], primary.to_string(), "{v}");
    let mut want_secondaries: Vec<String> = members
        .iter()
        .filter(|a| **a != primary)
        .map(|a| a.to_string())
        .collect();
    want_secondaries.sort();
    assert_eq!(v["secondaries"], serde_json::json!(want_secondaries), "{v}");

    let ss = &v["server_status"];
    assert!(ss["uptime"].as_f64().is_some_and(|u| u >= 0.0), "{ss}");
    assert!(
        ss["connections_current"].as_i64().is_some_and(|c| c >= 1),
        "{ss}"
    );
    assert_eq!(
        ss["opcounters_keys"],
        serde_json::json!(["command", "delete", "getmore", "insert", "query", "update"])
    );
    assert_eq!(ss["repl_set_name"], "rs0");
    assert_eq!(ss["has_wired_tiger"], true);

    let st = &v["repl_set_get_status"];
    assert_eq!(st["set"], "rs0");
    let states: Vec<(String, String)> = st["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["stateStr"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states.len(), 3, "{st}");
    for (name, state) in &states {
        let want = if *name == primary.to_string() {
            "PRIMARY"
        } else {
            "SECONDARY"
        };
        assert_eq!(state, want, "{name} in {st}");
    }

    let shards = v["list_shards"].as_array().expect("shards");
    let ids: Vec<&str> = shards.iter().map(|s| s["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["shard01", "shard02"]);
    for s in shards {
        let host = s["host"].as_str().unwrap();
        let id = s["_id"].as_str().unwrap();
        assert!(host.starts_with(&format!("{id}/")), "shard seed {host}");
        assert_eq!(
            host.split('/').nth(1).unwrap().split(',').count(),
            3,
            "{host}"
        );
    }
    assert_eq!(v["mongos_msg"], "isdbgrid");
}
