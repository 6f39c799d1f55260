"""Progress reports and cancellation shared by every adaptation method.

Each method is a generator: it yields an :class:`AdaptProgress` after every
optimisation step and checks the cancel flag before each one. The GUI runs the
generator in a ``thread_worker``; the CLI drives it with a progress bar. A
cancel raises :class:`AdaptationCancelled` from inside the generator, so the
caller's ``for`` loop ends with that exception and nothing after the method
(scoring, saving a version) runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..errors import AdaptationError

CancelFlag = Callable[[], bool] | threading.Event | None

# Phases of one adaptation run, in the order they happen.
PHASE_SCORING_BEFORE = "scoring-before"
PHASE_ADAPTING = "adapting"
PHASE_SCORING_AFTER = "scoring-after"
PHASE_SAVING = "saving"


class AdaptationCancelled(AdaptationError):
    """The user cancelled an adaptation; no model version was produced."""

    def __init__(self, phase: str, step: int) -> None:
        self.phase = phase
        self.step = step
        super().__init__(f"adaptation cancelled during {phase} at step {step}; the active model is unchanged")


@dataclass(frozen=True)
class AdaptProgress:
    """One step of an adaptation run.

    Args:
        step: steps done in this phase (1-based after the first step).
        total: steps this phase will take.
        loss: the training loss of the last step (NaN in scoring phases).
        elapsed: seconds since the phase started.
        eta: estimated seconds left in the phase (a running mean of step times).
        phase: one of the ``PHASE_*`` names.
        detail: a short free text for the progress bar (task order, batch number).
    """

    step: int
    total: int
    loss: float
    elapsed: float
    eta: float
    phase: str = PHASE_ADAPTING
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def cancel_checker(flag: CancelFlag) -> Callable[[], bool]:
    """Turn a cancel flag (an Event, a callable returning True to stop, or None) into a callable."""
    if flag is None:
        return lambda: False
    if isinstance(flag, threading.Event):
        return flag.is_set
    if callable(flag):
        return flag
    raise TypeError(f"cancel must be a threading.Event, a callable or None, not {type(flag).__name__}")


class StepClock:
    """Times the steps of one phase and turns them into progress reports.

    Args:
        total: the number of steps the phase will take.
        phase: the phase name put in every report.
        cancel: the cancel flag, checked by :meth:`check`.
    """

    def __init__(self, total: int, phase: str, cancel: CancelFlag = None) -> None:
        self.total = int(total)
        self.phase = phase
        self.step = 0
        self._is_cancelled = cancel_checker(cancel)
        self._start = time.perf_counter()

    def check(self) -> None:
        """Raise AdaptationCancelled when the user asked to stop; call before each step."""
        if self._is_cancelled():
            raise AdaptationCancelled(self.phase, self.step)

    def tick(self, loss: float = float("nan"), detail: str = "") -> AdaptProgress:
        """Count one finished step and report it."""
        self.step += 1
        elapsed = time.perf_counter() - self._start
        # The first steps are slower (allocation, warm-up); a plain mean is good enough for a bar.
        eta = elapsed / self.step * max(self.total - self.step, 0)
        return AdaptProgress(self.step, self.total, float(loss), elapsed, eta, self.phase, detail)
