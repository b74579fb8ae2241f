//! The damage rules of spec §7 and §8, against a model: a random multi-session file written
//! through the library, then one or two flipped bytes or a cut, then the reader and recovery.
//! For every frame whose own record is intact the reader returns its exact bytes in its
//! session (under its stream's name when only one byte was flipped: the description is
//! written twice); sessions keep their place; recovery keeps every such frame or refuses and
//! leaves the bytes as they were.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recfile::storage::{MemStorage, SimulatedDisk};
use recfile::{recover_storage, Durability, RecFile, Recorder, RecorderOptions, Timestamp};
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
struct Session {
    streams: u8,
    frames: u8,
    seed: u16,
    metadata: bool,
}

#[derive(Arbitrary, Debug)]
enum Damage {
    Flip { at: u32, xor: u8 },
    TwoFlips { a: u32, b: u32, xor: u8 },
    Cut { at: u32 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    sessions: Vec<Session>,
    last_finished: bool,
    checkpoint_every: u8,
    damage: Damage,
}

/// (session, stream, seq) → (ts, bytes, record offset, record end).
type Frames = BTreeMap<(usize, String, u64), (i64, Vec<u8>, u64, u64)>;

fn frames_of(f: &RecFile) -> Frames {
    let mut out = Frames::new();
    for (si, s) in f.sessions().iter().enumerate() {
        let Ok(r) = s.replay(&[]) else { continue };
        for fr in r.iterate().flatten() {
            let end = fr.offset() + 9 + 14 + fr.data().len() as u64;
            out.insert((si, fr.stream().to_string(), fr.seq()), (fr.timestamp().as_nanos(), fr.data().to_vec(), fr.offset(), end));
        }
    }
    out
}

/// Every frame of `want` in `intact` is in `got` with its bytes, in its session; by name when
/// `by_name`, else by offset.
fn check_kept(want: &Frames, got: &Frames, intact: &dyn Fn(u64, u64) -> bool, by_name: bool, what: &str) {
    let by_offset: BTreeMap<(usize, u64), &(i64, Vec<u8>, u64, u64)> = got.iter().map(|(k, v)| ((k.0, v.2), v)).collect();
    for (k, v) in want {
        if !intact(v.2, v.3) {
            continue;
        }
        let found = if by_name { got.get(k).filter(|g| g.2 == v.2) } else { by_offset.get(&(k.0, v.2)).copied() };
        let g = found.unwrap_or_else(|| panic!("{what}: intact frame {k:?} at {} is not returned", v.2));
        assert_eq!((g.0, &g.1), (v.0, &v.1), "{what}: frame {k:?} comes back different");
    }
}

fuzz_target!(|input: Input| {
    if input.sessions.is_empty() {
        return;
    }
    let disk = SimulatedDisk::new();
    let opts = RecorderOptions::new()
        .checkpoint_every_frames(u64::from(input.checkpoint_every % 16) + 1)
        .checkpoint_every(std::time::Duration::from_secs(3600))
        .background_writes(false)
        .durability(Durability::None);
    let mut rec = Recorder::init_storage(Box::new(disk.clone()), opts).unwrap();
    let n = input.sessions.len().min(3);
    for (si, spec) in input.sessions.iter().take(n).enumerate() {
        let mut s = rec.start_session(&format!("run-{si}")).unwrap();
        let streams: Vec<_> = (0..spec.streams % 3 + 1).map(|k| s.add_stream(&format!("s{k}"), "raw").unwrap()).collect();
        let mut x = u32::from(spec.seed) | 1;
        for i in 0..i64::from(spec.frames % 40) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = x as usize % streams.len();
            let data = vec![x as u8; (x >> 8) as usize % 60];
            s.write(streams[k], Timestamp::from_nanos(1_000_000 * (si as i64 + 1) + i * 10 - (x % 3) as i64), &data).unwrap();
            if spec.metadata && i == 5 {
                s.set_metadata("k", "v").unwrap();
            }
        }
        if si + 1 < n || input.last_finished {
            s.finish().unwrap();
        } else {
            s.checkpoint().unwrap();
            s.abandon();
        }
    }
    drop(rec);
    let original = disk.live_image();
    let f = RecFile::from_bytes(original.clone()).expect("the intact file opens");
    let want = frames_of(&f);
    let ids: Vec<_> = f.sessions().iter().map(|s| (s.id(), s.name().to_string())).collect();
    let len = original.len() as u64;
    if len <= 4096 {
        return;
    }
    // Damage only past the header page: the header's own redundancy is another test's job.
    let pick = |x: u32| 4096 + u64::from(x) % (len - 4096);
    let mut damaged = original.clone();
    let (intact, flips): (Box<dyn Fn(u64, u64) -> bool>, usize) = match input.damage {
        Damage::Flip { at, xor } => {
            let p = pick(at);
            damaged[p as usize] ^= xor.max(1);
            (Box::new(move |a, b| b <= p || a > p), 1)
        }
        Damage::TwoFlips { a, b, xor } => {
            let (p, q) = (pick(a), pick(b));
            damaged[p as usize] ^= xor.max(1);
            damaged[q as usize] ^= xor.max(1).rotate_left(3);
            (Box::new(move |s, e| (e <= p || s > p) && (e <= q || s > q)), 2)
        }
        Damage::Cut { at } => {
            let c = pick(at);
            damaged.truncate(c as usize);
            (Box::new(move |_, e| e <= c), 0)
        }
    };
    if damaged == original {
        return;
    }
    let what = format!("{:?}", input.damage);
    let g = RecFile::from_bytes(damaged.clone()).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let seen = frames_of(&g);
    if flips == 1 {
        // One damaged record: every session keeps its place, id and name, every intact frame
        // its bytes and its stream's name.
        assert_eq!(g.session_count(), ids.len(), "{what}: sessions {:?}", g.warnings());
        for (i, s) in g.sessions().iter().enumerate() {
            assert_eq!((s.id(), s.name().to_string()), ids[i], "{what}: session {i} lost its description");
        }
    }
    if flips < 2 {
        check_kept(&want, &seen, &*intact, flips == 1, &what);
    }
    // Two damaged records can leave a session with nothing that identifies it (a damaged
    // start and a damaged description); then what the reader does find must survive recovery.
    let want = if flips < 2 { want } else { seen };
    let intact: Box<dyn Fn(u64, u64) -> bool> = if flips < 2 { intact } else { Box::new(|_, _| true) };
    let mut storage = MemStorage::new(damaged.clone());
    match recover_storage(&mut storage) {
        Ok(_) => {
            let after = RecFile::from_bytes(storage.data.clone()).unwrap_or_else(|e| panic!("{what}: open after recovery: {e}"));
            check_kept(&want, &frames_of(&after), &*intact, false, &format!("{what}, after recovery"));
            let again = recover_storage(&mut storage).unwrap_or_else(|e| panic!("{what}: second recovery: {e}"));
            assert_eq!(again.bytes_dropped, 0, "{what}: recovery is not idempotent");
        }
        Err(_) => assert_eq!(storage.data, damaged, "{what}: a refused recovery changed the file"),
    }
});
