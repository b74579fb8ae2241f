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

``recfile.dimos`` holds drop-ins for dimos' ``TimedSensorStorage`` and ``TimedSensorReplay``.
"""

import atexit as _atexit

from ._recfile import (
    FORMAT_VERSION,
    Action,
    Checkpoint,
    Comparison,
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

# Realtime waits end before the interpreter finalizes (see _recfile._shutdown).
_atexit.register(_shutdown)

__all__ = [
    "FORMAT_VERSION",
    "Action",
    "Checkpoint",
    "Comparison",
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
    "open",
    "recover",
]
