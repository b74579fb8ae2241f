//! A process forked while a session records through stream senders, or while a player plays,
//! has neither thread: dropping the writer or the player there returns at once (it used to wait
//! for good on a thread of the parent), nothing is written from the child, and the parent goes on
//! as if no fork had happened.
#![cfg(unix)]

use recfile::{Player, PlayerOptions, RecFile, Recorder, Timestamp, Window};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BASE: i64 = 1_700_000_000_000_000_000;

/// Forks: 0 in the child, which must end with [`exit_child`].
fn fork() -> libc::pid_t {
    // SAFETY: fork has no preconditions; each caller's child leaves through `exit_child`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    pid
}

/// Runs `child` in the forked child and leaves with its code (101 if it panicked), without
/// running the test harness or anything else of the parent's there.
fn exit_child(child: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
    // SAFETY: ends the child without running the parent's exit handlers or destructors.
    unsafe { libc::_exit(code) }
}

/// The exit code of child `pid`; kills it and fails when it has not exited within 60 s (it hung
/// doing `what`).
fn exit_code_of_child(pid: libc::pid_t, what: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(done >= 0, "waitpid failed");
        if done == pid {
            assert!(libc::WIFEXITED(status), "the forked child did not exit normally ({status:#x})");
            return libc::WEXITSTATUS(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_child_forked_while_stream_senders_write_drops_the_session_at_once_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("senders.rec");
    let mut rec = Recorder::create(&path).unwrap();
    let mut s = rec.start_session("senders").unwrap();
    let id = s.add_stream("imu", "raw").unwrap();
    let tx = s.stream_sender(id).unwrap();
    let frame = |i: u64| (Timestamp::from_nanos(BASE + i as i64 * 1_000_000), i.to_le_bytes().repeat(128));
    // Forks with a full queue, so that the sender thread most likely holds the session's lock
    // at the fork (a lock the child then can never take), and once more after it drained.
    const ROUNDS: u64 = 6;
    for round in 0..ROUNDS {
        for i in round * 1000..(round + 1) * 1000 {
            let (t, d) = frame(i);
            tx.send(t, &d).unwrap();
        }
        if round == ROUNDS - 1 {
            std::thread::sleep(Duration::from_millis(200));
        }
        let pid = fork();
        if pid == 0 {
            exit_child(move || {
                let _ = s.frames();
                let finished = s.finish();
                drop(rec);
                if finished.is_ok() {
                    3
                } else {
                    0
                }
            });
        }
        assert_eq!(exit_code_of_child(pid, "finishing a session with stream senders"), 0, "the child's finish must fail naming the fork");
    }
    s.finish().unwrap();
    drop(rec);
    let f = RecFile::open(&path).unwrap();
    let got: Vec<(i64, Vec<u8>)> = f
        .last_session()
        .unwrap()
        .stream("imu")
        .unwrap()
        .iterate()
        .map(|fr| fr.unwrap())
        .map(|fr| (fr.timestamp().as_nanos(), fr.data().to_vec()))
        .collect();
    let want: Vec<(i64, Vec<u8>)> = (0..ROUNDS * 1000).map(frame).map(|(t, d)| (t.as_nanos(), d)).collect();
    assert_eq!(got, want);
    assert!(f.verify().ok(), "{:?}", f.verify().problems);
}

#[test]
fn a_child_forked_while_a_player_plays_waits_for_and_drops_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("play.rec");
    {
        let mut rec = Recorder::create(&path).unwrap();
        let mut s = rec.start_session("play").unwrap();
        let id = s.add_stream("cam", "raw").unwrap();
        // 200 frames 10 ms apart: two seconds of playback at speed 1.
        for i in 0..200 {
            s.write(id, Timestamp::from_nanos(BASE + i * 10_000_000), &[1u8; 8]).unwrap();
        }
        s.finish().unwrap();
    }
    let f = RecFile::open(&path).unwrap();
    let replay = f.last_session().unwrap().stream("cam").unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let counter = delivered.clone();
    let make = || {
        let counter = counter.clone();
        Player::spawn(replay.clone(), PlayerOptions::new(Window::new(), 1.0), move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap()
    };
    let (waited, dropped) = (make(), make());
    let pid = fork();
    if pid == 0 {
        exit_child(move || {
            let _ = waited.wait();
            drop(dropped);
            0
        });
    }
    assert_eq!(exit_code_of_child(pid, "waiting for or dropping a player"), 0);
    // The parent's players went on: both play to the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < 400 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(delivered.load(Ordering::Relaxed), 400);
}
