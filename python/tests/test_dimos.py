"""recfile.dimos runs code written for dimos' TimedSensorStorage / TimedSensorReplay."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import reactivex as rx
from reactivex import operators as ops

import recfile
from recfile.dimos import TimedSensorReplay, TimedSensorStorage, import_pickle_dir, resolve


@dataclass
class Msg:
    """A message with a timestamp, as dimos' sensor messages have."""

    ts: float
    value: int


@dataclass
class Wrapped:
    """A frame whose raw_msg is what gets stored."""

    ts: float
    raw_msg: dict


def test_resolve_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("run1/lidar", data_dir=tmp_path) == (tmp_path / "run1.rec", "lidar")
    assert resolve("fleet/run1/lidar", data_dir=tmp_path) == (tmp_path / "fleet" / "run1.rec", "lidar")
    monkeypatch.setenv("RECFILE_DATA_DIR", str(tmp_path / "env"))
    assert resolve("run1/video") == (tmp_path / "env" / "run1.rec", "video")
    monkeypatch.delenv("RECFILE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert resolve("run1/video") == (tmp_path / "run1.rec", "video")
    assert resolve(tmp_path / "x.rec", stream="imu") == (tmp_path / "x.rec", "imu")
    with pytest.raises(ValueError, match="dataset"):
        resolve("no_stream")


def test_storage_then_replay_roundtrip(tmp_path: Path) -> None:
    storage = TimedSensorStorage("run1/lidar", data_dir=tmp_path)
    assert storage.save_one(Msg(100.0, 0)) == 1
    assert storage.save(Msg(100.1, 1), Msg(100.2, 2)) == 3
    storage.save_one(Wrapped(100.3, {"raw": True}))
    storage.close()
    replay = TimedSensorReplay("run1/lidar", data_dir=tmp_path)
    items = list(replay.iterate())
    assert items[:3] == [Msg(100.0, 0), Msg(100.1, 1), Msg(100.2, 2)]
    assert items[3] == {"raw": True}  # raw_msg was stored
    assert [ts for ts, _ in replay.iterate_ts()] == [100.0, 100.1, 100.2, 100.3]
    assert replay.count() == 4 and len(replay) == 4
    assert replay.first() == Msg(100.0, 0) and replay.first_timestamp() == 100.0
    assert replay.find_closest(100.14) == Msg(100.1, 1)
    assert replay.find_closest(100.14, tolerance=0.01) is None
    assert replay.find_closest_seek(0.2) == Msg(100.2, 2)
    assert replay.load(2) == (100.2, Msg(100.2, 2))
    assert replay.load("001") == (100.1, Msg(100.1, 1)) and replay.load("003.pickle")[0] == 100.3
    assert replay.load(0, 1) == [(100.0, Msg(100.0, 0)), (100.1, Msg(100.1, 1))]
    durations = [d for d, _ in replay.iterate_duration()]
    assert durations == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert [m.value for _, m in replay.iterate_ts(seek=0.1, duration=0.1)][:1] == [1]


def test_autocast_both_ways(tmp_path: Path) -> None:
    with TimedSensorStorage("ac/odom", autocast=lambda m: {"v": m.value}, data_dir=tmp_path) as st:
        st.save_one(Msg(5.0, 7))
    replay = TimedSensorReplay("ac/odom", autocast=lambda d: d["v"] * 10, data_dir=tmp_path)
    assert list(replay.iterate()) == [70]


def test_frames_without_ts_get_the_current_time(tmp_path: Path) -> None:
    before = time.time()
    with TimedSensorStorage("now/cam", data_dir=tmp_path) as st:
        st.save_one(b"jpeg bytes")
        st.save_one({"ts": "not a number"})
    ts = [t for t, _ in TimedSensorReplay("now/cam", data_dir=tmp_path).iterate_ts()]
    assert all(before - 1 <= t <= time.time() + 1 for t in ts)


def test_several_storages_share_one_file_session_and_clock(tmp_path: Path) -> None:
    lidar = TimedSensorStorage("run2/lidar", data_dir=tmp_path)
    video = TimedSensorStorage("run2/video", data_dir=tmp_path)
    for i in range(10):
        lidar.save_one(Msg(200 + i * 0.1, i))
        video.save_one(Msg(200.05 + i * 0.1, -i))
    lidar.close()
    with pytest.raises(FileExistsError):
        TimedSensorStorage("run2/video", data_dir=tmp_path)  # still being recorded
    video.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run2.rec"]
    with recfile.open(tmp_path / "run2.rec") as f:
        (session,) = f.sessions
        assert session.state == "finished"
        assert [s.name for s in session.streams] == ["lidar", "video"]
        merged = [fr.stream for fr in session.replay()]
        assert merged == ["lidar", "video"] * 10


def test_refuses_a_stream_that_holds_frames(tmp_path: Path) -> None:
    with TimedSensorStorage("run3/lidar", data_dir=tmp_path) as st:
        st.save_one(Msg(1.0, 1))
    size = (tmp_path / "run3.rec").stat().st_size
    with pytest.raises(FileExistsError, match="lidar"):
        TimedSensorStorage("run3/lidar", data_dir=tmp_path)
    assert (tmp_path / "run3.rec").stat().st_size == size
    # Another stream of the same dataset is added as a new session.
    with TimedSensorStorage("run3/imu", data_dir=tmp_path) as st:
        st.save_one(Msg(2.0, 2))
    assert TimedSensorReplay("run3/lidar", data_dir=tmp_path).first() == Msg(1.0, 1)
    assert TimedSensorReplay("run3/imu", data_dir=tmp_path).first() == Msg(2.0, 2)
    with pytest.raises(KeyError, match="imu"):
        TimedSensorReplay("run3/missing", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        TimedSensorReplay("nothere/lidar", data_dir=tmp_path)


def _ticks(tmp_path: Path, name: str, n: int, period: float) -> TimedSensorReplay:
    with TimedSensorStorage(name, data_dir=tmp_path) as st:
        for i in range(n):
            st.save_one(Msg(1000 + i * period, i))
    return TimedSensorReplay(name, data_dir=tmp_path)


def test_loop_repeats_timestamps_and_realtime_has_no_burst(tmp_path: Path) -> None:
    replay = _ticks(tmp_path, "loop/t", 4, 0.02)
    out = []
    for ts, m in replay.iterate_ts(loop=True):
        out.append((ts, m.value))
        if len(out) == 8:
            break
    assert out[:4] == out[4:]
    t0 = time.monotonic()
    times = []
    for m in replay.iterate_realtime(speed=2.0, loop=True):
        times.append(time.monotonic() - t0)
        if len(times) == 8:
            break
    # Frame i is due at i × 10 ms (20 ms apart at 2×), laps included: lap 1 starts one lap
    # period (4 frames) after lap 0, not in a burst. Late is allowed, early is not.
    for i, t in enumerate(times):
        assert t >= i * 0.01 - 0.001, (i, t)


def test_stream_observable_like_replay_connection(tmp_path: Path) -> None:
    replay = _ticks(tmp_path, "obs/lidar", 30, 0.01)
    got: list[int] = []
    done = threading.Event()
    replay.stream(speed=4.0, seek=0.1).subscribe(on_next=lambda m: got.append(m.value), on_completed=done.set)
    assert done.wait(5)
    assert got == list(range(10, 30))
    # The pipeline idiom: map, take, and dispose.
    first_three = replay.stream(speed=10.0, loop=True).pipe(ops.map(lambda m: m.value), ops.take(35), ops.to_list()).run()
    assert first_three == (list(range(30)) + list(range(5)))


def test_save_stream_and_consume_stream(tmp_path: Path) -> None:
    storage = TimedSensorStorage("rx/imu", data_dir=tmp_path)
    counts = rx.from_iterable([Msg(1 + i, i) for i in range(5)]).pipe(ops.flat_map(lambda m: storage.save_stream(rx.just(m)))).pipe(ops.to_list()).run()
    # flat_map merges the inner streams as they complete: the order of the counts is not promised.
    assert sorted(counts) == [1, 2, 3, 4, 5]
    storage.consume_stream(rx.from_iterable([Msg(10 + i, i) for i in range(3)]))
    assert storage.count() == 8
    storage.close()
    assert TimedSensorReplay("rx/imu", data_dir=tmp_path).count() == 8


_EXIT_WITHOUT_CLOSE = """
import sys, time
from recfile.dimos import TimedSensorStorage
st = TimedSensorStorage("exit/lidar", data_dir=sys.argv[1])
for i in range(100):
    st.save_one({"i": i})
if sys.argv[2] == "sigint":
    print("ready", flush=True)
    i = 100
    while True:
        st.save_one({"i": i}); i += 1
        time.sleep(0.001)
"""


def test_interpreter_exit_finishes_the_session(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", _EXIT_WITHOUT_CLOSE, str(tmp_path), "exit"], check=True)
    with recfile.open(tmp_path / "exit.rec") as f:
        s = f.last_session
        assert s is not None and s.state == "finished" and s.frames == 100


def test_sigint_finishes_the_session_with_every_frame(tmp_path: Path) -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", _EXIT_WITHOUT_CLOSE, str(tmp_path), "sigint"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=20)
    assert "KeyboardInterrupt" in err
    with recfile.open(tmp_path / "exit.rec") as f:
        s = f.last_session
        assert s is not None and s.state == "finished"
        values = [fr.value()["i"] for fr in s.stream("lidar")]
        assert values == list(range(len(values))) and len(values) > 100


class NotImportable:
    """Pickled in a legacy folder; made unimportable before the import."""

    def __init__(self, x: int) -> None:
        self.x = x


def _legacy_folder(tmp_path: Path, n: int, big: bool = False) -> Path:
    d = tmp_path / "legacy_lidar"
    d.mkdir()
    for i in range(n):
        payload = {"i": i, "blob": bytes(200_000) if big else b"x"}
        with open(d / f"{i:03d}.pickle", "wb") as f:
            pickle.dump((1700000000.0 + i * 0.1, payload), f)
    return d


def test_import_pickle_dir_in_file_number_order(tmp_path: Path) -> None:
    d = _legacy_folder(tmp_path, 12, big=True)
    (d / "notes.txt").write_text("ignored: not NNN.pickle")
    # File-number order, not name order: 1000 after 999 would sort before it as text.
    with open(d / "1000.pickle", "wb") as f:
        pickle.dump((1700000099.0, {"i": 1000, "blob": b""}), f)
    out = tmp_path / "imported.rec"
    assert import_pickle_dir(d, out) == 13
    replay = TimedSensorReplay(out, stream="legacy_lidar")
    items = list(replay.iterate_ts())
    assert [m["i"] for _, m in items] == list(range(12)) + [1000]
    assert items[3][0] == pytest.approx(1700000000.3) and len(items[0][1]["blob"]) == 200_000


def test_import_without_the_pickled_classes(tmp_path: Path) -> None:
    """The data of a legacy frame is carried over without unpickling it: the classes need not
    be importable where the import runs."""
    d = tmp_path / "objs"
    d.mkdir()
    code = (
        "import pickle, sys\n"
        "class Point:\n"
        "    def __init__(self, x): self.x = x\n"
        "import __main__; __main__.Point = Point; Point.__module__ = 'legacy_msgs'\n"
        "import types; m = types.ModuleType('legacy_msgs'); m.Point = Point; sys.modules['legacy_msgs'] = m\n"
        "for i in range(3):\n"
        "    pickle.dump((50.0 + i, [Point(i)] * 2), open(f'{sys.argv[1]}/{i:03d}.pickle', 'wb'))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(d)], check=True)
    out = tmp_path / "objs.rec"
    r = subprocess.run([sys.executable, "-m", "recfile", "import-dimos", str(d), str(out), "--stream", "points"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "imported 3 frames" in r.stdout
    # Reading them back where the class exists again.
    check = (
        "import sys, types\n"
        "class Point:\n"
        "    def __init__(self, x): self.x = x\n"
        "m = types.ModuleType('legacy_msgs'); m.Point = Point; sys.modules['legacy_msgs'] = m\n"
        "from recfile.dimos import TimedSensorReplay\n"
        "r = TimedSensorReplay(sys.argv[1], stream='points')\n"
        "print([(ts, [p.x for p in v], v[0] is v[1]) for ts, v in r.iterate_ts()])\n"
    )
    shown = subprocess.run([sys.executable, "-c", check, str(out)], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[(50.0, [0, 0], True), (51.0, [1, 1], True), (52.0, [2, 2], True)]"


def test_import_errors_name_the_file(tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "000.pickle").write_bytes(b"not a pickle")
    r = subprocess.run([sys.executable, "-m", "recfile", "import-dimos", str(d), str(tmp_path / "o.rec")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "000.pickle" in r.stderr
    r = subprocess.run([sys.executable, "-m", "recfile", "import-dimos", str(tmp_path / "nope"), str(tmp_path / "o.rec")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "not a directory" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="NNN.pickle"):
        import_pickle_dir(empty, tmp_path / "o2.rec")
    assert not os.path.exists(tmp_path / "o2.rec")
