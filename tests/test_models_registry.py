"""Model registry: versions with provenance, activate, roll back, delete, read-only pretrained, corruption."""

from __future__ import annotations

import json
import os

import pytest
import torch
from test_adapt_helpers import same_state, state_copy, tiny_model

from napari_tumorseg.models.registry import (
    ACTIVE_FILE,
    CANDIDATE,
    CORRUPT,
    PRETRAINED,
    REJECTED,
    ModelRegistry,
    default_registry_root,
)
from napari_tumorseg.errors import ModelError
from napari_tumorseg.models.checkpoint import save_checkpoint

torch.set_num_threads(1)


@pytest.fixture()
def shipped(tmp_path):
    folder = tmp_path / "resources" / "models"
    folder.mkdir(parents=True)
    save_checkpoint(folder / "unet-synthetic.safetensors", tiny_model("unet"), metadata={"metrics": {"WT": 0.9}})
    save_checkpoint(folder / "dycnn-synthetic.safetensors", tiny_model("dycnn"))
    return folder


@pytest.fixture()
def registry(tmp_path, shipped):
    return ModelRegistry(tmp_path / "registry", pretrained_dirs=[shipped])


def _add(registry, parent, status=CANDIDATE, seed=1):
    return registry.add(
        tiny_model(seed=seed),
        parent=parent,
        method="active",
        hyperparameters={"steps": 3},
        corrections_hash="ab" * 32,
        metrics={"anchor": {"before": 0.8, "after": 0.79}},
        status=status,
        reason="test",
        report={"method": "active"},
    )


def test_root_follows_tumorseg_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUMORSEG_HOME", str(tmp_path / "home"))
    assert default_registry_root() == tmp_path / "home" / "models"
    assert ModelRegistry(pretrained_dirs=[]).root == tmp_path / "home" / "models"


def test_pretrained_models_are_listed_read_only_and_the_unet_is_active_by_default(registry):
    versions = registry.list()
    assert [v.id for v in versions] == ["dycnn-synthetic", "unet-synthetic"]
    assert all(v.status == PRETRAINED and v.read_only for v in versions)
    assert registry.active_id() == "unet-synthetic"
    assert versions[1].metrics == {"WT": 0.9}
    shipped_card = registry.pretrained_dirs[0] / "unet-synthetic.card.json"
    shipped_card.write_text('{"metrics": {"WT": 0.95}}')
    assert registry.list()[1].metrics == {"WT": 0.95}
    assert registry.list()[1].created.startswith("20")  # no training date in the card: the file's time
    shipped_card.write_text('{"metrics": {"WT": 0.95}, "training": {"finished": "2026-11-30T22:56:46+00:00"}}')
    assert registry.list()[1].created == "2026-11-30T22:56:46+00:00"  # the training date, not the file's
    shipped_card.write_text("{ broken")
    assert registry.list()[1].metrics == {"WT": 0.9}
    with pytest.raises(ModelError, match="cannot be deleted"):
        registry.delete("dycnn-synthetic")
    loaded, version = registry.load()
    assert version.id == "unet-synthetic" and loaded.config.arch == "unet"


def test_add_keeps_provenance_and_weights(registry):
    model = tiny_model(seed=4)
    version = registry.add(
        model,
        parent="unet-synthetic",
        method="naive",
        hyperparameters={"lr": 0.001},
        corrections_hash="cd" * 32,
        metrics={"x": 1},
        status=CANDIDATE,
        reason="accepted",
    )
    assert version.parent == "unet-synthetic" and version.method == "naive" and version.arch == "unet"
    assert version.corrections_hash == "cd" * 32 and version.created
    loaded, _ = registry.load(version.id)
    assert same_state(state_copy(model), state_copy(loaded.model))
    assert registry.active_id() == "unet-synthetic", "adding a version does not activate it"
    assert not list((registry.root / ".staging").iterdir())


def test_activate_rollback_and_delete(registry):
    first = _add(registry, "unet-synthetic")
    registry.activate(first.id)
    second = _add(registry, first.id, seed=2)
    registry.activate(second.id)
    assert registry.active_id() == second.id
    assert (registry.root / ACTIVE_FILE).read_text(encoding="utf-8").strip() == second.id
    with pytest.raises(ModelError, match="is active"):
        registry.delete(second.id)
    assert registry.rollback().id == first.id
    assert registry.active_id() == first.id
    registry.delete(second.id)
    assert second.id not in [v.id for v in registry.list()]
    assert registry.rollback().id == "unet-synthetic"
    with pytest.raises(ModelError, match="no parent"):
        registry.rollback()


def test_a_rejected_version_needs_force(registry):
    rejected = _add(registry, "unet-synthetic", status=REJECTED)
    with pytest.raises(ModelError, match="rejected.*--force"):
        registry.activate(rejected.id)
    registry.activate(rejected.id, force=True)
    assert registry.active_id() == rejected.id


def test_rollback_to_a_deleted_parent_is_a_clear_error(registry):
    parent = _add(registry, "unet-synthetic")
    child = _add(registry, parent.id, seed=2)
    registry.delete(parent.id)
    registry.activate(child.id)
    with pytest.raises(ModelError, match=f"cannot roll back {child.id}"):
        registry.rollback()


def _damage_version_file(folder, damage: str) -> None:
    path = folder / "version.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if damage == "bad-json":
        path.write_text("{ not json")
    elif damage == "missing-weights":
        (folder / "weights.safetensors").unlink()
    elif damage == "missing-json":
        path.unlink()
    elif damage == "wrong-status":
        path.write_text(json.dumps({**data, "status": "bogus"}))
    elif damage == "deeply-nested":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "mistyped-metrics":
        path.write_text(json.dumps({**data, "metrics": {"corrections": {"before": "x", "after": [1]}}}))
    elif damage == "mistyped-field":
        path.write_text(json.dumps({**data, "metrics": "high", "parent": 7}))
    elif damage == "not-utf8":
        path.write_bytes(b"\xff\xfe{" + path.read_bytes())


@pytest.mark.parametrize("damage", ["bad-json", "missing-weights", "missing-json", "wrong-status", "deeply-nested",
                                    "mistyped-field", "not-utf8"])
def test_a_corrupt_entry_is_a_clear_error_and_the_others_still_list(registry, damage):
    good = _add(registry, "unet-synthetic")
    bad = _add(registry, "unet-synthetic", seed=3)
    folder = registry.versions_dir / bad.id
    _damage_version_file(folder, damage)
    listed = {v.id: v for v in registry.list()}
    assert listed[good.id].status == CANDIDATE
    assert listed[bad.id].status == CORRUPT and str(folder) in listed[bad.id].error
    with pytest.raises(ModelError, match=f"{bad.id} is corrupt: .*{bad.id}"):
        registry.get(bad.id)
    with pytest.raises(ModelError, match="corrupt"):
        registry.activate(bad.id)
    registry.delete(bad.id)
    assert bad.id not in {v.id for v in registry.list()}


def test_corrupt_weights_fail_on_load_with_the_file_named(registry):
    version = _add(registry, "unet-synthetic")
    version.weights.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="weights.safetensors"):
        registry.load(version.id)


def test_a_corrupt_pretrained_file_is_listed_as_corrupt(registry, shipped):
    (shipped / "broken.safetensors").write_bytes(b"\x00\x01")
    listed = {v.id: v for v in registry.list()}
    assert listed["broken"].status == CORRUPT and listed["broken"].read_only
    assert registry.active_id() == "unet-synthetic"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00bad", b"\x00" * 5000, b"", b"v" * 100_000])
def test_an_unreadable_active_pointer_falls_back_to_the_default(registry, content):
    version = _add(registry, "unet-synthetic")
    registry.activate(version.id)
    (registry.root / ACTIVE_FILE).write_bytes(content)
    assert registry.active_id() == "unet-synthetic"
    assert registry.load()[1].id == "unet-synthetic"
    assert len(registry.list()) == 3


def test_active_pointer_to_a_vanished_version_falls_back_to_pretrained(registry):
    version = _add(registry, "unet-synthetic")
    registry.activate(version.id)
    registry.activate("unet-synthetic")
    registry.delete(version.id)
    (registry.root / ACTIVE_FILE).write_text(version.id)
    assert registry.active_id() == "unet-synthetic"


def registry_files(root) -> dict[str, bytes]:
    """Every file under the registry with its bytes (folders left empty do not count)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_failed_write_leaves_nothing_behind(registry, monkeypatch):
    import napari_tumorseg.models.registry as registry_module

    registry.activate(_add(registry, "unet-synthetic").id)
    before = registry_files(registry.root)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(registry_module, "atomic_write_json", fail)
    with pytest.raises(OSError, match="disk full"):
        _add(registry, "unet-synthetic", seed=5)
    assert registry_files(registry.root) == before


def test_stale_staging_is_cleaned(registry):
    stale = registry.staging_dir / "v-old.abc"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))
    fresh = registry.staging_dir / "v-new.abc"
    fresh.mkdir()
    ModelRegistry(registry.root, pretrained_dirs=[])
    assert not stale.exists() and fresh.exists()
