//! Raw bytes into open, iterate, find, verify and recover (in memory): never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use recfile::storage::MemStorage;
use recfile::{recover_storage, RecFile, Timestamp};
use std::time::Duration;

fn exercise(f: &RecFile) {
    let _ = f.verify();
    for s in f.sessions() {
        let _ = (s.name(), s.metadata(), s.streams());
        if let Ok(r) = s.replay(&[]) {
            for fr in r.iterate().take(200) {
                if let Ok(fr) = fr {
                    let _ = fr.data().len();
                    let _ = fr.decode::<Vec<u8>>();
                }
            }
            // The borrowed walk must agree with the owned one, frame by frame.
            for (a, b) in r.scan().zip(r.iterate()).take(200) {
                match (a, b) {
                    (Ok(a), Ok(b)) => assert!(a.data() == b.data() && a.offset() == b.offset(), "scan and iterate disagree"),
                    (Err(_), Err(_)) => {}
                    _ => panic!("scan and iterate disagree on a damaged frame"),
                }
            }
            let _ = r.scan_range(Timestamp::from_nanos(-1), Some(Timestamp::from_nanos(1 << 40))).take(100).count();
            for t in [i64::MIN, -1, 0, 1, 1 << 40, i64::MAX] {
                let _ = r.find_closest(Timestamp::from_nanos(t), None);
                let _ = r.find_closest(Timestamp::from_nanos(t), Some(Duration::from_nanos(5)));
                let _ = r.find_before(Timestamp::from_nanos(t));
                let _ = r.find_after(Timestamp::from_nanos(t));
            }
            let _ = r.load(r.len() / 2);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = RecFile::from_bytes(data.to_vec()) {
        exercise(&f);
    }
    let mut storage = MemStorage::new(data.to_vec());
    if recover_storage(&mut storage).is_ok() {
        // What recovery leaves must open and recover again as a no-op. (Reading it is what
        // the first half does with any bytes: one open here keeps each execution cheap.)
        if let Ok(f) = RecFile::from_bytes(storage.data.clone()) {
            for s in f.sessions() {
                let _ = s.replay(&[]).map(|r| r.len());
            }
        }
        let again = recover_storage(&mut storage).expect("second recovery");
        assert!(!again.was_interrupted, "recovery is not idempotent");
    }
});
