"""The Arrow hand-off: ``Replay.to_arrow()`` / ``__arrow_c_stream__`` and ``recfile.dataset``
give every frame exactly, in the replay's order, to pyarrow, Polars and DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

import recfile

pa = pytest.importorskip("pyarrow")

COLUMNS = ["recording", "session", "stream", "seq", "ts", "ts_ns", "data", "encoding", "publish_ts"]


def test_to_arrow_holds_every_frame_in_replay_order(two_streams: tuple[Path, dict[str, list[tuple[int, bytes]]]]) -> None:
    path, model = two_streams
    with recfile.open(path) as f:
        s = f.last_session
        assert s is not None
        for names in (["a"], ["b"], ["a", "b"]):
            r = s.replay(names)
            t = r.to_arrow()
            assert isinstance(t, pa.Table)
            assert t.column_names == COLUMNS
            assert t.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
            assert t.schema.field("data").type == pa.large_binary()
            assert t.schema.field("seq").type == pa.uint64()
            want = [(fr.stream, fr.seq, fr.ts_ns, fr.bytes()) for fr in r]
            got = list(zip(t["stream"].to_pylist(), t["seq"].to_pylist(), t["ts_ns"].to_pylist(), t["data"].to_pylist()))
            assert got == want
            assert t["ts"].cast(pa.int64()).to_pylist() == t["ts_ns"].to_pylist()
            assert set(t["recording"].to_pylist()) == {f.file_id}
            assert set(t["session"].to_pylist()) == {s.id}
            assert t["publish_ts"].null_count == t.num_rows
        # The model, not just the reader: every frame written, per stream.
        a = s.stream("a").to_arrow()
        assert list(zip(a["ts_ns"].to_pylist(), a["data"].to_pylist())) == model["a"]


def test_polars_and_duckdb_read_a_replay_without_pyarrow_in_between(two_streams: tuple[Path, dict[str, list[tuple[int, bytes]]]]) -> None:
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    path, model = two_streams
    with recfile.open(path) as f:
        r = f.last_session.stream("b")  # type: ignore[union-attr]
        df = pl.DataFrame(r)
        assert df.columns == COLUMNS and df.height == len(model["b"])
        assert duckdb.sql("SELECT count(*), min(ts_ns), max(ts_ns) FROM r").fetchall() == [
            (len(model["b"]), min(t for t, _ in model["b"]), max(t for t, _ in model["b"]))
        ]
        # Each consumer gets a fresh stream.
        assert pa.RecordBatchReader.from_stream(r).read_all().num_rows == len(model["b"])


def test_a_damaged_frame_raises_unless_skipped(tmp_path: Path) -> None:
    path = tmp_path / "d.rec"
    with recfile.Recorder(path) as rec, rec.session("s") as s:
        st = s.add_stream("x")
        for i in range(100):
            s.write(st, f"payload-{i:04d}".encode() * 3, ts_ns=1_000 + i)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"payload-0042")
    raw[at + 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with recfile.open(path) as f:
        r = f.last_session.stream("x")  # type: ignore[union-attr]
        with pytest.raises(Exception, match="CRC|damaged|checksum"):
            r.to_arrow()
        t = r.to_arrow(skip_damaged=True)
        assert t.num_rows == 99 and 42 not in t["seq"].to_pylist()


def test_dataset_paths_globs_and_errors(tmp_path: Path) -> None:
    for k in range(3):
        sub = tmp_path / ("deep" if k else ".")
        sub.mkdir(exist_ok=True)
        with recfile.Recorder(sub / f"r{k}.rec") as rec, rec.session(f"s{k}") as s:
            for name in ("x", "y"):
                st = s.add_stream(name)
                for i in range(10 * (k + 1)):
                    s.write(st, bytes([k, i]), ts_ns=i)
    ds = recfile.dataset(tmp_path)
    assert len(ds) == 3
    t = ds.to_arrow()
    assert t.num_rows == 2 * 10 * (1 + 2 + 3)
    assert recfile.dataset(str(tmp_path / "deep" / "*.rec"), streams="y").to_arrow().num_rows == 10 * (2 + 3)
    assert recfile.dataset([tmp_path / "r0.rec"]).to_arrow()["data"].to_pylist()[:2] == [bytes([0, 0]), bytes([0, 0])]
    with pytest.raises(FileNotFoundError):
        recfile.dataset(str(tmp_path / "nothing" / "*.rec"))
    with pytest.raises(FileNotFoundError):
        recfile.dataset(tmp_path / "missing.rec")
    (tmp_path / "deep" / "bad.rec").write_bytes(b"not a recording" * 100)
    with pytest.raises(Exception, match="bad.rec"):
        recfile.dataset(tmp_path).to_arrow()
