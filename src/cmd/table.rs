//! The live table of hosts: what `demo` draws and `mongomon status` prints.
//!
//! Both build [`HostRow`]s from what they know (the demo from the samples
//! its receiver folds, `status` from a running agent's `/status`) and hand
//! them here, so the two show one table with one set of columns. Between two
//! drawings [`mark_changes`] compares the rows and writes what happened to
//! each host into its `change` column: an operator watching the table sees
//! the step-down, the lost member and the new shard as the agent follows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One host's line in the table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostRow {
    pub host: String,
    pub role: String,
    pub replset: String,
    /// Replica-set member state (`PRIMARY`, `SECONDARY`, ...), empty when unknown.
    pub state: String,
    pub version: String,
    pub up: bool,
    pub ops_per_sec: Option<f64>,
    pub connections: Option<f64>,
    pub lag_secs: Option<f64>,
    /// Seconds since the host's latest sample; `None` before the first.
    pub age_secs: Option<f64>,
    /// The latest error of the host (already redacted by whoever filled it).
    pub last_error: Option<String>,
    /// What changed since the previous drawing (filled by [`mark_changes`]).
    pub change: String,
    /// Drawings left before `change` is cleared.
    #[serde(skip)]
    pub held: u32,
}

/// Writes into `cur[i].change` what differs from `prev` (the rows of the
/// previous drawing, by host), and appends a row marked `left` for every host
/// that was in `prev` and is no longer in `cur`. A change stays marked for
/// `hold` drawings, so that a one-second refresh does not wipe it before a
/// person has read it; `prev`'s own marks count down.
pub fn mark_changes(prev: &BTreeMap<String, HostRow>, cur: &mut Vec<HostRow>, hold: u32) {
    for row in cur.iter_mut() {
        let fresh = match prev.get(&row.host) {
            None if prev.is_empty() => String::new(),
            None => "joined".to_string(),
            Some(p) => describe(p, row),
        };
        (row.change, row.held) = match prev.get(&row.host) {
            _ if !fresh.is_empty() => (fresh, hold),
            Some(p) if p.held > 1 && p.change != "left" => (p.change.clone(), p.held - 1),
            _ => (String::new(), 0),
        };
    }
    for (host, p) in prev {
        if cur.iter().any(|r| &r.host == host) {
            continue;
        }
        let held = if p.change == "left" {
            p.held.saturating_sub(1)
        } else {
            hold
        };
        if held > 0 {
            cur.push(HostRow {
                up: false,
                change: "left".to_string(),
                held,
                ..p.clone()
            });
        }
    }
    cur.sort_by(|a, b| a.host.cmp(&b.host));
}

/// The change from one drawing to the next, in a few words.
fn describe(p: &HostRow, c: &HostRow) -> String {
    let mut parts = Vec::new();
    if p.up && !c.up {
        parts.push("down".to_string());
    } else if !p.up && c.up {
        parts.push("back up".to_string());
    }
    if !p.state.is_empty() && !c.state.is_empty() && p.state != c.state {
        parts.push(format!("{} -> {}", p.state, c.state));
    }
    if !p.role.is_empty() && !c.role.is_empty() && p.role != c.role && p.state == c.state {
        parts.push(format!("{} -> {}", p.role, c.role));
    }
    if !p.version.is_empty() && !c.version.is_empty() && p.version != c.version {
        parts.push(format!("version {} -> {}", p.version, c.version));
    }
    parts.join(", ")
}

/// The table as text, one line per host, in the order given.
pub fn render(rows: &[HostRow]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<22} {:<11} {:<11} {:<10} {:<7} {:>3} {:>8} {:>6} {:>7} {:>7}  {}\n",
        "HOST",
        "ROLE",
        "SET",
        "STATE",
        "VERSION",
        "UP",
        "OPS/S",
        "CONNS",
        "LAG(s)",
        "AGE(s)",
        "CHANGE"
    ));
    let f = |x: Option<f64>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    for r in rows {
        let mut change = r.change.clone();
        if !r.up {
            if let Some(e) = &r.last_error {
                if !change.is_empty() {
                    change.push_str("; ");
                }
                change.push_str(e);
            }
        }
        out.push_str(
            format!(
                "{:<22} {:<11} {:<11} {:<10} {:<7} {:>3} {:>8} {:>6} {:>7} {:>7}  {}",
                r.host,
                dash(&r.role),
                dash(&r.replset),
                dash(&r.state),
                dash(&r.version),
                if r.up { "1" } else { "0" },
                f(r.ops_per_sec, 0),
                f(r.connections, 0),
                f(r.lag_secs, 1),
                f(r.age_secs, 1),
                change,
            )
            .trim_end(),
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, state: &str, up: bool) -> HostRow {
        HostRow {
            host: host.into(),
            role: "shardsvr".into(),
            replset: "rs".into(),
            state: state.into(),
            up,
            ..HostRow::default()
        }
    }

    #[test]
    fn changes_are_named_and_departures_kept_as_left() {
        let prev: BTreeMap<String, HostRow> = [
            row("a:1", "PRIMARY", true),
            row("b:1", "SECONDARY", true),
            row("c:1", "SECONDARY", true),
        ]
        .into_iter()
        .map(|r| (r.host.clone(), r))
        .collect();
        let mut cur = vec![
            row("a:1", "SECONDARY", true),
            row("b:1", "PRIMARY", true),
            row("d:1", "SECONDARY", true),
        ];
        mark_changes(&prev, &mut cur, 1);
        let by: BTreeMap<_, _> = cur
            .iter()
            .map(|r| (r.host.as_str(), r.change.as_str()))
            .collect();
        assert_eq!(by["a:1"], "PRIMARY -> SECONDARY");
        assert_eq!(by["b:1"], "SECONDARY -> PRIMARY");
        assert_eq!(by["c:1"], "left");
        assert_eq!(by["d:1"], "joined");
    }

    #[test]
    fn down_and_back_up() {
        let prev: BTreeMap<String, HostRow> =
            [("a:1".to_string(), row("a:1", "SECONDARY", true))].into();
        let mut cur = vec![row("a:1", "", false)];
        mark_changes(&prev, &mut cur, 1);
        assert_eq!(cur[0].change, "down");
        let prev: BTreeMap<String, HostRow> = [("a:1".to_string(), cur[0].clone())].into();
        let mut cur = vec![row("a:1", "SECONDARY", true)];
        mark_changes(&prev, &mut cur, 1);
        assert_eq!(cur[0].change, "back up");
    }

    #[test]
    fn a_change_is_held_for_the_given_drawings_then_cleared() {
        let prev: BTreeMap<String, HostRow> = [
            ("a:1".to_string(), row("a:1", "PRIMARY", true)),
            ("b:1".to_string(), row("b:1", "SECONDARY", true)),
        ]
        .into();
        let mut cur = vec![row("a:1", "SECONDARY", true)];
        mark_changes(&prev, &mut cur, 2);
        let keyed = |v: &Vec<HostRow>| -> BTreeMap<String, HostRow> {
            v.iter().map(|r| (r.host.clone(), r.clone())).collect()
        };
        assert_eq!(cur.len(), 2, "b:1 is kept as left");
        let mut next = vec![row("a:1", "SECONDARY", true)];
        mark_changes(&keyed(&cur), &mut next, 2);
        assert_eq!(
            next[0].change, "PRIMARY -> SECONDARY",
            "held a second drawing"
        );
        assert_eq!(next[1].change, "left");
        let mut third = vec![row("a:1", "SECONDARY", true)];
        mark_changes(&keyed(&next), &mut third, 2);
        assert_eq!(third.len(), 1, "the departed host is dropped: {third:?}");
        assert_eq!(third[0].change, "");
    }

    #[test]
    fn the_first_drawing_marks_nothing_and_errors_show_for_down_hosts() {
        let mut cur = vec![HostRow {
            last_error: Some("connection refused".into()),
            ..row("a:1", "", false)
        }];
        mark_changes(&BTreeMap::new(), &mut cur, 1);
        assert_eq!(cur[0].change, "");
        let t = render(&cur);
        assert!(
            t.lines().nth(1).unwrap().ends_with("connection refused"),
            "{t}"
        );
        assert!(t.starts_with("HOST"));
    }
}
