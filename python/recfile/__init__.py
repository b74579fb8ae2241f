"""recfile: record timed data streams and agent sessions into one crash-safe ``.rec`` file,
and replay them exactly.

Writing::

    import recfile

    with recfile.Recorder("run.rec") as rec, rec.session("drive") as s:
        lidar = s.add_stream("lidar", encoding="pickle")
        s.write_object(lidar, {"ranges": [1.0, 2.0]}, ts=1704067200.01)

Reading::

    with recfile.open("run.rec") as f:
        lidar = f.last_session.stream("lidar")
        frame = lidar.find_closest(1704067200.0, tolerance=0.1)
        for frame in lidar.iterate_realtime(speed=2.0):
            ...

Datasets: ``replay.to_arrow()`` is a ``pyarrow.Table`` of the frames (one row per frame), and
``recfile.dataset("fleet/**/*.rec")`` streams the frames of many recordings to pyarrow, Polars
or DuckDB (``duckdb.sql("SELECT stream, count(*) FROM ds GROUP BY stream")``) through the Arrow C
stream interface.

``recfile.dimos`` holds drop-ins for dimos' ``TimedSensorStorage`` and ``TimedSensorReplay``.
"""

import atexit as _atexit
import glob as _glob
import os as _os
from collections.abc import Iterable as _Iterable

from ._recfile import (
    FORMAT_VERSION,
    Action,
    ArrowStream,
    Checkpoint,
    Comparison,
    Dataset,
    Divergence,
    Frame,
    FrameIter,
    NotFoundError,
    RealtimeIter,
    RecFile,
    Recorder,
    RecfileError,
    RecoveryReport,
    Replay,
    ReplayEngine,
    ReplayReport,
    Session,
    SessionInfo,
    SessionWriter,
    Stream,
    StreamInfo,
    VerifyReport,
    __version__,
    _shutdown,
    compare_sessions,
    open,
    recover,
)
from ._recfile import dataset as _recfile_dataset



def dataset(
    paths_or_glob: "str | _os.PathLike[str] | _Iterable[str | _os.PathLike[str]]",
    streams: "str | _Iterable[str] | None" = None,
    *,
    skip_damaged: bool = False,
) -> Dataset:
    """The frames of many recordings as one Arrow stream, one row per frame (the columns of
    ``rec export``: recording, session, stream, seq, ts, ts_ns, data, encoding, publish_ts).

    ``paths_or_glob`` is a path, a glob (``"fleet/**/*.rec"``, recursive) or a list of them;
    directories are searched for ``*.rec``. ``streams`` keeps only those streams. Files are
    read one at a time each time the dataset is read, so memory stays flat. A damaged frame
    raises unless ``skip_damaged``.

    Polars (``pl.from_arrow(ds)``) and DuckDB (``duckdb.sql("SELECT … FROM ds")``) read it
    through ``__arrow_c_stream__``; ``ds.to_arrow_reader()`` gives a
    ``pyarrow.RecordBatchReader``.
    """
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, _os.PathLike)) else list(paths_or_glob)
    paths: list[str] = []
    for item in items:
        text = _os.fspath(item)
        if any(c in text for c in "*?["):
            matches = sorted(_glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}")
            paths.extend(matches)
        else:
            paths.append(text)
    selected = [streams] if isinstance(streams, str) else (list(streams) if streams is not None else None)
    return _recfile_dataset(paths, selected, skip_damaged)


# Realtime waits end before the interpreter finalizes (see _recfile._shutdown).
_atexit.register(_shutdown)

__all__ = [
    "FORMAT_VERSION",
    "Action",
    "ArrowStream",
    "Checkpoint",
    "Comparison",
    "Dataset",
    "Divergence",
    "Frame",
    "FrameIter",
    "NotFoundError",
    "RealtimeIter",
    "RecFile",
    "Recorder",
    "RecfileError",
    "RecoveryReport",
    "Replay",
    "ReplayEngine",
    "ReplayReport",
    "Session",
    "SessionInfo",
    "SessionWriter",
    "Stream",
    "StreamInfo",
    "VerifyReport",
    "__version__",
    "compare_sessions",
    "dataset",
    "open",
    "recover",
]
