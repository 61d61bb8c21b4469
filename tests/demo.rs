//! `mongomon demo` shows what the agent is for: a timeline changes the
//! simulated deployment (a step-down, a lost member that comes back, a new
//! shard, a new mongos) and the live table marks each change once the agent
//! has followed it. The real binary runs with its timeline sped up; on a
//! pipe it prints plain successive drawings, which the test reads in order.

mod common;

use std::time::Duration;

/// The timeline about three times faster: events at about 5, 10.5, 16, 21
/// and 26 s; the lost member stays down for about 5 s, two and a half of
/// the demo's sampling intervals, so a loaded CI machine still sees it down.
const SCALE: &str = "0.35";
/// Long enough for the last event (the mongos, at ~26 s) to be followed.
const DURATION_SECS: &str = "33";

/// The drawings of a demo run, in order, and searches over them.
struct Drawings<'a>(Vec<&'a str>);

impl<'a> Drawings<'a> {
    /// The first drawing, from `from` on, with a line that satisfies `pred`.
    fn first(&self, from: usize, pred: impl Fn(&str) -> bool) -> Option<usize> {
        (from..self.0.len()).find(|&i| self.0[i].lines().any(&pred))
    }

    /// The first drawing telling a timeline event that contains `text`,
    /// and that line.
    fn event(&self, text: &str) -> (usize, &'a str) {
        let i = self
            .first(0, |l| l.starts_with("t+") && l.contains(text))
            .unwrap_or_else(|| panic!("no timeline event {text:?} in the output"));
        let line = self.0[i]
            .lines()
            .find(|l| l.starts_with("t+") && l.contains(text))
            .unwrap_or_default();
        (i, line)
    }

    /// Asserts that `host`'s row is marked with `change`, and for the first
    /// time not before drawing `event` (the one that told the event).
    fn assert_marked(&self, event: usize, host: &str, change: &str) {
        let row = |l: &str| l.starts_with(&format!("{host} ")) && l.contains(change);
        let at = self.first(0, row).unwrap_or_else(|| {
            panic!(
                "{host} is never marked {change:?}; drawings from the event on:\n{}",
                self.0[event..].join("\n--\n")
            )
        });
        assert!(
            at >= event,
            "{host} is marked {change:?} in drawing {at}, before the event (drawing {event}):\n{}",
            self.0[at]
        );
    }
}

/// The `host:port` addresses in a line.
fn addresses(line: &str) -> Vec<String> {
    line.split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|w| w.starts_with("127.") && w.contains(':'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_table_marks_each_timeline_event_as_the_agent_follows_it() {
    let o = common::mongomon_timeout(
        &[
            "demo",
            "--duration-secs",
            DURATION_SECS,
            "--timeline-scale",
            SCALE,
        ],
        Duration::from_secs(90),
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.contains('\x1b'), "escape codes on a pipe: {out}");
    let d = Drawings(out.split("mongomon demo: t+").skip(1).collect());
    assert!(d.0.len() >= 15, "one drawing a second: {out}");

    // The shard01 primary steps down: it becomes a secondary, another
    // member of shard01 becomes the primary.
    let (stepped, line) = d.event("shard01 primary ");
    let old = addresses(line)
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    d.assert_marked(stepped, &old, "PRIMARY -> SECONDARY");
    let elected = d
        .first(stepped, |l| {
            !l.starts_with(&format!("{old} "))
                && l.contains(" shard01 ")
                && l.contains("SECONDARY -> PRIMARY")
        })
        .unwrap_or_else(|| panic!("no other shard01 member marked as new primary:\n{out}"));
    assert!(elected >= stepped);

    // An rs-app secondary is lost, then comes back.
    let (lost, line) = d.event("rs-app secondary ");
    assert!(line.contains("is lost"), "{line}");
    assert!(lost >= stepped, "events in order");
    let member = addresses(line).first().cloned().expect("member address");
    d.assert_marked(lost, &member, "down");
    let (back, line) = d.event(&format!("{member} comes back"));
    assert!(back >= lost, "{line}");
    let row_back = |l: &str| l.starts_with(&format!("{member} ")) && l.contains("back up");
    let marked_back = d
        .first(back, row_back)
        .unwrap_or_else(|| panic!("{member} never marked back up:\n{out}"));
    assert!(marked_back >= back);

    // A new shard: each of its members joins the table.
    let (added, line) = d.event("shard03 is added");
    assert!(added >= back, "events in order");
    let members = addresses(line);
    assert_eq!(members.len(), 3, "{line}");
    for m in &members {
        d.assert_marked(added, m, "joined");
    }

    // A new mongos joins too, found by the agent through the cluster.
    let (mongos_added, line) = d.event("a mongos is added");
    assert!(mongos_added >= added, "events in order");
    let mongos = addresses(line).first().cloned().expect("mongos address");
    d.assert_marked(mongos_added, &mongos, "joined");
    let last = d.0.last().copied().unwrap_or_default();
    assert!(
        last.lines()
            .any(|l| l.starts_with(&format!("{mongos} ")) && l.contains(" mongos ")),
        "the new mongos is monitored: {last}"
    );
}

#[test]
fn a_bad_timeline_scale_is_refused_with_the_range() {
    let o = common::mongomon(&["demo", "--timeline-scale", "0"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--timeline-scale") && err.contains("between 0.05 and 10"),
        "{err}"
    );
}
