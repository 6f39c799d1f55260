"""The Correct panel's prompt tools: click to remove or grow a lesion, fill or propagate slices, undo and redo.

Thin: the work is in ``workflow.prompting`` (Qt-free, array in, edit out),
run in a thread worker so the viewer stays live; the review state applies
the edit, counts its slices as corrected and records it for undo, and the
plugin's layers show it. The clicks come from a mouse callback on the
Segmentation layer (active in the pan/zoom mode only, so napari's brush
keeps working as it does); Ctrl+Z / Ctrl+Shift+Z are bound on that layer
(overwriting napari's own undo, which stops at the slice) and in the dock,
and unbound when the dock closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QShortcut,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import PromptError
from ..io.labels import CLASS_ABBREVIATIONS, CLASS_NAMES, ED, ET, NCR
from ..jobs import Progress
from .jobs import Job, notify_error

if TYPE_CHECKING:
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState
    from .layers import PluginLayers

UNDO_KEYS, REDO_KEYS = "Control-Z", "Control-Shift-Z"
TOOL_HINTS = {
    "brush": "napari's brush, eraser and fill (the layer controls, top left)",
    "remove": "click a false lesion: it is removed in 3D",
    "grow": "click inside a missed lesion: it is grown in 3D as the class chosen",
}
MOVED_PX = 4  # a press that moves further is a pan, not a click


@dataclass(frozen=True)
class _Refused:
    """A prompt with nothing to do, and why. Returned, not raised, and not an exception either: a worker that
    returns an exception is taken as failed, and the refusal would become an error notification."""

    reason: str


class PromptTools(QWidget):
    """Prompt tools and undo/redo, bound to the plugin's Segmentation layer.

    Args:
        state: the review state.
        layers: the plugin's layers.
        settings: the persisted settings (the device the model runs on).
    """

    def __init__(self, state: ReviewState, layers: PluginLayers, settings: Settings) -> None:
        super().__init__()
        self.state, self.layers, self.settings = state, layers, settings
        self.job: Job | None = None
        self.tool = "brush"
        self._bound: Any = None  # the layer the callbacks are on
        self.tool_buttons = QButtonGroup(self)
        buttons = {}
        for tool, text in (("brush", "Brush"), ("remove", "Remove lesion"), ("grow", "Grow lesion")):
            button = QPushButton(text)
            button.setCheckable(True)
            button.setToolTip(TOOL_HINTS[tool])
            self.tool_buttons.addButton(button)
            buttons[tool] = button
            button.clicked.connect(lambda _=False, t=tool: self.set_tool(t))
        self.buttons = buttons
        buttons["brush"].setChecked(True)
        self.class_box = QComboBox()
        for value in (ET, NCR, ED):
            self.class_box.addItem(f"{CLASS_ABBREVIATIONS[value]} — {CLASS_NAMES[value]}", value)
        self.class_box.setToolTip("the class a grown lesion gets")
        self.fill_button = QPushButton("Fill between")
        self.fill_button.setToolTip("interpolate the slices between the corrected slices around this one")
        self.propagate_button = QPushButton("Propagate ±")
        self.propagate_button.setToolTip("carry this slice's lesions to its neighbours with the model")
        self.reach_box = QSpinBox()
        self.reach_box.setRange(1, 10)
        self.reach_box.setValue(3)
        self.reach_box.setSuffix(" slices")
        self.undo_button, self.redo_button = QPushButton("Undo"), QPushButton("Redo")
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
        self.fill_button.clicked.connect(self.fill)
        self.propagate_button.clicked.connect(self.propagate)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._lay_out()
        self._shortcuts = [QShortcut(QKeySequence(keys), self) for keys in ("Ctrl+Z", "Ctrl+Shift+Z")]
        for shortcut, slot in zip(self._shortcuts, (self.undo, self.redo)):
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        state.case_opened.connect(lambda *_: self._bind())
        state.history_changed.connect(self._history_changed)
        self._history_changed()

    def _lay_out(self) -> None:
        grid = QGridLayout()
        grid.addWidget(self.buttons["brush"], 0, 0)
        grid.addWidget(self.buttons["remove"], 0, 1)
        grid.addWidget(self.buttons["grow"], 1, 0)
        grid.addWidget(self.class_box, 1, 1)
        grid.addWidget(self.fill_button, 2, 0)
        grid.addWidget(self.propagate_button, 3, 0)
        grid.addWidget(self.reach_box, 3, 1)
        grid.addWidget(self.undo_button, 4, 0)
        grid.addWidget(self.redo_button, 4, 1)
        for column in (0, 1):
            grid.setColumnStretch(column, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addWidget(self.status)

    # --- the Segmentation layer's clicks and keys ----------------------------------------

    def _bind(self) -> None:
        layer = self.layers.segmentation(create=False)
        if layer is None or layer is self._bound:
            return
        self.unbind()
        layer.mouse_drag_callbacks.append(self._on_press)
        layer.bind_key(UNDO_KEYS, lambda _layer: self.undo(), overwrite=True)
        layer.bind_key(REDO_KEYS, lambda _layer: self.redo(), overwrite=True)
        self._bound = layer
        self.set_tool(self.tool)

    def unbind(self) -> None:
        """Take the callbacks and keys off the layer (when the dock closes, or another case opens)."""
        layer, self._bound = self._bound, None
        if layer is None:
            return
        if self._on_press in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._on_press)
        for keys in (UNDO_KEYS, REDO_KEYS):
            layer.bind_key(keys, None)

    def set_tool(self, tool: str) -> None:
        """"brush" (napari's own tools), "remove" or "grow" (clicks on the Segmentation layer)."""
        self.tool = tool
        self.buttons[tool].setChecked(True)
        layer = self._bound
        if layer is not None and tool != "brush":
            layer.mode = "pan_zoom"  # napari's brush would paint where the prompt clicks
            self.layers.viewer.layers.selection.active = layer
        self.status.setText(TOOL_HINTS[tool][0].upper() + TOOL_HINTS[tool][1:] + ".")

    def _on_press(self, layer, event):
        """A click (press and release without moving) in pan/zoom mode runs the chosen tool there."""
        if self.tool == "brush" or layer.mode != "pan_zoom" or event.type != "mouse_press":
            return
        start_position, start_pixels = tuple(event.position), event.pos
        yield
        while event.type == "mouse_move":
            if abs(event.pos[0] - start_pixels[0]) + abs(event.pos[1] - start_pixels[1]) > MOVED_PX:
                return  # a pan
            yield
        self.click(layer.world_to_data(start_position))

    # --- the tools ----------------------------------------------------------------------

    def click(self, point) -> Job | None:
        """Run the current click tool at ``point`` ((z, y, x) in data coordinates)."""
        from ..workflow.prompting import grow_at, remove_at

        point = tuple(float(v) for v in point)[-3:]
        if self.tool == "remove":
            return self._run(lambda labels: remove_at(self.state, labels, point), "removing the lesion")
        if self.tool == "grow":
            label = int(self.class_box.currentData())
            return self._run(lambda labels: grow_at(self.state, labels, point, label), "growing the lesion")
        return None

    def fill(self) -> Job | None:
        from ..workflow.prompting import fill_around

        z = self.layers.current_slice()
        return self._run(lambda labels: fill_around(self.state, labels, z), "filling the slices")

    def propagate(self) -> Job | None:
        from ..workflow.prompting import propagate_from

        state, version, z, reach = self.state, self.state.selected_version, self.layers.current_slice(), \
            self.reach_box.value()
        if version is None:
            self.status.setText("No model to propagate with.")
            return None
        device = self.settings.device

        def work(labels):
            return propagate_from(state, labels, z, state.segmenter(version.id, device), reach)

        return self._run(work, "propagating the slice")

    def _run(self, compute, what: str) -> Job | None:
        """Compute an edit in a worker from a copy of the labels; apply it on the GUI thread."""
        state = self.state
        if state.case is None or state.labels is None:
            self.status.setText("Open a case first.")
            return None
        if self.job is not None and self.job.is_running:
            self.status.setText("Busy with the last prompt…")
            return None
        self.layers.save_edits_now()  # a stroke just made is its own undo step, before the prompt's
        labels, case = state.labels.copy(), state.case

        def working(cancel):
            yield Progress(0, 1, what)
            try:
                return compute(labels)
            except PromptError as refused:  # nothing to do there: a line in the panel, not an error
                return _Refused(str(refused))

        def done(edit) -> None:
            if state.case is not case:
                return
            if isinstance(edit, _Refused):
                self.status.setText(edit.reason[0].upper() + edit.reason[1:] + ".")
                return
            state.apply_edit(edit)
            self.status.setText(f"{edit.what[0].upper()}{edit.what[1:]}; {len(state.corrected)} corrected slice(s).")

        self.status.setText(f"{what[0].upper()}{what[1:]}…")
        self.job = Job(working, on_done=done, on_failed=self._failed, what=what)
        return self.job.start()

    def _failed(self, error: BaseException) -> None:
        self.status.setText(str(error))

    def undo(self) -> None:
        self._step(self.state.undo)

    def redo(self) -> None:
        self._step(self.state.redo)

    def _step(self, move) -> None:
        if self.state.case is None:
            return
        self.layers.save_edits_now()
        try:
            edit = move()
        except PromptError as error:
            self.status.setText(str(error)[0].upper() + str(error)[1:] + ".")
            return
        except Exception as error:  # a full disk while saving: the notification says it
            notify_error(error, "undo")
            return
        self.status.setText(f"{edit.what[0].upper()}{edit.what[1:]}.")

    def _history_changed(self) -> None:
        history = self.state.history
        for button, can, what, verb in (
            (self.undo_button, history is not None and history.can_undo, history and history.undo_what, "Undo"),
            (self.redo_button, history is not None and history.can_redo, history and history.redo_what, "Redo"),
        ):
            button.setEnabled(bool(can))
            button.setToolTip(f"{verb} {what} ({'Ctrl+Shift+Z' if verb == 'Redo' else 'Ctrl+Z'})" if can else verb)
