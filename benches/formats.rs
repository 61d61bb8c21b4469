//! Micro benches of the hot paths per host-sample, on the real 4.2.8
//! `serverStatus` capture: flattening into line protocol and into
//! remote-write, JSON encoding of the whole sample, gzip of a megabyte of
//! line protocol, and spool append and replay. Each reports both MB/s (of
//! output or input bytes) and host-samples/s.
//!
//! `cargo bench --bench formats`

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mongomon::actors::uploader::queue::{Batch, Class, Encoding};
use mongomon::actors::uploader::spool::Spool;
use mongomon::config::{FsyncPolicy, FullPolicy, SpoolSettings};
use mongomon::format::{influx, json, remote_write};
use mongomon::sample::{Body, Labels, Role, Sample};

fn sample() -> Sample {
    Sample {
        labels: Arc::new(Labels {
            host: "db-17.example.net:27017".into(),
            cluster: "prod".into(),
            replset: Some("rs3".into()),
            shard: None,
            role: Role::Primary,
            version: Some("4.2.8".into()),
        }),
        time: SystemTime::now(),
        duration: Duration::from_millis(4),
        body: Body::Reply {
            command: "serverStatus",
            doc: bson::RawDocumentBuf::from_document(mongomon::sim::fixtures::server_status_42())
                .unwrap(),
        },
    }
}

fn encoders(c: &mut Criterion) {
    let s = sample();
    type Enc = fn(&Sample, &mut Vec<u8>);
    let all: [(&str, Enc); 3] = [
        ("influx", influx::encode),
        ("remote_write", remote_write::encode),
        ("json", json::encode),
    ];
    for (name, enc) in all {
        let mut out = Vec::new();
        enc(&s, &mut out);
        let bytes = out.len() as u64;
        let mut g = c.benchmark_group(format!("encode_{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("host_samples", |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(bytes as usize);
                enc(black_box(&s), &mut out);
                out
            })
        });
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function("output_bytes", |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(bytes as usize);
                enc(black_box(&s), &mut out);
                out
            })
        });
        g.finish();
    }
}

/// A megabyte of real line protocol, and how many host-samples it holds.
fn megabyte() -> (Vec<u8>, u64) {
    let s = sample();
    let mut buf = Vec::new();
    let mut n = 0;
    while buf.len() < 1 << 20 {
        influx::encode(&s, &mut buf);
        n += 1;
    }
    (buf, n)
}

fn gzip(c: &mut Criterion) {
    let (mb, n) = megabyte();
    // The batcher's compressor: one deflate state, reset per batch.
    let mut gz = mongomon::actors::batcher::gzip::Gzip::default();
    let mut g = c.benchmark_group("gzip_fast");
    g.throughput(Throughput::Bytes(mb.len() as u64));
    g.bench_function("input_bytes", |b| {
        b.iter(|| gz.compress(black_box(&mb)).unwrap())
    });
    g.throughput(Throughput::Elements(n));
    g.bench_function("host_samples", |b| {
        b.iter(|| gz.compress(black_box(&mb)).unwrap())
    });
    g.finish();
}

fn spool(c: &mut Criterion) {
    let (mb, n) = megabyte();
    // A batch as the batcher makes them: 1 MiB of line protocol, gzipped.
    let body = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&mb).unwrap();
        Bytes::from(e.finish().unwrap())
    };
    let batch = |i: u64| Batch {
        id: format!("bench-{i}"),
        body: body.clone(),
        class: Class::Bulk,
        encoding: Encoding::Gzip,
        samples: n,
        created: SystemTime::now(),
    };
    let settings = |dir: &std::path::Path| SpoolSettings {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 40,
        segment_bytes: 16 << 20,
        fsync: FsyncPolicy::Never,
        on_full: FullPolicy::DropOldest,
    };
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Bytes(body.len() as u64));
    let dir = tempfile::tempdir().unwrap();
    let (mut sp, _) = Spool::open(settings(dir.path())).unwrap();
    let mut i = 0;
    g.bench_function("append_batch_bytes", |b| {
        b.iter(|| {
            i += 1;
            let (at, _) = sp.append(&batch(i), &|_| false).unwrap();
            // Keep the directory small: acknowledge as the uploader would.
            sp.ack(at).unwrap();
        })
    });
    drop(sp);
    // Replay: open a spool holding 64 such batches.
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut sp, _) = Spool::open(settings(dir.path())).unwrap();
        for i in 0..64 {
            sp.append(&batch(i), &|_| false).unwrap();
        }
    }
    g.throughput(Throughput::Bytes(body.len() as u64 * 64));
    g.sample_size(10);
    g.bench_function("replay_64_batches_bytes", |b| {
        b.iter(|| {
            let (_, replay) = Spool::open(settings(dir.path())).unwrap();
            assert_eq!(replay.batches.len(), 64);
        })
    });
    g.throughput(Throughput::Elements(n * 64));
    g.bench_function("replay_64_batches_host_samples", |b| {
        b.iter(|| {
            let (_, replay) = Spool::open(settings(dir.path())).unwrap();
            assert_eq!(replay.batches.len(), 64);
        })
    });
    g.finish();
}

criterion_group!(benches, encoders, gzip, spool);
criterion_main!(benches);
