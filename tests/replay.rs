//! Windows, loops, merge order, state_at, realtime timing and late policies, the player, and
//! stream senders. Timing assertions use generous bounds so that a loaded 2-core machine does
//! not make them flake; tightness is measured in benches/realtime.rs.

use recfile::storage::MemStorage;
use recfile::{Error, LatePolicy, Player, PlayerOptions, RealtimeOptions, RecFile, Recorder, RecorderOptions, Replay, Timestamp, Window};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MS: i64 = 1_000_000;

fn ts(ns: i64) -> Timestamp {
    Timestamp::from_nanos(ns)
}

/// Streams a (every 10 ms from 0 to 90 ms), b (every 25 ms from 5 ms) and a one-off map at 0.
fn file() -> RecFile {
    let mut rec = Recorder::init_storage(Box::new(MemStorage::default()), RecorderOptions::new().checkpoint_every_frames(3)).unwrap();
    let mut s = rec.start_session("w").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    let b = s.add_stream("b", "raw").unwrap();
    let map = s.add_stream("map", "raw").unwrap();
    s.write(map, ts(0), b"map").unwrap();
    for i in 0..10 {
        s.write(a, ts(i * 10 * MS), &[i as u8]).unwrap();
        if i < 4 {
            s.write(b, ts(5 * MS + i * 25 * MS), &[100 + i as u8]).unwrap();
        }
    }
    s.write(b, ts(30 * MS), b"tie").unwrap(); // same timestamp as a frame of a, written later
    s.finish().unwrap();
    RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap()
}

fn times(r: impl Iterator<Item = recfile::Result<recfile::WindowFrame>>) -> Vec<(u64, i64)> {
    r.map(|f| f.unwrap()).map(|f| (f.lap, f.timestamp().as_nanos() / MS)).collect()
}

fn a(f: &RecFile) -> Replay {
    f.last_session().unwrap().stream("a").unwrap()
}

#[test]
fn window_edges_are_half_open() {
    let f = file();
    let r = a(&f);
    let w = Window::new().seek(Duration::from_millis(20)).duration(Duration::from_millis(30));
    assert_eq!(times(r.iterate_window(&w)), vec![(0, 20), (0, 30), (0, 40)]);
    // A seek between frames starts at the next one; an exact end is excluded.
    let w = Window::new().seek(Duration::from_millis(21)).duration(Duration::from_millis(19));
    assert_eq!(times(r.iterate_window(&w)), vec![(0, 30)]);
    let w = Window::new().from_timestamp(ts(75 * MS));
    assert_eq!(times(r.iterate_window(&w)), vec![(0, 80), (0, 90)]);
    // Past the end, and zero duration: nothing.
    assert!(times(r.iterate_window(&Window::new().seek(Duration::from_secs(5)))).is_empty());
    assert!(times(r.iterate_window(&Window::new().duration(Duration::ZERO))).is_empty());
    // Before the start: from the first frame.
    assert_eq!(times(r.iterate_window(&Window::new().from_timestamp(ts(-5 * MS)).duration(Duration::from_millis(6)))), vec![(0, 0)]);
}

#[test]
fn loops_are_laps_and_empty_loops_end() {
    let f = file();
    let r = a(&f);
    let w = Window::new().seek(Duration::from_millis(70)).looping(true);
    let got: Vec<_> = times(r.iterate_window(&w).take(7));
    assert_eq!(got, vec![(0, 70), (0, 80), (0, 90), (1, 70), (1, 80), (1, 90), (2, 70)]);
    let empty = Window::new().seek(Duration::from_secs(9)).looping(true);
    assert_eq!(r.iterate_window(&empty).count(), 0, "an empty looping window ends");
    let empty = Window::new().duration(Duration::ZERO).looping(true);
    assert_eq!(r.iterate_window(&empty).count(), 0);
    let d: Vec<_> = r.iterate_duration().map(|x| x.unwrap().0).take(2).collect();
    assert_eq!(d, vec![Duration::ZERO, Duration::from_millis(10)]);
}

#[test]
fn merged_streams_share_one_clock_and_ties_keep_arrival_order() {
    let f = file();
    let s = f.last_session().unwrap();
    let both = s.replay(&["a", "b"]).unwrap();
    let got: Vec<(String, i64)> =
        both.iterate().map(|f| f.unwrap()).map(|f| (f.stream().to_string(), f.timestamp().as_nanos() / MS)).collect();
    let at30: Vec<_> = got.iter().filter(|(_, t)| *t == 30).map(|(s, _)| s.as_str()).collect();
    // b's frame at 30 ms (5 + 25) was written before a's, the "tie" frame after it.
    assert_eq!(at30, vec!["b", "a", "b"], "ties keep arrival order");
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
    // One anchor: seeking 20 ms into the merge starts at 20 ms for every stream.
    let w = Window::new().seek(Duration::from_millis(20)).duration(Duration::from_millis(15));
    let got: Vec<_> =
        both.iterate_window(&w).map(|f| f.unwrap()).map(|f| (f.stream().to_string(), f.timestamp().as_nanos() / MS)).collect();
    assert_eq!(got, vec![("a".into(), 20), ("b".into(), 30), ("a".into(), 30), ("b".into(), 30)]);
    assert!(matches!(s.replay(&["a", "nope"]), Err(Error::NoSuchStream(_))));
}

#[test]
fn state_at_gives_the_latest_frame_of_every_stream() {
    let f = file();
    let s = f.last_session().unwrap();
    let state = s.state_at(ts(42 * MS)).unwrap();
    let got: Vec<(String, i64)> = state.iter().map(|f| (f.stream().to_string(), f.timestamp().as_nanos() / MS)).collect();
    assert_eq!(got, vec![("a".into(), 40), ("b".into(), 30), ("map".into(), 0)]);
    assert_eq!(state[1].data(), b"tie", "of equal timestamps, the last written");
    assert!(s.state_at(ts(-1)).unwrap().is_empty());
}

#[test]
fn speed_must_be_positive_and_finite() {
    let f = file();
    let r = a(&f);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(r.iterate_realtime(bad), Err(Error::InvalidArgument(_))), "{bad}");
        assert!(Player::spawn(r.clone(), PlayerOptions::new(Window::new(), bad), |_| {}).is_err());
    }
}

#[test]
fn realtime_follows_the_schedule_at_any_speed() {
    let f = file();
    let r = a(&f);
    for speed in [1.0, 4.0] {
        let t0 = Instant::now();
        let mut rt = r.iterate_realtime(speed).unwrap();
        let mut got = Vec::new();
        for fr in rt.by_ref() {
            let fr = fr.unwrap();
            got.push((t0.elapsed(), fr.timestamp().as_nanos()));
        }
        assert_eq!(got.len(), 10);
        for (elapsed, t) in &got {
            let due = Duration::from_nanos((*t as f64 / speed) as u64);
            assert!(*elapsed + Duration::from_micros(50) >= due, "delivered early: {elapsed:?} < {due:?}");
            assert!(*elapsed < due + Duration::from_millis(150), "very late: {elapsed:?} vs {due:?}");
        }
        let st = rt.stats();
        assert_eq!(st.delivered, 10);
        assert!(st.lateness_max < Duration::from_millis(150));
        assert!(st.lateness_p50 <= st.lateness_p99 && st.lateness_p99 <= st.lateness_max);
    }
}

#[test]
fn looping_realtime_keeps_the_lap_period() {
    let f = file();
    let r = a(&f);
    // Lap of 100 ms (frames every 10 ms from 0 to 90 ms), at 4×: 25 ms per lap.
    let w = Window::new().looping(true);
    let t0 = Instant::now();
    let got: Vec<_> = r.iterate_realtime_window(&w, RealtimeOptions::new(4.0)).unwrap().take(25).map(|f| f.unwrap()).collect();
    let elapsed = t0.elapsed();
    assert_eq!(got[20].lap, 2);
    // Frame 24 is lap 2 at 40 ms: due at (2 × 100 + 40) / 4 = 60 ms.
    assert!(elapsed >= Duration::from_millis(59), "laps ran at full speed: {elapsed:?}");
    assert!(elapsed < Duration::from_millis(400));
}

#[test]
fn late_policies() {
    let f = file();
    let r = a(&f);
    // A consumer that stalls 35 ms on the first frame.
    let run = |policy: LatePolicy| {
        let mut rt =
            r.iterate_realtime_window(&Window::new(), RealtimeOptions::new(1.0).late(policy).drop_after(Duration::from_millis(5))).unwrap();
        let mut n = 0;
        for fr in rt.by_ref() {
            fr.unwrap();
            if n == 0 {
                std::thread::sleep(Duration::from_millis(35));
            }
            n += 1;
        }
        (n, rt.stats())
    };
    let (n, st) = run(LatePolicy::CatchUp);
    assert_eq!((n, st.dropped), (10, 0));
    assert!(st.lateness_max >= Duration::from_millis(15), "catch-up delivers late frames late: {st:?}");
    let (n, st) = run(LatePolicy::Drop);
    assert!(n < 10 && st.dropped >= 1 && n as u64 + st.dropped == 10, "{n} {st:?}");
    let (n, st) = run(LatePolicy::Reanchor { after: Duration::from_millis(5) });
    assert_eq!((n, st.dropped), (10, 0));
    assert!(st.reanchors >= 1, "{st:?}");
}

#[test]
fn player_controls() {
    let f = file();
    let r = a(&f);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let opts = PlayerOptions { start_paused: true, ..PlayerOptions::new(Window::new(), 1.0) };
    let h = Player::spawn(r.clone(), opts, move |f| s2.lock().unwrap().push(f.timestamp().as_nanos() / MS)).unwrap();
    std::thread::sleep(Duration::from_millis(40));
    assert!(seen.lock().unwrap().is_empty(), "paused players deliver nothing");
    h.step();
    h.step();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(*seen.lock().unwrap(), vec![0, 10]);
    h.seek(Duration::from_millis(70));
    h.set_speed(2.0).unwrap();
    assert!(h.set_speed(-1.0).is_err());
    h.resume();
    let stats = h.wait();
    assert_eq!(*seen.lock().unwrap(), vec![0, 10, 70, 80, 90]);
    assert_eq!(stats.delivered, 5);

    // Stop, and drop without waiting: both end the thread.
    let (h, rx) = Player::spawn_channel(r.clone(), PlayerOptions::new(Window::new().looping(true), 1.0), 4).unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first.lap, 0);
    h.stop();
    let _ = h.wait();
    let (h, _rx) = Player::spawn_channel(r, PlayerOptions::new(Window::new().looping(true), 1.0), 4).unwrap();
    drop(h);
}

#[test]
fn stream_senders_write_from_many_threads_without_loss() {
    let mut rec = Recorder::init_storage(Box::new(MemStorage::default()), RecorderOptions::new().checkpoint_every_frames(50)).unwrap();
    let mut s = rec.start_session("threads").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    let b = s.add_stream("b", "raw").unwrap();
    let (sa, sb) = (s.stream_sender(a).unwrap(), s.stream_sender(b).unwrap());
    assert!(s.stream_sender(recfile::StreamId(7)).is_err());
    let threads: Vec<_> = (0..4)
        .map(|p| {
            let tx = if p % 2 == 0 { sa.clone() } else { sb.clone() };
            std::thread::spawn(move || {
                for i in 0..2000i64 {
                    tx.send(Timestamp::from_nanos(p * 10_000 + i), &(p * 10_000 + i).to_le_bytes()).unwrap();
                }
            })
        })
        .collect();
    for i in 0..100 {
        s.write(a, Timestamp::from_nanos(-i), b"owner").unwrap();
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    let info = s.finish().unwrap();
    assert_eq!(info.frames, 8100);
    assert!(matches!(sa.send(Timestamp::EPOCH, b"late"), Err(Error::Closed(_))), "senders fail after finish");
    let f = RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap();
    let s = f.last_session().unwrap();
    assert_eq!(s.stream("a").unwrap().len(), 4100);
    assert_eq!(s.stream("b").unwrap().len(), 4000);
    for fr in s.stream("b").unwrap().iterate() {
        let fr = fr.unwrap();
        assert_eq!(fr.data(), &fr.timestamp().as_nanos().to_le_bytes());
    }
}
