"""Turning command-line INPUT arguments (files, folders, globs) into a list of images."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .images import SUPPORTED_SUFFIXES, is_zarr_store

GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class InputImage:
    """One image to process; ``subfolder`` is where it sits below a folder argument."""

    path: Path
    subfolder: Path = Path()


@dataclass
class ExpandedInputs:
    """The images found, and what was passed over with the reason."""

    images: list[InputImage] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def expand_inputs(
    inputs: Iterable[str | os.PathLike], *, recursive: bool = False
) -> ExpandedInputs:
    """Files, folders (their images; subfolders too when ``recursive``) and glob patterns.

    zarr stores are folders but count as one image each. Unsupported files and missing
    paths are listed in ``skipped`` with a reason; an image named twice is kept once.
    Hidden files (names starting with a dot) in folders are ignored.
    """
    found = ExpandedInputs()
    seen: set[Path] = set()
    for argument in inputs:
        for image in _expand_one(os.fspath(argument), recursive, found.skipped):
            key = image.path.resolve()
            if key not in seen:
                seen.add(key)
                found.images.append(image)
    return found


def is_supported(path: Path) -> bool:
    return is_zarr_store(path) or (path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES)


def _expand_one(argument: str, recursive: bool, skipped: list) -> list[InputImage]:
    path = Path(argument).expanduser()
    if GLOB_CHARACTERS & set(argument) and not path.exists():
        matches = sorted(glob.glob(os.path.expanduser(argument), recursive=recursive))
        if not matches:
            skipped.append((path, "no file matches this pattern"))
        return [
            image for match in matches for image in _expand_path(Path(match), recursive, skipped)
        ]
    return _expand_path(path, recursive, skipped)


def _expand_path(path: Path, recursive: bool, skipped: list) -> list[InputImage]:
    if is_zarr_store(path):
        return [InputImage(path)]
    if path.is_dir():
        return _folder_images(path, recursive, skipped)
    if not path.exists():
        skipped.append((path, "does not exist"))
        return []
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        skipped.append((path, f"unsupported file type {path.suffix or '(no suffix)'}"))
        return []
    return [InputImage(path)]


def _folder_images(folder: Path, recursive: bool, skipped: list) -> list[InputImage]:
    images = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if is_supported(child):
            images.append(InputImage(child))
        elif child.is_dir() and recursive:
            for image in _folder_images(child, recursive, skipped):
                images.append(InputImage(image.path, child.name / image.subfolder))
        elif child.is_file():
            skipped.append((child, f"unsupported file type {child.suffix or '(no suffix)'}"))
    return images
