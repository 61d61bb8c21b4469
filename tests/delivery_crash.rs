//! `kill -9` of the agent while it uploads and writes its spool, then a
//! restart on the same spool: every batch the spool had taken and the
//! receiver had not acknowledged is delivered by the second run; a torn
//! record at the end (a write cut short by the crash) is detected, cut and
//! counted; and any sample that reaches the receiver twice does so under
//! the same batch id, so a receiver or proxy can drop the copy.

mod common;
mod sim_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::receiver::{Receiver, Request};
use common::{signal, wait_for, Agent};
use mongomon::actors::uploader::spool::Spool;
use mongomon::config::{FsyncPolicy, FullPolicy, SpoolSettings};

fn config(hosts: &[String], url: &str, spool: &Path) -> String {
    let mut s = format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\nconnect_timeout_ms = 1000\nspool_dir = \"{}\"\n\
         [spool]\nfsync = \"always\"\n\
         [upload]\nname = \"rcv\"\nurl = \"{url}\"\nformat = \"json\"\nmax_batch_age_ms = 100\nmax_in_flight = 1\n\
         retry_initial_ms = 50\nretry_max_ms = 200\n",
        spool.display()
    );
    for (i, h) in hosts.iter().enumerate() {
        s.push_str(&format!(
            "[[targets]]\nname = \"h{i}\"\nuri = \"mongodb://{h}\"\n"
        ));
    }
    s
}

/// The batches a spool directory holds unacknowledged, read from a copy so
/// the original is left exactly as the crash left it.
fn unacked(dir: &Path) -> Vec<String> {
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name();
        if name != "LOCK" {
            std::fs::copy(e.path(), copy.path().join(name)).unwrap();
        }
    }
    let (_, replay) = Spool::open(SpoolSettings {
        dir: copy.path().to_path_buf(),
        max_bytes: 1 << 30,
        segment_bytes: 16 << 20,
        fsync: FsyncPolicy::Never,
        on_full: FullPolicy::DropOldest,
    })
    .unwrap();
    replay.batches.into_iter().map(|(b, _)| b.id).collect()
}

fn id(r: &Request) -> String {
    r.header("x-mongomon-batch-id").unwrap_or("").to_string()
}

#[test]
fn kill_9_loses_nothing_the_spool_took_and_duplicates_share_their_batch_id() {
    let topo: String = (0..6)
        .map(|_| "[[standalone]]\nhost = \"127.0.0.1:0\"\n")
        .collect();
    let sim = sim_common::start(&topo);
    let hosts: Vec<String> = sim.standalones().iter().map(|a| a.to_string()).collect();
    // A slow receiver while the first run lives, so batches are on the wire
    // and waiting in the spool when it dies; quick again for the second.
    let slow = Arc::new(AtomicBool::new(true));
    let s2 = slow.clone();
    let rcv = Receiver::scripted(move |_, _| {
        let delay = if s2.load(Ordering::Relaxed) {
            "700"
        } else {
            "0"
        };
        (204, vec![("x-test-delay-ms".into(), delay.into())])
    });
    let spool_root = tempfile::tempdir().unwrap();
    let cfg = config(&hosts, &rcv.url(), spool_root.path());

    let mut first = Agent::start(&cfg);
    wait_for("uploads under way", Duration::from_secs(30), || {
        (rcv.requests().len() >= 4).then_some(())
    });
    signal(first.pid(), libc::SIGKILL);
    let status = first.stop_killed(Duration::from_secs(10));
    assert!(!status.success());
    let dir = spool_root.path().join("rcv");
    let waiting = unacked(&dir);
    assert!(!waiting.is_empty(), "the crash left batches in the spool");

    // A write cut short by the crash: half a record at the end of the newest segment.
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max()
        .expect("a segment");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    f.write_all(&4000u32.to_le_bytes()).unwrap();
    f.write_all(&[0xab; 37]).unwrap();
    drop(f);
    let sent_by_first: BTreeSet<String> = rcv.requests().iter().map(id).collect();
    slow.store(false, Ordering::Relaxed);

    let mut second = Agent::start(&cfg);
    wait_for(
        "every spooled batch delivered by the second run",
        Duration::from_secs(60),
        || {
            let ok: BTreeSet<String> = rcv
                .requests()
                .iter()
                .filter(|r| r.status == 204)
                .map(id)
                .collect();
            waiting.iter().all(|w| ok.contains(w)).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(second.stop(Duration::from_secs(20)).success());
    let log = second.log();
    assert!(
        log.contains("Spool holds batches from an earlier run"),
        "{log}"
    );
    assert!(
        log.contains("Spool had damaged records"),
        "the torn record was found: {log}"
    );

    // Replayed batches came back with the id they had, and the ones the
    // first run never got to send are there too.
    let reqs = rcv.requests();
    assert!(
        waiting.iter().any(|w| !sent_by_first.contains(w)),
        "some spooled batches had not been sent before the crash (else the test proves little)"
    );

    // Every sample (host, time, command) that arrived more than once did so
    // in batches of one id only.
    let mut seen: BTreeMap<(String, i64, String), BTreeSet<String>> = BTreeMap::new();
    for r in reqs.iter().filter(|r| r.status == 204) {
        for line in r.text().lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let Some(host) = v["host"].as_str() else {
                continue;
            };
            let key = (
                host.to_string(),
                v["ts_ms"].as_i64().unwrap(),
                v["command"].as_str().unwrap_or("").to_string(),
            );
            seen.entry(key).or_default().insert(id(r));
        }
    }
    let split: Vec<_> = seen.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        split.is_empty(),
        "samples delivered under two batch ids: {split:?}"
    );
    // The damaged record was counted in the agent's own metrics.
    let counted = reqs.iter().filter(|r| r.status == 204).any(|r| {
        r.text().lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["upload"] == "rcv" && v["metrics"]["spool_corrupt_records"] == 1
        })
    });
    assert!(counted, "spool_corrupt_records = 1 in mongomon_upload");
}
