"""The packaged demo CLIP: where its config and weights are, and how to load it offline."""

from __future__ import annotations

from pathlib import Path

from ..engine.options import SegmentOptions
from ..engine.spec import ModelSpec, register_model_configs

_HERE = Path(__file__).resolve().parent
#: open_clip model name of the demo architecture (the config file's name).
MODEL_NAME = "napari-gem-demo-micrographs"
CONFIG_PATH = _HERE / f"{MODEL_NAME}.json"
WEIGHTS_PATH = _HERE / "weights" / f"{MODEL_NAME}.pt"
#: How the widget lists it: nobody should take it for a general-purpose CLIP.
DISPLAY_NAME = "demo: generated micrographs only (napari-gem toy CLIP)"
#: GEM depth for this 4-block ViT (the paper's 7 needs at least 6 blocks); see docs/demo-model.md.
DEFAULT_DEPTH = 3
#: The input side the quality table was measured at (3x the native 64 px; 24 x 24 patches).
INPUT_SIZE = 192


def register_config() -> None:
    """Make the demo architecture known to open_clip (idempotent)."""
    register_model_configs((str(CONFIG_PATH),))


def load_model(method: str = "gem", *, device: str = "cpu", precision: str | None = None, **options):
    """The demo CLIP with its packaged weights, ready for ``encode``/``segment`` (no network).

    ``method`` names the dense method (see ``napari_gem.methods()``); ``options`` are that
    method's options (GEM's depth defaults to :data:`DEFAULT_DEPTH`).
    """
    from ..engine.loading import load_model as load_open_clip

    register_config()
    if not WEIGHTS_PATH.is_file():
        raise FileNotFoundError(
            f"the demo weights are missing ({WEIGHTS_PATH}); reinstall napari-gem or run "
            "`python -m napari_gem.demo.training`"
        )
    if method == "gem":
        options.setdefault("depth", DEFAULT_DEPTH)
    return load_open_clip(MODEL_NAME, WEIGHTS_PATH, device=device, precision=precision,
                          method=method, **options)


def model_spec(**changes) -> ModelSpec:
    """A :class:`ModelSpec` of the demo model (for the widget and the batch command)."""
    values = {"name": MODEL_NAME, "pretrained": str(WEIGHTS_PATH), "device": "cpu",
              "method": "gem", "model_configs": (str(CONFIG_PATH),)}
    values.update(changes)
    if values["method"] == "gem":  # the paper's depth 7 needs 6 blocks; this ViT has 4
        values["method_options"] = {"depth": DEFAULT_DEPTH, **dict(values.get("method_options", {}))}
    return ModelSpec(**values)


def segment_options(**changes) -> SegmentOptions:
    """Segmentation options that fit the demo model (its input size; engine defaults otherwise)."""
    return SegmentOptions(input_size=INPUT_SIZE, window=INPUT_SIZE, overlap=INPUT_SIZE // 4).replace(
        **changes
    )
