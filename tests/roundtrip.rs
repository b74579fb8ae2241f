//! Round trips through the writer and the reader.

use recfile::{Durability, Error, RecFile, Recorder, RecorderOptions, SessionState, Timestamp};
use std::time::Duration;

fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanos(n)
}

#[test]
fn many_streams_round_trip_with_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(7).create(&path).unwrap();
    let mut s = rec.start_session("drive").unwrap();
    let a = s.add_stream("lidar", "raw").unwrap();
    let b = s.add_stream("odom", "bincode").unwrap();
    s.set_metadata("robot", "go2").unwrap();
    for i in 0..100i64 {
        assert_eq!(s.write(a, ts(i * 10), format!("L{i}").as_bytes()).unwrap(), i as u64 + 1);
        if i % 3 == 0 {
            s.write_value(b, ts(i * 10 + 5), &(i, i as f64 * 0.5)).unwrap();
        }
    }
    s.set_metadata("robot", "go2-w").unwrap();
    let info = s.finish().unwrap();
    assert_eq!(info.frames, 134);
    assert!(info.checkpoints >= 19);
    drop(rec);

    let f = RecFile::open(&path).unwrap();
    let sess = f.last_session().unwrap();
    assert_eq!(sess.state(), SessionState::Finished);
    assert_eq!(sess.name(), "drive");
    assert_eq!(sess.metadata_value("robot"), Some("go2-w"));
    assert_eq!(sess.frame_count(), 134);
    let lidar = sess.stream("lidar").unwrap();
    assert_eq!(lidar.len(), 100);
    for (i, fr) in lidar.iterate().enumerate() {
        let fr = fr.unwrap();
        assert_eq!(fr.data(), format!("L{i}").as_bytes());
        assert_eq!(fr.seq(), i as u64);
        assert_eq!(fr.timestamp(), ts(i as i64 * 10));
        assert_eq!(fr.stream(), "lidar");
    }
    let odom = sess.stream("odom").unwrap();
    assert_eq!(odom.len(), 34);
    assert_eq!(odom.load(2).unwrap().decode::<(i64, f64)>().unwrap(), (6, 3.0));
    let both = sess.replay(&[]).unwrap();
    let all: Vec<_> = both.iterate().map(|f| f.unwrap()).collect();
    assert_eq!(all.len(), 134);
    assert!(all.windows(2).all(|w| w[0].timestamp() <= w[1].timestamp()));
    assert_eq!(lidar.find_closest(ts(44), None).unwrap().timestamp(), ts(40));
    assert_eq!(lidar.find_closest(ts(45), None).unwrap().timestamp(), ts(40), "tie goes to the earlier");
    assert_eq!(lidar.find_closest(ts(46), None).unwrap().timestamp(), ts(50));
    assert!(lidar.find_closest(ts(45), Some(Duration::from_nanos(4))).is_none());
    assert_eq!(lidar.find_before(ts(49)).unwrap().timestamp(), ts(40));
    assert_eq!(lidar.find_after(ts(41)).unwrap().timestamp(), ts(50));
    assert!(lidar.find_after(ts(991)).is_none());
    assert!(lidar.find_before(ts(-1)).is_none());
    assert_eq!(lidar.find_closest_seek(Duration::from_nanos(21), None).unwrap().timestamp(), ts(20));
}

#[test]
fn second_writer_is_refused_and_create_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    let rec = Recorder::create(&path).unwrap();
    assert!(matches!(Recorder::open_append(&path), Err(Error::Locked { .. })));
    drop(rec);
    assert!(matches!(Recorder::create(&path), Err(Error::AlreadyExists { .. })));
    let mut rec = Recorder::open_append(&path).unwrap();
    rec.start_session("x").unwrap().finish().unwrap();
}

#[test]
fn out_of_order_timestamps_two_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    {
        let mut rec = RecorderOptions::new().checkpoint_every_frames(5).durability(Durability::None).create(&path).unwrap();
        let mut s = rec.start_session("one").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        for t in [50, 10, 30, 30, 20, 90, 0, 70, 60, 30, 40, 80] {
            s.write(a, ts(t), &t.to_le_bytes()).unwrap();
        }
        s.finish().unwrap();
        let mut s = rec.start_session("two").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        s.write(a, ts(1), b"x").unwrap();
        s.finish().unwrap();
    }
    let f = RecFile::open(&path).unwrap();
    assert_eq!(f.session_count(), 2);
    let r = f.session(0).unwrap().stream("a").unwrap();
    let got: Vec<(i64, u64)> = r.iterate().map(|f| f.unwrap()).map(|f| (f.timestamp().as_nanos(), f.seq())).collect();
    assert_eq!(got, vec![(0, 6), (10, 1), (20, 4), (30, 2), (30, 3), (30, 9), (40, 10), (50, 0), (60, 8), (70, 7), (80, 11), (90, 5)]);
    assert_eq!(r.find_closest(ts(31), None).unwrap().seq(), 2, "earliest arrival of the closest timestamp");
    assert_eq!(r.find_before(ts(30)).unwrap().seq(), 9, "latest arrival at or before");
    assert_eq!(f.session(1).unwrap().stream("a").unwrap().len(), 1);
}

#[test]
fn empty_session_empty_payloads_and_16_mib_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    let big: Vec<u8> = (0..16 * 1024 * 1024).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    {
        let mut rec = Recorder::create(&path).unwrap();
        let info = rec.start_session("empty").unwrap().finish().unwrap();
        assert_eq!(info.frames, 0);
        let mut s = rec.start_session("payloads").unwrap();
        let e = s.add_stream("empty", "raw").unwrap();
        let b = s.add_stream("big", "raw").unwrap();
        let _never = s.add_stream("never", "raw").unwrap();
        s.write(e, ts(1), b"").unwrap();
        s.write(b, ts(2), &big).unwrap();
        s.write(e, ts(3), b"").unwrap();
        s.write(b, ts(4), &big[..1]).unwrap();
        s.finish().unwrap();
    }
    let f = RecFile::open(&path).unwrap();
    assert_eq!(f.session_count(), 2);
    let empty = f.session(0).unwrap();
    assert_eq!(empty.frame_count(), 0);
    assert!(empty.streams().is_empty());
    assert!(empty.replay(&[]).unwrap().is_empty());
    assert!(empty.replay(&[]).unwrap().find_closest(ts(0), None).is_none());
    let s = f.session(1).unwrap();
    let e = s.stream("empty").unwrap();
    assert_eq!(e.len(), 2);
    assert!(e.iterate().all(|f| f.unwrap().data().is_empty()));
    let b = s.stream("big").unwrap();
    assert_eq!(b.load(0).unwrap().data(), &big[..]);
    assert_eq!(b.load(1).unwrap().data(), &big[..1]);
    let never = s.stream("never").unwrap();
    assert_eq!(never.len(), 0);
    assert!(never.first().is_none() && never.first_timestamp().is_none());
    assert!(matches!(never.load(0), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(s.stream("nope"), Err(Error::NoSuchStream(_))));
    assert!(f.verify().ok(), "{:?}", f.verify().problems);
}

#[test]
fn writes_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder::create(dir.path().join("a.rec")).unwrap();
    let mut s = rec.start_session("x").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    assert!(matches!(s.add_stream("a", "raw"), Err(Error::InvalidArgument(_))));
    assert!(matches!(s.write(recfile::StreamId(9), ts(0), b""), Err(Error::InvalidArgument(_))));
    assert_eq!(s.write_now(a, b"x").unwrap(), 1);
    assert!(matches!(rec.start_session("second"), Err(Error::InvalidArgument(_))), "one session at a time");
    s.finish().unwrap();
    rec.start_session("second").unwrap().finish().unwrap();
}

#[test]
fn dropping_a_writer_finishes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    {
        let mut rec = Recorder::create(&path).unwrap();
        let mut s = rec.start_session("dropped").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        s.write(a, ts(5), b"x").unwrap();
    }
    let f = RecFile::open(&path).unwrap();
    assert_eq!(f.last_session().unwrap().state(), SessionState::Finished);
    assert_eq!(f.last_session().unwrap().stream("a").unwrap().len(), 1);
}

#[test]
fn verify_reports_progress_on_large_files() {
    let mut rec = Recorder::init_storage(Box::new(recfile::storage::MemStorage::default()), RecorderOptions::new()).unwrap();
    let mut s = rec.start_session("big").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for i in 0..140_000 {
        s.write(a, ts(i), b"x").unwrap();
    }
    s.finish().unwrap();
    let f = RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap();
    let mut calls = Vec::new();
    let report = f.verify_with_progress(|done, total| calls.push((done, total)));
    assert!(report.ok());
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0) && calls.iter().all(|&(d, t)| d <= t && t == f.size_bytes()));
}

/// Long Index records (many runs, or many merged entries) are written in pieces; both must read
/// back exactly and verify.
#[test]
fn long_indexes_written_in_pieces_read_back() {
    for (frames, every, shuffled) in [(350_000i64, 64u64, false), (10_000, 1, true)] {
        let mut rec = Recorder::init_storage(
            Box::new(recfile::storage::MemStorage::default()),
            RecorderOptions::new().checkpoint_every_frames(every).buffer_bytes(4096),
        )
        .unwrap();
        let mut s = rec.start_session("long").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        for i in 0..frames {
            let t = if shuffled { (i * 7919) % frames } else { i };
            s.write(a, ts(t), &t.to_le_bytes()).unwrap();
        }
        s.finish().unwrap();
        let f = RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap();
        let r = f.last_session().unwrap().stream("a").unwrap();
        assert_eq!(r.len(), frames as u64);
        for probe in [0, 1, frames / 3, frames - 1] {
            let fr = r.find_closest(ts(probe), None).unwrap();
            assert_eq!(fr.timestamp(), ts(probe));
            assert_eq!(fr.data(), &probe.to_le_bytes());
        }
        let v = f.verify();
        assert!(v.ok(), "{:?}", v.problems.first());
    }
}

/// The handles a binding (or another thread) takes ownership of can move between threads.
#[test]
fn main_handles_are_send() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<recfile::Recorder>();
    send::<recfile::SessionWriter>();
    send::<recfile::StreamSender>();
    send_sync::<recfile::RecFile>();
    send_sync::<recfile::Session>();
    send_sync::<recfile::Replay>();
    send_sync::<recfile::Frame>();
}

#[test]
fn readers_probing_the_lock_never_make_a_writer_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.rec");
    {
        let mut rec = Recorder::create(&path).unwrap();
        let mut s = rec.start_session("first").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        s.write(a, ts(1), b"x").unwrap();
        s.finish().unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probes = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            // What every reader's open does: a shared lock, released at once (spec §6).
            let f = std::fs::File::open(&path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if f.try_lock_shared().is_ok() {
                    let _ = f.unlock();
                }
                n += 1;
            }
            n
        })
    };
    for i in 0..200 {
        let mut rec = Recorder::open_append(&path).unwrap_or_else(|e| panic!("writer {i} failed while readers probed: {e}"));
        let mut s = rec.start_session(&format!("s{i}")).unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        s.write(a, ts(i), b"y").unwrap();
        s.finish().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(probes.join().unwrap() > 200, "the readers probed while the writers started");
    assert_eq!(RecFile::open(&path).unwrap().session_count(), 201);
}

/// Sessions that sync write more than the early-sync step (16 MiB) to a real file, in small
/// frames (through the write-behind queue) and large ones (written from the caller), under every
/// policy that uses the queue: every frame reads back, in order, and the file verifies clean.
#[test]
fn sessions_larger_than_the_early_sync_step_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    for (n, durability) in [Durability::default(), Durability::EveryCheckpoint, Durability::None].into_iter().enumerate() {
        let path = dir.path().join(format!("e{n}.rec"));
        let mut rec = RecorderOptions::new().durability(durability).create(&path).unwrap();
        let mut s = rec.start_session("long").unwrap();
        let small = s.add_stream("imu", "raw").unwrap();
        let large = s.add_stream("camera", "raw").unwrap();
        let frame = |i: u64, len: usize| -> Vec<u8> { (0..len).map(|j| (i as usize * 31 + j) as u8).collect() };
        for i in 0..120_000u64 {
            s.write(small, ts(i as i64 * 1000), &frame(i, 150)).unwrap();
            if i % 6_000 == 0 {
                s.write(large, ts(i as i64 * 1000 + 1), &frame(i, 1 << 20)).unwrap();
            }
        }
        let info = s.finish().unwrap();
        assert_eq!(info.frames, 120_020);
        assert!(info.bytes > 40 << 20, "{durability:?}: {} bytes", info.bytes);
        drop(rec);
        let f = RecFile::open(&path).unwrap();
        let sess = f.last_session().unwrap();
        assert_eq!(sess.state(), SessionState::Finished);
        let (imu, camera) = (sess.stream("imu").unwrap(), sess.stream("camera").unwrap());
        assert_eq!((imu.len(), camera.len()), (120_000, 20));
        for (i, fr) in imu.scan().enumerate() {
            assert_eq!(fr.unwrap().data(), &frame(i as u64, 150)[..], "{durability:?}: imu frame {i}");
        }
        for (k, fr) in camera.iterate().enumerate() {
            assert_eq!(fr.unwrap().data(), &frame(k as u64 * 6_000, 1 << 20)[..], "{durability:?}: camera frame {k}");
        }
        let report = f.verify();
        assert!(report.ok && report.frames == 120_020, "{durability:?}: {report:?}");
    }
}
