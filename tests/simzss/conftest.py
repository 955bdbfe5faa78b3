"""SimZSS fixtures: a tiny registered architecture and checkpoints in the released key layout.

No weights can be downloaded here, so every checkpoint holds random weights; the
layout (``module.`` prefix, training-only buffers) is that of the released files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from simzss_helpers import TINY, save_tiny_checkpoint, tiny_architecture


@pytest.fixture(scope="session")
def tiny_simzss_name() -> str:
    from napari_gem.engine.simzss import register_architecture

    register_architecture(TINY, tiny_architecture())
    return TINY


@pytest.fixture(scope="session")
def tiny_simzss_checkpoint(tiny_simzss_name, tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("simzss") / "tiny.pth")


@pytest.fixture(scope="session")
def tiny_simzss(tiny_simzss_checkpoint):
    from napari_gem import load_model

    return load_model(TINY, tiny_simzss_checkpoint, device="cpu")
