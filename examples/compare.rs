//! One table of ratios: recfile against MCAP and against the raw-write limit, on identical
//! frames, all measured in this run on this machine. Runs in a few minutes:
//! `cargo run --release --example compare` (or `benches/compare.sh`).
//! Medians of `COMPARE_RUNS` runs (default 3). `COMPARE_QUICK=1` shrinks every workload.

#[path = "../benches/common/mod.rs"]
mod common;

use common::*;
use recfile::{Durability, RecFile};
use std::path::Path;
use std::time::{Duration, Instant};

fn rss_child(frames: u64) {
    let dir = tempfile::tempdir().unwrap();
    write_rec(&dir.path().join("rss.rec"), frames, &[7u8; 100], Durability::default());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("0");
    println!("{hwm}");
}

fn peak_rss_kib(frames: u64) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap()).args(["rss-child", &frames.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("rss-child") {
        rss_child(args[2].parse().unwrap());
        return;
    }
    let quick = std::env::var("COMPARE_QUICK").is_ok();
    let runs: usize = std::env::var("COMPARE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir_in(std::env::var("COMPARE_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string())).unwrap();
    let p = |n: &str| dir.path().join(n);
    let small_n: u64 = if quick { 100_000 } else { 1_000_000 };
    let big_n: u64 = if quick { 32 } else { 256 };
    let lookup_n: u64 = if quick { 1_000_000 } else { 10_000_000 };
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |name: &str, value: String, target: &str| {
        println!("  {name:<58} {value:<40} {target}");
        rows.push((name.into(), value, target.into()));
    };
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    println!(
        "recfile comparison ({} runs, medians; {} cores, {machine})",
        runs,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("  {:<58} {:<40} target", "measure", "result");

    // 1. Writing 100-byte frames.
    let payload = vec![7u8; 100];
    let rate = |d: Duration, n: u64| n as f64 / d.as_secs_f64();
    let (mut raw, mut rec, mut mc, mut ecp) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        raw.push(write_raw(&p("w.raw"), small_n, &payload));
        rec.push(write_rec(&p("w.rec"), small_n, &payload, Durability::default()));
        mc.push(write_mcap(&p("w.mcap"), small_n, &payload));
        ecp.push(write_rec(&p("w2.rec"), small_n, &payload, Durability::EveryCheckpoint));
    }
    let (raw, rec, mc, ecp) = (median(raw), median(rec), median(mc), median(ecp));
    let every_frame_n = if quick { 200 } else { 2000 };
    let ef = write_rec(&p("w3.rec"), every_frame_n, &payload, Durability::EveryFrame);
    row(
        &format!("write {small_n} x 100 B: recfile vs MCAP"),
        format!(
            "{:.2}x ({:.2} vs {:.2} M frames/s)",
            rate(rec, small_n) / rate(mc, small_n),
            rate(rec, small_n) / 1e6,
            rate(mc, small_n) / 1e6
        ),
        ">= 2x",
    );
    row(
        "write 100 B: recfile vs raw limit",
        format!("{:.2}x (raw {:.2} M frames/s)", rate(rec, small_n) / rate(raw, small_n), rate(raw, small_n) / 1e6),
        ">= 0.75x",
    );
    row("write 100 B: MCAP vs raw limit", format!("{:.2}x", rate(mc, small_n) / rate(raw, small_n)), "(about 0.4x)");
    row("write 100 B: EveryCheckpoint vs default", format!("{:.2}x", rate(ecp, small_n) / rate(rec, small_n)), "(reported)");
    row(
        "write 100 B: EveryFrame vs default",
        format!("{:.4}x ({:.0} frames/s)", rate(ef, every_frame_n) / rate(rec, small_n), rate(ef, every_frame_n)),
        "(reported)",
    );
    let rec_size = std::fs::metadata(p("w.rec")).unwrap().len();
    let mcap_size = std::fs::metadata(p("w.mcap")).unwrap().len();
    let per = |size: u64| (size as f64 - (small_n * 100) as f64) / small_n as f64;
    row(
        "bytes of overhead per frame, index included: recfile / MCAP",
        format!("{:.1} / {:.1}", per(rec_size), per(mcap_size)),
        "<= 40 (MCAP 47)",
    );

    // 2. Writing 1 MiB frames.
    let big = vec![3u8; 1 << 20];
    let (mut braw, mut brec, mut bmc) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        braw.push(write_raw(&p("b.raw"), big_n, &big));
        brec.push(write_rec(&p("b.rec"), big_n, &big, Durability::default()));
        bmc.push(write_mcap(&p("b.mcap"), big_n, &big));
        for f in ["b.raw", "b.rec", "b.mcap"] {
            let _ = std::fs::remove_file(p(f));
        }
    }
    let (braw, brec, bmc) = (median(braw), median(brec), median(bmc));
    let mibs = |d: Duration| big_n as f64 / d.as_secs_f64();
    row(
        &format!("write {big_n} x 1 MiB (CRC on): recfile vs raw limit"),
        format!("{:.2}x ({:.0} vs {:.0} MiB/s)", mibs(brec) / mibs(braw), mibs(brec), mibs(braw)),
        ">= 0.9x",
    );
    row("write 1 MiB: MCAP vs raw limit", format!("{:.2}x", mibs(bmc) / mibs(braw)), "(reported)");

    // 3. Sequential read of every frame (the 100 B files).
    let (mut rr, mut rs, mut rm, mut rw) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        rr.push(read_rec(&p("w.rec")).0);
        rs.push(scan_rec(&p("w.rec")).0);
        rm.push(read_mcap(&p("w.mcap")).0);
        rw.push(read_raw(&p("w.raw")).0);
    }
    let (rr, rs, rm, rw) = (median(rr), median(rs), median(rm), median(rw));
    row(
        "sequential read: recfile iterate() vs MCAP MessageStream",
        format!(
            "{:.2}x ({:.1} vs {:.1} M frames/s)",
            rm.as_secs_f64() / rr.as_secs_f64(),
            rate(rr, small_n) / 1e6,
            rate(rm, small_n) / 1e6
        ),
        ">= 5x",
    );
    row(
        "sequential read: recfile scan() (borrowed frames) vs MCAP",
        format!("{:.2}x ({:.1} M frames/s)", rm.as_secs_f64() / rs.as_secs_f64(), rate(rs, small_n) / 1e6),
        ">= 5x",
    );
    row("sequential read: recfile iterate() vs raw mmap parse", format!("{:.2}x", rw.as_secs_f64() / rr.as_secs_f64()), "(reported)");
    row(
        "sequential read: recfile scan() vs raw mmap parse",
        format!("{:.2}x ({:.1} vs {:.1} ms)", rw.as_secs_f64() / rs.as_secs_f64(), rs.as_secs_f64() * 1e3, rw.as_secs_f64() * 1e3),
        ">= 0.8x",
    );

    // 3b. The same reads from a cold page cache (the files' bytes come from the disk).
    let (mut cs, mut cr) = (vec![], vec![]);
    for _ in 0..runs {
        if drop_caches() {
            cs.push(scan_rec(&p("w.rec")).0);
        }
        if drop_caches() {
            cr.push(read_raw(&p("w.raw")).0);
        }
    }
    if cs.is_empty() || cr.is_empty() {
        row("sequential read from a cold page cache", "(needs root to drop the page cache)".into(), "(reported)");
    } else {
        let (cs, cr) = (median(cs), median(cr));
        row(
            "the same from a cold page cache: scan() vs raw",
            format!("{:.2}x ({:.1} vs {:.1} ms)", cr.as_secs_f64() / cs.as_secs_f64(), cs.as_secs_f64() * 1e3, cr.as_secs_f64() * 1e3),
            "(reported)",
        );
    }

    // 4. Closest-frame lookup on a large stream.
    write_rec(&p("l.rec"), lookup_n, &[1u8; 8], Durability::None);
    write_mcap(&p("l.mcap"), lookup_n, &[1u8; 8]);
    write_raw(&p("l.raw"), lookup_n, &[1u8; 8]);
    let q = queries(lookup_n, 20_000);
    let lr = closest_rec(&p("l.rec"), &q);
    let lm = closest_mcap(&p("l.mcap"), &q[..2000]);
    let ll = closest_linear(&p("l.raw"), &q[..5]);
    row(
        &format!("find_closest on {lookup_n} frames: recfile p50 / p99"),
        format!("{:.2} / {:.2} us", pct(&lr, 50.0) as f64 / 1e3, pct(&lr, 99.0) as f64 / 1e3),
        "p50 <= 1 us",
    );
    row(
        "  MCAP best (chunk index -> message index -> message) p50 / p99",
        format!("{:.1} / {:.1} us", pct(&lm, 50.0) as f64 / 1e3, pct(&lm, 99.0) as f64 / 1e3),
        "(about 190 us)",
    );
    row("  recfile vs MCAP (p50)", format!("{:.0}x faster", pct(&lm, 50.0) as f64 / pct(&lr, 50.0) as f64), ">= 100x");
    // The first 10,000 lookups right after open (cold), then the same again (warm): medians
    // over `runs` opens.
    let (mut cold_p50, mut warm_mean) = (vec![], vec![]);
    for _ in 0..runs.max(3) {
        let (cold, warm) = closest_rec_cold_warm(&p("l.rec"), &q[..10_000]);
        cold_p50.push(Duration::from_nanos(pct(&cold, 50.0)));
        warm_mean.push(Duration::from_nanos(warm));
    }
    row(
        "  first 10,000 lookups after open: p50; the same again: mean",
        format!("{:.2} us; {:.2} us", median(cold_p50).as_secs_f64() * 1e6, median(warm_mean).as_secs_f64() * 1e6),
        "p50 <= 1.5 us; mean <= 0.4 us",
    );
    row("  linear scan p50", format!("{:.1} ms", pct(&ll, 50.0) as f64 / 1e6), "(reported)");

    // 5. Open time, small vs large.
    write_rec(&p("s.rec"), 1000, &[1u8; 8], Durability::None);
    let open = |path: &Path| {
        let n = 2000;
        for _ in 0..100 {
            std::hint::black_box(RecFile::open(path).unwrap());
        }
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(RecFile::open(path).unwrap());
        }
        t.elapsed() / n
    };
    let (os, ol) = (open(&p("s.rec")), open(&p("l.rec")));
    row(
        &format!("open: {lookup_n}-frame file vs 1k-frame file"),
        format!("{:.2}x ({:.1} vs {:.1} us)", ol.as_secs_f64() / os.as_secs_f64(), ol.as_secs_f64() * 1e6, os.as_secs_f64() * 1e6),
        "<= 2x",
    );
    let (ss, sl) = (open_stream(&p("s.rec"), 2000), open_stream(&p("l.rec"), 2000));
    row(
        &format!("open + last_session() + stream(): {lookup_n} vs 1k frames"),
        format!("{:.2}x ({:.1} vs {:.1} us)", sl.as_secs_f64() / ss.as_secs_f64(), sl.as_secs_f64() * 1e6, ss.as_secs_f64() * 1e6),
        "<= 2x",
    );
    for f in ["l.rec", "l.mcap", "l.raw"] {
        let _ = std::fs::remove_file(p(f));
    }

    // 6. Writer memory.
    // Peak RSS varies by a few hundred KiB between identical runs: medians of three each.
    let rss = |frames: u64| {
        let mut v: Vec<u64> = (0..3).map(|_| peak_rss_kib(frames)).collect();
        v.sort_unstable();
        v[1]
    };
    let (m_small, m_big) = (rss(100_000), rss(if quick { 1_000_000 } else { 10_000_000 }));
    row(
        "writer peak RSS: 100k frames vs 10M frames",
        format!("{:.2}x ({} vs {} KiB)", m_big as f64 / m_small.max(1) as f64, m_small, m_big),
        "within 10%",
    );
    // 7. What a recording thread sees: the latency of each write call under a paced load.
    let secs = if quick { 1.2 } else { 2.5 };
    let mut bg = paced_write_latencies(&p("paced.rec"), 100_000, secs, true);
    let mut fg = paced_write_latencies(&p("paced.rec"), 100_000, secs, false);
    bg.sort_unstable();
    fg.sort_unstable();
    let show = |v: &[u64]| format!("{:.1} / {:.0} us", pct(v, 99.9) as f64 / 1e3, *v.last().unwrap_or(&0) as f64 / 1e3);
    row(&format!("write() p99.9 / max, 1 KiB at 100k/s for {secs} s: background writes"), show(&bg), "(reported)");
    row("  the same with background_writes(false)", show(&fg), "(reported)");
    println!("\n(recovery versus a full scan: cargo bench --bench recovery)");
}
