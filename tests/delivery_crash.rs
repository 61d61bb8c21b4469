//! `kill -9` of the agent while it uploads and writes its spool, then a
//! restart on the same spool: every batch the spool had taken and the
//! receiver had not acknowledged is delivered by the second run; a torn
//! record at the end (a write cut short by the crash) is detected, cut and
//! counted; and any sample that reaches the receiver twice does so under
//! the same batch id, so a receiver or proxy can drop the copy.

mod common;
mod sim_common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::receiver::{Receiver, Request};
use common::{signal, wait_for, Agent};

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
    let (rcv, slow) = Receiver::slow_while();
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
    let waiting = common::spooled_batches(&dir);
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
    let split = common::receiver::split_across_batches(&reqs);
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
