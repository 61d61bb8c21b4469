//! Keeping metric names stable across server versions.
//!
//! Servers rename fields between versions; operators' dashboards should not
//! notice. [`normalize_server_status`] adds the long-standing name next to a
//! renamed field (8.0's `queues.execution` also appears as
//! `wiredTiger.concurrentTransactions`), and [`unmapped_fields`] counts the
//! numeric fields of a reply that the reference document (a real 4.2.8
//! serverStatus) does not have, so drift shows up as a number per host.

use std::collections::HashSet;
use std::sync::OnceLock;

use bson::{Bson, Document, RawDocument, RawDocumentBuf};

use super::flatten::{flatten, Number};

/// The legacy section `queues.execution` stands in for, when the reply has
/// it but not its old name.
fn execution_without_legacy(doc: &RawDocument) -> Option<&RawDocument> {
    let exec = doc
        .get_document("queues")
        .ok()?
        .get_document("execution")
        .ok()?;
    let legacy = doc
        .get_document("wiredTiger")
        .ok()
        .is_some_and(|wt| wt.get("concurrentTransactions").ok().flatten().is_some());
    // A wiredTiger that is not a document is left alone, as in the JSON form.
    let odd_wt = matches!(doc.get("wiredTiger"), Ok(Some(v)) if v.as_document().is_none());
    (!legacy && !odd_wt).then_some(exec)
}

/// Emits the old names of renamed sections, when only the new one is
/// present: 8.0's `queues.execution.read.*` also as
/// `wiredTiger_concurrentTransactions_read_*`.
pub fn legacy_names(doc: &RawDocument, emit: &mut dyn FnMut(&str, Number)) {
    let Some(exec) = execution_without_legacy(doc) else {
        return;
    };
    for side in ["read", "write"] {
        if let Ok(d) = exec.get_document(side) {
            flatten(
                d,
                &format!("wiredTiger_concurrentTransactions_{side}"),
                emit,
            );
        }
    }
}

/// The same for the whole-document form (JSON lines): the old section is
/// added to the document.
pub fn normalize_server_status(doc: &mut Document) {
    let execution = doc
        .get_document("queues")
        .ok()
        .and_then(|q| q.get_document("execution").ok())
        .cloned();
    if let Some(exec) = execution {
        let mut legacy = Document::new();
        for side in ["read", "write"] {
            if let Ok(d) = exec.get_document(side) {
                legacy.insert(side, d.clone());
            }
        }
        if legacy.is_empty() {
            return;
        }
        match doc.get_mut("wiredTiger") {
            Some(Bson::Document(wt)) => {
                if !wt.contains_key("concurrentTransactions") {
                    wt.insert("concurrentTransactions", legacy);
                }
            }
            None => {
                let mut wt = Document::new();
                wt.insert("concurrentTransactions", legacy);
                doc.insert("wiredTiger", wt);
            }
            Some(_) => {}
        }
    }
}

fn reference() -> &'static HashSet<String> {
    static NAMES: OnceLock<HashSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashSet::new();
        if let Ok(raw) = RawDocumentBuf::from_document(crate::sim::fixtures::server_status_42()) {
            flatten(&raw, "", &mut |n, _| {
                names.insert(n.to_string());
            });
        }
        names
    })
}

/// Numeric fields of `doc` (flattened, old names included) that the
/// reference serverStatus lacks.
pub fn unmapped_fields(doc: &RawDocument) -> u64 {
    let known = reference();
    let mut n = 0;
    let mut count = |name: &str, _| {
        if !known.contains(name) {
            n += 1;
        }
    };
    flatten(doc, "", &mut count);
    legacy_names(doc, &mut count);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn the_raw_walk_emits_the_old_names_once() {
        let d = doc! {
            "queues": {"execution": {"read": {"out": 1, "available": 127}}},
            "wiredTiger": {"cache": {"bytes currently in the cache": 5}},
        };
        let raw = RawDocumentBuf::from_document(&d).unwrap();
        let mut names = Vec::new();
        legacy_names(&raw, &mut |n, _| names.push(n.to_string()));
        assert_eq!(
            names,
            [
                "wiredTiger_concurrentTransactions_read_out",
                "wiredTiger_concurrentTransactions_read_available"
            ]
        );
        let old = doc! {"wiredTiger": {"concurrentTransactions": {"read": {"out": 9}}}, "queues": {"execution": {"read": {"out": 1}}}};
        let raw = RawDocumentBuf::from_document(&old).unwrap();
        let mut n = 0;
        legacy_names(&raw, &mut |_, _| n += 1);
        assert_eq!(n, 0, "an old server's own section is not doubled");
    }

    #[test]
    fn execution_queues_also_appear_under_the_old_name() {
        let mut d = doc! {
            "queues": {"execution": {"read": {"out": 1, "available": 127, "totalTickets": 128},
                                     "write": {"out": 0, "available": 128, "totalTickets": 128}}},
            "wiredTiger": {"cache": {"bytes currently in the cache": 5}},
        };
        normalize_server_status(&mut d);
        let ct = d
            .get_document("wiredTiger")
            .unwrap()
            .get_document("concurrentTransactions")
            .unwrap();
        assert_eq!(
            ct.get_document("read")
                .unwrap()
                .get_i32("available")
                .unwrap(),
            127
        );
        // An old server's own section is left alone.
        let mut old = doc! {"wiredTiger": {"concurrentTransactions": {"read": {"out": 9}}}, "queues": {"execution": {"read": {"out": 1}}}};
        normalize_server_status(&mut old);
        assert_eq!(
            old.get_document("wiredTiger")
                .unwrap()
                .get_document("concurrentTransactions")
                .unwrap()
                .get_document("read")
                .unwrap()
                .get_i32("out")
                .unwrap(),
            9
        );
    }

    #[test]
    fn drift_is_counted_against_the_reference() {
        let raw = |d: &Document| RawDocumentBuf::from_document(d).unwrap();
        assert_eq!(
            unmapped_fields(&raw(crate::sim::fixtures::server_status_42())),
            0
        );
        let d = doc! {"connections": {"current": 1}, "brandNewSection": {"a": 1, "b": 2.0}};
        assert_eq!(unmapped_fields(&raw(&d)), 2);
    }
}
