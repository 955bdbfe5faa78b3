"""``napari-gem bench``: ProxyCLIP's cost against a plain CLIP encode measured in the same run.

The proxy (DINO ViT-B/16 by default) is built with random weights — it costs exactly
what the real ones do and needs no download — and shared as the process's proxy, so the
method rows of ``napari-gem bench`` time ProxyCLIP like every other method. Target
(issue 17): ProxyCLIP encode ≤ 2.1× a plain CLIP encode at 448², fp32, CPU.
"""

from __future__ import annotations

import torch

from .timing import interleaved_medians

PROXYCLIP_TARGET = 2.1


def share_random_proxy(gem, proxy: str = "dino-b16") -> None:
    """Share a random-weight ``proxy`` on ``gem``'s device and dtype as the process's proxy."""
    import timm

    from ..engine.vfm import share_proxy, timm_name

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

    from ..engine import load_model

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
