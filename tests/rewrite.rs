//! `rec filter`, `rec merge`, `rec split`: the frames they write are exactly the frames selected
//! (payload, timestamp, stream, encoding, schema, publish time), checked against the library's
//! replay of the input (the model), on generated files and on the rosbag2 recordings.
#![cfg(all(feature = "mcap", feature = "cli"))]

use recfile::{Action, RecFile, RecorderOptions, Timestamp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const T0: i64 = 1_704_067_200_000_000_000;

fn rec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rec")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// (stream, ts, data, encoding, schema name, publish time) of every frame of every session.
type Row = (String, i64, Vec<u8>, String, String, Option<u64>);

fn rows_of(path: &Path) -> Vec<Row> {
    let f = RecFile::open(path).unwrap();
    let mut out = Vec::new();
    for s in f.sessions() {
        let info = recfile::interop::message_info::read(&s).unwrap();
        for st in s.streams() {
            for fr in s.stream(&st.name).unwrap().iterate() {
                let fr = fr.unwrap();
                let publish = info.as_ref().and_then(|m| m.get(&(fr.stream_id(), fr.seq()))).map(|i| i.publish_time);
                out.push((
                    st.name.clone(),
                    fr.timestamp().as_nanos(),
                    fr.data().to_vec(),
                    st.encoding.clone(),
                    st.schema_name.clone(),
                    publish,
                ));
            }
        }
    }
    out.sort();
    out
}

fn sample(path: &Path) {
    let mut r = RecorderOptions::new().checkpoint_every_frames(64).create(path).unwrap();
    for k in 0..2i64 {
        let mut s = r.start_session(&format!("s{k}")).unwrap();
        s.set_metadata("robot", "r1").unwrap();
        let a = s.add_stream_with_schema("imu", "cdr", "sensor_msgs/Imu", b"float64 x").unwrap();
        let b = s.add_stream("odom", "json").unwrap();
        let c = s.add_stream("/tf", "raw").unwrap();
        for i in 0..400i64 {
            let t = Timestamp::from_nanos(T0 + k * 100_000_000_000 + i * 5_000_000);
            s.write(a, t, &i.to_le_bytes()).unwrap();
            if i % 2 == 0 {
                s.write(b, t, format!("{{\"i\":{i}}}").as_bytes()).unwrap();
            }
            if i % 10 == 0 {
                s.write(c, t, &[k as u8; 20]).unwrap();
                s.record_action(Action::new("step", vec![i as u8], Ok(vec![1]))).unwrap();
            }
        }
        s.finish().unwrap();
    }
}

#[test]
fn filter_keeps_exactly_the_selected_frames_and_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.rec");
    sample(&src);
    let all = rows_of(&src);
    let (from, until) = (T0 + 500_000_000, T0 + 100_000_000_000 + 1_000_000_000);
    type Case<'a> = (Vec<&'a str>, Box<dyn Fn(&Row) -> bool>);
    let cases: Vec<Case> = vec![
        (vec!["--stream", "imu"], Box::new(|r: &Row| r.0 == "imu")),
        (vec!["--exclude", "imu", "--exclude", "actions"], Box::new(|r: &Row| r.0 != "imu" && r.0 != "actions")),
        (vec!["--stream-regex", "^(/tf|odom)$"], Box::new(|r: &Row| r.0 == "/tf" || r.0 == "odom")),
        (vec!["--stream", "imu", "--stream-regex", "^/"], Box::new(|r: &Row| r.0 == "imu" || r.0 == "/tf")),
        (vec![], Box::new(|_| true)),
    ];
    for (i, (args, keep)) in cases.iter().enumerate() {
        let from_s = Timestamp::from_nanos(from).to_string();
        let until_s = Timestamp::from_nanos(until).to_string();
        for window in [false, true] {
            let out = dir.path().join(format!("out-{i}-{window}.rec"));
            let mut a = vec!["filter", p(&src), p(&out)];
            a.extend(args.iter().copied());
            if window {
                a.extend(["--from", &from_s, "--until", &until_s]);
            }
            ok(&rec(&a));
            let want: Vec<Row> = all.iter().filter(|r| keep(r) && (!window || (r.1 >= from && r.1 <= until))).cloned().collect();
            assert_eq!(rows_of(&out), want, "case {i} {args:?} window {window}");
            let (fi, fo) = (RecFile::open(&src).unwrap(), RecFile::open(&out).unwrap());
            for (a, b) in fi.sessions().iter().zip(fo.sessions()) {
                assert_eq!(
                    (a.id(), a.name(), a.start_time(), a.end_time(), a.metadata()),
                    (b.id(), b.name(), b.start_time(), b.end_time(), b.metadata())
                );
            }
        }
    }
    // Actions stay actions.
    let out = dir.path().join("actions.rec");
    ok(&rec(&["filter", p(&src), p(&out), "--stream", "actions", "--session", "1"]));
    let f = RecFile::open(&out).unwrap();
    assert_eq!(f.session_count(), 1);
    let want = RecFile::open(&src).unwrap().session(1).unwrap().actions().unwrap();
    assert_eq!(f.session(0).unwrap().actions().unwrap(), want);
    // Unknown streams and bad patterns are refused; the output is not made.
    let bad = dir.path().join("bad.rec");
    assert_eq!(rec(&["filter", p(&src), p(&bad), "--stream", "nope"]).status.code(), Some(1));
    assert_eq!(rec(&["filter", p(&src), p(&bad), "--stream-regex", "("]).status.code(), Some(2));
    assert!(!bad.exists());
}

#[test]
fn split_then_merge_gives_back_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.rec");
    sample(&src);
    let all = rows_of(&src);
    for (how, arg) in [("--every", "0.25s"), ("--every", "1"), ("--max-bytes", "4KiB"), ("--max-bytes", "20000")] {
        let pieces_dir = dir.path().join(format!("p{how}{arg}"));
        std::fs::create_dir_all(&pieces_dir).unwrap();
        let pattern = pieces_dir.join("piece-%03d.rec");
        let o = rec(&["split", p(&src), how, arg, p(&pattern), "--json"]);
        ok(&o);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let files: Vec<PathBuf> = report["files"].as_array().unwrap().iter().map(|f| PathBuf::from(f.as_str().unwrap())).collect();
        assert!(files.len() > 2, "{how} {arg}: {} pieces", files.len());
        assert_eq!(files[0], pieces_dir.join("piece-000.rec"));
        let mut got: Vec<Row> = files.iter().flat_map(|f| rows_of(f)).collect();
        got.sort();
        assert_eq!(got, all, "{how} {arg}: every frame in exactly one piece");
        for f in &files {
            let file = RecFile::open(f).unwrap();
            let s = file.session(0).unwrap();
            let r = s.replay(&[]).unwrap();
            let (first, last) = (r.first_timestamp().unwrap().as_nanos(), r.last_timestamp().unwrap().as_nanos());
            if how == "--every" {
                let d = if arg == "1" { 1_000_000_000 } else { 250_000_000 };
                assert!(last - first < d, "a piece spans less than --every");
            } else {
                let max = if arg == "4KiB" { 4096 } else { 20_000 };
                let payload: u64 = s.streams().iter().map(|st| st.payload_bytes + st.frames * 40).sum();
                assert!(payload <= max, "{payload} > {max}");
            }
            assert!(s.name() == "s0" || s.name() == "s1");
            assert_eq!(s.metadata_value("robot"), Some("r1"));
        }
        // The pieces of one session merged onto one clock: the session again.
        let merged = dir.path().join(format!("merged{how}{arg}.rec"));
        let mut a = vec!["merge"];
        a.extend(files.iter().map(|f| p(f)));
        a.push(p(&merged));
        ok(&rec(&a));
        assert_eq!(rows_of(&merged), all);
        let m = RecFile::open(&merged).unwrap();
        assert_eq!(m.session_count(), files.len(), "one session per piece");
        let ids: std::collections::HashSet<_> = m.sessions().iter().map(|s| s.id()).collect();
        assert_eq!(ids.len(), files.len(), "session ids stay unique in one file");
    }
}

#[test]
fn merge_one_session_puts_streams_on_one_clock_and_refuses_clashes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("left.rec"), dir.path().join("right.rec"));
    for (path, enc) in [(&a, "raw"), (&b, "json")] {
        let mut r = RecorderOptions::new().create(path).unwrap();
        let mut s = r.start_session("cam").unwrap();
        let id = s.add_stream("image", enc).unwrap();
        for i in 0..50i64 {
            s.write(id, Timestamp::from_nanos(T0 + i * 7 + i64::from(enc == "json")), format!("{enc}{i}").as_bytes()).unwrap();
        }
        s.finish().unwrap();
    }
    let out = dir.path().join("both.rec");
    let o = rec(&["merge", p(&a), p(&b), p(&out), "--one-session", "stereo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--prefix"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists(), "nothing written on a clash");
    ok(&rec(&["merge", p(&a), p(&b), p(&out), "--one-session", "stereo", "--prefix"]));
    let f = RecFile::open(&out).unwrap();
    assert_eq!(f.session_count(), 1);
    let s = f.session(0).unwrap();
    assert_eq!(s.name(), "stereo");
    assert_eq!(s.stream_names(), ["left/image", "right/image"]);
    let merged: Vec<i64> = s.replay(&[]).unwrap().iterate().map(|f| f.unwrap().timestamp().as_nanos()).collect();
    assert_eq!(merged.len(), 100);
    assert!(merged.windows(2).all(|w| w[0] <= w[1]), "one clock");
}

#[test]
fn the_rosbag2_recordings_filter_split_and_merge_exactly() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/rosbag2-mcap");
    if !data.exists() {
        assert!(std::env::var_os("REQUIRE_SHARED_TESTDATA").is_none(), "{} is missing", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut converted = BTreeMap::new();
    for e in std::fs::read_dir(&data).unwrap() {
        let m = e.unwrap().path();
        let stem = m.file_stem().unwrap().to_str().unwrap().to_string();
        let r = dir.path().join(format!("{stem}.rec"));
        ok(&rec(&["convert", p(&m), p(&r)]));
        converted.insert(stem, r);
    }
    for (stem, r) in &converted {
        let all = rows_of(r);
        // Split into 3 pieces by size, merged back: the same messages, publish times included.
        let total: u64 = all.iter().map(|x| x.2.len() as u64 + 40).sum();
        let pattern = dir.path().join(format!("{stem}-{{}}.rec"));
        ok(&rec(&["split", p(r), "--max-bytes", &(total / 3 + 1).to_string(), p(&pattern)]));
        let pieces: Vec<PathBuf> = (0..).map(|i| dir.path().join(format!("{stem}-{i}.rec"))).take_while(|f| f.exists()).collect();
        assert!(!pieces.is_empty());
        let merged = dir.path().join(format!("{stem}-merged.rec"));
        let mut a = vec!["merge"];
        a.extend(pieces.iter().map(|f| p(f)));
        a.extend([p(&merged), "--one-session", "whole"]);
        ok(&rec(&a));
        assert_eq!(rows_of(&merged), all, "{stem}");
        // Filter to its first stream.
        let first = all.first().map(|x| x.0.clone()).unwrap_or_default();
        if !first.is_empty() {
            let out = dir.path().join(format!("{stem}-one.rec"));
            ok(&rec(&["filter", p(r), p(&out), "--stream", &first]));
            assert_eq!(rows_of(&out), all.iter().filter(|x| x.0 == first).cloned().collect::<Vec<_>>(), "{stem}");
        }
    }
    // The split bag rosbag2 wrote as two files, converted and merged into one session.
    let (w0, w1) = (&converted["wbag_0"], &converted["wbag_1"]);
    let out = dir.path().join("wbag.rec");
    ok(&rec(&["merge", p(w0), p(w1), p(&out), "--one-session", "wbag"]));
    let mut want = rows_of(w0);
    want.extend(rows_of(w1));
    want.sort();
    assert_eq!(rows_of(&out), want);
    assert!(want.iter().any(|r| r.5.is_some()), "publish times were carried over");
}
