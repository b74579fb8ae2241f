//! Every malformed input gives its own typed error, never a panic.

use recfile::storage::MemStorage;
use recfile::{Error, RecFile, Recorder, RecorderOptions, Timestamp};

fn small_file() -> Vec<u8> {
    let mut rec = Recorder::init_storage(Box::new(MemStorage::default()), RecorderOptions::new().checkpoint_every_frames(4)).unwrap();
    for name in ["one", "two"] {
        let mut s = rec.start_session(name).unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        let b = s.add_stream("b", "json").unwrap();
        for i in 0..10 {
            s.write(a, Timestamp::from_nanos(i), &[i as u8; 7]).unwrap();
            s.write(b, Timestamp::from_nanos(i * 2), b"{\"k\":1}").unwrap();
        }
        s.set_metadata("k", "v").unwrap();
        s.finish().unwrap();
    }
    rec.into_storage().unwrap().read_all().unwrap()
}

#[test]
fn header_errors_are_typed() {
    assert!(matches!(RecFile::from_bytes(vec![]), Err(Error::EmptyFile)));
    assert!(matches!(RecFile::from_bytes(b"%PDF-1.7 hello".to_vec()), Err(Error::BadMagic { .. })));
    let good = small_file();
    assert!(matches!(RecFile::from_bytes(good[..3].to_vec()), Err(Error::TruncatedHeader { .. })));
    assert!(matches!(RecFile::from_bytes(good[..100].to_vec()), Err(Error::TruncatedHeader { .. })));
    let mut newer = good.clone();
    newer[8] = 2;
    assert!(matches!(RecFile::from_bytes(newer), Err(Error::UnsupportedVersion { found_major: 2, supported_major: 1, .. })));
    let mut crc = good.clone();
    crc[40] ^= 0x10;
    assert!(matches!(RecFile::from_bytes(crc), Err(Error::CrcMismatch { what: "file header", offset: 0, .. })));
    let mut slots = good.clone();
    slots[64] ^= 1;
    slots[128] ^= 1;
    assert!(matches!(RecFile::from_bytes(slots), Err(Error::NoValidSlot)));
    assert!(RecFile::from_bytes(good.clone()).unwrap().warnings().is_empty());
    // Either slot alone is enough: the file still opens, with a warning.
    for slot in [64usize, 128] {
        let mut one_slot = good.clone();
        one_slot[slot + 3] ^= 1;
        let f = RecFile::from_bytes(one_slot).unwrap();
        assert_eq!(f.warnings().len(), 1);
        assert_eq!(f.session_count(), 2);
        assert_eq!(f.session(1).unwrap().state(), recfile::SessionState::Finished);
    }
}

#[test]
fn a_damaged_frame_is_an_error_naming_its_offset_and_the_others_still_read() {
    let good = small_file();
    let f = RecFile::from_bytes(good.clone()).unwrap();
    let victim = f.session(0).unwrap().stream("a").unwrap().load(3).unwrap();
    let offset = victim.offset();
    let mut bad = good;
    bad[offset as usize + 25] ^= 0x40; // a payload byte
    let f = RecFile::from_bytes(bad).unwrap();
    let r = f.session(0).unwrap().stream("a").unwrap();
    match r.load(3) {
        Err(Error::CrcMismatch { offset: o, what: "frame", .. }) => assert_eq!(o, offset),
        other => panic!("expected a CRC error, got {other:?}"),
    }
    let results: Vec<_> = r.iterate().collect();
    assert_eq!(results.len(), 10);
    assert_eq!(results.iter().filter(|x| x.is_err()).count(), 1);
    // The borrowed walk reports the same frame, the same way.
    let scanned: Vec<_> = r.scan().collect();
    assert_eq!(scanned.len(), 10);
    match &scanned[3] {
        Err(Error::CrcMismatch { offset: o, what: "frame", .. }) => assert_eq!(*o, offset),
        other => panic!("expected a CRC error, got {other:?}"),
    }
    assert_eq!(scanned.iter().filter(|x| x.is_err()).count(), 1);
    let mut it = r.iterate().skip_damaged();
    let kept: Vec<_> = it.by_ref().collect();
    assert_eq!(kept.len(), 9);
    assert_eq!(it.skipped().len(), 1);
    let report = f.verify();
    assert!(!report.ok());
    assert!(report.problems.iter().any(|p| p.offset == offset), "{:?}", report.problems);
    // The other session is untouched.
    assert_eq!(f.session(1).unwrap().stream("a").unwrap().iterate().filter(|x| x.is_ok()).count(), 10);
}

#[test]
fn a_damaged_session_end_falls_back_to_a_scan() {
    let good = small_file();
    let f = RecFile::from_bytes(good.clone()).unwrap();
    let end0 = f.session(0).unwrap().end_offset();
    let mut bad = good;
    // Damage the first session's end record (last bytes of its segment).
    bad[end0 as usize - 3] ^= 0xFF;
    let f = RecFile::from_bytes(bad).unwrap();
    assert!(!f.warnings().is_empty());
    assert_eq!(f.session_count(), 2);
    assert_eq!(f.session(1).unwrap().stream("b").unwrap().len(), 10);
    assert_eq!(f.session(0).unwrap().stream("a").unwrap().len(), 10);
    assert!(!f.verify().ok());
}

#[test]
fn every_single_byte_corruption_is_handled_without_panic() {
    let good = small_file();
    for i in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[i] ^= 0xA5;
        if let Ok(f) = RecFile::from_bytes(bad) {
            let report = f.verify();
            for s in f.sessions() {
                for name in s.stream_names() {
                    if let Ok(r) = s.stream(&name) {
                        let _ = r.iterate().count();
                        let _ = r.find_closest(Timestamp::from_nanos(5), None);
                    }
                }
            }
            // Damage to the unused part of the header page is invisible; anywhere else it must be reported.
            if !(192..4096).contains(&i) {
                assert!(!report.ok(), "flip at {i} not reported");
            }
        }
    }
}

#[test]
fn random_garbage_after_a_valid_header_never_panics() {
    let good = small_file();
    let mut seed = 7u64;
    for round in 0..200 {
        let mut bytes = good[..4096].to_vec();
        let n = (round * 37) % 3000;
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        if let Ok(f) = RecFile::from_bytes(bytes) {
            let _ = f.verify();
            let _ = f.sessions().len();
        }
    }
}

/// Found by fuzzing from the golden files: a damaged record in an older session (its length
/// field), a copied session start, a damaged commit slot and an interrupted last session. The
/// first recovery keeps all 13 frames through the slot's checkpoint chain; a second recovery
/// must then change nothing (it used to rescan past the damage, stop at a damaged checkpoint
/// and truncate the file, dropping 5 of the frames the first one had kept).
#[test]
fn recovery_past_a_damaged_older_session_is_idempotent() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/regressions/damaged_chain_interrupted.rec")).unwrap();
    let before = RecFile::from_bytes(bytes.clone()).unwrap();
    let seen_before = before.last_session().unwrap().frame_count();
    let mut storage = recfile::storage::MemStorage::new(bytes);
    let first = recfile::recover_storage(&mut storage).unwrap();
    assert!(first.was_interrupted);
    assert_eq!(first.frames_kept, 13);
    assert_eq!(seen_before, 13, "the read-only view agrees with recovery");
    let recovered = storage.data.clone();
    let second = recfile::recover_storage(&mut storage).unwrap();
    assert!(!second.was_interrupted && second.bytes_dropped == 0, "{second:?}");
    assert_eq!(storage.data, recovered, "a second recovery changed the file");
    let f = RecFile::from_bytes(recovered).unwrap();
    let last = f.last_session().unwrap();
    assert_eq!(last.state(), recfile::SessionState::Finished);
    assert_eq!(last.stream("a").unwrap().iterate().filter(|x| x.is_ok()).count(), 13);
}
