"""Exception types of the project: each message is one line naming the file and the problem."""

from __future__ import annotations

from os import PathLike


class TumorsegError(Exception):
    """Base of every error the project raises on purpose.

    The command line prints ``str(error)`` on one line and exits with status 2;
    the napari widgets show it as a notification.
    """


class _FileProblem(TumorsegError):
    """An error about one file: ``path: problem``, on one line whatever a library said."""

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        text = problem if self.path is None else f"{self.path}: {problem}"
        super().__init__(" ".join(text.split()))


class CaseError(_FileProblem):
    """A case (a folder or file of MRI volumes) cannot be read, or a mask cannot be made of it."""


class WriteError(_FileProblem):
    """A file cannot be written (it exists, its folder is missing, the disk is full...); nothing was changed."""


class ModelError(TumorsegError):
    """A checkpoint or model version cannot be loaded, saved or used."""


class AdaptationError(TumorsegError):
    """An adaptation run cannot start or did not produce a usable model."""


class CaseWarning(UserWarning):
    """A case was read but something in it was repaired (e.g. NaN voxels set to 0)."""


class PromptError(TumorsegError):
    """A correction prompt (a click, a fill, a propagation) found nothing to do where it was asked; one line says why."""
