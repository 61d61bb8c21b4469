//! SCRAM-SHA-256 and SCRAM-SHA-1 through the official driver.

#[path = "sim_common/mod.rs"]
mod common;
use bson::doc;
use common::*;
use mongomon::sim::Action;

const USERS: &str = r#"
[[standalone]]
host = "127.0.0.1:0"
[[users]]
name = "monitor"
password = "s3cret-pw"
[[users]]
name = "legacy"
password = "old-pw"
mechanisms = ["SCRAM-SHA-1"]
"#;

#[tokio::test]
async fn scram_right_and_wrong_passwords() {
    let sim = start(USERS);
    let addr = sim.standalones()[0];
    for (user, pw, mech) in [
        ("monitor", "s3cret-pw", "SCRAM-SHA-256"),
        ("monitor", "s3cret-pw", "SCRAM-SHA-1"),
        ("legacy", "old-pw", "SCRAM-SHA-1"),
    ] {
        let uri = format!(
            "mongodb://{user}:{pw}@{addr}/?directConnection=true&serverSelectionTimeoutMS=3000&authSource=admin&authMechanism={mech}"
        );
        let c = mongodb::Client::with_uri_str(uri).await.unwrap();
        let ss = run(&c, "admin", doc! {"serverStatus": 1})
            .await
            .unwrap_or_else(|e| panic!("{user}/{mech}: {e}"));
        assert_eq!(ss.get_str("process").unwrap(), "mongod");
        let bad = format!(
            "mongodb://{user}:wrong@{addr}/?directConnection=true&serverSelectionTimeoutMS=3000&authSource=admin&authMechanism={mech}"
        );
        let c = mongodb::Client::with_uri_str(bad).await.unwrap();
        let e = run(&c, "admin", doc! {"ping": 1}).await.unwrap_err();
        assert!(
            matches!(
                e.kind.as_ref(),
                mongodb::error::ErrorKind::Authentication { .. }
            ),
            "{user}/{mech}: {e:?}"
        );
    }
    // Mechanism negotiation (saslSupportedMechs + speculativeAuthenticate).
    let c = mongodb::Client::with_uri_str(format!(
        "mongodb://monitor:s3cret-pw@{addr}/?directConnection=true&serverSelectionTimeoutMS=3000"
    ))
    .await
    .unwrap();
    run(&c, "admin", doc! {"serverStatus": 1}).await.unwrap();
    // A user without SHA-256 cannot use it.
    let c = mongodb::Client::with_uri_str(format!(
        "mongodb://legacy:old-pw@{addr}/?directConnection=true&serverSelectionTimeoutMS=3000&authMechanism=SCRAM-SHA-256"
    ))
    .await
    .unwrap();
    assert!(run(&c, "admin", doc! {"ping": 1}).await.is_err());
    sim.shutdown();
}

#[tokio::test]
async fn unauthenticated_commands_get_13_and_auth_failure_fault_rejects_good_passwords() {
    let sim = start(USERS);
    let addr = sim.standalones()[0];
    let anon = direct(addr).await;
    run(&anon, "admin", doc! {"ping": 1}).await.unwrap();
    let e = run(&anon, "admin", doc! {"serverStatus": 1})
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(13));
    assert!(e.to_string().contains("requires authentication"), "{e}");
    sim.apply(Action::AuthFailure {
        host: addr.to_string(),
        on: true,
    })
    .unwrap();
    let c = mongodb::Client::with_uri_str(format!(
        "mongodb://monitor:s3cret-pw@{addr}/?directConnection=true&serverSelectionTimeoutMS=3000&authMechanism=SCRAM-SHA-256"
    ))
    .await
    .unwrap();
    let e = run(&c, "admin", doc! {"ping": 1}).await.unwrap_err();
    assert!(
        matches!(
            e.kind.as_ref(),
            mongodb::error::ErrorKind::Authentication { .. }
        ),
        "{e:?}"
    );
    sim.apply(Action::AuthFailure {
        host: addr.to_string(),
        on: false,
    })
    .unwrap();
    let c = mongodb::Client::with_uri_str(format!(
        "mongodb://monitor:s3cret-pw@{addr}/?directConnection=true&serverSelectionTimeoutMS=3000&authMechanism=SCRAM-SHA-256"
    ))
    .await
    .unwrap();
    run(&c, "admin", doc! {"ping": 1}).await.unwrap();
    sim.shutdown();
}
