"""Talk2DINO: DINOv2 patch tokens against CLIP text mapped into their space by a released projection.

``napari_gem.load_model("talk2dino-vitb14", "vitb_mlp_infonce.pth")`` builds it; see
docs/methods.md and shared/docs/talk2dino-spec.md.
"""

from . import family  # noqa: F401  (registers the Talk2DINO family)
from .architecture import (
    DEFAULT_ARCHITECTURE,
    SUB_IMAGENET_TEMPLATES,
    Talk2DinoArchitecture,
    architecture_names,
    is_talk2dino_name,
    register_architecture,
)
from .loader import build_talk2dino
from .model import Talk2DinoModel, Talk2DinoNetwork
from .options import Talk2DinoOptions
from .projection import ProjectionLayer, read_projection

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "SUB_IMAGENET_TEMPLATES",
    "ProjectionLayer",
    "Talk2DinoArchitecture",
    "Talk2DinoModel",
    "Talk2DinoNetwork",
    "Talk2DinoOptions",
    "architecture_names",
    "build_talk2dino",
    "is_talk2dino_name",
    "read_projection",
    "register_architecture",
]
