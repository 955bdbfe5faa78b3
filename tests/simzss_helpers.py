"""Helpers for the SimZSS tests: the tiny architecture and released-layout checkpoints."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import torch
from torch import nn

TINY = "SimZSS-test-tiny"
TINY_VIT = {"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 56}
TINY_TEXT = {"width": 32, "heads": 2, "layers": 2}


def tiny_architecture():
    from napari_gem.engine.families.simzss import SimZSSArchitecture

    return SimZSSArchitecture(
        vit_overrides=dict(TINY_VIT), embed_dim=64, denoiser_grid=4, text_width=32,
        text_heads=2, text_layers=2, native_size=56,
    )


def released_layout(vit_dim: int, vit_kwargs: dict, text_kwargs: dict, grid: int, *,
                    denoiser: bool = True, vit: bool = True, seed: int = 0) -> dict:
    """A random-weight state dict with the released SimZSS keys, built from timm/open_clip directly."""
    import timm
    from open_clip.transformer import TextTransformer
    from timm.models.vision_transformer import Block, Mlp

    torch.manual_seed(seed)
    state = {
        "logit_scale": torch.tensor(math.log(1 / 0.07)) + 0.5,
        "logit_scale_local": torch.tensor([math.log(1 / 0.07)]),
        "classification_weights_ema": torch.randn(575, vit_dim),
        "beta_ema": torch.tensor(0.0),
        "visual.pos_embed": torch.randn(1, grid * grid, vit_dim) * 0.02,
    }
    if vit:
        model = timm.create_model("vit_base_patch14_reg4_dinov2", pretrained=False, num_classes=0,
                                  dynamic_img_size=True, **vit_kwargs)
        state.update({f"visual.vit.model.{k}": v for k, v in model.state_dict().items()})
    if denoiser:
        block = Block(dim=vit_dim, num_heads=max(1, vit_dim // 64), mlp_ratio=4, qkv_bias=True,
                      init_values=None, norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU,
                      mlp_layer=Mlp)
        state.update({f"visual.denoiser.{k}": v for k, v in block.state_dict().items()})
    text = TextTransformer(context_length=77, vocab_size=49408, output_dim=vit_dim, act_layer=nn.GELU,
                           **text_kwargs)
    state.update({f"text.{k}": v for k, v in text.state_dict().items()})
    return {f"module.{k}": v for k, v in state.items()}


def save_tiny_checkpoint(path: Path, **layout) -> Path:
    torch.save(released_layout(64, TINY_VIT, TINY_TEXT, 4, **layout), path)
    return path
