//! Interrupted sessions: read-only view, recovery, append after recovery.

use recfile::{recover, RecFile, Recorder, RecorderOptions, SessionState, Timestamp};

fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanos(n)
}

#[test]
fn abandoned_session_reads_as_interrupted_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(10).buffer_bytes(4096).create(&path).unwrap();
    let mut s = rec.start_session("one").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for i in 0..25 {
        s.write(a, ts(i), &[i as u8; 10]).unwrap();
    }
    s.abandon();
    drop(rec);
    // The buffered frames 20..25 never reached the OS: 20 frames survive.
    let f = RecFile::open(&path).unwrap();
    let sess = f.last_session().unwrap();
    assert_eq!(sess.state(), SessionState::Interrupted);
    assert!(f.needs_recovery());
    assert_eq!(sess.stream("a").unwrap().len(), 20);
    drop(f);
    let report = recover(&path).unwrap();
    assert!(report.was_interrupted);
    assert_eq!(report.frames_kept, 20);
    assert_eq!(report.bytes_dropped, 0);
    let again = recover(&path).unwrap();
    assert!(!again.was_interrupted);
    let f = RecFile::open(&path).unwrap();
    let sess = f.last_session().unwrap();
    assert_eq!(sess.state(), SessionState::Finished);
    assert!(sess.was_recovered());
    let r = sess.stream("a").unwrap();
    assert_eq!(r.len(), 20);
    assert_eq!(r.load(19).unwrap().data(), &[19u8; 10]);
}

#[test]
fn frames_after_the_last_checkpoint_are_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(10).buffer_bytes(4096).create(&path).unwrap();
    let mut s = rec.start_session("one").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    // Big frames overflow the 4 KiB buffer, so frames after checkpoint 1 reach the file.
    for i in 0..14 {
        s.write(a, ts(i), &[i as u8; 3000]).unwrap();
    }
    s.set_metadata("late", "yes").unwrap();
    let b = s.add_stream("b", "json").unwrap();
    s.write(b, ts(100), b"{}").unwrap();
    s.write(a, ts(14), &[14u8; 3000]).unwrap();
    s.abandon();
    drop(rec);
    let len_before = std::fs::metadata(&path).unwrap().len();
    let mut rec = Recorder::open_append(&path).unwrap();
    rec.start_session("two").unwrap().finish().unwrap();
    drop(rec);
    let f = RecFile::open(&path).unwrap();
    assert_eq!(f.session_count(), 2);
    let sess = f.session(0).unwrap();
    let n = sess.stream("a").unwrap().len();
    // Checkpoint at 10, then the 4 KiB buffer flushed after frames 11 and 13; frame 14 stayed buffered.
    assert_eq!(n, 14);
    assert!(len_before > 4096);
    for (i, fr) in sess.stream("a").unwrap().iterate().enumerate() {
        assert_eq!(fr.unwrap().data(), &[i as u8; 3000][..]);
    }
}

#[test]
fn a_reader_sees_the_live_writer_up_to_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.rec");
    let mut rec = RecorderOptions::new()
        .checkpoint_every_frames(0)
        .checkpoint_every(std::time::Duration::ZERO)
        .buffer_bytes(4096)
        .create(&path)
        .unwrap();
    let mut s = rec.start_session("live").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for i in 0..30 {
        s.write(a, ts(i), &[i as u8; 500]).unwrap();
    }
    s.checkpoint().unwrap();
    for i in 30..60 {
        s.write(a, ts(i), &[i as u8; 500]).unwrap(); // reaches the OS (4 KiB buffer), not checkpointed
    }
    let f = RecFile::open(&path).unwrap();
    assert!(f.is_live());
    let sess = f.last_session().unwrap();
    assert_eq!(sess.state(), SessionState::Recording);
    assert_eq!(sess.stream("a").unwrap().len(), 30, "a consistent prefix: up to the last checkpoint");
    assert!(matches!(recover(&path), Err(recfile::Error::Locked { .. })), "recovery never runs under a live writer");
    s.finish().unwrap();
    drop(rec);
    let f = RecFile::open(&path).unwrap();
    assert_eq!(f.last_session().unwrap().stream("a").unwrap().len(), 60);
}
