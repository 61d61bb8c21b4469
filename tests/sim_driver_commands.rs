//! Monitoring commands through the official driver: shapes and values must
//! match real servers (real captures) and agree with the simulated topology.

#[path = "sim_common/mod.rs"]
mod common;
use bson::{doc, Bson, Document};
use common::*;
use mongomon::sim::fixtures;
use std::time::Duration;

fn keys(d: &Document) -> Vec<String> {
    d.keys().cloned().collect()
}

#[tokio::test]
async fn server_status_has_every_section_of_the_real_capture_and_live_counters() {
    let sim = start(RS3);
    let members = sim.set_members("rs0");
    let client = direct(members[1]).await;
    let ss = run(&client, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap();
    let real = fixtures::server_status_42();
    for k in keys(real) {
        if k == "start" || k == "end" {
            continue;
        }
        assert!(ss.contains_key(&k), "serverStatus lacks section {k}");
    }
    assert_eq!(ss.get_str("host").unwrap(), members[1].to_string());
    assert_eq!(ss.get_str("version").unwrap(), "7.0.12");
    assert_eq!(ss.get_str("process").unwrap(), "mongod");
    assert!(matches!(ss.get("localTime"), Some(Bson::DateTime(_))));
    let size = bson::to_vec(&ss).unwrap().len();
    assert!(
        size > 30_000,
        "serverStatus is {size} bytes, real 4.2 is ~38 KB"
    );
    // repl agrees with hello.
    let repl = ss.get_document("repl").unwrap();
    assert_eq!(repl.get_str("setName").unwrap(), "rs0");
    assert!(repl.get_bool("secondary").unwrap());
    assert_eq!(repl.get_str("primary").unwrap(), members[0].to_string());
    assert_eq!(repl.get_str("me").unwrap(), members[1].to_string());
    // Secondaries replicate writes: opcountersRepl grows, and counters advance.
    let n1 = ss
        .get_document("network")
        .unwrap()
        .get_i64("numRequests")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ss2 = run(&client, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap();
    let n2 = ss2
        .get_document("network")
        .unwrap()
        .get_i64("numRequests")
        .unwrap();
    assert!(n2 > n1, "numRequests must advance ({n1} -> {n2})");
    let bo1 = ss
        .get_document("network")
        .unwrap()
        .get_i64("bytesOut")
        .unwrap();
    let bo2 = ss2
        .get_document("network")
        .unwrap()
        .get_i64("bytesOut")
        .unwrap();
    assert!(bo2 > bo1);
    // Section exclusion like mongod: {wiredTiger: 0}.
    let slim = run(
        &client,
        "admin",
        doc! {"serverStatus": 1, "wiredTiger": 0, "repl": 0},
    )
    .await
    .unwrap();
    assert!(
        !slim.contains_key("wiredTiger")
            && !slim.contains_key("repl")
            && slim.contains_key("opcounters")
    );
    // $clusterTime on replica-set members.
    assert!(ss.contains_key("$clusterTime") && ss.contains_key("operationTime"));
    sim.shutdown();
}

#[tokio::test]
async fn connections_current_is_the_real_number_of_open_connections() {
    let sim = start(RS3);
    let addr = sim.set_members("rs0")[2];
    let mut s0 = tokio::net::TcpStream::connect(addr).await.unwrap();
    let base = raw_on(&mut s0, doc! {"serverStatus": 1, "$db": "admin"})
        .await
        .unwrap();
    let c0 = base
        .get_document("connections")
        .unwrap()
        .get_i32("current")
        .unwrap();
    assert_eq!(c0, 1);
    let mut extra = Vec::new();
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw_on(&mut s, ping()).await.unwrap();
        extra.push(s);
    }
    let now = raw_on(&mut s0, doc! {"serverStatus": 1, "$db": "admin"})
        .await
        .unwrap();
    let conns = now.get_document("connections").unwrap();
    assert_eq!(conns.get_i32("current").unwrap(), 6);
    assert!(conns.get_i64("totalCreated").unwrap() >= 6);
    drop(extra);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let d = raw_on(&mut s0, doc! {"serverStatus": 1, "$db": "admin"})
            .await
            .unwrap();
        if d.get_document("connections")
            .unwrap()
            .get_i32("current")
            .unwrap()
            == 1
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "closed connections never left connections.current"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.shutdown();
}

#[tokio::test]
async fn repl_set_get_status_and_config_are_consistent_with_hello() {
    let sim = start(RS3);
    let members = sim.set_members("rs0");
    let client = direct(members[1]).await;
    let st = run(&client, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap();
    assert_eq!(st.get_str("set").unwrap(), "rs0");
    assert_eq!(st.get_i32("myState").unwrap(), 2);
    assert_eq!(
        st.get_str("syncSourceHost").unwrap(),
        members[0].to_string()
    );
    let ms = st.get_array("members").unwrap();
    assert_eq!(ms.len(), 3);
    let me: Vec<&Document> = ms
        .iter()
        .filter_map(Bson::as_document)
        .filter(|m| m.get_bool("self").unwrap_or(false))
        .collect();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0].get_str("name").unwrap(), members[1].to_string());
    let p = ms[0].as_document().unwrap();
    assert_eq!(
        (p.get_i32("state").unwrap(), p.get_str("stateStr").unwrap()),
        (1, "PRIMARY")
    );
    assert!(matches!(p.get("optimeDate"), Some(Bson::DateTime(_))));
    assert!(matches!(
        p.get_document("optime").unwrap().get("ts"),
        Some(Bson::Timestamp(_))
    ));
    // Every key the real 4.2 member entry has for a secondary.
    let real = fixtures::repl_set_get_status_42();
    let real_sec = real.get_array("members").unwrap()[1].as_document().unwrap();
    let ours = ms[2].as_document().unwrap();
    for k in real_sec.keys() {
        if k == "syncingTo" {
            continue; // removed in 4.4
        }
        assert!(ours.contains_key(k), "member entry lacks {k}");
    }
    let cfg = run(&client, "admin", doc! {"replSetGetConfig": 1})
        .await
        .unwrap();
    let c = cfg.get_document("config").unwrap();
    assert_eq!(c.get_str("_id").unwrap(), "rs0");
    let hello = run(&client, "admin", doc! {"hello": 1}).await.unwrap();
    assert_eq!(
        c.get_i32("version").unwrap(),
        hello.get_i32("setVersion").unwrap()
    );
    let m0 = c.get_array("members").unwrap()[0].as_document().unwrap();
    assert_eq!(m0.get_f64("priority").unwrap(), 2.0);
    assert!(
        m0.contains_key("secondaryDelaySecs")
            && m0.contains_key("votes")
            && m0.contains_key("tags")
    );
    sim.shutdown();
}

#[tokio::test]
async fn build_info_host_info_cmdline_and_misc() {
    let sim = start(RS3);
    let addr = sim.set_members("rs0")[0];
    let client = direct(addr).await;
    let bi = run(&client, "admin", doc! {"buildInfo": 1}).await.unwrap();
    assert_eq!(bi.get_str("version").unwrap(), "7.0.12");
    assert_eq!(bi.get_array("versionArray").unwrap()[0], Bson::Int32(7));
    assert!(
        bi.contains_key("gitVersion")
            && bi.contains_key("openssl")
            && bi.contains_key("buildEnvironment")
    );
    let hi = run(&client, "admin", doc! {"hostInfo": 1}).await.unwrap();
    assert!(hi.get_document("system").unwrap().contains_key("memSizeMB"));
    assert_eq!(
        hi.get_document("os").unwrap().get_str("type").unwrap(),
        "Linux"
    );
    let opts = run(&client, "admin", doc! {"getCmdLineOpts": 1})
        .await
        .unwrap();
    let parsed = opts.get_document("parsed").unwrap();
    assert_eq!(
        parsed
            .get_document("replication")
            .unwrap()
            .get_str("replSetName")
            .unwrap(),
        "rs0"
    );
    assert_eq!(
        parsed.get_document("net").unwrap().get_i32("port").unwrap(),
        addr.port() as i32
    );
    assert!(opts.get_array("argv").is_ok());
    let oplog_last = run(
        &client,
        "local",
        doc! {"find": "oplog.rs", "sort": {"$natural": -1}, "limit": 1},
    )
    .await
    .unwrap();
    let cur = oplog_last.get_document("cursor").unwrap();
    assert_eq!(cur.get_i64("id").unwrap(), 0);
    assert_eq!(cur.get_str("ns").unwrap(), "local.oplog.rs");
    let last = cur.get_array("firstBatch").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    let first_r = run(
        &client,
        "local",
        doc! {"find": "oplog.rs", "sort": {"$natural": 1}, "limit": 1},
    )
    .await
    .unwrap();
    let first = first_r
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    let (Some(Bson::Timestamp(a)), Some(Bson::Timestamp(b))) = (first.get("ts"), last.get("ts"))
    else {
        panic!("ts must be Timestamps")
    };
    assert_eq!(b.time - a.time, 86_400, "default oplog window is one day");
    assert!(matches!(last.get("wall"), Some(Bson::DateTime(_))));
    let err = run(&client, "admin", doc! {"xyz": 1}).await.unwrap_err();
    assert_eq!(error_code(&err), Some(59));
    assert!(err.to_string().contains("no such command: 'xyz'"), "{err}");
    for cmd in [
        doc! {"dbStats": 1},
        doc! {"listDatabases": 1},
        doc! {"top": 1},
        doc! {"getLog": "global"},
        doc! {"connPoolStats": 1},
    ] {
        let r = run(&client, "admin", cmd.clone())
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert_eq!(r.get_f64("ok").unwrap(), 1.0);
    }
    let gm = run(&client, "admin", doc! {"getMore": 42i64, "collection": "x"})
        .await
        .unwrap_err();
    assert_eq!(error_code(&gm), Some(43));
    sim.shutdown();
}

#[tokio::test]
async fn sharded_cluster_commands_on_mongos_and_members() {
    let sim = start(SHARDED);
    let mongos = sim.mongos("c1");
    assert_eq!(mongos.len(), 2);
    let client = direct(mongos[0]).await;
    let hello = run(&client, "admin", doc! {"isMaster": 1}).await.unwrap();
    assert_eq!(hello.get_str("msg").unwrap(), "isdbgrid");
    assert_eq!(hello.get_i32("maxWireVersion").unwrap(), 17);
    let ls = run(&client, "admin", doc! {"listShards": 1}).await.unwrap();
    let shards = ls.get_array("shards").unwrap();
    assert_eq!(shards.len(), 2);
    let s1 = shards[0].as_document().unwrap();
    assert_eq!(s1.get_str("_id").unwrap(), "shard01");
    let m = sim.set_members("shard01");
    assert_eq!(
        s1.get_str("host").unwrap(),
        format!("shard01/{},{},{}", m[0], m[1], m[2])
    );
    assert_eq!(s1.get_i32("state").unwrap(), 1);
    let opts = run(&client, "admin", doc! {"getCmdLineOpts": 1})
        .await
        .unwrap();
    let cfg = sim.set_members("cfg");
    assert_eq!(
        opts.get_document("parsed")
            .unwrap()
            .get_document("sharding")
            .unwrap()
            .get_str("configDB")
            .unwrap(),
        format!("cfg/{},{},{}", cfg[0], cfg[1], cfg[2])
    );
    let cs = run(&client, "config", doc! {"find": "shards"})
        .await
        .unwrap();
    let cs = cs.get_document("cursor").unwrap();
    assert_eq!(cs.get_str("ns").unwrap(), "config.shards");
    let first_shard = cs.get_array("firstBatch").unwrap()[0]
        .as_document()
        .unwrap();
    assert_eq!(first_shard.get_str("_id").unwrap(), "shard01");
    assert!(first_shard
        .get_str("host")
        .unwrap()
        .starts_with("shard01/127.0.0.1:"));
    let ms = run(&client, "config", doc! {"find": "mongos"})
        .await
        .unwrap();
    let docs = ms
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .clone();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[0]
            .as_document()
            .unwrap()
            .get_str("mongoVersion")
            .unwrap(),
        "6.0.14"
    );
    let settings = run(
        &client,
        "config",
        doc! {"find": "settings", "filter": {"_id": "balancer"}},
    )
    .await
    .unwrap();
    assert!(!settings
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .is_empty());
    let map = run(&client, "admin", doc! {"getShardMap": 1})
        .await
        .unwrap();
    assert!(map
        .get_document("map")
        .unwrap()
        .get_str("config")
        .unwrap()
        .starts_with("cfg/"));
    let ss = run(&client, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap();
    assert_eq!(ss.get_str("process").unwrap(), "mongos");
    assert!(!ss.contains_key("repl") && !ss.contains_key("wiredTiger"));
    let rs = run(&client, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap_err();
    // Real mongos answers without a `code` (see NOTES), which this driver
    // reports as an invalid response; check the exact document on the wire.
    assert!(
        matches!(
            rs.kind.as_ref(),
            mongodb::error::ErrorKind::InvalidResponse { .. }
        ),
        "{rs:?}"
    );
    let raw = raw_cmd(mongos[0], doc! {"replSetGetStatus": 1, "$db": "admin"})
        .await
        .unwrap();
    assert_eq!(raw.get_str("info").unwrap(), "mongos");
    assert_eq!(raw.get_f64("ok").unwrap(), 0.0);
    assert_eq!(
        raw.get_str("errmsg").unwrap(),
        "replSetGetStatus is not supported through mongos"
    );
    // Members know their cluster role.
    let c = direct(cfg[0]).await;
    let o = run(&c, "admin", doc! {"getCmdLineOpts": 1}).await.unwrap();
    assert_eq!(
        o.get_document("parsed")
            .unwrap()
            .get_document("sharding")
            .unwrap()
            .get_str("clusterRole")
            .unwrap(),
        "configsvr"
    );
    let h = run(&c, "admin", doc! {"isMaster": 1}).await.unwrap();
    assert_eq!(h.get_i32("configsvr").unwrap(), 2);
    let s = direct(m[1]).await;
    let o = run(&s, "admin", doc! {"getCmdLineOpts": 1}).await.unwrap();
    assert_eq!(
        o.get_document("parsed")
            .unwrap()
            .get_document("sharding")
            .unwrap()
            .get_str("clusterRole")
            .unwrap(),
        "shardsvr"
    );
    let nols = run(&s, "admin", doc! {"listShards": 1}).await.unwrap_err();
    assert_eq!(error_code(&nols), Some(59));
    sim.shutdown();
}

#[tokio::test]
async fn standalone_refuses_replication_commands_like_mongod() {
    let sim = start(
        "[[standalone]]\nhost = \"127.0.0.1:0\"\nversion = \"4.4.29\"\n[[standalone]]\nhost = \"127.0.0.1:0\"\nversion = \"4.2.8\"\n",
    );
    let addr = sim.standalones()[0];
    // The 3.x driver refuses 4.2 (wire 8), so check that one on the raw wire.
    let old = raw_cmd(sim.standalones()[1], doc! {"isMaster": 1, "$db": "admin"})
        .await
        .unwrap();
    assert_eq!(old.get_i32("maxWireVersion").unwrap(), 8);
    assert!(
        !old.contains_key("topologyVersion"),
        "4.2 has no topologyVersion"
    );
    let client = direct(addr).await;
    let e = run(&client, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(76));
    assert!(e.to_string().contains("not running with --replSet"));
    let h = run(&client, "admin", doc! {"isMaster": 1}).await.unwrap();
    assert_eq!(h.get_i32("maxWireVersion").unwrap(), 9);
    assert!(h.get_bool("ismaster").unwrap());
    assert!(!h.contains_key("$clusterTime") && !h.contains_key("setName"));
    let ss = run(&client, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap();
    assert!(!ss.contains_key("repl") && ss.contains_key("opcountersRepl"));
    sim.shutdown();
}

#[tokio::test]
async fn hello_matches_real_is_master_shapes() {
    let sim = start(RS3);
    let p = sim.primary("rs0").unwrap();
    let client = direct(p).await;
    let ours = run(&client, "admin", doc! {"isMaster": 1}).await.unwrap();
    let real = fixtures::parse(fixtures::IS_MASTER_PRIMARY);
    for k in real.keys() {
        if matches!(
            k.as_str(),
            "arbiters" | "$gleStats" | "lastCommittedOpTime" | "$configServerState"
        ) {
            continue; // no arbiter in RS3; gle/config-state fields are shard-only
        }
        assert!(ours.contains_key(k), "isMaster lacks {k}");
    }
    assert!(matches!(ours.get("electionId"), Some(Bson::ObjectId(_))));
    let tv = ours.get_document("topologyVersion").unwrap();
    assert!(
        matches!(tv.get("processId"), Some(Bson::ObjectId(_)))
            && matches!(tv.get("counter"), Some(Bson::Int64(_)))
    );
    let h = run(&client, "admin", doc! {"hello": 1}).await.unwrap();
    assert!(h.get_bool("isWritablePrimary").unwrap() && !h.contains_key("ismaster"));
    assert_eq!(h.get_i32("maxWireVersion").unwrap(), 21);
    sim.shutdown();
}
