//! Golden files: `.rec` files written by earlier versions must keep reading exactly as their
//! JSON dumps say. Regenerate (only when the format version changes, keeping the old files) with
//! `cargo test --test golden -- --ignored regenerate`.

use recfile::{RecFile, RecorderOptions, Timestamp};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Everything a reader sees of a file, as JSON.
fn dump(f: &RecFile) -> Value {
    let sessions: Vec<Value> = f
        .sessions()
        .iter()
        .map(|s| {
            let frames: Vec<Value> = s
                .replay(&[])
                .unwrap()
                .iterate()
                .map(|fr| {
                    let fr = fr.unwrap();
                    json!([fr.stream(), fr.seq(), fr.timestamp().as_nanos(), hex(fr.data())])
                })
                .collect();
            json!({
                "id": s.id().to_string(),
                "name": s.name(),
                "state": s.state().as_str(),
                "recovered": s.was_recovered(),
                "start_ns": s.start_time().as_nanos(),
                "end_ns": s.end_time().map(|t| t.as_nanos()),
                "frames": s.frame_count(),
                "checkpoints": s.checkpoint_count(),
                "metadata": s.metadata(),
                "streams": s.streams().iter().map(|st| json!([st.name, st.encoding, st.schema_name, hex(&st.schema), st.frames, st.payload_bytes, st.first.map(|t| t.as_nanos()), st.last.map(|t| t.as_nanos())])).collect::<Vec<_>>(),
                "all_frames": frames,
            })
        })
        .collect();
    json!({"format_version": [f.format_version().0, f.format_version().1], "file_id": f.file_id().to_string(), "sessions": sessions})
}

fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanos(1_704_067_200_000_000_000 + n)
}

fn write_v1(dir: &Path) {
    let path = dir.join("v1_sessions.rec");
    let _ = std::fs::remove_file(&path);
    let mut rec = RecorderOptions::new().checkpoint_every_frames(8).create(&path).unwrap();
    let mut s = rec.start_session_with_metadata("monotonic", &[("robot", "go2")]).unwrap();
    let lidar = s.add_stream_with_schema("lidar", "cdr", "sensor_msgs/PointCloud2", b"schema-bytes").unwrap();
    let odom = s.add_stream("odom", "json").unwrap();
    for i in 0..40i64 {
        s.write(lidar, ts(i * 100_000_000), &[i as u8; 12]).unwrap();
        if i % 2 == 0 {
            s.write(odom, ts(i * 100_000_000 + 5), format!("{{\"x\":{i}}}").as_bytes()).unwrap();
        }
        if i == 20 {
            s.checkpoint_with_state(b"state-at-20").unwrap();
        }
    }
    s.set_metadata("weather", "rain").unwrap();
    s.finish().unwrap();
    let mut s = rec.start_session("out-of-order").unwrap();
    let a = s.add_stream("a", "bincode").unwrap();
    for (i, t) in [5i64, 1, 9, 3, 3, 7, 0, 8, 2, 6, 4].iter().enumerate() {
        s.write_value(a, ts(*t), &(i as u32, *t)).unwrap();
    }
    s.finish().unwrap();
    let mut s = rec.start_session("interrupted-then-recovered").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for i in 0..13i64 {
        s.write(a, ts(i), b"abc").unwrap();
    }
    s.checkpoint().unwrap();
    s.abandon();
    drop(rec);
    recfile::recover(&path).unwrap();

    let path = dir.join("v1_interrupted.rec");
    let _ = std::fs::remove_file(&path);
    let mut rec = RecorderOptions::new().checkpoint_every_frames(5).create(&path).unwrap();
    let mut s = rec.start_session("cut").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    for i in 0..12i64 {
        s.write(a, ts(i), &[i as u8]).unwrap();
    }
    s.abandon();
}

#[test]
#[ignore = "rewrites the golden files"]
fn regenerate() {
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    write_v1(&dir);
    for name in ["v1_sessions", "v1_interrupted"] {
        let f = RecFile::open(dir.join(format!("{name}.rec"))).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&dump(&f)).unwrap() + "\n").unwrap();
    }
}

#[test]
fn golden_files_still_read_the_same() {
    let dir = golden_dir();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rec") {
            let f = RecFile::open(&p).unwrap();
            let want: Value = serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap()).unwrap();
            assert_eq!(dump(&f), want, "{} reads differently", p.display());
            seen += 1;
        }
    }
    assert!(seen >= 2, "golden files missing from {}", dir.display());
}

#[test]
fn golden_interrupted_file_recovers_to_what_it_showed() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("c.rec");
    std::fs::copy(golden_dir().join("v1_interrupted.rec"), &copy).unwrap();
    let before = dump(&RecFile::open(&copy).unwrap());
    assert_eq!(before["sessions"][0]["state"], "interrupted");
    let report = recfile::recover(&copy).unwrap();
    assert!(report.was_interrupted);
    let f = RecFile::open(&copy).unwrap();
    assert!(f.verify().ok());
    let after = dump(&f);
    assert_eq!(after["sessions"][0]["all_frames"], before["sessions"][0]["all_frames"]);
    assert_eq!(after["sessions"][0]["state"], "finished");
}

#[test]
fn golden_sessions_pass_verify() {
    let f = RecFile::open(golden_dir().join("v1_sessions.rec")).unwrap();
    let r = f.verify();
    assert!(r.ok(), "{:?}", r.problems);
    let s = f.session(1).unwrap().stream("a").unwrap();
    assert_eq!(s.load(0).unwrap().decode::<(u32, i64)>().unwrap(), (6, 0));
}
