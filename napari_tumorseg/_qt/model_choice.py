"""The Segment panel's model rows: the versions to choose from, the chosen one's provenance, and Add model….

The list holds the registry's usable versions and the models imported this
session; choosing one makes it the review state's selection, which the Adapt
panel follows. Add model… only asks which file or folder: the Segment panel
loads it, as one of its own background jobs (its Cancel and status line).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QComboBox, QFileDialog, QLabel, QMenu, QToolButton, QWidget

from .jobs import notify_error

if TYPE_CHECKING:
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState


class ModelChoice:
    """The model box, the Add model… button and the provenance line, and what they do.

    Not a widget of its own: its three widgets are rows of the Segment panel's
    form, so their labels line up with the Device and Flip averaging rows.

    Args:
        state: the review state (the versions listed; the selection this sets).
        settings: the persisted settings (the folder the file dialogs open in).
        parent: the widget the file dialogs belong to.
        on_model_picked: called with the model file or folder picked under Add model….
    """

    def __init__(self, state: ReviewState, settings: Settings, parent: QWidget,
                 on_model_picked: Callable[[Path], object]) -> None:
        self.state, self.settings, self.parent, self.on_model_picked = state, settings, parent, on_model_picked
        self.box = QComboBox()
        # Long version names must not widen the dock past the screen: the box shrinks, its list does not.
        self.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.box.setMinimumContentsLength(14)
        self.box.currentIndexChanged.connect(self._chosen)
        self.add_button = QToolButton()
        self.add_button.setText("Add model…")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add_button)
        menu.addAction("ONNX or TorchScript file (with its .json)…", lambda: self._pick("file"))
        menu.addAction("MONAI bundle folder…", lambda: self._pick("bundle"))
        menu.addAction("napari-tumorseg checkpoint…", lambda: self._pick("checkpoint"))
        self.add_button.setMenu(menu)
        self.add_button.setToolTip("Bring your own model: it segments here; napari-tumorseg checkpoints "
                                   "can also be adapted")
        self.provenance = QLabel()
        self.provenance.setWordWrap(True)

    def refresh(self) -> None:
        """List the usable versions, the active one selected."""
        try:
            versions = [v for v in self.state.registry.list() if v.status != "corrupt"]
        except Exception as error:  # an unreadable registry must not break the panel
            notify_error(error, "listing the model versions")
            versions = []
        versions += self.state.imported_versions()
        active = next((v.id for v in versions if v.active), versions[0].id if versions else None)
        self.box.blockSignals(True)
        self.box.clear()
        for version in versions:
            self.box.addItem(f"{version.id}  [{version.display_status}]", version)
        self.box.setCurrentIndex(next((i for i, v in enumerate(versions) if v.id == active), -1))
        self.box.blockSignals(False)
        self._chosen()

    def select(self, version_id: str) -> None:
        """Choose this version, if it is listed."""
        index = next((i for i in range(self.box.count()) if self.box.itemData(i).id == version_id), -1)
        if index >= 0:
            self.box.setCurrentIndex(index)

    def _chosen(self) -> None:
        version = self.box.currentData()
        self.state.select_model(version)
        self.provenance.setText("No model found." if version is None else provenance_text(version))

    def _pick(self, kind: str) -> None:
        folder = self.settings.last_folder
        if kind == "bundle":
            path = QFileDialog.getExistingDirectory(self.parent, "A MONAI bundle folder", folder)
        else:
            filters = "ONNX or TorchScript (*.onnx *.pt *.pth *.ts *.torchscript)" if kind == "file" \
                else "napari-tumorseg checkpoint (*.safetensors *.pt *.pth)"
            path, _ = QFileDialog.getOpenFileName(self.parent, "A model file", folder, filters)
        if path:
            self.on_model_picked(Path(path))


def provenance_text(version) -> str:
    """One line on where a version comes from: its architecture and status, then its file, origin or parent."""
    parts = [f"{version.arch or '?'}", version.status]
    if version.status == "imported":
        parts.append(str(version.weights))
    elif version.method == "imported":
        parts.append(version.reason)
    elif version.method:
        parts.append(f"adapted by {version.method} from {version.parent}")
    if version.created:
        parts.append(version.created)
    return " · ".join(parts)
