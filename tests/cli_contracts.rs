//! CLI contracts of the damage, signal and exact-value work, through the built binary.
#![cfg(all(feature = "mcap", feature = "cli", unix))]

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rec"));
    c.env("NO_COLOR", "1");
    c
}

fn rec(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = bin().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn info(path: &str) -> Value {
    let o = rec(&["info", path, "--json"], None);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("info --json: {e}: {}", String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn a_signal_finishes_the_recording_with_every_line_read() {
    for sig in ["INT", "TERM", "HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.rec");
        let path = path.to_str().unwrap();
        let mut child = bin().args(["record", path]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        for i in 0..1500 {
            writeln!(input, "{{\"stream\":\"imu\",\"ts_ns\":{i},\"data\":{{\"i\":{i}}}}}").unwrap();
        }
        input.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let status = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "SIG{sig}: {err}");
        assert!(err.contains("recorded 1500 frames"), "SIG{sig}: {err}");
        drop(input);
        let v = info(path);
        assert_eq!(v["sessions"][0]["state"], "finished", "SIG{sig}");
        assert_eq!(v["sessions"][0]["frames"], 1500, "SIG{sig}");
    }
}

#[test]
fn values_and_timestamps_come_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rec");
    let a = a.to_str().unwrap();
    let data = r#"{"x":0.10093445704452375,"big":123456789012345678901234567890,"a":1.10,"b":1.1,"z":-0.0,"e":1e400,"k":[{"y":2,"w":1}]}"#;
    let line = format!(
        "{{\"stream\":\"s\",\"ts\":1704067200.01,\"data\":{data}}}\n{{\"stream\":\"s\",\"ts\":1704067200.020000000000001,\"data\":1}}\n"
    );
    assert_eq!(rec(&["record", a], Some(&line)).status.code(), Some(0));
    let cat = rec(&["cat", a, "--json"], None);
    let out = String::from_utf8(cat.stdout).unwrap();
    assert!(out.lines().next().unwrap().contains("\"ts\":1704067200.01,\"ts_ns\":1704067200010000000,"), "{out}");
    assert!(out.lines().next().unwrap().contains(&format!("\"data\":{data}")), "{out}");
    assert!(out.contains("\"ts_ns\":1704067200020000000"), "{out}");
    let find = rec(&["find", a, "--stream", "s", "--at-ns", "1704067200010000000", "--mode", "after", "--json"], None);
    assert!(String::from_utf8_lossy(&find.stdout).contains("\"seq\":0"));
    let find = rec(&["find", a, "--stream", "s", "--at", "2024-01-01T00:00:00.01Z", "--tolerance", "0", "--json"], None);
    assert_eq!(find.status.code(), Some(0), "{}", String::from_utf8_lossy(&find.stderr));
    // cat --json records again, identically.
    let b = dir.path().join("b.rec");
    let b = b.to_str().unwrap();
    assert_eq!(rec(&["record", b], Some(&out)).status.code(), Some(0));
    let again = String::from_utf8(rec(&["cat", b, "--json"], None).stdout).unwrap();
    let strip = |s: &str| s.lines().map(|l| l[l.find("\"stream\"").unwrap()..].to_string()).collect::<Vec<_>>();
    assert_eq!(strip(&again), strip(&out));
    // --from / --until, inclusive.
    let w = rec(&["cat", a, "--json", "--from", "1704067200.01", "--until", "1704067200.01"], None);
    assert_eq!(String::from_utf8_lossy(&w.stdout).lines().count(), 1);
    // Both ts and ts_ns that disagree, and a time out of range, are errors naming the line.
    for bad in [
        r#"{"stream":"s","ts":1,"ts_ns":5,"data":1}"#,
        r#"{"stream":"s","ts":1e30,"data":1}"#,
        r#"{"stream":"s","ts_ns":9223372036854775808,"data":1}"#,
    ] {
        let c = dir.path().join("c.rec");
        let o = rec(&["record", c.to_str().unwrap()], Some(bad));
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"), "{bad}");
        std::fs::remove_file(&c).unwrap();
    }
}

#[test]
fn damage_costs_only_the_record_it_hit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.rec");
    let p = path.to_str().unwrap();
    assert_eq!(rec(&["demo", p], None).status.code(), Some(0));
    let before = String::from_utf8(rec(&["cat", p, "--json"], None).stdout).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = 4096 + bytes[4096..].windows(4).position(|w| w == b"demo").unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let cat = rec(&["cat", p, "--json"], None);
    let after = String::from_utf8(cat.stdout).unwrap();
    let strip = |s: &str| s.lines().map(|l| l[l.find("\"stream\"").unwrap()..].to_string()).collect::<Vec<_>>();
    assert_eq!(strip(&after), strip(&before), "every frame is still read");
    assert_eq!(info(p)["sessions"][0]["state"], "damaged");
    let r = rec(&["recover", p], None);
    assert_eq!(r.status.code(), Some(3), "{}", String::from_utf8_lossy(&r.stdout));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "recovery changed a finished session");
    assert_eq!(rec(&["verify", p], None).status.code(), Some(1));
    // Appending keeps the damaged session in place.
    assert_eq!(rec(&["record", p, "--append", "--stream", "x"], Some("{\"ts\":1,\"data\":1}\n")).status.code(), Some(0));
    let v = info(p);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(v["sessions"][0]["frames"], 700);
}

#[test]
fn exit_codes_and_closed_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.rec");
    let p = path.to_str().unwrap();
    rec(&["demo", p], None);
    assert_eq!(rec(&["play", p, "--speed", "0"], None).status.code(), Some(2));
    assert_eq!(rec(&["record", dir.path().join("x.rec").to_str().unwrap(), "--checkpoint-every", "0"], Some("")).status.code(), Some(2));
    assert_eq!(rec(&["diff", p, "/nonexistent.rec"], None).status.code(), Some(2));
    assert_eq!(rec(&["diff", p, p], None).status.code(), Some(2), "no actions is not identical");
    let exists = rec(&["record", p], Some(""));
    assert!(String::from_utf8_lossy(&exists.stderr).contains("--append"));
    // A reader that closes the pipe early: no panic, exit 0.
    for cmd in [vec!["info", p], vec!["sessions", p], vec!["verify", p], vec!["cat", p]] {
        let mut child = bin().args(&cmd).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{cmd:?}");
        assert_eq!(out.status.code(), Some(0), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // --session takes a name.
    let s = rec(&["cat", p, "--session", "demo", "--stream", "odom"], None);
    assert_eq!(s.status.code(), Some(0), "{}", String::from_utf8_lossy(&s.stderr));
}

#[test]
fn mcap_imports_show_their_messages_types_and_span() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("in.mcap");
    // One channel with a schema, publish times unlike log times, long metadata.
    {
        let mut w = mcap::WriteOptions::new().create(std::io::BufWriter::new(std::fs::File::create(&m).unwrap())).unwrap();
        let schema = w.add_schema("sensor_msgs/msg/Imu", "ros2msg", b"float64 x").unwrap();
        let ch = w.add_channel(schema, "/imu", "cdr", &Default::default()).unwrap();
        for i in 0..40u64 {
            let h = mcap::records::MessageHeader {
                channel_id: ch,
                sequence: i as u32,
                log_time: 5_000_000_000 + i * 10_000_000,
                publish_time: 4_000_000_000 + i,
            };
            w.write_to_known_channel(&h, &i.to_le_bytes()).unwrap();
        }
        let mut md = std::collections::BTreeMap::new();
        md.insert("calibration".to_string(), "x".repeat(500));
        w.write_metadata(&mcap::records::Metadata { name: "robot".into(), metadata: md }).unwrap();
        w.finish().unwrap();
    }
    let out = dir.path().join("out.rec");
    let (m_s, out_s) = (m.to_str().unwrap(), out.to_str().unwrap());
    let o = rec(&["convert", m_s, out_s], None);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("40 messages on 1 channel in 1 session (1 metadata record, 0 attachments)"), "{err}");
    let j = info(out_s);
    let s = &j["sessions"][0];
    assert_eq!(s["frames"], 40);
    assert_eq!(s["streams"].as_array().unwrap().len(), 1);
    assert_eq!(s["start_ns"], 5_000_000_000i64);
    assert_eq!(s["end_ns"], 5_390_000_000i64);
    let text = String::from_utf8_lossy(&rec(&["info", out_s], None).stdout).to_string();
    assert!(text.contains("sensor_msgs/msg/Imu"), "{text}");
    assert!(!text.contains(&"x".repeat(200)), "long metadata is cut in the text view");
    assert!(text.contains("--json shows all"), "{text}");
    // The JSON view keeps the whole value.
    let meta = s["metadata"].as_object().unwrap();
    assert!(meta.values().any(|v| v.as_str().unwrap_or("").contains(&"x".repeat(500))));
    let cat = rec(&["cat", out_s, "--json"], None);
    assert_eq!(String::from_utf8_lossy(&cat.stdout).lines().count(), 40);
    // A cut MCAP converts what is complete and exits 3.
    let bytes = std::fs::read(&m).unwrap();
    let cut = dir.path().join("cut.mcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let cut_rec = dir.path().join("cut.rec");
    let o = rec(&["convert", cut.to_str().unwrap(), cut_rec.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("damaged or cut short"));
    let j = info(cut_rec.to_str().unwrap());
    let n = j["sessions"][0]["frames"].as_u64().unwrap();
    assert!(n <= 40, "{n}");
}

#[test]
fn cat_of_an_interrupted_file_with_a_damaged_tail_warns_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tail.rec");
    {
        let mut rec = recfile::RecorderOptions::new().checkpoint_every_frames(0).create(&path).unwrap();
        let mut s = rec.start_session("tail").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        for i in 0..10i64 {
            s.write(a, recfile::Timestamp::from_nanos(i), format!("before-{i:03}").as_bytes()).unwrap();
        }
        s.checkpoint().unwrap();
        // Payloads of 256 KiB and more go to the OS at once, so the tail is in the file
        // without a checkpoint when the process "dies".
        for i in 10..20i64 {
            let mut payload = format!("after--{i:03}").into_bytes();
            payload.resize(300 * 1024, b'.');
            s.write(a, recfile::Timestamp::from_nanos(i), &payload).unwrap();
        }
        s.abandon();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(10).position(|w| w == b"after--014").expect("the tail reached the file");
    let tail_written = bytes.windows(10).filter(|w| w.starts_with(b"after--")).count();
    bytes[at + 3] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let p = path.to_str().unwrap();
    let o = rec(&["cat", p, "--json"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("damaged"), "{err}");
    let lines = String::from_utf8_lossy(&o.stdout).lines().count();
    // Every intact frame, after the damage too: all but the damaged one.
    assert_eq!(lines, 10 + tail_written - 1, "{err}");
}
