"""Case: open a case folder or pick files; show which modalities were found."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..io.case import DISPLAY_NAMES, MODALITIES
from .jobs import Job

if TYPE_CHECKING:
    from ..io.case import Case
    from .dock import TumourSegmentationWidget


class CasePanel(QGroupBox):
    def __init__(self, dock: TumourSegmentationWidget) -> None:
        super().__init__("1 · Case")
        self.dock = dock
        self.job: Job | None = None
        self.open_folder_button = QPushButton("Open case folder…")
        self.open_files_button = QPushButton("Open files…")
        self.open_folder_button.setToolTip("A BraTS 2020/2023 folder, or a folder of DICOM series")
        self.open_files_button.setToolTip("One NIfTI file per modality (names say which), optionally the mask")
        self.open_folder_button.clicked.connect(self._choose_folder)
        self.open_files_button.clicked.connect(self._choose_files)
        self.summary = QLabel("No case open.")
        self.summary.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.open_files_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a case folder", self.dock.settings.last_folder)
        if folder:
            self.open_path(Path(folder))

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open the files of one case", self.dock.settings.last_folder, "NIfTI (*.nii *.nii.gz)"
        )
        if files:
            self.open_path([Path(f) for f in files])

    def open_path(self, path: Path | list[Path]) -> Job:
        """Read a case in the background, then show it (a bad file gives a notification, nothing else)."""
        from ..io import read_case

        def reading(cancel):
            yield "reading"
            if isinstance(path, list):
                return read_case(None, modality_files=path)
            return read_case(path)

        first = path[0] if isinstance(path, list) else path
        self.dock.settings.last_folder = str(first.parent if first.is_file() else first)
        self.dock.save_settings()
        self._busy(True)
        self.summary.setText(f"Reading {first.name}…")
        self.job = Job(reading, on_done=self.show_case, on_failed=lambda _: self._failed(), on_finished=lambda: self._busy(False), what="opening the case")
        return self.job.start()

    def show_case(self, case: Case) -> None:
        """Show an already-read case (also used by the main job and tests)."""
        self.dock.segment_panel.cancel()
        self.dock.adapt_panel.cancel()
        self.dock.show_case(case)
        restored = self.dock.state.open_case(case)
        self.summary.setText(describe_case(case))
        self.dock.segment_panel.case_opened(restored)

    def _failed(self) -> None:
        case = self.dock.state.case
        self.summary.setText(describe_case(case) if case is not None else "No case open.")

    def _busy(self, busy: bool) -> None:
        self.open_folder_button.setEnabled(not busy)
        self.open_files_button.setEnabled(not busy)


def describe_case(case: Case) -> str:
    """One rich-text summary: name, modalities found and missing, grid, reference."""
    marks = " ".join(
        f"<b>{DISPLAY_NAMES[m]}</b> ✓" if m in case.images else f"<span style='color:#888'>{DISPLAY_NAMES[m]} ✗</span>"
        for m in MODALITIES
    )
    z, y, x = case.shape
    spacing = " × ".join(f"{s:g}" for s in case.geometry.spacing)
    reference = "reference mask ✓" if case.label is not None else "no reference mask"
    return (
        f"<b>{case.name}</b><br>{marks}<br>{z} slices of {y} × {x}, {spacing} mm, "
        f"source {case.geometry.source_axcodes}<br>{reference}"
    )
