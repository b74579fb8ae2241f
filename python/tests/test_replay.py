"""Replays against a brute-force model: indexing, lookups, windows, loops, realtime, stream()."""

from __future__ import annotations

import bisect
import random
import threading
import time
from pathlib import Path

import pytest

import recfile
from conftest import BASE_NS, exit_code_of_child

Model = dict[str, list[tuple[int, bytes]]]


def _replay(path: Path, name: str) -> recfile.Replay:
    f = recfile.open(path)
    s = f.last_session
    assert s is not None
    return s.stream(name)


def test_len_index_slices(two_streams: tuple[Path, Model]) -> None:
    path, model = two_streams
    for name, frames in model.items():
        r = _replay(path, name)
        assert len(r) == len(frames) and bool(r)
        # Every frame, by positive and negative index.
        for i, (t, d) in enumerate(frames):
            assert (r[i].ts_ns, r[i].bytes()) == (t, d)
            assert r[i - len(frames)].ts_ns == t
        with pytest.raises(IndexError):
            r[len(frames)]
        with pytest.raises(IndexError):
            r[-len(frames) - 1]
        assert [fr.ts_ns for fr in r[5:50:7]] == [t for t, _ in frames[5:50:7]]
        assert [fr.ts_ns for fr in r[::-1]][:3] == [t for t, _ in frames[::-1][:3]]
        assert r.first().ts_ns == frames[0][0] and r.last().ts_ns == frames[-1][0]  # type: ignore[union-attr]
        assert r.first_timestamp_ns() == frames[0][0]
        assert r.first_timestamp() == pytest.approx(frames[0][0] / 1e9)
        assert r.duration() == pytest.approx((frames[-1][0] - frames[0][0]) / 1e9)


def test_merged_iteration_is_in_timestamp_order(two_streams: tuple[Path, Model]) -> None:
    path, model = two_streams
    f = recfile.open(path)
    s = f.last_session
    assert s is not None
    merged = s.replay()
    got = [(fr.ts_ns, fr.stream, fr.bytes()) for fr in merged]
    want = sorted(
        [(t, n, d) for n, fr in model.items() for t, d in fr],
        key=lambda x: x[0],
    )
    assert len(got) == len(want) == len(merged)
    assert [g[0] for g in got] == [w[0] for w in want]
    assert sorted(got) == sorted(want)
    assert s.replay(["b"]).streams == ["b"]


def _closest_model(ts: list[int], t: int) -> set[int]:
    """Positions of frames at the minimal distance from t."""
    best = min(abs(x - t) for x in ts)
    return {x for x in ts if abs(x - t) == best}


def test_lookups_match_brute_force(two_streams: tuple[Path, Model]) -> None:
    path, model = two_streams
    rng = random.Random(3)
    for name, frames in model.items():
        r = _replay(path, name)
        ts = [t for t, _ in frames]
        lo, hi = ts[0] - 5_000_000, ts[-1] + 5_000_000
        probes = [rng.randint(lo, hi) for _ in range(400)] + ts[:50] + [lo, hi]
        for t in probes:
            got = r.find_closest(ts_ns=t)
            assert got is not None and got.ts_ns in _closest_model(ts, t)
            before = r.find_before(ts_ns=t)
            i = bisect.bisect_right(ts, t)
            assert (before.ts_ns if before else None) == (ts[i - 1] if i > 0 else None)
            after = r.find_after(ts_ns=t)
            j = bisect.bisect_left(ts, t)
            assert (after.ts_ns if after else None) == (ts[j] if j < len(ts) else None)
            # Tolerance: None beyond it.
            d = min(abs(x - t) for x in ts)
            tol_ns = 2_000_000
            hit = r.find_closest(ts_ns=t, tolerance=tol_ns / 1e9)
            assert (hit is not None) == (d <= tol_ns)
        # Seconds as floats work the same as ns.
        mid = ts[len(ts) // 2]
        assert r.find_closest(mid / 1e9 + 1e-7, tolerance=0.001).ts_ns in _closest_model(ts, mid)  # type: ignore[union-attr]
        seek = r.find_closest_seek(0.5)
        assert seek is not None and seek.ts_ns in _closest_model(ts, ts[0] + 500_000_000)
        with pytest.raises(TypeError):
            r.find_closest()


def _window_model(ts: list[int], start: int, end: int | None) -> list[int]:
    return [t for t in ts if t >= start and (end is None or t <= end)]


def test_windows_match_the_model(two_streams: tuple[Path, Model]) -> None:
    path, model = two_streams
    r = _replay(path, "a")
    ts = [t for t, _ in model["a"]]
    first = ts[0]
    for seek, duration in [(None, None), (0.5, None), (0.25, 0.5), (None, 0.1), (1.999, 10.0), (5.0, None)]:
        start = first + int((seek or 0) * 1e9)
        end = start + int(duration * 1e9) if duration is not None else None
        want = _window_model(ts, start, end)
        got = [fr.ts_ns for fr in r.iterate(seek=seek, duration=duration)]
        if end is not None and want and want[-1] == end:
            # The end of a window is exclusive or inclusive: one frame at the boundary at most.
            assert got in (want, want[:-1])
        else:
            assert got == want, (seek, duration)
    from_ts = (first + 700_000_000) / 1e9
    assert [fr.ts_ns for fr in r.iterate(from_timestamp=from_ts)] == _window_model(ts, first + 700_000_000, None)
    # from_timestamp wins over seek, as in dimos.
    assert r.iterate(seek=1.5, from_timestamp=from_ts).__next__().ts_ns == first + 700_000_000
    with pytest.raises(ValueError):
        r.iterate(seek=-1.0)


def test_loops_repeat_recorded_timestamps(two_streams: tuple[Path, Model]) -> None:
    path, model = two_streams
    r = _replay(path, "b")
    ts = [t for t, _ in model["b"]]
    got = []
    for t, fr in r.iterate_ts(loop=True):
        got.append((t, fr.lap, fr.ts_ns))
        if len(got) == 3 * len(ts):
            break
    assert [g[1] for g in got] == [lap for lap in range(3) for _ in ts]
    assert [g[2] for g in got] == ts * 3
    assert all(g[0] == pytest.approx(g[2] / 1e9) for g in got)
    # iterate_duration: seconds since the first frame, again from 0 on each lap.
    durations = []
    for since, fr in r.iterate_duration(loop=True):
        durations.append(since)
        if len(durations) == 2 * len(ts):
            break
    assert durations[: len(ts)] == durations[len(ts):]
    assert durations[0] == 0.0 and durations[len(ts) - 1] == pytest.approx((ts[-1] - ts[0]) / 1e9)


def _write_ticks(path: Path, n: int, period_ns: int) -> None:
    with recfile.Recorder(path) as rec, rec.session("ticks") as s:
        st = s.add_stream("tick")
        for i in range(n):
            s.write(st, i.to_bytes(4, "little"), ts_ns=BASE_NS + i * period_ns)


def test_realtime_keeps_the_schedule(tmp_path: Path) -> None:
    path = tmp_path / "ticks.rec"
    _write_ticks(path, 21, 10_000_000)  # 200 ms of data
    r = _replay(path, "tick")
    t0 = time.monotonic()
    arrivals = []
    for fr in r.iterate_realtime(speed=2.0):
        arrivals.append((time.monotonic() - t0, fr.seq))
    assert [a[1] for a in arrivals] == list(range(21))
    # Frame k is due at k * 5 ms: never early (a small allowance for clock granularity).
    for elapsed, k in arrivals:
        assert elapsed >= k * 0.005 - 0.001
    assert arrivals[-1][0] >= 0.099


def test_realtime_loops_without_a_burst(tmp_path: Path) -> None:
    path = tmp_path / "loop.rec"
    _write_ticks(path, 5, 20_000_000)  # frames at 0, 20, 40, 60, 80 ms
    r = _replay(path, "tick")
    it = r.iterate_realtime(speed=4.0, loop=True)
    t0 = time.monotonic()
    times = []
    for fr in it:
        times.append((time.monotonic() - t0, fr.lap, fr.seq))
        if len(times) == 12:
            it.stop()
    assert len(times) == 12
    # Each frame arrives no earlier than its due time on one clock across laps: lap L, frame k
    # is due at (L × 100 ms + k × 20 ms) / 4. A burst at the lap boundary would deliver lap 1
    # early; being late (a busy machine) is allowed.
    for elapsed, lap, seq in times:
        assert elapsed >= (lap * 0.1 + seq * 0.02) / 4 - 0.001, (elapsed, lap, seq)
    assert [(lap, seq) for _, lap, seq in times] == [(i // 5, i % 5) for i in range(12)]


def test_realtime_arguments(tmp_path: Path) -> None:
    path = tmp_path / "args.rec"
    _write_ticks(path, 3, 1_000_000)
    r = _replay(path, "tick")
    with pytest.raises(ValueError):
        r.iterate_realtime(speed=0)
    with pytest.raises(ValueError):
        r.iterate_realtime(speed=float("nan"))
    with pytest.raises(ValueError, match="late"):
        r.iterate_realtime(late="sometimes")  # type: ignore[arg-type]
    for late in ("catch_up", "reanchor", "drop"):
        assert len(list(r.iterate_realtime(speed=100.0, late=late))) >= 1  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        r.stream(speed=-1)


def test_realtime_wait_releases_the_gil(tmp_path: Path) -> None:
    path = tmp_path / "gil.rec"
    _write_ticks(path, 2, 300_000_000)
    r = _replay(path, "tick")
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    t = threading.Thread(target=spin)
    t.start()
    list(r.iterate_realtime())
    stop.set()
    t.join()
    # While the main thread waited ~300 ms, the other thread ran Python code.
    assert counter > 1000


def test_stream_observable_emits_in_order_and_completes(tmp_path: Path) -> None:
    path = tmp_path / "obs.rec"
    _write_ticks(path, 50, 1_000_000)
    r = _replay(path, "tick")
    got: list[int] = []
    done = threading.Event()
    threads: set[str] = set()

    def on_next(fr: recfile.Frame) -> None:
        got.append(fr.seq)
        threads.add(threading.current_thread().name)

    r.stream(speed=5.0).subscribe(on_next=on_next, on_completed=done.set)
    assert done.wait(5)
    assert got == list(range(50))
    assert len(threads) == 1  # one timer thread, not one per frame


def test_stream_dispose_stops(tmp_path: Path) -> None:
    path = tmp_path / "dispose.rec"
    _write_ticks(path, 1000, 10_000_000)  # 10 s of data
    r = _replay(path, "tick")
    got: list[int] = []
    t0 = time.monotonic()
    d = r.stream(speed=1.0, loop=True).subscribe(on_next=lambda fr: got.append(fr.seq))
    time.sleep(0.12)
    d.dispose()
    elapsed = time.monotonic() - t0
    n = len(got)
    time.sleep(0.1)
    # Frames every 10 ms: about elapsed / 10 ms of them (a busy machine sleeps longer), and at
    # most one more once disposed.
    assert 5 <= n <= elapsed * 100 + 3 and len(got) <= n + 1, (n, elapsed)


def test_realtime_statistics(tmp_path: Path) -> None:
    path = tmp_path / "stats.rec"
    _write_ticks(path, 20, 1_000_000)
    it = _replay(path, "tick").iterate_realtime(speed=1.0)
    assert len(list(it)) == 20
    stats = it.stats()
    assert stats["delivered"] == 20


_EXIT_WHILE_STREAMING = """
import sys, time, recfile
def start():
    f = recfile.open(sys.argv[1])
    r = f.last_session.stream("tick")
    got = []
    r.stream(speed=50.0, loop=True).subscribe(on_next=lambda fr: got.append(fr.data))
    return got
got = start()  # the file, session and replay objects are gone: the stream thread holds the map
time.sleep(0.05)
assert got
"""


def test_exiting_while_a_stream_thread_holds_the_map_is_clean(tmp_path: Path) -> None:
    """The last view of a file's map must not be dropped by a daemon thread while the
    interpreter finalizes (CPython stops such a thread in a way that aborts the process)."""
    import subprocess
    import sys

    path = tmp_path / "exit.rec"
    _write_ticks(path, 50, 1_000_000)
    for _ in range(8):
        r = subprocess.run([sys.executable, "-c", _EXIT_WHILE_STREAMING, str(path)], capture_output=True, text=True)
        assert r.returncode == 0, (r.returncode, r.stderr[-500:])


def test_a_long_walk_goes_on_in_a_child_forked_mid_walk(tmp_path: Path) -> None:
    """A walk of more than 2 MiB checks its intervals ahead on a second thread. A child forked
    mid-walk has no such thread: it finishes the walk on its own, with the same frames, and so
    does the parent."""
    import os

    path = tmp_path / "long.rec"
    frames = [(BASE_NS + i * 1_000_000, i.to_bytes(4, "little") * 300) for i in range(3000)]
    with recfile.Recorder(path, checkpoint_every_frames=40) as rec, rec.session("long") as s:
        cam = s.add_stream("camera", encoding="raw")
        for t, d in frames:
            s.write(cam, d, ts_ns=t)
    r = _replay(path, "camera")
    walk = iter(r)
    head = [(fr.ts_ns, fr.bytes()) for _, fr in zip(range(500), walk)]
    pid = os.fork()
    if pid == 0:
        rest = [(fr.ts_ns, fr.bytes()) for fr in walk]
        os._exit(0 if head + rest == frames else 3)
    rest = [(fr.ts_ns, fr.bytes()) for fr in walk]
    assert head + rest == frames
    assert exit_code_of_child(pid, "finishing its walk") == 0
