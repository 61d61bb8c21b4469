//! Time from start to a complete host set, from one mongos, for simulated
//! sharded clusters of 2 and 100 shards × 3 members (plus a 3-member config
//! set and 2 mongos): the whole agent runs in-process and the clock stops
//! when the supervisor monitors every host of the cluster.
//!
//! `cargo bench --bench discovery` (add `-- 2` or `-- 100` for one size).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use mongomon::actors::supervisor::{ListHosts, Shutdown, Supervisor};
use mongomon::sim::{Simulator, Topology};

fn topology(shards: usize) -> String {
    let mut t = String::from(
        "[simulator]\naddresses = \"auto\"\nauto_base = \"127.90.0.1\"\nauto_port = 27017\n\
         [[sharded_cluster]]\nname = \"c\"\nversion = \"7.0.12\"\n\
         [sharded_cluster.config_server]\nname = \"cfg\"\nmembers = [{}, {}, {}]\n",
    );
    for i in 0..shards {
        t.push_str(&format!(
            "[[sharded_cluster.shards]]\nname = \"shard{i:03}\"\nmembers = [{{}}, {{}}, {{}}]\n"
        ));
    }
    t.push_str("[[sharded_cluster.mongos]]\n[[sharded_cluster.mongos]]\n");
    t
}

fn measure(shards: usize) -> (usize, Duration) {
    mongomon::install_crypto_provider();
    let sim = Simulator::start(Topology::from_toml_str(&topology(shards)).expect("topology"))
        .expect("simulator");
    let want = shards * 3 + 3 + 2;
    let seed = sim.mongos("c")[0];
    // A receiver that takes anything, so the upload path costs what it costs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{BufReader, Write};
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().expect("clone");
                let mut r = BufReader::new(s);
                while let Ok(Some(_)) = mongomon::http_body::read_body(&mut r) {
                    if w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let text = format!(
        "[agent]\ninterval_secs = 10\nspool_dir = \"\"\n[[targets]]\nname = \"c\"\nuri = \"mongodb://{seed}\"\n[upload]\nurl = \"http://127.0.0.1:{port}/w\"\n"
    );
    let raw = mongomon::config::load_str(&text, &serde_json::json!({})).expect("config");
    let settings = mongomon::config::validate(&raw, None).expect("settings");
    let sys = actix_rt::System::new();
    let result = sys.block_on(async move {
        let start = Instant::now();
        let stats = Arc::new(mongomon::stats::AgentStats::default());
        let sup = Supervisor::new(settings, None, mongomon::logging::discard(), None, stats)
            .expect("supervisor")
            .start();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(120) {
            n = sup.send(ListHosts).await.map(|h| h.len()).unwrap_or(0);
            if n >= want {
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        let took = start.elapsed();
        sup.do_send(Shutdown);
        (n, took)
    });
    sim.shutdown();
    assert_eq!(result.0, want, "complete host set");
    result
}

fn main() {
    let only: Option<usize> = std::env::args().skip(1).find_map(|a| a.parse().ok());
    println!("{:>7} {:>7} {:>14}", "shards", "hosts", "complete_after");
    for shards in [2usize, 100] {
        if only.is_some_and(|o| o != shards) {
            continue;
        }
        let (hosts, took) = measure(shards);
        println!(
            "{shards:>7} {hosts:>7} {:>12.0}ms",
            took.as_secs_f64() * 1000.0
        );
    }
}
