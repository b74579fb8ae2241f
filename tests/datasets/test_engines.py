"""`rec export` read by the engines users already run, through their own Python packages:
DuckDB, Polars and Spark (local[2]) answer counts, time windows and gap queries the same as
`rec info` and `rec cat`; gaps planted in the recordings are found. Also `recfile.dataset()`
read by DuckDB and Polars without an export.

Run by .ci/run after the Python package is installed: REC_BIN names the `rec` binary.
REQUIRE_SPARK=1 makes a missing pyspark (or JVM) a failure instead of a skip.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

import recfile

ROOT = Path(__file__).resolve().parents[2]
REC = os.environ.get("REC_BIN", str(ROOT / "target" / "release" / "rec"))
T0 = 1_704_067_200_000_000_000
MS = 1_000_000
GLOB = "frames/**/*.parquet"
# Gaps planted in the lidar stream: (file index, frame index after which the gap opens, gap ms).
GAPS = [(0, 40, 350), (2, 10, 1200)]


def rec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REC, *args], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})


def make_fleet(root: Path) -> list[Path]:
    """Three recordings (one in a subdirectory), lidar at 10 Hz with planted gaps, JSON odometry at
    50 Hz, and a stream whose name Hive must escape."""
    paths = []
    for k in range(3):
        path = root / ("nested" if k == 2 else ".") / f"run{k}.rec"
        path.parent.mkdir(parents=True, exist_ok=True)
        with recfile.Recorder(path) as r, r.session(f"run-{k}", metadata={"robot": f"r{k}"}) as s:
            lidar = s.add_stream("lidar", encoding="raw")
            odom = s.add_stream("odom", encoding="json")
            cam = s.add_stream("/camera/image", encoding="raw")
            base = T0 + k * 3_600_000_000_000
            t = base
            for i in range(100):
                s.write(lidar, bytes([i % 256]) * 32, ts_ns=t)
                gap = next((g for f, at, g in GAPS if f == k and at == i), None)
                t += (gap if gap else 100) * MS
            for i in range(500):
                s.write(odom, json.dumps({"x": i, "v": i / 10}).encode(), ts_ns=base + i * 20 * MS)
                if i % 25 == 0:
                    s.write(cam, b"\x89PNG" + bytes(60), ts_ns=base + i * 20 * MS)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("fleet")
    paths = make_fleet(root / "in")
    out = root / "dataset"
    p = rec("export", str(root / "in"), "--out", str(out))
    assert p.returncode == 0, p.stderr
    return paths, out


def readme_snippet(name: str, cwd: Path) -> dict[str, object]:
    """Runs the README's snippet `name` (the code block after `<!-- snippet: name -->`) in `cwd`
    and returns its variables."""
    text = (ROOT / "README.md").read_text()
    marker = f"<!-- snippet: {name} -->"
    assert marker in text, f"README has no {marker}"
    block = text.split(marker, 1)[1].split("```python", 1)[1].split("```", 1)[0]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        scope: dict[str, object] = {}
        exec(compile(block, f"README.md:{name}", "exec"), scope)
        return scope
    finally:
        os.chdir(old)


def info_counts(paths: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        p = rec("info", str(path), "--json")
        assert p.returncode == 0, p.stderr
        for s in json.loads(p.stdout)["sessions"]:
            for st in s["streams"]:
                counts[st["name"]] = counts.get(st["name"], 0) + st["frames"]
    return counts


def cat_window(path: Path, from_ns: int, until_ns: int) -> set[tuple[str, str, int, int]]:
    """(session, stream, seq, ts_ns) of `rec cat --from --until` (until inclusive)."""
    p = rec("cat", str(path), "--json", "--from", f"{from_ns / 1e9:.3f}", "--until", f"{until_ns / 1e9:.3f}")
    assert p.returncode == 0, p.stderr
    rows = set()
    for line in p.stdout.splitlines():
        d = json.loads(line)
        rows.add((d["session"], d["stream"], d["seq"], d["ts_ns"]))
    return rows


def planted_gaps() -> list[tuple[str, int]]:
    return sorted((f"run-{f}", g) for f, _, g in GAPS)


def window() -> tuple[int, int]:
    # Whole milliseconds, so that every engine's timestamp literal holds them exactly.
    return T0 + 2_500 * MS, T0 + 7_000 * MS


def utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc) + dt.timedelta(microseconds=(ns % 1_000_000_000) // 1000)


def test_duckdb_counts_windows_and_gaps(fleet: tuple[list[Path], Path]) -> None:
    duckdb = pytest.importorskip("duckdb")
    paths, out = fleet
    frames = f"read_parquet('{out / GLOB}', hive_partitioning = true)"
    got = dict(duckdb.sql(f"SELECT stream, count(*) FROM {frames} GROUP BY stream").fetchall())
    assert got == info_counts(paths)

    lo, hi = window()
    rows = duckdb.execute(f"SELECT session, stream, seq, ts_ns FROM {frames} WHERE ts BETWEEN ? AND ?", [utc(lo), utc(hi)]).fetchall()
    assert set(rows) == cat_window(paths[0], lo, hi)
    assert len(rows) > 100

    gaps = duckdb.sql(
        # DuckDB subtracts nanosecond timestamps through ts_ns.
        f"""SELECT r.name, gap_ns // 1000000 AS ms FROM (
              SELECT session, ts_ns - lag(ts_ns) OVER (PARTITION BY session ORDER BY ts) AS gap_ns
              FROM {frames} WHERE stream = 'lidar') f
            JOIN '{out / "recordings.parquet"}' r USING (session)
            WHERE gap_ns > 200 * 1000000 ORDER BY 1"""
    ).fetchall()
    assert sorted(gaps) == planted_gaps()

    # The tables: one row per session, the frame counts as a map; streams and their frames.
    recs = duckdb.sql(f"SELECT name, frames['odom'], metadata['robot'] FROM '{out / 'recordings.parquet'}' ORDER BY name").fetchall()
    assert recs == [(f"run-{k}", 500, f"r{k}") for k in range(3)]
    per_stream = dict(duckdb.sql(f"SELECT stream, sum(frames)::BIGINT FROM '{out / 'streams.parquet'}' GROUP BY stream").fetchall())
    assert per_stream == info_counts(paths)

    # The README's snippet, as written, on this dataset.
    scope = readme_snippet("duckdb", out.parent)
    assert dict(scope["counts"]) == info_counts(paths)  # type: ignore[call-overload]
    assert sorted((n, round(ms)) for n, ms in scope["gaps"]) == planted_gaps()  # type: ignore[attr-defined]


def test_polars_counts_windows_and_gaps(fleet: tuple[list[Path], Path]) -> None:
    pl = pytest.importorskip("polars")
    paths, out = fleet
    lf = pl.scan_parquet(str(out / GLOB), hive_partitioning=True)
    got = dict(lf.group_by("stream").len().collect().iter_rows())
    assert got == info_counts(paths)

    lo, hi = window()
    win = lf.filter(pl.col("ts").is_between(utc(lo), utc(hi))).select("session", "stream", "seq", "ts_ns").collect()
    assert set(win.iter_rows()) == cat_window(paths[0], lo, hi)

    gaps = (
        lf.filter(pl.col("stream") == "lidar")
        .sort("session", "ts")
        .with_columns(gap=pl.col("ts").diff().over("session"))
        .filter(pl.col("gap") > pl.duration(milliseconds=200))
        .join(pl.scan_parquet(str(out / "recordings.parquet")).select("session", "name"), on="session")
        .select("name", (pl.col("gap").dt.total_milliseconds()).alias("ms"))
        .collect()
    )
    assert sorted(gaps.iter_rows()) == planted_gaps()


def test_spark_reads_the_dataset(fleet: tuple[list[Path], Path]) -> None:
    if os.environ.get("REQUIRE_SPARK") == "1":
        import pyspark  # noqa: F401
    else:
        pytest.importorskip("pyspark")

    paths, out = fleet
    # The README's snippet, as written, makes the session and answers the count.
    scope = readme_snippet("spark", out.parent)
    spark = scope["spark"]
    try:
        assert scope["counts"] == info_counts(paths)
        assert scope["sessions"] == 3
        frames = spark.read.parquet(str(out / "frames"))  # type: ignore[attr-defined]
        lo, hi = window()
        n = frames.where(f"ts BETWEEN {lo} AND {hi}").count()
        assert n == len(cat_window(paths[0], lo, hi))
        recs = spark.read.parquet(str(out / "recordings.parquet"))  # type: ignore[attr-defined]
        assert sorted(r["name"] for r in recs.select("name").collect()) == ["run-0", "run-1", "run-2"]
    finally:
        spark.stop()  # type: ignore[attr-defined]


def test_dataset_streams_recordings_that_were_never_exported(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    paths = make_fleet(tmp_path)
    ds = recfile.dataset(str(tmp_path / "**" / "*.rec"))
    assert sorted(map(str, ds.paths)) == sorted(map(str, paths))
    got = dict(duckdb.sql("SELECT stream, count(*) FROM ds GROUP BY stream").fetchall())
    assert got == info_counts(paths)
    # Each read reads the files again.
    assert duckdb.sql("SELECT count(*) FROM ds").fetchall() == [(sum(got.values()),)]
    df = pl.DataFrame(recfile.dataset(tmp_path, streams=["lidar"]))
    assert df.height == 300 and set(df["stream"]) == {"lidar"}
    reader = ds.to_arrow_reader()
    assert reader.schema.names[:8] == ["recording", "session", "stream", "seq", "ts", "ts_ns", "data", "encoding"]
    assert sum(b.num_rows for b in reader) == sum(got.values())
