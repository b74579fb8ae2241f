"""Drop-ins for dimos' ``TimedSensorStorage`` and ``TimedSensorReplay``, backed by ``.rec`` files.

Change the import and keep the code::

    # from dimos.utils.testing.replay import TimedSensorReplay, TimedSensorStorage
    from recfile.dimos import TimedSensorReplay, TimedSensorStorage

A name ``"<dataset>/<stream>"`` is the stream ``<stream>`` of the file ``<dataset>.rec`` in the
data directory: the ``data_dir`` argument, else the environment variable ``RECFILE_DATA_DIR``,
else the current directory. A path to a ``.rec`` file with ``stream=`` works too.

Every storage of one dataset in a process (``"run1/lidar"``, ``"run1/video"``) writes into one
file, one session, one stream each, on one clock. The session is finished by ``close()``, at
interpreter exit (also after Ctrl-C), and a crash loses at most the last checkpoint interval.

Frames are stored pickled: unpickling runs code, so replay only files you trust.
"""

from __future__ import annotations

import atexit
import os
import pickle
import pickletools
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import _idioms
from ._recfile import Frame, Recorder, Replay, SessionWriter, Stream
from ._recfile import open as _open

T = TypeVar("T")

DATA_DIR_ENV = "RECFILE_DATA_DIR"

__all__ = [
    "DATA_DIR_ENV",
    "TimedSensorReplay",
    "TimedSensorStorage",
    "import_pickle_dir",
    "resolve",
]


def resolve(name: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None,
            stream: str | None = None) -> tuple[Path, str]:
    """The ``(file, stream)`` that a dimos-style name means."""
    if stream is not None:
        path = Path(name)
        if not path.is_absolute() and data_dir is not None:
            path = Path(data_dir) / path
        return path, stream
    text = os.fspath(name)
    if "/" not in text.strip("/"):
        raise ValueError(
            f"expected a name '<dataset>/<stream>' (e.g. 'go2_bigoffice/lidar'), or a .rec path with stream=, got {text!r}"
        )
    dataset, stream_name = text.rstrip("/").rsplit("/", 1)
    if not stream_name:
        raise ValueError(f"no stream name in {text!r}")
    base = Path(data_dir) if data_dir is not None else Path(os.environ.get(DATA_DIR_ENV) or os.getcwd())
    path = Path(dataset)
    if path.suffix != ".rec":
        path = path.with_name(path.name + ".rec")
    if not path.is_absolute():
        path = base / path
    return path, stream_name


# ---------------------------------------------------------------------------------------------
# Writing

class _Dataset:
    """One file being written by every storage of its dataset in this process."""

    def __init__(self, path: Path, session_name: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.recorder = Recorder(path, append=path.exists() and path.stat().st_size > 0)
        self.session: SessionWriter = self.recorder.session(session_name)
        self.users = 0

    def close(self) -> None:
        try:
            if not self.session.finished:
                self.session.finish()
        finally:
            self.recorder.close()


_datasets: dict[Path, _Dataset] = {}
_datasets_lock = threading.Lock()


def _frames_in_file(path: Path, stream: str) -> int:
    """Frames the file already holds in a stream of that name (any session)."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with _open(path) as f:
        return sum(s.frames for session in f.sessions for s in session.streams if s.name == stream)


@atexit.register
def _close_all() -> None:
    """Finishes every dataset still open (at interpreter exit, also after Ctrl-C)."""
    with _datasets_lock:
        datasets = list(_datasets.values())
        _datasets.clear()
    for d in datasets:
        try:
            d.close()
        except Exception:  # noqa: BLE001 - exit must go on; the file stays recoverable
            pass


class TimedSensorStorage(Generic[T]):
    """Stores frames of one stream with their timestamps (dimos' ``TimedSensorStorage``).

    What is stored: ``autocast(frame)`` when given, else ``frame.raw_msg`` when the frame has
    one, else the frame, pickled; its timestamp is ``frame.ts`` (float seconds) when present,
    else the current time. Refuses (``FileExistsError``) a stream that already holds frames.
    """

    def __init__(self, name: str | os.PathLike[str], autocast: Callable[[Any], Any] | None = None, *,
                 data_dir: str | os.PathLike[str] | None = None, stream: str | None = None) -> None:
        self.path, self.stream_name = resolve(name, data_dir, stream)
        self.autocast = autocast
        self._count = 0
        self._closed = False
        key = self.path.resolve() if self.path.exists() else self.path.absolute()
        with _datasets_lock:
            dataset = _datasets.get(key)
            if dataset is None:
                held = _frames_in_file(self.path, self.stream_name)
                if held:
                    raise FileExistsError(
                        f"{self.path}: stream {self.stream_name!r} already holds {held} frames "
                        "(a recording is never overwritten; choose another name)"
                    )
                self.path.parent.mkdir(parents=True, exist_ok=True)
                dataset = _Dataset(self.path, self.path.stem)
                _datasets[key] = dataset
            elif any(s.name == self.stream_name for s in dataset.session.streams):
                raise FileExistsError(f"{self.path}: stream {self.stream_name!r} is already being recorded")
            self._stream: Stream = dataset.session.add_stream(self.stream_name, encoding="pickle")
            dataset.users += 1
        self._dataset = dataset
        self._key = key

    def _payload(self, frame: Any) -> Any:
        if self.autocast is not None:
            return self.autocast(frame)
        raw = getattr(frame, "raw_msg", None)
        return raw if raw is not None else frame

    def save_one(self, frame: Any) -> int:
        """Stores one frame; returns the number of frames stored so far."""
        if self._closed:
            raise ValueError(f"{self.path}: storage of stream {self.stream_name!r} is closed")
        ts = getattr(frame, "ts", None)
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            ts = None
        data = pickle.dumps(self._payload(frame), protocol=5)
        self._count = self._dataset.session.write(self._stream, data, ts=ts)
        return self._count

    def save(self, *frames: Any) -> int:
        """Stores several frames; returns the number of frames stored so far."""
        for frame in frames:
            self.save_one(frame)
        return self._count

    def save_stream(self, observable: Any) -> Any:
        """An Observable that stores each item of ``observable`` and emits the count so far."""
        from reactivex import operators as ops

        return observable.pipe(ops.map(self.save_one))

    def consume_stream(self, observable: Any) -> Any:
        """Subscribes to ``observable`` and stores every item; returns the Disposable."""
        return observable.subscribe(on_next=self.save_one)

    def count(self) -> int:
        """Frames stored by this storage."""
        return self._count

    def close(self) -> None:
        """Stops storing; the last storage of a dataset finishes its session."""
        if self._closed:
            return
        self._closed = True
        with _datasets_lock:
            self._dataset.users -= 1
            last = self._dataset.users == 0
            if last:
                _datasets.pop(self._key, None)
        if last:
            self._dataset.close()

    def __enter__(self) -> "TimedSensorStorage[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Reading

class TimedSensorReplay(Generic[T]):
    """Replays one stored stream with its original timing (dimos' ``TimedSensorReplay``).

    Items are the stored objects (unpickled, or decoded by the stream's encoding), passed
    through ``autocast`` when given. Lookups are O(log n); seeks do not read earlier frames.
    """

    def __init__(self, name: str | os.PathLike[str], autocast: Callable[[Any], T] | None = None, *,
                 data_dir: str | os.PathLike[str] | None = None, stream: str | None = None) -> None:
        self.path, self.stream_name = resolve(name, data_dir, stream)
        self.autocast = autocast
        self._file = _open(self.path)
        self.replay: Replay = self._find_stream()

    def _find_stream(self) -> Replay:
        sessions = self._file.sessions
        for session in reversed(sessions):
            if any(s.name == self.stream_name for s in session.streams):
                return session.stream(self.stream_name)
        names = sorted({s.name for session in sessions for s in session.streams})
        from ._recfile import NotFoundError

        raise NotFoundError(
            f"{self.path}: no stream named {self.stream_name!r} (streams: {', '.join(names) or 'none'})"
        )

    def _item(self, frame: Frame) -> Any:
        value = frame.value()
        return self.autocast(value) if self.autocast is not None else value

    def _maybe(self, frame: Frame | None) -> Any:
        return None if frame is None else self._item(frame)

    def iterate(self, seek: float | None = None, duration: float | None = None,
                from_timestamp: float | None = None, loop: bool = False) -> Iterator[Any]:
        """Every item in timestamp order (no timing)."""
        for frame in self.replay.iterate(seek, duration, from_timestamp, loop):
            yield self._item(frame)

    def iterate_ts(self, seek: float | None = None, duration: float | None = None,
                   from_timestamp: float | None = None, loop: bool = False) -> Iterator[tuple[float, Any]]:
        """``(timestamp, item)`` pairs; with ``loop`` the recorded timestamps repeat each lap."""
        for ts, frame in self.replay.iterate_ts(seek, duration, from_timestamp, loop):
            yield ts, self._item(frame)

    def iterate_duration(self, seek: float | None = None, duration: float | None = None,
                         from_timestamp: float | None = None, loop: bool = False) -> Iterator[tuple[float, Any]]:
        """``(seconds since the first frame, item)`` pairs."""
        for since, frame in self.replay.iterate_duration(seek, duration, from_timestamp, loop):
            yield since, self._item(frame)

    def iterate_realtime(self, speed: float = 1.0, seek: float | None = None, duration: float | None = None,
                         from_timestamp: float | None = None, loop: bool = False) -> Iterator[Any]:
        """Items at their original timing scaled by ``speed`` (laps follow without a burst)."""
        for frame in self.replay.iterate_realtime(speed, seek, duration, from_timestamp, loop):
            yield self._item(frame)

    def stream(self, speed: float = 1.0, seek: float | None = None, duration: float | None = None,
               from_timestamp: float | None = None, loop: bool = False) -> Any:
        """A reactivex Observable emitting the items at their original timing."""
        self.replay.stream(speed, seek, duration, from_timestamp, loop)  # checks the arguments
        return _idioms.observable(self.replay, speed, seek, duration, from_timestamp, loop, transform=self._item)

    def find_closest(self, timestamp: float, tolerance: float | None = None) -> Any:
        """The item closest to an absolute timestamp (None beyond ``tolerance`` seconds)."""
        return self._maybe(self.replay.find_closest(timestamp, tolerance))

    def find_closest_seek(self, relative_seconds: float, tolerance: float | None = None) -> Any:
        """The item closest to ``relative_seconds`` after the first frame."""
        return self._maybe(self.replay.find_closest_seek(relative_seconds, tolerance))

    def first(self) -> Any:
        """The first item (None when empty)."""
        return self._maybe(self.replay.first())

    def first_timestamp(self) -> float | None:
        """The first timestamp, float seconds (None when empty)."""
        return self.replay.first_timestamp()

    def load_one(self, name: int | str) -> tuple[float, Any]:
        """``(timestamp, item)`` of one frame: its index, or a legacy file name like ``"007"``
        or ``"007.pickle"``."""
        if isinstance(name, bool):
            raise TypeError("load takes a frame index or a name like '007'")
        if isinstance(name, int):
            index = name
        else:
            m = re.fullmatch(r"(?:.*/)?(\d+)(?:\.pickle)?", os.fspath(name))
            if m is None:
                raise ValueError(f"load takes a frame index or a name like '007', got {name!r}")
            index = int(m.group(1))
        frame = self.replay[index]
        return frame.ts, self._item(frame)

    def load(self, *names: int | str) -> Any:
        """``load_one`` of one name, or a list for several."""
        if len(names) == 1:
            return self.load_one(names[0])
        return [self.load_one(n) for n in names]

    def count(self) -> int:
        """Frames in the stream."""
        return len(self.replay)

    def __len__(self) -> int:
        return len(self.replay)

    @property
    def files(self) -> list[Path]:
        """Compatibility: a ``.rec`` stream has no per-frame files."""
        return []


# ---------------------------------------------------------------------------------------------
# Importing legacy folders

def _split_pickle(blob: bytes) -> tuple[float, bytes] | None:
    """``(ts, pickle of data)`` from the pickle of a ``(ts, data)`` tuple, without unpickling
    ``data`` (no code runs, and its classes need not be importable); None when the pickle is
    not shaped that way."""
    try:
        ops = list(pickletools.genops(blob))
    except Exception:  # noqa: BLE001 - not a pickle we can split: the caller unpickles
        return None
    i = 0
    proto = 2
    if i < len(ops) and ops[i][0].name == "PROTO":
        proto = int(ops[i][1] or 0)
        i += 1
    if proto < 2:
        return None
    while i < len(ops) and ops[i][0].name == "FRAME":
        i += 1
    if i >= len(ops) or ops[i][0].name not in ("BINFLOAT", "BININT", "BININT1", "BININT2", "LONG1"):
        return None
    ts = ops[i][1]
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    # The tuple's opcode is the last before an optional memo store and STOP.
    j = len(ops) - 1
    if ops[j][0].name != "STOP":
        return None
    j -= 1
    if ops[j][0].name in ("MEMOIZE", "BINPUT", "LONG_BINPUT"):
        j -= 1
    if ops[j][0].name != "TUPLE2" or j <= i + 1:
        return None
    # The data's opcodes, without FRAME markers (their lengths count bytes of the whole).
    positions = [op[2] for op in ops] + [len(blob)]
    body = b"".join(
        blob[positions[k]:positions[k + 1]] for k in range(i + 1, j) if ops[k][0].name != "FRAME"
    )
    return float(ts), bytes([0x80, proto]) + body + b"."


def import_pickle_dir(directory: str | os.PathLike[str], out: str | os.PathLike[str],
                      stream: str | None = None) -> int:
    """Converts a legacy dimos folder of ``000.pickle``, ``001.pickle``… files (each a pickled
    ``(timestamp, data)``) into a stream of ``out`` (a new file, or appended as a new session),
    in file-number order. Returns the number of frames written."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")
    files = []
    for p in directory.iterdir():
        m = re.fullmatch(r"(\d+)\.pickle", p.name)
        if m:
            files.append((int(m.group(1)), p))
    if not files:
        raise FileNotFoundError(f"{directory}: no NNN.pickle files")
    files.sort()
    stream = stream or directory.name
    out = Path(out)
    with Recorder(out, append=out.exists() and out.stat().st_size > 0) as rec:
        with rec.session(directory.name, {"source": str(directory), "imported_from": "dimos pickle folder"}) as s:
            handle = s.add_stream(stream, encoding="pickle")
            for number, path in files:
                blob = path.read_bytes()
                split = _split_pickle(blob)
                if split is None:
                    try:
                        value = pickle.loads(blob)
                    except Exception as e:
                        raise ValueError(f"{path}: not a readable pickle: {e}") from e
                    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (int, float))):
                        raise ValueError(f"{path}: expected a pickled (timestamp, data) tuple")
                    split = (float(value[0]), pickle.dumps(value[1], protocol=5))
                ts, data = split
                s.write(handle, data, ts=ts)
    return len(files)


