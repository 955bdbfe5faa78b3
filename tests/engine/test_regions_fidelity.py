"""Region consistency against a float64 re-derivation of shared/docs/vfm-methods-spec.md §3
(CorrCLIP "lite": DINO q + k, regions merged by DBSCAN, restricted attention, the map
correction), on tiny random-weight open_clip and timm DINO models re-drawn as spec §5 says;
and a hand-checkable case computed in the test.

The reference uses no engine code: open_clip's and timm's own layers, ``F.interpolate`` for
the masks, and connected components for DBSCAN (spec §3.3: with ``min_samples=1`` DBSCAN is
single linkage at ``eps``), so it does not share scikit-learn with the engine either.
Each misreading in the spec's table (§5, CorrCLIP column) is shown to move the result far
beyond the tolerance, so the fidelity test fails on it.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import open_clip
import pytest
import timm
import torch
import torch.nn.functional as F
from test_proxyclip import redraw, reference_clip_values  # the same re-draw and CLIP values (spec §5, §1.2)

from napari_gem import GroundingModel
from napari_gem.engine.regions.attention import region_attention
from napari_gem.engine.regions.head import region_dense
from napari_gem.engine.regions.vote import majority_vote
from napari_gem.engine.vfm import forget_proxies, load_proxy, share_proxy

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TAU, EPS = 4.0, 0.2  # corrclip transformer.py L538-539


@pytest.fixture(scope="module")
def clip_model(tiny_model_name):
    model = open_clip.create_model(tiny_model_name, pretrained=None).eval()
    redraw(model, 1)
    return model


@pytest.fixture(scope="module")
def dino():
    """A tiny DINO ViT-B/8 (CorrCLIP's default VFM), shared as the process's ``dino-b8``."""
    module = timm.create_model("vit_base_patch8_224.dino", pretrained=False, depth=2, embed_dim=64,
                               num_heads=2, img_size=64).eval()
    redraw(module, 7)
    share_proxy("dino-b8", module)
    yield module
    forget_proxies()


# -- test images and masks (spec §5: colour blobs, each cut in two with one piece set to 0) ----
def blob_case(size: int, seed: int):
    """CLIP-normalised pixels ``[1, 3, size, size]`` of six Voronoi blobs in three colours
    (so that same-coloured blobs merge), and labels with a 0 region and shuffled ids."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (6, 2))
    yy, xx = np.mgrid[:size, :size]
    blob = np.argmin((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2, axis=-1)
    palette = rng.uniform(0, 1, (3, 3))
    rgb = palette[blob % 3] + 0.05 * rng.standard_normal((size, size, 3))
    labels = rng.permutation(np.arange(1, 7))[blob]
    cut = (yy - size / 2) * rng.normal() + (xx - size / 2) * rng.normal() > 0
    labels[(blob == 0) & cut] = 0
    labels[(blob == 3) & ~cut] = 0
    mean, std = np.array(CLIP_MEAN), np.array(CLIP_STD)
    pixels = torch.from_numpy(((rgb - mean) / std).transpose(2, 0, 1)[None]).float()
    return pixels, labels


# -- the float64 re-derivation ---------------------------------------------------------------
def reference_dino_features(vfm, pixels_clip, which="q+k"):
    """DINO's last-block qkv on norm1(x) (§3.2): q + k of the patches, unit length, [L, C].
    ``which`` picks a misreading: ``q``, ``k``, ``k+v``, ``final`` (final-norm tokens)."""
    def column(values):
        return torch.tensor(values, dtype=torch.float64).view(1, 3, 1, 1)

    pixels = (pixels_clip * column(CLIP_STD) + column(CLIP_MEAN) - column(IMAGENET_MEAN)) \
        / column(IMAGENET_STD)
    x = vfm.patch_embed.proj(pixels)
    _, width, rows, cols = x.shape
    x = x.flatten(2).transpose(1, 2)
    table = vfm.pos_embed[0]
    side = int(math.sqrt(table.shape[0] - 1))
    patches = table[1:]
    if (rows, cols) != (side, side):  # DINO's own rule: scale factor (n + 0.1)/M, bicubic
        square = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        factors = ((rows + 0.1) / side, (cols + 0.1) / side)
        square = F.interpolate(square, scale_factor=factors, mode="bicubic")
        patches = square.permute(0, 2, 3, 1).reshape(-1, width)
    x = torch.cat([vfm.cls_token, x], dim=1) + torch.cat([table[:1], patches])
    for block in vfm.blocks[:-1]:
        x = block(x)
    if which == "final":
        g = vfm.norm(vfm.blocks[-1](x))[0, 1:]
    else:
        last = vfm.blocks[-1]
        qkv = last.norm1(x) @ last.attn.qkv.weight.T + last.attn.qkv.bias
        q, k, v = qkv[0, 1:, :width], qkv[0, 1:, width:2 * width], qkv[0, 1:, 2 * width:]
        g = {"q+k": q + k, "q": q, "k": k, "k+v": k + v}[which]
    return g / g.norm(dim=-1, keepdim=True), (rows, cols)


def components(distance: np.ndarray, eps: float) -> np.ndarray:
    """Connected components of the graph {distance <= eps} (= DBSCAN with min_samples=1)."""
    parent = list(range(len(distance)))

    def root(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for a in range(len(distance)):
        for b in range(len(distance)):
            if distance[a, b] <= eps:
                parent[root(a)] = root(b)
    return np.array([root(a) for a in range(len(distance))])


def reference_scope(g, m, tau=TAU, eps=EPS, merge=True, unsegmented="min", rule="method1", scope=True):
    """Restricted attention [L, L] (§3.3). m: the labels on the DINO grid, [L] int."""
    s = g @ g.T
    values = sorted(set(m.tolist()))
    u = values[0] if unsegmented == "min" else None
    group = {value: value for value in values}
    regions = [value for value in values if value != u]
    if merge and len(regions) >= 2:
        means = torch.stack([g[torch.as_tensor(m == value)].mean(0) for value in regions])
        means = means / means.norm(dim=-1, keepdim=True)
        cosine = (means @ means.T).numpy()
        for value, component in zip(regions, components(cosine.max() - cosine, eps), strict=True):
            group[value] = 10000 + component
    grp = torch.tensor([group[value] for value in m.tolist()])
    loose = torch.as_tensor(m == u) if u is not None else torch.zeros(len(m), dtype=torch.bool)
    allowed = (grp[:, None] == grp[None, :]) & ~loose[:, None]
    if rule == "method1":
        allowed |= (loose[:, None] | loose[None, :]) & (s > s.mean())
    else:  # "method 2": outer(u, u)
        allowed |= loose[:, None] & loose[None, :]
    if not scope:
        allowed = torch.ones_like(allowed)
    return torch.softmax((tau * s).masked_fill(~allowed, float("-inf")), dim=-1)


def masks_on_grid(labels, grid, mode="nearest"):
    tensor = torch.from_numpy(labels)[None, None].double()
    if mode == "mode":  # the "mode pooling" misreading: the most frequent label per cell
        rows, cols = labels.shape[0] // grid[0], labels.shape[1] // grid[1]
        cells = labels.reshape(grid[0], rows, grid[1], cols).transpose(0, 2, 1, 3).reshape(*grid, -1)
        return np.array([[np.bincount(cell).argmax() for cell in row] for row in cells]).reshape(-1)
    return F.interpolate(tensor, size=grid, mode=mode)[0, 0].long().numpy().reshape(-1)


@torch.no_grad()
def reference_region_dense(clip_model, vfm, pixels, labels, features="q+k", grid_mode="nearest", **scope):
    """CorrCLIP lite's dense features [I, J, E] in float64 (§3.2-3.3), one image."""
    visual = copy.deepcopy(clip_model.visual).double()
    vfm = copy.deepcopy(vfm).double()
    pixels = pixels.double()
    g, (rows, cols) = reference_dino_features(vfm, pixels, features)
    attention = reference_scope(g, masks_on_grid(labels, (rows, cols), grid_mode), **scope)
    values = F.interpolate(reference_clip_values(visual, pixels), size=(rows, cols), mode="bilinear",
                           align_corners=False)[0].flatten(1).T
    y = visual.transformer.resblocks[-1].attn.out_proj(attention @ values)
    out = visual.ln_post(y) @ visual.proj
    return F.normalize(out, dim=-1).reshape(rows, cols, -1)


@torch.no_grad()
def engine_dense(clip_model, dino, pixels, labels):
    vfm = load_proxy("dino-b8")
    return region_dense(clip_model.visual, vfm, pixels, labels[None], with_clip_embedding=False)\
        .dense_features[0].double()


# -- fidelity ----------------------------------------------------------------------------
#: (image side, seed): the VFM's native grid, and two resampled images whose merges differ at
#: eps 0.1 / 0.2 / 0.3 (5 / 3 / 3 and 5 / 5 / 3 merged regions), so that both eps misreadings show.
CASES = [(64, 64), (96, 96), (96, 104)]


@pytest.mark.parametrize(("size", "seed"), CASES, ids=["native-64px", "resampled-96px", "resampled-96px-b"])
def test_region_attention_matches_the_float64_reference(clip_model, dino, size, seed):
    pixels, labels = blob_case(size, seed)
    expected = reference_region_dense(clip_model, dino, pixels, labels)
    engine = engine_dense(clip_model, dino, pixels, labels)
    assert engine.shape == expected.shape == (size // 8, size // 8, 32)
    assert float((engine - expected).abs().max()) <= 1e-5


def test_the_test_images_merge_regions(clip_model, dino):
    """Merging must happen in the fidelity images, or 'no merging' would go unnoticed."""
    for size, seed in CASES:
        pixels, labels = blob_case(size, seed)
        merged = reference_region_dense(clip_model, dino, pixels, labels)
        unmerged = reference_region_dense(clip_model, dino, pixels, labels, merge=False)
        assert float((merged - unmerged).abs().max()) > 1e-3


#: The CorrCLIP misreadings of spec §5's table, as changes to the reference.
MISREADINGS = {
    "tau=1": dict(tau=1.0), "tau=3": dict(tau=3.0), "tau=5": dict(tau=5.0),
    "final-norm tokens": dict(features="final"), "q only": dict(features="q"),
    "k only": dict(features="k"), "k+v": dict(features="k+v"),
    "no DBSCAN merging": dict(merge=False), "eps=0.1": dict(eps=0.1), "eps=0.3": dict(eps=0.3),
    "unsegmented rule outer(u,u)": dict(rule="method2"), "no scope restriction": dict(scope=False),
    "masks to grid nearest-exact": dict(grid_mode="nearest-exact"),
    "masks to grid by mode pooling": dict(grid_mode="mode"),
    "no unsegmented region": dict(unsegmented=None),
}


@pytest.mark.parametrize("name", list(MISREADINGS))
def test_each_misreading_would_fail_the_fidelity_test(clip_model, dino, name):
    """Spec §5's CorrCLIP misreadings: τ = 1 / 3 / 5; final-norm tokens, q, k or k + v instead
    of q + k; no DBSCAN merging; eps 0.1 / 0.3; the unsegmented rule outer(u, u) ("method 2");
    no scope restriction; masks sampled onto the grid with nearest-exact or by mode pooling;
    no unsegmented region. Each moves the features by > 1e-3 (100x the tolerance). The last
    row of the table, "full head instead of lite", has no counterpart: the full head is not
    implemented."""
    differences = []
    for size, seed in CASES[1:]:
        pixels, labels = blob_case(size, seed)
        engine = engine_dense(clip_model, dino, pixels, labels)
        misread = reference_region_dense(clip_model, dino, pixels, labels, **MISREADINGS[name])
        differences.append(float((engine - misread).abs().max()))
    assert max(differences) > 1e-3


# -- by hand ---------------------------------------------------------------------------
def test_restricted_attention_by_hand():
    """Four patches: two in region 1, one in region 2, one unsegmented (label 0).
    ĝ = (1,0), (1,0), (0,1), (0.6,0.8); S rows: [1,1,0,.6], [1,1,0,.6], [0,0,1,.8], [.6,.6,.8,1];
    mean(S) = 10/16 = 0.625. Regions 1 and 2 have cosine 0 (distance 1 > eps): not merged.
    Row 0: its region only -> 1/2, 1/2. Row 2: itself and the unsegmented patch (0.8 > 0.625)
    -> softmax(4, 3.2). Row 3 (unsegmented): j with S_3j > 0.625 -> patches 2, 3 -> softmax(3.2, 4)."""
    g = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=torch.float64)
    attention = region_attention(g, torch.tensor([1, 1, 2, 0]), unsegmented=0)
    a, b = 1 / (1 + math.exp(-0.8)), math.exp(-0.8) / (1 + math.exp(-0.8))
    expected = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, a, b], [0, 0, b, a]],
                            dtype=torch.float64)
    assert torch.allclose(attention, expected, atol=1e-12)


def test_similar_regions_merge_by_hand():
    """Region 2's feature (0.8, 0.6) has cosine 0.8 with region 1's (1, 0): distance
    1 - 0.8 = 0.2 <= eps, so they merge and patch 0 attends to patch 2 (weights e^4, e^4, e^3.2);
    at eps = 0.1 they stay apart."""
    g = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([1, 1, 2, 0])
    merged = region_attention(g, labels, unsegmented=0)
    weights = torch.tensor([math.exp(4), math.exp(4), math.exp(3.2)], dtype=torch.float64)
    assert torch.allclose(merged[0, :3], weights / weights.sum(), atol=1e-12)
    apart = region_attention(g, labels, unsegmented=0, eps=0.1)
    assert torch.allclose(apart[0], torch.tensor([0.5, 0.5, 0, 0], dtype=torch.float64), atol=1e-12)


def test_majority_vote_by_hand():
    """Region 1 holds classes 1, 1, 3, 1 -> 1. Region 2 holds 0, 2, 2, 2, 0, 0: a tie, broken
    towards the smaller class (torch.mode on the CPU, spec §3.4) -> 0. Label 0 is no region:
    its pixels keep their classes (3, 3)."""
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 2, 2]])
    classes = np.array([[1, 1, 0, 2], [3, 1, 2, 2], [3, 3, 0, 0]])
    expected = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [3, 3, 0, 0]])
    np.testing.assert_array_equal(majority_vote(classes, labels, unsegmented=0), expected)


def test_majority_vote_matches_the_official_loop_with_torch_mode():
    """The official loop (every label but the smallest, torch.mode) on random maps."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 12, (40, 50))
    classes = rng.integers(0, 4, (40, 50))
    expected = torch.from_numpy(classes.copy())
    masks = torch.from_numpy(labels)
    for value in torch.unique(masks)[1:]:
        expected[masks == value] = torch.mode(expected[masks == value]).values
    np.testing.assert_array_equal(majority_vote(classes, labels, unsegmented="min"), expected.numpy())


def test_the_engine_runs_region_attention_in_encode(clip_model, dino, tiny_model_name):
    """Through ``encode``: the image resized to the input, the labels resized with nearest."""
    from napari_gem import encode
    from napari_gem.engine import SegmentOptions

    pixels, labels = blob_case(64, seed=64)
    rgb = (pixels[0].permute(1, 2, 0).numpy() * np.array(CLIP_STD) + np.array(CLIP_MEAN)).clip(0, 1)
    model = GroundingModel.from_open_clip(clip_model, open_clip.get_tokenizer(tiny_model_name))
    options = SegmentOptions(input_size=64, contrast="none", regions="labels", region_attention=True)
    encoded = encode(rgb.astype(np.float32), model, options, region_labels=labels)
    assert encoded.grid_shape == (8, 8)
    expected = reference_region_dense(clip_model, dino, encoded_pixels(rgb), labels)
    assert float((encoded.features.double() - expected).abs().max()) <= 1e-5


def encoded_pixels(rgb):
    """The CLIP-normalised pixels of an RGB image already at the input size."""
    mean, std = np.array(CLIP_MEAN), np.array(CLIP_STD)
    return torch.from_numpy(((rgb - mean) / std).transpose(2, 0, 1)[None]).float()
