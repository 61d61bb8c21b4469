//! Fuzzing on stable Rust, with proptest: every input the agent reads from
//! outside (the configuration's layers, BSON replies, wire frames on both
//! ends, its own spool files) fed arbitrary and structured input, and the
//! encoders' output parsed back by independent parsers (InfluxDB's line
//! protocol parser, the remote-write protobuf decoded with prost).
//!
//! In the suite each target runs a fixed number of cases from a fixed seed,
//! so a run is repeatable and bounded (well under the two minutes allowed).
//! `scripts/fuzz.sh SECS` runs each target for SECS seconds from random
//! seeds and prints executions and failures (`MONGOMON_FUZZ_SECS`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bson::{Bson, Document, RawDocument, RawDocumentBuf};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use mongomon::format::flatten::{flatten, Number};
use mongomon::sample::{Body, Labels, Role, Sample};
use mongomon::wire::frame;

/// Runs `test` over `strategy`: `cases` cases from a fixed seed in the
/// suite, or for `MONGOMON_FUZZ_SECS` seconds from random seeds. Prints
/// the executions; a failure panics with the (shrunk) input.
fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let fuzz_secs = std::env::var("MONGOMON_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut executions = 0u64;
    let started = Instant::now();
    let mut round = 0u64;
    loop {
        let mut runner = match fuzz_secs {
            None => TestRunner::new_with_rng(
                config.clone(),
                TestRng::from_seed(RngAlgorithm::ChaCha, &[7u8; 32]),
            ),
            Some(_) => TestRunner::new(config.clone()),
        };
        if let Err(e) = runner.run(&strategy, &test) {
            eprintln!("fuzz {name}: executions {executions}, failures 1");
            panic!("fuzz {name}: {e}");
        }
        executions += cases as u64;
        round += 1;
        match fuzz_secs {
            Some(secs) if started.elapsed() < Duration::from_secs(secs) => continue,
            _ => break,
        }
    }
    eprintln!(
        "fuzz {name}: executions {executions}, failures 0, {round} rounds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---- the configuration's layers -------------------------------------------

/// TOML-ish text: real section and key names with arbitrary values, so
/// that most inputs get past the parser into validation.
fn toml_text() -> impl Strategy<Value = String> {
    let section = prop::sample::select(vec![
        "[agent]",
        "[upload]",
        "[[upload]]",
        "[[targets]]",
        "[spool]",
        "[discovery]",
        "[collect]",
        "[http]",
        "[fleet]",
        "[bogus]",
    ]);
    let key = prop::sample::select(vec![
        "interval_secs",
        "url",
        "uri",
        "name",
        "api_key",
        "max_bytes",
        "on_full",
        "format",
        "compression",
        "listen",
        "enabled",
        "etcd_endpoints",
        "lease_ttl_secs",
        "weight",
        "profile",
        "include",
        "spool_dir",
        "log_level",
        "workers",
        "password_env",
        "hosts",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "\\PC{0,24}".prop_map(|s| format!("{s:?}")),
        Just("true".to_string()),
        Just("[\"http://127.0.0.1:1\", 3]".to_string()),
        Just("{ a = 1 }".to_string()),
        "\\PC{0,12}",
    ];
    prop::collection::vec((section, prop::collection::vec((key, value), 0..5)), 0..6).prop_map(
        |sections| {
            let mut s = String::new();
            for (sec, kvs) in sections {
                s.push_str(sec);
                s.push('\n');
                for (k, v) in kvs {
                    s.push_str(&format!("{k} = {v}\n"));
                }
            }
            s
        },
    )
}

#[test]
fn fuzz_config_toml_and_cli_layers() {
    run("config_toml", 3000, toml_text(), |text| {
        // Any outcome but a panic; errors must name a key or the file.
        if let Ok(raw) = mongomon::config::load_str(&text, &serde_json::json!({})) {
            let _ = mongomon::config::validate(&raw, None);
        }
        Ok(())
    });
    run("config_toml_bytes", 3000, "\\PC{0,200}", |text| {
        if let Ok(raw) = mongomon::config::load_str(&text, &serde_json::json!({})) {
            let _ = mongomon::config::validate(&raw, None);
        }
        Ok(())
    });
    // The CLI layer (a JSON object merged over the file).
    let base = "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n";
    let leaf = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,16}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ];
    let layer = prop::collection::btree_map(
        prop::sample::select(vec!["agent", "upload", "spool", "http", "fleet", "collect"]),
        prop::collection::btree_map(
            prop::sample::select(vec![
                "interval_secs",
                "url",
                "max_bytes",
                "listen",
                "enabled",
                "workers",
                "etcd_endpoints",
                "lease_ttl_secs",
                "timeout_secs",
                "profile",
            ]),
            leaf,
            0..4,
        ),
        0..4,
    );
    run("config_cli_layer", 2000, layer, |layer| {
        let overrides = serde_json::to_value(layer).unwrap();
        if let Ok(raw) = mongomon::config::load_str(base, &overrides) {
            let _ = mongomon::config::validate(&raw, None);
        }
        Ok(())
    });
}

#[test]
// figment's Jail closures return figment::Error, which is large; fine in tests.
#[allow(clippy::result_large_err)]
fn fuzz_config_environment_layer() {
    let var = (
        prop::sample::select(vec![
            "MONGOMON_AGENT__INTERVAL_SECS",
            "MONGOMON_UPLOAD__URL",
            "MONGOMON_SPOOL__MAX_BYTES",
            "MONGOMON_FLEET__ETCD_ENDPOINTS",
            "MONGOMON_HTTP__ENABLED",
            "MONGOMON_AGENT__BOGUS",
            "MONGOMON_COLLECT__INCLUDE",
        ]),
        "[ -~]{0,24}",
    );
    run("config_env", 64, prop::collection::vec(var, 0..4), |vars| {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                    "m.toml",
                    "[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n",
                )?;
            for (k, v) in &vars {
                jail.set_env(k, v);
            }
            if let Ok(raw) =
                mongomon::config::load(std::path::Path::new("m.toml"), &serde_json::json!({}))
            {
                let _ = mongomon::config::validate(&raw, None);
            }
            Ok(())
        });
        Ok(())
    });
}

// ---- BSON flattening ------------------------------------------------------

/// Documents of numbers, booleans, strings, arrays and subdocuments, with
/// keys that need sanitising (and `$` keys that are skipped).
fn document(depth: u32) -> impl Strategy<Value = Document> {
    let key = "[a-zA-Z0-9_$ .,=\"\\\\é-]{0,8}";
    let leaf = prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        any::<bool>().prop_map(Bson::Boolean),
        "\\PC{0,8}".prop_map(Bson::String),
        Just(Bson::Null),
        prop::collection::vec(any::<i32>().prop_map(Bson::Int32), 0..3).prop_map(Bson::Array),
    ];
    let leaves = prop::collection::vec((key, leaf), 0..8)
        .prop_map(|kvs| kvs.into_iter().collect::<Document>());
    leaves.prop_recursive(depth, 64, 6, move |inner| {
        prop::collection::vec(
            (
                "[a-z$_]{0,6}",
                prop_oneof![
                    inner.prop_map(Bson::Document),
                    any::<i64>().prop_map(Bson::Int64)
                ],
            ),
            0..6,
        )
        .prop_map(|kvs| kvs.into_iter().collect::<Document>())
    })
}

/// The numeric leaves flatten must find: numbers, booleans, finite
/// doubles, outside `$` keys and arrays.
fn numeric_leaves(doc: &Document) -> usize {
    doc.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(_, v)| match v {
            Bson::Int32(_) | Bson::Int64(_) | Bson::Boolean(_) => 1,
            Bson::Double(f) if f.is_finite() => 1,
            Bson::Document(d) => numeric_leaves(d),
            _ => 0,
        })
        .sum()
}

fn flattened(doc: &RawDocument) -> Vec<(String, Number)> {
    let mut out = Vec::new();
    flatten(doc, "", &mut |name, n| out.push((name.to_string(), n)));
    out
}

#[test]
fn fuzz_bson_flatten() {
    run("flatten_valid_documents", 2000, document(4), |doc| {
        let raw = RawDocumentBuf::from_document(&doc).unwrap();
        let got = flattened(&raw);
        prop_assert_eq!(got.len(), numeric_leaves(&doc));
        for (name, _) in &got {
            prop_assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{}",
                name
            );
        }
        Ok(())
    });
    // Arbitrary bytes behind a correct length prefix: validation decides,
    // and flattening whatever the BSON reader accepts never panics.
    run(
        "flatten_arbitrary_bytes",
        2000,
        prop::collection::vec(any::<u8>(), 0..200),
        |mut body| {
            let len = (body.len() + 5) as i32;
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.append(&mut body);
            bytes.push(0);
            let valid = mongomon::wire::raw::validate(&bytes).is_ok();
            if let Ok(doc) = RawDocument::from_bytes(&bytes) {
                let _ = flattened(doc);
            }
            let _ = valid;
            Ok(())
        },
    );
}

// ---- wire frames, both ends -----------------------------------------------

fn header_bytes(len: i32, request_id: i32, response_to: i32, op: i32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[4..8].copy_from_slice(&request_id.to_le_bytes());
    h[8..12].copy_from_slice(&response_to.to_le_bytes());
    h[12..16].copy_from_slice(&op.to_le_bytes());
    h
}

#[test]
fn fuzz_wire_frames_on_both_ends() {
    use mongomon::wire::compress::Compressor;
    let op = prop_oneof![Just(2013i32), Just(2004), Just(1), Just(2012), any::<i32>()];
    let frames = (op, prop::collection::vec(any::<u8>(), 0..300), any::<i32>());
    let compressors = vec![
        Compressor::Snappy,
        Compressor::Zlib { level: 1 },
        Compressor::Zstd,
    ];
    run("frame_decode", 20000, frames, |(op, body, rid)| {
        let raw = header_bytes(body.len() as i32 + 16, rid, 7, op);
        if let Ok(h) = frame::Header::parse(&raw) {
            // The simulator's side: a request.
            let _ = frame::decode_request_with(h, &body, &compressors);
            // The agent's side: a reply to request 7... or not.
            let h2 = frame::Header::parse(&header_bytes(body.len() as i32 + 16, 9, rid, op));
            if let Ok(h2) = h2 {
                let _ = frame::parse_reply(h2, body.clone(), 7, &compressors);
            }
        }
        Ok(())
    });
    // Valid frames survive their own round trip, on both ends.
    run("frame_round_trip", 2000, document(2), |doc| {
        let bytes = bson::to_vec(&doc).unwrap();
        let msg = frame::encode_op_msg(5, 11, 0, &bytes);
        let h = frame::Header::parse(msg[..16].try_into().unwrap()).unwrap();
        let reply = frame::parse_reply(h, msg[16..].to_vec(), 11, &[]).unwrap();
        prop_assert_eq!(reply.as_bytes(), &bytes[..]);
        Ok(())
    });
    // Arbitrary headers never panic, whatever their length fields say.
    run("frame_header", 20000, any::<[u8; 16]>(), |h| {
        let _ = frame::Header::parse(&h);
        Ok(())
    });
}

// ---- the spool reader -----------------------------------------------------

#[test]
fn fuzz_spool_reader() {
    use mongomon::actors::uploader::spool::Spool;
    use mongomon::config::{FsyncPolicy, FullPolicy, SpoolSettings};
    run(
        "spool_open",
        300,
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..3),
        |segments| {
            let dir = tempfile::tempdir().unwrap();
            for (i, seg) in segments.iter().enumerate() {
                std::fs::write(dir.path().join(format!("{:016}.seg", i + 1)), seg).unwrap();
            }
            let settings = SpoolSettings {
                dir: dir.path().to_path_buf(),
                max_bytes: 1 << 20,
                segment_bytes: 1 << 16,
                fsync: FsyncPolicy::Never,
                on_full: FullPolicy::DropOldest,
            };
            // Damaged records are cut and counted; whatever replays reads.
            if let Ok((spool, replay)) = Spool::open(settings) {
                for (_, at) in &replay.batches {
                    let _ = spool.read(*at);
                }
            }
            Ok(())
        },
    );
}

// ---- encoders, parsed back ------------------------------------------------

fn label_value() -> impl Strategy<Value = String> {
    // Spaces, commas, equals signs, quotes and backslashes all need
    // escaping in line protocol; non-ASCII passes through.
    "[a-zA-Z0-9 ,=\"\\\\:.é-]{1,12}".prop_filter("not only spaces", |s| !s.trim().is_empty())
}

fn sample_of(doc: &Document, host: &str, cluster: &str, replset: &Option<String>) -> Sample {
    Sample {
        labels: Arc::new(Labels {
            host: host.to_string(),
            cluster: cluster.to_string(),
            replset: replset.clone(),
            shard: None,
            role: Role::Primary,
            version: Some("7.0.12".into()),
        }),
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        duration: Duration::from_millis(3),
        body: Body::Reply {
            command: "hostInfo",
            doc: RawDocumentBuf::from_document(doc).unwrap(),
        },
    }
}

/// A reply and the labels (host, cluster, replica set) of its sample.
fn encoder_input() -> impl Strategy<Value = (Document, String, String, Option<String>)> {
    (
        document(3),
        label_value(),
        label_value(),
        prop::option::of(label_value()),
    )
}

fn number(n: &Number) -> f64 {
    n.as_f64()
}

#[test]
fn fuzz_line_protocol_parses_back() {
    use influxdb_line_protocol::{parse_lines, FieldValue};
    let input = encoder_input();
    run(
        "influx_round_trip",
        2000,
        input,
        |(doc, host, cluster, replset)| {
            let sample = sample_of(&doc, &host, &cluster, &replset);
            let mut out = Vec::new();
            mongomon::format::influx::encode(&sample, &mut out);
            let text = String::from_utf8(out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let want = flattened(&RawDocumentBuf::from_document(&doc).unwrap());
            let mut got = Vec::new();
            for line in parse_lines(&text) {
                let line = line.map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                let tags = line.series.tag_set.clone().unwrap_or_default();
                let tag = |k: &str| {
                    tags.iter()
                        .find(|(n, _)| n.as_str() == k)
                        .map(|(_, v)| v.to_string())
                };
                // Trailing backslashes are dropped (line protocol cannot end a
                // value with one); a value left empty is no tag.
                let shown = |v: &str| {
                    let t = v.trim_end_matches('\\');
                    (!t.is_empty()).then(|| t.to_string())
                };
                prop_assert_eq!(tag("host"), shown(&host));
                prop_assert_eq!(tag("cluster"), shown(&cluster));
                prop_assert_eq!(tag("replset"), replset.as_deref().and_then(shown));
                for (k, v) in &line.field_set {
                    let v = match v {
                        FieldValue::I64(i) => *i as f64,
                        FieldValue::U64(u) => *u as f64,
                        FieldValue::F64(f) => *f,
                        FieldValue::Boolean(b) => *b as u8 as f64,
                        FieldValue::String(_) => continue,
                    };
                    got.push((k.to_string(), v));
                }
            }
            // Every numeric leaf arrives once, under its name, with its value.
            prop_assert_eq!(got.len(), want.len(), "{}", text);
            for ((gn, gv), (wn, wv)) in got.iter().zip(&want) {
                prop_assert_eq!(gn, wn);
                prop_assert!(*gv == number(wv), "{} = {} != {:?}", gn, gv, wv);
            }
            Ok(())
        },
    );
}

#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<PromSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PromSample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

#[test]
fn fuzz_remote_write_decodes_back() {
    use prost::Message as _;
    let input = encoder_input();
    run(
        "remote_write_round_trip",
        2000,
        input,
        |(doc, host, cluster, replset)| {
            let sample = sample_of(&doc, &host, &cluster, &replset);
            let mut out = Vec::new();
            mongomon::format::remote_write::encode(&sample, &mut out);
            let req = WriteRequest::decode(&out[..])
                .map_err(|e| TestCaseError::fail(format!("not a WriteRequest: {e}")))?;
            let want = flattened(&RawDocumentBuf::from_document(&doc).unwrap());
            prop_assert_eq!(req.timeseries.len(), want.len());
            for (ts, (name, value)) in req.timeseries.iter().zip(&want) {
                let label = |k: &str| {
                    ts.labels
                        .iter()
                        .find(|l| l.name == k)
                        .map(|l| l.value.clone())
                };
                prop_assert_eq!(label("__name__"), Some(format!("mongodb_hostinfo_{name}")));
                prop_assert_eq!(label("host"), Some(host.clone()));
                prop_assert_eq!(label("cluster"), Some(cluster.clone()));
                prop_assert_eq!(label("replset"), replset.clone());
                prop_assert_eq!(ts.samples.len(), 1);
                prop_assert!(ts.samples[0].value == number(value));
                prop_assert_eq!(ts.samples[0].timestamp, 1_700_000_000_000);
            }
            Ok(())
        },
    );
}
