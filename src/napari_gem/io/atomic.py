"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

A reader (or a resumed batch) therefore sees either the old file, the complete new
file or nothing, never half a file, even when the writer is killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then move the result to ``path`` in one step.

    The temporary file keeps ``path``'s suffix so format-sniffing writers pick the
    right format; it is removed again when ``write`` fails.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}"
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        write(temporary_path)
        os.chmod(temporary_path, 0o666 & ~_UMASK)
        os.replace(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def replace_directory(partial: Path, target: Path) -> Path:
    """Move a finished directory (a zarr store) into place, replacing an older one."""
    if target.exists():
        # A directory cannot be swapped in one step over a non-empty one: move the old
        # one aside first, so a crash leaves either the old or the new store in place.
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(partial, target)
        shutil.rmtree(old)
    else:
        os.replace(partial, target)
    return target


def _current_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# mkstemp creates files readable by the owner only; finished files get the usual mode.
# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = _current_umask()
