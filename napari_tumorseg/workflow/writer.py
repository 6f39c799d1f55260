"""Who writes the session's files: the caller, at once (the CLI, the tests), or one thread behind the viewer.

Every correction, prompt, undo and redo is saved as a few atomic file writes,
each ending with two ``fsync`` calls (the file, its folder): 30-50 ms per
edit on the development machine. On the GUI thread that is a stall the user
feels after every click (``tumorseg bench-gui`` measured p99 51-76 ms for a
prompt with the writes there). In the background the viewer shows the edit
at once and one thread writes behind it.

What stays true in the background (why it is still crash-safe):

- the writes run one at a time in the order they were asked for, so the
  files on disk always pass through the same states as when written at
  once: a crash at any point leaves one of them (``tests/crash_points.py``
  kills a background run at every mutation, as it does the synchronous one);
- what is handed over is bytes, or arrays the caller will not change again
  (copies: a slice of the labels taken with fancy indexing, an edit's diff),
  never the live labels the viewer keeps editing; compressing them is the
  writer's work too;
- ``flush`` waits for everything asked so far: the state flushes before it
  reads a session back, the dock when it closes, and the interpreter at exit;
- a write that fails (a full disk) does not stop the ones after it, which
  hold the newer labels whole (the corrections and the undo index are each
  rewritten in full every time); the failure goes to ``on_failure`` (the
  viewer shows it), or, with no one listening, ``flush`` raises it.

The window a crash can lose is the queue's length: the last edit's writes,
tens of milliseconds; the brush already waits 300 ms before it saves a stroke.
"""

from __future__ import annotations

import atexit
import io
import queue
import threading
from collections.abc import Callable
from os import PathLike
from typing import Any

import numpy as np

from ..io.atomic import atomic_write_bytes, atomic_write_json


class SessionWriter:
    """Runs the session's file writes, at once or in order on one background thread.

    Args:
        background: queue the writes on a thread of their own (see ``start_background``).
    """

    def __init__(self, background: bool = False) -> None:
        self._queue: queue.Queue[Callable[[], Any] | None] | None = None
        self._failures: list[BaseException] = []
        self._lock = threading.Lock()
        self.on_failure: Callable[[BaseException], None] | None = None
        if background:
            self.start_background()

    @property
    def background(self) -> bool:
        return self._queue is not None

    def start_background(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """From now on queue the writes on a background thread; ``on_failure`` hears of a failed one
        (on that thread). Calling it again only replaces ``on_failure``."""
        if on_failure is not None:
            self.on_failure = on_failure
        if self._queue is not None:
            return
        self._queue = queue.Queue()
        threading.Thread(target=self._work, name="tumorseg-session-writer", daemon=True).start()
        atexit.register(self._flush_at_exit)

    def write_bytes(self, path: str | PathLike[str], data: bytes, *, overwrite: bool = False,
                    make_folder: bool = False) -> None:
        self.run(lambda: atomic_write_bytes(path, data, overwrite=overwrite, make_folder=make_folder))

    def write_npz(self, path: str | PathLike[str], arrays: dict[str, np.ndarray], *, overwrite: bool = False,
                  make_folder: bool = False) -> None:
        """A compressed ``.npz`` of ``arrays`` (which the caller must not change afterwards)."""

        def encode_and_write() -> None:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite, make_folder=make_folder)

        self.run(encode_and_write)

    def write_json(self, path: str | PathLike[str], data: Any, *, overwrite: bool = False,
                   make_folder: bool = False) -> None:
        self.run(lambda: atomic_write_json(path, data, overwrite=overwrite, make_folder=make_folder))

    def run(self, operation: Callable[[], Any]) -> None:
        """Run ``operation`` now, or after every operation asked before it (in the background)."""
        if self._queue is None:
            operation()
        else:
            self._queue.put(operation)

    def flush(self) -> None:
        """Wait until every write asked so far is done.

        Raises:
            The first failure of a background write (e.g. ``WriteError``), when no ``on_failure`` heard it.
        """
        if self._queue is not None:
            self._queue.join()
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise failures[0]

    def _work(self) -> None:
        assert self._queue is not None
        while True:
            operation = self._queue.get()
            try:
                if operation is not None:
                    operation()
            except BaseException as error:  # noqa: BLE001 - reported, and the next writes still run
                self._report(error)
            finally:
                self._queue.task_done()

    def _report(self, error: BaseException) -> None:
        listener = self.on_failure
        if listener is not None:
            try:
                listener(error)
                return
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the saving; flush raises it
                pass
        with self._lock:
            self._failures.append(error)

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except BaseException:  # noqa: BLE001 - already reported through on_failure
            pass
