"""The download recipes in ``data/``: valid shell, and a damaged download is refused in one line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "data").glob("*.sh"))


def test_recipes_exist():
    assert {p.name for p in RECIPES} >= {"div2k.sh", "clic2020.sh", "openimages.sh", "debian-photos.sh"}


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.name)
def test_recipe_is_valid_bash(script):
    run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum is not installed")
def test_debian_photos_refuses_a_package_that_is_not_the_pinned_one(tmp_path):
    # a download already in place is not fetched again, so no network is needed to reach the check
    (tmp_path / "download").mkdir()
    (tmp_path / "download" / "lomiri-wallpapers-16.04_20.04.0-2_all.deb").write_bytes(b"not a package")
    run = subprocess.run(
        ["bash", str(ROOT / "data" / "debian-photos.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if "sha256" in line]
    assert len(lines) == 1 and "lomiri-wallpapers-16.04_20.04.0-2_all.deb" in lines[0], run.stderr


def test_debian_photos_leaves_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "photos" / "mine.jpg"
    mine.parent.mkdir()
    mine.write_bytes(b"somebody's photograph")
    run = subprocess.run(
        ["bash", str(ROOT / "data" / "debian-photos.sh"), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        == f"{tmp_path}/photos: already exists and was not written by this script; choose another folder"
    )
    assert mine.read_bytes() == b"somebody's photograph" and not (tmp_path / "download").exists()
