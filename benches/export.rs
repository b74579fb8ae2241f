//! `rec export` against `rec verify` on the same file: 10M frames of 100 bytes (payloads that do
//! not compress, like sensor data), both reading the file from the page cache. Prints the
//! median of 5 runs of each and their ratio (the target: export at ≥ 0.5× verify's rate).
//! `cargo bench --bench export` (REC_EXPORT_FRAMES=N for a smaller file).

#[path = "common/mod.rs"]
mod common;

use common::*;
use recfile::interop::parquet::{export, ExportOptions};
use recfile::{RecFile, RecorderOptions, Timestamp};
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it with a tiny file.
    let quick = std::env::args().any(|a| a == "--test") || std::env::var_os("REC_EXPORT_QUICK").is_some();
    let frames: u64 =
        std::env::var("REC_EXPORT_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(if quick { 10_000 } else { 10_000_000 });
    let dir = std::env::temp_dir().join(format!("recfile-export-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // REC_EXPORT_FILE keeps the file (made once) for runs of `rec export` by hand.
    let keep = std::env::var_os("REC_EXPORT_FILE").map(std::path::PathBuf::from);
    let path = keep.clone().unwrap_or_else(|| dir.join("frames.rec"));
    if !keep.as_ref().is_some_and(|p| p.exists()) {
        let mut rec = RecorderOptions::new().create(&path).unwrap();
        let mut s = rec.start_session("bench").unwrap();
        let id = s.add_stream("lidar", "raw").unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut payload = [0u8; 100];
        for i in 0..frames {
            for chunk in payload.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            s.write(id, Timestamp::from_nanos(ts(i)), &payload).unwrap();
        }
        s.finish().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let runs = if quick { 1 } else { 5 };
    // A first read brings the file into the page cache for both.
    let _ = RecFile::open(&path).unwrap().verify();
    let mut verify = Vec::new();
    let mut exports = Vec::new();
    for r in 0..runs {
        // Each run starts with no dirty pages (as benches/compare does for writers): otherwise
        // one export pays for the previous one's write-back.
        settle();
        let t = Instant::now();
        let report = RecFile::open(&path).unwrap().verify();
        verify.push(t.elapsed());
        assert!(report.ok(), "{:?}", report.problems);
        let out = dir.join(format!("dataset-{r}"));
        settle();
        let t = Instant::now();
        let report = export(std::slice::from_ref(&path), &out, &ExportOptions::default(), &|_, _| {}).unwrap();
        exports.push(t.elapsed());
        assert_eq!(report.frames, frames, "{report:?}");
        let parquet_bytes: u64 = walk_size(&out.join("frames"));
        if r == 0 {
            println!("[setup] {frames} frames of 100 B: .rec {size} bytes, Parquet frames {parquet_bytes} bytes");
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
    let (v, e) = (median(verify), median(exports));
    let rate = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    println!(
        "export: {frames} frames, verify {:.3} s ({:.0} MB/s), export {:.3} s ({:.0} MB/s, {:.2} M frames/s): {:.2}x verify's rate (medians of {runs})",
        v.as_secs_f64(),
        rate(v),
        e.as_secs_f64(),
        rate(e),
        frames as f64 / e.as_secs_f64() / 1e6,
        v.as_secs_f64() / e.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        n += if e.file_type().unwrap().is_dir() { walk_size(&e.path()) } else { e.metadata().unwrap().len() };
    }
    n
}
