"""Checkpoints: safetensors round trip, metadata, atomic writes, clear errors, no code execution."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from napari_tumorseg.errors import ModelError, WriteError
from napari_tumorseg.models import PreprocessingConfig, build_model
from napari_tumorseg.models.checkpoint import (
    load_checkpoint,
    load_weights_into,
    read_checkpoint_info,
    save_checkpoint,
)

torch.set_num_threads(1)

TINY = dict(base_width=4, depth=2)


def _x(model, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, model.in_channels, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ["unet", "dycnn"])
def test_round_trip_gives_equal_outputs(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, context=1, **TINY).eval()
    if arch == "dycnn":
        model.temperature = 3.5
    path = save_checkpoint(
        tmp_path / "m.safetensors",
        model,
        preprocessing=PreprocessingConfig(crop_margin=6),
        metadata={"seed": 7, "command": "tumorseg train"},
    )
    loaded = load_checkpoint(path)
    expected_temperature = 3.5 if arch == "dycnn" else 30.0
    assert loaded.config == replace(model.config, temperature=expected_temperature)
    assert loaded.preprocessing.crop_margin == 6
    assert loaded.info.metadata == {"seed": 7, "command": "tumorseg train"}
    assert not loaded.model.training
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(_x(model)), model(_x(model)), rtol=0, atol=0)
    if arch == "dycnn":
        assert loaded.model.temperature == 3.5


def test_half_precision_is_smaller_and_close(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_model("unet", **TINY).eval()
    full = save_checkpoint(tmp_path / "full.safetensors", model)
    half = save_checkpoint(tmp_path / "half.safetensors", model, half_precision=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_checkpoint(half)
    assert next(loaded.model.parameters()).dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(_x(model)), model(_x(model)), rtol=2e-2, atol=2e-2)


def test_info_is_read_from_the_header(tmp_path: Path) -> None:
    model = build_model("dycnn", depth=2, base_width=4, num_kernels=2)
    path = save_checkpoint(tmp_path / "m.safetensors", model, metadata={"metrics": {"WT": 0.9}})
    info = read_checkpoint_info(path)
    assert info.config.arch == "dycnn" and info.config.num_kernels == 2 and info.config.in_channels == 8
    assert info.metadata["metrics"]["WT"] == 0.9
    assert "3 ET" in info.label_convention
    with safe_open(str(path), framework="numpy") as handle:
        header = handle.metadata()
    assert json.loads(header["input"])["channels"] == 8 and json.loads(header["config"])["arch"] == "dycnn"


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model("unet", **TINY)
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    torch.manual_seed(9)
    with pytest.raises(WriteError, match="m.safetensors: cannot write: No space left"):
        save_checkpoint(path, build_model("unet", **TINY))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_missing_file_is_a_model_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope\.safetensors: no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_file_is_a_one_line_model_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "bad.safetensors"
    if damage == "garbage":
        path.write_bytes(b"\x00\x01not a safetensors file at all")
    else:
        save_checkpoint(path, build_model("unet", **TINY))
        path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def _retag(tmp_path: Path, model, config: dict) -> Path:
    """Weights of ``model`` under a header that declares another config."""
    path = tmp_path / "retagged.safetensors"
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"config": json.dumps(config)})
    return path


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    small = build_model("unet", base_width=4, depth=2)
    path = _retag(tmp_path, small, {"arch": "unet", "base_width": 8, "depth": 2})
    with pytest.raises(ModelError, match=r"retagged\.safetensors: tensor 'stem.conv_0.conv.weight' has shape"):
        load_checkpoint(path)


def test_architecture_mismatch_is_named(tmp_path: Path) -> None:
    dycnn = build_model("dycnn", **TINY)
    path = _retag(tmp_path, dycnn, {"arch": "unet", **TINY})
    with pytest.raises(ModelError, match="do not fit architecture 'unet'.*unexpected"):
        load_checkpoint(path)
    good = save_checkpoint(tmp_path / "dy.safetensors", dycnn)
    with pytest.raises(ModelError, match="'dycnn' is not the expected 'unet'"):
        load_checkpoint(good, expect_arch="unet")
    with pytest.raises(ModelError, match="does not match the model's architecture: arch='dycnn'"):
        load_weights_into(build_model("unet", **TINY), good)


def test_header_without_config_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelError, match="not a napari-tumorseg checkpoint"):
        load_checkpoint(path)


def test_non_finite_weights_are_rejected(tmp_path: Path) -> None:
    model = build_model("unet", **TINY)
    with torch.no_grad():
        model.head.bias[0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.safetensors", model)
    with pytest.raises(ModelError, match="head.bias.*NaN"):
        load_checkpoint(path)


def test_load_weights_into_existing_model(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = build_model("dycnn", **TINY).eval()
    source.temperature = 1.0
    path = save_checkpoint(tmp_path / "m.safetensors", source)
    torch.manual_seed(3)
    target = build_model("dycnn", **TINY).eval()
    load_weights_into(target, path)
    assert target.temperature == 1.0
    with torch.no_grad():
        torch.testing.assert_close(target(_x(source)), source(_x(source)), rtol=0, atol=0)


class _Exploit:
    """Unpickling this would call the function below; a safe loader never does."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/napari_tumorseg_pwned",))


def test_legacy_pt_loads_weights_only_and_never_runs_code(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = build_model("unet", **TINY).eval()
    good = tmp_path / "m.pt"
    torch.save({"state_dict": model.state_dict(), "config": model.config.to_dict()}, good)
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(good).model(_x(model)), model(_x(model)))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"state_dict": {}, "config": {}, "payload": _Exploit()}, handle)
    marker = Path("/tmp/napari_tumorseg_pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelError, match=r"evil\.pt: holds pickled Python code, not plain weights; it was not loaded"):
        load_checkpoint(evil)
    assert not marker.exists()
