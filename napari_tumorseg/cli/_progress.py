"""The command line's progress line: a long job's reports as a bar on stderr.

Every command that runs a long job (see ``napari_tumorseg.jobs``) drives it
with :func:`run_with_progress`; stdout stays free for the command's result.
"""

from __future__ import annotations

import math
import sys
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

    def __init__(self, *, quiet: bool = False, unit: str = "step", postfix: Postfix = loss_postfix) -> None:
        self.quiet = quiet
        self.unit = unit
        self.postfix = postfix
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
        from tqdm import tqdm

        return tqdm(total=report.total, initial=report.done, unit=self.unit, file=sys.stderr,
                    dynamic_ncols=True, leave=False)

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
