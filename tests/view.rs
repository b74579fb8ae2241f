//! `rec view`: the JSON API through the built binary, over HTTP, on a file with a planted gap.
#![cfg(all(feature = "mcap", feature = "cli", unix))]

use recfile::{Recorder, Timestamp};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

/// A `rec view` child and the address it serves.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(file: &std::path::Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rec"))
            .args(["view", file.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("no address in {line:?}")).to_string();
        Server { child, addr }
    }

    /// GET `path`: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const T0: i64 = 1_704_067_200_000_000_000;

/// lidar at 10 Hz for 10 s with no frame from 4 s to 6 s; odom (json) at 100 Hz.
fn planted(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("gap.rec");
    let mut rec = Recorder::create(&path).unwrap();
    let mut s = rec.start_session("gappy").unwrap();
    let lidar = s.add_stream("lidar", "raw").unwrap();
    let odom = s.add_stream("odom", "json").unwrap();
    for i in 0..1000i64 {
        let t = T0 + i * 10_000_000;
        s.write(odom, Timestamp::from_nanos(t), format!("{{\"i\":{i},\"x\":0.10093445704452375}}").as_bytes()).unwrap();
        if i % 10 == 0 && !(400..600).contains(&i) {
            s.write(lidar, Timestamp::from_nanos(t), &[i as u8; 32]).unwrap();
        }
    }
    s.record_call("plan", &1, |x| Ok::<_, String>(x + 1)).unwrap().unwrap();
    s.finish().unwrap();
    path
}

#[test]
fn the_api_answers_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = planted(dir.path());
    let srv = Server::start(&path, &[]);
    let info = srv.json("/api/info");
    assert_eq!(info["sessions"][0]["name"], "gappy");
    let frames = |name: &str| {
        info["sessions"][0]["streams"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["frames"].as_u64().unwrap()
    };
    // Density over the whole span counts every frame once, whatever the bins.
    for bins in [1, 7, 100, 1000] {
        for name in ["lidar", "odom"] {
            let d = srv.json(&format!("/api/density?stream={name}&bins={bins}"));
            let sum: u64 = d["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
            assert_eq!(sum, frames(name), "{name} with {bins} bins");
            assert_eq!(d["counts"].as_array().unwrap().len(), bins);
        }
    }
    // A window: the lidar gap from 4 s to 6 s has no frame.
    let d = srv.json(&format!("/api/density?stream=lidar&bins=10&from_ns={}&until_ns={}", T0 + 4_050_000_000i64, T0 + 5_950_000_000i64));
    assert!(d["counts"].as_array().unwrap().iter().all(|c| c == 0), "{d}");
    let d = srv.json("/api/density?stream=lidar&bins=2&from=2024-01-01T00:00:00Z&until=2024-01-01T00:00:02Z");
    assert_eq!(d["counts"], serde_json::json!([10, 10]));
    // The planted gap, and only it (default: 3× the median period).
    let g = srv.json("/api/gaps?stream=lidar");
    assert_eq!(g["median_period_ns"], 100_000_000);
    let gaps = g["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{g}");
    assert_eq!(gaps[0]["from_ns"], T0 + 3_900_000_000i64);
    assert_eq!(gaps[0]["until_ns"], T0 + 6_000_000_000i64);
    assert_eq!(srv.json("/api/gaps?stream=odom")["gaps"].as_array().unwrap().len(), 0);
    assert_eq!(srv.json("/api/gaps?stream=lidar&min=5")["gaps"].as_array().unwrap().len(), 0);
    // The closest frame, as cat --json prints it (exact digits), with a rendering hint.
    let (status, body) = srv.get(&format!("/api/frame?stream=odom&ts_ns={}", T0 + 123_004_000));
    assert_eq!(status, 200);
    assert!(body.contains("\"x\":0.10093445704452375"), "{body}");
    let f: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(f["seq"], 12);
    assert_eq!(f["render"]["kind"], "json");
    let f = srv.json("/api/frame?stream=lidar&ts=1704067204.5");
    assert_eq!(f["ts_ns"], T0 + 3_900_000_000i64);
    assert_eq!(f["render"]["kind"], "hex");
    // Actions and checkpoints.
    let a = srv.json("/api/actions");
    assert_eq!(a["actions"][0]["kind"], "plan");
    assert!(!a["checkpoints"].as_array().unwrap().is_empty());
    // The page, with everything inline.
    let (status, page) = srv.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<canvas") && !page.contains("http://") && !page.contains("https://"));
}

#[test]
fn bad_queries_get_a_400_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = planted(dir.path());
    let srv = Server::start(&path, &[]);
    for q in [
        "/api/density?stream=nope",
        "/api/density",
        "/api/density?stream=lidar&bins=0",
        "/api/density?stream=lidar&bins=x",
        "/api/density?stream=lidar&from_ns=5&until_ns=1",
        "/api/gaps?stream=lidar&min=-%ff",
        "/api/frame?stream=lidar",
        "/api/frame?stream=lidar&ts=yesterday",
        "/api/frame?stream=lidar&ts_ns=1.5",
        "/api/actions?session=9",
        "/api/report",
    ] {
        let (status, body) = srv.get(q);
        assert_eq!(status, 400, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{q}: {body}");
    }
    assert_eq!(srv.get("/api/nothing").0, 404);
    assert_eq!(srv.get("/etc/passwd").0, 404);
    assert_eq!(srv.json("/api/info")["sessions"].as_array().unwrap().len(), 1);
}

#[test]
fn a_report_is_served_and_a_damaged_file_does_not_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = planted(dir.path());
    let report = dir.path().join("report.json");
    std::fs::write(&report, r#"{"replayed":1,"matched":0,"diverged":1,"results":[{"seq":0,"kind":"plan","status":"diverged"}]}"#).unwrap();
    // Damage one lidar frame in the middle.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(32).position(|w| w.iter().all(|&b| b == 100)).unwrap();
    bytes[at + 5] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let srv = Server::start(&path, &["--report", report.to_str().unwrap()]);
    assert_eq!(srv.json("/api/report")["diverged"], 1);
    let f = srv.json(&format!("/api/frame?stream=lidar&ts_ns={}", T0 + 1_000_000_000));
    assert!(f["damaged"].as_str().is_some_and(|d| d.contains("CRC")), "{f}");
    assert_eq!(srv.json("/api/frame?stream=lidar&ts=1704067201.1")["seq"], 11);
}
