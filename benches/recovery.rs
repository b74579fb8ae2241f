//! Recovery of an interrupted 1 GiB recording versus a full scan of it (reading and
//! checksumming every byte, the least any scan-based repair such as `mcap recover` must do).
//! Run with `cargo bench --bench recovery`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use recfile::storage::{FileStorage, Storage};
use recfile::{recover_storage, RecorderOptions, Timestamp};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FRAME: usize = 4096;
const FRAMES: u64 = 256 * 1024; // 1 GiB of payload

/// Writes an interrupted recording whose crash came just after a checkpoint.
fn interrupted_file(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut rec = RecorderOptions::new().durability(recfile::Durability::None).create(path).unwrap();
    let mut s = rec.start_session("big").unwrap();
    let id = s.add_stream("camera", "raw").unwrap();
    let data = vec![0x5Au8; FRAME];
    for i in 0..FRAMES as i64 {
        s.write(id, Timestamp::from_nanos(i * 33_000_000), &data).unwrap();
    }
    s.checkpoint().unwrap();
    s.abandon();
}

fn open_storage(path: &Path) -> FileStorage {
    FileStorage::new(std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap())
}

fn bench_recovery(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("recfile-recovery-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("interrupted.rec");
    interrupted_file(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let mut header = vec![0u8; 4096];
    open_storage(&path).read_at(0, &mut header).unwrap();
    // Undo a recovery: restore the header page (slots) and the length.
    let reset = || {
        let mut s = open_storage(&path);
        s.write_at(0, &header).unwrap();
        s.set_len(len).unwrap();
    };
    let full_scan = || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: read-only map of a file no one writes during the measurement.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        black_box(crc32fast::hash(&map))
    };
    let recover_once = || {
        let mut s = open_storage(&path);
        let r = recover_storage(&mut s).unwrap();
        assert!(r.was_interrupted);
    };
    // One-shot medians for the README's ratio (criterion's per-bench report follows).
    let mut scans = Vec::new();
    let mut recs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        full_scan();
        scans.push(t.elapsed());
        reset();
        let t = Instant::now();
        recover_once();
        recs.push(t.elapsed());
    }
    reset();
    scans.sort();
    recs.sort();
    let (scan, rec) = (scans[2], recs[2]);
    println!(
        "\n[recovery 1 GiB] recover {:?}, full scan {:?}: ratio {:.4}% (file {} MiB)",
        rec,
        scan,
        rec.as_secs_f64() / scan.as_secs_f64() * 100.0,
        len >> 20
    );
    let mut g = c.benchmark_group("recovery_1GiB");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("recover_after_checkpoint", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                reset();
                let t = Instant::now();
                recover_once();
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("full_scan_crc", |b| b.iter(full_scan));
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_recovery);
criterion_main!(benches);
