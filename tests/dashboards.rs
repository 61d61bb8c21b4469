//! The Grafana dashboards of `dashboards/` and the alert rules of
//! `alerts/`, against what mongomon really ships.
//!
//! The real agent monitors the in-process simulator (a replica set and a
//! sharded cluster) at a 1 s interval and delivers to a real
//! VictoriaMetrics (line protocol) and a real Prometheus (remote-write) at
//! once, with the `standard` field profile (what `full` sends is a superset).
//! Then, on both receivers, every dashboard's template variables are
//! resolved with their own `label_values(...)` queries, and every panel
//! query, with the variables substituted, must return data: a panel that
//! returns nothing fails the test. Every alert expression must evaluate,
//! name only series that exist, and fire exactly where the simulator was
//! made to deserve it (a lagging member, a short oplog window, a restart).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::servers::Prometheus;
use common::{http, wait_for, Agent, Victoria};
use mongomon::sim::{SimHandle, Simulator, Topology};
use serde_json::Value;

/// rs0: member 1 lags 45 s and the oplog holds 2 hours (both alerts fire);
/// c1: 2 shards of 3, one config server, one mongos, healthy.
const TOPOLOGY: &str = r#"
[rates]
insert = 40.0
query = 150.0
update = 25.0
delete = 5.0
getmore = 10.0
command = 300.0

[[replica_set]]
name = "rs0"
version = "7.0.12"
oplog_window_secs = 7200
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0", lag_secs = 45 }, { host = "127.0.0.1:0" }]

[[sharded_cluster]]
name = "c1"
version = "6.0.14"
[sharded_cluster.config_server]
name = "cfg"
oplog_window_secs = 172800
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard01"
oplog_window_secs = 172800
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard02"
oplog_window_secs = 172800
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
"#;

/// What Grafana puts in place of its built-in variables: windows that the
/// 1 s samples of a few seconds cover.
const BUILTINS: [(&str, &str); 3] = [
    ("$__rate_interval", "30s"),
    ("$__interval", "5s"),
    ("$__range", "1m"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dashboard_files() -> Vec<PathBuf> {
    let files = common::project_files("dashboards", "json");
    assert!(files.len() >= 3, "dashboards: {files:?}");
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read a dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn variables(d: &Value) -> &[Value] {
    d["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every panel, those inside collapsed rows too.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

/// `label_values(selector, label)` of a query variable.
fn label_values_query(v: &Value) -> (String, String) {
    let q = v["definition"]
        .as_str()
        .or_else(|| v["query"]["query"].as_str())
        .or_else(|| v["query"].as_str())
        .unwrap_or_default();
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("variable {}: not label_values(...): {q}", v["name"]));
    match inner.rsplit_once(',') {
        Some((sel, label)) => (sel.trim().to_string(), label.trim().to_string()),
        None => (String::new(), inner.trim().to_string()),
    }
}

/// Replaces `$name` and `${name}`, longest names first.
fn substitute(expr: &str, values: &BTreeMap<String, String>) -> String {
    let mut keys: Vec<&String> = values.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut e = expr.to_string();
    for (k, v) in BUILTINS {
        e = e.replace(k, v);
    }
    for k in keys {
        e = e.replace(&format!("${{{k}}}"), &values[k]);
        e = e.replace(&format!("${k}"), &values[k]);
    }
    e
}

#[test]
fn dashboards_are_valid_grafana_dashboards() {
    let mut uids = BTreeSet::new();
    for path in dashboard_files() {
        let f = name_of(&path);
        let d = load(&path);
        assert!(
            d["schemaVersion"].as_i64().is_some_and(|v| v >= 36),
            "{f}: schemaVersion"
        );
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{f}: uid"));
        assert!(
            !uid.is_empty() && uid.len() <= 40,
            "{f}: uid of 1 to 40 characters"
        );
        assert!(uids.insert(uid.to_string()), "{f}: uid {uid} used twice");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{f}");
        assert!(d["id"].is_null(), "{f}: id is null, Grafana assigns it");

        // A datasource variable of type prometheus; every query variable
        // and every panel and target uses it.
        let vars = variables(&d);
        let ds = vars
            .iter()
            .find(|v| v["type"] == "datasource")
            .unwrap_or_else(|| panic!("{f}: no datasource variable"));
        assert_eq!(ds["query"], "prometheus", "{f}");
        assert_eq!(ds["name"], "datasource", "{f}");
        let uses_ds = |x: &Value| x["datasource"]["uid"] == "${datasource}";
        let mut names: BTreeSet<String> = BTreeSet::new();
        for v in vars {
            let name = v["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{f}: unnamed variable"));
            assert!(names.insert(name.to_string()), "{f}: variable {name} twice");
            if v["type"] == "query" {
                assert!(uses_ds(v), "{f}: variable {name} must use ${{datasource}}");
                label_values_query(v);
            }
        }

        let panels = panels(&d);
        assert!(
            (8..=15).contains(&panels.len()),
            "{f}: {} panels, want 8 to 15",
            panels.len()
        );
        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(i64, i64), String> = BTreeMap::new();
        for p in &panels {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{f}: panel without title");
            assert!(
                ids.insert(p["id"].as_i64().expect("panel id")),
                "{f}: id twice"
            );
            assert!(uses_ds(p), "{f}/{title}: panel datasource");
            // On the 24-column grid, and overlapping no other panel.
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().unwrap(),
                g["y"].as_i64().unwrap(),
                g["w"].as_i64().unwrap(),
                g["h"].as_i64().unwrap(),
            );
            assert!(x >= 0 && w > 0 && h > 0 && x + w <= 24, "{f}/{title}: {g}");
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.to_string()) {
                        panic!("{f}: {title} overlaps {other}");
                    }
                }
            }
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{f}/{title}: no query");
            let mut refs = BTreeSet::new();
            for t in targets {
                assert!(uses_ds(t), "{f}/{title}: target datasource");
                assert!(
                    refs.insert(t["refId"].as_str().expect("refId")),
                    "{f}/{title}"
                );
                let expr = t["expr"].as_str().unwrap_or_default();
                assert!(!expr.is_empty(), "{f}/{title}: empty expr");
                // Every variable it uses is defined.
                let values: BTreeMap<String, String> =
                    names.iter().map(|n| (n.clone(), "x".to_string())).collect();
                let e = substitute(expr, &values);
                assert!(
                    !e.contains('$'),
                    "{f}/{title}: undefined variable in {expr}"
                );
            }
        }
    }
}

/// A receiver's Prometheus query API.
struct Api {
    name: &'static str,
    port: u16,
}

impl Api {
    fn get(&self, path: &str) -> Result<Value, String> {
        let r = http::get(self.port, path).map_err(|e| format!("{}: {e}", self.name))?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| {
            format!(
                "{}: HTTP {} {e}: {}",
                self.name,
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        })?;
        if r.status != 200 || v["status"] != "success" {
            return Err(format!("{}: HTTP {}: {v}", self.name, r.status));
        }
        Ok(v["data"].clone())
    }

    /// Makes what was just written searchable (VictoriaMetrics buffers it).
    fn flush(&self) {
        let _ = http::get(self.port, "/internal/force_flush");
    }

    /// An instant query's result vector (a scalar counts as one result).
    fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let data = self.get(&format!("/api/v1/query?query={}", http::encode(promql)))?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            Some("scalar") => Ok(vec![data["result"].clone()]),
            other => Err(format!("{}: result type {other:?}", self.name)),
        }
    }

    fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let mut path = format!("/api/v1/label/{label}/values");
        if !selector.is_empty() {
            path.push_str(&format!("?match[]={}", http::encode(selector)));
        }
        let data = self.get(&path)?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }
}

/// The values this test wants for the dashboards' variables: the sharded
/// cluster, a shard and its primary, so that every panel has something to
/// show (a mongos has no oplog, a plain replica set no shards).
fn preferred(sim: &SimHandle) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cluster".to_string(), "c1".to_string()),
        ("replset".to_string(), "shard01".to_string()),
        (
            "host".to_string(),
            sim.primary("shard01").expect("shard01 primary").to_string(),
        ),
    ])
}

/// Every panel query of every dashboard on `api`, once with the preferred
/// variable values and once more with "All" where a variable offers it.
/// Returns what failed: errors, empty results, missing variable values.
fn check_dashboards(api: &Api, want: &BTreeMap<String, String>) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    api.flush();
    for path in dashboard_files() {
        let f = name_of(&path);
        let d = load(&path);
        let vars = variables(&d);
        let mut runs = vec![false];
        if vars.iter().any(|v| v["includeAll"] == true) {
            runs.push(true);
        }
        for all in runs {
            let mut values: BTreeMap<String, String> = BTreeMap::new();
            for v in vars {
                let name = v["name"].as_str().unwrap().to_string();
                if v["type"] == "datasource" {
                    values.insert(name, api.name.to_string());
                    continue;
                }
                let (selector, label) = label_values_query(v);
                let selector = substitute(&selector, &values);
                let offered = match api.label_values(&label, &selector) {
                    Ok(o) => o,
                    Err(e) => {
                        failures.push(format!("{f}: variable {name}: {e}"));
                        Vec::new()
                    }
                };
                let chosen = if all && v["includeAll"] == true {
                    v["allValue"].as_str().unwrap_or(".*").to_string()
                } else {
                    let w = want
                        .get(&name)
                        .cloned()
                        .unwrap_or_else(|| offered.first().cloned().unwrap_or_default());
                    if !offered.contains(&w) {
                        failures.push(format!(
                            "{f}: variable {name} ({selector}) offers {offered:?}, not {w}"
                        ));
                    }
                    w
                };
                values.insert(name, chosen);
            }
            for p in panels(&d) {
                for t in p["targets"].as_array().into_iter().flatten() {
                    let expr = substitute(t["expr"].as_str().unwrap_or_default(), &values);
                    checked += 1;
                    let what = format!(
                        "{f} / {} / {} (variables {values:?})",
                        p["title"].as_str().unwrap_or_default(),
                        t["refId"].as_str().unwrap_or_default()
                    );
                    match api.query(&expr) {
                        Ok(r) if r.is_empty() => failures.push(format!("{what}: no data: {expr}")),
                        Ok(_) => {}
                        Err(e) => failures.push(format!("{what}: {e}: {expr}")),
                    }
                }
            }
        }
    }
    (checked, failures)
}

/// `(alert, expr)` of every rule in the rules file (single-line and block
/// `expr:` values).
fn alert_exprs() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(root().join("alerts/mongomon.rules.yml")).expect("read the rules");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut alert = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if let Some(a) = t.strip_prefix("- alert:") {
            alert = a.trim().to_string();
        } else if let Some(v) = t.strip_prefix("expr:") {
            let v = v.trim();
            let expr = if v == "|" || v == ">" || v == "|-" || v == ">-" {
                let mut body = Vec::new();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let nt = next.trim_start();
                    if !nt.is_empty() && next.len() - nt.len() <= indent {
                        break;
                    }
                    body.push(nt);
                    i += 1;
                }
                body.join("\n")
            } else {
                v.to_string()
            };
            out.push((alert.clone(), expr));
        }
        i += 1;
    }
    assert!(out.len() >= 10, "{} alert expressions", out.len());
    out
}

/// The `mongodb_*` and `mongomon_*` series names an expression reads.
fn series_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts = (expr[i..].starts_with("mongodb_") || expr[i..].starts_with("mongomon_"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if starts {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            out.insert(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// The label values of `label` in a query result.
fn labels(result: &[Value], label: &str) -> BTreeSet<String> {
    result
        .iter()
        .filter_map(|r| r["metric"][label].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_panel_and_alert_query_works_on_victoriametrics_and_prometheus() {
    let started = Instant::now();
    let sim = Simulator::start(Topology::from_toml_str(TOPOLOGY).expect("topology"))
        .expect("simulator starts");
    let vm = Victoria::start();
    let prom = Prometheus::start();
    let rs0 = sim.set_members("rs0");
    let mongos = sim.mongos("c1")[0];
    let config = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\nshutdown_timeout_secs = 10\n\
         [collect]\nprofile = \"standard\"\n\
         [[upload]]\nname = \"vm\"\nurl = \"{}\"\nformat = \"influx\"\nmax_batch_age_ms = 200\n\
         [[upload]]\nname = \"prometheus\"\nurl = \"{}\"\nformat = \"remote_write\"\nmax_batch_age_ms = 200\n\
         [[targets]]\nname = \"c1\"\nuri = \"mongodb://{mongos}\"\n\
         [[targets]]\nname = \"rs0\"\nuri = \"mongodb://{}\"\n",
        vm.write_url(),
        prom.write_url(),
        rs0[0]
    );
    let mut agent = Agent::start(&config);
    let apis = [
        Api {
            name: "victoriametrics",
            port: vm.port,
        },
        Api {
            name: "prometheus",
            port: prom.port,
        },
    ];

    // Every simulated host arrives at both receivers.
    let hosts: BTreeSet<String> = sim.hosts().iter().map(|h| h.addr.to_string()).collect();
    for api in &apis {
        wait_for(
            &format!("mongodb_up of all {} hosts in {}", hosts.len(), api.name),
            Duration::from_secs(30),
            || {
                api.flush();
                let seen = labels(&api.query("mongodb_up").ok()?, "host");
                hosts.is_subset(&seen).then_some(())
            },
        );
    }

    // A member restarts: down, then up with its uptime starting over.
    let restarted = rs0[2];
    sim.host_down(restarted).expect("down");
    std::thread::sleep(Duration::from_secs(2));
    sim.host_up(restarted).expect("up");

    // Every panel of every dashboard returns data on both receivers. Rate
    // windows need a few samples: retry until they are there.
    let want = preferred(&sim);
    let mut checked = 0;
    for api in &apis {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (n, failures) = check_dashboards(api, &want);
            if failures.is_empty() {
                checked += n;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} panel queries fail on {}:\n{}\nagent log:\n{}",
                failures.len(),
                api.name,
                failures.join("\n"),
                agent.log()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    assert!(checked >= 100, "{checked} panel queries checked");

    // Alert rules: every expression evaluates and reads only series that
    // exist; the three situations the simulator was given fire, nothing
    // else does.
    let lagging = rs0[1].to_string();
    let rs0_hosts: BTreeSet<String> = rs0.iter().map(|a| a.to_string()).collect();
    let rules = alert_exprs();
    for api in &apis {
        api.flush();
        let names: BTreeSet<String> = api
            .label_values("__name__", "")
            .expect("metric names")
            .into_iter()
            .collect();
        for (alert, expr) in &rules {
            for name in series_names(expr) {
                assert!(
                    names.contains(&name),
                    "{alert} reads {name}, which {} does not have",
                    api.name
                );
            }
        }
        // Rounds after the restart have to arrive first: retry a while.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            api.flush();
            let mut firing: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
            for (alert, expr) in &rules {
                let r = api
                    .query(expr)
                    .unwrap_or_else(|e| panic!("{alert} does not evaluate: {e}\n{expr}"));
                if !r.is_empty() {
                    firing.insert(alert.as_str(), r);
                }
            }
            let got =
                |a: &str, label: &str| firing.get(a).map(|r| labels(r, label)).unwrap_or_default();
            let want_fired = got("MongoDBReplicationLag", "member")
                == BTreeSet::from([lagging.clone()])
                && got("MongoDBOplogWindowShort", "host") == rs0_hosts
                && got("MongoDBRestarted", "host") == BTreeSet::from([restarted.to_string()])
                && firing.len() == 3;
            if want_fired {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "on {}, want MongoDBReplicationLag for {lagging}, MongoDBOplogWindowShort for \
                 {rs0_hosts:?}, MongoDBRestarted for {restarted} and nothing else; got {firing:#?}",
                api.name
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    assert!(agent.stop(Duration::from_secs(20)).success());
    eprintln!(
        "{checked} panel queries returned data; {} alert expressions evaluated; {:?} in all",
        rules.len() * apis.len(),
        started.elapsed()
    );
}
