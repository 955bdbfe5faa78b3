"""SimZSS architectures: which timm DINOv2 ViT, which denoiser block, which text tower.

A SimZSS model is three modules (see ``docs/simzss.md``):

- a frozen timm DINOv2 ViT with registers (``visual.vit.model.*`` in a checkpoint),
- an optional one-block "denoiser" transformer with its own position embedding
  (``visual.denoiser.*`` and ``visual.pos_embed``),
- an open_clip ``TextTransformer`` with exact GELU and EOT pooling (``text.*``),

plus a learned global ``logit_scale``. This module builds those modules, empty or from
a state dict; :mod:`.model` runs them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import partial

import torch
from torch import nn

#: The released SimZSS model (``ours_dinov2_ViT-B-14_reg``).
DEFAULT_ARCHITECTURE = "SimZSS-ViT-B-14"
#: timm's DINOv2 ViT-B/14 with four registers; its pretrained tag is ``lvd142m``.
DINOV2_TIMM_NAME = "vit_base_patch14_reg4_dinov2"
DINOV2_PRETRAINED_TAG = "lvd142m"
#: Every open_clip CLIP tokenizer (SOT 49406, EOT 49407, 77 tokens) is the one SimZSS used.
TOKENIZER_MODEL = "ViT-B-16"


@dataclass(frozen=True)
class SimZSSArchitecture:
    """Shapes of the three SimZSS modules.

    ``vit_overrides`` are keyword arguments for ``timm.create_model`` that shrink the
    ViT (tests use a two-block, 64-wide one); empty for the real DINOv2 ViT-B/14.
    ``denoiser_grid`` is the side of the patch grid the denoiser's position embedding
    was learned on (37 = 518 / 14).
    """

    vit_name: str = DINOV2_TIMM_NAME
    vit_pretrained_tag: str = DINOV2_PRETRAINED_TAG
    vit_overrides: dict = field(default_factory=dict)
    embed_dim: int = 768
    denoiser_grid: int = 37
    text_width: int = 512
    text_heads: int = 8
    text_layers: int = 12
    context_length: int = 77
    vocab_size: int = 49408
    native_size: int = 224
    patch_size: int = 14

    @property
    def denoiser_heads(self) -> int:
        # The DVT denoiser uses 64-wide heads (12 for ViT-B).
        return max(1, self.embed_dim // 64)

    def to_dict(self) -> dict:
        return asdict(self)


_ARCHITECTURES: dict[str, SimZSSArchitecture] = {DEFAULT_ARCHITECTURE: SimZSSArchitecture()}


def register_architecture(name: str, architecture: SimZSSArchitecture) -> None:
    """Make ``name`` loadable with :func:`napari_gem.load_model` (names start with ``SimZSS``)."""
    if not is_simzss_name(name):
        raise ValueError(f"SimZSS architecture names start with 'SimZSS'; got {name!r}")
    _ARCHITECTURES[name] = architecture


def architecture_names() -> list[str]:
    return sorted(_ARCHITECTURES)


def is_simzss_name(name: object) -> bool:
    """Whether a model name asks for SimZSS rather than an open_clip CLIP."""
    return isinstance(name, str) and name.lower().startswith("simzss")


def get_architecture(name: str) -> SimZSSArchitecture:
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(architecture_names())
        raise KeyError(f"unknown SimZSS model {name!r} (known: {known})") from None


def build_vit(architecture: SimZSSArchitecture, *, pretrained: bool = False) -> nn.Module:
    """The timm DINOv2 ViT, classifier-free, accepting any multiple-of-14 image size."""
    import timm

    name = architecture.vit_name
    if pretrained:
        name = f"{name}.{architecture.vit_pretrained_tag}"
    return timm.create_model(
        name, pretrained=pretrained, num_classes=0, dynamic_img_size=True,
        **architecture.vit_overrides,
    )


def build_denoiser(architecture: SimZSSArchitecture) -> tuple[nn.Module, nn.Parameter]:
    """The DVT denoiser block (timm ``Block``, no LayerScale) and its position table."""
    from timm.models.vision_transformer import Block, Mlp

    dim = architecture.embed_dim
    block = Block(
        dim=dim, num_heads=architecture.denoiser_heads, mlp_ratio=4, qkv_bias=True,
        init_values=None, norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU,
        mlp_layer=Mlp,
    )
    table = nn.Parameter(torch.randn(1, architecture.denoiser_grid**2, dim) * 0.02)
    return block, table


def build_text(architecture: SimZSSArchitecture) -> nn.Module:
    """open_clip's causal ``TextTransformer`` with exact GELU (not QuickGELU), EOT pooling."""
    from open_clip.transformer import TextTransformer

    return TextTransformer(
        context_length=architecture.context_length, vocab_size=architecture.vocab_size,
        width=architecture.text_width, heads=architecture.text_heads,
        layers=architecture.text_layers, output_dim=architecture.embed_dim, act_layer=nn.GELU,
    )


def initial_logit_scale() -> nn.Parameter:
    """``log(1 / 0.07)``, CLIP's and SimZSS's starting value."""
    return nn.Parameter(torch.tensor(math.log(1 / 0.07)))


def get_tokenizer():
    import open_clip

    return open_clip.get_tokenizer(TOKENIZER_MODEL)
