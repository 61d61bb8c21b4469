//! The receivers users already run, for real, fed by one agent with four
//! `[[upload]]` targets at once (each its own queue, spool and retries):
//! InfluxDB 1.x (line protocol, `/write?db=`), Prometheus (remote-write),
//! VictoriaMetrics remote-write (`/api/v1/write`) and VictoriaMetrics JSON
//! import (`/api/v1/import`). Each must end up with the same host series
//! and the value the simulated server reported.

mod common;
mod sim_common;

use std::time::Duration;

use common::servers::{Influx, Prometheus};
use common::{wait_for, Agent, Victoria};

const TOPOLOGY: &str = r#"
[[standalone]]
host = "127.0.0.1:0"
version = "6.0.14"
[[standalone]]
host = "127.0.0.1:0"
version = "7.0.12"
"#;

#[test]
fn influxdb_prometheus_and_victoriametrics_receive_the_same_series() {
    let sim = sim_common::start(TOPOLOGY);
    let hosts: Vec<String> = sim.standalones().iter().map(|a| a.to_string()).collect();
    let influx = Influx::start();
    let prom = Prometheus::start();
    let vm = Victoria::start();
    let mut config = String::from(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\n",
    );
    for (i, h) in hosts.iter().enumerate() {
        config.push_str(&format!(
            "[[targets]]\nname = \"s{i}\"\nuri = \"mongodb://{h}\"\n"
        ));
    }
    for (name, url, format) in [
        ("influx", influx.write_url(), "influx"),
        ("prometheus", prom.write_url(), "remote_write"),
        (
            "vm-rw",
            format!("http://127.0.0.1:{}/api/v1/write", vm.port),
            "remote_write",
        ),
        (
            "vm-import",
            format!("http://127.0.0.1:{}/api/v1/import", vm.port),
            "vm_import",
        ),
    ] {
        config.push_str(&format!(
            "[[upload]]\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"{format}\"\nmax_batch_age_ms = 200\n"
        ));
    }
    let mut agent = Agent::start(&config);

    // InfluxDB: `mongodb` measurement, one series per host, up = 1.
    let series = wait_for(
        "InfluxDB has mongodb.up for both hosts",
        Duration::from_secs(60),
        || {
            let s = influx.query("SELECT last(up) FROM mongodb GROUP BY host");
            (s.len() == 2).then_some(s)
        },
    );
    for s in &series {
        assert!(hosts.iter().any(|h| s["tags"]["host"] == h.as_str()), "{s}");
        assert_eq!(s["values"][0][1], 1, "{s}");
    }
    let conns = wait_for("InfluxDB has serverStatus", Duration::from_secs(30), || {
        let s = influx
            .query("SELECT last(connections_current) FROM mongodb_serverstatus GROUP BY host");
        (s.len() == 2).then_some(s)
    });
    for s in &conns {
        assert!(s["values"][0][1].as_f64().is_some_and(|c| c >= 1.0), "{s}");
    }

    // Prometheus: remote-write series named like VictoriaMetrics names them.
    let up = wait_for(
        "Prometheus has mongodb_up for both hosts",
        Duration::from_secs(60),
        || {
            let r = prom.query("mongodb_up");
            (r.len() == 2).then_some(r)
        },
    );
    for r in &up {
        assert!(
            hosts.iter().any(|h| r["metric"]["host"] == h.as_str()),
            "{r}"
        );
        assert_eq!(r["value"][1], "1", "{r}");
        assert!(r["metric"]["version"].is_string(), "labels carried: {r}");
    }
    wait_for(
        "Prometheus has serverStatus series",
        Duration::from_secs(30),
        || (prom.query("mongodb_serverstatus_connections_current").len() == 2).then_some(()),
    );

    // VictoriaMetrics got both remote-write and import: each series twice,
    // once per path, told apart by nothing but arriving twice per round.
    wait_for(
        "VictoriaMetrics has mongodb_up from both paths",
        Duration::from_secs(60),
        || {
            let s = vm.export("mongodb_up");
            let ok = hosts.iter().all(|h| {
                s.iter()
                    .filter(|x| x.label("host") == Some(h.as_str()))
                    .any(|x| x.values.len() >= 2)
            });
            ok.then_some(())
        },
    );
    wait_for("server versions as labels", Duration::from_secs(30), || {
        let versions: Vec<String> = vm
            .export("mongodb_serverstatus_uptime")
            .iter()
            .filter_map(|s| s.label("version").map(str::to_string))
            .collect();
        (versions.contains(&"6.0.14".to_string()) && versions.contains(&"7.0.12".to_string()))
            .then_some(())
    });

    // Each target has its own counters in the stream.
    let names = wait_for("per-target self-metrics", Duration::from_secs(30), || {
        let names: std::collections::BTreeSet<String> = vm
            .export("mongomon_upload_batches_sent")
            .iter()
            .filter_map(|s| s.label("upload").map(str::to_string))
            .collect();
        (names.len() >= 4).then_some(names)
    });
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["influx", "prometheus", "vm-import", "vm-rw"]
    );
    // Nothing was refused or retried on the way: every receiver took every batch.
    let log = agent.log();
    assert!(
        !log.contains("Upload failed") && !log.contains("refused") && !log.contains("ERRO"),
        "{log}"
    );
    assert!(
        agent.stop(Duration::from_secs(20)).success(),
        "{}",
        agent.log()
    );
}
