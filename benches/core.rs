//! Core benchmarks: writing, closest-frame lookup on 10M frames, open time, iteration, and the
//! bytes each frame costs on disk. Run with `cargo bench --bench core`.
//!
//! Besides criterion's own report, the lookup benchmark prints p50/p99 of single lookups and the
//! setup prints the per-frame overhead, for the README's table.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use recfile::{RecFile, RecorderOptions, Timestamp};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIG_FRAMES: u64 = 10_000_000;
const FRAME_PERIOD_NS: i64 = 1_000_000; // 1 kHz
const T0: i64 = 1_704_067_200_000_000_000;

fn bench_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("recfile-bench-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Writes `frames` frames of `payload` bytes at 1 kHz into a new file.
fn write_file(path: &Path, frames: u64, payload: usize) -> u64 {
    let _ = std::fs::remove_file(path);
    let mut rec = RecorderOptions::new().create(path).unwrap();
    let mut s = rec.start_session("bench").unwrap();
    let id = s.add_stream("lidar", "raw").unwrap();
    let data = vec![0xABu8; payload];
    for i in 0..frames as i64 {
        s.write(id, Timestamp::from_nanos(T0 + i * FRAME_PERIOD_NS), &data).unwrap();
    }
    s.finish().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn big_file() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let p = bench_dir().join("big.rec");
        let payload = 8;
        let size = write_file(&p, BIG_FRAMES, payload);
        let overhead = (size as f64 - (BIG_FRAMES as usize * payload) as f64) / BIG_FRAMES as f64;
        println!("\n[setup] {BIG_FRAMES} frames of {payload} B: {size} bytes, {overhead:.2} bytes of overhead per frame (index included)");
        p
    })
}

fn small_file() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let p = bench_dir().join("small.rec");
        write_file(&p, 1000, 8);
        p
    })
}

/// Raw limit: [len u32][ts i64][payload] through a BufWriter, then fsync.
fn raw_write(path: &Path, frames: u64, payload: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    for i in 0..frames as i64 {
        w.write_all(&(payload.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&(T0 + i).to_le_bytes()).unwrap();
        w.write_all(payload).unwrap();
    }
    let f = w.into_inner().unwrap();
    f.sync_data().unwrap();
}

fn bench_write(c: &mut Criterion) {
    for (label, frames, size) in [("100B", 100_000u64, 100usize), ("1MiB", 64, 1 << 20)] {
        let mut g = c.benchmark_group(format!("write_{label}"));
        g.throughput(Throughput::Bytes(frames * size as u64));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(if size > 1000 { 20 } else { 10 }));
        let payload = vec![7u8; size];
        let path = bench_dir().join(format!("w_{label}.rec"));
        g.bench_function("recfile_default", |b| {
            b.iter_batched(
                || {
                    let _ = std::fs::remove_file(&path);
                },
                |_| {
                    let mut rec = RecorderOptions::new().create(&path).unwrap();
                    let mut s = rec.start_session("w").unwrap();
                    let id = s.add_stream("s", "raw").unwrap();
                    for i in 0..frames as i64 {
                        s.write(id, Timestamp::from_nanos(T0 + i), &payload).unwrap();
                    }
                    s.finish().unwrap();
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("raw_bufwriter", |b| b.iter(|| raw_write(&path, frames, &payload)));
        g.finish();
    }
}

fn bench_find(c: &mut Criterion) {
    let f = RecFile::open(big_file()).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    let span = BIG_FRAMES as i64 * FRAME_PERIOD_NS;
    let mut seed = 0x9E3779B97F4A7C15u64;
    let queries: Vec<Timestamp> = (0..100_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            Timestamp::from_nanos(T0 + (seed % span as u64) as i64)
        })
        .collect();
    // A first pass maps the pages, as any long-running reader would have.
    for &q in &queries {
        black_box(r.find_closest(q, None));
    }
    // Single-lookup percentiles (includes ~20 ns of clock reads).
    let mut lat: Vec<u64> = queries
        .iter()
        .map(|&q| {
            let t = Instant::now();
            black_box(r.find_closest(q, None));
            t.elapsed().as_nanos() as u64
        })
        .collect();
    lat.sort_unstable();
    println!("\n[find_closest 10M] p50 {} ns, p99 {} ns, max {} ns", lat[lat.len() / 2], lat[lat.len() * 99 / 100], lat[lat.len() - 1]);
    let mut g = c.benchmark_group("find_closest_10M");
    let mut i = 0;
    g.bench_function("recfile", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(r.find_closest(queries[i], None))
        })
    });
    g.finish();
}

fn bench_open(c: &mut Criterion) {
    let (small, big) = (small_file(), big_file());
    let mut g = c.benchmark_group("open");
    g.bench_function("1k_frames", |b| b.iter(|| black_box(RecFile::open(small).unwrap())));
    g.bench_function("10M_frames", |b| b.iter(|| black_box(RecFile::open(big).unwrap())));
    g.finish();
}

fn bench_iterate(c: &mut Criterion) {
    let path = bench_dir().join("iter.rec");
    let frames = 1_000_000u64;
    write_file(&path, frames, 100);
    let f = RecFile::open(&path).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    let mut g = c.benchmark_group("iterate_1M_100B");
    g.throughput(Throughput::Elements(frames));
    g.sample_size(10);
    g.bench_function("recfile", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for fr in r.iterate() {
                sum += fr.unwrap().data().len();
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_find, bench_open, bench_iterate, bench_write);
criterion_main!(benches);
