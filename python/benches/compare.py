"""recfile from Python against what a dimos user would use instead, on the same frames.

    python python/benches/compare.py [--frames N] [--lookup-frames M] [--pickle-frames P] [--runs R]

Peers, measured in the same run on the same machine:
- the `mcap` Python package: `Writer.add_message`, `make_reader(f).iter_messages()`;
- Python's `sqlite3` laid out as dimos' SqliteStore (WAL, synchronous=NORMAL, a row per frame
  with its timestamp), committing per frame as dimos' store does, and in one transaction (the
  best case), with and without an index on the timestamp;
- the legacy folder of one pickle file per frame.

Prints one Markdown table of medians over --runs runs (the README keeps one run's table).
"""

from __future__ import annotations

import argparse
import bisect
import os
import pickle
import platform
import random
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import recfile

BASE_NS = 1_704_067_200_000_000_000
PERIOD_NS = 1_000_000  # 1 kHz


def median_rate(runs: int, n: int, fn: Callable[[], None]) -> float:
    """Median frames per second of `fn` (which handles n frames) over `runs` runs."""
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


# --- writers ------------------------------------------------------------------------------

def write_recfile(path: Path, n: int, data: bytes) -> None:
    path.unlink(missing_ok=True)
    with recfile.Recorder(path) as rec, rec.session("bench") as s:
        st = s.add_stream("x")
        w = s.write
        for i in range(n):
            w(st, data, ts_ns=BASE_NS + i * PERIOD_NS)


def write_mcap(path: Path, n: int, data: bytes) -> None:
    from mcap.writer import Writer

    with open(path, "wb") as f:
        w = Writer(f)
        w.start()
        schema = w.register_schema(name="x", encoding="", data=b"")
        ch = w.register_channel(topic="x", message_encoding="raw", schema_id=schema)
        add = w.add_message
        for i in range(n):
            t = BASE_NS + i * PERIOD_NS
            add(channel_id=ch, log_time=t, data=data, publish_time=t)
        w.finish()


def sqlite_open(path: Path, index: bool) -> sqlite3.Connection:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE frames (id INTEGER PRIMARY KEY, ts REAL NOT NULL, data BLOB NOT NULL)")
    if index:
        conn.execute("CREATE INDEX frames_ts ON frames (ts)")
    return conn


def write_sqlite(path: Path, n: int, data: bytes, index: bool, commit_each: bool) -> None:
    conn = sqlite_open(path, index)
    ins = "INSERT INTO frames (ts, data) VALUES (?, ?)"
    ex = conn.execute
    for i in range(n):
        ex(ins, ((BASE_NS + i * PERIOD_NS) / 1e9, data))
        if commit_each:
            conn.commit()
    conn.commit()
    conn.close()


def write_pickles(path: Path, n: int, data: bytes) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    for i in range(n):
        with open(path / f"{i:03d}.pickle", "wb") as f:
            pickle.dump(((BASE_NS + i * PERIOD_NS) / 1e9, data), f)


# --- readers ------------------------------------------------------------------------------

def read_recfile(path: Path) -> int:
    with recfile.open(path) as f:
        n = 0
        for frame in f.last_session.stream("x"):  # type: ignore[union-attr]
            frame.data
            n += 1
    return n


def read_mcap(path: Path) -> int:
    from mcap.reader import make_reader

    n = 0
    with open(path, "rb") as f:
        for _schema, _channel, message in make_reader(f).iter_messages():
            message.data
            n += 1
    return n


def read_sqlite(path: Path) -> int:
    conn = sqlite3.connect(path)
    n = 0
    for _ts, _data in conn.execute("SELECT ts, data FROM frames ORDER BY ts"):
        n += 1
    conn.close()
    return n


def read_pickles(path: Path) -> int:
    n = 0
    for p in sorted(path.glob("*.pickle"), key=lambda p: int(p.stem)):
        with open(p, "rb") as f:
            pickle.load(f)
        n += 1
    return n


# --- lookups ------------------------------------------------------------------------------

def lookups_recfile(path: Path, targets: list[float]) -> list[float]:
    with recfile.open(path) as f:
        r = f.last_session.stream("x")  # type: ignore[union-attr]
        fc = r.find_closest
        out = []
        for t in targets:
            t0 = time.perf_counter_ns()
            fc(t)
            out.append(time.perf_counter_ns() - t0)
    return out


def lookups_sqlite(path: Path, targets: list[float]) -> list[float]:
    conn = sqlite3.connect(path)
    before = "SELECT ts, data FROM frames WHERE ts <= ? ORDER BY ts DESC LIMIT 1"
    after = "SELECT ts, data FROM frames WHERE ts >= ? ORDER BY ts ASC LIMIT 1"
    out = []
    for t in targets:
        t0 = time.perf_counter_ns()
        a = conn.execute(before, (t,)).fetchone()
        b = conn.execute(after, (t,)).fetchone()
        if a and b:
            _ = a if t - a[0] <= b[0] - t else b
        out.append(time.perf_counter_ns() - t0)
    conn.close()
    return out


def build_lookup_sqlite(path: Path, n: int, data: bytes) -> None:
    conn = sqlite_open(path, index=True)
    batch = 100_000
    for start in range(0, n, batch):
        conn.executemany(
            "INSERT INTO frames (ts, data) VALUES (?, ?)",
            (((BASE_NS + i * PERIOD_NS) / 1e9, data) for i in range(start, min(n, start + batch))),
        )
    conn.commit()
    conn.close()


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


# --- stream() lateness -------------------------------------------------------------------

def stream_lateness(path: Path, seconds: float) -> list[float]:
    """Lateness (ms) of each emission of `stream()` at 1 kHz, against the schedule anchored at
    the first emission."""
    with recfile.open(path) as f:
        r = f.last_session.stream("x")  # type: ignore[union-attr]
        arrivals: list[tuple[int, int]] = []
        done = threading.Event()
        r.stream(speed=1.0, duration=seconds).subscribe(
            on_next=lambda fr: arrivals.append((time.perf_counter_ns(), fr.ts_ns)), on_completed=done.set
        )
        done.wait(seconds * 3 + 5)
    t0, v0 = arrivals[0]
    return [((t - t0) - (v - v0)) / 1e6 for t, v in arrivals]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000, help="frames written and read per peer")
    ap.add_argument("--sqlite-commit-frames", type=int, default=200_000, help="frames for SQLite committing per frame")
    ap.add_argument("--pickle-frames", type=int, default=20_000, help="frames for the pickle folder")
    ap.add_argument("--lookup-frames", type=int, default=10_000_000, help="frames of the lookup files")
    ap.add_argument("--lookups", type=int, default=10_000)
    ap.add_argument("--stream-seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="recfile-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    data = bytes(range(100))
    n, runs = args.frames, args.runs
    rows: list[tuple[str, str, str]] = []

    # stream() lateness at 1 kHz, first: before the large files below fill the page cache with
    # dirty pages whose writeback stalls a realtime thread. Medians over the runs.
    write_recfile(tmp / "khz.rec", int(args.stream_seconds * 1000) + 1, data)
    lates = [stream_lateness(tmp / "khz.rec", args.stream_seconds) for _ in range(runs)]
    late_row = ("`stream()` at 1 kHz", "lateness p50 / p99 / max",
                f"{statistics.median(pct(x, 50) for x in lates):.3f} / {statistics.median(pct(x, 99) for x in lates):.3f} / "
                f"{statistics.median(max(x) for x in lates):.3f} ms")

    # Writing 100-byte frames.
    w = {
        "recfile": median_rate(runs, n, lambda: write_recfile(tmp / "w.rec", n, data)),
        "mcap (Python)": median_rate(runs, n, lambda: write_mcap(tmp / "w.mcap", n, data)),
        "SQLite, one transaction": median_rate(runs, n, lambda: write_sqlite(tmp / "w.db", n, data, False, False)),
        "SQLite, one transaction, ts index": median_rate(runs, n, lambda: write_sqlite(tmp / "wi.db", n, data, True, False)),
        "SQLite, commit per frame (dimos)": median_rate(
            runs, args.sqlite_commit_frames,
            lambda: write_sqlite(tmp / "wc.db", args.sqlite_commit_frames, data, True, True)),
        "pickle folder (dimos legacy)": median_rate(
            runs, args.pickle_frames, lambda: write_pickles(tmp / "pickles", args.pickle_frames, data)),
    }
    best_other = max(v for k, v in w.items() if k != "recfile")
    for k, v in w.items():
        rows.append(("write 100 B frames", k, f"{v / 1e6:.2f} M/s" if v >= 1e5 else f"{v / 1e3:.1f} k/s"))
    rows.append(("write 100 B frames", "recfile ÷ best other", f"**{w['recfile'] / best_other:.1f}×**"))

    # Iterating.
    it = {
        "recfile (`for f in replay: f.data`)": median_rate(runs, n, lambda: read_recfile(tmp / "w.rec")),
        "mcap (Python) `iter_messages`": median_rate(runs, n, lambda: read_mcap(tmp / "w.mcap")),
        "SQLite `ORDER BY ts`": median_rate(runs, n, lambda: read_sqlite(tmp / "wi.db")),
        "pickle folder": median_rate(runs, args.pickle_frames, lambda: read_pickles(tmp / "pickles")),
    }
    for k, v in it.items():
        rows.append(("iterate", k, f"{v / 1e6:.2f} M/s" if v >= 1e5 else f"{v / 1e3:.1f} k/s"))
    rows.append(("iterate", "recfile ÷ mcap",
                 f"**{it['recfile (`for f in replay: f.data`)'] / it['mcap (Python) `iter_messages`']:.1f}×**"))

    # find_closest on the lookup-size files.
    m = args.lookup_frames
    write_recfile(tmp / "big.rec", m, data)
    build_lookup_sqlite(tmp / "big.db", m, data)
    rng = random.Random(1)
    targets = [(BASE_NS + rng.randrange(m * PERIOD_NS)) / 1e9 for _ in range(args.lookups)]
    rl = [statistics.median(x) for x in zip(*[lookups_recfile(tmp / "big.rec", targets) for _ in range(runs)])]
    sl = [statistics.median(x) for x in zip(*[lookups_sqlite(tmp / "big.db", targets) for _ in range(runs)])]
    rows.append((f"find_closest, {m / 1e6:g}M frames", "recfile p50 / p99", f"{pct(rl, 50) / 1e3:.2f} / {pct(rl, 99) / 1e3:.2f} µs"))
    rows.append((f"find_closest, {m / 1e6:g}M frames", "SQLite with ts index p50 / p99", f"{pct(sl, 50) / 1e3:.2f} / {pct(sl, 99) / 1e3:.2f} µs"))
    rows.append((f"find_closest, {m / 1e6:g}M frames", "SQLite ÷ recfile (p50)", f"**{pct(sl, 50) / pct(rl, 50):.0f}×**"))

    rows.append(late_row)

    print(f"recfile {recfile.__version__} · Python {platform.python_version()} · {platform.machine()} · "
          f"{os.cpu_count()} cores · {time.strftime('%Y-%m-%d')} · medians of {runs} runs")
    print()
    print("| what | who | result |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    if args.dir is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
