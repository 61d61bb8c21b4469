//! Helpers of the production-deployment tests: the `mongomon` service user,
//! simulated standalones to monitor, and what a JSON receiver saw per host.

use std::process::Command;
use std::time::Instant;

use super::receiver::Receiver;

/// The service user the packaging and the init script run the agent as.
pub const SERVICE_USER: &str = "mongomon";

/// Makes sure the `mongomon` system user and group exist (creating them
/// needs root, which CI has); returns its uid. Never skips: without root and
/// without the user the test fails and says why.
pub fn ensure_service_user() -> u32 {
    if let Some(uid) = uid_of(SERVICE_USER) {
        return uid;
    }
    assert!(
        super::is_root(),
        "this test runs the agent as the system user {SERVICE_USER}, which does not exist; \
         run the tests as root (CI does) or create it: sudo useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {SERVICE_USER}"
    );
    let st = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ])
        .status()
        .expect("useradd (apt-get install passwd)");
    // 9: created meanwhile by a parallel test or the package.
    assert!(
        st.success() || st.code() == Some(9),
        "useradd {SERVICE_USER} failed: {st}"
    );
    uid_of(SERVICE_USER).expect("user exists after useradd")
}

/// The uid of a user, from `id -u`.
pub fn uid_of(user: &str) -> Option<u32> {
    let o = Command::new("id").args(["-u", user]).output().ok()?;
    if !o.status.success() {
        return None;
    }
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// `n` simulated standalones on free loopback ports.
pub fn standalones(n: usize) -> (mongomon::sim::SimHandle, Vec<String>) {
    let mut toml = String::new();
    for _ in 0..n {
        toml.push_str("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    }
    let sim = mongomon::sim::Simulator::start(
        mongomon::sim::Topology::from_toml_str(&toml).expect("topology"),
    )
    .expect("simulator starts");
    let hosts = sim.standalones().iter().map(|a| a.to_string()).collect();
    (sim, hosts)
}

/// A config for `targets` (one `[[targets]]` each, `discover = false`)
/// uploading JSON lines to `receiver`. No spool: these tests drive the
/// service as different users from temporary roots, and the spool has
/// tests of its own (tests/delivery_*.rs).
pub fn config(targets: &[&str], interval_secs: u64, receiver: &Receiver) -> String {
    let mut s = format!(
        "[agent]\ninterval_secs = {interval_secs}\ncommand_timeout_ms = 1000\nconnect_timeout_ms = 1000\nspool_dir = \"\"\n\
         [upload]\nurl = \"{}\"\nformat = \"json\"\ngzip = false\nmax_batch_age_ms = 200\n",
        receiver.url()
    );
    for t in targets {
        s.push_str(&format!(
            "[[targets]]\nname = \"{t}\"\nuri = \"mongodb://{t}/\"\ndiscover = false\n"
        ));
    }
    s
}

/// Every `(received at, host, command)` the receiver got as JSON lines.
pub fn samples(receiver: &Receiver) -> Vec<(Instant, String, String)> {
    let mut out = Vec::new();
    for r in receiver.requests() {
        for line in r.text().lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                let host = v["host"].as_str().unwrap_or("").to_string();
                let cmd = v["command"].as_str().unwrap_or("").to_string();
                out.push((r.at, host, cmd));
            }
        }
    }
    out
}

/// Whether `host` had a serverStatus delivered after `since`.
pub fn seen_since(receiver: &Receiver, host: &str, since: Instant) -> bool {
    samples(receiver)
        .iter()
        .any(|(at, h, c)| *at >= since && h == host && c == "serverStatus")
}
