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

/// While a session records, its file grows ahead of the writes (zeros past the data, spec §6)
/// and the end of the session cuts them off: a reader opened in the meantime uses only the
/// committed bytes, so it reads on after the cut (a page of its map past the file's end would
/// kill it with SIGBUS), and the finished file is exactly its records.
#[test]
fn a_live_reader_reads_on_after_the_writer_cuts_the_space_it_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reserved.rec");
    let mut rec = RecorderOptions::new().create(&path).unwrap();
    let mut s = rec.start_session("big").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    let payload = |i: i64| vec![(i % 251) as u8 | 1; 1500];
    for i in 0..3000 {
        s.write(a, ts(i), &payload(i)).unwrap();
    }
    s.checkpoint().unwrap();
    let on_disk = std::fs::metadata(&path).unwrap().len();
    let reader = RecFile::open(&path).unwrap();
    assert!(reader.is_live());
    let committed = reader.size_bytes();
    assert!(committed > 3000 * 1500, "every checkpointed frame is committed");
    #[cfg(target_os = "linux")]
    {
        assert!(on_disk >= committed + recfile::storage::RESERVE_STEP, "the file is reserved a step ahead: {on_disk} for {committed}");
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[committed as usize..].iter().all(|&b| b == 0), "past the data only zeros");
    }
    let stream = reader.last_session().unwrap().stream("a").unwrap();
    assert_eq!(stream.len(), 3000);
    for i in 3000..3100 {
        s.write(a, ts(i), &payload(i)).unwrap();
    }
    s.finish().unwrap();
    // The writer cut the file at the end of its session, below what the reader mapped.
    let finished = std::fs::metadata(&path).unwrap().len();
    assert!(finished < on_disk);
    let mut n = 0;
    for (i, f) in stream.iterate().enumerate() {
        let f = f.unwrap();
        assert_eq!(f.data(), &payload(i as i64)[..]);
        n += 1;
    }
    assert_eq!(n, 3000);
    drop(rec);
    let f = RecFile::open(&path).unwrap();
    assert_eq!(f.size_bytes(), finished);
    assert!(f.verify().ok(), "{:?}", f.verify().problems);
    assert_eq!(f.last_session().unwrap().stream("a").unwrap().len(), 3100);
}

/// A disk that fills up: every write reaching past `limit` bytes fails.
#[derive(Clone)]
struct FillingDisk {
    inner: std::sync::Arc<std::sync::Mutex<recfile::storage::MemStorage>>,
    limit: u64,
}

impl recfile::storage::Storage for FillingDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.lock().unwrap().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if offset + data.len() as u64 > self.limit {
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"));
        }
        self.inner.lock().unwrap().write_at(offset, data)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.lock().unwrap().len()
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.lock().unwrap().set_len(len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.inner.lock().unwrap().sync()
    }
}

#[test]
fn a_full_disk_is_reported_and_every_checkpointed_frame_survives() {
    for background in [true, false] {
        let disk = FillingDisk { inner: Default::default(), limit: 300_000 };
        let opts = RecorderOptions::new().checkpoint_every_frames(50).buffer_bytes(8192).background_writes(background);
        let mut rec = Recorder::init_storage(Box::new(disk.clone()), opts).unwrap();
        let mut s = rec.start_session("full").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        let (mut written, mut checkpointed, mut checkpoints) = (0u64, 0u64, 0);
        let mut failure = None;
        for i in 0..100_000i64 {
            match s.write(a, ts(i), &[(i % 251) as u8; 200]) {
                Ok(_) => written += 1,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            // The count never goes back, not even once a background write has failed.
            let now = s.checkpoints();
            assert!(now >= checkpoints, "background {background}: {now} checkpoints after {checkpoints}");
            if now > checkpoints {
                checkpoints = now;
                checkpointed = written;
            }
        }
        let failure = failure.unwrap_or_else(|| panic!("background {background}: the disk never filled"));
        assert!(failure.to_string().contains("no space left"), "background {background}: {failure}");
        // Every later call fails too, finish included.
        assert!(s.write(a, ts(1 << 40), b"x").is_err());
        assert!(s.finish().is_err());
        assert!(checkpointed > 0, "background {background}: no checkpoint before the disk filled");
        // What reached the disk recovers to a prefix holding every checkpointed frame.
        let mut image = disk.inner.lock().unwrap().clone();
        recfile::recover_storage(&mut image).unwrap();
        let f = RecFile::from_bytes(image.data).unwrap();
        assert!(f.verify().ok(), "background {background}");
        let r = f.last_session().unwrap().stream("a").unwrap();
        assert!(r.len() >= checkpointed, "background {background}: {} < {checkpointed}", r.len());
        assert!(r.len() <= written);
        for (i, fr) in r.iterate().enumerate() {
            assert_eq!(fr.unwrap().data(), &[(i % 251) as u8; 200][..], "background {background}: frame {i}");
        }
    }
}

#[test]
fn a_reader_in_the_writers_process_sees_every_automatic_checkpoint_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auto.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(1000).create(&path).unwrap();
    let mut s = rec.start_session("auto").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for round in 1..=5u64 {
        for i in 0..1000u64 {
            let n = (round - 1) * 1000 + i;
            s.write(a, ts(n as i64), &n.to_le_bytes()).unwrap();
        }
        // The write that made checkpoint `round` has just returned; its bytes may still be on
        // the write-behind queue, and the reader must see them all the same.
        let f = RecFile::open(&path).unwrap();
        let r = f.last_session().unwrap().stream("a").unwrap();
        assert_eq!(r.len(), round * 1000, "after checkpoint {round}");
        assert_eq!(r.last().unwrap().data(), &(round * 1000 - 1).to_le_bytes());
    }
    s.finish().unwrap();
}

/// Format 1.1: every checkpoint of a session the writer starts (and the one recovery writes)
/// holds the CRC32 of its interval's bytes, and the session start says so.
#[test]
fn every_checkpoint_holds_its_intervals_crc() {
    use recfile::format::record::{read_record, CheckpointBody, SessionStartBody, SESSION_INTERVAL_CRCS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crc.rec");
    let mut rec = recfile::RecorderOptions::new().checkpoint_every_frames(5).create(&path).unwrap();
    let mut s = rec.start_session("crc").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for i in 0..23i64 {
        // Small frames through the buffer, large ones written directly (combined CRCs).
        let len = if i % 7 == 3 { 300_000 } else { 10 + i as usize };
        s.write(a, recfile::Timestamp::from_nanos(i), &vec![i as u8; len]).unwrap();
    }
    s.checkpoint().unwrap();
    s.write(a, recfile::Timestamp::from_nanos(99), b"tail").unwrap();
    s.abandon();
    drop(rec);
    recfile::recover(&path).unwrap();
    let file = std::fs::read(&path).unwrap();
    let (mut at, mut checked) = (4096u64, 0);
    while let Ok(r) = read_record(&file, at, None) {
        match r.kind_byte {
            1 => assert_ne!(SessionStartBody::decode(r.body, at).unwrap().flags & SESSION_INTERVAL_CRCS, 0),
            4 => {
                let cp = CheckpointBody::decode(r.body, at).unwrap();
                let want = crc32fast::hash(&file[cp.interval_start as usize..at as usize]);
                assert_eq!(cp.interval_crc, want, "checkpoint {} at {at}", cp.number);
                checked += 1;
            }
            _ => {}
        }
        at = r.end();
    }
    assert_eq!(at, file.len() as u64);
    assert!(checked >= 5, "{checked} checkpoints checked");
}
