//! `mongomon check`, the deployment guide's networking rules: against hosts
//! that answer, refuse, hang, reject the credentials or the monitoring
//! command (simulator), a replica set discovered from one seed, a real
//! SecantusDB running with `--auth`, and an unreachable receiver: the exact
//! table, the JSON and the exit status.

mod common;

use std::time::Duration;

use mongomon::cmd::check::{render_table, CheckLine};
use mongomon::sim::{Action, Simulator, Topology};

const TOPOLOGY: &str = r#"
[[standalone]]
host = "127.0.0.1:0"
version = "7.0.12"
[[standalone]]
host = "127.0.0.1:0"
version = "7.0.12"
[[standalone]]
host = "127.0.0.1:0"
version = "7.0.12"
[[standalone]]
host = "127.0.0.1:0"
version = "7.0.12"
[[standalone]]
host = "127.0.0.1:0"
version = "7.0.12"
[[replica_set]]
name = "rs0"
version = "7.0.12"
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
"#;

fn run_driver<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A SecantusDB with a `mon` user (clusterMonitor), restarted with `--auth`;
/// also returns its version, read before auth was on.
fn secantus_with_auth(dir: &std::path::Path) -> (common::Secantus, String) {
    let storage = dir.to_str().unwrap();
    let open = common::Secantus::start_at(storage, &["--standalone"]);
    let version = common::server_status(&open.uri())
        .get_str("version")
        .expect("version")
        .to_string();
    let uri = format!("{}/?directConnection=true", open.uri());
    run_driver(async {
        let client = mongodb::Client::with_uri_str(&uri).await.expect("client");
        client
            .database("admin")
            .run_command(bson::doc! {
                "createUser": "mon", "pwd": "pw",
                "roles": [{"role": "clusterMonitor", "db": "admin"}],
            })
            .await
            .expect("createUser");
    });
    open.stop_gracefully();
    (
        common::Secantus::start_at(storage, &["--standalone", "--auth"]),
        version,
    )
}

fn line(
    ok: bool,
    endpoint: &str,
    target: &str,
    reason: Option<&'static str>,
    detail: &str,
) -> CheckLine {
    CheckLine {
        ok,
        kind: if target.starts_with("receiver") {
            "upload"
        } else {
            "mongodb"
        },
        endpoint: endpoint.to_string(),
        target: target.to_string(),
        reason,
        detail: match reason {
            Some(r) => format!("{r}: {detail}"),
            None => detail.to_string(),
        },
    }
}

#[test]
fn check_prints_one_precise_line_per_host_and_receiver() {
    let sim = Simulator::start(Topology::from_toml_str(TOPOLOGY).unwrap()).unwrap();
    let s = sim.standalones();
    let (ok, down, hang, badauth, noperm) = (s[0], s[1], s[2], s[3], s[4]);
    sim.host_down(down).unwrap();
    sim.apply(Action::Hang {
        host: hang.to_string(),
        on: true,
    })
    .unwrap();
    sim.apply(Action::AuthFailure {
        host: badauth.to_string(),
        on: true,
    })
    .unwrap();
    sim.apply(Action::CommandError {
        host: noperm.to_string(),
        command: "serverStatus".into(),
        code: 13,
        errmsg: None,
    })
    .unwrap();
    let rs = sim.set_members("rs0");
    let store = tempfile::tempdir().unwrap();
    let (db, db_version) = secantus_with_auth(store.path());
    let dead_receiver = common::free_port();

    let cfg = format!(
        r#"[agent]
command_timeout_ms = 1000
connect_timeout_ms = 1000
[[targets]]
name = "ok"
uri = "mongodb://{ok}/"
discover = false
[[targets]]
name = "down"
uri = "mongodb://{down}/"
discover = false
[[targets]]
name = "hang"
uri = "mongodb://{hang}/"
discover = false
[[targets]]
name = "badauth"
uri = "mongodb://mon:pw@{badauth}/"
discover = false
[[targets]]
name = "noperm"
uri = "mongodb://{noperm}/"
discover = false
[[targets]]
name = "rs"
uri = "mongodb://{seed}/?replicaSet=rs0"
[[targets]]
name = "secantus"
uri = "mongodb://mon:pw@{db}/"
discover = false
[[targets]]
name = "secantus-wrong"
uri = "mongodb://mon:wrong@{db}/"
discover = false
[upload]
name = "receiver"
url = "http://127.0.0.1:{dead_receiver}/write"
timeout_secs = 2
"#,
        seed = rs[1],
        db = db.addr(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, cfg).unwrap();
    let started = std::time::Instant::now();
    let o = common::mongomon_timeout(
        &["check", "-c", path.to_str().unwrap()],
        Duration::from_secs(40),
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded: {:?}",
        started.elapsed()
    );

    let mut members: Vec<String> = rs.iter().map(|a| a.to_string()).collect();
    members.sort();
    let primary = sim.primary("rs0").unwrap().to_string();
    let mut want = vec![
        line(true, &ok.to_string(), "ok", None, "standalone, version 7.0.12"),
        line(false, &down.to_string(), "down", Some("refused"),
            &format!("nothing accepts connections on {down}; is the server up, and the port open to this machine?")),
        line(false, &hang.to_string(), "hang", Some("timeout"),
            &format!("no answer within 1000 ms; check firewalls between this machine and {hang}")),
        line(false, &badauth.to_string(), "badauth", Some("auth"),
            "authentication failed for user mon; check targets[3].username and its password"),
        line(false, &noperm.to_string(), "noperm", Some("privileges"),
            "serverStatus is not allowed without authentication; set targets[4].username to a user with the clusterMonitor role"),
    ];
    for m in &members {
        let role = if *m == primary {
            "primary"
        } else {
            "secondary"
        };
        want.push(line(
            true,
            m,
            "rs",
            None,
            &format!("{role} of rs0, version 7.0.12"),
        ));
    }
    want.push(line(
        true,
        &db.addr(),
        "secantus",
        None,
        &format!("standalone, version {db_version}"),
    ));
    want.push(line(
        false,
        &db.addr(),
        "secantus-wrong",
        Some("auth"),
        "authentication failed for user mon; check targets[7].username and its password",
    ));
    want.push(line(false, &format!("http://127.0.0.1:{dead_receiver}/write"), "receiver", Some("refused"),
        &format!("nothing accepts connections on 127.0.0.1:{dead_receiver}; is the receiver up, and the port open to this machine?")));
    assert_eq!(
        out,
        render_table(&want),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.ends_with("6 of 11 checks failed.\n"), "{out}");
    assert_eq!(o.status.code(), Some(1));

    // --json: the same checks, for automation.
    let o = common::mongomon_timeout(
        &["check", "--json", "-c", path.to_str().unwrap()],
        Duration::from_secs(40),
    );
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(j["ok"], false);
    assert_eq!(j["failed"], 6);
    let reasons: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap_or("OK"))
        .collect();
    assert_eq!(
        reasons,
        [
            "OK",
            "refused",
            "timeout",
            "auth",
            "privileges",
            "OK",
            "OK",
            "OK",
            "OK",
            "auth",
            "refused"
        ]
    );
}

#[test]
fn check_passes_with_exit_0_when_everything_answers() {
    let sim = Simulator::start(Topology::from_toml_str(TOPOLOGY).unwrap()).unwrap();
    let receiver = common::receiver::Receiver::accepting();
    let seed = sim.set_members("rs0")[2];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(
        &path,
        format!(
            "[[targets]]\nuri = \"mongodb://{seed}/?replicaSet=rs0\"\n[upload]\nurl = \"{}\"\n",
            receiver.url()
        ),
    )
    .unwrap();
    let o = common::mongomon_timeout(
        &["check", "-c", path.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.ends_with("All 4 checks passed.\n"),
        "three discovered members and the receiver: {out}"
    );
    assert_eq!(receiver.requests().len(), 1, "one empty test batch");
}
