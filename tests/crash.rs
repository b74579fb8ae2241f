//! Power loss at every operation of a recording, with unsynced writes dropped, torn, or
//! persisted out of order; truncation at every byte; kill -9 of a recording process.

use recfile::storage::{CrashMode, DiskOp, MemStorage, SimulatedDisk};
use recfile::{recover_storage, Durability, RecFile, Recorder, RecorderOptions, Timestamp};
use std::collections::HashMap;

/// What the workload wrote: per (session, stream), the frames in seq order.
type Written = HashMap<(usize, String), Vec<(i64, Vec<u8>)>>;

/// A durability mark: once the disk has this many operations, these frames are durable.
struct Mark {
    ops: usize,
    frames: HashMap<(usize, String), usize>,
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Records two sessions (the second left unfinished) on a simulated disk that reserves ahead.
fn workload(durability: Durability, background: bool) -> (SimulatedDisk, Written, Vec<Mark>) {
    // The disk grows ahead of the writes as a file does (in 8 KiB steps here, 2 MiB on files),
    // so that crashes also leave the zeros reserved past the data.
    let disk = SimulatedDisk::reserving(8192);
    let opts = RecorderOptions::new().checkpoint_every_frames(6).buffer_bytes(4096).durability(durability).background_writes(background);
    let mut rec = Recorder::init_storage(Box::new(disk.clone()), opts).unwrap();
    let mut written: Written = HashMap::new();
    let mut marks = Vec::new();
    let mut seed = 42u64;
    for (si, name) in ["first", "second"].iter().enumerate() {
        let mut s = rec.start_session(name).unwrap();
        let streams = [s.add_stream("lidar", "raw").unwrap(), s.add_stream("odom", "json").unwrap()];
        let names = ["lidar", "odom"];
        let mut checkpoints = s.checkpoints();
        for i in 0..40i64 {
            let k = (xorshift(&mut seed) % 2) as usize;
            let len = [3usize, 700, 2500][(xorshift(&mut seed) % 3) as usize];
            let data: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            let ts = i * 10 - (xorshift(&mut seed) % 25) as i64; // not monotonic
            s.write(streams[k], Timestamp::from_nanos(ts), &data).unwrap();
            written.entry((si, names[k].to_string())).or_default().push((ts, data));
            if i == 17 {
                s.set_metadata("half", "way").unwrap();
                s.checkpoint_with_state(b"state").unwrap();
            }
            if s.checkpoints() != checkpoints {
                checkpoints = s.checkpoints();
                let last_sync = *disk.sync_points().last().unwrap();
                let frames = written.iter().filter(|((x, _), _)| *x == si).map(|(k, v)| (k.clone(), v.len())).collect();
                marks.push(Mark { ops: last_sync, frames });
            }
        }
        if si == 0 {
            s.finish().unwrap();
            let v = RecFile::from_bytes(disk.live_image()).unwrap().verify();
            assert!(v.ok(), "a finished session leaves none of the space it reserved: {:?}", v.problems);
            let last_sync = *disk.sync_points().last().unwrap();
            let frames = written.iter().filter(|((x, _), _)| *x == 0).map(|(k, v)| (k.clone(), v.len())).collect();
            marks.push(Mark { ops: last_sync, frames });
        } else {
            s.abandon();
        }
    }
    let grown = disk.history().iter().filter(|o| matches!(o, DiskOp::SetLen(_))).count();
    assert!(grown >= 8, "the disk grew ahead of the writes only {grown} times");
    (disk, written, marks)
}

/// Recovers a crash image and checks every promise; returns the frames kept.
fn check_image(image: Vec<u8>, written: &Written, marks: &[Mark], at: usize, what: &str) -> usize {
    let mut storage = MemStorage::new(image);
    if storage.data.len() < 4096 {
        assert!(recover_storage(&mut storage).is_err() || storage.data.len() >= 4096, "{what}: a missing header must be an error");
        return 0;
    }
    // The read-only view works before recovery and agrees with recovery.
    let before = RecFile::from_bytes(storage.data.clone()).unwrap_or_else(|e| panic!("{what}: open before recovery: {e}"));
    let report = recover_storage(&mut storage).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    let again = recover_storage(&mut storage.clone()).unwrap();
    assert!(!again.was_interrupted && again.bytes_dropped == 0, "{what}: recovery is not idempotent: {again:?}");
    let f = RecFile::from_bytes(storage.data.clone()).unwrap();
    // Recovery keeps every record that validates, also after a hole that a power cut left
    // (writes reach the disk in any order): verify may then report the hole, and a checkpoint
    // after it that recovery could not use, and nothing else.
    let v = f.verify();
    for p in &v.problems {
        let hole = p.message.contains("kind 0")
            || p.message.contains("CRC mismatch")
            || p.message.contains("truncated")
            || p.message.contains("does not follow checkpoint");
        assert!(hole && !p.message.contains("index entry"), "{what}: verify after recovery: {:?} (report {report:?})", v.problems);
    }
    let mut kept = 0;
    for (si, sess) in f.sessions().iter().enumerate() {
        for name in sess.stream_names() {
            let want = &written[&(si, name.clone())];
            let mut frames: Vec<_> = sess.stream(&name).unwrap().iterate().map(|r| r.unwrap()).collect();
            frames.sort_by_key(|f| f.seq());
            for fr in &frames {
                let i = fr.seq() as usize;
                assert!(i < want.len(), "{what}: frame of {name} that was never written");
                assert_eq!(fr.timestamp().as_nanos(), want[i].0, "{what}");
                assert_eq!(fr.data(), &want[i].1[..], "{what}: corrupt frame returned");
            }
            assert!(frames.windows(2).all(|w| w[0].seq() < w[1].seq()), "{what}: a frame of {name} returned twice");
            kept += frames.len();
            let b = before.session(si).map(|s| s.stream(&name).map(|r| r.len()).unwrap_or(0)).unwrap_or(0);
            assert_eq!(b, frames.len() as u64, "{what}: the read-only view and recovery disagree on {name}");
        }
    }
    // Everything before the last durable checkpoint is there.
    if let Some(m) = marks.iter().rev().find(|m| m.ops <= at) {
        for ((si, name), n) in &m.frames {
            let got = f.session(*si).and_then(|s| s.stream(name).ok()).map_or(0, |r| r.len());
            assert!(got as usize >= *n, "{what}: lost durable frames of session {si} {name}: {got} < {n}");
        }
    }
    kept
}

fn power_loss_at_every_operation(durability: Durability, background: bool) {
    let (disk, written, marks) = workload(durability, background);
    let ops = disk.ops();
    assert!(marks.len() > 10, "the workload should checkpoint often");
    let mut seed = 7u64;
    let mut cases = 0;
    for at in 0..=ops {
        let n = (xorshift(&mut seed) % 6) as usize;
        let bytes = (xorshift(&mut seed) % 3000) as usize;
        let mask = xorshift(&mut seed);
        for mode in [CrashMode::DropUnsynced, CrashMode::Torn { n, bytes }, CrashMode::Subset { mask }] {
            check_image(disk.crash_image(at, mode), &written, &marks, at, &format!("crash after op {at}/{ops} ({mode:?})"));
            cases += 1;
        }
    }
    assert_eq!(cases, 3 * (ops + 1));
    assert!(ops > 50, "only {ops} operations");
    // With everything persisted, every frame handed to the OS before the abandon survives.
    let all = check_image(disk.live_image(), &written, &marks, ops, "live image");
    assert!(all >= marks.last().unwrap().frames.values().sum::<usize>());
}

#[test]
fn power_loss_every_checkpoint_durability() {
    power_loss_at_every_operation(Durability::EveryCheckpoint, true);
}

#[test]
fn power_loss_interval_durability() {
    power_loss_at_every_operation(Durability::Interval(std::time::Duration::ZERO), true);
}

#[test]
fn power_loss_interval_durability_without_background_writes() {
    power_loss_at_every_operation(Durability::Interval(std::time::Duration::ZERO), false);
}

#[test]
fn truncation_at_every_byte_recovers_the_valid_prefix() {
    let (disk, written, _) = workload(Durability::EveryCheckpoint, true);
    let full = disk.live_image();
    for len in 0..=full.len() {
        let cut = full[..len].to_vec();
        // Never panics, read-only or recovering.
        if let Ok(f) = RecFile::from_bytes(cut.clone()) {
            let _ = f.verify();
        }
        if len >= 4096 {
            check_image(cut, &written, &[], 0, &format!("cut at {len}"));
        } else {
            assert!(recover_storage(&mut MemStorage::new(cut)).is_err());
        }
    }
}

#[test]
fn random_bit_flips_are_all_reported_and_undamaged_frames_read() {
    let (disk, _, _) = workload(Durability::EveryCheckpoint, true);
    let mut storage = MemStorage::new(disk.live_image());
    recover_storage(&mut storage).unwrap();
    let good = storage.data;
    let f = RecFile::from_bytes(good.clone()).unwrap();
    let reference: Vec<(u64, Vec<u8>)> = f
        .sessions()
        .iter()
        .flat_map(|s| s.replay(&[]).unwrap().iterate().map(|r| r.unwrap()).map(|fr| (fr.offset(), fr.data().to_vec())).collect::<Vec<_>>())
        .collect();
    let mut seed = 99u64;
    for _ in 0..300 {
        let mut bad = good.clone();
        let at = 4096 + (xorshift(&mut seed) as usize % (good.len() - 4096));
        bad[at] ^= 1 << (xorshift(&mut seed) % 8);
        let Ok(f) = RecFile::from_bytes(bad) else { continue };
        let report = f.verify();
        assert!(!report.ok(), "flip at {at} not reported");
        // Every frame whose record does not contain the flipped byte still reads back intact.
        for s in f.sessions() {
            let Ok(r) = s.replay(&[]) else { continue };
            for fr in r.iterate().flatten() {
                if let Some((_, data)) = reference.iter().find(|(o, _)| *o == fr.offset()) {
                    assert_eq!(fr.data(), &data[..], "frame at {} damaged by a flip at {at} yet returned", fr.offset());
                }
            }
        }
        // Sessions that do not contain the flipped byte read back completely; a flip inside a
        // frame record hides that frame only.
        let flipped_frame = reference.iter().find(|(o, d)| (*o as usize..*o as usize + 23 + d.len()).contains(&at));
        for (si, s) in f.sessions().iter().enumerate() {
            let segment = s.offset() as usize..s.end_offset() as usize;
            let want: Vec<_> = reference.iter().filter(|(o, _)| segment.contains(&(*o as usize))).collect();
            let got = s.replay(&[]).map(|r| r.iterate().flatten().count()).unwrap_or(0);
            if !segment.contains(&at) {
                assert_eq!(got, want.len(), "flip at {at} cost session {si} frames");
            } else if flipped_frame.is_some() {
                assert_eq!(got, want.len() - 1, "flip at {at} inside a frame hid other frames of session {si}");
            }
        }
    }
}
