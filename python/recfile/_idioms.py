"""Python idioms over the compiled core: observables and decorators. No format logic here."""

from __future__ import annotations

import atexit
import functools
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from ._recfile import Replay, SessionWriter

F = TypeVar("F", bound=Callable[[Any], Any])

# Timer threads of live observables: stopped and joined at interpreter exit, before the
# interpreter stops running threads (a thread stopped then, inside a wait, aborts the process).
_timers: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
_stops: "weakref.WeakKeyDictionary[threading.Thread, Callable[[], None]]" = weakref.WeakKeyDictionary()


@atexit.register
def _stop_timers() -> None:
    threads = list(_timers)
    for t in threads:
        stop = _stops.get(t)
        if stop is not None:
            stop()
    for t in threads:
        t.join(timeout=1.0)


def recorded(session: "SessionWriter", kind: str) -> Callable[[F], F]:
    """The decorator behind ``SessionWriter.recorded(kind)``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(arg: Any) -> Any:
            return session.record_call(kind, arg, fn)

        return wrapper  # type: ignore[return-value]

    return decorate


def observable(
    replay: "Replay",
    speed: float = 1.0,
    seek: Any = None,
    duration: Any = None,
    from_timestamp: Any = None,
    loop: bool = False,
    transform: Callable[[Any], Any] | None = None,
) -> Any:
    """A reactivex Observable of ``replay``'s frames at their due times.

    Each subscription runs one timer thread (not a thread per frame) that iterates
    ``replay.iterate_realtime(...)`` (GIL released while waiting) and emits each frame, passed
    through ``transform`` when given. Disposing stops it within a few milliseconds.
    """
    try:
        import reactivex
        from reactivex.disposable import Disposable
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Replay.stream() needs reactivex: pip install reactivex") from e

    def subscribe(observer: Any, scheduler: Any = None) -> Any:
        frames = replay.iterate_realtime(
            speed=speed, seek=seek, duration=duration, from_timestamp=from_timestamp, loop=loop
        )
        disposed = threading.Event()

        def run() -> None:
            try:
                for frame in frames:
                    if disposed.is_set():
                        return
                    item = transform(frame) if transform is not None else frame
                    observer.on_next(item)
                if not disposed.is_set():
                    observer.on_completed()
            except Exception as e:  # delivered to the subscriber, as reactivex does
                if not disposed.is_set():
                    observer.on_error(e)

        thread = threading.Thread(target=run, name="recfile-stream", daemon=True)

        def dispose() -> None:
            disposed.set()
            frames.stop()

        _timers.add(thread)
        _stops[thread] = dispose
        thread.start()

        return Disposable(dispose)

    return reactivex.create(subscribe)
