//! SIGHUP reloads the configuration of a running agent, as observed at the
//! receiver: a target added starts being sampled, a target removed stops,
//! a new interval applies; an invalid new configuration is rejected with
//! the key named, and the agent carries on with the old one.

mod common;

use std::time::{Duration, Instant};

use common::deploy;
use common::receiver::Receiver;
use common::wait_for;

/// `(sample time ms, host)` of every serverStatus delivered at or after `since`.
fn server_status_times(r: &Receiver, since: Instant) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for req in r.requests().iter().filter(|q| q.at >= since) {
        for l in req.text().lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                if v["command"] == "serverStatus" {
                    out.push((
                        v["ts_ms"].as_i64().unwrap_or(0),
                        v["host"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// The gaps between consecutive serverStatus samples of `host` taken after
/// `after_ms`.
fn gaps(r: &Receiver, host: &str, after_ms: i64) -> Vec<i64> {
    let mut t: Vec<i64> = server_status_times(r, Instant::now() - Duration::from_secs(3600))
        .into_iter()
        .filter(|(ts, h)| h == host && *ts > after_ms)
        .map(|(ts, _)| ts)
        .collect();
    t.sort();
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn sighup_applies_a_valid_config_and_rejects_an_invalid_one() {
    let (_sim, hosts) = deploy::standalones(3);
    let (a, b, c) = (&hosts[0], &hosts[1], &hosts[2]);
    let receiver = Receiver::accepting();
    let mut agent = common::Agent::start(&deploy::config(&[a, b], 1, &receiver));
    let t0 = Instant::now();
    wait_for("samples of a and b", Duration::from_secs(20), || {
        (deploy::seen_since(&receiver, a, t0) && deploy::seen_since(&receiver, b, t0)).then_some(())
    });

    // Valid: a removed, c added, interval 1 s -> 3 s.
    std::fs::write(agent.config_path(), deploy::config(&[b, c], 3, &receiver)).unwrap();
    let hup_ms = now_ms();
    let hup = Instant::now();
    common::signal(agent.pid(), libc::SIGHUP);
    wait_for(
        "samples of the added target",
        Duration::from_secs(20),
        || deploy::seen_since(&receiver, c, hup).then_some(()),
    );
    // Let b run a few rounds on the new interval.
    wait_for(
        "three samples of b on the new interval",
        Duration::from_secs(30),
        || (gaps(&receiver, b, hup_ms + 1000).len() >= 2).then_some(()),
    );
    let settled = hup + Duration::from_millis(1500);
    assert!(
        !server_status_times(&receiver, settled)
            .iter()
            .any(|(_, h)| h == a),
        "the removed target is no longer sampled"
    );
    let b_gaps = gaps(&receiver, b, hup_ms + 1000);
    assert!(
        b_gaps.iter().all(|g| (2500..=3600).contains(g)),
        "b sampled every 3 s after the reload: {b_gaps:?}"
    );
    let log = agent.log();
    assert!(log.contains("Configuration reloaded."), "{log}");

    // Invalid: rejected with the key named; the agent keeps the 3 s interval
    // and both targets.
    std::fs::write(
        agent.config_path(),
        deploy::config(&[b, c], 3, &receiver).replace("interval_secs = 3", "interval_secs = -1"),
    )
    .unwrap();
    let bad_ms = now_ms();
    let bad = Instant::now();
    common::signal(agent.pid(), libc::SIGHUP);
    wait_for("the rejection", Duration::from_secs(10), || {
        agent
            .log()
            .contains("Reload rejected; keeping the running configuration.")
            .then_some(())
    });
    let log = agent.log();
    assert!(
        log.contains("agent.interval_secs must be between 1 and 86400 (found -1)"),
        "{log}"
    );
    wait_for(
        "both targets still sampled",
        Duration::from_secs(20),
        || {
            (deploy::seen_since(&receiver, b, bad + Duration::from_secs(4))
                && deploy::seen_since(&receiver, c, bad + Duration::from_secs(4)))
            .then_some(())
        },
    );
    assert!(agent.is_running());
    let b_gaps = gaps(&receiver, b, bad_ms);
    assert!(
        !b_gaps.is_empty() && b_gaps.iter().all(|g| (2500..=3600).contains(g)),
        "still every 3 s: {b_gaps:?}"
    );
    assert!(agent.stop(Duration::from_secs(20)).success());
}
