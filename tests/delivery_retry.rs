//! What the uploader does with each kind of receiver failure, against a
//! scripted receiver: 500, 503, 429 with `Retry-After`, a response slower
//! than `upload.timeout_secs`, a connection reset, and 400. Retried ones
//! keep their batch id; the 400 goes to the dead-letter file; everything is
//! counted in the agent's own `mongomon_upload` samples. Also: the spool
//! budget (both policies, counted exactly) and a spool that cannot be
//! written (file-size limit, as on a full disk).

mod common;
mod sim_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::receiver::{Receiver, Request};
use common::{wait_for, Agent};

fn config(host: &str, url: &str, extra_upload: &str, extra: &str) -> String {
    format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\n\
         [[targets]]\nname = \"t\"\nuri = \"mongodb://{host}\"\n\
         [upload]\nname = \"rcv\"\nurl = \"{url}\"\nformat = \"json\"\nmax_batch_age_ms = 200\n\
         retry_initial_ms = 50\nretry_max_ms = 400\ntimeout_secs = 1\nmax_in_flight = 1\n{extra_upload}{extra}"
    )
}

/// Every JSON line of every request answered 2xx.
fn accepted_lines(reqs: &[Request]) -> Vec<serde_json::Value> {
    common::receiver::accepted_json(reqs)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// The newest `mongomon_upload` counters of target `rcv` that arrived.
fn last_counters(reqs: &[Request]) -> Option<BTreeMap<String, u64>> {
    accepted_lines(reqs)
        .into_iter()
        .filter(|l| l["upload"] == "rcv")
        .max_by_key(|l| l["ts_ms"].as_i64().unwrap_or(0))
        .map(|l| {
            l["metrics"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect()
        })
}

/// samples_queued = what left the queue one way or another + what waits.
fn conserved(c: &BTreeMap<String, u64>) -> bool {
    c["samples_queued"]
        == c["samples_sent"]
            + c["samples_dead_lettered"]
            + c["samples_dropped"]
            + c["samples_refused"]
            + c["samples_expired"]
            + c["queue_samples"]
}

#[test]
fn each_failure_is_retried_or_dead_lettered_and_counted() {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    // From request 6 on, the first batch the receiver has not seen yet is
    // refused for good (400): a batch still being retried is never the one
    // refused, whatever order the uploader picks (health overtakes bulk).
    let seen = std::sync::Mutex::new((BTreeSet::<String>::new(), false));
    let rcv = Receiver::scripted(move |n, r| {
        let batch = r
            .header("x-mongomon-batch-id")
            .unwrap_or_default()
            .to_string();
        let mut seen = seen.lock().unwrap();
        let new = seen.0.insert(batch);
        match n {
            0 => (500, vec![]),
            1 => (503, vec![]),
            2 => (429, vec![("Retry-After".into(), "1".into())]),
            3 => (204, vec![("x-test-delay-ms".into(), "2500".into())]),
            4 => (0, vec![]),
            _ if n >= 6 && new && !seen.1 => {
                seen.1 = true;
                (400, vec![])
            }
            _ => (204, vec![]),
        }
    });
    let mut agent = Agent::start(&config(&host, &rcv.url(), "", ""));
    // Every batch that met a failure (0..=4; the slow 2xx timed out on our
    // side, so it is one too) is sent again, under the same id, until a
    // 2xx. Health batches may overtake the one being retried, by design,
    // so the counters can report the 400 before the last retry went out:
    // wait for both (bounded), then check each.
    let id = |reqs: &[Request], i: usize| {
        reqs[i]
            .header("x-mongomon-batch-id")
            .unwrap_or_default()
            .to_string()
    };
    let retried = |reqs: &[Request], i: usize| {
        // Request 3's 204 came after our timeout, so it does not count.
        (i + 1..reqs.len())
            .any(|j| j != 3 && id(reqs, j) == id(reqs, i) && (200..300).contains(&reqs[j].status))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (counters, reqs) = loop {
        let reqs = rcv.requests();
        let counters = last_counters(&reqs)
            .filter(|c| c["batches_dead_lettered"] == 1 && c["batches_sent"] >= 3);
        let all_retried = reqs.len() > 6 && (0..=4).all(|i| retried(&reqs, i));
        if (counters.is_some() && all_retried) || std::time::Instant::now() > deadline {
            break (counters.expect("counters after the 400 within 60 s"), reqs);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let id = |i: usize| id(&reqs, i);
    for i in 0..=4 {
        assert!(
            retried(&reqs, i),
            "request {i} ({}) was retried to success",
            reqs[i].status
        );
    }
    // Retry-After: 1 was honoured (our own backoff is capped at 400 ms).
    let gap = reqs[3].at - reqs[2].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?} after 429"
    );
    // The 400'd batch is never sent again and sits in the dead-letter file.
    let at = reqs
        .iter()
        .position(|r| r.status == 400)
        .expect("one batch refused with 400");
    let refused = id(at);
    assert!(reqs[at + 1..]
        .iter()
        .all(|r| r.header("x-mongomon-batch-id") != Some(refused.as_str())));
    let dead = std::fs::read(agent.dir.path().join("spool/rcv/dead-letter.log"))
        .expect("dead-letter file");
    assert!(
        String::from_utf8_lossy(&dead).contains(&refused),
        "the refused batch is in the dead-letter file"
    );
    assert!(counters["batches_retried"] >= 5, "{counters:?}");
    assert!(counters["samples_dead_lettered"] >= 1, "{counters:?}");
    assert!(
        conserved(&counters),
        "every sample accounted for: {counters:?}"
    );
    let log = agent.log();
    assert!(log.contains("Receiver refused the batch for good"), "{log}");
    assert!(
        log.contains("kind: http_5xx")
            || log.contains("kind: http_429")
            || log.contains("kind: timeout"),
        "{log}"
    );
    assert!(agent.stop(Duration::from_secs(20)).success());
}

#[test]
fn spool_budget_policies_drop_and_refuse_and_count_exactly() {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    for (policy, counter) in [
        ("drop_oldest", "samples_dropped"),
        ("refuse_new", "samples_refused"),
    ] {
        // Down (503) for the first 8 s, then up: the spool fills meanwhile.
        let start = std::time::Instant::now();
        let rcv = Receiver::scripted(move |_, _| {
            if start.elapsed() < Duration::from_secs(8) {
                (503, vec![])
            } else {
                (204, vec![])
            }
        });
        let spool = format!(
            "[spool]\nmax_bytes = 40000\nsegment_bytes = 8000\non_full = \"{policy}\"\nfsync = \"never\"\n"
        );
        let mut agent = Agent::start(&config(
            &host,
            &rcv.url(),
            "max_queue_bytes = 20000\nmax_batch_bytes = 2000\ngzip = false\n",
            &spool,
        ));
        // Drained: at most the batch of the current round still waits (the
        // host's monitor runs on a worker thread, so the agent's counters
        // can be taken, round after round, just as its samples arrive).
        let c = wait_for("counters after the outage", Duration::from_secs(60), || {
            last_counters(&rcv.requests())
                .filter(|c| c[counter] > 0 && c["queue_batches"] <= 1 && c["batches_sent"] > 5)
        });
        assert!(conserved(&c), "{policy}: every sample accounted for: {c:?}");
        assert!(c["spool_bytes"] <= 40000, "{policy}: within budget: {c:?}");
        let other = if counter == "samples_dropped" {
            "samples_refused"
        } else {
            "samples_dropped"
        };
        assert_eq!(c[other], 0, "{policy} only: {c:?}");
        let log = agent.log();
        assert!(
            log.contains("Samples dropped."),
            "{policy}: drops logged in aggregate: {log}"
        );
        assert!(log.contains(policy), "{policy}: the log names the policy");
        assert!(agent.stop(Duration::from_secs(20)).success());
    }
}

#[test]
fn unwritable_spool_is_an_error_in_the_log_and_the_agent_keeps_delivering() {
    let sim = sim_common::start("[[standalone]]\nhost = \"127.0.0.1:0\"\n");
    let host = sim.standalones()[0].to_string();
    let rcv = Receiver::accepting();
    // Files may not grow past 16 KiB: the first spool segment soon cannot
    // take another batch, as on a full disk.
    let mut agent = Agent::start_env(
        &config(&host, &rcv.url(), "gzip = false\n", ""),
        &[],
        Some(16 * 1024),
    );
    let c = wait_for(
        "spool write errors counted while delivery goes on",
        Duration::from_secs(60),
        || {
            last_counters(&rcv.requests())
                .filter(|c| c["spool_write_errors"] > 0 && c["batches_sent"] > 10)
        },
    );
    assert!(conserved(&c), "{c:?}");
    assert!(
        agent.is_running(),
        "the agent survives a spool it cannot write"
    );
    let log = agent.log();
    assert!(log.contains("Cannot write the spool"), "{log}");
    assert_eq!(
        log.matches("Cannot write the spool").count(),
        1,
        "said once, not per batch: {log}"
    );
    let hosts: BTreeSet<String> = accepted_lines(&rcv.requests())
        .iter()
        .filter_map(|l| l["host"].as_str().map(str::to_string))
        .collect();
    assert!(hosts.contains(&host), "samples keep arriving: {hosts:?}");
    assert!(agent.stop(Duration::from_secs(20)).success());
}
