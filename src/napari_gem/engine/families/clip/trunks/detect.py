"""Which trunk adapter fits a vision tower, found from its parameters and parts, not its class."""

from __future__ import annotations

from torch import nn

from ....errors import UnsupportedModelError
from .base import TrunkBlock, VisionTrunk
from .open_clip_vit import (
    CombinedProjectionBlock,
    OpenClipVisionTrunk,
    is_combined_projection_block,
    is_open_clip_vit,
)
from .timm_vit import TimmBlock, TimmVisionTrunk, is_timm_vit

_TRUNK_ATTR = "_napari_gem_trunk"
_BLOCK_ATTR = "_napari_gem_block"


def build_trunk(visual: nn.Module) -> VisionTrunk:
    """A new adapter for ``visual``; :class:`UnsupportedModelError` when none fits."""
    if is_open_clip_vit(visual):
        return OpenClipVisionTrunk(visual)
    inner = getattr(visual, "trunk", None)  # open_clip's TimmModel
    if isinstance(inner, nn.Module) and is_timm_vit(inner):
        return TimmVisionTrunk(inner, visual)
    if is_timm_vit(visual):
        return TimmVisionTrunk(visual)
    from .transformers_vit import TransformersVisionTrunk, is_transformers_vision

    if is_transformers_vision(visual):
        return TransformersVisionTrunk(visual)
    raise UnsupportedModelError(
        f"dense methods need a vision transformer, but this CLIP's image tower is a "
        f"{type(visual).__name__} (ResNet, ConvNeXt and other convolutional towers are not "
        "supported). Choose a ViT model such as ViT-B-16."
    )


def as_trunk(visual: nn.Module | VisionTrunk) -> VisionTrunk:
    """The adapter of ``visual`` (made once and kept on the module; an adapter is returned as is)."""
    if isinstance(visual, VisionTrunk):
        return visual
    trunk = visual.__dict__.get(_TRUNK_ATTR)
    if trunk is None:
        trunk = build_trunk(visual)
        visual.__dict__[_TRUNK_ATTR] = trunk
    return trunk


def as_block(block: nn.Module | TrunkBlock, index: int = 0) -> TrunkBlock:
    """The adapter of one block (found from its parameters); an adapter is returned as is."""
    if isinstance(block, TrunkBlock):
        return block
    adapter = block.__dict__.get(_BLOCK_ATTR)
    if adapter is None:
        if is_combined_projection_block(block):
            adapter = CombinedProjectionBlock(block, index)
        elif hasattr(block, "self_attn"):  # a transformers encoder layer
            from .transformers_vit import TransformersBlock

            adapter = TransformersBlock(block)
        else:
            adapter = TimmBlock(block, index)
        block.__dict__[_BLOCK_ATTR] = adapter
    return adapter
