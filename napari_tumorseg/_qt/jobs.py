"""Background jobs for the panels: a generator runs in a napari thread worker, the GUI stays live.

Every long operation of the core is a generator of small progress reports;
this module runs one in a worker, forwards its reports to the GUI thread and
turns its errors into napari notifications (a one-line message for the
user's mistakes, the exception's text otherwise), so no panel ever blocks
the event loop or lets an exception reach Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

logger = logging.getLogger(__name__)


class Job:
    """A running background generator with a cancel flag the core can poll.

    Args:
        make_generator: called in the worker thread with the cancel event; returns the generator.
        on_progress: called on the GUI thread with each yielded report.
        on_done: called on the GUI thread with the generator's return value.
        on_cancelled: called on the GUI thread when the job stopped on request.
        on_failed: called on the GUI thread with the error (after the notification).
        what: a few words for error messages ("segmentation", "adaptation").
    """

    def __init__(
        self,
        make_generator: Callable[[threading.Event], Generator[Any, None, Any]],
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
        self._cancelled = False
        self.done = False  # set on the GUI thread once every callback has run

        def work() -> Generator[Any, None, Any]:
            return (yield from make_generator(self.cancel_event))

        # We handle errors ourselves (errored below); napari must not re-raise them in the GUI thread.
        self.worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        if on_progress is not None:
            self.worker.yielded.connect(on_progress)
        self.worker.returned.connect(lambda value: self._returned(value, on_done, on_cancelled))
        self.worker.aborted.connect(lambda: on_cancelled() if on_cancelled else None)
        self.worker.errored.connect(lambda error: self._errored(error, on_cancelled, on_failed))
        if on_finished is not None:
            self.worker.finished.connect(on_finished)
        self.worker.finished.connect(self._mark_done)

    def start(self) -> Job:
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Stop at the next step; the core leaves everything as it was before the job."""
        self._cancelled = True
        self.cancel_event.set()
        self.worker.quit()

    @property
    def is_running(self) -> bool:
        """True until the job's results have reached the GUI (not just until the thread ends)."""
        return not self.done

    def _mark_done(self) -> None:
        self.done = True

    def _returned(self, value: Any, on_done: Callable | None, on_cancelled: Callable | None) -> None:
        # The core returns None when it noticed the cancel flag itself.
        if value is None and self._cancelled:
            if on_cancelled:
                on_cancelled()
        elif on_done:
            on_done(value)

    def _errored(self, error: BaseException, on_cancelled: Callable | None, on_failed: Callable | None) -> None:
        from ..adapt.progress import AdaptationCancelled

        if isinstance(error, AdaptationCancelled) or (self._cancelled and isinstance(error, GeneratorExit)):
            if on_cancelled:
                on_cancelled()
            return
        notify_error(error, self.what)
        if on_failed:
            on_failed(error)


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


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or "out of memory" in str(error).lower()
