"""SimZSS-ViT-B-14 against an independent re-derivation of the spec (simzss-spec.md §1.9).

The reference below is written from the spec with timm and open_clip primitives only;
it shares no code with ``napari_gem.engine.families.simzss``. One random-weight checkpoint of the
full architecture, in the released layout (``module.`` prefix), serves every case.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simzss_helpers import released_layout

NAMES = ["cat", "traffic light", "background", "a mitochondrion"]


class Reference:
    """Spec §1.9, verbatim in spirit."""

    def __init__(self, path) -> None:
        import open_clip
        import timm
        from open_clip.transformer import TextTransformer
        from timm.models.vision_transformer import Block, Mlp

        sd = {k.replace("module.", ""): v for k, v in torch.load(path, map_location="cpu").items()}

        def sub(prefix):
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}

        self.vit = timm.create_model("vit_base_patch14_reg4_dinov2", pretrained=False, num_classes=0,
                                     dynamic_img_size=True).eval()
        self.vit.load_state_dict(sub("visual.vit.model."))
        self.den = Block(dim=768, num_heads=12, mlp_ratio=4, qkv_bias=True, init_values=None,
                         norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU,
                         mlp_layer=Mlp).eval()
        self.den.load_state_dict(sub("visual.denoiser."))
        self.den_pos = sd["visual.pos_embed"]
        self.text = TextTransformer(context_length=77, vocab_size=49408, width=512, heads=8, layers=12,
                                    output_dim=768, act_layer=nn.GELU).eval()
        self.text.load_state_dict(sub("text."))
        self.tok = open_clip.get_tokenizer("ViT-B-16")

    @torch.no_grad()
    def dense(self, x):
        from timm.layers import resample_abs_pos_embed

        b, _, h, w = x.shape
        f = self.vit.forward_features(x)
        p = f[:, self.vit.num_prefix_tokens:]
        p = self.den(p + resample_abs_pos_embed(self.den_pos, (h // 14, w // 14), num_prefix_tokens=0))
        return F.normalize(p, dim=-1).reshape(b, h // 14, w // 14, 768), F.normalize(f[:, 0], dim=-1)

    @torch.no_grad()
    def text_embeddings(self, names):
        return F.normalize(self.text(self.tok(names)), dim=-1)


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    path = tmp_path_factory.mktemp("simzss_full") / "simzss_vitb14.pth"
    torch.save(released_layout(768, {}, {"width": 512, "heads": 8, "layers": 12}, 37), path)
    from napari_gem import load_model

    model = load_model("SimZSS-ViT-B-14", path, device="cpu")
    return model, Reference(path)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 224, 224), (1, 448, 602)], ids=["224sq-batch2", "448x602"])
def test_dense_features_and_cls_match_the_spec(full_size, shape):
    model, reference = full_size
    torch.manual_seed(1)
    pixels = torch.randn(shape[0], 3, shape[1], shape[2])
    ours = model.encode_image(pixels)
    dense, cls = reference.dense(pixels)
    assert ours.dense_features.shape == (shape[0], shape[1] // 14, shape[2] // 14, 768)
    dense_diff = (ours.dense_features - dense).abs().max().item()
    cls_diff = (ours.clip_embedding - cls).abs().max().item()
    print(f"max abs diff {shape}: dense {dense_diff:.2e}, cls {cls_diff:.2e}")
    assert dense_diff <= 1e-5 and cls_diff <= 1e-5


@pytest.mark.slow
def test_text_embeddings_match_the_spec(full_size):
    model, reference = full_size
    ours = model.encode_text(NAMES, ("{}",))
    diff = (ours - reference.text_embeddings(NAMES)).abs().max().item()
    print(f"max abs diff text: {diff:.2e}")
    assert diff <= 1e-5
    assert model.default_templates == ("{}",)
    torch.testing.assert_close(model.encode_text(NAMES), ours)  # bare names by default
