"""Each model sees pixels normalised as it was trained: SigLIP and PE-Core with mean and std
0.5, CLIP with OpenAI's. Pixels arrive CLIP-normalised everywhere; the tower re-normalises."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from napari_gem import load_model
from napari_gem.engine.families.clip.family import trained_normalisation
from napari_gem.engine.preprocess import CLIP_MEAN, CLIP_STD, renormalised

HALF = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def test_open_clip_weights_bring_the_normalisation_of_their_tag():
    assert trained_normalisation("ViT-B-16-SigLIP2", "webli") == HALF
    assert trained_normalisation("PE-Core-B-16", "meta") == HALF
    assert trained_normalisation("ViT-B-16", "openai") == {"mean": CLIP_MEAN, "std": CLIP_STD}
    # a checkpoint file of an architecture whose every tag was trained one way is read that way
    assert trained_normalisation("ViT-B-16-SigLIP2", "/data/siglip2.pt") == HALF
    assert trained_normalisation("ViT-B-16-SigLIP2", None) is None  # random weights: no claim


def test_renormalised_is_the_identity_for_clip_and_exact_otherwise():
    pixels = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    assert renormalised(pixels, CLIP_MEAN, CLIP_STD) is pixels
    raw = pixels * torch.tensor(CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1) \
        + torch.tensor(CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(renormalised(pixels, HALF["mean"], HALF["std"]), (raw - 0.5) / 0.5, atol=1e-12)


def test_a_transformers_model_reads_its_processor_config(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from huggingface_hub import constants

    from model_folders import write_transformers_folder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    plain = tmp_path / "plain"
    write_transformers_folder(plain)
    half = tmp_path / "half"
    shutil.copytree(plain, half)
    (half / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": list(HALF["mean"]), "image_std": list(HALF["std"])}))

    as_clip = load_model(f"transformers:{plain}", None, device="cpu", method="naclip")
    as_half = load_model(f"transformers:{half}", None, device="cpu", method="naclip")
    assert as_clip.trunk.normalisation == (CLIP_MEAN, CLIP_STD)
    assert as_half.trunk.normalisation == (HALF["mean"], HALF["std"])

    pixels = torch.randn(1, 3, 64, 64)
    expected = as_clip.encode_image(renormalised(pixels, HALF["mean"], HALF["std"])).dense_features
    assert torch.allclose(as_half.encode_image(pixels).dense_features, expected, atol=1e-6)
    assert not torch.allclose(as_clip.encode_image(pixels).dense_features, expected, atol=1e-3)


def test_the_activation_of_a_tag_and_of_a_checkpoint_file():
    """OpenAI, DFN, MetaCLIP and LAION-400M (B/32) weights were trained with QuickGELU, as
    open_clip's pretrained table records; a file of an architecture whose tags disagree runs
    as its name says, with a warning that names the -quickgelu twin."""
    from napari_gem.engine.families.clip.trained import activation_label, trained_quick_gelu

    assert trained_quick_gelu("ViT-B-16", "openai") and trained_quick_gelu("ViT-B-32", "laion400m_e31")
    assert not trained_quick_gelu("ViT-B-16", "laion2b_s34b_b88k")
    assert not trained_quick_gelu("ViT-B-16", "laion400m_e31")  # B/16's LAION-400M: GELU
    assert trained_quick_gelu("ViT-B-16-quickgelu", "/data/metaclip.pt")  # every tag agrees
    assert not trained_quick_gelu("ViT-B-16-SigLIP2", "/data/siglip2.pt")
    with pytest.warns(UserWarning, match="ViT-B-16-quickgelu"):
        assert not trained_quick_gelu("ViT-B-16", "/data/mine.pt")
    assert activation_label("ViT-B-16", "openai") == "QuickGELU, runs as ViT-B-16-quickgelu"
    assert activation_label("ViT-B-16", "laion2b_s34b_b88k") == ""


def test_bf16_pixels_are_rounded_once_after_the_models_own_normalisation(tmp_path):
    """A SigLIP-normalised tower in bf16 gets bf16(renormalised(float32 pixels)), not
    renormalised(bf16(pixels)) (which carries CLIP's rounding through the other normalisation)."""
    import open_clip
    from trunk_models import register_timm_clips

    name = register_timm_clips(tmp_path)[0]
    model = open_clip.create_model(name, pretrained=None).eval()
    model.visual.preprocess_cfg = dict(HALF)
    from napari_gem.engine.families.clip.model import GroundingModel

    gem = GroundingModel(model.to(torch.bfloat16), open_clip.get_tokenizer(name), "maskclip")
    seen = []
    gem.trunk.trunk.patch_embed.proj.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    torch.manual_seed(0)
    pixels = torch.randn(1, 3, 64, 64)
    gem.encode_image(pixels)
    expected = renormalised(pixels, HALF["mean"], HALF["std"]).to(torch.bfloat16)
    assert torch.equal(seen[0], expected)
    assert not torch.equal(renormalised(pixels.to(torch.bfloat16), HALF["mean"], HALF["std"]), expected)
