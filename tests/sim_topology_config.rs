//! Topology file parsing and validation messages, and the shipped examples.

use mongomon::sim::{Topology, TopologyError};

fn err(toml: &str) -> String {
    match Topology::from_toml_str(toml) {
        Ok(_) => panic!("topology should be rejected:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_key_names_the_line_and_the_valid_keys() {
    let m = err("[[replica_set]]\nname = \"rs0\"\n[[replica_set.members]]\nhost = \"127.0.0.1:0\"\nprioriy = 2\n");
    assert!(m.contains("unknown field `prioriy`"), "{m}");
    assert!(m.contains("line 5"), "{m}");
    assert!(m.contains("priority"), "should list the expected keys: {m}");
    let m = err("[[events]]\nat_secs = 1\naction = \"down\"\nhost = \"127.0.0.1:1\"\nbogus = 1\n");
    assert!(m.contains("bogus"), "{m}");
    let m = err("[[events]]\nat_secs = 1e300\naction = \"down\"\nhost = \"rs0[0]\"\n");
    assert!(m.contains("events[0].at_secs"), "{m}");
}

#[test]
fn duplicate_address_names_both_places() {
    let m = err("[[standalone]]\nhost = \"127.0.0.1:27017\"\n[[replica_set]]\nname = \"rs0\"\n[[replica_set.members]]\nhost = \"127.0.0.1:27017\"\n");
    assert!(m.contains("duplicate address 127.0.0.1:27017"), "{m}");
    assert!(m.contains("line 6"), "{m}");
    assert!(m.contains("standalone[0].host"), "{m}");
    assert!(m.contains("port 0"), "suggests the fix: {m}");
}

#[test]
fn shard_without_members_is_rejected_with_its_path() {
    let m = err(r#"
[[sharded_cluster]]
name = "c"
[sharded_cluster.config_server]
name = "cfg"
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "s1"
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "s2"
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
"#);
    assert!(
        m.contains("sharded_cluster[0].shards[1] ('s2'): has no members"),
        "{m}"
    );
}

#[test]
fn non_loopback_address_is_rejected() {
    let m = err("[[standalone]]\nhost = \"192.168.1.10:27017\"\n");
    assert!(m.contains("outside 127.0.0.0/8"), "{m}");
    assert!(m.contains("line 2"), "{m}");
    let m = err("[simulator]\ncontrol = \"0.0.0.0:8080\"\n");
    assert!(m.contains("simulator.control"), "{m}");
    assert!(matches!(
        Topology::from_toml_str("[[standalone]]\nhost = \"nope\"\n"),
        Err(TopologyError::Invalid(_))
    ));
}

#[test]
fn shipped_examples_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sim");
    let rs = Topology::from_file(&std::path::Path::new(dir).join("replica-set.toml")).unwrap();
    assert_eq!(rs.host_count(), 3);
    assert_eq!(rs.events.len(), 2);
    let sh = Topology::from_file(&std::path::Path::new(dir).join("sharded.toml")).unwrap();
    assert_eq!(sh.host_count(), 3 + 6 + 2);
    let fleet = Topology::from_file(&std::path::Path::new(dir).join("fleet-10k.toml")).unwrap();
    assert_eq!(fleet.host_count(), 10_000);
}
