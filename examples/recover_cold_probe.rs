//! Measures recovery of an interrupted 1 GiB file with a cold page cache (needs root to drop caches).
use recfile::{RecorderOptions, Timestamp};
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap_or("/tmp/int.rec".into());
    let _ = std::fs::remove_file(&path);
    let mut rec = RecorderOptions::new().durability(recfile::Durability::None).create(&path).unwrap();
    let mut s = rec.start_session("big").unwrap();
    let id = s.add_stream("camera", "raw").unwrap();
    let data = vec![0x5Au8; 4096];
    for i in 0..262144i64 {
        s.write(id, Timestamp::from_nanos(i * 33_000_000), &data).unwrap();
    }
    s.checkpoint().unwrap();
    s.abandon();
    drop(rec);
    let drop_caches = || {
        let _ = std::process::Command::new("sync").status();
        std::fs::write("/proc/sys/vm/drop_caches", "3").expect("root needed");
    };
    drop_caches();
    let t = Instant::now();
    let mut f = std::fs::File::open(&path).unwrap();
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 22];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let scan = t.elapsed();
    drop_caches();
    let t = Instant::now();
    let r = recfile::recover(&path).unwrap();
    let rec_t = t.elapsed();
    println!(
        "cold: recover {rec_t:?} ({} frames kept), full scan {scan:?}: {:.3}%",
        r.frames_kept,
        rec_t.as_secs_f64() / scan.as_secs_f64() * 100.0
    );
}
