"""What an imported segmenter expects and returns: a small JSON file beside the model (no torch here).

An ONNX or TorchScript file says nothing about brain MRI; its sidecar does
(``model.onnx`` -> ``model.json``)::

    {
      "format": "napari-tumorseg-model/1",
      "name": "my-unet",
      "sequences": ["flair", "t1", "t1c", "t2"],   input channels, in order
      "input": "2.5d",                           "2d", "2.5d" (with "context") or "3d"
      "context": 1,                              2.5d: neighbours on each side; channels slice by slice,
                                                 each slice's sequences in the order above
      "availability": false,                     append one plane per sequence: 1 present, 0 missing
      "missing": "refuse",                       a missing sequence: "refuse" the case, or "zeros"
      "normalisation": "zscore",                 "zscore" (each sequence over its non-zero voxels, 0
                                                 outside; MONAI's NormalizeIntensity nonzero) or "none"
      "axes": "SPL",                             the network's (depth, height, width) axes as
                                                 anatomical codes; 2d/2.5d slice along the first
      "spacing": [1.0, 1.0, 1.0],                voxel size (mm) on those axes, or null
      "size_multiple": 16,                       padded sizes are multiples of this
      "roi": null,                               3d: sliding window (depth, height, width), or null
      "output": "classes",                       "classes" (one channel per label value) or "regions"
      "labels": [0, 1, 2, 4],                    classes: each channel's label value, in "convention"
      "convention": "brats2020",                 "brats2020" (ET = 4) or "brats2023" (ET = 3)
      "regions": ["TC", "WT", "ET"],             regions: each channel's BraTS region
      "activation": "softmax"                    applied to the raw output: "softmax", "sigmoid", "none"
    }

Every field but ``sequences`` has a default (those above, with ``labels``
[0, 1, 2, 3] in BraTS 2023 numbering for classes, sigmoid for regions). The
file is read as data, bounded in size and checked field by field: a mistake
is a :class:`ModelError` naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io.case import MODALITIES

FORMAT = "napari-tumorseg-model/1"
MAX_SIDECAR_BYTES = 64_000
INPUTS = ("2d", "2.5d", "3d")
OUTPUTS = ("classes", "regions")
ACTIVATIONS = ("softmax", "sigmoid", "none")
CONVENTION_VALUES = {"brats2020": (0, 1, 2, 4), "brats2023": (0, 1, 2, 3)}
REGION_NAMES = ("TC", "WT", "ET")
AXIS_PAIRS = ("SI", "AP", "LR")


@dataclass(frozen=True)
class ModelSpec:
    """An imported segmenter's contract (see the module's docstring for each field)."""

    sequences: tuple[str, ...]
    name: str = "imported model"
    input: str = "2d"
    context: int = 0
    availability: bool = False
    missing: str = "refuse"
    normalisation: str = "zscore"
    axes: str = "SPL"
    spacing: tuple[float, float, float] | None = None
    size_multiple: int = 16
    roi: tuple[int, int, int] | None = None
    output: str = "classes"
    labels: tuple[int, ...] = (0, 1, 2, 3)
    convention: str = "brats2023"
    regions: tuple[str, ...] = REGION_NAMES
    activation: str = "softmax"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def in_channels(self) -> int:
        window = 2 * self.context + 1 if self.input == "2.5d" else 1
        return window * len(self.sequences) + (len(self.sequences) if self.availability else 0)

    @property
    def out_channels(self) -> int:
        return len(self.labels) if self.output == "classes" else len(self.regions)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return {"format": FORMAT, **data}


def _problem(source: str, text: str) -> ModelError:
    return ModelError(" ".join(f"{source}: {text}".split()))


def spec_from_dict(data: Any, source: str) -> ModelSpec:
    """Check a sidecar's fields one by one; ``source`` names the file in errors."""
    if not isinstance(data, dict):
        raise _problem(source, "the model description must be a JSON object")
    if data.get("format", FORMAT) != FORMAT:
        raise _problem(source, f"format {data.get('format')!r} is not {FORMAT!r}")
    known = {f.name for f in fields(ModelSpec)} - {"extra"}
    unknown = sorted(set(data) - known - {"format"})
    if unknown:
        raise _problem(source, f"unknown field(s) {unknown}; expected some of {sorted(known)}")
    if "sequences" not in data:
        raise _problem(source, "'sequences' is missing: the input channels, e.g. [\"flair\", \"t1\", \"t1c\", \"t2\"]")
    values = {key: value for key, value in data.items() if key != "format"}
    try:
        spec = ModelSpec(**{k: _field(k, v) for k, v in values.items()})
        if spec.output == "regions" and "activation" not in values:
            spec = replace(spec, activation="sigmoid")
        _check(spec)
    except (TypeError, ValueError) as error:
        raise _problem(source, str(error)) from None
    return spec


def _field(name: str, value: Any) -> Any:
    """One field, coerced to its type (lists become tuples) or a ValueError naming it."""
    if name in ("sequences", "labels", "regions", "spacing", "roi"):
        if value is None and name in ("spacing", "roi"):
            return None
        if not isinstance(value, list) or len(value) > 16:
            raise ValueError(f"'{name}' must be a list (of at most 16 items)")
        kind = {"sequences": str, "regions": str, "labels": int, "roi": int, "spacing": (int, float)}[name]
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            raise ValueError(f"'{name}' holds a value of the wrong type: {value!r}")
        return tuple(float(v) if name == "spacing" else v for v in value)
    expected = {"name": str, "input": str, "context": int, "availability": bool, "missing": str,
                "normalisation": str, "axes": str, "size_multiple": int, "output": str, "convention": str,
                "activation": str}[name]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"'{name}' must be a {expected.__name__}, got {value!r}")
    return value


def _check(spec: ModelSpec) -> None:
    _one_of("input", spec.input, INPUTS)
    _one_of("output", spec.output, OUTPUTS)
    _one_of("activation", spec.activation, ACTIVATIONS)
    _one_of("convention", spec.convention, tuple(CONVENTION_VALUES))
    _one_of("normalisation", spec.normalisation, ("zscore", "none"))
    _one_of("missing", spec.missing, ("refuse", "zeros"))
    if not spec.sequences or len(set(spec.sequences)) != len(spec.sequences) or set(spec.sequences) - set(MODALITIES):
        raise ValueError(f"'sequences' must name each of {list(MODALITIES)} at most once, got {list(spec.sequences)}")
    if not 0 <= spec.context <= 8 or (spec.context and spec.input != "2.5d"):
        raise ValueError(f"'context' must be 0..8 and only for 2.5d input, got {spec.context}")
    if not 1 <= spec.size_multiple <= 256:
        raise ValueError(f"'size_multiple' must be 1..256, got {spec.size_multiple}")
    axes = spec.axes.upper()
    if len(axes) != 3 or sorted(next(i for i, pair in enumerate(AXIS_PAIRS) if c in pair) for c in axes
                                if any(c in pair for pair in AXIS_PAIRS)) != [0, 1, 2]:
        raise ValueError(f"'axes' must be three anatomical codes, one of S/I, A/P, L/R each (e.g. SPL), got {spec.axes!r}")
    if spec.input != "3d" and axes[0] not in "SI":
        raise ValueError(f"a {spec.input} model takes axial slices: its first axis must be S or I, got {spec.axes!r}")
    if spec.spacing is not None and (len(spec.spacing) != 3 or min(spec.spacing) <= 0 or max(spec.spacing) > 20):
        raise ValueError(f"'spacing' must be three voxel sizes in mm (0..20), got {list(spec.spacing)}")
    if spec.roi is not None and (spec.input != "3d" or len(spec.roi) != 3 or not all(8 <= r <= 512 for r in spec.roi)):
        raise ValueError(f"'roi' is a 3d sliding window of three sizes 8..512, got {list(spec.roi)}")
    if spec.output == "classes":
        allowed = CONVENTION_VALUES[spec.convention]
        if len(spec.labels) < 2 or set(spec.labels) - set(allowed) or 0 not in spec.labels:
            raise ValueError(f"'labels' must be {spec.convention} values {list(allowed)} including 0, got "
                             f"{list(spec.labels)}")
    elif not spec.regions or set(spec.regions) - set(REGION_NAMES) or len(set(spec.regions)) != len(spec.regions):
        raise ValueError(f"'regions' must name each of {list(REGION_NAMES)} at most once, got {list(spec.regions)}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"'{name}' must be one of {list(allowed)}, got {value!r}")


def sidecar_path(model: str | PathLike[str]) -> Path:
    """Where a model file's description lives: ``model.onnx`` -> ``model.json``."""
    return Path(model).with_suffix(".json")


def read_sidecar(path: str | PathLike[str]) -> ModelSpec:
    """Read and check a model description (bounded in size; data only).

    Raises:
        ModelError: missing, too large, not JSON, or a field out of its range (one line, naming the file).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise _problem(str(path), f"{size:,} bytes; a model description is at most {MAX_SIDECAR_BYTES:,}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _problem(str(path), "no model description here: an imported model needs a JSON file beside it "
                                  "naming its sequences, labels and input (see the README)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        if isinstance(error, ModelError):
            raise
        raise _problem(str(path), f"not a readable JSON model description ({_first_line(error)})") from None
    return spec_from_dict(data, str(path))


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:160] if lines else type(error).__name__
