//! Structured operation sequences on a simulated disk, a power cut at an arbitrary point, then
//! recovery: the result is checked against a plain in-memory model of what was written.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use recfile::storage::{CrashMode, MemStorage, SimulatedDisk};
use recfile::{recover_storage, Durability, RecFile, Recorder, RecorderOptions, Timestamp};

#[derive(Arbitrary, Debug)]
enum Op {
    StartSession,
    AddStream,
    Write { stream: u8, ts: i64, len: u16, byte: u8 },
    Checkpoint,
    CheckpointWithState(Vec<u8>),
    Metadata(u8, u8),
    Finish,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    checkpoint_every: u8,
    crash_at: u16,
    crash_mode: u8,
    torn_n: u8,
    torn_bytes: u16,
    mask: u64,
}

/// The model: per session, per stream, the frames written (ts, payload).
type Model = Vec<Vec<Vec<(i64, Vec<u8>)>>>;

fuzz_target!(|input: Input| {
    let disk = SimulatedDisk::new();
    let opts = RecorderOptions::new()
        .checkpoint_every_frames(u64::from(input.checkpoint_every % 20) + 1)
        .checkpoint_every(std::time::Duration::ZERO)
        .buffer_bytes(4096)
        // No write-behind thread: one per input would cost more than the input itself.
        .background_writes(false)
        .durability(Durability::EveryCheckpoint);
    let mut rec = Recorder::init_storage(Box::new(disk.clone()), opts).unwrap();
    let mut model: Model = Vec::new();
    // (ops on disk, session, frames per stream) when a checkpoint made them durable.
    let mut marks: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    let mut writer = None;
    let mut streams = Vec::new();
    for op in input.ops.iter().take(300) {
        match op {
            Op::StartSession => {
                if writer.is_none() {
                    writer = Some(rec.start_session("fuzz").unwrap());
                    model.push(Vec::new());
                    streams.clear();
                }
            }
            Op::AddStream => {
                if let Some(w) = writer.as_mut() {
                    if streams.len() < 5 {
                        streams.push(w.add_stream(&format!("s{}", streams.len()), "raw").unwrap());
                        model.last_mut().unwrap().push(Vec::new());
                    }
                }
            }
            Op::Write { stream, ts, len, byte } => {
                if let Some(w) = writer.as_mut() {
                    if !streams.is_empty() {
                        let k = *stream as usize % streams.len();
                        let data = vec![*byte; *len as usize % 5000];
                        let before = w.checkpoints();
                        w.write(streams[k], Timestamp::from_nanos(*ts), &data).unwrap();
                        model.last_mut().unwrap()[k].push((*ts, data));
                        if w.checkpoints() != before {
                            marks.push((disk.ops(), model.len() - 1, model.last().unwrap().iter().map(Vec::len).collect()));
                        }
                    }
                }
            }
            Op::Checkpoint | Op::CheckpointWithState(_) => {
                if let Some(w) = writer.as_mut() {
                    match op {
                        Op::CheckpointWithState(s) => w.checkpoint_with_state(s).unwrap(),
                        _ => w.checkpoint().unwrap(),
                    }
                    marks.push((disk.ops(), model.len() - 1, model.last().unwrap().iter().map(Vec::len).collect()));
                }
            }
            Op::Metadata(k, v) => {
                if let Some(w) = writer.as_mut() {
                    w.set_metadata(&k.to_string(), &v.to_string()).unwrap();
                }
            }
            Op::Finish => {
                if let Some(w) = writer.take() {
                    w.finish().unwrap();
                    marks.push((disk.ops(), model.len() - 1, model.last().unwrap().iter().map(Vec::len).collect()));
                }
            }
        }
    }
    if let Some(w) = writer.take() {
        w.abandon();
    }
    let at = input.crash_at as usize % (disk.ops() + 1);
    let mode = match input.crash_mode % 3 {
        0 => CrashMode::DropUnsynced,
        1 => CrashMode::Torn { n: input.torn_n as usize, bytes: input.torn_bytes as usize },
        _ => CrashMode::Subset { mask: input.mask },
    };
    let image = disk.crash_image(at, mode);
    if image.len() < 4096 {
        return;
    }
    let mut storage = MemStorage::new(image);
    recover_storage(&mut storage).expect("recovery of a crash image");
    let f = RecFile::from_bytes(storage.data).expect("open after recovery");
    // Recovery keeps every record that validates, also after a hole that a power cut left
    // (writes reach the disk in any order): verify may report the hole and a checkpoint after
    // it that recovery could not use, and nothing else (as tests/crash.rs checks).
    let v = f.verify();
    for p in &v.problems {
        let hole = p.message.contains("kind 0")
            || p.message.contains("CRC mismatch")
            || p.message.contains("truncated")
            || p.message.contains("does not follow checkpoint");
        assert!(hole && !p.message.contains("index entry"), "verify after recovery: {:?}", v.problems);
    }
    for (si, s) in f.sessions().iter().enumerate() {
        let want = &model[si];
        for (k, name) in s.stream_names().iter().enumerate() {
            // Every frame kept is the one written with its seq (a power cut that reordered
            // writes may leave a hole: later frames are kept, not invented).
            for fr in s.stream(name).unwrap().iterate().map(|r| r.unwrap()) {
                let i = fr.seq() as usize;
                assert!(i < want[k].len(), "a frame that was never written");
                assert_eq!((fr.timestamp().as_nanos(), fr.data()), (want[k][i].0, &want[k][i].1[..]));
            }
        }
    }
    if let Some((_, si, counts)) = marks.iter().rev().find(|m| m.0 <= at) {
        let s = f.session(*si).expect("a durable session is missing");
        for (k, n) in counts.iter().enumerate() {
            // What a synced checkpoint covered is all there: seqs 0..n.
            let seqs: std::collections::BTreeSet<u64> =
                s.stream(&format!("s{k}")).map(|r| r.iterate().filter_map(|f| f.ok()).map(|f| f.seq()).collect()).unwrap_or_default();
            assert!((0..*n as u64).all(|q| seqs.contains(&q)), "durable frames lost");
        }
    }
});
