//! Discovery and the monitors share one logged-in connection per host: a
//! host is authenticated once per agent run, however often discovery walks
//! the deployment again, and costs one socket.
//!
//! The simulator counts every SCRAM conversation (`saslStart` and `hello`'s
//! speculative authentication) and every accepted connection per host.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use mongomon::actors::supervisor::{ListHosts, Shutdown, Supervisor};
use mongomon::sim::{Action, SimHandle, Simulator, Topology};
use serde::Deserialize;

mod common;

const TOPOLOGY: &str = r#"
[[users]]
name = "mongomon"
password = "auth-once-pw"

[[sharded_cluster]]
name = "c1"
version = "7.0.12"
config_server = { name = "cfg", members = [{ host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }] }
[[sharded_cluster.shards]]
name = "shard01"
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard02"
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
"#;

#[derive(Deserialize)]
struct Step {
    action: Action,
}

/// Waits until the agent monitors exactly the hosts the simulator serves.
async fn all_monitored(sup: &actix::Addr<Supervisor>, sim: &SimHandle, limit: Duration) {
    let start = Instant::now();
    loop {
        let got: BTreeSet<String> = sup
            .send(ListHosts)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.host)
            .collect();
        let want = common::live_hosts(sim);
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "monitored {got:?}, the simulator serves {want:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn each_host_is_authenticated_once_across_re_expansions() {
    let sim = Arc::new(Simulator::start(Topology::from_toml_str(TOPOLOGY).unwrap()).unwrap());
    let seed = sim.mongos("c1")[0];
    let receiver = common::receiver::Receiver::accepting();
    let config = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\nspool_dir = \"\"\n\
         [discovery]\ninterval_secs = 1\nremoval_grace_secs = 0\n\
         [[targets]]\nname = \"c1\"\nuri = \"mongodb://mongomon:auth-once-pw@{seed}/?authSource=admin\"\n\
         [upload]\nurl = \"{}\"\n",
        receiver.url()
    );
    let raw = mongomon::config::load_str(&config, &serde_json::json!({})).unwrap();
    let settings = mongomon::config::validate(&raw, None).unwrap();

    let sys = actix_rt::System::new();
    sys.block_on(async {
        let stats = Arc::new(mongomon::stats::AgentStats::default());
        let sup = Supervisor::new(settings, None, mongomon::logging::discard(), None, stats)
            .expect("supervisor")
            .start();
        all_monitored(&sup, &sim, Duration::from_secs(30)).await;
        assert_eq!(common::live_hosts(&sim).len(), 11);
        // Several periodic re-expansions (every second) over the monitored
        // hosts, then one caused by the topology: a new shard.
        actix_rt::time::sleep(Duration::from_secs(4)).await;
        let step: Step = toml::from_str(
            r#"action = { action = "add_shard", cluster = "c1", name = "shard03", members = 3 }"#,
        )
        .unwrap();
        let s = sim.clone();
        tokio::task::spawn_blocking(move || s.apply(step.action))
            .await
            .unwrap()
            .unwrap();
        all_monitored(&sup, &sim, Duration::from_secs(30)).await;
        assert_eq!(common::live_hosts(&sim).len(), 14);
        actix_rt::time::sleep(Duration::from_secs(3)).await;
        sup.do_send(Shutdown);
    });

    let mut report = Vec::new();
    let mut bad = Vec::new();
    for (addr, c) in sim.counters() {
        use mongomon::sim::state::HostCounters as C;
        let auths = C::get(&c.auth_handshakes);
        let conns = C::get(&c.conns_created);
        let commands = C::get(&c.commands);
        report.push(format!(
            "{addr}: {auths} auth, {conns} conns, {commands} cmds"
        ));
        // Every host was sampled for seconds (so it was logged in) ...
        if commands < 5 {
            bad.push(format!("{addr} answered only {commands} commands"));
        }
        // ... over one login and one socket.
        if auths != 1 || conns != 1 {
            bad.push(format!(
                "{addr}: {auths} authentications and {conns} connections"
            ));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}\nall hosts: {report:#?}");
}
