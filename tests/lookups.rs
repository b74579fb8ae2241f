//! Lookups checked against a brute-force model on random data.

use proptest::prelude::*;
use recfile::{RecFile, Recorder, RecorderOptions, Timestamp};
use std::time::Duration;

/// A frame of the model: (timestamp, stream, seq).
type ModelFrame = (i64, usize, u64);

fn record(frames: &[(i64, usize)], streams: usize, checkpoint_every: u64) -> (RecFile, Vec<ModelFrame>) {
    let storage = Box::new(recfile::storage::MemStorage::default());
    let mut rec =
        Recorder::init_storage(storage, RecorderOptions::new().checkpoint_every_frames(checkpoint_every).checkpoint_every(Duration::ZERO))
            .unwrap();
    let mut s = rec.start_session("p").unwrap();
    let ids: Vec<_> = (0..streams).map(|i| s.add_stream(&format!("s{i}"), "raw").unwrap()).collect();
    let mut seqs = vec![0u64; streams];
    let mut model = Vec::new();
    for &(t, st) in frames {
        s.write(ids[st], Timestamp::from_nanos(t), &t.to_le_bytes()).unwrap();
        model.push((t, st, seqs[st]));
        seqs[st] += 1;
    }
    s.finish().unwrap();
    let bytes = rec.into_storage().unwrap().read_all().unwrap();
    (RecFile::from_bytes(bytes).unwrap(), model)
}

/// The model's answer for closest: smallest distance, then smallest timestamp, then arrival.
fn model_closest(m: &[ModelFrame], t: i64, tol: Option<u64>) -> Option<ModelFrame> {
    let best = m.iter().enumerate().min_by_key(|(i, f)| (f.0.abs_diff(t), f.0, *i)).map(|(_, f)| *f)?;
    tol.is_none_or(|tol| best.0.abs_diff(t) <= tol).then_some(best)
}

fn key(f: &recfile::Frame) -> (i64, String, u64) {
    (f.timestamp().as_nanos(), f.stream().to_string(), f.seq())
}

fn mkey(m: ModelFrame) -> (i64, String, u64) {
    (m.0, format!("s{}", m.1), m.2)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn single_stream_lookups_match_brute_force(
        ts in prop::collection::vec(-50i64..50, 0..200),
        monotonic in any::<bool>(),
        every in 1u64..40,
        queries in prop::collection::vec((-60i64..60, prop::option::of(0u64..10)), 1..30),
    ) {
        let mut ts = ts;
        if monotonic { ts.sort(); }
        let frames: Vec<(i64, usize)> = ts.iter().map(|&t| (t, 0)).collect();
        let (file, model) = record(&frames, 1, every);
        let r = file.last_session().unwrap().stream("s0").unwrap();
        prop_assert_eq!(r.len(), model.len() as u64);
        let mut sorted: Vec<(usize, ModelFrame)> = model.iter().copied().enumerate().collect();
        sorted.sort_by_key(|(i, f)| (f.0, *i));
        let got: Vec<_> = r.iterate().map(|f| key(&f.unwrap())).collect();
        let want: Vec<_> = sorted.iter().map(|(_, f)| mkey(*f)).collect();
        prop_assert_eq!(&got, &want);
        for (i, (_, f)) in sorted.iter().enumerate() {
            prop_assert_eq!(key(&r.load(i as u64).unwrap()), mkey(*f));
        }
        for &(t, tol) in &queries {
            let got = r.find_closest(Timestamp::from_nanos(t), tol.map(Duration::from_nanos)).map(|f| key(&f));
            prop_assert_eq!(got, model_closest(&model, t, tol).map(mkey), "closest to {}", t);
            let before = sorted.iter().rev().find(|(_, f)| f.0 <= t).map(|(_, f)| mkey(*f));
            prop_assert_eq!(r.find_before(Timestamp::from_nanos(t)).map(|f| key(&f)), before, "before {}", t);
            let after = sorted.iter().find(|(_, f)| f.0 >= t).map(|(_, f)| mkey(*f));
            prop_assert_eq!(r.find_after(Timestamp::from_nanos(t)).map(|f| key(&f)), after, "after {}", t);
        }
        prop_assert_eq!(r.first_timestamp().map(|t| t.as_nanos()), sorted.first().map(|(_, f)| f.0));
        prop_assert_eq!(r.last_timestamp().map(|t| t.as_nanos()), sorted.last().map(|(_, f)| f.0));
        // Walks of a range, owned and borrowed, stop before its end wherever it falls (inside
        // a run, an interval or neither) and start at its first frame.
        for &(t, width) in &queries {
            let (from, to) = (t, t + width.map_or(17, |w| w as i64 * 3));
            let want: Vec<_> = sorted.iter().filter(|(_, f)| (from..to).contains(&f.0)).map(|(_, f)| mkey(*f)).collect();
            let (from_ts, to_ts) = (Timestamp::from_nanos(from), Some(Timestamp::from_nanos(to)));
            let owned: Vec<_> = r.iterate_range(from_ts, to_ts).map(|f| key(&f.unwrap())).collect();
            prop_assert_eq!(&owned, &want, "iterate_range [{}, {})", from, to);
            let borrowed: Vec<_> = r.scan_range(from_ts, to_ts).map(|f| key(&f.unwrap().to_frame())).collect();
            prop_assert_eq!(&borrowed, &want, "scan_range [{}, {})", from, to);
            let open_ended: Vec<_> = r.scan_range(from_ts, None).map(|f| key(&f.unwrap().to_frame())).collect();
            let want_open: Vec<_> = sorted.iter().filter(|(_, f)| f.0 >= from).map(|(_, f)| mkey(*f)).collect();
            prop_assert_eq!(&open_ended, &want_open, "scan_range [{}, ..)", from);
        }
    }

    #[test]
    fn merged_streams_match_brute_force(
        frames in prop::collection::vec((-100i64..100, 0usize..3), 0..150),
        every in 1u64..50,
        queries in prop::collection::vec(-120i64..120, 1..20),
    ) {
        let (file, model) = record(&frames, 3, every);
        let sess = file.last_session().unwrap();
        let r = sess.replay(&[]).unwrap();
        // Merge order: timestamp, then arrival (file order = model order).
        let mut sorted: Vec<(usize, ModelFrame)> = model.iter().copied().enumerate().collect();
        sorted.sort_by_key(|(i, f)| (f.0, *i));
        let got: Vec<_> = r.iterate().map(|f| key(&f.unwrap())).collect();
        prop_assert_eq!(&got, &sorted.iter().map(|(_, f)| mkey(*f)).collect::<Vec<_>>());
        // The borrowed walk gives the same frames with the same payloads, whole or by range.
        let scanned: Vec<_> = r.scan().map(|f| {
            let f = f.unwrap();
            assert_eq!(f.data(), &f.timestamp().as_nanos().to_le_bytes()[..]);
            key(&f.to_frame())
        }).collect();
        prop_assert_eq!(&scanned, &got);
        let (from, to) = (Timestamp::from_nanos(-20), Timestamp::from_nanos(40));
        let ranged: Vec<_> = r.scan_range(from, Some(to)).map(|f| f.unwrap().to_frame()).map(|f| key(&f)).collect();
        let want_range: Vec<_> = r.iterate_range(from, Some(to)).map(|f| key(&f.unwrap())).collect();
        prop_assert_eq!(&ranged, &want_range);
        prop_assert!(ranged.iter().all(|k| (-20..40).contains(&k.0)));
        if !sorted.is_empty() {
            let i = sorted.len() / 2;
            prop_assert_eq!(key(&r.load(i as u64).unwrap()), mkey(sorted[i].1));
        }
        for t in queries {
            prop_assert_eq!(r.find_closest(Timestamp::from_nanos(t), None).map(|f| key(&f)), model_closest(&model, t, None).map(mkey));
        }
        // Two streams selected out of three.
        let two = sess.replay(&["s2", "s0"]).unwrap();
        let want: Vec<_> = sorted.iter().filter(|(_, f)| f.1 != 1).map(|(_, f)| mkey(*f)).collect();
        prop_assert_eq!(two.iterate().map(|f| key(&f.unwrap())).collect::<Vec<_>>(), want);
    }
}

#[test]
fn extreme_timestamps_do_not_overflow() {
    let frames = [(i64::MIN, 0), (i64::MAX, 0), (0, 0)];
    let (file, _) = record(&frames, 1, 2);
    let r = file.last_session().unwrap().stream("s0").unwrap();
    assert_eq!(r.find_closest(Timestamp::from_nanos(i64::MAX - 1), None).unwrap().timestamp().as_nanos(), i64::MAX);
    assert_eq!(r.find_closest(Timestamp::MIN, None).unwrap().timestamp(), Timestamp::MIN);
    assert_eq!(r.find_closest(Timestamp::from_nanos(-5), Some(Duration::from_nanos(5))).unwrap().timestamp().as_nanos(), 0);
    assert!(r.find_closest_seek(Duration::from_secs(1), None).is_some());
}

#[test]
fn lookups_over_many_directory_chunks_and_uneven_time_match_brute_force() {
    // Bursts, long gaps and repeated timestamps, in runs of 1 to 7 frames: the run directory
    // spans many sample chunks, and interpolating within a chunk or a run guesses badly.
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for every in [1u64, 3, 7] {
        let mut t = -1_000_000i64;
        let mut ts = Vec::new();
        for _ in 0..3000 {
            t += match next() % 10 {
                0 => (next() % 1_000_000) as i64,
                1..=3 => 0,
                _ => (next() % 50) as i64,
            };
            ts.push(t);
        }
        let frames: Vec<(i64, usize)> = ts.iter().map(|&t| (t, 0)).collect();
        let (file, model) = record(&frames, 1, every);
        let r = file.last_session().unwrap().stream("s0").unwrap();
        let mut probes: Vec<i64> = ts.iter().flat_map(|&t| [t - 1, t, t + 1]).collect();
        probes.extend((0..2000).map(|_| -1_100_000 + (next() % (t as u64 + 1_200_000)) as i64));
        for q in probes {
            let got = r.find_closest(Timestamp::from_nanos(q), None).map(|f| key(&f));
            assert_eq!(got, model_closest(&model, q, None).map(mkey), "every {every}: closest to {q}");
            let before = model.iter().filter(|f| f.0 <= q).max_by_key(|f| (f.0, f.2)).map(|f| mkey(*f));
            assert_eq!(r.find_before(Timestamp::from_nanos(q)).map(|f| key(&f)), before, "every {every}: before {q}");
            let after = model.iter().filter(|f| f.0 >= q).min_by_key(|f| (f.0, f.2)).map(|f| mkey(*f));
            assert_eq!(r.find_after(Timestamp::from_nanos(q)).map(|f| key(&f)), after, "every {every}: after {q}");
        }
    }
}
