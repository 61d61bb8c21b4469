//! One process serving the 10,000-host example fleet; serverStatus sampling
//! across many hosts stays cheap. Bounded: ~10k listeners, 500 requests.

#[path = "sim_common/mod.rs"]
mod common;
use bson::doc;
use common::*;
use mongomon::sim::{Simulator, Topology};
use std::time::{Duration, Instant};

#[tokio::test]
async fn ten_thousand_hosts_in_one_process() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sim/fleet-10k.toml");
    let mut topo = Topology::from_file(std::path::Path::new(path)).unwrap();
    // A base of our own so a concurrently running copy of the example elsewhere
    // on this machine cannot collide with the test.
    topo.simulator.auto_base = "127.201.0.1".into();
    topo.simulator.control = Some("off".into());
    let t0 = Instant::now();
    let sim = Simulator::start(topo).expect("10k hosts start");
    let started = t0.elapsed();
    assert!(
        sim.control_addr().is_none(),
        "control = \"off\" disables the endpoint"
    );
    let hosts = sim.hosts();
    assert_eq!(hosts.len(), 10_000);
    assert!(hosts
        .iter()
        .all(|h| h.addr.ip().to_string().starts_with("127.201.") && h.addr.port() == 27017));
    assert!(started < Duration::from_secs(30), "start took {started:?}");

    // Sample serverStatus on 500 hosts spread over the fleet, 50 at a time.
    let t1 = Instant::now();
    let step = hosts.len() / 500;
    let picked: Vec<_> = hosts
        .iter()
        .step_by(step)
        .take(500)
        .map(|h| (h.addr, h.version.clone()))
        .collect();
    for chunk in picked.chunks(50) {
        let mut tasks = Vec::new();
        for (addr, version) in chunk.iter().cloned() {
            tasks.push(tokio::spawn(async move {
                let d = raw_cmd(addr, doc! {"serverStatus": 1, "$db": "admin"})
                    .await
                    .expect("serverStatus");
                assert_eq!(d.get_str("host").unwrap(), addr.to_string());
                assert_eq!(d.get_str("version").unwrap(), version);
                bson::to_vec(&d).unwrap().len()
            }));
        }
        for t in tasks {
            let size = tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("bounded")
                .expect("task");
            assert!(size > 30_000, "serverStatus only {size} bytes");
        }
    }
    let sampled = t1.elapsed();
    eprintln!("10k fleet: start {started:?}, 500 serverStatus samples {sampled:?}");
    assert!(sampled < Duration::from_secs(30));
    // A fleet replica set elects and reports like any other.
    let c = direct(sim.primary("fleet-17").unwrap()).await;
    assert!(run(&c, "admin", doc! {"hello": 1})
        .await
        .unwrap()
        .get_bool("isWritablePrimary")
        .unwrap());
    sim.shutdown();
}
