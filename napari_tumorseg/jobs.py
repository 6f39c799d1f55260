"""Long work, one contract: segmentation, adaptation, training and experiments alike.

A long job is a generator. It yields a :class:`Progress` after every step,
checks the cancel flag before every step, and stops by raising
:class:`Cancelled`, so nothing after the step it stopped at (saving a model
version, writing a result) runs. Its return value is the job's result.
:func:`drive` runs one to its end: the CLI with a progress line, the napari
widgets inside a thread worker, the tests with nothing at all::

    def score_all(sets, cancel=None):
        clock = Clock(len(sets), "scoring", cancel)
        scores = {}
        for item in sets:
            clock.check()                      # raises Cancelled when asked to stop
            scores[item.name] = score(item)
            yield clock.tick(detail=item.name)
        return scores

    scores = drive(score_all(sets), on_progress=print)

This module sits on the ground floor: it imports neither torch nor Qt.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .errors import TumorsegError

T = TypeVar("T")


class _Settable(Protocol):
    def is_set(self) -> bool: ...


# What a job accepts as its cancel flag: a threading.Event (or anything with
# is_set()), a callable returning True to stop, or None for "never".
CancelFlag = _Settable | Callable[[], bool] | None


class Cancelled(TumorsegError):
    """The user stopped a long job; what it would have written was not written.

    Args:
        phase: the phase it stopped in.
        done: steps of that phase finished before it stopped.
    """

    def __init__(self, phase: str = "", done: int = 0) -> None:
        self.phase = phase
        self.done = done
        where = f" during {phase}" if phase else ""
        super().__init__(f"cancelled{where} after {done} step(s); nothing was saved")


@dataclass(frozen=True)
class Progress:
    """One step of a long job done.

    Args:
        done: steps finished in this phase.
        total: steps the phase will take.
        phase: what the job is doing ("segmenting", "adapting", "training", ...).
        detail: a few words about the step just finished.
        elapsed: seconds since the phase started.
        loss: the training loss of the step (NaN where there is none).
        data: what a viewer may use at once (e.g. the slices just segmented), or None.
    """

    done: int
    total: int
    phase: str = ""
    detail: str = ""
    elapsed: float = 0.0
    loss: float = math.nan
    data: Any = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(self.done / self.total, 1.0)

    @property
    def eta(self) -> float:
        """Seconds left in the phase, from the mean step time so far (a bar's estimate)."""
        if self.done <= 0:
            return math.nan
        return self.elapsed / self.done * max(self.total - self.done, 0)


def is_cancelled(flag: CancelFlag) -> bool:
    """Whether ``flag`` says stop (see :data:`CancelFlag`)."""
    if flag is None:
        return False
    if isinstance(flag, threading.Event) or hasattr(flag, "is_set"):
        return bool(flag.is_set())  # type: ignore[union-attr]
    if callable(flag):
        return bool(flag())
    raise TypeError(f"cancel must be a threading.Event, a callable or None, not {type(flag).__name__}")


class Clock:
    """Counts the steps of a phase, checks the cancel flag, and makes the reports.

    Args:
        total: steps the phase will take.
        phase: its name, put in every report (a tick may name another).
        cancel: the job's cancel flag.
    """

    def __init__(self, total: int, phase: str = "", cancel: CancelFlag = None) -> None:
        self.total = int(total)
        self.phase = phase
        self.done = 0
        self.cancel = cancel
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def check(self) -> None:
        """Raise :class:`Cancelled` when the user asked to stop; call before each step."""
        if is_cancelled(self.cancel):
            raise Cancelled(self.phase, self.done)

    def tick(
        self, detail: str = "", *, units: int = 1, phase: str | None = None, loss: float = math.nan, data: Any = None
    ) -> Progress:
        """Count ``units`` finished steps and report them."""
        self.done += units
        if phase is not None:
            self.phase = phase
        return Progress(self.done, self.total, self.phase, detail, self.elapsed, float(loss), data)

    def start(self, detail: str = "") -> Progress:
        """The report before the first step (a bar can show the total at once)."""
        return Progress(self.done, self.total, self.phase, detail, self.elapsed)


def drive(job: Generator[Any, Any, T], on_progress: Callable[[Any], object] | None = None) -> T:
    """Run a long job to its end; returns its result.

    Args:
        job: the generator.
        on_progress: called with every report (a progress line, a GUI signal, a test's list).

    Raises:
        Cancelled: the job was cancelled; and whatever else the job raises.
    """
    while True:
        try:
            report = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(report)

