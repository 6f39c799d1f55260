"""Export: the mask as NIfTI on the exact grid of the input, in its label convention; or, for a case read
from DICOM, as a DICOM SEG referencing its source series.

For a prepared scan the mask goes onto the reference sequence's own grid
(nearest neighbour; the same grid, voxel for voxel, when no resampling was
needed) or, when chosen, onto any other sequence's grid through the inverse
of its registration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout

from ..io.labels import LabelConvention
from ..jobs import Progress
from .jobs import Job

if TYPE_CHECKING:
    from ..prepare.pipeline import Preparation
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState
    from .layers import PluginLayers

FORMATS = {"NIfTI (.nii.gz)": ".nii.gz", "DICOM SEG (.dcm)": ".dcm"}
CONVENTION_CHOICES = {
    "As the input": None,
    "BraTS 2020 (ET = 4)": LabelConvention.BRATS2020,
    "BraTS 2023 (ET = 3)": LabelConvention.BRATS2023,
}


class ExportPanel(QGroupBox):
    """Writes the Segmentation layer on the case's source grid.

    Args:
        state: the review state (the case and its geometry).
        layers: the plugin's layers (the Segmentation layer).
        settings: the persisted settings (the last folder).
    """

    def __init__(self, state: ReviewState, layers: PluginLayers, settings: Settings) -> None:
        super().__init__("5 · Export")
        self.state, self.layers, self.settings = state, layers, settings
        self.job: Job | None = None
        self.convention_box = QComboBox()
        self.convention_box.addItems(list(CONVENTION_CHOICES))
        self.format_box = QComboBox()
        self.format_box.addItems(list(FORMATS))
        self.format_box.currentTextChanged.connect(self._format_chosen)
        self.grid_box = QComboBox()
        self.grid_box.setToolTip("A prepared scan: the grid the mask is written on")
        self.save_button = QPushButton("Save mask…")
        self.save_button.clicked.connect(self._choose_file)
        self.status = QLabel("Also: File ▸ Save Selected Layers on the Segmentation layer.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("Labels", self.convention_box)
        form.addRow("Grid", self.grid_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.save_button)
        layout.addWidget(self.status)
        state.case_opened.connect(lambda *_: self._case_opened())
        self._case_opened()
        self._preparation_changed(None)
        state.preparation_changed.connect(self._preparation_changed)

    def _case_opened(self) -> None:
        """DICOM SEG is offered for cases read from DICOM only; NIfTI stays the default."""
        from_dicom = self._from_dicom()
        self.format_box.model().item(1).setEnabled(from_dicom)
        self.format_box.setItemData(1, "" if from_dicom else "for cases read from DICOM series",
                                    Qt.ItemDataRole.ToolTipRole)
        self.format_box.setCurrentIndex(0)

    def _from_dicom(self) -> bool:
        case = self.state.case
        return case is not None and bool(case.dicom_series)

    def _format_chosen(self, text: str) -> None:
        self.convention_box.setEnabled(FORMATS.get(text) == ".nii.gz")

    def _preparation_changed(self, preparation: Preparation | None) -> None:
        from ..io.case import DISPLAY_NAMES

        self.grid_box.clear()
        if preparation is None:
            self.grid_box.addItem("The input's", "reference")
        else:
            self.grid_box.addItem(f"Reference ({DISPLAY_NAMES[preparation.reference]}, its own grid)", "reference")
            for key in preparation.sequences:
                if key != preparation.reference:
                    self.grid_box.addItem(f"{DISPLAY_NAMES[key]}'s own grid", key)
            if preparation.resampled_to_model:
                self.grid_box.addItem("The 1 mm working grid", "working")
        self.grid_box.setEnabled(preparation is not None)

    def _choose_file(self) -> None:
        case = self.state.case
        if case is None or self.layers.segmentation(create=False) is None:
            self.status.setText("Nothing to export yet: open and segment a case.")
            return
        suffix = FORMATS[self.format_box.currentText()]
        start = Path(self.settings.last_folder or ".") / f"{case.name}_seg{suffix}"
        filters = "DICOM SEG (*.dcm)" if suffix == ".dcm" else "NIfTI (*.nii.gz *.nii)"
        # The dialog asks before replacing an existing file.
        path, _ = QFileDialog.getSaveFileName(self, "Save the mask", str(start), filters)
        if path:
            self.export(Path(path), overwrite=True)

    def export(self, path: Path, overwrite: bool = False) -> Job | None:
        """Write the Segmentation layer to ``path`` in the background (atomic: all or nothing).

        A ``.dcm`` path writes a DICOM SEG (cases read from DICOM); anything else NIfTI.
        """
        from ..io import write_mask
        from ..io.dicom_seg import is_dicom_seg_path, write_dicom_seg

        case, layer = self.state.case, self.layers.segmentation(create=False)
        if case is None or layer is None:
            self.status.setText("Nothing to export yet: open and segment a case.")
            return None
        seg = is_dicom_seg_path(path)
        if not seg and not path.name.endswith((".nii", ".nii.gz")):
            path = path.with_name(path.name + ".nii.gz")
        convention = CONVENTION_CHOICES[self.convention_box.currentText()] or case.label_convention
        labels, geometry = layer.data.copy(), case.geometry
        preparation, grid = self.state.preparation, self.grid_box.currentData() or "reference"

        def writing(cancel):
            yield Progress(0, 1, "writing")
            if seg and preparation is not None:  # back onto the referenced series' own grid
                from ..prepare.export import write_dicom_seg_on_series

                return write_dicom_seg_on_series(labels, preparation, case, path, overwrite=overwrite)
            if seg:
                return write_dicom_seg(labels, case, path, overwrite=overwrite)
            if preparation is not None:
                from ..prepare.export import write_mask_on_grid

                return write_mask_on_grid(labels, preparation, path, grid=grid, convention=convention,
                                          overwrite=overwrite)
            return write_mask(labels, geometry, path, convention=convention, overwrite=overwrite)

        what = ("DICOM SEG referencing the source series" if seg
                else f"{convention.value} labels; grid: {self.grid_box.currentText()}")
        self.save_button.setEnabled(False)
        self.job = Job(
            writing,
            on_done=lambda written: self.status.setText(f"Saved {written} ({what})."),
            on_finished=lambda: self.save_button.setEnabled(True),
            what="exporting the mask",
        )
        return self.job.start()
