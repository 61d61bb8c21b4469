//! Every fault kind, injected through the Rust API, the HTTP control endpoint
//! or the timeline, and observed from the official driver.

#[path = "sim_common/mod.rs"]
mod common;
use bson::doc;
use common::*;
use mongomon::sim::Action;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn hang_slow_reset_malformed_and_command_error() {
    let sim = start(RS3);
    let addr = sim.set_members("rs0")[1];
    let host = addr.to_string();

    // slow: every reply delayed.
    let client = direct(addr).await;
    run(&client, "admin", doc! {"ping": 1}).await.unwrap();
    sim.apply(Action::Slow {
        host: host.clone(),
        millis: 300,
    })
    .unwrap();
    let t = Instant::now();
    run(&client, "admin", doc! {"ping": 1}).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "slow fault not applied: {:?}",
        t.elapsed()
    );
    sim.apply(Action::Slow {
        host: host.clone(),
        millis: 0,
    })
    .unwrap();

    // command error with a chosen code.
    sim.apply(Action::CommandError {
        host: host.clone(),
        command: "serverStatus".into(),
        code: 11600,
        errmsg: None,
    })
    .unwrap();
    let e = run(&client, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(11600));
    assert!(e.to_string().contains("InterruptedAtShutdown"), "{e}");
    run(&client, "admin", doc! {"ping": 1}).await.unwrap();
    sim.apply(Action::ClearCommandError {
        host: host.clone(),
        command: "serverstatus".into(),
    })
    .unwrap();
    run(&client, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap();

    // reset mid-reply: the driver sees a network error.
    let fresh = direct(addr).await;
    run(&fresh, "admin", doc! {"ping": 1}).await.unwrap();
    sim.apply(Action::ResetMidReply {
        host: host.clone(),
        on: true,
    })
    .unwrap();
    let e = run(&fresh, "admin", doc! {"buildInfo": 1})
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind.as_ref(),
            mongodb::error::ErrorKind::Io(_)
                | mongodb::error::ErrorKind::ConnectionPoolCleared { .. }
        ),
        "{e:?}"
    );
    sim.apply(Action::ResetMidReply {
        host: host.clone(),
        on: false,
    })
    .unwrap();

    // malformed reply bytes: the driver reports an error, never a bogus document.
    let fresh = direct(addr).await;
    run(&fresh, "admin", doc! {"ping": 1}).await.unwrap();
    sim.apply(Action::MalformedReply {
        host: host.clone(),
        on: true,
    })
    .unwrap();
    assert!(run(&fresh, "admin", doc! {"buildInfo": 1}).await.is_err());
    sim.apply(Action::MalformedReply {
        host: host.clone(),
        on: false,
    })
    .unwrap();

    // hang: connection accepted, request read, no reply ever.
    let fresh = direct(addr).await;
    run(&fresh, "admin", doc! {"ping": 1}).await.unwrap();
    sim.apply(Action::Hang {
        host: host.clone(),
        on: true,
    })
    .unwrap();
    let r = tokio::time::timeout(
        Duration::from_millis(1500),
        fresh.database("admin").run_command(doc! {"ping": 1}),
    )
    .await;
    assert!(
        r.is_err() || r.unwrap().is_err(),
        "hung host must not answer"
    );
    let mut raw = tokio::net::TcpStream::connect(addr)
        .await
        .expect("hang still accepts");
    raw.write_all(&mongomon::wire::frame::encode_op_msg_request(
        1,
        &ping(),
        false,
    ))
    .await
    .unwrap();
    let mut b = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), raw.read(&mut b))
            .await
            .is_err(),
        "no bytes while hung"
    );
    sim.apply(Action::ClearFaults { host: host.clone() })
        .unwrap();
    let ok = direct(addr).await;
    run(&ok, "admin", doc! {"ping": 1}).await.unwrap();
    sim.shutdown();
}

#[tokio::test]
async fn down_refuses_connections_and_up_restores_with_new_process_id() {
    let sim = start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let addr = sim.standalones()[0];
    let client = direct(addr).await;
    let before = run(&client, "admin", doc! {"hello": 1}).await.unwrap();
    sim.host_down(addr).unwrap();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err());
    let c2 = direct(addr).await;
    let e = run(&c2, "admin", doc! {"ping": 1}).await.unwrap_err();
    assert!(
        matches!(
            e.kind.as_ref(),
            mongodb::error::ErrorKind::ServerSelection { .. }
        ),
        "{e:?}"
    );
    sim.host_up(addr).unwrap();
    let c3 = direct(addr).await;
    let after = run(&c3, "admin", doc! {"hello": 1}).await.unwrap();
    let pid = |d: &bson::Document| {
        d.get_document("topologyVersion")
            .unwrap()
            .get_object_id("processId")
            .unwrap()
    };
    assert_ne!(
        pid(&before),
        pid(&after),
        "a restarted process has a new processId"
    );
    sim.shutdown();
}

#[tokio::test]
async fn reconfig_add_hide_remove_member_bumps_set_version() {
    let sim = start(RS3);
    let members = sim.set_members("rs0");
    let primary = direct(members[0]).await;
    let h0 = run(&primary, "admin", doc! {"hello": 1}).await.unwrap();
    let v0 = h0.get_i32("setVersion").unwrap();
    let tv0 = h0
        .get_document("topologyVersion")
        .unwrap()
        .get_i64("counter")
        .unwrap();

    sim.apply(Action::AddMember {
        set: "rs0".into(),
        host: Some("127.0.0.1:0".into()),
        hidden: false,
        priority: 1.0,
        arbiter_only: false,
    })
    .unwrap();
    let now = sim.set_members("rs0");
    assert_eq!(now.len(), 4);
    let h1 = run(&primary, "admin", doc! {"hello": 1}).await.unwrap();
    assert_eq!(h1.get_i32("setVersion").unwrap(), v0 + 1);
    assert!(
        h1.get_document("topologyVersion")
            .unwrap()
            .get_i64("counter")
            .unwrap()
            > tv0
    );
    assert!(h1
        .get_array("hosts")
        .unwrap()
        .iter()
        .any(|h| h.as_str() == Some(&now[3].to_string())));
    let newbie = direct(now[3]).await;
    assert!(run(&newbie, "admin", doc! {"hello": 1})
        .await
        .unwrap()
        .get_bool("secondary")
        .unwrap());

    sim.apply(Action::SetHidden {
        set: "rs0".into(),
        host: now[2].to_string(),
        hidden: true,
    })
    .unwrap();
    let h2 = run(&primary, "admin", doc! {"hello": 1}).await.unwrap();
    assert_eq!(h2.get_i32("setVersion").unwrap(), v0 + 2);
    assert!(!h2
        .get_array("hosts")
        .unwrap()
        .iter()
        .any(|h| h.as_str() == Some(&now[2].to_string())));
    let hidden = direct(now[2]).await;
    assert!(run(&hidden, "admin", doc! {"hello": 1})
        .await
        .unwrap()
        .get_bool("hidden")
        .unwrap());
    let cfg = run(&primary, "admin", doc! {"replSetGetConfig": 1})
        .await
        .unwrap();
    let m2 = cfg
        .get_document("config")
        .unwrap()
        .get_array("members")
        .unwrap()[2]
        .as_document()
        .unwrap()
        .clone();
    assert!(m2.get_bool("hidden").unwrap());

    sim.apply(Action::RemoveMember {
        set: "rs0".into(),
        host: now[1].to_string(),
    })
    .unwrap();
    let h3 = run(&primary, "admin", doc! {"hello": 1}).await.unwrap();
    assert_eq!(h3.get_i32("setVersion").unwrap(), v0 + 3);
    assert!(!h3
        .get_array("hosts")
        .unwrap()
        .iter()
        .any(|h| h.as_str() == Some(&now[1].to_string())));
    let removed = direct(now[1]).await;
    let hr = run(&removed, "admin", doc! {"hello": 1}).await.unwrap();
    assert!(hr.get_bool("isreplicaset").unwrap());
    assert!(!hr.contains_key("setName"));
    sim.shutdown();
}

#[tokio::test]
async fn shards_and_mongos_come_and_go() {
    let sim = start(SHARDED);
    let mongos = sim.mongos("c1");
    let client = direct(mongos[0]).await;
    let count = |d: bson::Document| d.get_array("shards").unwrap().len();
    assert_eq!(
        count(run(&client, "admin", doc! {"listShards": 1}).await.unwrap()),
        2
    );
    sim.apply(Action::AddShard {
        cluster: "c1".into(),
        name: "shard03".into(),
        members: 3,
    })
    .unwrap();
    assert_eq!(
        count(run(&client, "admin", doc! {"listShards": 1}).await.unwrap()),
        3
    );
    let new_members = sim.set_members("shard03");
    assert_eq!(new_members.len(), 3);
    let m = direct(new_members[0]).await;
    assert_eq!(
        run(&m, "admin", doc! {"hello": 1})
            .await
            .unwrap()
            .get_str("setName")
            .unwrap(),
        "shard03"
    );
    sim.apply(Action::RemoveShard {
        cluster: "c1".into(),
        name: "shard01".into(),
    })
    .unwrap();
    let ls = run(&client, "admin", doc! {"listShards": 1}).await.unwrap();
    let names: Vec<&str> = ls
        .get_array("shards")
        .unwrap()
        .iter()
        .map(|s| s.as_document().unwrap().get_str("_id").unwrap())
        .collect();
    assert_eq!(names, vec!["shard02", "shard03"]);

    sim.apply(Action::AddMongos {
        cluster: "c1".into(),
        host: Some("127.0.0.1:0".into()),
    })
    .unwrap();
    let all = sim.mongos("c1");
    assert_eq!(all.len(), 3);
    let ms = run(&client, "config", doc! {"find": "mongos"})
        .await
        .unwrap();
    assert_eq!(
        ms.get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()
            .len(),
        3
    );
    sim.apply(Action::RemoveMongos {
        cluster: "c1".into(),
        host: all[1].to_string(),
    })
    .unwrap();
    let ms = run(&client, "config", doc! {"find": "mongos"})
        .await
        .unwrap();
    assert_eq!(
        ms.get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()
            .len(),
        2
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::net::TcpStream::connect_timeout(&all[1], Duration::from_millis(200)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "removed mongos still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown();
}

async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test]
async fn http_control_endpoint_applies_the_same_actions() {
    let sim = start(RS3);
    let ctl = sim.control_addr().expect("control endpoint enabled");
    let members = sim.set_members("rs0");
    let (st, hosts) = http(ctl, "GET", "/hosts", "").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&hosts).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[0]["role"], "primary");
    assert_eq!(v[0]["addr"], members[0].to_string());

    let body = serde_json::json!({"action": "step_down", "set": "rs0", "new_primary": members[2].to_string()}).to_string();
    assert_eq!(http(ctl, "POST", "/action", &body).await.0, 200);
    let c = direct(members[2]).await;
    assert!(run(&c, "admin", doc! {"hello": 1})
        .await
        .unwrap()
        .get_bool("isWritablePrimary")
        .unwrap());

    let body = serde_json::json!({"action": "command_error", "host": members[1].to_string(), "command": "replSetGetStatus", "code": 13})
        .to_string();
    assert_eq!(http(ctl, "POST", "/action", &body).await.0, 200);
    let c1 = direct(members[1]).await;
    let e = run(&c1, "admin", doc! {"replSetGetStatus": 1})
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(13));

    let (st, msg) = http(
        ctl,
        "POST",
        "/action",
        r#"{"action":"down","host":"10.0.0.1:27017"}"#,
    )
    .await;
    assert_eq!(st, 400);
    assert!(msg.contains("unknown host"), "{msg}");
    let (st, msg) = http(ctl, "POST", "/action", r#"{"action":"explode"}"#).await;
    assert_eq!(st, 400);
    assert!(msg.contains("invalid action"), "{msg}");
    assert_eq!(http(ctl, "GET", "/nope", "").await.0, 404);
    sim.shutdown();
}

#[tokio::test]
async fn timeline_events_fire_on_schedule() {
    let toml = format!(
        "{RS3}\n[[events]]\nat_secs = 0.3\naction = \"step_down\"\nset = \"rs0\"\n\
         [[events]]\nat_secs = 0.4\naction = \"slow\"\nhost = \"rs0[2]\"\nmillis = 250\n\
         [[events]]\nat_secs = 0.1\naction = \"down\"\nhost = \"rs9[0]\"\n"
    );
    let sim = start(&toml);
    let first = sim.primary("rs0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.primary("rs0") == Some(first) {
        assert!(
            Instant::now() < deadline,
            "scheduled step-down never happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The alias "rs0[2]" resolved to the third member once the event fired.
    let third = sim.set_members("rs0")[2];
    let slow = direct(third).await;
    run(&slow, "admin", doc! {"ping": 1}).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = Instant::now();
        run(&slow, "admin", doc! {"ping": 1}).await.unwrap();
        if t.elapsed() >= Duration::from_millis(250) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scheduled slow fault never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let errs = sim.event_errors();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("unknown host rs9[0]"), "{errs:?}");
    let c = direct(first).await;
    assert!(run(&c, "admin", doc! {"hello": 1})
        .await
        .unwrap()
        .get_bool("secondary")
        .unwrap());
    sim.shutdown();
}
