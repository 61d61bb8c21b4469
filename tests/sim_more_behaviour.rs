//! Awaitable hello, replication lag, arbiters, auto addresses, Rust-built
//! topologies and getDiagnosticData.

#[path = "sim_common/mod.rs"]
mod common;
use bson::{doc, Bson, Document};
use common::*;
use mongomon::sim::topology::{host, MemberSpec, ReplicaSetSpec};
use mongomon::sim::{Action, Simulator, Topology};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tv(d: &Document) -> Document {
    d.get_document("topologyVersion").unwrap().clone()
}

#[tokio::test]
async fn awaitable_hello_waits_for_change_or_timeout() {
    let sim = Arc::new(start(RS3));
    let addr = sim.set_members("rs0")[1];
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let first = raw_on(&mut s, doc! {"hello": 1, "$db": "admin"})
        .await
        .unwrap();
    // Current topologyVersion + maxAwaitTimeMS: answered only after the wait.
    let t = Instant::now();
    let same = raw_on(
        &mut s,
        doc! {"hello": 1, "topologyVersion": tv(&first), "maxAwaitTimeMS": 400i64, "$db": "admin"},
    )
    .await
    .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(350),
        "returned after {:?}",
        t.elapsed()
    );
    assert_eq!(tv(&same), tv(&first));
    // A step-down during the wait answers at once with the bumped counter.
    let sim2 = sim.clone();
    let stepper = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(200));
        sim2.step_down("rs0").unwrap();
    });
    let t = Instant::now();
    let changed = raw_on(
        &mut s,
        doc! {"hello": 1, "topologyVersion": tv(&first), "maxAwaitTimeMS": 4000i64, "$db": "admin"},
    )
    .await
    .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "should wake on change, took {:?}",
        t.elapsed()
    );
    assert!(tv(&changed).get_i64("counter").unwrap() > tv(&first).get_i64("counter").unwrap());
    assert!(
        changed.get_bool("isWritablePrimary").unwrap(),
        "member 1 is the new primary"
    );
    stepper.await.unwrap();
    // A stale topologyVersion is answered immediately.
    let t = Instant::now();
    raw_on(
        &mut s,
        doc! {"hello": 1, "topologyVersion": tv(&first), "maxAwaitTimeMS": 4000i64, "$db": "admin"},
    )
    .await
    .unwrap();
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn replication_lag_shows_in_status_and_oplog() {
    let sim = start(RS3);
    let m = sim.set_members("rs0");
    sim.apply(Action::SetLag {
        set: "rs0".into(),
        host: m[2].to_string(),
        secs: 30,
    })
    .unwrap();
    let c = direct(m[0]).await;
    let st = run(&c, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap();
    let date = |i: usize| {
        st.get_array("members").unwrap()[i]
            .as_document()
            .unwrap()
            .get_datetime("optimeDate")
            .unwrap()
            .timestamp_millis()
    };
    let lag = (date(0) - date(2)) / 1000;
    assert!((29..=31).contains(&lag), "lag {lag}");
    assert!((date(0) - date(1)).abs() <= 1000);
    let lagging = direct(m[2]).await;
    let last = run(
        &lagging,
        "local",
        doc! {"find": "oplog.rs", "sort": {"$natural": -1}, "limit": 1},
    )
    .await
    .unwrap();
    let entry = last
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    let Some(Bson::Timestamp(ts)) = entry.get("ts") else {
        panic!("ts")
    };
    assert!((date(0) / 1000 - ts.time as i64 - 30).abs() <= 1);
}

#[tokio::test]
async fn arbiters_and_passives_are_reported_like_mongod() {
    let toml = r#"
[[replica_set]]
name = "rsa"
version = "6.0.14"
members = [
  { host = "127.0.0.1:0" },
  { host = "127.0.0.1:0", priority = 0.0 },
  { host = "127.0.0.1:0", arbiter_only = true },
]
"#;
    let sim = start(toml);
    let m = sim.set_members("rsa");
    let c = direct(m[0]).await;
    let h = run(&c, "admin", doc! {"hello": 1}).await.unwrap();
    assert_eq!(
        h.get_array("hosts").unwrap(),
        &vec![Bson::String(m[0].to_string())]
    );
    assert_eq!(
        h.get_array("passives").unwrap(),
        &vec![Bson::String(m[1].to_string())]
    );
    assert_eq!(
        h.get_array("arbiters").unwrap(),
        &vec![Bson::String(m[2].to_string())]
    );
    let a = run(&direct(m[2]).await, "admin", doc! {"hello": 1})
        .await
        .unwrap();
    assert!(a.get_bool("arbiterOnly").unwrap() && !a.get_bool("secondary").unwrap());
    let p = run(&direct(m[1]).await, "admin", doc! {"hello": 1})
        .await
        .unwrap();
    assert!(p.get_bool("passive").unwrap());
    let st = run(&c, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap();
    let arb = st.get_array("members").unwrap()[2]
        .as_document()
        .unwrap()
        .clone();
    assert_eq!(
        (
            arb.get_i32("state").unwrap(),
            arb.get_str("stateStr").unwrap()
        ),
        (7, "ARBITER")
    );
    assert_eq!(st.get_i32("votingMembersCount").unwrap(), 3);
    assert_eq!(st.get_i32("writableVotingMembersCount").unwrap(), 2);
    // An arbiter cannot be elected.
    assert!(sim
        .apply(Action::StepDown {
            set: "rsa".into(),
            new_primary: Some(m[2].to_string())
        })
        .is_err());
}

#[tokio::test]
async fn auto_addresses_spread_over_loopback() {
    let toml = r#"
[simulator]
addresses = "auto"
auto_base = "127.202.0.250"
auto_port = 27017
control = "127.0.0.1:0"
[[sharded_cluster]]
name = "c"
[sharded_cluster.config_server]
name = "cfg"
members = [{}, {}, {}]
[[sharded_cluster.shards]]
name = "s1"
members = [{}, {}, {}]
[[sharded_cluster.mongos]]
"#;
    let sim = start(toml);
    let addrs: Vec<String> = sim.hosts().iter().map(|h| h.addr.to_string()).collect();
    assert_eq!(addrs.len(), 7);
    assert_eq!(addrs[0], "127.202.0.250:27017");
    assert_eq!(addrs[5], "127.202.1.1:27017", "skips .255 and .0");
    let c = direct(sim.mongos("c")[0]).await;
    let ls = run(&c, "admin", doc! {"listShards": 1}).await.unwrap();
    assert_eq!(
        ls.get_array("shards").unwrap()[0]
            .as_document()
            .unwrap()
            .get_str("host")
            .unwrap(),
        format!("s1/{},{},{}", addrs[3], addrs[4], addrs[5])
    );
}

#[tokio::test]
async fn topology_built_in_rust_and_diagnostic_data() {
    let mut t = Topology::default();
    t.simulator.control = None;
    t.replica_set.push(ReplicaSetSpec {
        name: "rust".into(),
        version: Some("5.0.26".into()),
        oplog_window_secs: 3600,
        primary: Some(1),
        members: vec![
            MemberSpec {
                host: host("127.0.0.1:0"),
                ..Default::default()
            },
            MemberSpec {
                host: host("127.0.0.1:0"),
                ..Default::default()
            },
        ],
    });
    let sim = Simulator::start(t).unwrap();
    let m = sim.set_members("rust");
    assert_eq!(sim.primary("rust"), Some(m[1]));
    let c = direct(m[1]).await;
    let h = run(&c, "admin", doc! {"hello": 1}).await.unwrap();
    assert_eq!(h.get_i32("maxWireVersion").unwrap(), 13);
    let d = run(&c, "admin", doc! {"getDiagnosticData": 1})
        .await
        .unwrap();
    let data = d.get_document("data").unwrap();
    assert_eq!(
        data.get_document("serverStatus")
            .unwrap()
            .get_str("version")
            .unwrap(),
        "5.0.26"
    );
    assert_eq!(
        data.get_document("replSetGetStatus")
            .unwrap()
            .get_str("set")
            .unwrap(),
        "rust"
    );
    let cfg = run(&c, "admin", doc! {"replSetGetConfig": 1})
        .await
        .unwrap();
    assert!(cfg
        .get_document("config")
        .unwrap()
        .get_array("members")
        .unwrap()[0]
        .as_document()
        .unwrap()
        .contains_key("secondaryDelaySecs"));
}

#[tokio::test]
async fn exhaust_hello_streams_replies_with_more_to_come() {
    use mongomon::wire::frame as wire;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Arc::new(start(RS3));
    let addr = sim.set_members("rs0")[2];
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let first = raw_on(&mut s, doc! {"hello": 1, "$db": "admin"})
        .await
        .unwrap();
    let mut msg = wire::encode_op_msg_request(
        77,
        &doc! {"hello": 1, "topologyVersion": tv(&first), "maxAwaitTimeMS": 300i64, "$db": "admin"},
        false,
    );
    msg[16..20].copy_from_slice(&wire::FLAG_EXHAUST_ALLOWED.to_le_bytes());
    s.write_all(&msg).await.unwrap();
    // Two replies arrive although only one request was sent.
    let mut previous_id = 77;
    for i in 0..2 {
        let mut h = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut h))
            .await
            .expect("streamed reply within 3 s")
            .unwrap();
        let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let request_id = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let response_to = i32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        assert_eq!(
            response_to, previous_id,
            "reply {i} answers the previous message"
        );
        previous_id = request_id;
        let mut body = vec![0u8; len - 16];
        s.read_exact(&mut body).await.unwrap();
        let flags = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        assert_ne!(
            flags & wire::FLAG_MORE_TO_COME,
            0,
            "reply {i} sets moreToCome"
        );
        let mut all = h.to_vec();
        all.extend_from_slice(&body);
        let d = wire::decode_reply(&all).unwrap();
        assert!(d.get_bool("secondary").unwrap());
    }
    // A change is streamed at once.
    let sim2 = sim.clone();
    tokio::task::spawn_blocking(move || {
        sim2.apply(Action::SetHidden {
            set: "rs0".into(),
            host: "rs0[2]".into(),
            hidden: true,
        })
        .unwrap()
    })
    .await
    .unwrap();
    let d = read_reply(&mut s).await.unwrap();
    let d = if d.get_bool("hidden").unwrap_or(false) {
        d
    } else {
        read_reply(&mut s).await.unwrap()
    };
    assert!(d.get_bool("hidden").unwrap(), "{d}");
}
