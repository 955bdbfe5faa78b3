"""Talk2DINO architectures: which DINOv2 backbone, which CLIP text tower, which projection.

A Talk2DINO model is three parts (shared/docs/talk2dino-spec.md §1):

- a frozen DINOv2 ViT-B/14 with 4 registers (timm ``vit_base_patch14_reg4_dinov2.lvd142m``),
- a frozen OpenAI CLIP ViT-B/16 text tower with QuickGELU (open_clip
  ``ViT-B-16-quickgelu``, tag ``openai``),
- the released projection (``vitb_mlp_infonce.pth``): text width → backbone width, tanh,
  backbone width → backbone width.

Only the projection is Talk2DINO's own file; ``load_model(name, PROJECTION_FILE)`` reads it,
and the other two come from their caches (or local files, see :mod:`.options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The released ViT-B model.
DEFAULT_ARCHITECTURE = "talk2dino-vitb14"

#: The 7 "sub-ImageNet" templates (official datasets/templates.py L99-107).
SUB_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.", "a bad photo of a {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
)


@dataclass(frozen=True)
class Talk2DinoArchitecture:
    """The parts of one Talk2DINO model and the constants of its inference.

    ``backbone_overrides`` are ``timm.create_model`` keyword arguments that shrink the
    backbone (tests use a two-block one); empty for the real DINOv2 ViT-B/14.
    ``text_model`` is an open_clip model name whose text tower is the one Talk2DINO
    was trained on (QuickGELU matters: spec §1).
    """

    backbone: str = "vit_base_patch14_reg4_dinov2"
    backbone_tag: str = "lvd142m"
    backbone_overrides: dict = field(default_factory=dict)
    text_model: str = "ViT-B-16-quickgelu"
    text_tag: str = "openai"
    text_dim: int = 512
    embed_dim: int = 768
    patch_size: int = 14
    input_size: int = 448  # every crop is resized to this square (spec §3.1)
    attention_scale: float = 0.125  # hard-coded in dinotext.py L135, whatever the width
    cleaning_weight: float = 0.2  # λ of the background cleaning (L313)

    @property
    def backbone_name(self) -> str:
        """timm's name of the pretrained backbone weights (``model.tag``)."""
        return f"{self.backbone}.{self.backbone_tag}"


_ARCHITECTURES: dict[str, Talk2DinoArchitecture] = {DEFAULT_ARCHITECTURE: Talk2DinoArchitecture()}


def is_talk2dino_name(name: object) -> bool:
    """Whether a model name asks for Talk2DINO."""
    return isinstance(name, str) and name.lower().startswith("talk2dino")


def register_architecture(name: str, architecture: Talk2DinoArchitecture) -> None:
    """Make ``name`` loadable with :func:`napari_gem.load_model` (names start with ``talk2dino``)."""
    if not is_talk2dino_name(name):
        raise ValueError(f"Talk2DINO architecture names start with 'talk2dino'; got {name!r}")
    _ARCHITECTURES[name] = architecture


def architecture_names() -> list[str]:
    return sorted(_ARCHITECTURES)


def get_architecture(name: str) -> Talk2DinoArchitecture:
    """The architecture registered as ``name`` (``KeyError`` naming the known ones)."""
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(architecture_names())
        raise KeyError(f"unknown Talk2DINO model {name!r} (known: {known})") from None
