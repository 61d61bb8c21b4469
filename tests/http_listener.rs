//! The agent's HTTP listener (`[http]`) and `mongomon status`, with the
//! real binary, the simulator behind it and a real Prometheus scraping it.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{self, Response};
use common::receiver::Receiver;
use common::servers::Prometheus;
use common::{free_port, mongomon, wait_for, Agent};
use mongomon::sim::{Action, SimHandle, Simulator, Topology};
use serde_json::Value;

/// rs0: three members; c1: a config server, one shard of one member, two
/// routers (one of which is removed by the test).
const TOPOLOGY: &str = r#"
[[replica_set]]
name = "rs0"
version = "7.0.12"
members = [{ host = "127.0.0.1:0", priority = 2.0 }, { host = "127.0.0.1:0" }, { host = "127.0.0.1:0" }]

[[sharded_cluster]]
name = "c1"
version = "6.0.14"
[sharded_cluster.config_server]
name = "cfg"
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.shards]]
name = "shard01"
members = [{ host = "127.0.0.1:0" }]
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
[[sharded_cluster.mongos]]
host = "127.0.0.1:0"
"#;

/// `n` standalones on free ports, and their addresses.
fn standalones(n: usize) -> (SimHandle, Vec<String>) {
    common::deploy::standalones(n)
}

/// An agent config: 1 s rounds, the listener on `port`, `extra` lines
/// appended (more sections, targets).
fn config(port: u16, upload: &str, extra: &str) -> String {
    format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\n\
         [discovery]\ninterval_secs = 1\nremoval_grace_secs = 0\n\
         [upload]\nname = \"rcv\"\nurl = \"{upload}\"\nformat = \"influx\"\nmax_batch_age_ms = 200\nretry_max_ms = 500\n\
         {extra}\n[http]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"
    )
}

fn standalone_targets(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| {
            format!("[[targets]]\nname = \"{h}\"\nuri = \"mongodb://{h}/\"\ndiscover = false\n")
        })
        .collect()
}

/// `http` settings appended to the `[http]` table that [`config`] ends with.
fn with_http(cfg: String, more: &str) -> String {
    format!("{cfg}{more}\n")
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    http::request_with(port, "GET", path, headers, &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The value of the series with exactly these `labels` in a text body.
fn series_value(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_metrics(
    port: u16,
    what: &str,
    headers: &[(&str, &str)],
    f: impl Fn(&str) -> bool,
) -> String {
    wait_for(what, Duration::from_secs(40), || {
        let r = http::request_with(port, "GET", "/metrics", headers, &[]).ok()?;
        let t = r.text();
        (r.status == 200 && f(&t)).then_some(t)
    })
}

fn prom_value(prom: &Prometheus, q: &str) -> Vec<(String, f64)> {
    prom.query(q)
        .iter()
        .filter_map(|r| {
            let host = r["metric"]["host"].as_str().unwrap_or_default().to_string();
            let v = r["value"][1].as_str()?.parse().ok()?;
            Some((host, v))
        })
        .collect()
}

#[test]
fn prometheus_scrapes_every_host_sees_one_go_down_and_a_removed_one_disappear() {
    let sim = Simulator::start(Topology::from_toml_str(TOPOLOGY).expect("topology"))
        .expect("simulator starts");
    let rcv = Receiver::accepting();
    let port = free_port();
    let rs0 = sim.set_members("rs0");
    let routers = sim.mongos("c1");
    let cfg = config(
        port,
        &rcv.url(),
        &format!(
            "[[targets]]\nname = \"c1\"\nuri = \"mongodb://{}\"\n[[targets]]\nname = \"rs0\"\nuri = \"mongodb://{}\"\n",
            routers[0], rs0[0]
        ),
    );
    let agent = Agent::start(&cfg);
    let prom = Prometheus::scraping(&format!("127.0.0.1:{port}"), None);

    // Every host, with mongodb_up 1, through Prometheus.
    let hosts: BTreeSet<String> = sim.hosts().iter().map(|h| h.addr.to_string()).collect();
    assert_eq!(hosts.len(), 7);
    wait_for(
        "every host up in Prometheus",
        Duration::from_secs(60),
        || {
            let up: BTreeSet<String> = prom_value(&prom, "mongodb_up == 1")
                .into_iter()
                .map(|(h, _)| h)
                .collect();
            hosts.is_subset(&up).then_some(())
        },
    );

    // Values as the simulator serves them: its serverStatus, read with the
    // official driver, against what PromQL returns for the same host.
    let primary = sim.primary("rs0").expect("rs0 primary");
    let served = common::server_status(&format!("mongodb://{primary}"));
    let mem_bits = served
        .get_document("mem")
        .ok()
        .and_then(|m| m.get("bits"))
        .and_then(|b| b.as_i32().map(f64::from).or(b.as_i64().map(|x| x as f64)))
        .expect("mem.bits");
    let uptime = served
        .get("uptime")
        .and_then(|u| {
            u.as_f64()
                .or(u.as_i64().map(|x| x as f64))
                .or(u.as_i32().map(f64::from))
        })
        .expect("uptime");
    let q = |expr: &str| -> f64 {
        let r = prom_value(&prom, expr);
        assert_eq!(r.len(), 1, "{expr}: {r:?}");
        r[0].1
    };
    let sel = format!("{{host=\"{primary}\",cluster=\"rs0\",replset=\"rs0\",role=\"primary\"}}");
    assert_eq!(q(&format!("mongodb_serverstatus_mem_bits{sel}")), mem_bits);
    let scraped_uptime = q(&format!("mongodb_serverstatus_uptime{sel}"));
    assert!(
        (scraped_uptime - uptime).abs() <= 15.0,
        "uptime {scraped_uptime} scraped, {uptime} served"
    );
    assert_eq!(q(&format!("mongodb_buildinfo_version_major{sel}")), 7.0);
    assert_eq!(
        q(&format!(
            "mongodb_replset_member_state{{host=\"{primary}\",member=\"{primary}\"}}"
        )),
        1.0
    );
    // The agent's own counters are there too.
    assert!(q("mongomon_samples_taken") > 0.0);

    // A member goes down: mongodb_up 0, and no stale serverStatus for it.
    let down = rs0.iter().find(|a| **a != primary).copied().unwrap();
    sim.host_down(down).expect("down");
    wait_for(
        "mongodb_up 0 for the downed member",
        Duration::from_secs(40),
        || {
            let r = prom_value(&prom, &format!("mongodb_up{{host=\"{down}\"}}"));
            (r.len() == 1 && r[0].1 == 0.0).then_some(())
        },
    );
    let text = wait_metrics(port, "no serverStatus of the downed member", &[], |t| {
        !t.contains(&format!(
            "mongodb_serverstatus_uptime{{cluster=\"rs0\",host=\"{down}\""
        ))
    });
    assert!(
        text.contains(&format!("host=\"{down}\"")),
        "its mongodb_up stays"
    );

    // A router and a member leave the topology: their series disappear,
    // from /metrics and then from Prometheus (stale after the next scrape).
    sim.apply(Action::RemoveMongos {
        cluster: "c1".into(),
        host: routers[1].to_string(),
    })
    .expect("remove mongos");
    let member = rs0
        .iter()
        .find(|a| **a != primary && **a != down)
        .copied()
        .unwrap();
    sim.apply(Action::RemoveMember {
        set: "rs0".into(),
        host: member.to_string(),
    })
    .expect("remove member");
    for gone in [routers[1], member] {
        let needle = format!("host=\"{gone}\"");
        wait_metrics(port, &format!("{gone} gone from /metrics"), &[], |t| {
            !t.contains(&needle)
        });
        wait_for(
            &format!("{gone} gone from Prometheus"),
            Duration::from_secs(30),
            || {
                prom_value(&prom, &format!("mongodb_up{{host=\"{gone}\"}}"))
                    .is_empty()
                    .then_some(())
            },
        );
    }
    // The rest is still there.
    assert_eq!(
        prom_value(&prom, &format!("mongodb_up{{host=\"{}\"}}", routers[0])).len(),
        1,
        "log:\n{}",
        agent.log()
    );
}

#[test]
fn metrics_answer_openmetrics_when_asked_and_the_text_format_otherwise() {
    let (_sim, hosts) = standalones(1);
    let rcv = Receiver::accepting();
    let port = free_port();
    let _agent = Agent::start(&config(port, &rcv.url(), &standalone_targets(&hosts)));
    let up = format!("mongodb_up{{cluster=\"{0}\",host=\"{0}\"", hosts[0]);
    let text = wait_metrics(port, "the host in /metrics", &[], |t| t.contains(&up));
    let plain = get(port, "/metrics", &[]);
    assert_eq!(
        plain.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(text.contains("# TYPE mongodb_up untyped\n"), "{text}");
    assert!(!text.contains("# EOF"));

    let om = get(
        port,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    );
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = om.text();
    assert!(
        body.ends_with("# EOF\n"),
        "{}",
        &body[body.len().saturating_sub(200)..]
    );
    assert!(body.contains("# TYPE mongodb_up unknown\n"));
    assert!(body.contains(&up));
    // Every family once, its series together: the same lines as the text
    // format, in the same order, but for the type names and the end.
    let families: Vec<&str> = body.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let distinct: BTreeSet<&&str> = families.iter().collect();
    assert_eq!(families.len(), distinct.len(), "a family announced twice");
}

#[test]
fn readyz_and_status_report_a_receiver_that_is_down_and_status_exits_accordingly() {
    let (sim, hosts) = standalones(2);
    let port = free_port();
    // Nothing listens on the receiver's port, and there is no spool.
    let dead = format!("http://127.0.0.1:{}/write", free_port());
    let mut cfg = config(port, &dead, &standalone_targets(&hosts));
    cfg = cfg.replace("[agent]\n", "[agent]\nspool_dir = \"\"\n");
    let agent = Agent::start(&cfg);
    let readyz = wait_for(
        "/readyz 503 naming the receiver",
        Duration::from_secs(40),
        || {
            let r = http::get(port, "/readyz").ok()?;
            (r.status == 503 && r.text().contains("rcv")).then_some(r)
        },
    );
    let why = readyz.text();
    assert!(
        why.contains("cannot deliver") && why.contains("no spool"),
        "{why}"
    );
    assert_eq!(get(port, "/healthz", &[]).status, 200);

    let status: Value = serde_json::from_slice(&get(port, "/status", &[]).body).expect("JSON");
    assert_eq!(status["ready"], false);
    assert!(status["fleet"].is_null());
    let up = &status["uploads"][0];
    assert_eq!(up["name"], "rcv");
    assert_eq!(up["ok"], false);
    assert!(
        up["last_error"].as_str().unwrap_or("").contains("connect"),
        "{up}"
    );
    let hs = status["hosts"].as_array().expect("hosts");
    assert_eq!(hs.len(), 2);
    for h in hs {
        assert_eq!(h["up"], true, "{h}");
        assert_eq!(h["role"], "standalone");
        assert!(h["connections"].as_f64().is_some(), "{h}");
        assert!(h["age_secs"].as_f64().is_some_and(|a| a < 30.0), "{h}");
    }

    // `mongomon status` with the agent's configuration: the table, and 1
    // because the target fails.
    let cfg_path = agent.config_path();
    let cfg_arg = cfg_path.to_str().unwrap();
    let out = mongomon(&["status", "--config", cfg_arg], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("HOST") && stdout.contains(&hosts[0]),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILING") && stdout.contains("NOT READY"),
        "{stdout}"
    );
    drop(agent);

    // A receiver that takes everything, every host up: ready, exit 0;
    // then a host down: exit 1, with the host's error in the table.
    let rcv = Receiver::accepting();
    let port = free_port();
    let agent = Agent::start(&config(port, &rcv.url(), &standalone_targets(&hosts)));
    wait_for("/readyz 200", Duration::from_secs(40), || {
        http::get(port, "/readyz").ok().filter(|r| r.status == 200)
    });
    let url = format!("http://127.0.0.1:{port}");
    // Ready means one round is done; `status` wants every host sampled,
    // which the second host may take another moment for.
    let out = wait_for("every host sampled", Duration::from_secs(20), || {
        let out = mongomon(
            &["status", "--url", &url, "--config", "/nonexistent.toml"],
            &[],
        );
        (!String::from_utf8_lossy(&out.stdout).contains("not sampled yet")).then_some(out)
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let cfg_path = agent.config_path();
    let out = mongomon(&["status", "--config", cfg_path.to_str().unwrap()], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    sim.host_down(hosts[1].parse().unwrap()).expect("down");
    let out = wait_for(
        "status exits 1 for the downed host",
        Duration::from_secs(30),
        || {
            let out = mongomon(&["status", "--url", &url], &[]);
            (out.status.code() == Some(1)).then_some(out)
        },
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&hosts[1]))
        .unwrap_or_else(|| panic!("{stdout}"));
    // The round that finds the host gone fails at whichever command was on
    // the wire (the connection is cut mid-round, or the reconnect is
    // refused): the line names that step (`hello: ...`, `connect: ...`)
    // and why.
    let named = line.split_whitespace().collect::<Vec<_>>();
    assert!(
        named.windows(2).any(|w| {
            let cmd = w[0].strip_suffix(':').unwrap_or("");
            !cmd.is_empty() && cmd.chars().all(|c| c.is_ascii_alphabetic()) && !w[1].is_empty()
        }),
        "the failed command and why: {line}"
    );

    // No agent there: 2, and a sentence that says so.
    drop(agent);
    let out = mongomon(&["status", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the agent"), "{err}");
}

/// Opens a scrape and reads nothing: the body (several MB here) fills the
/// socket buffers, so the scrape stays under way until this is dropped.
fn stalled_scrape(port: u16, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("send");
    // Wait for the answer to start, so that the scrape holds its permit.
    let mut first = [0u8; 12];
    s.read_exact(&mut first).expect("answer starts");
    assert_eq!(&first, b"HTTP/1.1 200");
    s
}

fn samples_taken(port: u16, token: &str) -> f64 {
    let r = get(
        port,
        "/metrics",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    series_value(&r.text(), "mongomon_samples_taken", "agent=").expect("samples_taken")
}

#[test]
fn bad_requests_get_clear_status_codes_and_sampling_goes_on() {
    // Enough hosts with every field (`full`) that one /metrics body is
    // larger than what the socket buffers hold.
    let (_sim, hosts) = standalones(60);
    let rcv = Receiver::accepting();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "tok-Vb93x-not-for-logs";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let cfg = with_http(
        config(port, &rcv.url(), &standalone_targets(&hosts))
            .replace("interval_secs = 1\ncommand", "interval_secs = 2\ncommand"),
        &format!(
            "bearer_token_file = \"{}\"\nmax_concurrent_scrapes = 1\nmax_request_bytes = 4096\n",
            token_file.display()
        ),
    );
    let agent = Agent::start(&cfg);
    let auth = format!("Bearer {token}");
    let all = wait_metrics(
        port,
        "every host in /metrics",
        &[("Authorization", &auth)],
        |t| {
            hosts
                .iter()
                .all(|h| t.contains(&format!("mongodb_serverstatus_uptime{{cluster=\"{h}\"")))
        },
    );
    assert!(
        all.len() > 6 << 20,
        "a body of {} bytes is too small to stall",
        all.len()
    );
    let before = samples_taken(port, token);

    // Credentials: none or wrong is 401 with a challenge; /healthz needs none.
    let r = get(port, "/metrics", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"mongomon\"")
    );
    assert_eq!(
        get(
            port,
            "/status",
            &[("Authorization", "Bearer wrong-guess-Q7")]
        )
        .status,
        401
    );
    assert_eq!(
        get(port, "/readyz", &[("Authorization", "Basic dTpw")]).status,
        401
    );
    assert_eq!(get(port, "/healthz", &[]).status, 200);

    // Not HTTP at all: 400.
    let r = http::send_raw(port, b"\x16\x03\x01 this is not HTTP\r\n\r\n").expect("answer");
    assert_eq!(r.status, 400, "{}", r.head);
    // A body over http.max_request_bytes: 413, before it is read.
    let mut huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 100000000\r\n\r\n"
    )
    .into_bytes();
    huge.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let r = http::send_raw(port, &huge).expect("answer");
    assert_eq!(r.status, 413, "{}", r.head);
    // Headers far over any limit: refused with a 4xx, not served.
    let big_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "j".repeat(256 * 1024)
    );
    let r = http::send_raw(port, big_header.as_bytes()).expect("answer");
    assert!([400, 413, 431].contains(&r.status), "{}", r.head);
    // Other methods and paths.
    let r =
        http::request_with(port, "POST", "/metrics", &[("Authorization", &auth)], b"x").unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(get(port, "/nope", &[("Authorization", &auth)]).status, 404);

    // One scrape under way (the limit is 1): the next gets 429; once the
    // first is read to its end, scrapes are served again.
    let mut stalled = stalled_scrape(port, token);
    let r = get(port, "/metrics", &[("Authorization", &auth)]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        get(port, "/healthz", &[]).status,
        200,
        "the listener still answers"
    );
    let mut rest = Vec::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + Duration::from_secs(60);
    while rest.len() < all.len() / 2 && Instant::now() < deadline {
        match stalled.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
        }
    }
    drop(stalled);
    wait_for("scrapes served again", Duration::from_secs(20), || {
        http::request_with(port, "GET", "/metrics", &[("Authorization", &auth)], &[])
            .ok()
            .filter(|r| r.status == 200)
    });

    // Through all of it the agent kept sampling.
    wait_for("samples_taken grows", Duration::from_secs(20), || {
        (samples_taken(port, token) > before).then_some(())
    });
    let log = agent.log();
    assert!(!log.contains(token), "the token is in the log");
    assert!(
        !log.contains("wrong-guess-Q7"),
        "a client's guess is in the log"
    );
}

#[test]
fn the_listeners_secrets_never_show_in_status_logs_or_errors() {
    let (_sim, hosts) = standalones(1);
    let rcv = Receiver::accepting();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let password = "pw-Kx52r-distinctive";
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, password).unwrap();
    let cfg = with_http(
        config(port, &rcv.url(), &standalone_targets(&hosts)),
        &format!(
            "username = \"prom\"\npassword_file = \"{}\"\n",
            pw_file.display()
        ),
    );
    let agent = Agent::start(&cfg);
    let basic = format!(
        "Basic {}",
        base64_encode(format!("prom:{password}").as_bytes())
    );
    let status = wait_for(
        "/status with a sampled host",
        Duration::from_secs(40),
        || {
            let r = http::request_with(port, "GET", "/status", &[("Authorization", &basic)], &[])
                .ok()?;
            (r.status == 200 && r.text().contains("\"sampled\":true")).then_some(r)
        },
    );
    let encoded = basic.trim_start_matches("Basic ");
    let cfg_path = agent.config_path();
    let cfg_arg = cfg_path.to_str().unwrap();
    let mut outputs = vec![
        ("/status", status.text()),
        (
            "/metrics",
            get(port, "/metrics", &[("Authorization", &basic)]).text(),
        ),
    ];
    // The status command with the configuration (it reads the password),
    // against the agent and against nothing.
    let ok = mongomon(&["status", "--config", cfg_arg], &[]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dead_url = format!("http://127.0.0.1:{}", free_port());
    let failed = mongomon(&["status", "--config", cfg_arg, "--url", &dead_url], &[]);
    assert_eq!(failed.status.code(), Some(2));
    // With the wrong password file: refused, and said so without it.
    let wrong_cfg = dir.path().join("wrong.toml");
    let wrong_pw = dir.path().join("wrong-pw");
    std::fs::write(&wrong_pw, "pw-Wrong-Kx52r").unwrap();
    std::fs::write(
        &wrong_cfg,
        std::fs::read_to_string(&cfg_path)
            .unwrap()
            .replace(pw_file.to_str().unwrap(), wrong_pw.to_str().unwrap()),
    )
    .unwrap();
    let refused = mongomon(&["status", "--config", wrong_cfg.to_str().unwrap()], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    let shown = mongomon(&["config", "--config", cfg_arg], &[]);
    for (what, out) in [
        ("status", &ok),
        ("status (no agent)", &failed),
        ("status (refused)", &refused),
        ("config", &shown),
    ] {
        outputs.push((what, String::from_utf8_lossy(&out.stdout).into_owned()));
        outputs.push((what, String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    outputs.push(("agent log", agent.log()));
    for (what, text) in &outputs {
        for secret in [password, encoded, "Kx52r"] {
            assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
        }
    }
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_taken_address_or_bad_tls_files_stop_the_start_with_the_key_named() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        config(
            port,
            "http://127.0.0.1:1/write",
            "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n",
        ),
    )
    .unwrap();
    let root: &[&str] = if common::is_root() {
        &["--allow-root"]
    } else {
        &[]
    };
    let mut args = vec!["run", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(root);
    let out = common::mongomon_timeout(&args, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("http.listen") && err.contains("cannot listen"),
        "{err}"
    );

    let not_pem = dir.path().join("cert.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    std::fs::write(
        &cfg,
        with_http(
            config(
                free_port(),
                "http://127.0.0.1:1/write",
                "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n",
            ),
            &format!(
                "tls_cert_file = \"{0}\"\ntls_key_file = \"{0}\"\n",
                not_pem.display()
            ),
        ),
    )
    .unwrap();
    let out = common::mongomon_timeout(&args, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http.tls_cert_file"), "{err}");
    drop(holder);
}

#[test]
fn https_with_a_token_serves_curl_and_the_status_command() {
    let ca = common::servers::TestCa::new("http-listener");
    let (cert, key) = ca.server();
    let (_sim, hosts) = standalones(1);
    let rcv = Receiver::accepting();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "tok-Tls47-secret";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let cfg = with_http(
        config(port, &rcv.url(), &standalone_targets(&hosts)),
        &format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\nbearer_token_file = \"{}\"\n",
            cert.display(),
            key.display(),
            token_file.display()
        ),
    );
    let agent = Agent::start(&cfg);
    let curl = |path: &str, auth: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(ca.ca())
            .arg(format!("https://127.0.0.1:{port}{path}"));
        if auth {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let out = cmd.output().expect("curl (apt-get install curl)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let up = format!("mongodb_up{{cluster=\"{0}\",host=\"{0}\"", hosts[0]);
    let body = wait_for("/metrics over https", Duration::from_secs(40), || {
        let b = curl("/metrics", true);
        (b.ends_with("\n200") && b.contains(&up)).then_some(b)
    });
    assert!(body.contains("mongomon_samples_taken"), "{body}");
    assert!(curl("/metrics", false).ends_with("\n401"));
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(http::get(port, "/healthz").map_or(true, |r| r.status != 200));

    // `mongomon status` over https: the CA given, or else the agent's
    // certificate (which a CA-signed leaf cannot stand in for: refused).
    let cfg_path = agent.config_path();
    let cfg_arg = cfg_path.to_str().unwrap();
    let ca_path = ca.ca();
    let out = mongomon(
        &[
            "status",
            "--config",
            cfg_arg,
            "--ca-file",
            ca_path.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&hosts[0]), "{stdout}");
    let out = mongomon(&["status", "--config", cfg_arg], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the agent") && !err.contains(token),
        "{err}"
    );
}
