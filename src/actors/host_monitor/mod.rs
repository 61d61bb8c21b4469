//! `HostMonitor`: samples one `mongod` or `mongos` on a fixed schedule.
//!
//! Every interval it runs `hello` and `serverStatus` (and `replSetGetStatus`
//! on replica-set members); at start, hourly, and after the server restarted
//! or changed version it also runs `buildInfo`, `hostInfo` and
//! `getCmdLineOpts`. A round that fails yields an `up = 0` status sample with
//! the reason, and the next interval tries again: one host never takes the
//! agent down.
//!
//! Rounds are due on a fixed grid (`k × interval + phase`), the phase being
//! a stable hash of the address, so a thousand hosts do not all fire in the
//! same millisecond and a slow round never shifts the ones after it.

mod actor;
pub mod collect;

use crate::mongo::TargetOptions;
use actix::Message;

use crate::config::AgentSettings;
use crate::sample::Sample;

pub use actor::{DescribeHost, HostMonitor, MonitorLinks};

/// What a monitor needs to know about its host.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// `host:port`.
    pub addr: String,
    /// The name of the target this host was discovered from.
    pub target: String,
    /// The `cluster` label: the target's name, or the name discovery found.
    pub cluster: String,
    /// The replica set discovery found the host in (the monitor's own
    /// `hello` has the last word).
    pub replset: Option<String>,
    /// The shard the host belongs to, for shard members.
    pub shard: Option<String>,
    /// The target's client options (URI, credentials, TLS); narrowed to this
    /// host by the monitor.
    pub base_options: TargetOptions,
    /// The target's [`crate::mongo::ClientKey::settings`]: with `addr`, which
    /// shared client this host is sampled with.
    pub settings_hash: u64,
    /// Identifies the target's settings (URI and credentials) this spec was
    /// built from: a monitor is restarted only when it changes.
    pub fingerprint: u64,
}

/// Stop sampling and stop the actor; not a failure, so not restarted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopMonitoring;

/// Use new agent settings (interval, timeouts) from the next round on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplySettings(pub AgentSettings);

/// Samples of one round, for the batcher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SamplesCollected(pub Vec<Sample>);

/// The stable phase offset of `addr` within `interval`, from FNV-1a.
pub fn phase_offset(addr: &str, interval: std::time::Duration) -> std::time::Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in addr.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    std::time::Duration::from_millis(h % ms)
}

/// The first grid point strictly after `now_ms`: `k × interval + phase`.
pub fn next_due_ms(now_ms: u64, interval_ms: u64, phase_ms: u64) -> u64 {
    let interval_ms = interval_ms.max(1);
    let base = now_ms - now_ms % interval_ms + phase_ms % interval_ms;
    if base > now_ms {
        base
    } else {
        base + interval_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn phases_are_stable_and_spread() {
        let i = Duration::from_secs(10);
        assert_eq!(phase_offset("a:1", i), phase_offset("a:1", i));
        let distinct: std::collections::HashSet<_> = (0..1000)
            .map(|n| {
                phase_offset(&format!("10.0.{}.{}:27017", n / 250, n % 250), i).as_millis() / 1000
            })
            .collect();
        // 1,000 hosts land in all ten one-second slots.
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn due_times_follow_the_grid() {
        assert_eq!(next_due_ms(10_000, 10_000, 300), 10_300);
        assert_eq!(next_due_ms(10_300, 10_000, 300), 20_300);
        assert_eq!(next_due_ms(10_301, 10_000, 300), 20_300);
        assert_eq!(next_due_ms(9_999, 10_000, 0), 10_000);
    }
}
