"""The demo family: the small CLIP napari-gem ships, trained on generated micrographs (offline).

Its open_clip config and weights are package data of :mod:`napari_gem.demo` (found by
path, so the engine imports nothing above it). See docs/demo-model.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from .base import WEIGHTS_PACKAGED, LoadRequest
from .clip.family import OpenClipFamily, register_model_configs
from .clip.model import GroundingModel
from .registry import register_family

_DEMO_PACKAGE = Path(__file__).resolve().parents[2] / "demo"
#: open_clip model name of the demo architecture (the config file's name).
MODEL_NAME = "napari-gem-demo-micrographs"
CONFIG_PATH = _DEMO_PACKAGE / f"{MODEL_NAME}.json"
WEIGHTS_PATH = _DEMO_PACKAGE / "weights" / f"{MODEL_NAME}.pt"
#: How pickers list it: nobody should take it for a general-purpose CLIP.
DISPLAY_NAME = "demo: generated micrographs only (napari-gem toy CLIP)"
#: GEM depth for this 4-block ViT (the paper's 7 needs at least 6 blocks); see docs/demo-model.md.
DEFAULT_DEPTH = 3
#: The input side the quality table was measured at (3x the native 64 px; 24 x 24 patches).
INPUT_SIZE = 192


def register_config() -> None:
    """Make the demo architecture known to open_clip (idempotent)."""
    register_model_configs((str(CONFIG_PATH),))


@register_family
class DemoFamily(OpenClipFamily):
    """The packaged demo CLIP: an open_clip ViT whose config and weights ship with napari-gem."""

    name = "demo"
    title = "napari-gem demo CLIP"
    summary = "a toy CLIP trained on generated micrographs, packaged with napari-gem (works offline)"
    weights = WEIGHTS_PACKAGED
    priority = 0

    def claims(self, name: str) -> bool:
        return name == MODEL_NAME

    def model_names(self) -> list[str]:
        return [MODEL_NAME]

    def display_name(self, name: str) -> str:
        return DISPLAY_NAME

    def pretrained_tags(self, name: str) -> list[str]:
        return []

    def default_pretrained(self, name: str) -> str | None:
        return str(WEIGHTS_PATH)

    def method_defaults(self, method: str) -> dict[str, Any]:
        return {"depth": DEFAULT_DEPTH} if method == "gem" else {}

    def segment_defaults(self, name: str) -> dict[str, Any]:
        return {"input_size": INPUT_SIZE, "window": INPUT_SIZE, "overlap": INPUT_SIZE // 4}

    def check(self, name: str, pretrained: str | None) -> None:
        register_config()
        if pretrained == str(WEIGHTS_PATH) and not WEIGHTS_PATH.is_file():
            raise ModelLoadError(
                f"the demo weights are missing ({WEIGHTS_PATH}); reinstall napari-gem or, in a "
                "checkout of its repository, run `python benchmarks/train_demo.py`"
            )
        super().check(name, pretrained)

    def build(self, request: LoadRequest) -> GroundingModel:
        register_config()
        return super().build(request)
