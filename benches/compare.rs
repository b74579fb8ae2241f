//! recfile against MCAP and the raw limit, with criterion: writing 100-byte frames, reading
//! every frame, finding the closest frame. `cargo bench --bench compare`; the one-table summary
//! with every target is `benches/compare.sh`.

#[path = "common/mod.rs"]
mod common;

use common::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use recfile::{Durability, RecFile, Timestamp};
use std::time::Duration;

const N: u64 = 200_000;

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("recfile-compare-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn writes(c: &mut Criterion) {
    let d = dir();
    let payload = vec![7u8; 100];
    let mut g = c.benchmark_group("write_100B");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("recfile_default", |b| {
        b.iter_custom(|n| (0..n).map(|_| write_rec(&d.join("w.rec"), N, &payload, Durability::default())).sum())
    });
    g.bench_function("recfile_every_checkpoint", |b| {
        b.iter_custom(|n| (0..n).map(|_| write_rec(&d.join("w2.rec"), N, &payload, Durability::EveryCheckpoint)).sum())
    });
    g.bench_function("mcap_chunked", |b| b.iter_custom(|n| (0..n).map(|_| write_mcap(&d.join("w.mcap"), N, &payload)).sum()));
    g.bench_function("raw_limit", |b| b.iter_custom(|n| (0..n).map(|_| write_raw(&d.join("w.raw"), N, &payload)).sum()));
    g.finish();
}

fn reads(c: &mut Criterion) {
    let d = dir();
    let payload = vec![7u8; 100];
    write_rec(&d.join("r.rec"), N, &payload, Durability::None);
    write_mcap(&d.join("r.mcap"), N, &payload);
    write_raw(&d.join("r.raw"), N, &payload);
    let mut g = c.benchmark_group("read_all_100B");
    g.throughput(Throughput::Elements(N));
    g.bench_function("recfile_iterate", |b| b.iter_custom(|n| (0..n).map(|_| read_rec(&d.join("r.rec")).0).sum()));
    g.bench_function("recfile_scan", |b| b.iter_custom(|n| (0..n).map(|_| scan_rec(&d.join("r.rec")).0).sum()));
    g.bench_function("mcap_message_stream", |b| b.iter_custom(|n| (0..n).map(|_| read_mcap(&d.join("r.mcap")).0).sum()));
    g.bench_function("raw_parse", |b| b.iter_custom(|n| (0..n).map(|_| read_raw(&d.join("r.raw")).0).sum()));
    g.finish();
}

fn lookups(c: &mut Criterion) {
    let d = dir();
    let n = 2_000_000;
    write_rec(&d.join("l.rec"), n, &[1u8; 8], Durability::None);
    write_mcap(&d.join("l.mcap"), n, &[1u8; 8]);
    let q = queries(n, 4096);
    let f = RecFile::open(d.join("l.rec")).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    let mut g = c.benchmark_group("closest_2M");
    let mut i = 0;
    g.bench_function("recfile_find_closest", |b| {
        b.iter(|| {
            i = (i + 1) % q.len();
            black_box(r.find_closest(Timestamp::from_nanos(q[i]), None))
        })
    });
    g.sample_size(10);
    g.bench_function("mcap_best_index_path", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|k| Duration::from_nanos(closest_mcap(&d.join("l.mcap"), &q[(k as usize % 4000)..(k as usize % 4000) + 1])[0]))
                .sum()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

criterion_group!(benches, lookups, reads, writes);
criterion_main!(benches);
