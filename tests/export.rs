//! `rec export`: every frame of every session in the Parquet dataset, exactly, read back with
//! the parquet crate's own reader and compared with the library's replay (the model); the
//! summary tables; incremental runs; damage; filters; JSON columns.
#![cfg(all(feature = "parquet", feature = "cli"))]

use arrow_array::{Array, Int64Array, LargeBinaryArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use recfile::{Action, RecFile, RecorderOptions, Timestamp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const T0: i64 = 1_704_067_200_000_000_000;

fn rec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rec")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}")).as_any().downcast_ref::<T>().unwrap()
}

/// Every frame file of a dataset, by path relative to it.
fn frame_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if dir.join("frames").exists() {
        walk(&dir.join("frames"), &mut out);
    }
    out.sort();
    out
}

/// One exported row: (recording, session, stream, seq, ts, data, encoding, publish_ts).
type Row = (String, String, String, u64, i64, Vec<u8>, String, Option<i64>);

fn dataset_rows(dir: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for f in frame_files(dir) {
        let mut last_ts = i64::MIN;
        for b in read_parquet(&f) {
            let ts = col::<TimestampNanosecondArray>(&b, "ts");
            let ts_ns = col::<Int64Array>(&b, "ts_ns");
            let publish = col::<TimestampNanosecondArray>(&b, "publish_ts");
            for i in 0..b.num_rows() {
                assert_eq!(ts.value(i), ts_ns.value(i));
                assert!(ts.value(i) >= last_ts, "{}: rows not sorted by ts", f.display());
                last_ts = ts.value(i);
                rows.push((
                    col::<StringArray>(&b, "recording").value(i).to_string(),
                    col::<StringArray>(&b, "session").value(i).to_string(),
                    col::<StringArray>(&b, "stream").value(i).to_string(),
                    col::<UInt64Array>(&b, "seq").value(i),
                    ts.value(i),
                    col::<LargeBinaryArray>(&b, "data").value(i).to_vec(),
                    col::<StringArray>(&b, "encoding").value(i).to_string(),
                    (!publish.is_null(i)).then(|| publish.value(i)),
                ));
            }
        }
        // The directory names the stream (escaped), as Hive partitions do.
        let dir_name = f.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
        let stream = rows.last().map(|r| r.2.clone()).unwrap_or_default();
        assert_eq!(dir_name, format!("stream={}", recfile::interop::parquet::escape_partition_value(&stream)));
    }
    rows.sort();
    rows
}

/// The model: every frame of every stream of every session, read through the library.
fn library_rows(files: &[&Path]) -> Vec<Row> {
    let mut rows = Vec::new();
    for path in files {
        let f = RecFile::open(path).unwrap();
        for s in f.sessions() {
            let info = recfile::interop::message_info::read(&s).unwrap();
            for st in s.streams() {
                for fr in s.stream(&st.name).unwrap().iterate().flatten() {
                    let publish = info
                        .as_ref()
                        .map(|m| m.get(&(fr.stream_id(), fr.seq())).map_or(fr.timestamp().as_nanos(), |i| i.publish_time as i64));
                    rows.push((
                        f.file_id().to_string(),
                        s.id().to_string(),
                        st.name.clone(),
                        fr.seq(),
                        fr.timestamp().as_nanos(),
                        fr.data().to_vec(),
                        st.encoding.clone(),
                        publish,
                    ));
                }
            }
        }
    }
    rows.sort();
    rows
}

/// Two sessions, three streams (one with a name Hive must escape, one JSON), actions.
fn sample(path: &Path, seed: u8) {
    let mut r = RecorderOptions::new().checkpoint_every_frames(50).create(path).unwrap();
    for k in 0..2u8 {
        let mut s = r.start_session(&format!("run-{seed}-{k}")).unwrap();
        s.set_metadata("robot", &format!("r{seed}")).unwrap();
        let odom = s.add_stream("odom", "json").unwrap();
        let cam = s.add_stream("/camera/image raw", "raw").unwrap();
        for i in 0..300i64 {
            let t = Timestamp::from_nanos(T0 + i * 10_000_000 + i64::from(k) * 10_000_000_000);
            let json = if i % 7 == 0 {
                format!("{{\"x\":{i},\"v\":{}.5,\"ok\":true,\"name\":\"n{i}\",\"pose\":[1,2]}}", i / 2)
            } else {
                format!("{{\"x\":{i},\"v\":{},\"ok\":false,\"ts\":\"shadow\"}}", i / 2)
            };
            s.write(odom, t, json.as_bytes()).unwrap();
            if i % 3 == 0 {
                s.write(cam, t, &[seed.wrapping_add(i as u8); 64]).unwrap();
            }
        }
        if k == 1 {
            for i in 0..5u8 {
                let out = if i == 3 { Err("boom".to_string()) } else { Ok(vec![i, i]) };
                s.record_action(Action::new("tool_call", format!("{{\"i\":{i}}}").into_bytes(), out)).unwrap();
            }
        }
        s.finish().unwrap();
    }
}

#[test]
fn every_frame_is_exported_exactly_and_the_tables_describe_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("in/a.rec"), dir.path().join("in/deeper/b.rec"));
    std::fs::create_dir_all(b.parent().unwrap()).unwrap();
    sample(&a, 1);
    sample(&b, 2);
    let out = dir.path().join("ds");
    let o = rec(&["export", p(&dir.path().join("in")), "--out", p(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(dataset_rows(&out), library_rows(&[&a, &b]));

    let recs = read_parquet(&out.join("recordings.parquet"));
    let n: usize = recs.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n, 4, "one row per session");
    let r = &recs[0];
    for c in ["recording", "path", "file_size", "session", "name", "state", "start_ts", "end_ts", "frame_count", "frames", "metadata"] {
        assert!(r.column_by_name(c).is_some(), "recordings.parquet lacks {c}");
    }
    let names: Vec<String> = recs.iter().flat_map(|b| col::<StringArray>(b, "name").iter().map(|v| v.unwrap().to_string())).collect();
    assert_eq!(names, ["run-1-0", "run-1-1", "run-2-0", "run-2-1"]);
    assert!(col::<StringArray>(r, "path").value(0).ends_with("a.rec"));
    let streams: usize = read_parquet(&out.join("streams.parquet")).iter().map(RecordBatch::num_rows).sum();
    assert_eq!(streams, 2 * (2 + 3), "odom and camera of each session, the actions stream of the second");
    let actions = read_parquet(&out.join("actions.parquet"));
    let acts: usize = actions.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(acts, 10);
    let errors = col::<StringArray>(&actions[0], "error");
    let outputs = col::<LargeBinaryArray>(&actions[0], "output");
    assert_eq!(errors.value(3), "boom");
    assert!(outputs.is_null(3) && !errors.is_null(3) && errors.is_null(2));
    assert_eq!(outputs.value(2), [2, 2]);
}

#[test]
fn runs_are_incremental_and_a_grown_recording_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.rec"), dir.path().join("b.rec"));
    sample(&a, 1);
    let out = dir.path().join("ds");
    assert_eq!(rec(&["export", p(&a), "--out", p(&out)]).status.code(), Some(0));
    let a_file = frame_files(&out)[0].clone();
    let first = std::fs::metadata(&a_file).unwrap().modified().unwrap();
    sample(&b, 2);
    let o = rec(&["export", p(&a), p(&b), "--out", p(&out), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["exported"].as_u64(), report["unchanged"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(std::fs::metadata(&a_file).unwrap().modified().unwrap(), first, "a was not rewritten");
    assert_eq!(dataset_rows(&out), library_rows(&[&a, &b]));
    // a grows by a session: its rows are replaced, not doubled.
    {
        let mut r = RecorderOptions::new().open_append(&a).unwrap();
        let mut s = r.start_session("third").unwrap();
        let id = s.add_stream("odom", "json").unwrap();
        s.write(id, Timestamp::from_nanos(T0), b"{\"x\":1}").unwrap();
        s.finish().unwrap();
    }
    assert_eq!(rec(&["export", p(&a), p(&b), "--out", p(&out)]).status.code(), Some(0));
    assert_eq!(dataset_rows(&out), library_rows(&[&a, &b]));
    let n: usize = read_parquet(&out.join("recordings.parquet")).iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n, 5);
    // Other options on the same dataset: refused, nothing changed.
    let o = rec(&["export", p(&a), "--out", p(&out), "--stream", "odom"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other options"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_damaged_frame_costs_that_frame_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rec");
    sample(&a, 3);
    let victim = {
        let f = RecFile::open(&a).unwrap();
        let s = f.session(0).unwrap();
        let fr = s.stream("/camera/image raw").unwrap().load(17).unwrap();
        (fr.data_offset(), fr.seq(), s.id().to_string())
    };
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[victim.0 as usize + 5] ^= 0x40;
    std::fs::write(&a, &bytes).unwrap();
    let out = dir.path().join("ds");
    let o = rec(&["export", p(&a), "--out", p(&out)]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a.rec"), "the message names the file");
    let mut want = library_rows(&[&a]);
    want.retain(|r| !(r.1 == victim.2 && r.2 == "/camera/image raw" && r.3 == victim.1));
    assert_eq!(dataset_rows(&out), want, "every other frame is exported");
    assert_eq!(want.len(), 2 * 400 + 5 - 1, "two sessions of 400 frames, 5 actions, one frame lost");
}

#[test]
fn an_interrupted_recording_exports_what_is_intact_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rec");
    let mut r = RecorderOptions::new().checkpoint_every_frames(100).create(&a).unwrap();
    let mut s = r.start_session("crash").unwrap();
    let id = s.add_stream("imu", "raw").unwrap();
    for i in 0..1000i64 {
        s.write(id, Timestamp::from_nanos(T0 + i), &i.to_le_bytes()).unwrap();
    }
    s.abandon();
    drop(r);
    let out = dir.path().join("ds");
    let o = rec(&["export", p(&a), "--out", p(&out)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = dataset_rows(&out);
    assert_eq!(rows, library_rows(&[&a]));
    assert!(rows.len() >= 900, "frames up to the last checkpoint at least: {}", rows.len());
}

#[test]
fn streams_and_time_windows_select_frames_and_actions() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rec");
    sample(&a, 4);
    let (from, until) = (T0 + 1_000_000_000, T0 + 12_100_000_000);
    let out = dir.path().join("ds");
    let o = rec(&[
        "export",
        p(&a),
        "--out",
        p(&out),
        "--stream",
        "/camera/image raw",
        "--from",
        &Timestamp::from_nanos(from).to_string(),
        "--until",
        &Timestamp::from_nanos(until).to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let mut want = library_rows(&[&a]);
    want.retain(|r| r.2 == "/camera/image raw" && r.4 >= from && r.4 <= until);
    assert!(want.iter().any(|r| r.4 == until), "the window's end is inclusive and a frame sits on it");
    assert_eq!(dataset_rows(&out), want);
}

#[test]
fn json_columns_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rec");
    sample(&a, 5);
    let out = dir.path().join("ds");
    assert_eq!(rec(&["export", p(&a), "--out", p(&out), "--json-columns", "--stream", "odom"]).status.code(), Some(0));
    let files = frame_files(&out);
    assert_eq!(files.len(), 2);
    let b = &read_parquet(&files[0])[0];
    let schema = b.schema();
    let kind = |n: &str| schema.field_with_name(n).map(|f| f.data_type().clone()).unwrap();
    use arrow_schema::DataType;
    assert_eq!(kind("x"), DataType::Int64);
    assert_eq!(kind("v"), DataType::Float64, "integers and decimals: float");
    assert_eq!(kind("ok"), DataType::Boolean);
    assert_eq!(kind("name"), DataType::Utf8);
    assert_eq!(kind("pose"), DataType::Utf8, "nested values as JSON text");
    assert_eq!(kind("json_ts"), DataType::Utf8, "a key named like a column is renamed");
    let x = col::<Int64Array>(b, "x");
    let v = col::<arrow_array::Float64Array>(b, "v");
    let pose = col::<StringArray>(b, "pose");
    let name = col::<StringArray>(b, "name");
    let data = col::<LargeBinaryArray>(b, "data");
    for i in 0..b.num_rows() {
        let obj: BTreeMap<String, serde_json::Value> = serde_json::from_slice(data.value(i)).unwrap();
        assert_eq!(x.value(i), obj["x"].as_i64().unwrap());
        assert_eq!(v.value(i), obj["v"].as_f64().unwrap());
        assert_eq!(pose.is_null(i), !obj.contains_key("pose"));
        if !pose.is_null(i) {
            assert_eq!(pose.value(i), "[1,2]");
            assert_eq!(name.value(i), obj["name"].as_str().unwrap());
        }
    }
}

#[test]
fn the_rosbag2_recordings_export_with_their_message_counts() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/rosbag2-mcap");
    if !data.exists() {
        assert!(std::env::var_os("REQUIRE_SHARED_TESTDATA").is_none(), "{} is missing", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut recs = Vec::new();
    for e in std::fs::read_dir(&data).unwrap() {
        let m = e.unwrap().path();
        let r = dir.path().join("in").join(m.file_stem().unwrap()).with_extension("rec");
        std::fs::create_dir_all(r.parent().unwrap()).unwrap();
        let o = rec(&["convert", p(&m), p(&r)]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        recs.push(r);
    }
    let out = dir.path().join("ds");
    let o = rec(&["export", p(&dir.path().join("in")), "--out", p(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let refs: Vec<&Path> = recs.iter().map(PathBuf::as_path).collect();
    let want = library_rows(&refs);
    assert!(want.iter().any(|r| r.7.is_some()), "some import carries publish times");
    assert_eq!(dataset_rows(&out), want);
}

#[test]
fn partition_values_are_escaped_as_hive_does() {
    use recfile::interop::parquet::escape_partition_value as e;
    assert_eq!(e("/camera/image_raw"), "%2Fcamera%2Fimage_raw");
    assert_eq!(e("a=b:c%d"), "a%3Db%3Ac%25d");
    assert_eq!(e("plain name-1.x"), "plain name-1.x");
    assert_eq!(e(""), "__HIVE_DEFAULT_PARTITION__");
    assert_eq!(e("é"), "é");
}
