//! The official Rust driver discovers and follows a simulated replica set.

#[path = "sim_common/mod.rs"]
mod common;
use bson::doc;
use common::*;
use mongodb::options::ClientOptions;
use mongodb::Client;
use std::time::{Duration, Instant};

async fn primary_me(client: &Client) -> String {
    let db = client.database("admin");
    let r = db
        .run_command(doc! { "hello": 1 })
        .selection_criteria(primary_pref());
    let reply = tokio::time::timeout(Duration::from_secs(10), r)
        .await
        .expect("bounded")
        .expect("hello on primary");
    assert!(reply.get_bool("isWritablePrimary").unwrap(), "{reply}");
    reply.get_str("me").unwrap().to_string()
}

#[tokio::test]
async fn discovers_primary_from_one_secondary_seed_and_follows_step_down() {
    let sim = start(RS3);
    let members = sim.set_members("rs0");
    assert_eq!(members.len(), 3);
    let primary = sim.primary("rs0").unwrap();
    assert_eq!(
        primary, members[0],
        "highest priority member starts as primary"
    );
    let seed = members[2];
    let uri = format!(
        "mongodb://{seed}/?replicaSet=rs0&serverSelectionTimeoutMS=5000&heartbeatFrequencyMS=500"
    );
    let client = Client::with_options(ClientOptions::parse(uri).await.unwrap()).unwrap();
    assert_eq!(primary_me(&client).await, primary.to_string());

    sim.step_down("rs0").unwrap();
    let new_primary = sim.primary("rs0").unwrap();
    assert_ne!(new_primary, primary);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout(
            Duration::from_secs(3),
            client
                .database("admin")
                .run_command(doc! {"hello": 1})
                .selection_criteria(primary_pref()),
        )
        .await
        {
            Ok(Ok(r))
                if r.get_str("me").unwrap() == new_primary.to_string()
                    && r.get_bool("isWritablePrimary").unwrap() =>
            {
                break
            }
            _ if Instant::now() > deadline => {
                panic!("driver never routed to the new primary {new_primary}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    // The old primary now says it is a secondary and names the new one.
    let old = direct(primary).await;
    let h = run(&old, "admin", doc! {"hello": 1}).await.unwrap();
    assert!(h.get_bool("secondary").unwrap());
    assert_eq!(h.get_str("primary").unwrap(), new_primary.to_string());
    sim.shutdown();
}

#[tokio::test]
async fn primary_down_elects_new_primary_seen_by_driver() {
    let sim = start(RS3);
    let members = sim.set_members("rs0");
    let uri = format!(
        "mongodb://{}/?replicaSet=rs0&serverSelectionTimeoutMS=8000&heartbeatFrequencyMS=500",
        members[1]
    );
    let client = Client::with_options(ClientOptions::parse(uri).await.unwrap()).unwrap();
    assert_eq!(primary_me(&client).await, members[0].to_string());
    sim.host_down(members[0]).unwrap();
    // Connection refused now.
    assert!(std::net::TcpStream::connect_timeout(&members[0], Duration::from_millis(500)).is_err());
    let new_primary = sim.primary("rs0").unwrap();
    assert_ne!(new_primary, members[0]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout(
            Duration::from_secs(3),
            client
                .database("admin")
                .run_command(doc! {"hello": 1})
                .selection_criteria(primary_pref()),
        )
        .await
        {
            Ok(Ok(r)) if r.get_str("me").unwrap() == new_primary.to_string() => break,
            _ if Instant::now() > deadline => panic!("driver never found the new primary"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    // Status on the new primary shows the old one unreachable.
    let c = direct(new_primary).await;
    let st = run(&c, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap();
    let down = st
        .get_array("members")
        .unwrap()
        .iter()
        .filter_map(|m| m.as_document())
        .find(|m| m.get_str("name").unwrap() == members[0].to_string())
        .unwrap()
        .clone();
    assert_eq!(down.get_f64("health").unwrap(), 0.0);
    assert_eq!(down.get_str("stateStr").unwrap(), "(not reachable/healthy)");
    // Back up: rejoins as secondary with a new processId.
    sim.host_up(members[0]).unwrap();
    let back = direct(members[0]).await;
    let h = run(&back, "admin", doc! {"hello": 1}).await.unwrap();
    assert!(!h.get_bool("isWritablePrimary").unwrap());
    assert!(h.get_bool("secondary").unwrap());
    sim.shutdown();
}
