"""Writing from Python and reading back: values, timestamps, encodings, errors."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

import recfile
from conftest import BASE_NS, exit_code_of_child


def test_roundtrip_exact_bytes_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "r.rec"
    with recfile.Recorder(path) as rec:
        with rec.session("s", metadata={"robot": "go2", "n": 3}) as s:
            st = s.add_stream("x")
            assert s.write(st, b"one", ts=1704067200.01) == 1
            assert s.write("x", bytearray(b"two"), ts=1704067201) == 2
            assert s.write(st, memoryview(b"three"), ts="1704067202.000000001") == 3
            assert s.write(st, b"", ts_ns=1704067203123456789) == 4
    with recfile.open(path) as f:
        (session,) = f.sessions
        assert session.name == "s" and session.state == "finished"
        assert session.metadata == {"robot": "go2", "n": "3"}
        r = session.stream("x")
        got = [(fr.ts_ns, fr.bytes(), fr.seq) for fr in r]
        assert got == [
            (1704067200010000000, b"one", 0),
            (1704067201000000000, b"two", 1),
            (1704067202000000001, b"three", 2),
            (1704067203123456789, b"", 3),
        ]
        # A float written as 1704067200.01 reads back as that float.
        assert r[0].ts == 1704067200.01
        assert r.find_after(ts_ns=1704067200010000000).bytes() == b"one"  # type: ignore[union-attr]
        # A frame with an empty payload is still a frame (truthy), not an empty container.
        assert r[3] and r[3].size == 0


@pytest.mark.parametrize(
    "text,ns",
    [
        (1704067200.01, 1704067200010000000),
        (0.1, 100000000),
        (1e-9, 1),
        (-1.5, -1500000000),
        (123, 123000000000),
        ("2024-01-01T00:00:10Z", 1704067210000000000),
    ],
)
def test_ts_conversion_is_exact(tmp_path: Path, text: object, ns: int) -> None:
    path = tmp_path / "t.rec"
    with recfile.Recorder(path) as rec, rec.session("s") as s:
        s.write(s.add_stream("x"), b"v", ts=text)  # type: ignore[arg-type]
    with recfile.open(path) as f:
        assert f.last_session.stream("x")[0].ts_ns == ns  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e300, 10**30])
def test_bad_timestamps_raise_value_error(tmp_path: Path, bad: object) -> None:
    with recfile.Recorder(tmp_path / "b.rec") as rec, rec.session("s") as s:
        st = s.add_stream("x")
        with pytest.raises(ValueError):
            s.write(st, b"v", ts=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            s.write(st, b"v", ts=True)
        with pytest.raises(ValueError, match="not both"):
            s.write(st, b"v", ts=1.0, ts_ns=1)
        assert s.frames == 0


def test_default_timestamp_is_now(tmp_path: Path) -> None:
    import time

    before = time.time_ns()
    with recfile.Recorder(tmp_path / "n.rec") as rec, rec.session("s") as s:
        s.write(s.add_stream("x"), b"v")
    after = time.time_ns()
    with recfile.open(tmp_path / "n.rec") as f:
        assert before <= f.last_session.stream("x")[0].ts_ns <= after  # type: ignore[union-attr]


def test_numpy_in_and_out_without_copies(tmp_path: Path) -> None:
    path = tmp_path / "np.rec"
    arr = np.arange(1000, dtype=np.float32)
    with recfile.Recorder(path) as rec, rec.session("s") as s:
        st = s.add_stream("cloud", encoding="raw")
        s.write(st, arr, ts=1.0)
        s.write(st, arr.reshape(10, 100), ts=2.0)
        with pytest.raises(TypeError, match="contiguous"):
            s.write(st, arr[::2], ts=3.0)
        with pytest.raises(TypeError, match="str"):
            s.write(st, "text", ts=3.0)
        with pytest.raises(TypeError):
            s.write(st, 12345, ts=3.0)
    f = recfile.open(path)
    frame = f.last_session.stream("cloud")[1]  # type: ignore[union-attr]
    view = frame.data
    assert isinstance(view, memoryview) and view.readonly
    out = np.frombuffer(view, dtype=np.float32)
    assert np.array_equal(out, arr)
    # The view is into the file's map, not a copy: two views share memory.
    assert np.shares_memory(out, np.frombuffer(frame.data, dtype=np.float32))
    with pytest.raises(TypeError):
        view[0] = 1  # type: ignore[index]
    # The map outlives the file object and the frame.
    f.close()
    del frame
    import gc

    gc.collect()
    assert float(out[999]) == 999.0
    with pytest.raises(ValueError, match="closed"):
        _ = f.sessions


def test_write_object_by_encoding(tmp_path: Path) -> None:
    path = tmp_path / "o.rec"
    with recfile.Recorder(path) as rec, rec.session("s") as s:
        p = s.add_stream("p", encoding="pickle")
        j = s.add_stream("j", encoding="json")
        r = s.add_stream("r")
        t = s.add_stream("t", encoding="text")
        s.write_object(p, {"a": (1, 2), "b": {3}}, ts=1)
        s.write_object(j, {"x": 0.1, "y": [1, "two"]}, ts=1)
        s.write_object(r, b"raw", ts=1)
        s.write_object(t, "héllo", ts=1)
        with pytest.raises(TypeError):
            s.write_object(r, "not bytes", ts=1)
        with pytest.raises(TypeError):
            s.write_object(j, object(), ts=1)
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None
        assert sess.stream("p")[0].value() == {"a": (1, 2), "b": {3}}
        assert sess.stream("j")[0].value() == {"x": 0.1, "y": [1, "two"]}
        assert sess.stream("j")[0].bytes() == b'{"x":0.1,"y":[1,"two"]}'
        assert sess.stream("r")[0].value() == b"raw"
        assert sess.stream("t")[0].value() == "héllo"
        assert [s.encoding for s in sess.streams] == ["pickle", "json", "raw", "text"]


def test_unknown_encoding_value_raises(tmp_path: Path) -> None:
    with recfile.Recorder(tmp_path / "u.rec") as rec, rec.session("s") as s:
        s.write(s.add_stream("m", encoding="cdr", schema_name="sensor_msgs/Imu", schema=b"def"), b"\x00", ts=1)
    with recfile.open(tmp_path / "u.rec") as f:
        sess = f.last_session
        assert sess is not None
        (info,) = sess.streams
        assert (info.schema_name, info.schema, info.frames, info.bytes) == ("sensor_msgs/Imu", b"def", 1, 1)
        with pytest.raises(ValueError, match="cdr"):
            sess.stream("m")[0].value()


def test_never_overwrites_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "e.rec"
    with recfile.Recorder(path) as rec, rec.session("first") as s:
        s.write(s.add_stream("x"), b"1", ts=1)
    size = path.stat().st_size
    with pytest.raises(FileExistsError) as e:
        recfile.Recorder(path)
    assert e.value.filename == str(path) and "append=True" in str(e.value)
    assert path.stat().st_size == size
    with recfile.Recorder(path, append=True) as rec:
        assert rec.recovery is None
        with rec.session("second") as s:
            s.write(s.add_stream("x"), b"2", ts=2)
    with recfile.open(path) as f:
        assert [s.name for s in f.sessions] == ["first", "second"]
        assert f.session(-1).name == "second"
        assert f.session("first").position == 0
        assert f.session(f.sessions[1].id).name == "second"
        with pytest.raises(KeyError):
            f.session("nope")
        with pytest.raises(ValueError):
            f.session(5)


def test_unknown_stream_is_a_key_and_value_error(tmp_path: Path) -> None:
    with recfile.Recorder(tmp_path / "k.rec") as rec, rec.session("s") as s:
        s.add_stream("known")
        with pytest.raises(recfile.NotFoundError, match="known"):
            s.write("other", b"x", ts=1)
        with pytest.raises(KeyError):
            s.write("other", b"x", ts=1)
        with pytest.raises(TypeError):
            s.write(7, b"x", ts=1)  # type: ignore[arg-type]
    with recfile.open(tmp_path / "k.rec") as f:
        with pytest.raises(ValueError, match="known"):
            f.last_session.stream("other")  # type: ignore[union-attr]


def test_bad_options_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        recfile.Recorder(tmp_path / "d.rec", durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        recfile.Recorder(tmp_path / "d.rec", checkpoint_every=-1)
    assert not (tmp_path / "d.rec").exists() or (tmp_path / "d.rec").stat().st_size == 0
    for d in ("interval", "every_checkpoint", "every_frame", "none"):
        with recfile.Recorder(tmp_path / f"{d}.rec", durability=d, checkpoint_every=0.5) as rec:  # type: ignore[arg-type]
            with rec.session("s") as s:
                s.write(s.add_stream("x"), b"1", ts=1)
        with recfile.open(tmp_path / f"{d}.rec") as f:
            assert f.last_session.frames == 1  # type: ignore[union-attr]


def test_session_finishes_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.rec"
    with pytest.raises(RuntimeError):
        with recfile.Recorder(path) as rec, rec.session("s") as s:
            s.write(s.add_stream("x"), b"1", ts=1)
            raise RuntimeError("boom")
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None and sess.state == "finished" and sess.frames == 1
    assert s.finished
    with pytest.raises(ValueError, match="finished"):
        s.write("x", b"2", ts=2)


def test_finish_summary_checkpoints_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "c.rec"
    with recfile.Recorder(path, checkpoint_every_frames=0) as rec:
        s = rec.session("s")
        st = s.add_stream("x")
        for i in range(10):
            s.write(st, b"f", ts=i)
        s.checkpoint(b"state-1")
        s.set_metadata("result", 42)
        s.checkpoint("state-2")
        info = s.finish()
        assert s.finish().id == info.id
    assert (info.name, info.frames, info.streams) == ("s", 10, [("x", 10)])
    assert info.checkpoints >= 2 and info.end_ns >= info.start_ns
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None
        assert sess.metadata["result"] == "42"
        states = [c.state for c in sess.checkpoints()]
        assert b"state-1" in states and b"state-2" in states


def test_many_threads_write_one_session(tmp_path: Path) -> None:
    path = tmp_path / "threads.rec"
    per_thread = 5000
    with recfile.Recorder(path) as rec, rec.session("s") as s:
        streams = [s.add_stream(f"t{i}") for i in range(4)]

        def work(i: int) -> None:
            for n in range(per_thread):
                s.write(streams[i], n.to_bytes(4, "little"), ts_ns=n * 1000 + i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None
        for i in range(4):
            r = sess.stream(f"t{i}")
            assert [int.from_bytes(fr.bytes(), "little") for fr in r] == list(range(per_thread))


def test_recorder_close_finishes_open_sessions(tmp_path: Path) -> None:
    path = tmp_path / "close.rec"
    rec = recfile.Recorder(path)
    s = rec.session("s")
    s.write(s.add_stream("x"), b"1", ts=1)
    rec.close()
    assert rec.closed and s.finished
    with pytest.raises(ValueError):
        rec.session("again")
    with recfile.open(path) as f:
        assert f.last_session.state == "finished"  # type: ignore[union-attr]


def test_a_child_forked_while_recording_neither_writes_the_session_nor_hangs(tmp_path: Path) -> None:
    """A child forked mid-session (``os.fork``, multiprocessing's default on Linux before 3.14)
    shares the file but not the writer's background threads. Its writes fail once they would
    reach the file, finishing or dropping the session there writes nothing and returns at once,
    and the parent's session comes out whole."""
    import gc
    import os

    base = BASE_NS
    path = tmp_path / "forked.rec"
    rec = recfile.Recorder(path, checkpoint_every_frames=100)
    s = rec.session("parent")
    cam = s.add_stream("camera")
    want = [(base + i * 1_000_000, i.to_bytes(4, "little") * 25) for i in range(6000)]
    for t, d in want[:3000]:
        s.write(cam, d, ts_ns=t)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 0
        try:
            for i in range(20_000):
                s.write(cam, b"c" * 1000, ts_ns=base + (10_000 + i) * 1_000_000)
            code = 4
        except Exception as e:  # noqa: BLE001 - any refusal naming the fork will do
            code = 0 if "forked" in str(e) else 5
        try:
            s.finish()
            code = code or 6
        except Exception as e:  # noqa: BLE001
            code = code or (0 if "forked" in str(e) else 7)
        del s, rec
        gc.collect()
        os._exit(code)
    for t, d in want[3000:]:
        s.write(cam, d, ts_ns=t)
    assert exit_code_of_child(pid, "with the parent's session") == 0
    info = s.finish()
    rec.close()
    assert info.frames == 6000
    with recfile.open(path) as f:
        assert f.verify()
        (session,) = f.sessions
        assert session.state == "finished"
        assert [(fr.ts_ns, fr.bytes()) for fr in session.stream("camera")] == want
