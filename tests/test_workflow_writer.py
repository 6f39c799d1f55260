"""The session writer: at once, or in order on one background thread, failures reported, flush waits."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_tumorseg.errors import WriteError
from napari_tumorseg.workflow.writer import SessionWriter


def test_at_once_by_default_and_a_failure_raises_to_the_caller(tmp_path):
    writer = SessionWriter()
    writer.write_bytes(tmp_path / "a.bin", b"1")
    assert (tmp_path / "a.bin").read_bytes() == b"1"
    with pytest.raises(WriteError):
        writer.write_bytes(tmp_path / "a.bin", b"2")  # no overwrite asked
    assert not writer.background


def test_background_writes_run_in_the_order_asked_off_the_callers_thread(tmp_path):
    writer = SessionWriter(background=True)
    gate, threads, order = threading.Event(), set(), []
    writer.run(gate.wait)  # holds the queue: nothing below may run before the caller goes on
    for n in range(20):
        writer.write_bytes(tmp_path / "file.bin", str(n).encode(), overwrite=True)
        writer.run(lambda n=n: (order.append(n), threads.add(threading.get_ident())))
    assert not (tmp_path / "file.bin").exists() and order == []
    gate.set()
    writer.flush()
    assert order == list(range(20))
    assert (tmp_path / "file.bin").read_bytes() == b"19"
    assert threads and threading.get_ident() not in threads


def test_a_failed_background_write_goes_to_the_listener_and_the_next_writes_still_run(tmp_path):
    heard = []
    writer = SessionWriter()
    writer.start_background(heard.append)
    (tmp_path / "taken.bin").write_bytes(b"old")
    writer.write_bytes(tmp_path / "taken.bin", b"new")  # refused: exists, no overwrite
    writer.write_bytes(tmp_path / "next.bin", b"next")
    writer.flush()  # heard by the listener: not raised again
    assert len(heard) == 1 and isinstance(heard[0], WriteError) and "taken.bin" in str(heard[0])
    assert (tmp_path / "taken.bin").read_bytes() == b"old"
    assert (tmp_path / "next.bin").read_bytes() == b"next"


def test_with_no_listener_flush_raises_a_background_failure_once(tmp_path):
    writer = SessionWriter(background=True)
    (tmp_path / "taken.bin").write_bytes(b"old")
    writer.write_bytes(tmp_path / "taken.bin", b"new")
    with pytest.raises(WriteError):
        writer.flush()
    writer.flush()


def test_a_review_state_with_a_background_writer_saves_undoes_and_reopens(tmp_path, small_glioma):
    """Undo right after an edit (its file maybe not written yet) and a reopen after flushing."""
    from napari_tumorseg.prompts import edit_between
    from napari_tumorseg.workflow.state import ReviewState

    state = ReviewState(sessions_root=tmp_path, writer=SessionWriter(background=True))
    state.open_case(small_glioma)
    prediction = np.zeros(small_glioma.shape, np.uint8)
    state.accept_prediction(prediction, "m")
    edited = prediction.copy()
    edited[5, 10:20, 10:20] = 3
    state.apply_edit(edit_between(state.labels, edited, "a prompt"))
    state.undo()
    state.redo()
    state.writer.flush()
    again = ReviewState(sessions_root=tmp_path)
    restored = again.open_case(small_glioma)
    assert not restored.problems
    np.testing.assert_array_equal(again.labels, edited)
    assert again.history.undo_what == "a prompt"
