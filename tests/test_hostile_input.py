"""Hostile and bad input through the real command line: one line, exit 2, nothing written, under 1 GB.

Every case runs ``python -m napari_tumorseg ...`` in its own process on a
fresh copy of a small sandbox (a case folder, a tiny checkpoint, the user
folder), and checks what the README and issue 11 promise: exit status 2, one
line on stderr naming the problem and no traceback, no file made or changed,
and a peak memory under 1 GB (the 352-byte NIfTI header that declares 32767^3
voxels used to take the process to a MemoryError). The second table holds
damaged state the commands must work through (exit 0).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from napari_tumorseg.io.testing import ORIENTATIONS, image_volume, label_volume, save_nifti

MEMORY_LIMIT_MB = 1024


@dataclass(frozen=True)
class Case:
    """One command on one bad input: ``says`` is a regex the single stderr line must match."""

    argv: tuple[str, ...]
    says: str
    make: Callable[[Path], object] | None = None
    env: dict[str, str | None] = field(default_factory=dict)


# --- what the cases need, made inside the sandbox ---------------------------------------------


def huge_header(sandbox: Path) -> None:
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((32767, 32767, 32767))
    header["vox_offset"] = 352
    (sandbox / "huge_flair.nii").write_bytes(header.binaryblock + b"\0" * 4)  # 352 bytes


def small_gzip_declaring_much(sandbox: Path) -> None:
    """A ~800-byte .nii.gz whose header declares 400^3 voxels: no deflate stream holds that much."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((400, 400, 400))
    header["vox_offset"] = 352
    (sandbox / "bomb_flair.nii.gz").write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 500_000))


def one_voxel(sandbox: Path) -> None:
    save_nifti(sandbox / "one_flair.nii.gz", np.ones((1, 1, 1), np.float32), np.eye(4))


def wide_checkpoint(sandbox: Path) -> None:
    from safetensors.numpy import save_file

    config = {"arch": "unet", "base_width": 100_000, "depth": 4}
    save_file({"x": np.zeros(1, np.float32)}, str(sandbox / "wide.safetensors"),
              metadata={"format": "napari-tumorseg-checkpoint/1", "config": json.dumps(config)})


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def pickled_checkpoint(sandbox: Path) -> None:
    import pickle

    (sandbox / "evil.pt").write_bytes(pickle.dumps({"state_dict": {}, "config": {}, "payload": _Exploit()}))


def corrections_folder(indices: list[int]) -> Callable[[Path], None]:
    def make(sandbox: Path) -> None:
        folder = sandbox / "session"
        folder.mkdir()
        shape = case_shape(sandbox)
        np.savez(folder / "corrections.npz", indices=np.asarray(indices, np.int32),
                 slices=np.zeros((len(indices), *shape[1:]), np.uint8))

    return make


def case_shape(sandbox: Path) -> tuple[int, int, int]:
    from napari_tumorseg.io import read_case

    return read_case(sandbox / "case").shape


def existing(name: str) -> Callable[[Path], None]:
    def make(sandbox: Path) -> None:
        (sandbox / name).write_text("{}\n")

    return make


def a_file_named(name: str) -> Callable[[Path], None]:
    def make(sandbox: Path) -> None:
        (sandbox / name).write_text("not a folder\n")

    return make


def a_folder_named(name: str) -> Callable[[Path], None]:
    return lambda sandbox: (sandbox / name).mkdir()


def bad_dim_header(sandbox: Path) -> None:
    """nibabel prints its own repairs ("sizeof_hdr should be 348...") for this one, then fails."""
    save_nifti(sandbox / "dims_flair.nii", image_volume(), ORIENTATIONS["LPS"])
    content = bytearray((sandbox / "dims_flair.nii").read_bytes())
    content[40:42] = (9).to_bytes(2, "little")
    (sandbox / "dims_flair.nii").write_bytes(bytes(content))


def dicom_with_a_gap(sandbox: Path) -> None:
    """ITK prints "Non uniform sampling or missing slices detected" for this one."""
    from napari_tumorseg.io.testing import write_dicom_series

    volume = np.arange(12 * 14 * 10).reshape(12, 14, 10).astype(np.int16)
    series = write_dicom_series(sandbox / "dicom" / "flair", volume, ORIENTATIONS["LPS"], description="FLAIR")
    sorted(series.iterdir())[4].unlink()


def nifti_files(**volumes: tuple[np.ndarray, np.ndarray]) -> Callable[[Path], None]:
    def make(sandbox: Path) -> None:
        folder = sandbox / "bad"
        folder.mkdir()
        for name, (data, affine) in volumes.items():
            save_nifti(folder / f"bad_{name}.nii.gz", data, affine)

    return make


def user_version(damage: str | None = None, activate: bool = True) -> Callable[[Path], None]:
    """A user model version in the sandbox's registry, its version.json damaged as asked."""

    def make(sandbox: Path) -> None:
        from test_adapt_helpers import tiny_model

        from napari_tumorseg.models.registry import ModelRegistry

        registry = ModelRegistry(sandbox / "home" / "models")
        version = registry.add(tiny_model(), parent="glioma-unet", method="naive", hyperparameters={},
                               corrections_hash="0", metrics={}, status="rejected", reason="test", version_id="v1")
        if activate:
            registry.activate(version.id, force=True)
        path = registry.versions_dir / "v1" / "version.json"
        if damage == "nested":
            path.write_text("[" * 200_000 + "]" * 200_000)
        elif damage == "mistyped":
            data = json.loads(path.read_text(encoding="utf-8"))
            path.write_text(json.dumps({**data, "metrics": {"corrections": {"before": "x", "after": [1]}}, "parent": 5}))

    return make


def unreadable_pointer(sandbox: Path) -> None:
    folder = sandbox / "home" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "active").write_bytes(b"\xff\xfe\x00\x81 not utf-8")


def head_with_skull(sandbox: Path) -> None:
    """A small synthetic head, T1c only, skull and scalp still on: what a scanner exports."""
    from napari_tumorseg.io import write_case
    from napari_tumorseg.io.case import Case
    from napari_tumorseg.synth.head import make_head

    head = make_head("glioma", 3, shape=(24, 40, 40)).case
    write_case(Case("head", {"t1c": head.images["t1c"]}, head.geometry), sandbox / "head")


CASE = ("case",)
SEGMENT = ("segment", "case", "-o", "out.nii.gz")
SYNTHETIC = ("evaluate", "--synthetic", "glioma", "--seeds", "0:1", "--shape", "16,32,32")
ADAPT = ("adapt", "--case", "case", "--corrected", "session", "--anchor-shape", "16,32,32")

# Issue 11's list, then the README's bad input.
REFUSED: dict[str, Case] = {
    "info: header declares 32767^3 voxels": Case(("info", "huge_flair.nii"), r"huge_flair.nii: the header declares 32767x32767x32767 voxels", huge_header),
    "segment: header declares 32767^3 voxels": Case(("segment", "huge_flair.nii", "-o", "out.nii.gz"), r"huge_flair.nii: the header declares", huge_header),
    "info: small .gz declaring 400^3 voxels": Case(("info", "bomb_flair.nii.gz"), r"bomb_flair.nii.gz: unreadable, truncated or corrupt NIfTI file \(the header declares 400x400x400", small_gzip_declaring_much),
    "segment: checkpoint declares an absurd width": Case((*SEGMENT, "--model", "wide.safetensors"), r"wide.safetensors: invalid configuration .*base_width = 100000", wide_checkpoint),
    "adapt: corrections slice out of range": Case(ADAPT, r"session/corrections.npz: not a corrections file for this case \(slice indices 999..999 outside", corrections_folder([999])),
    "adapt: corrections hold no slice": Case(ADAPT, r"session/corrections.npz: holds no corrected slice", corrections_folder([])),
    "segment --batch-size 0": Case((*SEGMENT, "--batch-size", "0"), r"--batch-size: expected a whole number >= 1, got 0"),
    "segment: a 1x1x1 image": Case(("segment", "one_flair.nii.gz", "-o", "out.nii.gz"), r"one_flair.nii.gz: the image is 1x1x1 voxels, too small", one_voxel),
    "evaluate --json FOLDER": Case((*SYNTHETIC, "--json", "results"), r"results: cannot write: a folder has that name", a_folder_named("results")),
    "evaluate --shape without limit": Case(("evaluate", "--synthetic", "glioma", "--seeds", "0:1", "--shape", "100000,100000,100000"), r"--shape: each side of the grid must be 8..512"),
    "segment: pickled checkpoint": Case((*SEGMENT, "--model", "evil.pt"), r"evil.pt: holds pickled Python code, not plain weights; it was not loaded", pickled_checkpoint),
    "adapt --report BADPATH": Case((*ADAPT, "--report", "notes/report.json"), r"notes/report.json: cannot write: the folder is a file", a_file_named("notes")),
    "evaluate --json EXISTING": Case((*SYNTHETIC, "--json", "results.json"), r"results.json: already exists", existing("results.json")),
    "bench -o EXISTING": Case(("bench", "--phantom", "--shape", "16,32,32", "-o", "bench.json"), r"bench.json: already exists", existing("bench.json")),
    "bench-adapt --output EXISTING": Case(("bench-adapt", "--output", "bench.json"), r"bench.json: already exists", existing("bench.json")),
    "view without a display": Case(("view", "--no-segment"), r"needs a display.*xvfb-run -a tumorseg view --screenshot", env={"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None}),
    "bench --shape without limit": Case(("bench", "--shape", "100000,240,240"), r"--shape: each side of the grid must be 8..512"),
    "info: header nibabel repairs noisily": Case(("info", "dims_flair.nii"), r"dims_flair.nii: unreadable, truncated or corrupt NIfTI file", bad_dim_header),
    "info: DICOM series with a gap (ITK warns)": Case(("info", "dicom"), r"flair: DICOM series 'FLAIR' has missing or unevenly spaced slices", dicom_with_a_gap),
    # The README's bad input.
    "info: no such path": Case(("info", "nowhere"), r"nowhere: no such file or folder"),
    "info: empty folder": Case(("info", "empty"), r"empty: the folder is empty", a_folder_named("empty")),
    "info: random bytes named .nii": Case(("info", "noise_flair.nii"), r"noise_flair.nii: unreadable, truncated or corrupt NIfTI", lambda s: (s / "noise_flair.nii").write_bytes(np.random.default_rng(0).bytes(5000))),
    "info: truncated .nii.gz": Case(("info", "case"), r"unreadable, truncated or corrupt NIfTI", lambda s: _truncate(next((s / "case").glob("*_t1.nii.gz")))),
    "info: labels outside the convention": Case(("info", "bad"), r"bad_seg.nii.gz: .*7", nifti_files(flair=(image_volume(), ORIENTATIONS["LPS"]), seg=(label_volume() * 0 + 7, ORIENTATIONS["LPS"]))),
    "info: files on different grids": Case(("info", "bad"), r"shape .* differs from", nifti_files(flair=(image_volume(), ORIENTATIONS["LPS"]), t1=(image_volume((20, 24, 18)), ORIENTATIONS["LPS"]))),
    "info: 4D file without --order": Case(("info", "four.nii.gz"), r"four.nii.gz: .*4D", lambda s: save_nifti(s / "four.nii.gz", np.ones((20, 24, 16, 2), np.float32), ORIENTATIONS["LPS"])),
    "segment: output exists": Case(SEGMENT, r"out.nii.gz: already exists", existing("out.nii.gz")),
    "segment: output not NIfTI": Case(("segment", "case", "-o", "out.png"), r"out.png: the file name must end in .nii or .nii.gz"),
    "segment: unknown model version": Case((*SEGMENT, "--model", "no-such-version"), r"no model version 'no-such-version'"),
    "segment: corrupt checkpoint": Case((*SEGMENT, "--model", "broken.safetensors"), r"broken.safetensors: not a readable safetensors checkpoint", lambda s: (s / "broken.safetensors").write_bytes(b"\x00\x01garbage")),
    "segment: unknown device": Case((*SEGMENT, "--device", "tpu"), r"unknown device 'tpu'"),
    "adapt: unknown device": Case((*ADAPT, "--device", "tpu"), r"unknown device 'tpu'"),
    "adapt: slice outside the case": Case(("adapt", "--case", "case", "--corrected", "case/case_seg.nii.gz", "--slices", "999"), r"slices \[999\] are outside the case's axial slices"),
    "models activate: rejected without --force": Case(("models", "activate", "v1"), r"model version v1 was rejected", user_version(activate=False)),
    "models delete: a shipped model": Case(("models", "delete", "glioma-unet"), r"glioma-unet is a shipped pretrained model and cannot be deleted"),
    "segment --no-prepare: a head with its skull": Case(("segment", "head", "-o", "out.nii.gz", "--no-prepare"), r"head/head_t1ce.nii.gz: the head still has its skull .* prepare it first", head_with_skull),
    "segment --grid on a case that needs no preparation": Case((*SEGMENT, "--grid", "flair"), r"case: --grid applies to a scan that is prepared"),
    "prepare: the output is a file": Case(("prepare", "case", "-o", "notes"), r"notes: cannot write: a file has that name", a_file_named("notes")),
    "prepare: the output holds the case already": Case(("prepare", "case", "-o", "prepared"), r"prepared/case_flair.nii.gz: already exists", lambda s: (s / "prepared").mkdir() or (s / "prepared" / "case_flair.nii.gz").write_bytes(b"x")),
    "prepare: a sequence that cannot be registered": Case(("prepare", "bad", "-o", "out", "--quiet"), r"bad_flair.nii.gz: could not be registered onto .*bad_t1ce.nii.gz", nifti_files(t1ce=(image_volume(), ORIENTATIONS["LPS"]), flair=(image_volume((20, 24, 18)) * 0, ORIENTATIONS["LPS"]))),
    "prepare --reference unknown": Case(("prepare", "case", "-o", "out", "--reference", "pd"), r"--reference: invalid choice: 'pd'"),
    "bench-prepare --synthetic garbage": Case(("bench-prepare", "--synthetic", "brain:x", "--no-real"), r"--synthetic: expected DOMAIN:SEED"),
    "train --steps 0": Case(("train", "--arch", "unet", "--out", "m.safetensors", "--steps", "0"), r"--steps: expected a whole number >= 1"),
}

# Damaged state the commands work through.
SURVIVED: dict[str, Case] = {
    "models list: deeply nested version.json": Case(("models", "list"), r"v1 +corrupt", user_version("nested")),
    "models list: mistyped version.json": Case(("models", "list"), r"v1 +corrupt", user_version("mistyped")),
    "models list: non-UTF-8 active pointer": Case(("models", "list"), r"\* glioma-unet", unreadable_pointer),
    "segment with the default model: non-UTF-8 active pointer": Case(SEGMENT, r"out.nii.gz: glioma-unet", unreadable_pointer),
    "segment with the default model: active version's file nested": Case(SEGMENT, r"out.nii.gz: glioma-unet", user_version("nested")),
    "info: header nibabel repairs quietly": Case(("info", "zooms_flair.nii"), r"\A\Z", lambda s: _zero_zooms(s / "zooms_flair.nii")),
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_zooms(path: Path) -> None:
    """Zero voxel sizes and a bad qfac: nibabel logs "pixdim[1,2,3] should be non-zero; setting 0 dims to 1"."""
    save_nifti(path, image_volume(), np.eye(4))
    content = bytearray(path.read_bytes())
    content[76:80] = np.float32(5.0).tobytes()  # pixdim[0], qfac: should be 1 or -1
    content[80:92] = bytes(12)  # pixdim[1..3] = 0.0
    path.write_bytes(bytes(content))


# --- running a command, and what it did ------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_template(tmp_path_factory, small_glioma_folder) -> Path:
    template = tmp_path_factory.mktemp("hostile")
    shutil.copytree(small_glioma_folder, template / "case")
    for file in (template / "case").iterdir():
        file.rename(file.with_name(file.name.replace(small_glioma_folder.name, "case")))
    (template / "home").mkdir()
    return template


@pytest.fixture
def sandbox(sandbox_template, tmp_path) -> Path:
    folder = tmp_path / "sandbox"
    shutil.copytree(sandbox_template, folder)
    return folder


@dataclass
class Ran:
    status: int
    stdout: str
    stderr: str
    peak_mb: float


# ``python -m napari_tumorseg ARGS``, that writes its peak resident memory (VmHWM, kB) to a file at exit.
# (A child's ru_maxrss would count the memory of the test process it was forked from, before its exec.)
LAUNCHER = """
import atexit, runpy, sys
def record_peak(path=sys.argv[1]):
    peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    open(path, "w").write(peak)
atexit.register(record_peak)
sys.argv = ["tumorseg", *sys.argv[2:]]
runpy.run_module("napari_tumorseg", run_name="__main__", alter_sys=True)
"""


def run_cli(sandbox: Path, case: Case) -> Ran:
    """The command in its own process: exit status, output, and its peak resident memory."""
    env = {**os.environ, "TUMORSEG_HOME": str(sandbox / "home"), "OMP_NUM_THREADS": "1"}
    for name, value in case.env.items():
        env.pop(name, None) if value is None else env.__setitem__(name, value)
    peak = sandbox.parent / "peak.kb"  # outside the sandbox, which must stay unchanged
    done = subprocess.run([sys.executable, "-c", LAUNCHER, str(peak), *case.argv], cwd=sandbox, env=env,
                          capture_output=True, encoding="utf-8", errors="replace", timeout=600)
    return Ran(done.returncode, done.stdout, done.stderr, int(peak.read_text(encoding="utf-8")) / 1024)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory through wait4's ru_maxrss (KiB)")
@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_input_is_one_line_exit_2_writes_nothing_and_stays_small(sandbox, name):
    case = REFUSED[name]
    if case.make is not None:
        case.make(sandbox)
    before = snapshot(sandbox)
    ran = run_cli(sandbox, case)
    lines = ran.stderr.strip().splitlines()
    assert ran.status == 2, ran.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in ran.stderr, ran.stderr[-2000:]
    assert re.search(case.says, lines[0]), lines[0]
    assert snapshot(sandbox) == before, "bad input must not write anything"
    assert not (sandbox / "pwned").exists()
    assert ran.peak_mb < MEMORY_LIMIT_MB, f"peak memory {ran.peak_mb:.0f} MB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory through wait4's ru_maxrss (KiB)")
@pytest.mark.parametrize("name", list(SURVIVED))
def test_damaged_state_is_worked_through(sandbox, name):
    case = SURVIVED[name]
    case.make(sandbox)  # type: ignore[misc]
    ran = run_cli(sandbox, case)
    assert ran.status == 0 and "Traceback" not in ran.stderr, ran.stderr[-2000:]
    output = ran.stdout if case.argv[0] == "models" else ran.stderr
    assert re.search(case.says, output, re.MULTILINE), output[-2000:]
    assert ran.peak_mb < MEMORY_LIMIT_MB, f"peak memory {ran.peak_mb:.0f} MB"
