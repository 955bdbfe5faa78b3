"""SimZSS: frozen DINOv2 (with registers) + a denoiser block, aligned with its own text tower.

``napari_gem.load_model("SimZSS-ViT-B-14", "checkpoint.pth")`` builds it; see
``docs/simzss.md`` and the implementation spec in ``shared/docs/simzss-spec.md``.
"""

from .architecture import (
    DEFAULT_ARCHITECTURE,
    SimZSSArchitecture,
    architecture_names,
    is_simzss_name,
    register_architecture,
)
from .checkpoint import read_state_dict, released_state_dict
from .loader import load_simzss, new_network
from .model import SimZSSModel, SimZSSNetwork

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "SimZSSArchitecture",
    "SimZSSModel",
    "SimZSSNetwork",
    "architecture_names",
    "is_simzss_name",
    "load_simzss",
    "new_network",
    "read_state_dict",
    "register_architecture",
    "released_state_dict",
]
