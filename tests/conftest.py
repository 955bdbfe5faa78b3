"""Shared fixtures: tiny random-weight open_clip models (no weights can be downloaded here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_MODEL = "napari-gem-tiny"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 8, "width": 64, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def register_tiny_model(folder: Path) -> str:
    """Register the tiny ViT config with open_clip (idempotent) and return its name."""
    import open_clip

    if TINY_MODEL not in open_clip.list_models():
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{TINY_MODEL}.json"
        path.write_text(json.dumps(TINY_CONFIG))
        open_clip.add_model_config(path)
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_model_name(tmp_path_factory) -> str:
    """Name of a registered 8-block ViT (width 64, patch 16) with random weights."""
    return register_tiny_model(tmp_path_factory.mktemp("open_clip_configs"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model_name, tmp_path_factory) -> Path:
    """A real checkpoint file of the tiny model (random weights, fixed seed)."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name, pretrained=None)
    path = tmp_path_factory.mktemp("checkpoints") / "tiny.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def tiny_gem(tiny_model_name, tiny_checkpoint):
    """A GEM on the tiny model, loaded through the real checkpoint-file path."""
    from napari_gem import load_model

    return load_model(tiny_model_name, tiny_checkpoint, device="cpu")


# -- SimZSS: a tiny registered architecture and checkpoints in the released key layout -----
# (No weights can be downloaded here, so every checkpoint holds random weights; the layout,
# with its ``module.`` prefix and training-only buffers, is that of the released files.)
@pytest.fixture(scope="session")
def tiny_simzss_name() -> str:
    from napari_gem.engine.families.simzss import register_architecture
    from simzss_helpers import TINY, tiny_architecture

    register_architecture(TINY, tiny_architecture())
    return TINY


@pytest.fixture(scope="session")
def tiny_simzss_checkpoint(tiny_simzss_name, tmp_path_factory) -> Path:
    from simzss_helpers import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("simzss") / "tiny.pth")


@pytest.fixture(scope="session")
def tiny_simzss(tiny_simzss_name, tiny_simzss_checkpoint):
    from napari_gem import load_model

    return load_model(tiny_simzss_name, tiny_simzss_checkpoint, device="cpu")


# -- ProxyCLIP: a tiny DINO ViT-B/16 shared as the default proxy (no weights can be downloaded) --
@pytest.fixture
def tiny_proxy():
    """A random 2-block DINO B/16 (width 64) shared in the process as proxy ``dino-b16``."""
    import timm
    import torch

    from napari_gem.engine.vfm import forget_proxies, share_proxy

    torch.manual_seed(0)
    module = timm.create_model("vit_base_patch16_224.dino", pretrained=False, depth=2, embed_dim=64,
                               num_heads=2, img_size=64).eval()
    share_proxy("dino-b16", module)
    yield module
    forget_proxies()


@pytest.fixture
def fresh_deprecations(monkeypatch):
    """Deprecated names warn once per process: a test of a warning starts as a new process would."""
    from napari_gem.engine import deprecation

    monkeypatch.setattr(deprecation, "_warned", set())
