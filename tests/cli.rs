//! The CLI contracts, through the built binary.
#![cfg(feature = "mcap")]

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn rec(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rec"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // The command may exit before reading its input (e.g. on a refused file).
        if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const INPUT: &str = r#"{"stream": "lidar", "ts": 1704067200.25, "data": {"points": [1, 2.5, -3], "ok": true}}
{"stream": "odom", "ts": 1704067200.125, "data": [1, "two", null]}
{"stream": "lidar", "ts_ns": 1704067200750000001, "data": "text"}
{"stream": "cam", "ts": 1704067200.5, "data_b64": "AAEC/w=="}

{"ts": 1704067200.0, "data": 3.5}
{"stream": "odom", "ts": 1704067200.125, "data": {"z": 1e-7, "big": 12345678901234567890}}
"#;

#[test]
fn record_then_cat_gives_back_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.rec");
    let o = rec(&["record", p(&f), "--stream", "default", "--session", "s1", "--checkpoint-every", "2"], Some(INPUT));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rec(&["cat", p(&f), "--json"], None);
    assert_eq!(code(&o), 0);
    let lines: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let inputs: Vec<Value> = INPUT.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), inputs.len());
    // Output is in timestamp order, ties in arrival order.
    let ts: Vec<i64> = lines.iter().map(|l| l["ts_ns"].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    for input in &inputs {
        let want_stream = input.get("stream").and_then(Value::as_str).unwrap_or("default");
        let want_ns = match input.get("ts_ns") {
            Some(n) => n.as_i64().unwrap(),
            None => recfile::Timestamp::from_secs_f64(input["ts"].as_f64().unwrap()).unwrap().as_nanos(),
        };
        let hit = lines.iter().find(|l| {
            l["stream"] == want_stream
                && l["ts_ns"].as_i64() == Some(want_ns)
                && (l.get("data") == input.get("data"))
                && (l.get("data_b64") == input.get("data_b64"))
        });
        assert!(hit.is_some(), "{input} not found in output");
        let hit = hit.unwrap();
        if let Some(t) = input.get("ts") {
            assert_eq!(hit["ts"].as_f64(), t.as_f64(), "ts as float round-trips");
        }
        assert!(hit["session"].as_str().unwrap().len() == 36);
        assert!(hit["seq"].is_u64());
    }
    // Ties at 1704067200.125 keep arrival order: seq 0 before seq 1.
    let odom: Vec<&Value> = lines.iter().filter(|l| l["stream"] == "odom").collect();
    assert_eq!(odom[0]["seq"], 0);
    assert_eq!(odom[1]["seq"], 1);

    // Streams can be selected; sessions by index and by id.
    let o = rec(&["cat", p(&f), "--json", "--stream", "odom", "--stream", "cam", "--session", "0"], None);
    assert_eq!(stdout(&o).lines().count(), 3);
    let id = lines[0]["session"].as_str().unwrap();
    let o = rec(&["cat", p(&f), "--json", "--session", id, "--stream", "cam"], None);
    assert_eq!(stdout(&o).lines().count(), 1);
    let o = rec(&["cat", p(&f), "--session", "7"], None);
    assert_eq!(code(&o), 1);
    let o = rec(&["cat", p(&f), "--stream", "nope"], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nope"));
}

#[test]
fn info_json_has_the_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.rec");
    assert_eq!(code(&rec(&["record", p(&f)], Some(INPUT.replace("{\"ts\": 1704067200.0, \"data\": 3.5}", "").as_str()))), 0);
    let o = rec(&["info", p(&f), "--json"], None);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    for k in ["format_version", "file_id", "size_bytes", "sessions"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["size_bytes"].as_u64().unwrap(), std::fs::metadata(&f).unwrap().len());
    let s = &v["sessions"][0];
    for k in ["id", "name", "state", "start_ns", "end_ns", "frames", "checkpoints", "metadata", "streams"] {
        assert!(s.get(k).is_some(), "missing session key {k}");
    }
    assert_eq!(s["state"], "finished");
    assert_eq!(s["frames"], 5);
    let lidar = s["streams"].as_array().unwrap().iter().find(|x| x["name"] == "lidar").unwrap();
    for k in ["name", "encoding", "frames", "first_ns", "last_ns", "bytes"] {
        assert!(lidar.get(k).is_some(), "missing stream key {k}");
    }
    assert_eq!(lidar["encoding"], "json");
    assert_eq!(lidar["frames"], 2);
    assert_eq!(lidar["first_ns"], 1704067200250000000i64);
    assert_eq!(lidar["last_ns"], 1704067200750000001i64);
    let cam = s["streams"].as_array().unwrap().iter().find(|x| x["name"] == "cam").unwrap();
    assert_eq!(cam["encoding"], "raw");
    assert_eq!(cam["bytes"], 4);
    // Human output is plain text without escape codes when not on a terminal.
    let o = rec(&["info", p(&f)], None);
    assert_eq!(code(&o), 0);
    assert!(!stdout(&o).contains('\x1b'));
    assert!(stdout(&o).contains("lidar"));
}

#[test]
fn bad_lines_stop_with_the_line_number_and_keep_earlier_frames() {
    let cases = [
        ("not json", "line 2"),
        (r#"{"stream": "a", "ts": "soon", "data": 1}"#, "line 2"),
        (r#"{"stream": "a", "ts": 1.0, "data_b64": "AAAA"}"#, "line 2"),
        (r#"{"stream": "a", "ts": 1.0}"#, "line 2"),
        (r#"{"stream": "a", "ts": 1e400, "data": 1}"#, "line 2"),
        (r#"{"stream": "a", "data_b64": "%%%"}"#, "line 2"),
        (r#"{"ts": 1.0, "data": 1}"#, "line 2"),
        (r#"[1, 2]"#, "line 2"),
    ];
    for (bad, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.rec");
        let input =
            format!("{{\"stream\": \"a\", \"ts\": 0.5, \"data\": {{\"k\": 1}}}}\n{bad}\n{{\"stream\": \"a\", \"ts\": 2.0, \"data\": 2}}\n");
        let o = rec(&["record", p(&f)], Some(&input));
        assert_eq!(code(&o), 1, "{bad}");
        assert!(stderr(&o).contains(want), "{bad}: {}", stderr(&o));
        let o = rec(&["info", p(&f), "--json"], None);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["sessions"][0]["state"], "finished", "{bad}");
        assert_eq!(v["sessions"][0]["frames"], 1, "{bad}");
    }
}

#[test]
fn record_refuses_to_overwrite_and_appends_with_flag() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.rec");
    let line = "{\"stream\": \"a\", \"ts\": 1.0, \"data\": 1}\n";
    assert_eq!(code(&rec(&["record", p(&f)], Some(line))), 0);
    let o = rec(&["record", p(&f)], Some(line));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already exists"));
    assert_eq!(code(&rec(&["record", p(&f), "--append", "--session", "second"], Some(line))), 0);
    let v: Value = serde_json::from_str(&stdout(&rec(&["info", p(&f), "--json"], None))).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(v["sessions"][1]["name"], "second");
}

#[test]
fn find_modes_tolerance_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.rec");
    let input: String =
        (0..10).map(|i| format!("{{\"stream\": \"a\", \"ts_ns\": {}, \"data\": {i}}}\n", 1_000_000_000i64 + i * 100_000_000)).collect();
    assert_eq!(code(&rec(&["record", p(&f)], Some(&input))), 0);
    let find = |extra: &[&str]| {
        let mut args = vec!["find", p(&f), "--stream", "a", "--json"];
        args.extend_from_slice(extra);
        rec(&args, None)
    };
    let get = |o: &Output| -> Value { serde_json::from_str(stdout(o).trim()).unwrap() };
    let o = find(&["--at", "1.34"]);
    assert_eq!(code(&o), 0);
    assert_eq!(get(&o)["data"], 3);
    assert_eq!(get(&o)["ts_ns"], 1_300_000_000i64);
    assert_eq!(get(&find(&["--at", "1.35"]))["data"], 3, "ties go to the earlier frame");
    assert_eq!(get(&find(&["--at", "1.34", "--mode", "after"]))["data"], 4);
    assert_eq!(get(&find(&["--at", "1.39", "--mode", "before"]))["data"], 3);
    assert_eq!(get(&find(&["--at-ns", "1500000001"]))["data"], 5);
    assert_eq!(get(&find(&["--seek", "0.61"]))["data"], 6);
    let o = find(&["--at", "5.0", "--tolerance", "0.5"]);
    assert_eq!(code(&o), 4);
    assert!(stdout(&o).is_empty());
    assert!(!stderr(&o).is_empty());
    assert_eq!(code(&find(&["--at", "0.5", "--mode", "before"])), 4);
    assert_eq!(code(&find(&["--at", "9", "--mode", "after"])), 4);
    assert_eq!(code(&find(&["--at", "1.34", "--tolerance", "0.05"])), 0);
    assert_eq!(code(&find(&["--at", "1.34", "--tolerance", "0.03"])), 4);
    // Usage errors exit 2.
    assert_eq!(code(&rec(&["find", p(&f), "--stream", "a"], None)), 2);
    assert_eq!(code(&rec(&["find", p(&f), "--stream", "a", "--at", "1", "--seek", "1"], None)), 2);
    assert_eq!(code(&rec(&["find", p(&f), "--stream", "a", "--at", "nan"], None)), 2);
    assert_eq!(code(&rec(&["nonsense"], None)), 2);
}

#[test]
fn demo_records_and_prints_info() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("demo.rec");
    let o = rec(&["demo", p(&f)], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for s in ["lidar", "camera", "odom"] {
        assert!(stdout(&o).contains(s));
    }
    let o = rec(&["verify", p(&f)], None);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(code(&rec(&["demo", p(&f)], None)), 1, "demo never overwrites");
}

#[test]
fn errors_on_files_that_are_not_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.rec");
    std::fs::write(&f, b"hello world, not a recording").unwrap();
    let o = rec(&["info", p(&f)], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("not a .rec file"));
    let o = rec(&["info", p(&dir.path().join("missing.rec"))], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("missing.rec"));
}

#[test]
fn cat_windows_and_loops_and_play() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.rec");
    let input: String =
        (0..10).map(|i| format!("{{\"stream\": \"a\", \"ts_ns\": {}, \"data\": {i}}}\n", 1_000_000_000i64 + i * 20_000_000)).collect();
    assert_eq!(code(&rec(&["record", p(&f)], Some(&input))), 0);
    let data = |o: &Output| -> Vec<i64> {
        stdout(o).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["data"].as_i64().unwrap()).collect()
    };
    let o = rec(&["cat", p(&f), "--json", "--seek", "0.04", "--duration", "0.06"], None);
    assert_eq!(data(&o), vec![2, 3, 4]);
    let o = rec(&["cat", p(&f), "--json", "--from", "1.15"], None);
    assert_eq!(data(&o), vec![8, 9]);
    let o = rec(&["cat", p(&f), "--json", "--seek", "0.16", "--loop", "3"], None);
    assert_eq!(data(&o), vec![8, 9, 8, 9, 8, 9]);
    let laps: Vec<i64> = stdout(&o).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["lap"].as_i64().unwrap()).collect();
    assert_eq!(laps, vec![0, 0, 1, 1, 2, 2]);
    assert_eq!(code(&rec(&["cat", p(&f), "--seek", "-1"], None)), 2, "negative seek is a usage error");
    assert_eq!(code(&rec(&["cat", p(&f), "--loop", "0"], None)), 2);
    assert!(stdout(&rec(&["cat", p(&f), "--json", "--seek", "100"], None)).is_empty());

    let t0 = std::time::Instant::now();
    let o = rec(&["play", p(&f), "--speed", "2", "--seek", "0.1"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t0.elapsed() >= std::time::Duration::from_millis(35), "5 frames over 80 ms at 2x take 40 ms");
    assert_eq!(data(&o), vec![5, 6, 7, 8, 9]);
    assert!(stderr(&o).contains("lateness"));
    assert_eq!(code(&rec(&["play", p(&f), "--speed", "0"], None)), 2, "a bad speed is a usage error");
    assert_eq!(code(&rec(&["play", p(&f), "--late", "sometimes"], None)), 2);
}

#[test]
fn sessions_actions_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (fa, fb) = (dir.path().join("a.rec"), dir.path().join("b.rec"));
    for (path, answers) in [(&fa, [1, 2, 3]), (&fb, [1, 5, 3])] {
        let mut rec = recfile::Recorder::create(path).unwrap();
        let mut s = rec.start_session("agent").unwrap();
        for (i, ans) in answers.iter().enumerate() {
            s.record_call("ask", &format!("q{i}"), |_| Ok::<_, String>(*ans)).unwrap().unwrap();
        }
        s.finish().unwrap();
        let mut s = rec.start_session("second").unwrap();
        s.record_call("ask", "q0", |_| Ok::<_, String>(1)).unwrap().unwrap();
        s.finish().unwrap();
    }
    let o = rec(&["sessions", p(&fa), "--json"], None);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["actions"], 3);
    assert_eq!(v[1]["actions"], 1);
    assert!(v[0]["checkpoints"].as_u64().unwrap() >= 1);
    let o = rec(&["actions", p(&fa), "--session", "0", "--json"], None);
    let acts: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(acts.len(), 3);
    assert_eq!(acts[1]["kind"], "ask");
    assert_eq!(acts[1]["input"], "q1");
    assert_eq!(acts[1]["output"], 2);
    assert!(!stdout(&rec(&["actions", p(&fa)], None)).is_empty());
    // Identical sessions: exit 0; different: exit 1 with the diff.
    assert_eq!(code(&rec(&["diff", p(&fa), "--session", "0", p(&fa), "--session", "0"], None)), 0);
    let o = rec(&["diff", p(&fa), "--session", "0", p(&fb), "--session", "0"], None);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("1 differing"), "{}", stdout(&o));
    let o = rec(&["diff", p(&fa), "--session", "0", p(&fb), "--session", "0", "--json"], None);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["summary"]["differing"], 1);
    assert_eq!(v["summary"]["matching"], 2);
    // Default sessions (the last of each): identical.
    assert_eq!(code(&rec(&["diff", p(&fa), p(&fb)], None)), 0);
    assert_eq!(code(&rec(&["diff", p(&fa)], None)), 2, "one file is a usage error");
    assert_eq!(code(&rec(&["diff", "--session", "0", p(&fa), p(&fb)], None)), 2);
    assert_eq!(code(&rec(&["diff", "--help"], None)), 0);
}

#[test]
fn convert_round_trips_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let mcap_in = dir.path().join("in.mcap");
    {
        let mut w = mcap::WriteOptions::new().create(std::io::BufWriter::new(std::fs::File::create(&mcap_in).unwrap())).unwrap();
        let ch = w.add_channel(0, "/chatter", "json", &std::collections::BTreeMap::new()).unwrap();
        for i in 0..50u64 {
            let h = mcap::records::MessageHeader {
                channel_id: ch,
                sequence: i as u32,
                log_time: 1_000_000_000 + i * 1_000_000,
                publish_time: 1_000_000_000 + i * 1_000_000,
            };
            w.write_to_known_channel(&h, format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    let rec_file = dir.path().join("mid.rec");
    let mcap_out = dir.path().join("out.mcap");
    let o = rec(&["convert", p(&mcap_in), p(&rec_file)], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains('\x1b'), "no escape codes off a terminal");
    let o = rec(&["find", p(&rec_file), "--stream", "/chatter", "--at", "1.0105", "--json"], None);
    assert_eq!(serde_json::from_str::<Value>(stdout(&o).trim()).unwrap()["data"]["i"], 10);
    assert_eq!(code(&rec(&["convert", p(&rec_file), p(&mcap_out)], None)), 0);
    let bytes = std::fs::read(&mcap_out).unwrap();
    let n = mcap::MessageStream::new(&bytes).unwrap().count();
    assert_eq!(n, 50);
    // Existing outputs are refused; unknown inputs are errors.
    assert_eq!(code(&rec(&["convert", p(&rec_file), p(&mcap_out)], None)), 1);
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"hello").unwrap();
    let o = rec(&["convert", p(&junk), p(&dir.path().join("x.rec"))], None);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("neither an MCAP nor a .rec file"));
    let talker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/rosbag2-mcap/talker.mcap");
    if talker.exists() {
        let t = dir.path().join("talker.rec");
        assert_eq!(code(&rec(&["convert", p(&talker), p(&t)], None)), 0);
        let o = rec(&["info", p(&t), "--json"], None);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(v["sessions"][0]["frames"].as_u64().unwrap() > 0);
    }
}

#[test]
fn help_and_completions() {
    let o = rec(&["--help"], None);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("Examples:") && stdout(&o).contains("Exit codes"));
    for cmd in ["record", "info", "cat", "find", "play", "convert", "verify", "recover", "sessions", "actions"] {
        let o = rec(&[cmd, "--help"], None);
        assert_eq!(code(&o), 0, "{cmd}");
        assert!(!stdout(&o).is_empty());
    }
    for shell in ["bash", "zsh", "fish"] {
        let o = rec(&["completions", shell], None);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("rec"));
    }
    // Errors off a terminal carry no escape codes, with or without NO_COLOR.
    let o = rec(&["info", "/nonexistent.rec", "--no-color"], None);
    assert_eq!(code(&o), 1);
    assert!(!stderr(&o).contains('\x1b'));
}
