//! HTTPS receivers, through a real forward proxy (tinyproxy) as the
//! deployment guide's "Working with Proxies" describes: `https_proxy` from
//! the environment, CONNECT with and without proxy credentials, `no_proxy`
//! bypass, and TLS verification against a test CA (nginx terminating TLS
//! in front of VictoriaMetrics) that refuses a wrong CA.

mod common;
mod sim_common;

use std::time::Duration;

use common::servers::{TestCa, Tinyproxy, TlsFront};
use common::{wait_for, Agent, Victoria};

fn config(host: &str, url: &str, extra: &str) -> String {
    format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\n\
         [[targets]]\nname = \"t\"\nuri = \"mongodb://{host}\"\n\
         [upload]\nurl = \"{url}\"\nmax_batch_age_ms = 200\nretry_initial_ms = 100\nretry_max_ms = 500\ntimeout_secs = 5\n{extra}"
    )
}

/// Starts the agent with extra environment variables (the proxy ones).
fn agent_with_env(config: &str, env: &[(&str, String)]) -> Agent {
    Agent::start_env(config, env, None)
}

fn host_up(vm: &Victoria, host: &str) -> bool {
    vm.export("mongodb_up")
        .iter()
        .any(|s| s.label("host") == Some(host))
}

#[test]
fn https_through_tinyproxy_needs_the_proxy_credentials() {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let vm = Victoria::start();
    let ca = TestCa::new("mongomon test CA");
    let tls = TlsFront::start(&ca, vm.port);
    let proxy = Tinyproxy::start(&[tls.port], Some(("agent", "s3cret")));
    let url = tls.url("/write");
    let cfg = config(
        &host,
        &url,
        &format!("tls_ca_file = \"{}\"\n", ca.ca().display()),
    );

    // Without credentials the proxy answers 407: said plainly, retried,
    // nothing delivered.
    let mut no_creds = agent_with_env(&cfg, &[("https_proxy", proxy.url())]);
    wait_for(
        "a 407 from the proxy in the log",
        Duration::from_secs(30),
        || {
            no_creds
                .log()
                .contains("proxy requires authentication")
                .then_some(())
        },
    );
    assert!(
        !host_up(&vm, &host),
        "nothing may pass without proxy credentials"
    );
    assert!(no_creds.stop(Duration::from_secs(20)).success());

    // With them (from the same variable), everything arrives through the
    // tunnel, TLS checked against the test CA.
    let with_creds = proxy.url().replace("http://", "http://agent:s3cret@");
    let mut agent = agent_with_env(&cfg, &[("https_proxy", with_creds)]);
    wait_for("samples through the proxy", Duration::from_secs(60), || {
        host_up(&vm, &host).then_some(())
    });
    let plog = proxy.log();
    assert!(
        plog.contains(&format!("CONNECT 127.0.0.1:{} HTTP/1.1", tls.port)),
        "the proxy saw the tunnel: {plog}"
    );
    assert!(
        tls.access_log().contains("POST /write"),
        "nginx served the POST"
    );
    assert!(
        agent.log().contains("Sending through a proxy."),
        "{}",
        agent.log()
    );
    assert!(agent.stop(Duration::from_secs(20)).success());
}

#[test]
fn no_proxy_bypasses_the_proxy_and_a_wrong_ca_is_refused() {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let vm = Victoria::start();
    let ca = TestCa::new("mongomon test CA");
    let other_ca = TestCa::new("someone else's CA");
    let tls = TlsFront::start(&ca, vm.port);
    let proxy = Tinyproxy::start(&[tls.port], None);
    let url = tls.url("/write");

    // A wrong CA: the handshake fails, the batch is kept and retried, and
    // nothing reaches the receiver.
    let wrong = config(
        &host,
        &url,
        &format!("tls_ca_file = \"{}\"\n", other_ca.ca().display()),
    );
    let mut refused = agent_with_env(&wrong, &[]);
    wait_for("a TLS failure in the log", Duration::from_secs(30), || {
        let log = refused.log();
        log.contains("kind: tls").then_some(log)
    });
    assert!(!host_up(&vm, &host), "an unverified receiver gets nothing");
    assert!(
        !tls.access_log().contains("POST"),
        "no request was sent over an unverified connection"
    );
    assert!(refused.stop(Duration::from_secs(20)).success());

    // The right CA, with https_proxy set but the receiver in no_proxy:
    // direct, the proxy never sees a CONNECT.
    let right = config(
        &host,
        &url,
        &format!("tls_ca_file = \"{}\"\n", ca.ca().display()),
    );
    let mut agent = agent_with_env(
        &right,
        &[
            ("HTTPS_PROXY", proxy.url()),
            ("no_proxy", "localhost,127.0.0.1".into()),
        ],
    );
    wait_for("samples sent directly", Duration::from_secs(60), || {
        host_up(&vm, &host).then_some(())
    });
    assert!(
        !proxy
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", tls.port)),
        "no_proxy bypassed the proxy: {}",
        proxy.log()
    );
    assert!(!agent.log().contains("Sending through a proxy."));
    assert!(agent.stop(Duration::from_secs(20)).success());
}

#[test]
fn a_client_certificate_is_presented_when_configured() {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let vm = Victoria::start();
    let ca = TestCa::new("mongomon test CA");
    let tls = TlsFront::start_with(&ca, vm.port, true);
    let (cert, key) = ca.client();
    let cfg = config(
        &host,
        &tls.url("/write"),
        &format!(
            "tls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            ca.ca().display(),
            cert.display(),
            key.display()
        ),
    );
    let mut agent = agent_with_env(&cfg, &[]);
    wait_for(
        "samples through mutual TLS",
        Duration::from_secs(60),
        || host_up(&vm, &host).then_some(()),
    );
    let log = tls.access_log();
    assert!(
        log.contains("POST /write HTTP/1.1 204 client_verify=SUCCESS"),
        "{log}"
    );
    assert!(agent.stop(Duration::from_secs(20)).success());
}
