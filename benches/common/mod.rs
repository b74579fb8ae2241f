//! Workloads shared by `benches/compare.rs` (criterion) and `examples/compare.rs` (the one-table
//! comparison): the same frames written and read by recfile, the MCAP crate and a raw file.
#![allow(dead_code)]

use recfile::{Durability, RecFile, RecorderOptions, Timestamp};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub const T0: i64 = 1_704_067_200_000_000_000;
pub const PERIOD_NS: i64 = 1_000_000;

/// Frame i's timestamp.
pub fn ts(i: u64) -> i64 {
    T0 + i as i64 * PERIOD_NS
}

/// Flushes every dirty page of the system first, so that each measured write starts from the
/// same state of the page cache (otherwise one writer pays for another's write-back).
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// Drops the system's page cache (after flushing it), so that the next read comes from the
/// disk; false without the permission (root) to.
pub fn drop_caches() -> bool {
    settle();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Raw limit: [len u32][ts i64][payload] through a 1 MiB BufWriter, then fsync.
pub fn write_raw(path: &Path, frames: u64, payload: &[u8]) -> Duration {
    let _ = std::fs::remove_file(path);
    settle();
    let t = Instant::now();
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    for i in 0..frames {
        w.write_all(&(payload.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&ts(i).to_le_bytes()).unwrap();
        w.write_all(payload).unwrap();
    }
    w.into_inner().unwrap().sync_data().unwrap();
    t.elapsed()
}

/// recfile with the given durability (default options otherwise); `finish` syncs.
pub fn write_rec(path: &Path, frames: u64, payload: &[u8], durability: Durability) -> Duration {
    let _ = std::fs::remove_file(path);
    settle();
    let t = Instant::now();
    let mut rec = RecorderOptions::new().durability(durability).create(path).unwrap();
    let mut s = rec.start_session("bench").unwrap();
    let id = s.add_stream("lidar", "raw").unwrap();
    for i in 0..frames {
        s.write(id, Timestamp::from_nanos(ts(i)), payload).unwrap();
    }
    s.finish().unwrap();
    t.elapsed()
}

/// MCAP, chunked and uncompressed (its defaults otherwise), then fsync.
pub fn write_mcap(path: &Path, frames: u64, payload: &[u8]) -> Duration {
    let _ = std::fs::remove_file(path);
    settle();
    let t = Instant::now();
    let f = std::fs::File::create(path).unwrap();
    let mut w = mcap::WriteOptions::new().compression(None).create(std::io::BufWriter::with_capacity(1 << 20, f)).unwrap();
    let ch = w.add_channel(0, "lidar", "raw", &BTreeMap::new()).unwrap();
    for i in 0..frames {
        let h = mcap::records::MessageHeader { channel_id: ch, sequence: i as u32, log_time: ts(i) as u64, publish_time: ts(i) as u64 };
        w.write_to_known_channel(&h, payload).unwrap();
    }
    w.finish().unwrap();
    let f = w.into_inner().into_inner().map_err(|_| ()).unwrap();
    f.sync_data().unwrap();
    t.elapsed()
}

fn map(path: &Path) -> memmap2::Mmap {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: read-only map of a benchmark file nobody writes during the run.
    unsafe { memmap2::Mmap::map(&f) }.unwrap()
}

/// Sums payload bytes of every frame, recfile `iterate()`.
pub fn read_rec(path: &Path) -> (Duration, u64) {
    let f = RecFile::open(path).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    let t = Instant::now();
    let mut sum = 0u64;
    for fr in r.iterate() {
        sum += fr.unwrap().data().len() as u64;
    }
    (t.elapsed(), sum)
}

/// Sums payload bytes of every frame, recfile `scan()` (frames borrowed from the replay).
pub fn scan_rec(path: &Path) -> (Duration, u64) {
    let f = RecFile::open(path).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    let t = Instant::now();
    let mut sum = 0u64;
    for fr in r.scan() {
        sum += fr.unwrap().data().len() as u64;
    }
    (t.elapsed(), sum)
}

/// Sums payload bytes of every message, `mcap::MessageStream` over a memory map.
pub fn read_mcap(path: &Path) -> (Duration, u64) {
    let m = map(path);
    let t = Instant::now();
    let mut sum = 0u64;
    for msg in mcap::MessageStream::new(&m).unwrap() {
        sum += msg.unwrap().data.len() as u64;
    }
    (t.elapsed(), sum)
}

/// Sums payload bytes of the raw file, parsing it over a memory map.
pub fn read_raw(path: &Path) -> (Duration, u64) {
    let m = map(path);
    let t = Instant::now();
    let (mut at, mut sum) = (0usize, 0u64);
    while at + 12 <= m.len() {
        let len = u32::from_le_bytes(m[at..at + 4].try_into().unwrap()) as usize;
        let payload = &m[at + 12..at + 12 + len];
        sum += std::hint::black_box(payload).len() as u64;
        at += 12 + len;
    }
    (t.elapsed(), sum)
}

/// Deterministic random query times inside `frames` frames.
pub fn queries(frames: u64, n: usize) -> Vec<i64> {
    let mut seed = 0x9E3779B97F4A7C15u64;
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            T0 + (seed % (frames * PERIOD_NS as u64)) as i64
        })
        .collect()
}

/// Per-lookup latencies (ns) of recfile `find_closest`, after one warm-up pass.
pub fn closest_rec(path: &Path, q: &[i64]) -> Vec<u64> {
    let f = RecFile::open(path).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    for &t in q {
        std::hint::black_box(r.find_closest(Timestamp::from_nanos(t), None));
    }
    q.iter()
        .map(|&t| {
            let s = Instant::now();
            std::hint::black_box(r.find_closest(Timestamp::from_nanos(t), None).unwrap());
            s.elapsed().as_nanos() as u64
        })
        .collect()
}

/// Recfile `find_closest` right after opening the file: the latency (ns) of each of the first
/// `q.len()` lookups (cold: the index and frame pages not yet mapped into this process), each
/// timed alone; then the mean (ns) of the same lookups again (warm), timed as one pass so that
/// the clock's own cost (~30 ns a reading here, two per timed lookup) is not counted in it.
pub fn closest_rec_cold_warm(path: &Path, q: &[i64]) -> (Vec<u64>, u64) {
    let f = RecFile::open(path).unwrap();
    let r = f.last_session().unwrap().stream("lidar").unwrap();
    let lookup = |t: i64| std::hint::black_box(r.find_closest(Timestamp::from_nanos(t), None).unwrap());
    let cold = q
        .iter()
        .map(|&t| {
            let s = Instant::now();
            lookup(t);
            s.elapsed().as_nanos() as u64
        })
        .collect();
    let s = Instant::now();
    q.iter().for_each(|&t| {
        lookup(t);
    });
    let warm_mean = s.elapsed().as_nanos() as u64 / q.len().max(1) as u64;
    (cold, warm_mean)
}

/// Median time of `RecFile::open` + `last_session()` + `stream("lidar")` over `n` rounds.
pub fn open_stream(path: &Path, n: usize) -> Duration {
    let round = || {
        let t = Instant::now();
        let f = RecFile::open(path).unwrap();
        std::hint::black_box(f.last_session().unwrap().stream("lidar").unwrap());
        t.elapsed()
    };
    (0..n / 10).for_each(|_| {
        round();
    });
    median((0..n).map(|_| round()).collect())
}

/// The best closest-message lookup MCAP allows: summary (read once) → chunk index → the chunk's
/// message index → the message. Per-lookup latencies after one warm-up pass.
pub fn closest_mcap(path: &Path, q: &[i64]) -> Vec<u64> {
    let m = map(path);
    let summary = mcap::Summary::read(&m).unwrap().unwrap();
    let mut chunks = summary.chunk_indexes.clone();
    chunks.sort_by_key(|c| c.message_start_time);
    let lookup = |t: u64| {
        // The chunk whose start is the last at or before t, and the next one.
        let i = chunks.partition_point(|c| c.message_start_time <= t).saturating_sub(1);
        let mut best: Option<(u64, usize, mcap::records::MessageIndexEntry)> = None;
        for (ci, chunk) in chunks.iter().enumerate().skip(i).take(2) {
            let idx = summary.read_message_indexes(&m, chunk).unwrap();
            for entries in idx.values() {
                let p = entries.partition_point(|e| e.log_time < t);
                for e in [p.checked_sub(1), Some(p)].into_iter().flatten().filter_map(|k| entries.get(k)) {
                    let d = e.log_time.abs_diff(t);
                    if best.as_ref().is_none_or(|b| d < b.0) {
                        best = Some((d, ci, *e));
                    }
                }
            }
        }
        let (_, ci, e) = best.unwrap();
        summary.seek_message(&m, &chunks[ci], &e).unwrap().data.len()
    };
    for &t in q.iter().take(200) {
        std::hint::black_box(lookup(t as u64));
    }
    q.iter()
        .map(|&t| {
            let s = Instant::now();
            std::hint::black_box(lookup(t as u64));
            s.elapsed().as_nanos() as u64
        })
        .collect()
}

/// A linear scan of the raw file for the closest timestamp.
pub fn closest_linear(path: &Path, q: &[i64]) -> Vec<u64> {
    let m = map(path);
    q.iter()
        .map(|&t| {
            let s = Instant::now();
            let (mut at, mut best) = (0usize, (u64::MAX, 0usize));
            while at + 12 <= m.len() {
                let len = u32::from_le_bytes(m[at..at + 4].try_into().unwrap()) as usize;
                let x = i64::from_le_bytes(m[at + 4..at + 12].try_into().unwrap());
                let d = x.abs_diff(t);
                if d < best.0 {
                    best = (d, at);
                }
                at += 12 + len;
            }
            std::hint::black_box(best);
            s.elapsed().as_nanos() as u64
        })
        .collect()
}

/// Median of durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Percentile of nanosecond samples.
pub fn pct(v: &[u64], p: f64) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[((s.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// Latencies (ns) of each `write` call while recording 1 KiB frames paced at `rate` frames/s
/// for `seconds` (a camera-like load), with the default options but for `background_writes`.
/// Checkpoints, and the interval sync every second, fall inside the measured calls.
pub fn paced_write_latencies(path: &Path, rate: u64, seconds: f64, background: bool) -> Vec<u64> {
    let _ = std::fs::remove_file(path);
    settle();
    let payload = vec![3u8; 1024];
    let mut rec = RecorderOptions::new().background_writes(background).create(path).unwrap();
    let mut s = rec.start_session("paced").unwrap();
    let id = s.add_stream("camera", "raw").unwrap();
    let frames = (rate as f64 * seconds) as u64;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut lat = Vec::with_capacity(frames as usize);
    for i in 0..frames {
        let due = start + period * i as u32;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        s.write(id, Timestamp::from_nanos(ts(i)), &payload).unwrap();
        lat.push(t.elapsed().as_nanos() as u64);
    }
    s.finish().unwrap();
    let _ = std::fs::remove_file(path);
    lat
}
