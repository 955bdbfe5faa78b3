"""SimZSS: frozen DINOv2 (with registers) + a denoiser block, aligned with its own text tower.

``napari_gem.load_model("SimZSS-ViT-B-14", "checkpoint.pth")`` builds it; see
``docs/simzss.md``.
"""

from . import family  # noqa: F401  (registers the SimZSS family)
from .architecture import (
    DEFAULT_ARCHITECTURE,
    SimZSSArchitecture,
    architecture_names,
    is_simzss_name,
    register_architecture,
)
from .checkpoint import read_state_dict, released_state_dict
from .loader import build_simzss, load_simzss, new_network
from .model import SimZSSModel, SimZSSNetwork

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "SimZSSArchitecture",
    "SimZSSModel",
    "SimZSSNetwork",
    "architecture_names",
    "build_simzss",
    "is_simzss_name",
    "load_simzss",
    "new_network",
    "read_state_dict",
    "register_architecture",
    "released_state_dict",
]
