//! Commands the benchmark's peer agents send and the agent does not
//! (issue 7): Telegraf's mongodb input (jumbo-chunk count on `config.chunks`,
//! `shardConnPoolStats` on 4.x, `listCollections` + `collStats`) and Percona's
//! mongodb_exporter (`getDiagnosticData` on mongod and mongos,
//! `config.version`, `getParameter featureCompatibilityVersion`, `$collStats`,
//! `$indexStats`, chunks per shard), all through the official Rust driver.

#[path = "sim_common/mod.rs"]
mod common;
use bson::{doc, Bson, Document};
use common::*;
use futures_util::TryStreamExt;
use mongomon::sim::fixtures;
use std::time::Duration;

/// A 4.4 cluster (`shardConnPoolStats` still exists) with two shards.
const CLUSTER_44: &str = r#"
[[sharded_cluster]]
name = "c44"
version = "4.4.29"
[sharded_cluster.config_server]
name = "cfg"
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard01"
members = [{ host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard02"
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
"#;

/// Driver actions are `IntoFuture`; every one is bounded in time.
fn bounded<F: std::future::IntoFuture>(f: F) -> tokio::time::Timeout<F::IntoFuture> {
    tokio::time::timeout(Duration::from_secs(10), f.into_future())
}

#[tokio::test]
async fn get_diagnostic_data_on_a_member_has_the_sections_of_the_real_capture() {
    let sim = start(RS3);
    let addr = sim.primary("rs0").unwrap();
    let client = direct(addr).await;
    let reply = run(&client, "admin", doc! {"getDiagnosticData": 1})
        .await
        .unwrap();
    let data = reply.get_document("data").unwrap();
    let capture = fixtures::parse(fixtures::DIAGNOSTIC_DATA_42);
    for section in capture.keys() {
        assert!(data.contains_key(section), "data.{section} missing");
    }
    let ss = data.get_document("serverStatus").unwrap();
    assert_eq!(ss.get_str("host").unwrap(), addr.to_string());
    assert_eq!(ss.get_str("process").unwrap(), "mongod");
    assert!(ss.contains_key("wiredTiger") && ss.contains_key("opcounters"));
    let rs = data.get_document("replSetGetStatus").unwrap();
    assert_eq!(rs.get_str("set").unwrap(), "rs0");
    assert_eq!(rs.get_i32("myState").unwrap(), 1);
    assert_eq!(rs.get_array("members").unwrap().len(), 3);
    let oplog = data.get_document("local.oplog.rs.stats").unwrap();
    assert_eq!(oplog.get_str("ns").unwrap(), "local.oplog.rs");
    assert!(oplog.get_bool("capped").unwrap());
    assert!(matches!(oplog.get("indexSizes"), Some(Bson::Document(_))));
    let sm = data.get_document("systemMetrics").unwrap();
    assert!(sm.contains_key("cpu") && sm.contains_key("memory"));
    assert!(matches!(data.get("start"), Some(Bson::DateTime(_))));
    assert!(matches!(ss.get("start"), Some(Bson::DateTime(_))));
    sim.shutdown();
}

#[tokio::test]
async fn get_diagnostic_data_on_mongos_and_standalone() {
    let sim = start(CLUSTER_44);
    let mongos = sim.mongos("c44")[0];
    let client = direct(mongos).await;
    let data = run(&client, "admin", doc! {"getDiagnosticData": 1})
        .await
        .unwrap();
    let data = data.get_document("data").unwrap();
    let ss = data.get_document("serverStatus").unwrap();
    assert_eq!(ss.get_str("process").unwrap(), "mongos");
    assert!(!ss.contains_key("wiredTiger"));
    let cps = data.get_document("connPoolStats").unwrap();
    assert!(cps.get_document("hosts").unwrap().len() >= 4);
    assert!(!data.contains_key("replSetGetStatus"));
    assert!(!data.contains_key("local.oplog.rs.stats"));
    sim.shutdown();

    let sim = start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let client = direct(sim.standalones()[0]).await;
    let data = run(&client, "admin", doc! {"getDiagnosticData": 1})
        .await
        .unwrap();
    let data = data.get_document("data").unwrap();
    assert!(data.contains_key("serverStatus") && data.contains_key("systemMetrics"));
    assert!(!data.contains_key("replSetGetStatus"));
    sim.shutdown();
}

/// Telegraf's `gather_cluster_status` (on by default) runs
/// `config.chunks.CountDocuments({jumbo: true})` on every host.
#[tokio::test]
async fn jumbo_chunk_count_and_chunks_per_shard_on_mongos() {
    let sim = start(CLUSTER_44);
    let mongos = sim.mongos("c44")[0];
    let client = direct(mongos).await;
    let chunks = client.database("config").collection::<Document>("chunks");
    let jumbo = bounded(chunks.count_documents(doc! {"jumbo": true}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jumbo, 0);
    let all = bounded(chunks.count_documents(doc! {}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all, 2, "one config.system.sessions chunk per shard");
    let estimated = bounded(chunks.estimated_document_count())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(estimated, 2);
    // Percona's shards collector: chunks per shard.
    let cur = bounded(chunks.aggregate(vec![
        doc! {"$group": {"_id": "$shard", "count": {"$sum": 1}}},
        doc! {"$sort": {"_id": 1}},
    ]))
    .await
    .unwrap()
    .unwrap();
    let per_shard: Vec<Document> = bounded(cur.try_collect()).await.unwrap().unwrap();
    assert_eq!(
        per_shard,
        vec![
            doc! {"_id": "shard01", "count": 1},
            doc! {"_id": "shard02", "count": 1}
        ]
    );
    // 4.4 chunks are keyed by ns, config.collections lists the sharded collection.
    let one = bounded(chunks.find_one(doc! {"shard": "shard02"}))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(one.get_str("ns").unwrap(), "config.system.sessions");
    assert!(matches!(
        one.get_document("max").unwrap().get("_id"),
        Some(Bson::MaxKey)
    ));
    let colls = client
        .database("config")
        .collection::<Document>("collections");
    let sessions = bounded(colls.find_one(doc! {"_id": {"$regex": "^config.", "$options": "i"}}))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(sessions.get_str("_id").unwrap(), "config.system.sessions");
    // Percona's cluster id comes from config.version.
    let version = client.database("config").collection::<Document>("version");
    let v = bounded(version.find_one(doc! {}))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(v.get("clusterId"), Some(Bson::ObjectId(_))));
    // The same aggregate on a shard member finds no chunks (no such collection there).
    let member = sim.primary("shard01").unwrap();
    let mclient = direct(member).await;
    let n = bounded(
        mclient
            .database("config")
            .collection::<Document>("chunks")
            .count_documents(doc! {"jumbo": true}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(n, 0);
    sim.shutdown();
}

#[tokio::test]
async fn chunks_on_7_0_are_keyed_by_uuid() {
    let sim = start(SHARDED);
    let client = direct(sim.mongos("c1")[0]).await;
    let coll = bounded(
        client
            .database("config")
            .collection::<Document>("collections")
            .find_one(doc! {}),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(coll.contains_key("timestamp"));
    let uuid = coll.get("uuid").unwrap().clone();
    let cur = bounded(
        client
            .database("config")
            .collection::<Document>("chunks")
            .aggregate(vec![
                doc! {"$match": {"uuid": uuid}},
                doc! {"$group": {"_id": "$shard", "cnt": {"$sum": 1}}},
                doc! {"$project": {"_id": 0, "shard": "$_id", "nChunks": "$cnt"}},
                doc! {"$sort": {"shard": 1}},
            ]),
    )
    .await
    .unwrap()
    .unwrap();
    let rows: Vec<Document> = bounded(cur.try_collect()).await.unwrap().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], doc! {"shard": "shard01", "nChunks": 1});
    sim.shutdown();
}

#[tokio::test]
async fn collections_and_their_stats() {
    let sim = start(RS3);
    let client = direct(sim.primary("rs0").unwrap()).await;
    let local = client.database("local");
    // Telegraf's filter: real collections and time series only.
    let names = bounded(
        local
            .list_collection_names()
            .filter(doc! {"type": {"$in": ["collection", "timeseries"]}}),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(names.contains(&"oplog.rs".to_string()), "{names:?}");
    assert!(names.contains(&"startup_log".to_string()));
    let st = run(&client, "local", doc! {"collStats": "oplog.rs"})
        .await
        .unwrap();
    assert_eq!(st.get_str("ns").unwrap(), "local.oplog.rs");
    assert!(st.get_bool("capped").unwrap());
    for k in [
        "count",
        "size",
        "storageSize",
        "totalIndexSize",
        "avgObjSize",
    ] {
        assert!(st.contains_key(k), "collStats.{k} missing");
    }
    let st = run(&client, "local", doc! {"collStats": "startup_log"})
        .await
        .unwrap();
    assert!(st.get_document("indexSizes").unwrap().contains_key("_id_"));
    let err = run(&client, "test", doc! {"collStats": "nope"})
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(26));
    // Percona's collstats and indexstats collectors.
    let cur = bounded(
        client
            .database("local")
            .collection::<Document>("startup_log")
            .aggregate(vec![
                doc! {"$collStats": {"latencyStats": {"histograms": true}, "storageStats": {}}},
            ]),
    )
    .await
    .unwrap()
    .unwrap();
    let rows: Vec<Document> = bounded(cur.try_collect()).await.unwrap().unwrap();
    let ss = rows[0].get_document("storageStats").unwrap();
    assert_eq!(ss.get_str("ns").unwrap(), "local.startup_log");
    assert!(rows[0].contains_key("latencyStats"));
    let cur = bounded(
        client
            .database("local")
            .collection::<Document>("startup_log")
            .aggregate(vec![doc! {"$indexStats": {}}]),
    )
    .await
    .unwrap()
    .unwrap();
    let rows: Vec<Document> = bounded(cur.try_collect()).await.unwrap().unwrap();
    assert_eq!(rows[0].get_str("name").unwrap(), "_id_");
    // Percona counts non-system collections: listDatabases with a filter.
    let names = bounded(
        client
            .list_database_names()
            .filter(doc! {"name": {"$nin": ["admin", "config"]}}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(names, vec!["local".to_string()]);
    // dbStats agrees with listCollections (Telegraf's gather_perdb_stats).
    let all = bounded(local.list_collection_names())
        .await
        .unwrap()
        .unwrap();
    let st = run(&client, "local", doc! {"dbStats": 1}).await.unwrap();
    assert_eq!(st.get_str("db").unwrap(), "local");
    assert_eq!(st.get_i32("collections").unwrap() as usize, all.len());
    // An unknown stage fails as on mongod.
    let err = run(
        &client,
        "local",
        doc! {"aggregate": "startup_log", "pipeline": [{"$bogus": {}}], "cursor": {}},
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), Some(40324));
    sim.shutdown();
}

#[tokio::test]
async fn pool_stats_and_parameters_by_version() {
    let sim = start(CLUSTER_44);
    let mongos = direct(sim.mongos("c44")[0]).await;
    let sp = run(&mongos, "admin", doc! {"shardConnPoolStats": 1})
        .await
        .unwrap();
    for k in [
        "hosts",
        "replicaSets",
        "totalInUse",
        "totalAvailable",
        "totalCreated",
        "totalRefreshing",
    ] {
        assert!(sp.contains_key(k), "shardConnPoolStats.{k} missing");
    }
    let member = direct(sim.primary("shard01").unwrap()).await;
    let fcv = run(
        &member,
        "admin",
        doc! {"getParameter": 1, "featureCompatibilityVersion": 1},
    )
    .await
    .unwrap();
    assert_eq!(
        fcv.get_document("featureCompatibilityVersion")
            .unwrap()
            .get_str("version")
            .unwrap(),
        "4.4"
    );
    let err = run(&member, "admin", doc! {"getParameter": 1, "noSuchParam": 1})
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(72));
    sim.shutdown();

    // shardConnPoolStats was removed in 5.0: Telegraf switches to connPoolStats.
    let sim = start(RS3);
    let client = direct(sim.primary("rs0").unwrap()).await;
    let err = run(&client, "admin", doc! {"shardConnPoolStats": 1})
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), Some(59));
    assert!(run(&client, "admin", doc! {"connPoolStats": 1})
        .await
        .is_ok());
    sim.shutdown();
}
