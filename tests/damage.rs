//! Damage stays local: one flipped byte in every record of a three-session file, and a cut at
//! every record boundary and inside every record. For each: opening never fails or panics, the
//! three sessions stay listed in place, every frame whose own record is intact is read back
//! with its exact bytes (before and after recovery), recovery either keeps every intact frame
//! or refuses and leaves the bytes as they were, and verify reports the damage.

use recfile::format::record::read_record;
use recfile::storage::MemStorage;
use recfile::{recover_storage, RecFile, Recorder, RecorderOptions, Timestamp};
use std::collections::BTreeMap;

/// (session position, stream name, seq) → (timestamp, bytes, record offset, record end).
type Frames = BTreeMap<(usize, String, u64), FrameFacts>;
/// A frame's timestamp, bytes, record offset and record end.
type FrameFacts = (i64, Vec<u8>, u64, u64);

/// Three sessions: json and raw streams, metadata, actions, checkpoints every 7 frames.
fn three_sessions(last_finished: bool) -> Vec<u8> {
    sessions_of(last_finished, 3, 20, 7)
}

/// `sessions` sessions of `frames` odom frames each (and a lidar frame every third), with a
/// checkpoint every `every` frames.
fn sessions_of(last_finished: bool, sessions: usize, frames: i64, every: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.rec");
    let opts = RecorderOptions::new().checkpoint_every_frames(every);
    let mut rec = opts.create(&path).unwrap();
    for si in 0..sessions {
        let mut s = rec.start_session_with_metadata(&format!("run-{si}"), &[("robot", "go2")]).unwrap();
        let odom = s.add_stream("odom", "json").unwrap();
        let lidar = s.add_stream_with_schema("lidar", "raw", "Scan", b"schema").unwrap();
        for i in 0..frames {
            let t = Timestamp::from_nanos(1_000_000_000 * (si as i64 + 1) + i * 1_000_000);
            s.write(odom, t, format!("{{\"x\":{i}.5}}").as_bytes()).unwrap();
            if i % 3 == 0 {
                s.write(lidar, t, &vec![i as u8; 40 + i as usize]).unwrap();
            }
            if i == 10 {
                s.set_metadata("half", "way").unwrap();
                s.record_call("plan", &i, |x| Ok::<_, String>(x * 2)).unwrap().unwrap();
            }
        }
        if si + 1 < sessions || last_finished {
            s.finish().unwrap();
        } else {
            s.checkpoint().unwrap();
            s.abandon();
        }
    }
    drop(rec);
    std::fs::read(&path).unwrap()
}

/// Every record of an intact file: (offset, end, kind byte).
fn records(file: &[u8]) -> Vec<(u64, u64, u8)> {
    let mut out = Vec::new();
    let mut at = 4096u64;
    while let Ok(r) = read_record(file, at, None) {
        out.push((at, r.end(), r.kind_byte));
        at = r.end();
    }
    // An abandoned session leaves the zeros its writer reserved ahead of its data.
    assert!(file[at as usize..].iter().all(|&b| b == 0), "the test file must frame to its end, then hold only zeros");
    out
}

fn frames_of(f: &RecFile) -> Frames {
    let mut out = Frames::new();
    for (si, s) in f.sessions().iter().enumerate() {
        for fr in s.replay(&[]).unwrap().iterate().flatten() {
            let end = fr.offset() + 9 + 14 + fr.data().len() as u64;
            out.insert((si, fr.stream().to_string(), fr.seq()), (fr.timestamp().as_nanos(), fr.data().to_vec(), fr.offset(), end));
        }
    }
    out
}

/// Every frame of `want` whose record lies in `intact` (bytes unchanged and present) is in
/// `got`, with its timestamp and bytes, in the same session. Streams whose definition was
/// damaged may carry another name: those frames are matched by session, seq and offset.
fn assert_kept(want: &Frames, got: &Frames, intact: impl Fn(u64, u64) -> bool, what: &str) -> (usize, usize) {
    let by_offset: BTreeMap<(usize, u64), &FrameFacts> = got.iter().map(|(k, v)| ((k.0, v.2), v)).collect();
    let (mut should, mut kept) = (0, 0);
    for (k, v) in want {
        if !intact(v.2, v.3) {
            continue;
        }
        should += 1;
        let found = got.get(k).filter(|g| g.2 == v.2).or_else(|| by_offset.get(&(k.0, v.2)).copied());
        let g = found.unwrap_or_else(|| panic!("{what}: intact frame {k:?} at {} is not returned", v.2));
        assert_eq!((g.0, &g.1), (v.0, &v.1), "{what}: frame {k:?} comes back different");
        kept += 1;
    }
    (should, kept)
}

fn check_damaged(original: &[u8], damaged: Vec<u8>, want: &Frames, intact: impl Fn(u64, u64) -> bool + Copy, what: &str) -> (usize, usize) {
    let f = RecFile::from_bytes(damaged.clone()).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let cut = damaged.len() < original.len();
    if !cut {
        assert_eq!(f.session_count(), 3, "{what}: sessions {:?}", f.warnings());
        let want_ids: Vec<_> = RecFile::from_bytes(original.to_vec()).unwrap().sessions().iter().map(|s| s.id()).collect();
        let want_names: Vec<_> = RecFile::from_bytes(original.to_vec()).unwrap().sessions().iter().map(|s| s.name().to_string()).collect();
        for (i, s) in f.sessions().iter().enumerate() {
            // The description is written twice: a damaged copy costs neither the id nor the name.
            assert_eq!(s.id(), want_ids[i], "{what}: session {i} lost its id or moved");
            assert_eq!(s.name(), want_names[i], "{what}: session {i} lost its name");
            for name in ["odom", "lidar"] {
                assert!(s.stream_names().iter().any(|n| n == name), "{what}: session {i} lost stream {name}: {:?}", s.stream_names());
            }
        }
        assert!(!f.verify().ok(), "{what}: verify does not see the damage");
    }
    let counts = assert_kept(want, &frames_of(&f), intact, what);
    if !cut {
        // Every intact frame keeps its stream's name (found by name, not only by offset).
        let got = frames_of(&f);
        for (k, v) in want {
            if intact(v.2, v.3) {
                assert!(got.get(k).is_some_and(|g| g.2 == v.2), "{what}: frame {k:?} is not under its stream's name");
            }
        }
    }
    // Recovery keeps every intact frame, or refuses and changes nothing.
    let mut storage = MemStorage::new(damaged.clone());
    match recover_storage(&mut storage) {
        Ok(_) => {
            let after = RecFile::from_bytes(storage.data.clone()).unwrap_or_else(|e| panic!("{what}: open after recovery: {e}"));
            assert_kept(want, &frames_of(&after), intact, &format!("{what}, after recovery"));
            let again = recover_storage(&mut storage.clone()).unwrap_or_else(|e| panic!("{what}: second recovery: {e}"));
            assert_eq!(again.bytes_dropped, 0, "{what}: recovery is not idempotent");
            // Appending a session afterwards loses nothing either.
            let mut rec = Recorder::init_storage(Box::new(storage.clone()), RecorderOptions::new());
            if let Ok(r) = rec.as_mut() {
                let mut s = r.start_session("appended").unwrap();
                let a = s.add_stream("a", "raw").unwrap();
                s.write(a, Timestamp::from_nanos(1), b"x").unwrap();
                s.finish().unwrap();
            }
        }
        Err(_) => assert_eq!(storage.data, damaged, "{what}: a refused recovery changed the file"),
    }
    counts
}

fn sweep(last_finished: bool) {
    let original = three_sessions(last_finished);
    let want = frames_of(&RecFile::from_bytes(original.clone()).unwrap());
    assert_eq!(want.len(), 3 * (20 + 7 + 1), "every frame of the model");
    let recs = records(&original);
    let mut kinds = BTreeMap::new();
    let (mut damaged_records, mut should, mut kept) = (0, 0, 0);
    for &(at, end, kind) in &recs {
        *kinds.entry(kind).or_insert(0) += 1;
        // A byte of the length field, the kind, the first body byte, the middle and the last.
        let len = end - at;
        let mut spots = vec![4, 8, 9, len / 2, len - 1];
        spots.dedup();
        for spot in spots {
            let mut d = original.clone();
            d[(at + spot) as usize] ^= 0x5a;
            let what = format!("record kind {kind} at {at}, byte {spot} flipped");
            let (s, k) = check_damaged(&original, d, &want, |a, b| b <= at || a >= end, &what);
            damaged_records += 1;
            should += s;
            kept += k;
        }
    }
    for k in [1u8, 2, 3, 4, 5, 6, 7, 8, 9] {
        assert!(kinds.contains_key(&k), "the sweep covers record kind {k}");
    }
    eprintln!(
        "flips ({}): {damaged_records} damaged records, {kept} of {should} intact frames read back",
        if last_finished { "finished" } else { "interrupted" }
    );
    // Cuts at every record boundary and inside every record.
    for &(at, end, _) in &recs {
        for cut in [at, at + 5, (at + end) / 2, end - 1] {
            let d = original[..cut as usize].to_vec();
            check_damaged(&original, d, &want, |_, b| b <= cut, &format!("cut at {cut}"));
        }
    }
}

#[test]
fn one_flipped_byte_in_every_record_of_finished_sessions() {
    sweep(true);
}

#[test]
fn one_flipped_byte_in_every_record_with_an_interrupted_last_session() {
    sweep(false);
}

/// Two consecutive frame records of another file (another session salt).
fn foreign_records() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.rec");
    let mut rec = RecorderOptions::new().create(&path).unwrap();
    let mut s = rec.start_session("other").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    s.write(a, Timestamp::from_nanos(5), b"one").unwrap();
    s.write(a, Timestamp::from_nanos(6), b"two!").unwrap();
    s.finish().unwrap();
    drop(rec);
    let file = std::fs::read(&path).unwrap();
    let frames: Vec<_> = records(&file).into_iter().filter(|r| r.2 == 3).collect();
    assert_eq!(frames.len(), 2);
    file[frames[0].0 as usize..frames[1].1 as usize].to_vec()
}

/// Bytes inside a damaged checkpoint that look like records of some other session (a repeated
/// empty record, or real records of another file) neither end the scan of the interrupted
/// session nor hide its later frames. The fuzzer found the first: a flipped bit made two
/// identical 9-byte "records" of zeros, which agree on any salt.
#[test]
fn record_lookalikes_inside_a_damaged_checkpoint_do_not_end_the_tail_scan() {
    let original = three_sessions(false);
    let want = frames_of(&RecFile::from_bytes(original.clone()).unwrap());
    let last_start = records(&original).into_iter().filter(|r| r.2 == 1).map(|r| r.0).max().unwrap();
    let empty_checkpoint = [0u8, 0, 0, 0, 0, 0, 0, 0, 4];
    let plants = [empty_checkpoint.repeat(2), foreign_records()];
    let mut planted = 0;
    for &(at, end, kind) in records(&original).iter().filter(|r| r.2 == 4 && r.0 > last_start) {
        for (pi, plant) in plants.iter().enumerate() {
            let body = at + 9;
            if end - body < plant.len() as u64 + 2 {
                continue;
            }
            let mut d = original.clone();
            let p = (body + 1) as usize;
            d[p..p + plant.len()].copy_from_slice(plant);
            let what = format!("record kind {kind} at {at}, look-alike {pi} planted at {p}");
            let (should, kept) = check_damaged(&original, d, &want, |a, b| b <= at || a >= end, &what);
            assert_eq!(should, kept);
            planted += 1;
        }
    }
    assert!(planted >= 4, "the test plants into several checkpoints ({planted})");
}

/// Every answer a replay gives about its frames, from the file alone: the ground truth for
/// comparing a damaged index against the intact file.
fn answers(f: &RecFile, probes: &[i64]) -> Vec<String> {
    answers_of(f, probes, false)
}

/// Every answer a reader gives on `f`: first/last, walks, positions, timestamps and lookups at
/// `probes`, per stream and merged. `long` (for long sessions) loads a sample of the positions
/// of single streams only (a merged `load(i)` walks i frames).
fn answers_of(f: &RecFile, probes: &[i64], long: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (si, s) in f.sessions().iter().enumerate() {
        for names in [vec!["odom"], vec!["lidar"], vec![]] {
            let r = s.replay(&names).unwrap();
            let id = |fr: Option<recfile::Frame>| fr.map(|fr| (fr.offset(), fr.timestamp().as_nanos()));
            out.push(format!("{si} {names:?} len {} first {:?} last {:?}", r.len(), r.first_timestamp(), r.last_timestamp()));
            // Walks give each frame's offset and timestamp: an entry's damaged timestamp must not
            // come back as the frame's.
            let all: Vec<_> = r.iterate().map(|x| x.map(|fr| (fr.offset(), fr.timestamp().as_nanos())).ok()).collect();
            out.push(format!("{si} {names:?} all {all:?}"));
            let scan: Vec<_> = r.scan().map(|x| x.map(|fr| (fr.offset(), fr.timestamp().as_nanos())).ok()).collect();
            out.push(format!("{si} {names:?} scan {scan:?}"));
            let positions: Vec<u64> = match long {
                false => (0..r.len()).collect(),
                true if names.len() == 1 => (0..r.len()).step_by(7).chain([r.len() - 1]).collect(),
                true => Vec::new(),
            };
            out.push(format!(
                "{si} {names:?} at {:?}",
                positions.iter().map(|&i| r.load(i).ok().map(|fr| fr.offset())).collect::<Vec<_>>()
            ));
            out.push(format!("{si} {names:?} ts {:?}", r.timestamps()));
            for &t in probes {
                let t0 = Timestamp::from_nanos(t);
                out.push(format!(
                    "{si} {names:?} t={t}: {:?} {:?} {:?} {} {:?}",
                    id(r.find_closest(t0, None)),
                    id(r.find_before(t0)),
                    id(r.find_after(t0)),
                    r.position_of(t0),
                    r.iterate_range(t0, Some(Timestamp::from_nanos(t.saturating_add(3_000_000))))
                        .map(|x| x.map(|fr| fr.offset()).ok())
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    out
}

/// A flipped byte in an index entry (its timestamp or its frame's offset), in every block of
/// every checkpoint that a finished session's index references in place (blocks of 100 odom
/// and 34 lidar entries), and of an interrupted one's: every lookup, walk and count gives what
/// it gives on the intact file. Entries are hints checked against the frames they name; a wrong
/// one sends the stream to its scanned frames.
#[test]
fn a_damaged_index_entry_changes_no_answer() {
    for last_finished in [true, false] {
        damaged_entries(sessions_of(last_finished, 2, 300, 134));
    }
}

fn damaged_entries(original: Vec<u8>) {
    let f = RecFile::from_bytes(original.clone()).unwrap();
    let mut probes: Vec<i64> = frames_of(&f).values().flat_map(|v| [v.0 - 1, v.0, v.0 + 1, v.0 + 400_000]).collect();
    probes.extend([0, i64::MAX, i64::MIN]);
    probes.sort_unstable();
    probes.dedup();
    let want = answers(&f, &probes);
    let mut flips = 0;
    for &(at, end, _) in records(&original).iter().filter(|r| r.2 == 4) {
        let cp = recfile::format::record::CheckpointBody::decode(&original[at as usize + 9..end as usize], at).unwrap();
        for b in &cp.blocks {
            let n = u64::from(b.count);
            for (entry, byte) in [(0, 0), (n / 2, 7), (n - 1, 1), (n - 1, 8), (0, 13)] {
                let mut d = original.clone();
                d[(b.entries_offset + 16 * entry + byte) as usize] ^= 0x21;
                let got = answers(&RecFile::from_bytes(d).unwrap(), &probes);
                for (w, g) in want.iter().zip(&got) {
                    assert_eq!(w, g, "checkpoint at {at}, stream {} entry {entry} byte {byte} flipped", b.stream);
                }
                flips += 1;
            }
        }
    }
    assert!(flips >= 20, "{flips} flips");
}

/// Read in order, a session with interval CRCs is checked one interval at a time (spec §7):
/// one flipped byte in any frame (header or payload) costs that frame alone, in a walk of one
/// stream, of the streams together, and of a stream that holds a small share of the bytes;
/// every other frame comes back exactly, and no frame comes back altered.
#[test]
fn a_flipped_byte_read_in_order_costs_its_frame_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(25).create(&path).unwrap();
    let mut s = rec.start_session("walk").unwrap();
    let imu = s.add_stream("imu", "raw").unwrap();
    let cam = s.add_stream("camera", "raw").unwrap();
    for i in 0..120i64 {
        s.write(imu, Timestamp::from_nanos(1_000 + i * 10), &[i as u8; 12]).unwrap();
        if i % 4 == 0 {
            s.write(cam, Timestamp::from_nanos(1_005 + i * 10), &vec![!(i as u8); 300]).unwrap();
        }
    }
    s.finish().unwrap();
    drop(rec);
    let original = std::fs::read(&path).unwrap();
    let walks: [&[&str]; 3] = [&["camera"], &[], &["imu"]];
    let read = |bytes: &[u8], streams: &[&str]| {
        let f = RecFile::from_bytes(bytes.to_vec()).unwrap();
        let r = f.last_session().unwrap().replay(streams).unwrap();
        let scanned: Vec<Result<(u64, Vec<u8>), u64>> =
            r.scan().map(|x| x.map(|f| (f.offset(), f.data().to_vec())).map_err(|e| error_offset(&e.to_string()))).collect();
        let iterated: Vec<Result<(u64, Vec<u8>), u64>> =
            r.iterate().map(|x| x.map(|f| (f.offset(), f.data().to_vec())).map_err(|e| error_offset(&e.to_string()))).collect();
        assert_eq!(scanned, iterated, "scan and iterate agree");
        scanned
    };
    let frames: Vec<(u64, u64, u8)> = records(&original).into_iter().filter(|r| r.2 == 3).collect();
    assert_eq!(frames.len(), 150);
    for streams in walks {
        let want: Vec<(u64, Vec<u8>)> = read(&original, streams).into_iter().map(|x| x.unwrap()).collect();
        let mut damaged_seen = 0;
        for &(at, end, _) in &frames {
            // A byte of the timestamp and one of the payload.
            for spot in [at + 10, (at + 23 + end) / 2] {
                let mut d = original.clone();
                d[spot as usize] ^= 0x10;
                let got = read(&d, streams);
                let what = format!("{streams:?}, byte {spot} of the frame at {at} flipped");
                assert_eq!(got.len(), want.len(), "{what}: one item per frame");
                for (g, w) in got.iter().zip(&want) {
                    match g {
                        Ok(g) => assert_eq!(g, w, "{what}: a frame came back different"),
                        Err(off) => {
                            assert_eq!(*off, at, "{what}: the error names another frame");
                            assert_eq!(w.0, at, "{what}: an intact frame failed");
                            damaged_seen += 1;
                        }
                    }
                }
            }
        }
        assert!(damaged_seen > 0, "{streams:?}: the walk saw the damage");
    }
}

/// The same over a walk long enough to check its intervals ahead on a second thread (spec §7):
/// 4 MB of camera frames, of like lengths for the first half and varied after, each followed by
/// a small imu frame, a checkpoint every 40 frames. One flipped byte in a frame's length,
/// timestamp or payload costs that frame alone; one in a checkpoint costs no frame; in every
/// case each other frame comes back exactly, from a merged walk of both streams and one of the
/// camera alone, each over the whole session and from its middle.
#[test]
fn a_flipped_byte_in_a_long_walk_costs_its_frame_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(40).create(&path).unwrap();
    let mut s = rec.start_session("walk").unwrap();
    let cam = s.add_stream("camera", "raw").unwrap();
    let imu = s.add_stream("imu", "raw").unwrap();
    for i in 0..3_000i64 {
        let len = if i < 1_500 { 1_300 } else { 500 + (i as usize * 7919) % 1_600 };
        s.write(cam, Timestamp::from_nanos(1_000 + i * 10), &vec![(i % 251) as u8; len]).unwrap();
        s.write(imu, Timestamp::from_nanos(1_005 + i * 10), &[!(i as u8); 12]).unwrap();
    }
    s.finish().unwrap();
    drop(rec);
    let original = std::fs::read(&path).unwrap();
    let middle = Timestamp::from_nanos(1_000 + 1_200 * 10);
    let read = |bytes: &[u8], streams: &[&str]| {
        let f = RecFile::from_bytes(bytes.to_vec()).unwrap();
        let r = f.last_session().unwrap().replay(streams).unwrap();
        let item = |x: recfile::Result<(u64, Vec<u8>)>| x.map_err(|e| error_offset(&e.to_string()));
        let scanned: Vec<_> = r.scan().map(|x| item(x.map(|f| (f.offset(), f.data().to_vec())))).collect();
        let iterated: Vec<_> = r.iterate().map(|x| item(x.map(|f| (f.offset(), f.data().to_vec())))).collect();
        assert_eq!(scanned, iterated, "scan and iterate agree");
        let from_middle: Vec<_> = r.scan_range(middle, None).map(|x| item(x.map(|f| (f.offset(), f.data().to_vec())))).collect();
        (scanned, from_middle)
    };
    let all = records(&original);
    let frames: Vec<(u64, u64, u8)> = all.iter().copied().filter(|r| r.2 == 3).collect();
    let checkpoints: Vec<(u64, u64, u8)> = all.iter().copied().filter(|r| r.2 == 4).collect();
    assert_eq!(frames.len(), 6_000);
    assert!(original.len() > 3 << 20 && checkpoints.len() >= 150);
    let walks: [&[&str]; 2] = [&[], &["camera"]];
    let wants: Vec<_> = walks
        .iter()
        .map(|streams| {
            let (whole, middle) = read(&original, streams);
            let ok = |v: Vec<Result<(u64, Vec<u8>), u64>>| -> Vec<(u64, Vec<u8>)> { v.into_iter().map(|x| x.unwrap()).collect() };
            (ok(whole), ok(middle))
        })
        .collect();
    let mut spots: Vec<(u64, Option<u64>)> = Vec::new();
    for &(at, end, _) in frames.iter().step_by(53) {
        // A byte of the length, one of the timestamp and one of the payload.
        spots.extend([at + 5, at + 10, (at + 23 + end) / 2].map(|spot| (spot, Some(at))));
    }
    for &(at, end, _) in checkpoints.iter().step_by(13) {
        spots.extend([at + 40, (at + end) / 2].map(|spot| (spot, None)));
    }
    for (spot, frame) in spots {
        let mut d = original.clone();
        d[spot as usize] ^= 0x10;
        for (streams, (want, want_middle)) in walks.iter().zip(&wants) {
            let (got, got_middle) = read(&d, streams);
            for (got, want, walk) in [(got, want, "whole"), (got_middle, want_middle, "from the middle")] {
                let what = format!("{streams:?} {walk} walk, byte {spot} flipped (frame {frame:?})");
                assert_eq!(got.len(), want.len(), "{what}: one item per frame");
                for (g, w) in got.iter().zip(want) {
                    match g {
                        Ok(g) => assert_eq!(g, w, "{what}: a frame came back different"),
                        Err(off) => assert_eq!(Some(*off), frame.filter(|&f| f == w.0), "{what}: an intact frame failed"),
                    }
                }
            }
        }
    }
}

/// The offset an error message names ("… at offset N …").
fn error_offset(msg: &str) -> u64 {
    let i = msg.find("offset ").unwrap_or_else(|| panic!("no offset in {msg:?}")) + 7;
    msg[i..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

/// A flipped byte in a finished session's run directory (a run's first timestamp, count or
/// entries offset, at the start, middle and end of every chunk), in its Index sample (the
/// binding to the Index, the stream table, each chunk's fields) or in the Index's stream table:
/// every lookup, walk and count gives what it gives on the intact file. The sample is checked
/// by its CRC at open, a directory chunk by the sample's CRC on first use (spec §5.9, §7).
#[test]
fn a_damaged_run_directory_or_index_sample_changes_no_answer() {
    let original = sessions_of(true, 1, 9_000, 90);
    let f = RecFile::from_bytes(original.clone()).unwrap();
    let all: Vec<i64> = frames_of(&f).values().map(|v| v.0).collect();
    let mut probes: Vec<i64> = all.iter().step_by(97).flat_map(|&t| [t - 1, t, t + 1]).collect();
    probes.extend([0, i64::MAX, i64::MIN, all[all.len() - 1] + 1]);
    probes.sort_unstable();
    probes.dedup();
    let want = answers_of(&f, &probes, true);
    let recs = records(&original);
    let (index_at, _, _) = *recs.iter().find(|r| r.2 == 5).unwrap();
    let (sample_at, sample_end, _) = *recs.iter().find(|r| r.2 == 9).unwrap();
    let idx = &original[index_at as usize + 9..];
    let streams = recfile::format::record::decode_index_streams(idx, index_at).unwrap();
    let body = &original[sample_at as usize + 9..sample_end as usize];
    let sample = recfile::format::record::IndexSample::decode(body, sample_at).unwrap();
    assert!(sample.chunks[0].len() >= 3, "the odom directory spans several chunks: {:?}", sample.chunks[0].len());
    let k = u64::from(sample.chunk_runs);
    let mut spots = Vec::new();
    for s in &streams {
        // Runs at the start, middle and end of every chunk: each field.
        for c in 0..s.run_count.div_ceil(k) {
            for run in [c * k, c * k + k / 2, ((c + 1) * k).min(s.run_count) - 1] {
                if run < s.run_count {
                    for field in [0, 8, 16] {
                        spots.push((s.runs_offset + run * 24 + field + 1, format!("stream {} run {run} field {field}", s.stream)));
                    }
                }
            }
        }
    }
    for i in 0..streams.len() as u64 {
        for field in [16, 32, 48, 56] {
            spots.push((index_at + 9 + 8 + i * 64 + field, format!("index stream table {i} field {field}")));
            spots.push((sample_at + 9 + 24 + i * 64 + field, format!("sample stream table {i} field {field}")));
        }
    }
    for field in [0, 8, 16, 20] {
        spots.push((sample_at + 9 + field, format!("sample field {field}")));
    }
    let chunks_at = sample_at + 9 + 24 + 64 * streams.len() as u64;
    let n_chunks: u64 = sample.chunks.iter().map(|c| c.len() as u64).sum();
    for c in 0..n_chunks {
        for field in [0, 8, 16] {
            spots.push((chunks_at + c * 24 + field, format!("sample chunk {c} field {field}")));
        }
    }
    for (spot, what) in &spots {
        let mut d = original.clone();
        d[*spot as usize] ^= 0x44;
        let damaged = RecFile::from_bytes(d).unwrap();
        let got = answers_of(&damaged, &probes, true);
        assert_eq!(want.len(), got.len(), "{what}");
        for (w, g) in want.iter().zip(&got) {
            if w != g {
                let at = w.bytes().zip(g.bytes()).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
                let near = |x: &str| x.get(at.saturating_sub(60)..(at + 60).min(x.len())).unwrap_or("").to_string();
                panic!("{what} flipped: {:?}… differs at byte {at}: want …{}… got …{}…", &w[..w.len().min(30)], near(w), near(g));
            }
        }
        assert!(!damaged.verify().ok(), "{what}: verify does not see the damage");
    }
    assert!(spots.len() >= 60, "{} spots", spots.len());
}
