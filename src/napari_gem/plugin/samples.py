"""Sample images that load offline: scikit-image's bundled photographs and micrographs.

Each function returns napari layer data tuples. The keys (``chelsea``, ``cell``, ...)
are the sample keys of the npe2 manifest: File > Open Sample > napari-gem.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LayerData = list[tuple]

#: key -> (skimage.data function name, display name, suggested prompts)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "chelsea": ("chelsea", "Chelsea the cat (photograph)", "cat, ear, eye"),
    "astronaut": ("astronaut", "Astronaut (photograph)", "person, flag, rocket"),
    "coffee": ("coffee", "Coffee cup (photograph)", "cup, spoon, coffee"),
    "rocket": ("rocket", "Rocket (photograph)", "rocket, tower, sky"),
    "coins": ("coins", "Coins (grayscale photograph)", "coin"),
    "hubble": ("hubble_deep_field", "Hubble deep field (astronomy)", "galaxy, star"),
    "immunohistochemistry": ("immunohistochemistry",
                             "Immunohistochemistry (brightfield micrograph)", "nucleus, tissue"),
    "retina": ("retina", "Retina (fundus photograph, 1411 x 1411)", "blood vessel, optic disc"),
    "cell": ("cell", "Cell (phase-contrast micrograph)", "cell"),
}


def _load(key: str) -> LayerData:
    import skimage.data

    function, display, prompts = SAMPLES[key]
    data = getattr(skimage.data, function)()
    meta = {
        "name": key,
        "rgb": data.ndim == 3 and data.shape[-1] in (3, 4),
        "metadata": {"napari_gem_sample": {"source": f"skimage.data.{function}",
                                           "suggested_prompts": prompts}},
    }
    return [(data, meta, "image")]


def _sample(key: str) -> Callable[[], LayerData]:
    def load() -> LayerData:
        return _load(key)

    load.__name__ = key
    load.__doc__ = f"{SAMPLES[key][1]} from scikit-image (offline)."
    return load


chelsea = _sample("chelsea")
astronaut = _sample("astronaut")
coffee = _sample("coffee")
rocket = _sample("rocket")
coins = _sample("coins")
hubble = _sample("hubble")
immunohistochemistry = _sample("immunohistochemistry")
retina = _sample("retina")
cell = _sample("cell")


def ihc_channels() -> LayerData:
    """The immunohistochemistry slide unmixed into haematoxylin, eosin and DAB channels.

    A real multichannel image (channel axis first, as a ``(3, H, W)`` stack) for trying
    'one channel as gray' or 'three channels as RGB'.
    """
    from skimage.color import rgb2hed
    from skimage.data import immunohistochemistry as ihc

    hed = np.moveaxis(rgb2hed(ihc()), -1, 0).astype(np.float32)
    # Each stain on its own 0..1 scale (robust percentiles), so every channel is visible.
    low, high = np.percentile(hed, (0.5, 99.5), axis=(1, 2), keepdims=True)
    flat = high <= low  # eosin is almost absent from this slide: use its full range
    low = np.where(flat, hed.min(axis=(1, 2), keepdims=True), low)
    high = np.where(flat, hed.max(axis=(1, 2), keepdims=True), high)
    hed = np.clip((hed - low) / np.maximum(high - low, 1e-12), 0, 1).astype(np.float32)
    meta = {
        "name": "ihc channels (H, E, DAB)",
        "axis_labels": ("c", "y", "x"),
        "contrast_limits": (0.0, 1.0),
        "metadata": {"napari_gem_sample": {"source": "skimage.color.rgb2hed(immunohistochemistry)",
                                           "suggested_prompts": "nucleus"}},
    }
    return [(hed, meta, "image")]


def suggested_prompts(layer) -> str | None:
    """The prompts a sample suggests, when the layer is one of our samples."""
    meta = getattr(layer, "metadata", {}).get("napari_gem_sample")
    return meta.get("suggested_prompts") if isinstance(meta, dict) else None


#: The generated micrograph of the demo (``napari-gem --demo``): seed and side in pixels.
DEMO_SAMPLE_SEED = 7
DEMO_SAMPLE_SIZE = 384


def demo_micrograph() -> LayerData:
    """A generated micrograph that the demo model was made for (offline, exact ground truth)."""
    from ..demo import scene

    image, masks = scene(DEMO_SAMPLE_SEED, DEMO_SAMPLE_SIZE)
    meta = {
        "name": "demo micrograph",
        "rgb": True,
        "metadata": {"napari_gem_sample": {
            "source": f"napari_gem.demo.scene({DEMO_SAMPLE_SEED}, {DEMO_SAMPLE_SIZE})",
            "suggested_prompts": ", ".join(sorted(masks)[:4]),
            "model": "demo",
        }},
    }
    return [(image, meta, "image")]


#: Samples beyond the scikit-image ones of :data:`SAMPLES`.
EXTRA_SAMPLES = ("ihc_channels", "demo_micrograph")
