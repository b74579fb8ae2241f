//! Realtime playback tightness: 2 streams at 1 kHz each for 10 s (`RT_SECONDS` to change),
//! delivered by `iterate_realtime` at speed 1. Prints lateness p50/p99/max and the end-to-end
//! drift (when the last frame was delivered versus when it was due from the start).
//! Run with `cargo bench --bench realtime`.

use recfile::storage::MemStorage;
use recfile::{RecFile, Recorder, RecorderOptions, Timestamp};
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` probe; nothing to list
    }
    let seconds: i64 = std::env::var("RT_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut rec = Recorder::init_storage(Box::new(MemStorage::default()), RecorderOptions::new()).unwrap();
    let mut s = rec.start_session("rt").unwrap();
    let a = s.add_stream("imu", "raw").unwrap();
    let b = s.add_stream("odom", "raw").unwrap();
    for i in 0..seconds * 1000 {
        s.write(a, Timestamp::from_nanos(i * 1_000_000), &[0u8; 64]).unwrap();
        s.write(b, Timestamp::from_nanos(i * 1_000_000 + 500_000), &[1u8; 64]).unwrap();
    }
    s.finish().unwrap();
    let f = RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap();
    let replay = f.last_session().unwrap().replay(&[]).unwrap();
    let first = replay.first_timestamp().unwrap();
    let t0 = Instant::now();
    let mut rt = replay.iterate_realtime(1.0).unwrap();
    let mut last = (t0, first);
    for fr in rt.by_ref() {
        let fr = fr.unwrap();
        last = (Instant::now(), fr.timestamp());
    }
    let st = rt.stats();
    let due = (last.1 - first).as_secs_f64();
    let drift = last.0.duration_since(t0).as_secs_f64() - due;
    println!(
        "realtime 2 x 1 kHz for {seconds} s: {} frames, lateness p50 {:?}, p99 {:?}, max {:?}; end-to-end drift {:.1} µs",
        st.delivered,
        st.lateness_p50,
        st.lateness_p99,
        st.lateness_max,
        drift * 1e6
    );
}
