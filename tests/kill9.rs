//! `kill -9` of a recording process at random moments: after recovery every frame before the
//! child's last reported checkpoint is present and byte-identical, and the file verifies.
//!
//! The child is this test binary itself, re-run with `KILL9_CHILD` set, so no helper binary is
//! needed. `KILL9_TRIALS` sets the number of trials (default 100; the soak uses 1000+).

use recfile::{recover, RecFile, RecorderOptions, Timestamp};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn payload(i: u64) -> Vec<u8> {
    let len = (i * 7919 % 1500) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

/// The child: records frames forever, printing the frame count after each checkpoint.
#[test]
#[ignore = "run by kill9_trials as a child process"]
fn kill9_child() {
    let Ok(path) = std::env::var("KILL9_CHILD") else { return };
    let mut rec = RecorderOptions::new().checkpoint_every_frames(25).buffer_bytes(8192).open_append(&path).unwrap();
    let mut s = rec.start_session("child").unwrap();
    let a = s.add_stream("a", "raw").unwrap();
    let b = s.add_stream("b", "raw").unwrap();
    let out = std::io::stdout();
    let mut cps = 0;
    for i in 0u64.. {
        s.write(if i % 3 == 0 { b } else { a }, Timestamp::from_nanos(i as i64), &payload(i)).unwrap();
        if s.checkpoints() != cps {
            cps = s.checkpoints();
            let mut o = out.lock();
            writeln!(o, "{}", i + 1).unwrap();
            o.flush().unwrap();
        }
    }
}

#[test]
fn kill9_trials() {
    let trials: u64 = std::env::var("KILL9_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x1234_5678u64;
    let mut total_sessions = 0;
    let (mut with_checkpoints, mut frames_kept) = (0u64, 0u64);
    for trial in 0..trials {
        let path = dir.path().join(format!("k{}.rec", trial % 10));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(&exe)
            .args(["--exact", "kill9_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("KILL9_CHILD", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for a random number of checkpoints (0..6), then kill at once.
        let wait_for = seed % 6;
        let mut durable = 0u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        while durable < wait_for * 25 && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Ok(n) = l.trim().parse::<u64>() {
                        durable = n;
                    }
                }
                _ => break,
            }
        }
        if seed.is_multiple_of(2) {
            std::thread::sleep(Duration::from_micros(seed % 3000));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines printed before the kill may still be in the pipe.
        for l in lines.map_while(Result::ok) {
            if let Ok(n) = l.trim().parse::<u64>() {
                durable = n;
            }
        }
        let report = match recover(&path) {
            Ok(r) => r,
            Err(e) => {
                // Killed before the file had a header: nothing was promised yet.
                assert_eq!(durable, 0, "trial {trial}: {e}");
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        let f = RecFile::open(&path).unwrap();
        let v = f.verify();
        assert!(v.ok(), "trial {trial}: {:?} after {report:?}", v.problems);
        total_sessions = total_sessions.max(f.session_count());
        let Some(s) = f.last_session().filter(|s| s.name() == "child") else {
            assert_eq!(durable, 0, "trial {trial}: no session");
            continue;
        };
        let all: Vec<_> = s.replay(&[]).unwrap().iterate().map(|r| r.unwrap()).collect();
        with_checkpoints += u64::from(durable > 0);
        frames_kept += all.len() as u64;
        assert!(all.len() as u64 >= durable, "trial {trial}: {} frames kept, {durable} were checkpointed", all.len());
        for fr in &all {
            let i = fr.timestamp().as_nanos() as u64;
            assert_eq!(fr.data(), &payload(i)[..], "trial {trial}: frame {i} corrupt");
        }
        // The frames are exactly 0..n: a prefix of what was written.
        let mut ids: Vec<u64> = all.iter().map(|f| f.timestamp().as_nanos() as u64).collect();
        ids.sort_unstable();
        assert!(ids.iter().enumerate().all(|(i, &x)| i as u64 == x), "trial {trial}: not a prefix");
    }
    assert!(total_sessions >= 1);
    println!("{trials} kill -9 trials: {with_checkpoints} killed after a checkpoint, {frames_kept} frames verified");
    assert!(with_checkpoints * 2 >= trials, "too few trials got past a checkpoint: {with_checkpoints}");
}
