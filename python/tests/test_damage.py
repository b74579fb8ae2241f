"""Damaged, truncated and interrupted files raise typed errors and lose only what is damaged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import recfile


def _write(path: Path, n: int = 200) -> list[bytes]:
    payloads = [f"frame-{i:05d}-".encode() * 4 for i in range(n)]
    with recfile.Recorder(path) as rec, rec.session("s") as s:
        st = s.add_stream("x")
        for i, p in enumerate(payloads):
            s.write(st, p, ts_ns=1_000_000_000 + i * 1_000_000)
    return payloads


def test_not_a_rec_file(tmp_path: Path) -> None:
    for name, content in [("magic.rec", b"x" * 5000), ("short.rec", b"REC"), ("empty.rec", b"")]:
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(recfile.RecfileError) as e:
            recfile.open(p)
        assert isinstance(e.value, OSError)
        assert str(p) in str(e.value) and e.value.path == str(p)


def test_every_flipped_payload_costs_only_its_frame(tmp_path: Path) -> None:
    """A sweep: flip one byte inside each of 40 frames' payloads in turn; that frame raises
    RecfileError with its offset, every other frame reads back exactly."""
    path = tmp_path / "d.rec"
    payloads = _write(path)
    clean = path.read_bytes()
    with recfile.open(path) as f:
        r = f.last_session.stream("x")  # type: ignore[union-attr]
        frames = list(r)
        # Where each payload is in the file: found through a zero-copy view's content.
        offsets = [clean.index(fr.bytes()) for fr in frames]
    for victim in range(0, len(payloads), 5):
        damaged = bytearray(clean)
        damaged[offsets[victim] + 3] ^= 0xFF
        bad = tmp_path / f"bad{victim}.rec"
        bad.write_bytes(bytes(damaged))
        with recfile.open(bad) as f:
            r = f.last_session.stream("x")  # type: ignore[union-attr]
            assert len(r) == len(payloads)
            for i, p in enumerate(payloads):
                if i == victim:
                    with pytest.raises(recfile.RecfileError) as e:
                        r[i]
                    assert e.value.offset is not None and e.value.offset < offsets[victim]
                else:
                    assert r[i].bytes() == p
            report = f.verify()
            assert not report and not report.ok
            # The damaged record comes first, at its offset (what follows from it may be listed too).
            assert report.problems[0]["offset"] == e.value.offset
            assert "CRC" in report.problems[0]["message"]
        with recfile.open(path) as f:
            assert f.verify().ok


def test_iterating_past_a_damaged_frame_gives_every_other_frame(tmp_path: Path) -> None:
    """An iterator raises for a damaged frame and, asked again, goes on with the next one: one
    error, in the damaged frame's place, and every other frame in order (victims at either edge
    of the batches the iterator loads at a time)."""
    path = tmp_path / "d.rec"
    payloads = _write(path)
    clean = path.read_bytes()
    for victim in (0, 1, 62, 63, 64, 65, 127, 128, 199):
        damaged = bytearray(clean)
        damaged[clean.index(payloads[victim]) + 3] ^= 0xFF
        bad = tmp_path / f"bad{victim}.rec"
        bad.write_bytes(bytes(damaged))
        with recfile.open(bad) as f:
            it = iter(f.last_session.stream("x"))  # type: ignore[union-attr]
            got: list[bytes | None] = []
            while True:
                try:
                    got.append(next(it).bytes())
                except StopIteration:
                    break
                except recfile.RecfileError:
                    got.append(None)
        assert got == [None if i == victim else p for i, p in enumerate(payloads)], victim


_CRASHER = """
import os, sys, recfile
rec = recfile.Recorder(sys.argv[1], checkpoint_every_frames=50)
s = rec.session("crashy")
st = s.add_stream("x")
for i in range(int(sys.argv[2])):
    s.write(st, b"payload-%05d" % i, ts_ns=10**9 + i * 10**6)
os._exit(0)  # as if killed: no finish, no atexit
"""


def test_crash_then_recover(tmp_path: Path) -> None:
    path = tmp_path / "crash.rec"
    subprocess.run([sys.executable, "-c", _CRASHER, str(path), "1234"], check=True)
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None and sess.state == "interrupted" and f.needs_recovery
        readable = len(sess.stream("x"))
        # At most the last checkpoint interval is lost.
        assert 1234 - 50 <= readable <= 1234
    with pytest.raises(FileExistsError):
        recfile.Recorder(path)
    report = recfile.recover(tmp_path / "crash.rec")
    assert report.was_interrupted and report.session_name == "crashy"
    assert report.frames_kept == readable
    assert report.to_dict()["frames_kept"] == readable
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None and sess.state == "finished" and sess.was_recovered
        assert [fr.bytes() for fr in sess.stream("x")] == [b"payload-%05d" % i for i in range(readable)]
        assert f.verify().ok
    again = recfile.recover(path)
    assert not again.was_interrupted


def test_append_recovers_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "append.rec"
    subprocess.run([sys.executable, "-c", _CRASHER, str(path), "321"], check=True)
    with recfile.Recorder(path, append=True) as rec:
        assert rec.recovery is not None and rec.recovery.was_interrupted
        kept = rec.recovery.frames_kept
        with rec.session("next") as s:
            s.write(s.add_stream("y"), b"z", ts=5)
    with recfile.open(path) as f:
        assert [s.state for s in f.sessions] == ["finished", "finished"]
        assert len(f.sessions[0].stream("x")) == kept


def test_recover_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        recfile.recover(tmp_path / "missing.rec")


def test_truncated_file_keeps_what_validates(tmp_path: Path) -> None:
    path = tmp_path / "t.rec"
    subprocess.run([sys.executable, "-c", _CRASHER, str(path), "500"], check=True)
    size = path.stat().st_size
    with recfile.open(path) as f:
        full = len(f.last_session.stream("x"))  # type: ignore[union-attr]
    for cut in (size - 1, size - 17, size - 400):
        p = tmp_path / f"cut{cut}.rec"
        p.write_bytes(path.read_bytes()[:cut])
        with recfile.open(p) as f:
            r = f.last_session.stream("x")  # type: ignore[union-attr]
            n = len(r)
            assert full - 60 <= n <= full
            assert [fr.bytes() for fr in r] == [b"payload-%05d" % i for i in range(n)]
