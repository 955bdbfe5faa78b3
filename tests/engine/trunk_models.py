"""Tiny timm trunks registered with timm and open_clip for the trunk-adapter tests (random weights).

Each is a real timm architecture at test size: a SigLIP-style ViT (``map`` attention
pooling, no class token, q/k norms, layer scale, register tokens), an EVA-02-style Eva
(separate q/k/v, RoPE, SwiGLU, class token) and a PE-style Eva with a ``map`` head.
"""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch
from timm.models import register_model
from timm.models.eva import _create_eva
from timm.models.vision_transformer import _create_vision_transformer

TINY = dict(img_size=64, patch_size=16, embed_dim=64, depth=8, num_heads=4)


@register_model
def vit_napari_gem_test_siglip(pretrained=False, **kwargs):
    args = dict(TINY, class_token=False, global_pool="map", reg_tokens=2, qk_norm=True, init_values=0.5)
    return _create_vision_transformer("vit_base_patch16_siglip_224", pretrained=False, **dict(args, **kwargs))


@register_model
def vit_napari_gem_test_eva02(pretrained=False, **kwargs):
    args = dict(TINY, mlp_ratio=4 * 2 / 3, qkv_fused=False, swiglu_mlp=True, scale_mlp=True,
                use_rot_pos_emb=True, ref_feat_shape=(4, 4), global_pool="token")
    return _create_eva("eva02_base_patch16_clip_224", pretrained=False, **dict(args, **kwargs))


@register_model
def vit_napari_gem_test_pe(pretrained=False, **kwargs):
    args = dict(TINY, global_pool="map", use_abs_pos_emb=True, use_rot_pos_emb=True,
                rope_type="cat", init_values=0.1, use_pre_transformer_norm=True, qkv_fused=True,
                ref_feat_shape=(4, 4), rope_grid_offset=1.0, rope_grid_indexing="xy")  # as PE-Core's
    return _create_eva("vit_pe_core_base_patch16_224", pretrained=False, **dict(args, **kwargs))


#: open_clip model name -> (timm trunk, pool, projection)
TIMM_CLIPS = {
    "napari-gem-test-map-vit": ("vit_napari_gem_test_siglip", "map", "none"),
    "napari-gem-test-eva02": ("vit_napari_gem_test_eva02", "token", "linear"),
    "napari-gem-test-pe": ("vit_napari_gem_test_pe", "map", "linear"),
}


def clip_config(timm_name: str, pool: str, proj: str) -> dict:
    return {
        "embed_dim": 64 if proj == "none" else 32,  # no projection: the trunk's width (as SigLIP)
        "vision_cfg": {"image_size": 64, "timm_model_name": timm_name, "timm_model_pretrained": False,
                       "timm_pool": pool, "timm_proj": proj},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }


def register_timm_clips(folder: Path) -> list[str]:
    """Register the tiny timm-trunk CLIPs with open_clip (idempotent); their names."""
    for name, (timm_name, pool, proj) in TIMM_CLIPS.items():
        if name not in open_clip.list_models():
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}.json"
            path.write_text(json.dumps(clip_config(timm_name, pool, proj)))
            open_clip.add_model_config(path)
    return list(TIMM_CLIPS)


def open_clip_to_timm_state(visual_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An open_clip ViT's ``visual.*`` weights under timm ``vit_*_clip_*`` names (``visual.trunk.*``)."""
    renames = {"ln_1": "norm1", "ln_2": "norm2", "attn.in_proj_weight": "attn.qkv.weight",
               "attn.in_proj_bias": "attn.qkv.bias", "attn.out_proj": "attn.proj",
               "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    out = {}
    for key, value in visual_state.items():
        if key.startswith("transformer.resblocks."):
            rest = key[len("transformer.resblocks."):]
            for old, new in renames.items():
                rest = rest.replace(old, new)
            out[f"trunk.blocks.{rest}"] = value
        elif key == "conv1.weight":
            out["trunk.patch_embed.proj.weight"] = value
        elif key == "class_embedding":
            out["trunk.cls_token"] = value.view(1, 1, -1)
        elif key == "positional_embedding":
            out["trunk.pos_embed"] = value.unsqueeze(0)
        elif key.startswith("ln_pre."):
            out["trunk.norm_pre." + key.split(".", 1)[1]] = value
        elif key.startswith("ln_post."):
            out["trunk.norm." + key.split(".", 1)[1]] = value
        elif key == "proj":
            out["head.proj.weight"] = value.T.contiguous()
        else:
            raise KeyError(key)
    return out


@register_model
def vit_napari_gem_test_vit(pretrained=False, **kwargs):
    """A plain timm ViT with a class token (BiomedCLIP's trunk, vit_base_patch16_224, at test size)."""
    return _create_vision_transformer("vit_base_patch16_224", pretrained=False, **dict(TINY, **kwargs))


#: Small text towers: the text tower's class (causal CLIP, SigLIP's bidirectional "last" pool)
#: is what the conformance tests check, not its width.
_CLIP_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}
_SIGLIP_TEXT = {"context_length": 64, "vocab_size": 16, "width": 32, "heads": 2, "layers": 2,
                "hf_tokenizer_name": "timm/ViT-B-16-SigLIP2", "tokenizer_kwargs": {"clean": "canonicalize"},
                "no_causal_mask": True, "proj_bias": True, "pool_type": "last",
                "norm_kwargs": {"eps": 1e-6}, "act_kwargs": {"approximate": "tanh"}}


def _open_clip_vit(patch: int, size: int, **extra) -> dict:
    return {"embed_dim": 32, **extra,
            "vision_cfg": {"image_size": size, "layers": 8, "width": 64, "patch_size": patch,
                           "head_width": 16},
            "text_cfg": dict(_CLIP_TEXT)}


def _timm_clip(timm_name: str, pool: str, proj, embed_dim: int, text: dict, **extra) -> dict:
    return {"embed_dim": embed_dim, "custom_text": True, **extra,
            "vision_cfg": {"image_size": 64, "timm_model_name": timm_name, "timm_model_pretrained": False,
                           "timm_pool": pool, "timm_proj": proj},
            "text_cfg": dict(text)}


#: open_clip's own model names with test-size configs of the same architecture class (patch
#: size, activation, pooling, RoPE, text tower kind and tokenizer as the real config says;
#: widths, depths and image sizes shrunk so that a cached load takes well under a second).
SHRUNK_CONFIGS = {
    **{name + suffix: _open_clip_vit(patch, size, **({"quick_gelu": True} if suffix else {}))
       for name, patch, size in (("ViT-B-32", 32, 64), ("ViT-B-16", 16, 64), ("ViT-L-14", 14, 56),
                                 ("ViT-L-14-336", 14, 84))
       for suffix in ("", "-quickgelu")},
    "ViT-B-16-SigLIP2": _timm_clip("vit_napari_gem_test_siglip", "map", "none", 64, _SIGLIP_TEXT,
                                   init_logit_bias=-10),
    "ViT-B-16-SigLIP2-512": _timm_clip("vit_napari_gem_test_siglip", "map", "none", 64,
                                       dict(_SIGLIP_TEXT, hf_tokenizer_name="timm/ViT-B-16-SigLIP2-512"),
                                       init_logit_bias=-10),
    "EVA02-B-16": _timm_clip("vit_napari_gem_test_eva02", "token", None, 32, _CLIP_TEXT),
    "PE-Core-B-16": _timm_clip("vit_napari_gem_test_pe", "map", None, 32,
                               dict(_CLIP_TEXT, context_length=32)),
}
