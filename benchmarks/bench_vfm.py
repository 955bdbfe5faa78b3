"""``python benchmarks/bench.py``: ProxyCLIP's cost against a plain CLIP encode measured in the same run.

The proxy (DINO ViT-B/16 by default) is built with random weights — it costs exactly
what the real ones do and needs no download — and shared as the process's proxy, so the
method rows of ``python benchmarks/bench.py`` time ProxyCLIP like every other method. Target
(issue 17): ProxyCLIP encode ≤ 2.1× a plain CLIP encode at 448², fp32, CPU.
"""

from __future__ import annotations

import torch
from timing import interleaved_medians

PROXYCLIP_TARGET = 2.1


def share_random_proxy(gem, proxy: str = "dino-b16") -> None:
    """Share a random-weight ``proxy`` on ``gem``'s device and dtype as the process's proxy."""
    import timm

    from napari_gem.engine.vfm import share_proxy, timm_name

    module = timm.create_model(timm_name(proxy), pretrained=False).eval()
    share_proxy(proxy, module.to(device=gem.device, dtype=gem.dtype))


def measure_proxyclip(gem, plain, input_size: int = 448, repeats: int = 5,
                      proxy: str = "dino-b16") -> dict[str, float]:
    """Median seconds (interleaved) of a plain CLIP encode, ProxyCLIP's encode as ``encode``
    calls it (dense features and the CLIP embedding), and the proxy's forward alone; and
    ProxyCLIP's ratio to the plain encode."""
    share_random_proxy(gem, proxy)
    model = gem.with_method("proxyclip", proxy=proxy)
    vfm = model.dense_method.proxy_for(model.visual)
    pixels = torch.randn(1, 3, input_size, input_size, device=gem.device, dtype=gem.dtype)

    def plain_encode():
        with torch.inference_mode():
            plain.visual(pixels)

    def proxy_alone():
        with torch.inference_mode():
            vfm.patch_features(vfm.pixels_from_clip(pixels))

    medians = interleaved_medians({
        "plain": plain_encode,
        "proxyclip": lambda: model.encode_image(pixels),
        "proxy": proxy_alone,
    }, repeats, gem.device)
    medians["ratio"] = medians["proxyclip"] / medians["plain"]
    return medians


def proxyclip_rows(times: dict[str, float], proxy: str = "dino-b16") -> list[tuple[str, str, str, str]]:
    """The bench table's rows for :func:`measure_proxyclip`."""
    ratio = times["ratio"]
    return [
        (f"ProxyCLIP ({proxy}) / plain", f"{ratio:.2f}x", f"<= {PROXYCLIP_TARGET}x",
         "yes" if ratio <= PROXYCLIP_TARGET else "NO"),
        (f"  of which the {proxy} forward / plain", f"{times['proxy'] / times['plain']:.2f}x", "", ""),
    ]


# -- Talk2DINO ---------------------------------------------------------------------------
TALK2DINO_TARGET = 1.15


def measure_talk2dino(input_size: int = 448, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """Median seconds (interleaved) of a plain timm DINOv2 ``forward_features`` (built at
    ``input_size``), Talk2DINO's encode as ``encode`` calls it, and its official per-crop
    masks with background cleaning for 5 prompts; random weights (no download)."""
    import timm

    from napari_gem.engine import load_model

    model = load_model("talk2dino-vitb14", None, device=device, precision="fp32")
    plain = timm.create_model("vit_base_patch14_reg4_dinov2", pretrained=False, num_classes=0,
                              img_size=input_size).eval().to(model.device)
    pixels = torch.randn(1, 3, input_size, input_size, device=model.device)
    text = model.encode_text([f"object {index}" for index in range(5)])

    def plain_forward():
        with torch.inference_mode():
            plain.forward_features(pixels)

    medians = interleaved_medians({
        "plain": plain_forward,
        "talk2dino": lambda: model.encode_image(pixels),
        "masks": lambda: model.crop_similarity(pixels, text, background_cleaning=True),
    }, repeats, model.device)
    medians["ratio"] = medians["talk2dino"] / medians["plain"]
    return medians


def talk2dino_rows(times: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """The bench table's rows for :func:`measure_talk2dino`."""
    ratio = times["ratio"]
    return [
        ("plain DINOv2 forward_features (s)", f"{times['plain']:.3f}", "baseline", ""),
        ("Talk2DINO encode / DINOv2 forward_features", f"{ratio:.2f}x", f"<= {TALK2DINO_TARGET}x",
         "yes" if ratio <= TALK2DINO_TARGET else "NO"),
        ("  Talk2DINO official masks, 5 prompts, background cleaning / DINOv2",
         f"{times['masks'] / times['plain']:.2f}x", "", ""),
    ]


# -- region consistency (CorrCLIP's regions, engine/regions) -------------------------------
REGIONS_TARGET_S = 0.5


def blob_image(side: int, seed: int = 0):
    """An RGB uint8 test image of smooth colour blobs with noise (a stand-in for a micrograph)."""
    import numpy as np
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 12, 12, generator=generator)
    smooth = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)[0]
    noisy = smooth + 0.05 * torch.randn(smooth.shape, generator=generator)
    return (noisy.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def measure_regions(side: int = 1024, prompts: int = 5, repeats: int = 5) -> dict[str, float]:
    """Median seconds of region consistency's work on a ``side``² image beyond the encode:
    SLIC superpixels (default options) and the vote of a class map and ``prompts`` masks."""
    import numpy as np

    from napari_gem.engine import SegmentOptions
    from napari_gem.engine.preprocess import intensity_map, to_rgb
    from napari_gem.engine.regions.sources import get_source
    from napari_gem.engine.regions.vote import majority_vote, vote_masks

    image = blob_image(side)
    options = SegmentOptions(regions="slic")
    mapping = intensity_map(image, options.contrast, options.percentiles)
    slic = get_source("slic")
    rng = np.random.default_rng(0)
    classes = rng.integers(0, prompts + 1, (side, side)).astype(np.int32)
    masks = rng.random((prompts, side, side)) > 0.5
    def read_rgb(step: int):
        return to_rgb(image[::step, ::step], mapping)

    labels = slic.labels(read_rgb, (side, side), options)
    medians = interleaved_medians({
        "slic": lambda: slic.labels(read_rgb, (side, side), options),
        "vote": lambda: (majority_vote(classes, labels), vote_masks(masks, labels)),
    }, repeats, torch.device("cpu"))
    medians["total"] = medians["slic"] + medians["vote"]
    medians["regions"] = float(labels.max())
    return medians


def measure_region_attention(gem, plain, input_size: int = 448, repeats: int = 3,
                             proxy: str = "dino-b8") -> dict[str, float]:
    """Median seconds of a plain CLIP encode and of the region-restricted encode (CorrCLIP's
    head with a random-weight ``proxy``, SLIC regions), and their ratio."""
    from napari_gem.engine.regions.head import region_dense
    from napari_gem.engine.vfm import load_proxy

    share_random_proxy(gem, proxy)
    vfm = load_proxy(proxy, device=gem.device, dtype=gem.dtype)
    pixels = torch.randn(1, 3, input_size, input_size, device=gem.device, dtype=gem.dtype)
    side = input_size // 16
    masks = (torch.arange(input_size)[:, None] // side * 16 + torch.arange(input_size)[None] // side)
    masks = masks.numpy()[None] + 1  # 256 square regions

    def plain_encode():
        with torch.inference_mode():
            plain.visual(pixels)

    def regions_encode():
        with torch.inference_mode():
            region_dense(gem.visual, vfm, pixels, masks)

    medians = interleaved_medians({"plain": plain_encode, "regions": regions_encode}, repeats, gem.device)
    medians["ratio"] = medians["regions"] / medians["plain"]
    return medians


def regions_rows(times: dict[str, float], side: int, attention: dict[str, float] | None = None,
                 proxy: str = "dino-b8") -> list[tuple[str, str, str, str]]:
    """The bench table's rows for :func:`measure_regions` (and :func:`measure_region_attention`)."""
    total = times["total"]
    rows = [
        (f"regions: SLIC {side}px ({times['regions']:.0f} superpixels) (s)", f"{times['slic']:.3f}", "", ""),
        (f"regions: vote of a class map + 5 masks {side}px (s)", f"{times['vote']:.3f}", "", ""),
        (f"region consistency with SLIC, {side}px (s)", f"{total:.3f}", f"<= {REGIONS_TARGET_S}",
         "yes" if total <= REGIONS_TARGET_S else "NO"),
    ]
    if attention is not None:
        rows.append((f"region attention ({proxy}) encode / plain", f"{attention['ratio']:.2f}x", "", ""))
    return rows
