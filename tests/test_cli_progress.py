"""The command line's progress in a log: whole lines, a handful per phase, never a carriage-return flood."""

from __future__ import annotations

import io

from napari_tumorseg.cli._progress import ProgressLine, run_with_progress
from napari_tumorseg.jobs import Progress


def two_phases():
    for done in range(1, 201):
        yield Progress(done, 200, phase="segmenting", loss=0.5)
    for done in range(1, 4):
        yield Progress(done, 3, phase="checking")
    return "result"


def test_progress_on_a_pipe_is_a_few_whole_lines_per_phase(capsys):
    assert run_with_progress(two_phases()) == "result"  # pytest's stderr is no terminal: the log form
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    segmenting = [line for line in lines if line.startswith("segmenting:")]
    assert 10 <= len(segmenting) <= 12, lines
    assert segmenting[-1].startswith("segmenting: 200/200 step (100 %)") and "loss 0.5000" in segmenting[-1]
    assert lines[-1].startswith("checking: 3/3 step (100 %)")


def test_a_terminal_still_gets_the_bar(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    line = ProgressLine(unit="slice")
    assert not line.log
    with line:
        for done in range(1, 6):
            line(Progress(done, 5, phase="segmenting"))
    assert "\r" in terminal.getvalue() and "1/5" in terminal.getvalue()  # redrawn in place
