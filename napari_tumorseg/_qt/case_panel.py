"""Case: open a case folder or pick files; show which modalities were found."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..io.case import DISPLAY_NAMES, MODALITIES
from ..jobs import Progress
from .jobs import Job, notify_warning

if TYPE_CHECKING:
    from ..io.case import Case
    from ..workflow.session import RestoredSession
    from ..workflow.settings import Settings
    from ..workflow.state import ReviewState


class CasePanel(QGroupBox):
    """Reads a case in the background and makes it the review state's case.

    Args:
        state: the review state (its case is what every other panel shows).
        settings: the persisted settings (the last folder).
    """

    def __init__(self, state: ReviewState, settings: Settings) -> None:
        super().__init__("1 · Case")
        self.state = state
        self.settings = settings
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
        state.case_opened.connect(self._case_opened)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a case folder", self.settings.last_folder)
        if folder:
            self.open_path(Path(folder))

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open the files of one case", self.settings.last_folder, "NIfTI (*.nii *.nii.gz)"
        )
        if files:
            self.open_path([Path(f) for f in files])

    def open_path(self, path: Path | list[Path]) -> Job:
        """Read a case in the background, then open it (a bad file gives a notification, nothing else)."""
        from ..io import read_case

        def reading(cancel):
            yield Progress(0, 1, "reading")
            if isinstance(path, list):
                return read_case(None, modality_files=path)
            return read_case(path)

        first = path[0] if isinstance(path, list) else path
        self.settings.last_folder = str(first.parent if first.is_file() else first)
        self.settings.save_quietly()
        self._busy(True)
        self.summary.setText(f"Reading {first.name}…")
        self.job = Job(reading, on_done=self.show_case, on_failed=lambda _: self._failed(),
                       on_finished=lambda: self._busy(False), what="opening the case")
        return self.job.start()

    def show_case(self, case: Case) -> None:
        """Open an already-read case (also used by the main job and tests)."""
        self.state.open_case(case)

    def _case_opened(self, case: Case, restored: RestoredSession | None) -> None:
        self.summary.setText(describe_case(case))
        for problem in restored.problems if restored is not None else ():
            notify_warning(problem)

    def _failed(self) -> None:
        case = self.state.case
        self.summary.setText(describe_case(case) if case is not None else "No case open.")

    def _busy(self, busy: bool) -> None:
        self.open_folder_button.setEnabled(not busy)
        self.open_files_button.setEnabled(not busy)


def describe_case(case: Case) -> str:
    """One rich-text summary: name, synthetic or scan, modalities found and missing, grid, reference."""
    from ..io.origin import is_synthetic, origin

    marks = " ".join(
        f"<b>{DISPLAY_NAMES[m]}</b> ✓" if m in case.images else f"<span style='color:#888'>{DISPLAY_NAMES[m]} ✗</span>"
        for m in MODALITIES
    )
    z, y, x = case.shape
    spacing = " × ".join(f"{s:g}" for s in case.geometry.spacing)
    reference = "reference mask ✓" if case.label is not None else "no reference mask"
    colour = "#f0a030" if is_synthetic(case) else "#6cc0ff"
    return (
        f"<b>{case.name}</b><br><span style='color:{colour}'>{origin(case)}</span><br>{marks}<br>"
        f"{z} slices of {y} × {x}, {spacing} mm, source {case.geometry.source_axcodes}<br>{reference}"
    )
