//! The agent's own MongoDB connection against the simulator: every server
//! version from 3.6 to 8.0 through a whole monitoring round, wire
//! compression, one socket and one login per host, and each broken frame
//! failing only its host's command with a precise kind before the
//! connection is reopened.

use std::sync::Arc;
use std::time::Duration;

use mongomon::actors::host_monitor::collect::{collect_round, DbStatsPlan, Plan, Weight};
use mongomon::mongo::{self, TargetOptions};
use mongomon::sim::state::HostCounters as C;
use mongomon::sim::{Action, FrameFault, SimHandle, Simulator, Topology};

const VERSIONS: [&str; 8] = [
    "3.6.23", "4.0.28", "4.2.25", "4.4.29", "5.0.31", "6.0.20", "7.0.16", "8.0.4",
];

fn fleet(versions: &[&str], users: bool) -> SimHandle {
    let mut t = String::new();
    if users {
        t.push_str("[[users]]\nname = \"watcher\"\npassword = \"conn-pw-9Zq\"\n");
    }
    for v in versions {
        t.push_str(&format!(
            "[[standalone]]\nhost = \"127.0.0.1:0\"\nversion = \"{v}\"\n"
        ));
    }
    Simulator::start(Topology::from_toml_str(&t).unwrap()).unwrap()
}

fn settings(uri: &str) -> mongomon::config::Settings {
    let config = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 3000\nconnect_timeout_ms = 1000\nspool_dir = \"\"\n\
         [[targets]]\nname = \"t\"\nuri = \"{uri}\"\n\
         [upload]\nurl = \"http://127.0.0.1:9/\"\n"
    );
    let raw = mongomon::config::load_str(&config, &serde_json::json!({})).unwrap();
    mongomon::config::validate(&raw, None).unwrap()
}

async fn target(uri: &str) -> (TargetOptions, mongomon::config::AgentSettings) {
    let s = settings(uri);
    let opts = mongo::target_options(&s.targets[0]).await.unwrap();
    (opts, s.agent.clone())
}

fn plan() -> Plan {
    Plan {
        timeout: Duration::from_secs(3),
        legacy_hello: false,
        want_info: true,
        dbstats: DbStatsPlan::Due,
        max_databases: 10,
        mongos_ping_window: Duration::from_secs(60),
    }
}

fn counters(sim: &SimHandle, addr: std::net::SocketAddr) -> Arc<C> {
    sim.counters()
        .into_iter()
        .find(|(a, _)| *a == addr)
        .map(|(_, c)| c)
        .unwrap()
}

#[test]
fn every_server_version_from_3_6_to_8_0_is_monitored_over_one_login() {
    let sim = fleet(&VERSIONS, true);
    let hosts = sim.standalones();
    assert_eq!(hosts.len(), VERSIONS.len());
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let seed = hosts[0];
        let (base, agent) = target(&format!(
            "mongodb://watcher:conn-pw-9Zq@{seed}/?authSource=admin"
        ))
        .await;
        for (addr, version) in hosts.iter().zip(VERSIONS) {
            let client = mongo::host_client(&base, &addr.to_string(), &agent).unwrap();
            let mut p = plan();
            for round_no in 0..2 {
                let round = collect_round(client.clone(), p.clone()).await;
                for s in &round.steps {
                    if s.weight == Weight::Required {
                        assert!(
                            s.outcome.result.is_ok(),
                            "{version} round {round_no}: {} failed: {:?}",
                            s.outcome.command,
                            s.outcome.result
                        );
                    }
                }
                let names: Vec<&str> = round.steps.iter().map(|s| s.outcome.command).collect();
                assert!(names.contains(&"serverStatus"), "{version}: {names:?}");
                let ss = round
                    .steps
                    .iter()
                    .find(|s| s.outcome.command == "serverStatus")
                    .and_then(|s| s.outcome.result.as_ref().ok())
                    .unwrap();
                assert_eq!(ss.get_str("version").unwrap(), version);
                // Each release line answers with its own capture's sections.
                let has = |path: &[&str]| {
                    let mut d = &**ss;
                    for (i, k) in path.iter().enumerate() {
                        match d.get(k) {
                            Ok(Some(bson::RawBsonRef::Document(inner))) => d = inner,
                            Ok(Some(_)) => return i == path.len() - 1,
                            _ => return false,
                        }
                    }
                    true
                };
                let tickets = ["wiredTiger", "concurrentTransactions"];
                let queues = ["queues", "execution"];
                match &version[..3] {
                    // 3.6.20: no flowControl (4.2+), no electionMetrics.
                    "3.6" => {
                        assert!(!has(&["flowControl"]) && has(&tickets) && has(&["opLatencies"]))
                    }
                    // 4.0.25 (OTel's capture): no electionMetrics yet.
                    "4.0" => assert!(!has(&["electionMetrics"]) && has(&["opLatencies"])),
                    "8.0" => assert!(has(&queues) && !has(&tickets), "{version}"),
                    _ => assert!(
                        has(&tickets) && has(&["electionMetrics"]) && !has(&queues),
                        "{version}"
                    ),
                }
                // Servers before 4.4 do not know `hello`: the monitor falls
                // back to isMaster and remembers it.
                let old = version < "4.4";
                assert_eq!(round.legacy_hello, old, "{version}: legacy_hello");
                p.legacy_hello = round.legacy_hello;
                p.want_info = false;
                p.dbstats = DbStatsPlan::NotDue;
            }
            let c = counters(&sim, *addr);
            assert_eq!(C::get(&c.conns_created), 1, "{version}: sockets opened");
            assert_eq!(C::get(&c.auth_handshakes), 1, "{version}: logins");
        }
    });
}

#[test]
fn compression_is_negotiated_per_server_and_used_after_the_handshake() {
    // 4.0 has no zstd: the connection falls back to the next one offered.
    let sim = fleet(&["4.0.28", "7.0.16"], false);
    let hosts = sim.standalones();
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let (base, agent) = target(&format!("mongodb://{}/?compressors=zstd,zlib", hosts[0])).await;
        for (addr, want) in hosts.iter().zip([2u64, 3u64]) {
            let client = mongo::host_client(&base, &addr.to_string(), &agent).unwrap();
            let o = mongo::run(&client, "serverStatus", None, Duration::from_secs(3)).await;
            assert!(o.result.is_ok(), "{:?}", o.result);
            let c = counters(&sim, *addr);
            // The handshake went plain; serverStatus compressed.
            assert_eq!(C::get(&c.compressed_requests), 1, "{addr}");
            assert_eq!(C::get(&c.last_compressor), want, "{addr}: compressor id");
        }
        // Without compressors= nothing is compressed.
        let (plain, agent) = target(&format!("mongodb://{}/", hosts[1])).await;
        let client = mongo::host_client(&plain, &hosts[1].to_string(), &agent).unwrap();
        let o = mongo::run(&client, "ping", None, Duration::from_secs(3)).await;
        assert!(o.result.is_ok());
        assert_eq!(C::get(&counters(&sim, hosts[1]).compressed_requests), 1);
    });
}

#[test]
fn each_broken_frame_fails_its_host_precisely_and_the_connection_is_reopened() {
    let sim = fleet(&["7.0.16", "7.0.16"], false);
    let hosts = sim.standalones();
    let (bad, good) = (hosts[0], hosts[1]);
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let (base, agent) = target(&format!("mongodb://{bad}/")).await;
        let t = Duration::from_secs(3);
        let bad_client = mongo::host_client(&base, &bad.to_string(), &agent).unwrap();
        let good_client = mongo::host_client(&base, &good.to_string(), &agent).unwrap();
        assert!(mongo::run(&bad_client, "ping", None, t)
            .await
            .result
            .is_ok());
        assert!(mongo::run(&good_client, "ping", None, t)
            .await
            .result
            .is_ok());
        let cases = [
            (FrameFault::CloseMidReply, "network", "mid-reply"),
            (FrameFault::Truncated, "bad_reply", "does not match"),
            (FrameFault::Oversized, "bad_reply", "invalid message length"),
            (FrameFault::WrongResponseTo, "bad_reply", "answers request"),
            (FrameFault::BadChecksum, "bad_reply", "checksum"),
            (FrameFault::InvalidBson, "bad_reply", "invalid BSON"),
            (
                FrameFault::UnnegotiatedCompression,
                "bad_reply",
                "not negotiated",
            ),
        ];
        for (fault, kind, text) in cases {
            let before = C::get(&counters(&sim, bad).conns_created);
            sim.apply(Action::FrameFault {
                host: bad.to_string(),
                fault,
            })
            .unwrap();
            let o = mongo::run(&bad_client, "serverStatus", None, t).await;
            let f = o.result.expect_err("a broken frame was accepted");
            assert_eq!(f.kind, kind, "{fault:?}: {}", f.message);
            assert!(f.message.contains(text), "{fault:?}: {}", f.message);
            // The other host, on the same runtime, never noticed.
            let g = mongo::run(&good_client, "serverStatus", None, t).await;
            assert!(g.result.is_ok(), "{fault:?} leaked: {:?}", g.result);
            sim.apply(Action::FrameFault {
                host: bad.to_string(),
                fault: FrameFault::None,
            })
            .unwrap();
            // The broken socket is gone; the next command opens a new one.
            let again = mongo::run(&bad_client, "ping", None, t).await;
            assert!(again.result.is_ok(), "{fault:?}: {:?}", again.result);
            assert_eq!(
                C::get(&counters(&sim, bad).conns_created),
                before + 1,
                "{fault:?}: not reopened exactly once"
            );
        }
        assert_eq!(C::get(&counters(&sim, good).conns_created), 1);
    });
}

#[test]
fn a_refused_login_is_an_auth_failure_and_a_dead_host_is_not_hammered() {
    let sim = fleet(&["6.0.20"], true);
    let addr = sim.standalones()[0];
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let t = Duration::from_secs(3);
        let (wrong, agent) = target(&format!("mongodb://watcher:not-it@{addr}/")).await;
        let client = mongo::host_client(&wrong, &addr.to_string(), &agent).unwrap();
        let o = mongo::run(&client, "serverStatus", None, t).await;
        let f = o.result.unwrap_err();
        assert_eq!(f.kind, "auth", "{}", f.message);
        assert!(!f.message.contains("not-it"), "{}", f.message);

        // Right password, but the server refuses every login for a while.
        let (right, agent) = target(&format!("mongodb://watcher:conn-pw-9Zq@{addr}/")).await;
        sim.apply(Action::AuthFailure {
            host: addr.to_string(),
            on: true,
        })
        .unwrap();
        let client = mongo::host_client(&right, &addr.to_string(), &agent).unwrap();
        let f = mongo::run(&client, "ping", None, t)
            .await
            .result
            .unwrap_err();
        assert_eq!(f.kind, "auth", "{}", f.message);
        let opened = C::get(&counters(&sim, addr).conns_created);
        // Within the backoff, callers get the last error without a new socket.
        for _ in 0..5 {
            let f = mongo::run(&client, "ping", None, t)
                .await
                .result
                .unwrap_err();
            assert_eq!(f.kind, "auth");
        }
        assert_eq!(C::get(&counters(&sim, addr).conns_created), opened);
        sim.apply(Action::AuthFailure {
            host: addr.to_string(),
            on: false,
        })
        .unwrap();
        let mut ok = false;
        for _ in 0..40 {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            if mongo::run(&client, "ping", None, t).await.result.is_ok() {
                ok = true;
                break;
            }
        }
        assert!(ok, "the connection never came back after the backoff");
    });
}
