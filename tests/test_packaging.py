"""napari finds the manifest, and the wheel carries napari.yaml and resources/."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_manifest_valid_from_editable_install():
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("napari-tumorseg")
    assert {r.command for r in manifest.contributions.readers} == {"napari-tumorseg.get_reader"}
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-tumorseg"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
    )
    (wheel,) = out.glob("napari_tumorseg-*.whl")
    return wheel


def test_wheel_carries_manifest_and_resources(built_wheel):
    with zipfile.ZipFile(built_wheel) as archive:
        names = set(archive.namelist())
        manifest = archive.read("napari_tumorseg/napari.yaml").decode()
    assert "napari-tumorseg.get_reader" in manifest  # real content, not a dangling link
    assert any(name.startswith("napari_tumorseg/resources/anatomy/") for name in names)
    assert not any(name.startswith("tests/") for name in names)


def test_napari_finds_manifest_in_installed_wheel(built_wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(built_wheel)],
        check=True,
    )
    # A fresh interpreter that sees the installed wheel first, not the source tree.
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(target)!r})
        from importlib import metadata
        from npe2 import PluginManifest
        from napari_tumorseg.resources import resource_path
        (dist,) = [d for d in metadata.distributions(path=[{str(target)!r}]) if d.metadata["Name"] == "napari-tumorseg"]
        (ep,) = [e for e in dist.entry_points if e.group == "napari.manifest"]
        manifest = PluginManifest._from_entrypoint(ep, dist)
        assert manifest.name == "napari-tumorseg", manifest.name
        import napari_tumorseg
        assert napari_tumorseg.__file__.startswith({str(target)!r}), napari_tumorseg.__file__
        anatomy = resource_path("anatomy")
        assert str(anatomy).startswith({str(target)!r}) and anatomy.is_dir(), anatomy
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
