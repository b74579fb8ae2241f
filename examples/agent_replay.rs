//! Record 100 calls of a small deterministic "module" (a text search over a few documents),
//! change the module, replay the recorded inputs against the new version, and print where its
//! behaviour diverged. The replayed run is recorded as a second session and compared with the
//! first.
//!
//! Run with `cargo run --example agent_replay [FILE]`.

use recfile::{compare_sessions, ActionOptions, RecFile, Recorder, ReplayEngine};

const DOCS: [&str; 6] = [
    "The robot drives through the office and maps the corridor",
    "Lidar scans arrive at ten hertz while the camera runs at thirty",
    "Odometry drifts slowly; loop closure fixes the map",
    "The agent asks the planner for a path to the charging dock",
    "Battery low: return to dock before the next mission",
    "Mission log: corridor mapped, dock reached, camera calibrated",
];

/// Version 1: documents containing every query word (case-sensitive), best first by count.
fn search_v1(query: &str) -> Vec<usize> {
    let words: Vec<&str> = query.split_whitespace().collect();
    let mut hits: Vec<(usize, usize)> = DOCS
        .iter()
        .enumerate()
        .filter(|(_, d)| words.iter().all(|w| d.contains(w)))
        .map(|(i, d)| (i, words.iter().map(|w| d.matches(w).count()).sum()))
        .collect();
    hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.into_iter().map(|(i, _)| i).collect()
}

/// Version 2: case-insensitive, and an empty query is now an error.
fn search_v2(query: &str) -> Result<Vec<usize>, String> {
    if query.trim().is_empty() {
        return Err("empty query".into());
    }
    Ok(search_v1(&query.to_lowercase()).into_iter().chain(search_v1(query)).fold(Vec::new(), |mut acc, i| {
        if !acc.contains(&i) {
            acc.push(i);
        }
        acc
    }))
}

fn main() -> recfile::Result<()> {
    let path = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("agent_replay.rec"));
    let _ = std::fs::remove_file(&path);
    let queries = ["dock", "camera", "The", "map", "Mission", "corridor", "", "loop closure", "robot", "ten hertz"];

    // 1. Record 100 calls of version 1, with a checkpoint (and a state snapshot) every 25.
    let mut recorder = Recorder::create(&path)?;
    let mut session = recorder.start_session("search-v1")?;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = calls.clone();
    session.configure_actions(
        ActionOptions::new()
            .auto_checkpoint_interval(25)
            .snapshot(move || c.load(std::sync::atomic::Ordering::Relaxed).to_le_bytes().to_vec()),
    );
    for i in 0..100 {
        let q = queries[i % queries.len()];
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        session.record_call("find", &q, |q| Ok::<_, String>(search_v1(q)))?.ok();
    }
    session.finish()?;

    // 2. Replay the inputs against version 2, recording the replay as a second session.
    let original = RecFile::open(&path)?.last_session().expect("recorded session");
    let mut replayed = recorder.start_session("search-v2-replay")?;
    let report = ReplayEngine::new(original.clone()).run_and_record(
        |action| {
            let q: String = action.input_json().map_err(|e| e.to_string())?;
            search_v2(&q).map(|r| serde_json::to_vec(&r).expect("json"))
        },
        &mut replayed,
    )?;
    replayed.finish()?;
    drop(recorder);
    println!("== divergence report (v1 recorded, v2 replayed)");
    print!("{}", report.render());

    // 3. Compare the two sessions side by side.
    let file = RecFile::open(&path)?;
    let comparison = compare_sessions(&file.session(0).expect("v1"), &file.session(1).expect("v2"))?;
    println!("\n== session comparison: {}", if comparison.is_identical() { "identical" } else { "different" });
    let s = comparison.summary;
    println!("{} matching, {} differing, {} only in v1, {} only in v2", s.matching, s.differing, s.only_in_a, s.only_in_b);
    println!("\nfile: {} (try `rec sessions`, `rec actions`, `rec diff` on it)", path.display());
    Ok(())
}
