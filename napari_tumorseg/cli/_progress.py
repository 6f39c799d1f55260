"""The command line's progress line: a long job's reports as a bar on stderr.

Every command that runs a long job (see ``napari_tumorseg.jobs``) drives it
with :func:`run_with_progress`; stdout stays free for the command's result.
On a terminal it is a tqdm bar redrawn in place. Anywhere else (a log file, a
pipe, CI) redrawing means a carriage return per step, hundreds of them on one
"line": there it prints whole lines instead, one when a phase starts, one
every 10 % (or 30 s) and one when it ends.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ..jobs import Progress, drive

T = TypeVar("T")
Postfix = Callable[[Progress], dict[str, str]]


def loss_postfix(report: Progress) -> dict[str, str]:
    """The step's loss, where it has one."""
    return {} if math.isnan(report.loss) else {"loss": f"{report.loss:.4f}"}


class ProgressLine:
    """A tqdm bar that follows the reports; a phase that starts over gets a bar of its own.

    Args:
        quiet: show nothing.
        unit: what a step is ("slice", "step", "run").
        postfix: the numbers shown after the bar (default: the loss).
    """

    def __init__(self, *, quiet: bool = False, unit: str = "step", postfix: Postfix = loss_postfix,
                 log: bool | None = None) -> None:
        self.quiet = quiet
        self.unit = unit
        self.postfix = postfix
        self.log = (not _is_terminal(sys.stderr)) if log is None else log
        self._bar: Any = None

    def __call__(self, report: Progress) -> None:
        if self.quiet:
            return
        bar = self._bar
        if bar is None or report.done < bar.n or report.total != bar.total:
            self.close()
            bar = self._bar = self._new_bar(report)
        bar.set_description(report.phase, refresh=False)
        bar.set_postfix(self.postfix(report), refresh=False)
        bar.update(report.done - bar.n)

    def write(self, line: str) -> None:
        """A line above the bar (a validation score, a warning)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        elif not self.quiet:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _new_bar(self, report: Progress) -> Any:
        if self.log:
            return LogLines(report.total, report.done, self.unit)
        from tqdm import tqdm

        return tqdm(total=report.total, initial=report.done, unit=self.unit, file=sys.stderr,
                    dynamic_ncols=True, leave=False)

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LogLines:
    """What a tqdm bar shows, as whole lines for a log: at a phase's start, every 10 % or 30 s, at its end.

    It has the few methods :class:`ProgressLine` uses of a tqdm bar.
    """

    STEP_FRACTION = 0.1
    STEP_SECONDS = 30.0

    def __init__(self, total: int, initial: int, unit: str) -> None:
        self.total, self.n, self.unit = total, initial, unit
        self.description, self.numbers = "", ""
        self._started = self._last_time = time.monotonic()
        self._last_shown: int | None = None

    def set_description(self, text: str, refresh: bool = False) -> None:
        self.description = text

    def set_postfix(self, values: dict[str, str], refresh: bool = False) -> None:
        self.numbers = ", ".join(f"{key} {value}" for key, value in values.items())

    def update(self, steps: int) -> None:
        self.n += steps
        now = time.monotonic()
        due = self._last_shown is None or self.n >= self.total or now - self._last_time >= self.STEP_SECONDS \
            or self.n - self._last_shown >= max(1, math.ceil(self.STEP_FRACTION * self.total))
        if due and self.n != self._last_shown:
            self._show(now)

    def _show(self, now: float) -> None:
        self._last_shown, self._last_time = self.n, now
        share = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        numbers = f", {self.numbers}" if self.numbers else ""
        print(f"{self.description or 'working'}: {self.n}/{self.total} {self.unit}{share}, "
              f"{now - self._started:.1f} s{numbers}", file=sys.stderr, flush=True)

    def write(self, line: str, file: Any = None) -> None:
        print(line, file=file or sys.stderr, flush=True)

    def close(self) -> None:
        if self._last_shown != self.n:
            self._show(time.monotonic())


def run_with_progress(
    job: Generator[Progress, Any, T],
    *,
    quiet: bool = False,
    unit: str = "step",
    postfix: Postfix = loss_postfix,
    also: Callable[[Progress, ProgressLine], object] | None = None,
) -> T:
    """Drive ``job`` to its end with a progress line on stderr; returns its result.

    Args:
        job: the long job.
        quiet: no progress line.
        unit: what a step is.
        postfix: the numbers shown after the bar.
        also: called with every report and the line (e.g. to write a validation score above it).
    """
    with ProgressLine(quiet=quiet, unit=unit, postfix=postfix) as line:

        def show(report: Progress) -> None:
            line(report)
            if also is not None:
                also(report, line)

        return drive(job, on_progress=show)
