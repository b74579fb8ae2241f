"""Shared fixtures: small recordings written through the public API."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

import recfile

BASE_NS = 1_704_067_200_000_000_000


def exit_code_of_child(pid: int, what: str, timeout: float = 60.0) -> int:
    """Waits for the forked child `pid` and returns its exit code; kills it and fails the test
    when it has not exited within `timeout` seconds (it hung `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung {what}")
        time.sleep(0.01)


@pytest.fixture
def two_streams(tmp_path: Path) -> tuple[Path, dict[str, list[tuple[int, bytes]]]]:
    """A file with streams `a` (1 kHz, 2000 frames) and `b` (irregular, 300 frames, some
    equal timestamps), and the model of what was written: stream -> [(ts_ns, data)]."""
    rng = random.Random(7)
    path = tmp_path / "two.rec"
    model: dict[str, list[tuple[int, bytes]]] = {"a": [], "b": []}
    with recfile.Recorder(path, checkpoint_every_frames=97) as rec, rec.session("two", {"k": "v"}) as s:
        a = s.add_stream("a")
        b = s.add_stream("b", encoding="raw")
        t_b = BASE_NS
        for i in range(2000):
            t = BASE_NS + i * 1_000_000
            data = i.to_bytes(4, "little") * (1 + i % 5)
            s.write(a, data, ts_ns=t)
            model["a"].append((t, data))
            if i % 7 == 0 and len(model["b"]) < 300:
                t_b += rng.choice([0, 1, 3_000_000, 17_000_000, 250_000])
                d = rng.randbytes(rng.randint(0, 64))
                s.write(b, d, ts_ns=t_b)
                model["b"].append((t_b, d))
    return path, model
