"""Expanding INPUT arguments: files, folders, globs, zarr stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import zarr

from napari_gem.io.inputs import expand_inputs


def make_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    for name in ("a.tif", "b.png", "sub/c.tif"):
        tifffile.imwrite(root / name, np.zeros((4, 4), np.uint8))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.tif").write_bytes(b"")
    zarr.open_array(root / "big.zarr", mode="w", shape=(4, 4), dtype="u1")


def names(found) -> list[str]:
    return [image.path.name for image in found.images]


def test_folder_is_not_recursive_by_default(tmp_path):
    make_tree(tmp_path)
    found = expand_inputs([tmp_path])
    assert names(found) == ["a.tif", "b.png", "big.zarr"]
    assert [(path.name, reason) for path, reason in found.skipped] == [
        ("notes.txt", "unsupported file type .txt")
    ]


def test_recursive_folder_keeps_subfolders(tmp_path):
    make_tree(tmp_path)
    found = expand_inputs([tmp_path], recursive=True)
    assert names(found) == ["a.tif", "b.png", "big.zarr", "c.tif"]
    assert found.images[-1].subfolder == Path("sub")
    assert found.images[0].subfolder == Path()


def test_files_globs_missing_paths_and_duplicates(tmp_path):
    make_tree(tmp_path)
    found = expand_inputs([
        tmp_path / "a.tif", str(tmp_path / "*.tif"), str(tmp_path / "*.jpg"),
        tmp_path / "gone.tif", tmp_path / "big.zarr",
    ])
    assert names(found) == ["a.tif", "big.zarr"]
    reasons = {path.name: reason for path, reason in found.skipped}
    assert reasons == {"*.jpg": "no file matches this pattern", "gone.tif": "does not exist"}


def test_recursive_glob(tmp_path):
    make_tree(tmp_path)
    found = expand_inputs([str(tmp_path / "**" / "*.tif")], recursive=True)
    assert names(found) == ["a.tif", "c.tif"]
