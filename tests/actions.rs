//! Actions: recording calls, checkpoints and limits, replay with divergences, comparison.

use recfile::session::{compare_actions, ActionStatus, ComparisonStatus};
use recfile::storage::MemStorage;
use recfile::{compare_sessions, Action, ActionOptions, DivergenceType, Error, RecFile, Recorder, RecorderOptions, ReplayEngine, Session};
use std::sync::{Arc, Mutex};

fn open(rec: Recorder) -> RecFile {
    RecFile::from_bytes(rec.into_storage().unwrap().read_all().unwrap()).unwrap()
}

fn recorder() -> Recorder {
    Recorder::init_storage(Box::new(MemStorage::default()), RecorderOptions::new()).unwrap()
}

/// A module with state: counts calls; `div` fails on zero.
fn record_divisions(rec: &mut Recorder, inputs: &[(i64, i64)], every: u64) -> u64 {
    let mut s = rec.start_session("calc").unwrap();
    let calls = Arc::new(Mutex::new(0u64));
    let c2 = calls.clone();
    s.configure_actions(ActionOptions::new().auto_checkpoint_interval(every).snapshot(move || c2.lock().unwrap().to_le_bytes().to_vec()));
    let lidar = s.add_stream("lidar", "raw").unwrap();
    for (i, &(a, b)) in inputs.iter().enumerate() {
        s.write(lidar, recfile::Timestamp::from_nanos(i as i64), b"scan").unwrap();
        let r = s
            .record_call("div", &(a, b), |&(a, b)| {
                *calls.lock().unwrap() += 1;
                if b == 0 {
                    Err(format!("{a} / 0"))
                } else {
                    Ok(a / b)
                }
            })
            .unwrap();
        assert_eq!(r.is_err(), b == 0);
    }
    s.finish().unwrap().checkpoints as u64
}

fn divide(a: &Action) -> Result<Vec<u8>, String> {
    let (x, y): (i64, i64) = a.input_json().map_err(|e| e.to_string())?;
    if y == 0 {
        Err(format!("{x} / 0"))
    } else {
        Ok(serde_json::to_vec(&(x / y)).unwrap())
    }
}

#[test]
fn record_call_stores_inputs_outputs_and_errors_next_to_sensor_streams() {
    let mut rec = recorder();
    record_divisions(&mut rec, &[(6, 3), (1, 0), (9, 2)], 100);
    let f = open(rec);
    let s = f.last_session().unwrap();
    assert_eq!(s.stream("lidar").unwrap().len(), 3);
    let actions = s.actions().unwrap();
    assert_eq!(actions.len(), 3);
    assert_eq!(actions.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(actions[0].kind, "div");
    assert_eq!(actions[0].input_json::<(i64, i64)>().unwrap(), (6, 3));
    assert_eq!(actions[0].output_json::<i64>().unwrap(), Ok(2));
    assert_eq!(actions[1].output, Err("1 / 0".to_string()));
    assert_eq!(s.action_count(), 3);
}

#[test]
fn auto_checkpoints_carry_snapshots_and_the_limit_ends_the_session() {
    let mut rec = recorder();
    let inputs: Vec<(i64, i64)> = (0..10).map(|i| (i, 1)).collect();
    record_divisions(&mut rec, &inputs, 4);
    let f = open(rec);
    let s = f.last_session().unwrap();
    let cps = s.checkpoints().unwrap();
    let with_state: Vec<(u64, u64)> = cps
        .iter()
        .filter(|c| !c.state.is_empty())
        .map(|c| (c.actions_before, u64::from_le_bytes(c.state[..8].try_into().unwrap())))
        .collect();
    // Checkpoints after actions 4 and 8 (and the final one at finish), each with the call count.
    assert!(with_state.starts_with(&[(4, 4), (8, 8)]), "{with_state:?}");

    let mut rec = recorder();
    let mut w = rec.start_session("limited").unwrap();
    w.configure_actions(ActionOptions::new().max_actions_per_session(3));
    for i in 0..3 {
        w.record_action(Action::new("put", vec![i], Ok(vec![]))).unwrap();
    }
    assert!(matches!(w.record_action(Action::new("put", vec![9], Ok(vec![]))), Err(Error::ActionLimitReached { max: 3 })));
    let mut called = false;
    assert!(matches!(
        w.record_call("put", &1, |_| {
            called = true;
            Ok::<u8, String>(1)
        }),
        Err(Error::ActionLimitReached { .. })
    ));
    assert!(!called, "the call is not made past the limit");
    let info = w.finish().unwrap();
    assert_eq!(info.frames, 3);
    let f = open(rec);
    assert_eq!(f.last_session().unwrap().state(), recfile::SessionState::Finished);
    assert_eq!(f.last_session().unwrap().action_count(), 3);
}

#[test]
fn replay_detects_every_divergence_type() {
    let mut rec = recorder();
    record_divisions(&mut rec, &[(6, 3), (1, 0), (9, 2), (8, 4), (5, 5)], 100);
    let s = open(rec).last_session().unwrap();
    let identical = ReplayEngine::new(s.clone()).run(divide).unwrap();
    assert!(identical.is_identical());
    assert_eq!((identical.replayed, identical.matched), (5, 5));
    assert_eq!(identical.match_rate(), 1.0);

    // New code: 1/0 now succeeds, 9/2 rounds up, 8/4 fails.
    let changed = |a: &Action| -> Result<Vec<u8>, String> {
        let (x, y): (i64, i64) = a.input_json().map_err(|e| e.to_string())?;
        match (x, y) {
            (1, 0) => Ok(b"0".to_vec()),
            (9, 2) => Ok(b"5".to_vec()),
            (8, 4) => Err("overflow".into()),
            _ => Ok(serde_json::to_vec(&(x / y)).unwrap()),
        }
    };
    let r = ReplayEngine::new(s.clone()).run(changed).unwrap();
    let types: Vec<(u64, DivergenceType)> = r
        .divergences()
        .map(|d| match &d.status {
            ActionStatus::Diverged { divergence, .. } => (d.seq, *divergence),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(types, vec![(1, DivergenceType::ErrorVsSuccess), (2, DivergenceType::OutputMismatch), (3, DivergenceType::SuccessVsError)]);
    assert_eq!((r.matched, r.diverged), (2, 3));
    assert!((r.match_rate() - 0.4).abs() < 1e-9);
    assert!(r.render().contains("recorded: 4") && r.render().contains("replayed: 5"), "{}", r.render());

    let first = ReplayEngine::new(s.clone()).stop_on_first_divergence(true).run(changed).unwrap();
    assert!(first.stopped_early);
    assert_eq!(first.replayed, 2);
    let dry = ReplayEngine::new(s.clone()).dry_run(true).run(|_| panic!("not called")).unwrap();
    assert_eq!((dry.skipped, dry.replayed), (5, 0));
    let stop = ReplayEngine::new(s.clone()).stop_at(2).run(divide).unwrap();
    assert_eq!(stop.replayed, 2);
    let kinds = ReplayEngine::new(s).only_kinds(&["other"]).run(divide).unwrap();
    assert_eq!(kinds.replayed, 0);
}

#[test]
fn custom_comparators_and_json_diffs() {
    let mut rec = recorder();
    let mut w = rec.start_session("json").unwrap();
    w.record_call("ask", "q", |_| Ok::<_, String>(serde_json::json!({"answer": "yes", "latency_ms": 12, "score": 0.5}))).unwrap().unwrap();
    w.finish().unwrap();
    let s = open(rec).last_session().unwrap();
    let new = |_: &Action| Ok(serde_json::to_vec(&serde_json::json!({"answer": "yes", "latency_ms": 40, "score": 0.5000001})).unwrap());
    let exact = ReplayEngine::new(s.clone()).run(new).unwrap();
    assert_eq!(exact.diverged, 1);
    let d = exact.divergences().next().unwrap();
    match &d.status {
        ActionStatus::Diverged { diff: Some(diff), .. } => {
            assert!(diff.contains("-   \"latency_ms\": 12") && diff.contains("+   \"latency_ms\": 40"), "{diff}")
        }
        other => panic!("{other:?}"),
    }
    let ignoring =
        ReplayEngine::new(s.clone()).compare_with(recfile::session::comparators::json_ignoring(&["latency_ms", "score"])).run(new).unwrap();
    assert!(ignoring.is_identical());
    let tolerant = ReplayEngine::new(s).compare_with(recfile::session::comparators::json_with_tolerance(1e-3)).run(new).unwrap();
    assert_eq!(tolerant.diverged, 1, "latency differs by more than the tolerance");
}

#[test]
fn replay_from_a_checkpoint_restores_state_and_checks_it() {
    let mut rec = recorder();
    let inputs: Vec<(i64, i64)> = (1..=10).map(|i| (i * 10, i)).collect();
    record_divisions(&mut rec, &inputs, 3);
    let s = open(rec).last_session().unwrap();
    let cp2 = s.checkpoints().unwrap().into_iter().find(|c| c.number == 2).unwrap();
    assert_eq!(cp2.actions_before, 6);
    // The new module counts calls too; restoring sets the count.
    let count = Arc::new(Mutex::new(0u64));
    let (c_restore, c_run, c_snap) = (count.clone(), count.clone(), count.clone());
    let report = ReplayEngine::new(s.clone())
        .from_checkpoint(2, move |state| {
            *c_restore.lock().unwrap() = u64::from_le_bytes(state.try_into().map_err(|_| "bad state")?);
            Ok(())
        })
        .check_state_with(move || c_snap.lock().unwrap().to_le_bytes().to_vec())
        .run(move |a| {
            *c_run.lock().unwrap() += 1;
            divide(a)
        })
        .unwrap();
    assert_eq!(report.from_checkpoint, Some(2));
    assert_eq!(report.replayed, 4, "actions 6..10");
    assert_eq!(report.results.iter().filter(|r| r.kind.starts_with("checkpoint")).count(), 1, "checkpoint 3 after action 9 is checked");
    assert!(report.is_identical(), "{}", report.render());
    assert_eq!(*count.lock().unwrap(), 10);

    // A module whose state drifts: the state check diverges.
    let r = ReplayEngine::new(s).check_state_with(|| 99u64.to_le_bytes().to_vec()).run(divide).unwrap();
    assert!(r.state_mismatches >= 3);
    assert!(r.results.iter().any(|x| matches!(x.status, ActionStatus::Diverged { divergence: DivergenceType::StateMismatch, .. })));
}

#[test]
fn comparing_sessions_with_inserted_and_removed_actions() {
    let act = |seq: u64, kind: &str, input: &str, output: &str| Action {
        seq,
        output: Ok(output.as_bytes().to_vec()),
        ..Action::new(kind, input.as_bytes().to_vec(), Ok(vec![]))
    };
    let a = vec![
        act(0, "find", "a", "1"),
        act(1, "find", "b", "2"),
        act(2, "ask", "c", "3"),
        act(3, "put", "d", "4"),
        act(4, "find", "e", "5"),
    ];
    // B: inserted "x" after the first, removed "put d", changed the output of "ask c" and the input of the last find.
    let b = vec![
        act(0, "find", "a", "1"),
        act(1, "tool_call", "x", "9"),
        act(2, "find", "b", "2"),
        act(3, "ask", "c", "33"),
        act(4, "find", "E", "5"),
    ];
    let r = compare_actions(&a, &b);
    let got: Vec<(ComparisonStatus, Option<u64>, Option<u64>)> = r.entries.iter().map(|e| (e.status, e.seq_a, e.seq_b)).collect();
    use ComparisonStatus::*;
    assert_eq!(
        got,
        vec![
            (Matching, Some(0), Some(0)),
            (OnlyInB, None, Some(1)),
            (Matching, Some(1), Some(2)),
            (Differing, Some(2), Some(3)),
            (OnlyInA, Some(3), None),
            (Differing, Some(4), Some(4)),
        ]
    );
    assert_eq!((r.summary.matching, r.summary.differing, r.summary.only_in_a, r.summary.only_in_b), (2, 2, 1, 1));
    assert!(!r.is_identical());
    assert_eq!(compare_actions(&a, &b), r, "deterministic");
    assert!(compare_actions(&a, &a).is_identical());
}

#[test]
fn interrupted_sessions_replay_up_to_their_last_intact_action_and_large_payloads_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.rec");
    let mut rec = RecorderOptions::new().checkpoint_every_frames(1000).create(&path).unwrap();
    let mut w = rec.start_session("crashy").unwrap();
    w.configure_actions(ActionOptions::new().auto_checkpoint_interval(5));
    let big = vec![0xABu8; 3 << 20];
    for i in 0..12u8 {
        w.record_action(Action::new("blob", vec![i], Ok(if i == 2 { big.clone() } else { vec![i] }))).unwrap();
    }
    w.abandon();
    drop(rec);
    let f = RecFile::open(&path).unwrap();
    let s: Session = f.last_session().unwrap();
    assert_eq!(s.state(), recfile::SessionState::Interrupted);
    let actions = s.actions().unwrap();
    assert_eq!(actions.len(), 10, "actions up to the last checkpoint");
    assert_eq!(actions[2].output.as_ref().unwrap().len(), 3 << 20);
    let r = ReplayEngine::new(s).run(|a| a.output.clone()).unwrap();
    assert_eq!((r.replayed, r.matched), (10, 10));
    // Non-UTF-8 previews never panic.
    let r2 = ReplayEngine::new(f.last_session().unwrap()).run(|_| Ok(vec![0xff, 0xfe, 0x00])).unwrap();
    assert_eq!(r2.diverged, 10);
    let _ = r2.render();
    let same = compare_sessions(&f.last_session().unwrap(), &f.last_session().unwrap()).unwrap();
    assert!(same.is_identical());
}
