"""Background jobs for the panels: a long job of the core runs in a napari thread worker, the GUI stays live.

The job is driven by the same :func:`napari_tumorseg.jobs.drive` the command
line uses; its progress reports are relayed to the GUI thread, its result
and errors arrive there too, and its errors become napari notifications (a
one-line message for the user's mistakes, the exception's text otherwise),
so no panel ever blocks the event loop or lets an exception reach Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

from qtpy.QtCore import QObject, Signal, Slot

from ..jobs import Cancelled, drive

logger = logging.getLogger(__name__)


class _Relay(QObject):
    """Carries progress reports from the worker thread to a callback on the GUI thread."""

    report = Signal(object)

    def __init__(self, callback: Callable[[Any], None]) -> None:
        super().__init__()
        self._callback = callback
        # A slot of a QObject that lives on the GUI thread: emitted from the worker, delivered here.
        self.report.connect(self._deliver)

    @Slot(object)
    def _deliver(self, report: Any) -> None:
        self._callback(report)


class Job:
    """A long job running in a worker thread, with the one cancel flag the core polls.

    Args:
        make_job: called in the worker thread with the cancel event; returns the job's generator.
        on_progress: called on the GUI thread with each report.
        on_done: called on the GUI thread with the job's result.
        on_cancelled: called on the GUI thread when the job stopped on request.
        on_failed: called on the GUI thread with the error (after the notification).
        on_finished: called on the GUI thread at the very end, whatever happened.
        what: a few words for error messages ("segmentation", "adaptation").
    """

    def __init__(
        self,
        make_job: Callable[[threading.Event], Generator[Any, None, Any]],
        *,
        on_progress: Callable[[Any], None] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        what: str = "the job",
    ) -> None:
        from napari.qt.threading import create_worker

        self.cancel_event = threading.Event()
        self.what = what
        self.done = False  # set on the GUI thread once every callback has run
        self._on_done, self._on_cancelled, self._on_failed = on_done, on_cancelled, on_failed
        self._relay = _Relay(on_progress or (lambda report: None))
        # The reports, on the GUI thread (a test or a benchmark may listen too).
        self.progress = self._relay.report
        emit = self._relay.report.emit

        def work() -> Any:
            return drive(make_job(self.cancel_event), on_progress=emit)

        # We handle errors ourselves (errored below); napari must not re-raise them in the GUI thread.
        self.worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(self._returned)
        self.worker.errored.connect(self._errored)
        if on_finished is not None:
            self.worker.finished.connect(on_finished)
        self.worker.finished.connect(self._mark_done)

    def start(self) -> Job:
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Stop at the next step; the core leaves everything as it was before the job."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def is_running(self) -> bool:
        """True until the job's results have reached the GUI (not just until the thread ends)."""
        return not self.done

    def _mark_done(self) -> None:
        self.done = True

    def _returned(self, value: Any) -> None:
        # A job cancelled after its last step still counts as cancelled: its result is not wanted.
        if self.cancelled:
            self._cancelled()
        elif self._on_done is not None:
            self._on_done(value)

    def _errored(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self._cancelled()
            return
        notify_error(error, self.what)
        if self._on_failed is not None:
            self._on_failed(error)

    def _cancelled(self) -> None:
        if self._on_cancelled is not None:
            self._on_cancelled()


def notify_error(error: BaseException, what: str) -> None:
    """Show an error as a napari notification: the message alone for our errors, more otherwise."""
    from napari.utils.notifications import show_error

    from ..errors import TumorsegError

    if isinstance(error, TumorsegError):
        show_error(str(error))
        return
    if _is_out_of_memory(error):
        show_error(f"{what} ran out of memory: close other programs, or choose the CPU as device")
        return
    logger.error("%s failed", what, exc_info=(type(error), error, error.__traceback__))
    show_error(f"{what} failed: {type(error).__name__}: {error}")


def notify_warning(message: str) -> None:
    """A one-line napari warning (a damaged session file set aside, a repaired case)."""
    from napari.utils.notifications import show_warning

    show_warning(message)


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or "out of memory" in str(error).lower()
