"""The machinery of a bootstrap run: step events for the CLI, and the undo that makes the run a transaction.

Each step reports ``start``, throttled ``progress``, ``log`` lines and ``done``/``skip``/``fail`` through
one sink, and records its time. Undo actions are registered as the run makes changes and are run,
newest first, whatever stops it: an error, a Ctrl-C, or a SIGTERM turned into an error.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from devnix import bootstrap as core
from devnix.errors import DevnixError

PROGRESS_EVERY = 0.1  # seconds between progress events of one step


@dataclass(frozen=True)
class Event:
    """Progress for the CLI. ``kind``: start, progress, log, done, skip, fail."""

    kind: str
    step: str
    title: str = ""
    text: str = ""
    completed: int | None = None
    total: int | None = None
    seconds: float | None = None


EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class StepTime:
    key: str
    title: str
    seconds: float
    detail: str
    skipped: bool = False


class Handle:
    """What a running step may report: progress (throttled) and log lines."""

    def __init__(self, key: str, title: str, sink: EventSink) -> None:
        self.key, self.title, self.sink = key, title, sink
        self.detail = ""
        self._last = 0.0

    def progress(self, completed: int, total: int | None = None, text: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY:
            self._last = now
            self.sink(Event("progress", self.key, self.title, text, completed, total))

    def log(self, line: str) -> None:
        self.sink(Event("log", self.key, self.title, line))


class Steps:
    def __init__(self, steps: tuple[core.Step, ...], sink: EventSink) -> None:
        self.titles = {s.key: s.title for s in steps}
        self.sink = sink
        self.done: list[StepTime] = []

    @contextlib.contextmanager
    def step(self, key: str) -> Iterator[Handle]:
        title = self.titles[key]
        handle = Handle(key, title, self.sink)
        started = time.monotonic()
        self.sink(Event("start", key, title))
        try:
            yield handle
        except BaseException:
            self.sink(Event("fail", key, title, seconds=time.monotonic() - started))
            raise
        seconds = time.monotonic() - started
        self.done.append(StepTime(key, title, seconds, handle.detail))
        self.sink(Event("done", key, title, handle.detail, seconds=seconds))

    def skip(self, key: str, reason: str) -> None:
        title = self.titles[key]
        self.done.append(StepTime(key, title, 0.0, reason, skipped=True))
        self.sink(Event("skip", key, title, reason, seconds=0.0))


# --- the transaction: undo what this run did, whatever stops it -------------------------------------


class Undo:
    """Undo actions, newest first; after a successful run only the ``always`` ones run."""

    def __init__(self) -> None:
        self._on_failure: list[Callable[[], None]] = []
        self._always: list[Callable[[], None]] = []

    def on_failure(self, action: Callable[[], None]) -> None:
        self._on_failure.append(action)

    def always(self, action: Callable[[], None]) -> None:
        self._always.append(action)

    def run(self, failed: bool) -> list[str]:
        """Run the actions; a second Ctrl-C must not leave half the clean-up undone, so signals are held."""
        problems: list[str] = []
        with _signals_held():
            actions = (self._on_failure[::-1] if failed else []) + self._always[::-1]
            for action in actions:
                try:
                    action()
                except DevnixError as error:
                    problems.append(error.message)
                except Exception as error:  # clean-up goes on; the first failure is what the user sees
                    problems.append(f"{type(error).__name__}: {error}")
        self._on_failure.clear()
        self._always.clear()
        return problems


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """SIGTERM (``timeout``, a cancelled CI job, ``docker stop`` of a dev container running devnix) would
    end Python on the spot; raised as an error instead, it runs the same clean-up as a Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number: int, frame: object) -> None:
        raise core.Terminated("terminated by SIGTERM; the builder and any new names were removed")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
