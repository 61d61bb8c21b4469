//! The demo's picture of the deployment: the latest state of every host,
//! folded from the JSON samples the agent uploads to the demo's receiver,
//! and turned into the [`HostRow`]s of the shared table.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cmd::table::HostRow;

/// What the demo knows about one host: its line of the table, and what it
/// needs to compute the line's rate and age.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The host's line as last folded (`age_secs` and `change` are filled
    /// when the table is drawn).
    pub line: HostRow,
    /// Time (ms) of the latest sample.
    pub last_ms: i64,
    /// Time (ms) and sum of the operation counters at the latest serverStatus.
    ops_total: Option<(i64, f64)>,
}

/// The latest state of every host, fed by the receiver.
#[derive(Debug, Default)]
pub struct Board {
    pub rows: BTreeMap<String, Row>,
    pub batches: u64,
    pub samples: u64,
}

impl Board {
    /// Folds one JSON sample (the `json` upload format) into the board.
    pub fn apply(&mut self, v: &Value) {
        self.samples += 1;
        let Some(host) = v["host"].as_str() else {
            return;
        };
        let entry = self.rows.entry(host.to_string()).or_default();
        let ts = v["ts_ms"].as_i64().unwrap_or(0);
        entry.last_ms = entry.last_ms.max(ts);
        let row = &mut entry.line;
        row.host = host.to_string();
        row.role = v["role"].as_str().unwrap_or("").to_string();
        row.replset = v["replset"].as_str().unwrap_or("").to_string();
        if let Some(version) = v["version"].as_str() {
            row.version = version.to_string();
        }
        let reply = &v["reply"];
        match v["command"].as_str() {
            Some("status") => {
                row.up = v["up"].as_i64() == Some(1);
                row.last_error = v["error"].as_str().map(str::to_string);
                if !row.up {
                    // What a host said before it went away is no longer
                    // true; blank it rather than show it as current.
                    row.state.clear();
                    row.connections = None;
                    row.ops_per_sec = None;
                    row.lag_secs = None;
                }
            }
            Some("serverStatus") => {
                if let Some(version) = reply["version"].as_str() {
                    row.version = version.to_string();
                }
                row.connections = reply["connections"]["current"].as_f64();
                let total: f64 = reply["opcounters"]
                    .as_object()
                    .map(|o| o.values().filter_map(Value::as_f64).sum())
                    .unwrap_or(0.0);
                if let Some((t0, n0)) = entry.ops_total {
                    if ts > t0 {
                        row.ops_per_sec =
                            Some(((total - n0) / ((ts - t0) as f64 / 1000.0)).max(0.0));
                    }
                }
                entry.ops_total = Some((ts, total));
            }
            Some("replSetGetStatus") => {
                let members = reply["members"].as_array().cloned().unwrap_or_default();
                let date = |m: &Value| {
                    m["optimeDate"]["$date"]
                        .as_str()
                        .and_then(|s| bson::DateTime::parse_rfc3339_str(s).ok())
                        .map(|d| d.timestamp_millis())
                };
                let primary = members
                    .iter()
                    .find(|m| m["stateStr"] == "PRIMARY")
                    .and_then(date);
                if let Some(me) = members.iter().find(|m| m["self"] == true) {
                    row.state = me["stateStr"].as_str().unwrap_or("").to_string();
                    row.lag_secs = match (primary, date(me)) {
                        (Some(p), Some(m)) => Some((p - m).max(0) as f64 / 1000.0),
                        _ => None,
                    };
                }
            }
            _ => {}
        }
    }

    /// The table's rows at `now_ms`. A host the agent has sent nothing about
    /// for `gone_after_ms` is left out: the agent sends an `up = 0` sample
    /// every round for a host it cannot reach, so silence means it stopped
    /// monitoring the host (the host left the topology).
    pub fn rows(&self, now_ms: i64, gone_after_ms: i64) -> Vec<HostRow> {
        self.rows
            .iter()
            .filter(|(_, r)| now_ms - r.last_ms <= gone_after_ms)
            .map(|(_, r)| HostRow {
                age_secs: Some((now_ms - r.last_ms).max(0) as f64 / 1000.0),
                last_error: if r.line.up {
                    None
                } else {
                    r.line.last_error.clone()
                },
                ..r.line.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn board_computes_rates_lag_state_and_version() {
        let mut b = Board::default();
        let ss = |ts: i64, n: i64| {
            json!({"host": "h:1", "role": "secondary", "replset": "rs", "command": "serverStatus", "ts_ms": ts,
            "reply": {"version": "7.0.12", "connections": {"current": 7}, "opcounters": {"insert": n, "query": n}}})
        };
        b.apply(&ss(1_000, 10));
        b.apply(&ss(3_000, 30));
        b.apply(&json!({"host": "h:1", "role": "secondary", "replset": "rs", "command": "replSetGetStatus", "ts_ms": 3_000,
            "reply": {"members": [
                {"name": "p:1", "stateStr": "PRIMARY", "optimeDate": {"$date": "2026-01-01T00:00:10Z"}},
                {"name": "h:1", "stateStr": "SECONDARY", "self": true, "optimeDate": {"$date": "2026-01-01T00:00:06.500Z"}}]}}));
        b.apply(&json!({"host": "h:1", "role": "secondary", "command": "status", "up": 1, "ts_ms": 3_000}));
        let rows = b.rows(5_000, 10_000);
        let r = &rows[0];
        assert_eq!(r.host, "h:1");
        assert_eq!(r.ops_per_sec, Some(20.0));
        assert_eq!(r.connections, Some(7.0));
        assert_eq!(r.lag_secs, Some(3.5));
        assert_eq!(r.state, "SECONDARY");
        assert_eq!(r.version, "7.0.12");
        assert_eq!(r.age_secs, Some(2.0));
        assert!(r.up);
    }

    #[test]
    fn a_down_host_loses_its_state_and_shows_its_error() {
        let mut b = Board::default();
        b.apply(
            &json!({"host": "h:1", "command": "replSetGetStatus", "ts_ms": 1_000,
            "reply": {"members": [{"name": "h:1", "stateStr": "SECONDARY", "self": true}]}}),
        );
        b.apply(
            &json!({"host": "h:1", "command": "status", "up": 0, "ts_ms": 3_000,
            "error": "connection refused"}),
        );
        let r = &b.rows(3_000, 10_000)[0];
        assert!(!r.up);
        assert_eq!(r.state, "");
        assert_eq!(r.last_error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn a_host_the_agent_stopped_reporting_is_left_out() {
        let mut b = Board::default();
        b.apply(&json!({"host": "old:1", "command": "status", "up": 1, "ts_ms": 1_000}));
        b.apply(&json!({"host": "new:1", "command": "status", "up": 1, "ts_ms": 9_000}));
        let hosts: Vec<String> = b.rows(10_000, 6_000).into_iter().map(|r| r.host).collect();
        assert_eq!(hosts, ["new:1"]);
    }
}
