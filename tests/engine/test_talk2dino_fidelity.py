"""Talk2DINO: the engine against a float64 re-derivation of shared/docs/talk2dino-spec.md.

The reference below is written from the spec alone (it imports nothing of the engine but
``load_model``): timm's DINOv2 built at 448 with its position table resampled once, the
class-attention logits read from a forward hook on the last ``attn.qkv`` as the official
code does, open_clip's full-length ``encode_text``, the projection and the background
cleaning written out from the spec's pseudo-code. Weights are tiny, re-drawn and saved to
real files, then loaded through ``load_model`` (spec §5: LayerScale 0.3, tables at 0.5).

Each misreading of the spec's tables is a switch of the reference; ``test_*_misreading_*``
checks that the switched reference is more than 10× the fidelity tolerance away from the
engine, so the fidelity test would fail on it. Which misreading each guards is in its id.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from talk2dino_models import BACKBONE, BACKBONE_OVERRIDES, TINY_TEXT_MODEL, register_tiny, save_files

TOLERANCE = 1e-5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TEMPLATES = ("itap of a {}.", "a bad photo of a {}.", "a origami {}.", "a photo of the large {}.",
             "a {} in a video game.", "art of the {}.", "a photo of the small {}.")
PROMPTS = ["cat", "a red bus", "nucleus"]
LAMBDA = 0.2
PREFIX = 5  # class token + 4 registers


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("talk2dino")
    register_tiny(folder / "configs")
    return save_files(folder / "weights")


@pytest.fixture(scope="module")
def engine(files):
    from talk2dino_models import TINY

    from napari_gem import load_model

    model = load_model(TINY, files["projection"], device="cpu", backbone_weights=files["backbone"],
                       text_weights=files["text"])
    model.network.double()
    return model


# -- the float64 reference -----------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_backbone(files):
    """timm's DINOv2 built at img_size=448 (spec §1), the 37×37 table resampled to 32×32."""
    import timm

    state = torch.load(files["backbone"], weights_only=True)
    table = state["pos_embed"].double().reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    table = F.interpolate(table, size=(32, 32), mode="bicubic", antialias=True, align_corners=False)
    state["pos_embed"] = table.permute(0, 2, 3, 1).reshape(1, 1024, -1)
    model = timm.create_model(BACKBONE, pretrained=False, num_classes=0, img_size=448, **BACKBONE_OVERRIDES)
    model.load_state_dict(state)
    return model.double().eval()


@pytest.fixture(scope="module")
def reference_text_parts(files):
    import open_clip

    model = open_clip.create_model(TINY_TEXT_MODEL, pretrained=str(files["text"])).double().eval()
    projection = {key: value.double() for key, value in torch.load(files["projection"]).items()}
    return model, open_clip.get_tokenizer(TINY_TEXT_MODEL), projection


def reference_text(parts, prompts, misreading: str | None = None) -> torch.Tensor:
    """Spec §2: raw EOT features of the 7 templates, their mean, W2 tanh(W1 t + b1) + b2, unit."""
    model, tokenizer, p = parts

    def project(t):
        hidden = t @ p["linear_layer.weight"].T + p["linear_layer.bias"]
        active = torch.relu(hidden) if misreading == "relu instead of tanh" else torch.tanh(hidden)
        out = active @ p["hidden_layers.0.weight"].T + p["hidden_layers.0.bias"]
        return out + hidden if misreading == "residual mlp" else out

    rows = []
    with torch.no_grad():
        for prompt in prompts:
            templates = TEMPLATES[:1] if misreading == "single template" else TEMPLATES
            raw = model.encode_text(tokenizer([t.format(prompt) for t in templates]))
            if misreading == "normalise per template before averaging":
                raw = raw / raw.norm(dim=-1, keepdim=True)
            if misreading == "project each template then average":
                out = project(raw).mean(dim=0)
            elif misreading == "normalise before the projection":
                mean = raw.mean(dim=0)
                out = project(mean / mean.norm())
            else:
                out = project(raw.mean(dim=0))
            rows.append(out / max(float(out.norm()), 1e-6))
    return torch.stack(rows)


def reference_cleaning(mask, tokens, attn, text, misreading=None) -> np.ndarray:
    """Spec §3.5 in numpy float64: mask [P, N], tokens [N, D], attn [H, N], text [P, D]."""
    lam = 0.3 if misreading == "lambda 0.3" else LAMBDA
    e = (attn[:, :, None] * tokens[None]).mean(axis=1)
    e = e / np.linalg.norm(e, axis=-1, keepdims=True)
    logits = text @ e.T
    if misreading == "uniform head weights":
        w = np.full_like(logits, 1 / logits.shape[1])
    elif misreading == "argmax head":
        w = np.eye(logits.shape[1])[logits.argmax(axis=1)]
    else:
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        w = w / w.sum(axis=1, keepdims=True)
    a = (w @ attn) / w.sum(axis=-1, keepdims=True)
    a = np.exp(a - a.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)
    if misreading == "true min-max":
        a = (a - a.min()) / (a.max() - a.min())
    elif misreading == "per-prompt min/max":
        low, high = a.min(axis=1, keepdims=True), a.max(axis=1, keepdims=True)
        a = (a - low) / np.maximum(high, high - low)
        a = a * (mask.max(axis=1, keepdims=True) - mask.min(axis=1, keepdims=True)) \
            + mask.min(axis=1, keepdims=True)
        return (mask + lam * a) / (1 + lam)
    else:
        a = (a - a.min()) / max(a.max(), a.max() - a.min())
    a = a * (mask.max() - mask.min()) + mask.min()
    return (mask + lam * a) / (1 + lam)


def reference_masks(backbone, raw_rgb: np.ndarray, text: torch.Tensor, *, cleaning: bool,
                    misreading: str | None = None, on_grid: bool = False) -> torch.Tensor:
    """Spec §3 for one crop given as RGB 0..255 ``[h, w, 3]``: masks ``[P, h, w]`` (``on_grid``:
    ``[P, 32, 32]``, before the resize back to the crop)."""
    captured = []
    hook = backbone.blocks[-1].attn.qkv.register_forward_hook(lambda m, i, o: captured.append(o))
    normed = []
    norm_hook = backbone.blocks[-1].register_forward_hook(lambda m, i, o: normed.append(o))
    try:
        x = torch.from_numpy(raw_rgb).double().permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(448, 448), mode="bilinear", align_corners=False,
                          antialias=misreading != "resize without antialias")
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
        with torch.no_grad():
            tokens = backbone.forward_features((x / 255 - mean) / std)[0]
    finally:
        hook.remove()
        norm_hook.remove()
    if misreading == "pre-norm tokens":
        tokens = normed[0][0]
    patches = tokens[1:1025] if misreading == "keep the registers" else tokens[PREFIX:]
    width = patches.shape[-1]
    heads = backbone.blocks[-1].attn.num_heads
    qkv = captured[0][0].reshape(-1, 3, heads, width // heads)
    scale = 1 / math.sqrt(width) if misreading == "scale 1/sqrt(width)" else 0.125
    attn = torch.einsum("hd,nhd->hn", qkv[0, 0], qkv[PREFIX:, 1]) * scale
    if misreading == "attention probabilities instead of logits":
        attn = torch.softmax(attn, dim=-1)
    unit = patches / patches.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    mask = torch.sigmoid(unit @ text.T).T  # [P, N]
    if cleaning:
        mask = torch.from_numpy(reference_cleaning(mask.numpy(), patches.numpy(), attn.numpy(),
                                                   text.numpy(), misreading))
    grid = mask.reshape(1, -1, 32, 32)
    if on_grid:
        return grid[0]
    return F.interpolate(grid, size=raw_rgb.shape[:2], mode="bilinear",
                         align_corners=misreading != "align_corners=False back to the crop")[0]


# -- inputs ----------------------------------------------------------------------------------
def raw_image(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth structure plus noise, 0..255, so that resizing and attention have work to do."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 40.0
    base = np.stack([np.sin(x + c) * np.cos(y * (c + 1)) for c in range(3)], axis=-1)
    return np.clip(127.5 + 90 * base + rng.normal(0, 25, (height, width, 3)), 0, 255)


def clip_pixels(raw_rgb: np.ndarray) -> torch.Tensor:
    """The crop as napari-gem hands it to a model: CLIP-normalised ``[1, 3, h, w]``."""
    x = torch.from_numpy(raw_rgb).double().permute(2, 0, 1)[None] / 255
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return (x - mean) / std


SIZES = [(448, 448), (300, 500)]


# -- fidelity --------------------------------------------------------------------------------
def test_text_embeddings_match_the_reference(engine, reference_text_parts):
    expected = reference_text(reference_text_parts, PROMPTS)
    got = engine.encode_text(PROMPTS).double()
    assert (got - expected).abs().max() <= 1e-6  # the engine keeps text in float32


@pytest.mark.parametrize("cleaning", [False, True], ids=["plain", "background-cleaning"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_crop_masks_match_the_reference(engine, reference_backbone, reference_text_parts, size, cleaning):
    text = reference_text(reference_text_parts, PROMPTS)
    raw = raw_image(*size, seed=size[1])
    expected = reference_masks(reference_backbone, raw, text, cleaning=cleaning)
    got = engine.crop_similarity(clip_pixels(raw), engine.encode_text(PROMPTS),
                                 background_cleaning=cleaning)[0]
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_float32_engine_as_users_run_it_agrees_too(files, reference_backbone, reference_text_parts,
                                                        size):
    from talk2dino_models import TINY

    from napari_gem import load_model

    model = load_model(TINY, files["projection"], device="cpu", backbone_weights=files["backbone"],
                       text_weights=files["text"])
    text = reference_text(reference_text_parts, PROMPTS)
    raw = raw_image(*size, seed=size[1])
    expected = reference_masks(reference_backbone, raw, text, cleaning=True)
    got = model.crop_similarity(clip_pixels(raw).float(), model.encode_text(PROMPTS),
                                background_cleaning=True)[0]
    assert got.dtype == torch.float32
    assert (got.double() - expected).abs().max() <= TOLERANCE
    assert (model.encode_text(PROMPTS).double() - text).abs().max() <= 1e-6


def test_a_batch_is_cleaned_image_by_image(engine):
    """The official cleaning handles batch 1 only; the engine applies it per image."""
    pixels = torch.cat([clip_pixels(raw_image(448, 448, seed)) for seed in (1, 2)])
    text = engine.encode_text(PROMPTS)
    batch = engine.crop_similarity(pixels, text, background_cleaning=True)
    for index in range(2):
        alone = engine.crop_similarity(pixels[index:index + 1], text, background_cleaning=True)[0]
        assert (batch[index] - alone).abs().max() <= 1e-9


def test_dense_features_are_the_unit_patch_tokens_and_their_product_the_cosine(
        engine, reference_backbone, reference_text_parts):
    """Spec §5: napari-gem's maps are the cosine of the unit patch tokens and the text."""
    raw = raw_image(300, 500, seed=7)
    text = reference_text(reference_text_parts, PROMPTS)
    features = engine.encode_image(clip_pixels(raw)).dense_features[0]  # [32, 32, D]
    assert features.shape[:2] == (32, 32)
    cosine = torch.logit(reference_masks(reference_backbone, raw, text, cleaning=False, on_grid=True))
    assert (torch.einsum("ijd,pd->pij", features, text) - cosine).abs().max() <= TOLERANCE


# -- each misreading would fail the fidelity tests ---------------------------------------------
TEXT_MISREADINGS = ["normalise per template before averaging", "project each template then average",
                    "normalise before the projection", "relu instead of tanh", "residual mlp",
                    "single template"]
IMAGE_MISREADINGS = ["keep the registers", "pre-norm tokens", "resize without antialias",
                     "align_corners=False back to the crop"]
CLEANING_MISREADINGS = ["uniform head weights", "argmax head", "attention probabilities instead of logits",
                        "true min-max", "per-prompt min/max", "lambda 0.3", "scale 1/sqrt(width)"]


@pytest.mark.parametrize("misreading", TEXT_MISREADINGS)
def test_a_text_misreading_is_caught(engine, reference_text_parts, misreading):
    """Guards spec §2's misreading ``misreading``: the text test's tolerance catches it."""
    wrong = reference_text(reference_text_parts, PROMPTS, misreading)
    assert (engine.encode_text(PROMPTS).double() - wrong).abs().max() > 10 * TOLERANCE


@pytest.mark.parametrize("misreading", IMAGE_MISREADINGS + CLEANING_MISREADINGS)
def test_an_image_misreading_is_caught(engine, reference_backbone, reference_text_parts, misreading):
    """Guards spec §3's misreading ``misreading`` (on the non-square image, which is resized)."""
    text = reference_text(reference_text_parts, PROMPTS)
    raw = raw_image(300, 500, seed=500)
    cleaning = misreading in CLEANING_MISREADINGS
    wrong = reference_masks(reference_backbone, raw, text, cleaning=cleaning, misreading=misreading)
    got = engine.crop_similarity(clip_pixels(raw), engine.encode_text(PROMPTS),
                                 background_cleaning=cleaning)[0]
    assert (got - wrong).abs().max() > 10 * TOLERANCE


# -- PAMR (spec §3.7), as evaluate --pamr on runs it for Talk2DINO -----------------------------
PAMR_DILATIONS = (1, 2, 4, 8, 12, 24)


def reference_pamr(mask: torch.Tensor, raw_rgb: torch.Tensor, iterations: int,
                   dilations: tuple[int, ...]) -> torch.Tensor:
    """Spec §3.7 on the raw RGB crop (0..255): ``mask [P, H, W]``, ``raw_rgb [3, H, W]``."""
    pad = max(dilations)

    def neighbours(x, with_centre):
        padded = F.pad(x[None], [pad] * 4, mode="replicate")[0]
        height, width = x.shape[-2:]
        out = []
        for d in dilations:
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if (dy, dx) == (0, 0) and not with_centre:
                        continue
                    top, left = pad + dy * d, pad + dx * d
                    out.append(padded[:, top: top + height, left: left + width])
        return torch.stack(out, dim=1)  # [C, K, H, W]

    samples = neighbours(raw_rgb, True)
    std = samples.std(dim=1, unbiased=True)  # [3, H, W], centre and every dilation's 8
    near = neighbours(raw_rgb, False)
    affinity = -(raw_rgb[:, None] - near).abs() / (1e-8 + 0.1 * std[:, None])
    affinity = torch.softmax(affinity.mean(dim=0), dim=0)  # [K, H, W]
    for _ in range(iterations):
        mask = (neighbours(mask, False) * affinity[None]).sum(dim=1)
    return mask


@pytest.mark.parametrize("misreading", [None, "one iteration", "dilation 1 only"])
def test_pamr_with_talk2dinos_dilations_matches_the_spec_on_the_raw_crop(misreading):
    """The engine's PAMR (guided by CLIP-normalised pixels, as evaluate runs it) equals spec
    §3.7 on the raw crop; with ``misreading`` the reference is far off (guards "one
    iteration" and "dilation 1 only")."""
    from napari_gem.engine.refinement import pamr

    raw = raw_image(96, 120, seed=3)
    rgb = torch.from_numpy(raw).double().permute(2, 0, 1)
    masks = torch.sigmoid(torch.randn(2, 96, 120, generator=torch.Generator().manual_seed(4),
                                      dtype=torch.float64))
    got = pamr(masks, clip_pixels(raw)[0], 10, PAMR_DILATIONS).double()
    iterations = 1 if misreading == "one iteration" else 10
    dilations = (1,) if misreading == "dilation 1 only" else PAMR_DILATIONS
    expected = reference_pamr(masks, rgb, iterations, dilations)
    if misreading is None:
        assert (got - expected).abs().max() <= TOLERANCE
    else:
        assert (got - expected).abs().max() > 10 * TOLERANCE
