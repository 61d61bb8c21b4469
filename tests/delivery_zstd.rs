//! `upload.compression` (issue 12): zstd bodies to a receiver that takes
//! them (VictoriaMetrics 1.150, built from ../shared/third_party), and the
//! same values as with gzip and without compression.

mod common;

use std::time::Duration;

use common::{Agent, Victoria};

fn config(host: &str, vm: &Victoria, compression: &str) -> String {
    format!(
        "[agent]\ninterval_secs = 1\ncommand_timeout_ms = 2000\n\
         [[targets]]\nname = \"c\"\nuri = \"mongodb://{host}/\"\ndiscover = false\n\
         [upload]\nurl = \"{}\"\ncompression = \"{compression}\"\nmax_batch_age_ms = 200\n\
         max_retries = 1\nretry_initial_ms = 100\nretry_max_ms = 200\n",
        vm.write_url()
    )
}

#[test]
fn zstd_gzip_and_plain_bodies_all_arrive_whole() {
    let (_sim, hosts) = common::deploy::standalones(3);
    let vm = Victoria::start_current();
    let mut agents: Vec<Agent> = ["zstd", "gzip", "none"]
        .iter()
        .zip(&hosts)
        .map(|(c, h)| Agent::start(&config(h, &vm, c)))
        .collect();
    for (c, h) in ["zstd", "gzip", "none"].iter().zip(&hosts) {
        let series = common::wait_for(
            &format!("{c}: serverStatus of {h}"),
            Duration::from_secs(30),
            || {
                let s = vm.export(&format!(
                    "mongodb_serverstatus_connections_current{{host=\"{h}\"}}"
                ));
                (!s.is_empty()).then_some(s)
            },
        );
        assert!(series[0].last().is_some(), "{c}");
        let up = vm.export(&format!("mongodb_up{{host=\"{h}\"}}"));
        assert_eq!(up[0].last().map(|x| x.1), Some(1.0), "{c}");
    }
    // Nothing was refused on the way: a receiver that could not decode a
    // body answers 400, which would dead-letter the batch.
    for (a, c) in agents.iter_mut().zip(["zstd", "gzip", "none"]) {
        let log = a.log();
        assert!(!log.contains("dead-letter"), "{c}: {log}");
        a.stop(Duration::from_secs(20));
    }
}

#[test]
fn compression_is_checked_against_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    for (text, want) in [
        ("compression = \"brotli\"\n", "upload.compression"),
        (
            "format = \"remote_write\"\ncompression = \"zstd\"\n",
            "snappy",
        ),
        ("compression = \"zstd\"\ngzip = false\n", "upload.gzip"),
    ] {
        std::fs::write(
            &path,
            format!("[[targets]]\nuri = \"mongodb://127.0.0.1:1\"\n[upload]\nurl = \"http://127.0.0.1:2/write\"\n{text}"),
        )
        .unwrap();
        let o = common::mongomon(&["config", "-c", path.to_str().unwrap()], &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "want {want}: {err}");
    }
}
