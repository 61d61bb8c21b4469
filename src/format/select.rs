//! Which fields of a reply are sent: `[collect]`'s profile, `include` and
//! `exclude`, as glob patterns on series names.
//!
//! A series name is `<measurement>_<field>` as the receiver stores it
//! (`mongodb_serverstatus_connections_current`), so the patterns an
//! operator writes are the names they see in PromQL. A field is kept when
//! no `exclude` pattern matches and either an `include` pattern or the
//! profile does (Telegraf's fielddrop over fieldpass). Only reply
//! measurements are selected: host status (`mongodb`, `up`), derived
//! points (replica-set members, oplog window, schema drift) and the agent's
//! own counters are what alerts and the accounting rest on, and always go.
//!
//! Matching ~1,100 names against a few hundred patterns for every sample
//! would cost more than encoding them, so each series name's decision is
//! cached: replies keep their shape from one round to the next.

use std::collections::HashMap;

use crate::config::{CollectProfile, CollectSettings};

/// The `standard` profile: what operators chart and alert on.
pub const STANDARD: &str = include_str!("../../config/collect/standard.txt");

/// More distinct series names than this and the cache starts over: a
/// bound on what a hostile or very wide reply can make it hold.
const CACHE_LIMIT: usize = 200_000;

/// The selection of one agent, owned by the batcher.
#[derive(Debug, Default)]
pub struct Selection {
    /// `None`: everything is kept, with no lookup at all.
    rules: Option<Rules>,
    cache: HashMap<String, bool>,
    scratch: String,
}

#[derive(Debug)]
struct Rules {
    profile: Vec<String>,
    all_by_profile: bool,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    /// Every field of every reply.
    pub fn full() -> Self {
        Selection::default()
    }

    pub fn new(s: &CollectSettings) -> Self {
        if s.profile == CollectProfile::Full && s.exclude.is_empty() {
            // `include` adds nothing to a profile that keeps everything.
            return Selection::full();
        }
        let profile = match s.profile {
            CollectProfile::Full => Vec::new(),
            CollectProfile::Standard => patterns(STANDARD),
        };
        Selection {
            rules: Some(Rules {
                profile,
                all_by_profile: s.profile == CollectProfile::Full,
                include: s.include.clone(),
                exclude: s.exclude.clone(),
            }),
            cache: HashMap::new(),
            scratch: String::new(),
        }
    }

    /// Whether `measurement`'s field `field` is sent.
    #[inline]
    pub fn keeps(&mut self, measurement: &str, field: &str) -> bool {
        let Some(rules) = &self.rules else {
            return true;
        };
        self.scratch.clear();
        self.scratch.push_str(measurement);
        self.scratch.push('_');
        self.scratch.push_str(field);
        if let Some(k) = self.cache.get(self.scratch.as_str()) {
            return *k;
        }
        let name = self.scratch.as_str();
        let keep = !rules.exclude.iter().any(|p| glob_match(p, name))
            && (rules.all_by_profile
                || rules.include.iter().any(|p| glob_match(p, name))
                || rules.profile.iter().any(|p| glob_match(p, name)));
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(self.scratch.clone(), keep);
        keep
    }
}

/// The patterns of a profile file: one per line, `#` comments.
pub fn patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Whether a pattern can ever match a series name: names hold only
/// `[A-Za-z0-9_]`, patterns also `*` and `?`.
pub fn valid_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_*?".contains(&b))
}

/// `*` matches any run of characters (also none), `?` exactly one; the rest
/// matches itself. Iterative, with one backtrack point: linear in practice
/// and never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(profile: CollectProfile, include: &[&str], exclude: &[&str]) -> CollectSettings {
        CollectSettings {
            profile,
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match(
            "mongodb_serverstatus_*",
            "mongodb_serverstatus_uptime"
        ));
        assert!(glob_match(
            "*_current",
            "mongodb_serverstatus_connections_current"
        ));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
        assert!(glob_match("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_match("*a*b*c", "xxaxxbxxcxx"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exactly"));
        assert!(glob_match("*", "") && !glob_match("?", ""));
        // No blow-up on many stars against a long non-matching name.
        let long = "a".repeat(5_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn exclude_wins_then_include_or_profile() {
        let mut s = Selection::new(&settings(
            CollectProfile::Standard,
            &["mongodb_serverstatus_logicalSessionRecordCache_*"],
            &["mongodb_serverstatus_opcounters_command"],
        ));
        assert!(s.keeps("mongodb_serverstatus", "connections_current"));
        assert!(s.keeps("mongodb_serverstatus", "opcounters_insert"));
        assert!(!s.keeps("mongodb_serverstatus", "opcounters_command"));
        assert!(s.keeps("mongodb_serverstatus", "metrics_ttl_passes"));
        assert!(!s.keeps(
            "mongodb_serverstatus",
            "tcmalloc_tcmalloc_pageheap_free_bytes_x"
        ));
        // Cached answers are the same answers.
        assert!(!s.keeps("mongodb_serverstatus", "opcounters_command"));
        assert!(s.keeps("mongodb_serverstatus", "connections_current"));

        let mut full = Selection::new(&settings(CollectProfile::Full, &[], &["*_wiredTiger_*"]));
        assert!(full.keeps("mongodb_serverstatus", "anything_at_all"));
        assert!(!full.keeps("mongodb_serverstatus", "x_wiredTiger_cache_y"));
        assert!(Selection::full().keeps("m", "f"));
    }

    #[test]
    fn the_standard_profile_is_valid_and_of_the_documented_size() {
        let p = patterns(STANDARD);
        assert!(p.iter().all(|x| valid_pattern(x)), "{p:?}");
        // What it keeps of a real 4.2.8 serverStatus (the simulator's
        // capture), against every numeric field of it.
        let doc =
            bson::RawDocumentBuf::from_document(crate::sim::fixtures::server_status_42()).unwrap();
        let mut sel = Selection::new(&settings(CollectProfile::Standard, &[], &[]));
        let (mut all, mut kept) = (0, 0);
        crate::format::flatten::flatten(&doc, "", &mut |name, _| {
            all += 1;
            kept += sel.keeps("mongodb_serverstatus", name) as usize;
        });
        assert!(all > 1_000, "{all} fields in the capture");
        assert!(
            (150..=350).contains(&kept),
            "standard keeps {kept} of {all}"
        );
    }
}
