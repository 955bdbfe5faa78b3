"""One answer to "is this ``pretrained`` value a file?" for every family, the widget and the CLI."""

from __future__ import annotations

import os
from pathlib import Path

#: File endings that mark a checkpoint file even before it exists.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def is_weights_path(pretrained: str | os.PathLike | None) -> bool:
    """Whether ``pretrained`` names a weights file rather than a tag.

    A path separator, a checkpoint suffix (``model.pt``) or an existing file makes it a
    path, so a mistyped file name is reported as a missing file, not as an unknown tag.
    """
    if pretrained is None:
        return False
    text = os.fspath(pretrained)
    return (
        os.sep in text
        or "/" in text
        or text.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(text).expanduser().exists()
    )


def absolute(path: str | os.PathLike) -> str:
    """``path`` made absolute (``~`` expanded), so it means the same file from any directory."""
    return str(Path(os.fspath(path)).expanduser().absolute())
