//! The receiver goes away for two minutes while 100 simulated hosts are
//! sampled every second. A second upload target that never went away
//! records what was collected; when the first receiver (VictoriaMetrics)
//! is back and the backlog drained, it must hold exactly the same samples:
//! for every host, the same timestamps, none missing and none twice. The
//! target that stayed up kept receiving on time all along (one slow
//! receiver never delays another).

mod common;
mod sim_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{wait_for, Agent, Victoria};

const HOSTS: usize = 100;
const OUTAGE: Duration = Duration::from_secs(120);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// host → timestamps (ms) of its `mongodb` (up) lines, from line protocol.
fn up_times(text: &str, into: &mut BTreeMap<String, Vec<i64>>) {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("mongodb,") else {
            continue;
        };
        let Some(host) = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("host="))
            .map(|h| h.split(' ').next().unwrap_or(h).to_string())
        else {
            continue;
        };
        let Some(ts) = line.rsplit(' ').next().and_then(|t| t.parse::<i64>().ok()) else {
            continue;
        };
        into.entry(host).or_default().push(ts / 1_000_000);
    }
}

#[test]
fn two_minute_outage_at_100_hosts_every_second_loses_nothing() {
    let topo: String = (0..HOSTS)
        .map(|_| "[[standalone]]\nhost = \"127.0.0.1:0\"\n")
        .collect();
    let sim = sim_common::start(&topo);
    let hosts: Vec<String> = sim.standalones().iter().map(|a| a.to_string()).collect();
    let truth = Receiver::accepting();
    let mut vm = Victoria::start();
    let mut cfg = String::from(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 3000\nconnect_timeout_ms = 2000\n\
         info_interval_secs = 3600\ndbstats_interval_secs = 3600\nshutdown_timeout_secs = 30\n",
    );
    for (i, h) in hosts.iter().enumerate() {
        cfg.push_str(&format!(
            "[[targets]]\nname = \"h{i}\"\nuri = \"mongodb://{h}\"\ndiscover = false\n"
        ));
    }
    cfg.push_str(&format!(
        "[[upload]]\nname = \"truth\"\nurl = \"{}\"\nmax_batch_age_ms = 500\n\
         [[upload]]\nname = \"vm\"\nurl = \"{}\"\nmax_batch_age_ms = 500\nretry_initial_ms = 200\nretry_max_ms = 2000\n",
        truth.url(),
        vm.write_url()
    ));
    let mut agent = Agent::start(&cfg);
    wait_for(
        "every host in VictoriaMetrics",
        Duration::from_secs(90),
        || {
            let n = vm
                .export("mongodb_up")
                .iter()
                .filter_map(|s| s.label("host").map(str::to_string))
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            (n == HOSTS).then_some(())
        },
    );

    vm.pause();
    let down = Instant::now();
    let down_ms = now_ms();
    // The other target keeps receiving during the outage.
    let before = truth.requests().len();
    std::thread::sleep(OUTAGE / 2);
    let during = truth.requests().len() - before;
    assert!(
        during as u64 >= OUTAGE.as_secs() / 2 / 2,
        "the target that stayed up got {during} batches in {:?}",
        OUTAGE / 2
    );
    std::thread::sleep(OUTAGE.saturating_sub(down.elapsed()));
    let up_ms = now_ms();
    vm.resume();

    // Drain, then stop gracefully so the last open batch goes to both.
    wait_for(
        "the VictoriaMetrics backlog drained",
        Duration::from_secs(120),
        || {
            agent
                .log()
                .contains("Receiver accepts batches again.")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        agent.stop(Duration::from_secs(60)).success(),
        "{}",
        agent.log()
    );

    let mut want: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in truth.requests().iter().filter(|r| r.status == 204) {
        up_times(&r.text(), &mut want);
    }
    let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in vm.export("mongodb_up") {
        if let Some(h) = s.label("host") {
            got.entry(h.to_string())
                .or_default()
                .extend(s.timestamps.iter().copied());
        }
    }
    assert_eq!(want.len(), HOSTS);
    let mut samples = 0;
    for (host, mut w) in want {
        w.sort();
        let mut g = got.remove(&host).unwrap_or_default();
        g.sort();
        samples += w.len();
        assert_eq!(
            g, w,
            "{host}: VictoriaMetrics holds exactly what was collected"
        );
        // And what was collected spans the outage (how many rounds a debug
        // build manages per second is the bench harness's business).
        let during = w.iter().filter(|t| **t > down_ms && **t < up_ms).count();
        assert!(during >= 10, "{host}: {during} samples during the outage");
    }
    assert!(got.is_empty(), "no unknown hosts: {:?}", got.keys());
    eprintln!("{samples} host samples compared, outage {:?}", OUTAGE);
}
