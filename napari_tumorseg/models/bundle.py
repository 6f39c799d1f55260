"""A MONAI bundle folder as an imported segmenter, read as data (no ``$`` expression is ever run).

A bundle (``configs/inference.json`` or ``.yaml``, ``configs/metadata.json``,
``models/model.pt``) describes its network in ``network_def`` and its
channels in the metadata's ``network_data_format``. From them:

- the network: ``network_def``'s ``_target_`` must be one of
  :data:`NETWORKS` (MONAI's segmentation networks), its arguments plain values
  or ``@name`` references to plain top-level values; its size is checked on
  the ``meta`` device (no memory) before it is built;
- the weights: ``models/model.pt``, read with ``torch.load(weights_only=True)``;
- the input: the metadata's input ``channel_def`` names the sequences
  (e.g. "T1c", "T1", "T2", "FLAIR"); ``NormalizeIntensityd`` in the
  preprocessing means per-sequence z-scores over the brain; the inferer's
  ``roi_size`` is the sliding window; the arrays are taken as BraTS NIfTI
  files store them (axes "LPS", i.e. x, y, z);
- the output: the output ``channel_def`` ("Tumor core", "Whole tumor",
  "Enhancing tumor" -> sigmoid regions; "background", "necrosis", "edema",
  "enhancing" -> classes).

A ``napari-tumorseg.json`` in the bundle folder (the sidecar format of
``models.sidecar``) overrides all of this for bundles that say less.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io.naming import guess_modality
from .imported import ImportedModel, _check_size, _fail, _first_line
from .sidecar import ModelSpec, read_sidecar, spec_from_dict

NETWORKS = ("SegResNet", "SegResNetDS", "UNet", "BasicUNet", "DynUNet", "AttentionUnet", "SwinUNETR", "UNETR")
MAX_CONFIG_BYTES = 1_000_000
MAX_PARAMETERS = 200_000_000
MAX_NUMBER = 4096  # no argument (filters, blocks, a list's sum) beyond this: building stays quick
BUNDLE_SIDECAR = "napari-tumorseg.json"
REGION_WORDS = {"tumor core": "TC", "tumour core": "TC", "whole tumor": "WT", "whole tumour": "WT",
                "enhancing tumor": "ET", "enhancing tumour": "ET"}
CLASS_WORDS = (("background", 0), ("necro", 1), ("non-enhancing", 1), ("edema", 2), ("oedema", 2), ("enhanc", 3))


def load_bundle(folder: Path, spec: ModelSpec | None = None) -> ImportedModel:
    """Build a bundle's network from its configuration and load its weights (see the module's docstring)."""
    config = _read_config(folder)
    metadata = _read_json(folder / "configs" / "metadata.json", required=False) or {}
    target, arguments = _network(folder, config)
    if spec is None:
        spec = read_sidecar(folder / BUNDLE_SIDECAR) if (folder / BUNDLE_SIDECAR).exists() \
            else _spec(folder, config, metadata, arguments)
    module = _build(folder, target, arguments)
    _load_weights(folder, module)
    return ImportedModel(folder, "monai-bundle", spec, module=module.eval())


def _read_config(folder: Path) -> dict[str, Any]:
    for name in ("inference.json", "inference.yaml", "inference.yml"):
        path = folder / "configs" / name
        if path.exists():
            data = _read_json(path, required=True) if name.endswith(".json") else _read_yaml(path)
            if not isinstance(data, dict):
                raise _fail(path, "a bundle configuration must be a mapping")
            return data
    raise _fail(folder, "no configs/inference.json (or .yaml): not a MONAI bundle")


def _read_json(path: Path, required: bool) -> Any:
    if not path.exists():
        if required:
            raise _fail(path, "missing")
        return None
    _check_config_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _fail(path, f"not readable JSON ({_first_line(error)})") from None


def _read_yaml(path: Path) -> Any:
    import yaml

    _check_config_size(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))  # plain data: no Python tags
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        raise _fail(path, f"not readable YAML ({_first_line(error)})") from None


def _check_config_size(path: Path) -> None:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise _fail(path, f"larger than {MAX_CONFIG_BYTES:,} bytes; not a bundle configuration")


def _network(folder: Path, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    where = folder / "configs"
    definition = config.get("network_def")
    if not isinstance(definition, dict) or "_target_" not in definition:
        raise _fail(where, "the bundle has no 'network_def' with a '_target_'")
    target = str(definition["_target_"]).rsplit(".", 1)[-1]
    if target not in NETWORKS:
        raise _fail(where, f"network '{definition['_target_']}' is not one this program builds ({', '.join(NETWORKS)})")
    arguments = {key: _plain(where, key, value, config) for key, value in definition.items() if key != "_target_"}
    return target, arguments


def _plain(where: Path, key: str, value: Any, config: dict[str, Any], depth: int = 0) -> Any:
    """A network argument as plain data: numbers, strings, booleans, lists; '@name' resolved; '$' refused."""
    if isinstance(value, str) and value.startswith("$"):
        raise _fail(where, f"network argument '{key}' is a Python expression ({value[:60]!r}); it is never run")
    if isinstance(value, str) and value.startswith("@") and depth == 0:
        return _plain(where, key, config.get(value[1:]), config, depth + 1)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        if abs(value) > MAX_NUMBER:
            raise _fail(where, f"network argument '{key}' = {value} is beyond any network this program builds")
        return value
    if isinstance(value, str) and not value.startswith("@") and len(value) <= 100:
        return value
    if isinstance(value, list) and len(value) <= 16:
        items = [_plain(where, key, item, config, depth + 1) for item in value]
        if sum(abs(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)) > MAX_NUMBER:
            raise _fail(where, f"network argument '{key}' = {value} is beyond any network this program builds")
        return items
    raise _fail(where, f"network argument '{key}' is not a plain value: {str(value)[:60]}")


def _build(folder: Path, target: str, arguments: dict[str, Any]) -> Any:
    try:
        import monai.networks.nets as nets
        import torch
    except ImportError:
        raise _fail(folder, "MONAI bundles need MONAI: pip install 'napari-tumorseg[monai]'") from None
    network = getattr(nets, target)
    try:
        with torch.device("meta"):  # count the parameters without allocating them
            size = sum(p.numel() for p in network(**arguments).parameters())
        if size > MAX_PARAMETERS:
            raise _fail(folder, f"{target} with these arguments has {size:,} parameters; at most {MAX_PARAMETERS:,}")
        return network(**arguments)
    except ModelError:
        raise
    except Exception as error:  # a wrong argument name or value
        raise _fail(folder / "configs", f"cannot build {target} from network_def ({_first_line(error)})") from None


def _load_weights(folder: Path, module: Any) -> None:
    import pickle
    import warnings

    import torch

    path = folder / "models" / "model.pt"
    if not path.exists():
        extra = " (models/model.ts is TorchScript: import that file with its .json instead)" \
            if (folder / "models" / "model.ts").exists() else ""
        raise _fail(path, f"the bundle's weights are missing{extra}")
    _check_size(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _fail(path, "holds pickled Python code, not plain weights; it was not loaded") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise _fail(path, f"not a loadable weights-only torch file ({_first_line(error)})") from None
    if isinstance(blob, dict) and len(blob) == 1 and next(iter(blob)) in ("model", "state_dict", "network"):
        blob = next(iter(blob.values()))
    if not isinstance(blob, dict):
        raise _fail(path, "not a state dict of the network's weights")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in blob.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise _fail(path, f"the weights do not fit network_def ({_first_line(error)})") from None


def _spec(folder: Path, config: dict[str, Any], metadata: dict[str, Any], arguments: dict[str, Any]) -> ModelSpec:
    """The description the bundle gives of itself (see the module's docstring)."""
    where = folder / "configs" / "metadata.json"
    formats = metadata.get("network_data_format", {}) if isinstance(metadata, dict) else {}
    inputs = (formats.get("inputs") or {}).get("image", {}) if isinstance(formats, dict) else {}
    outputs = (formats.get("outputs") or {}).get("pred", {}) if isinstance(formats, dict) else {}
    channels = _names(inputs.get("channel_def"))
    sequences = [guess_modality(name) for name in channels] if channels else ["flair", "t1", "t1c", "t2"]
    if None in sequences or len(sequences) != arguments.get("in_channels", len(sequences)):
        raise _fail(where, f"cannot tell the input sequences from {channels or 'nothing'}; add {BUNDLE_SIDECAR}")
    data: dict[str, Any] = {
        "name": str(metadata.get("name") or folder.name)[:80],
        "sequences": sequences,
        "input": "2d" if arguments.get("spatial_dims") == 2 else "3d",
        "axes": "LPS" if arguments.get("spatial_dims", 3) == 3 else "SPL",
        "normalisation": "zscore" if "NormalizeIntensity" in json.dumps(config.get("preprocessing", "")) else "none",
        "size_multiple": _multiple(inputs.get("spatial_shape")),
    }
    roi = (config.get("inferer") or {}).get("roi_size") if isinstance(config.get("inferer"), dict) else None
    if isinstance(roi, list) and data["input"] == "3d":
        data["roi"] = roi
    data.update(_output(where, _names(outputs.get("channel_def"))))
    return spec_from_dict(data, str(where))


def _names(channel_def: Any) -> list[str]:
    if not isinstance(channel_def, dict):
        return []
    return [str(channel_def[k]) for k in sorted(channel_def, key=lambda k: int(k) if str(k).isdigit() else 0)]


def _multiple(spatial_shape: Any) -> int:
    if isinstance(spatial_shape, list) and spatial_shape and isinstance(spatial_shape[0], str) and "*n" in spatial_shape[0]:
        head = spatial_shape[0].split("*")[0]
        if head.isdigit():
            return int(head)
    return 16


def _output(where: Path, names: list[str]) -> dict[str, Any]:
    lowered = [n.lower().strip() for n in names]
    if lowered and all(n in REGION_WORDS for n in lowered):
        return {"output": "regions", "regions": [REGION_WORDS[n] for n in lowered]}
    labels = [next((value for word, value in CLASS_WORDS if word in n), None) for n in lowered]
    if lowered and None not in labels and len(set(labels)) == len(labels):
        return {"output": "classes", "labels": labels, "convention": "brats2023", "activation": "softmax"}
    raise _fail(where, f"cannot tell what the output channels are from {names or 'nothing'}; add {BUNDLE_SIDECAR}")
