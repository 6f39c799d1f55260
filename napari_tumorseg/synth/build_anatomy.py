"""Derive the compact anatomy resource from the ICBM152 2009a maps shipped in the nilearn wheel.

Run ``python -m napari_tumorseg.synth.build_anatomy`` (nilearn installed) to
rebuild ``resources/anatomy/icbm152_2009a_brats.npz``. Only this script needs
nilearn's data files; the phantom generator loads the ``.npz``.

What it does:

1. reads the T1, grey-matter and white-matter maps (1 mm, RAS, 197x233x189);
2. resamples them onto the BraTS grid (240x240x155 at 1 mm, stored in the
   canonical (S, P, L) layout), shrunk by ``BRAIN_SCALE`` and centred, because
   the MNI brain (a 152-subject average, brainstem included) fills 154 of the
   155 BraTS slices while real BraTS brains leave a margin;
3. builds a brain mask (tissue closed over the sulci, ventricles filled) and
   splits what the GM and WM maps leave inside it into CSF (where the T1 is
   dark) and deep grey matter (where it is not: the 2009a GM map under-counts
   the basal ganglia and thalamus);
4. stores GM, WM and CSF volume fractions quantised to uint8 (0..255).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

GRID_SHAPE = (155, 240, 240)  # canonical (S, P, L) shape of the BraTS grid
BRAIN_SCALE = 0.92  # grid mm per template mm
OUTPUT_NAME = "icbm152_2009a_brats.npz"
TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
# T1 template values (0..255): WM ~220, GM ~167, ventricular CSF ~60-100.
CSF_T1_FULL, CSF_T1_NONE = 90.0, 150.0


def nilearn_data_dir() -> Path:
    """The folder of nilearn's bundled data files, found without importing nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nilearn is not installed: `pip install nilearn` to rebuild the anatomy resource")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _load_template(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    import nibabel as nib

    maps, affine = {}, None
    for key, name in TEMPLATE_FILES.items():
        image = nib.load(folder / name)
        if affine is not None and not np.allclose(image.affine, affine):
            raise SystemExit(f"{name}: not on the grid of the other template maps")
        affine = image.affine
        maps[key] = np.asarray(image.dataobj, dtype=np.float32)
    linear = affine[:3, :3]
    if not np.allclose(np.abs(np.diag(linear)), 1.0) or not np.allclose(linear, np.diag(np.diag(linear))):
        raise SystemExit("expected 1 mm axis-aligned template maps")
    return maps, affine


def grid_to_template(maps: dict[str, np.ndarray], affine: np.ndarray) -> np.ndarray:
    """The 4x4 map from canonical grid index (k, j, i) = (S, P, L) to template voxel index.

    The brain's bounding box centre lands on the grid centre; the P and L axes
    run against the template's A and R axes.
    """
    tissue = (maps["gm"] + maps["wm"]) / 255.0
    occupied = np.nonzero(tissue > 0.3)
    centre_vox = np.array([(a.min() + a.max()) / 2.0 for a in occupied])
    centre_mm = affine[:3, :3] @ centre_vox + affine[:3, 3]  # RAS world
    grid_centre = (np.array(GRID_SHAPE) - 1) / 2.0
    step = 1.0 / BRAIN_SCALE
    # world RAS as a function of (k, j, i): x = -(i - ci), y = -(j - cj), z = (k - ck), scaled.
    world_from_grid = np.zeros((4, 4))
    world_from_grid[0, 2] = -step
    world_from_grid[1, 1] = -step
    world_from_grid[2, 0] = step
    world_from_grid[:3, 3] = centre_mm - world_from_grid[:3, :3] @ grid_centre
    world_from_grid[3, 3] = 1.0
    return np.linalg.inv(affine) @ world_from_grid


def derive_fractions(maps: dict[str, np.ndarray], template_from_grid: np.ndarray) -> dict[str, np.ndarray]:
    """GM, WM and CSF volume fractions (float32, 0..1) on the canonical BraTS grid."""
    from scipy import ndimage as ndi

    grid = np.indices(GRID_SHAPE, dtype=np.float32).reshape(3, -1)
    coords = template_from_grid[:3, :3] @ grid + template_from_grid[:3, 3:4]
    resampled = {
        key: ndi.map_coordinates(volume, coords, order=1, mode="constant", cval=0.0)
        .reshape(GRID_SHAPE)
        .astype(np.float32)
        for key, volume in maps.items()
    }
    gm = np.clip(resampled["gm"] / 255.0, 0.0, 1.0)
    wm = np.clip(resampled["wm"] / 255.0, 0.0, 1.0)
    tissue = np.clip(gm + wm, 0.0, 1.0)

    # Brain = tissue, closed over the sulci (so sulcal CSF is inside, as after
    # BraTS skull stripping), with the ventricles filled; keep the one big piece.
    core = tissue > 0.3
    ball = ndi.generate_binary_structure(3, 1)
    brain = ndi.binary_closing(np.pad(core, 4), ball, iterations=3)[4:-4, 4:-4, 4:-4]
    brain = ndi.binary_fill_holes(brain | core)
    labelled, _ = ndi.label(brain)
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    brain = labelled == sizes.argmax()

    rest = np.where(brain, 1.0 - tissue, 0.0).astype(np.float32)
    darkness = np.clip((CSF_T1_NONE - resampled["t1"]) / (CSF_T1_NONE - CSF_T1_FULL), 0.0, 1.0)
    csf = rest * darkness
    gm = np.where(brain | core, gm + (rest - csf), 0.0)
    wm = np.where(brain | core, wm, 0.0)
    return {"gm": gm.astype(np.float32), "wm": wm.astype(np.float32), "csf": csf.astype(np.float32)}


def quantise(fraction: np.ndarray) -> np.ndarray:
    """0..1 float -> 0..255 uint8 (rounded)."""
    return np.round(np.clip(fraction, 0.0, 1.0) * 255.0).astype(np.uint8)


def build(output: Path, source: Path | None = None) -> Path:
    """Derive the resource and write it as a compressed ``.npz``.

    Args:
        output: the ``.npz`` file to write.
        source: the folder with the template maps (default: nilearn's data folder).

    Returns:
        The path written.
    """
    maps, affine = _load_template(source or nilearn_data_dir())
    template_from_grid = grid_to_template(maps, affine)
    fractions = derive_fractions(maps, template_from_grid)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        output,
        gm=quantise(fractions["gm"]),
        wm=quantise(fractions["wm"]),
        csf=quantise(fractions["csf"]),
        spacing_mm=np.array([1.0, 1.0, 1.0], dtype=np.float32),
        template_from_grid=template_from_grid.astype(np.float64),
        brain_scale=np.float32(BRAIN_SCALE),
        source=np.array("ICBM 2009a Nonlinear Symmetric (nilearn *_tal_nlin_sym_09a_converted maps)"),
    )
    return output


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m napari_tumorseg.synth.build_anatomy [--out PATH] [--source DIR]``."""
    from ..resources import resource_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output .npz (default: the shipped resource)")
    parser.add_argument("--source", type=Path, default=None, help="folder of the ICBM152 2009a maps")
    args = parser.parse_args(argv)
    output = args.out or resource_path("anatomy", OUTPUT_NAME)
    path = build(output, args.source)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
