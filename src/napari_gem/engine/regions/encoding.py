"""How region consistency joins a run: the label image of the chosen source, the
region-restricted encoding (when asked for), and the majority vote of a result."""

from __future__ import annotations

import numpy as np
import torch

from ..promptable import PromptableModel, VisionOutput
from ..tiling import read_window
from .grids import resize_nearest
from .head import region_dense
from .sources import get_source
from .vote import UNSEGMENTED


class RegionRun:
    """The regions of one image (full-resolution labels) and, when region attention is on,
    how to encode its pixels with them."""

    def __init__(self, labels: np.ndarray, model: PromptableModel, options) -> None:
        self.labels = labels
        self.options = options
        self.attention = bool(options.region_attention)
        self._vfm = None
        if self.attention:
            from ..vfm import load_proxy

            self._trunk = attention_trunk(model)
            self._vfm = load_proxy(options.region_proxy, device=model.device, dtype=model.dtype)

    def _forward(self, model: PromptableModel, pixels: torch.Tensor, masks: np.ndarray,
                 with_clip_embedding: bool) -> VisionOutput:
        options = self.options
        with torch.inference_mode():
            pixels = pixels.to(device=model.device, dtype=model.dtype)
            return region_dense(self._trunk, self._vfm, pixels, masks, unsegmented=UNSEGMENTED,
                                tau=options.region_tau, eps=options.region_eps, merge=options.region_merge,
                                with_clip_embedding=with_clip_embedding)

    def encode_whole(self, model: PromptableModel, pixels: torch.Tensor) -> VisionOutput:
        """The image resized to the model input ``[1, 3, h, w]``; labels follow with nearest (§3.1)."""
        if not self.attention:
            return model.encode_image(pixels)
        return self._forward(model, pixels, resize_nearest(self.labels, tuple(pixels.shape[-2:]))[None],
                             True)

    def encode_windows(self, model: PromptableModel, pixels: torch.Tensor, starts,
                       window_shape: tuple[int, int]) -> torch.Tensor:
        """Dense features of a batch of windows, each with its own crop of the labels."""
        masks = np.stack([read_window(self.labels, start, window_shape) for start in starts])
        return self._forward(model, pixels, masks, False).dense_features


def attention_trunk(model: PromptableModel):
    """The CLIP vision trunk whose last block region attention replaces; a clear ``ValueError``
    for models without one."""
    trunk = getattr(model, "trunk", None)
    if trunk is None:
        raise ValueError(f"region attention replaces a CLIP's last block; the {model.method} "
                         "model has none: turn region attention off (the vote still works)")
    return trunk


def prepare_regions(image, mapping, model: PromptableModel, options,
                    region_labels=None) -> RegionRun | None:
    """The :class:`RegionRun` of ``options.regions`` for a 2D ``image`` (None when off)."""
    if options.regions == "none":
        if region_labels is not None:
            raise ValueError("region labels were given but regions is 'none': set regions='labels'")
        return None
    source = get_source(options.regions)
    if options.region_attention:
        from ..vfm import ensure_available

        attention_trunk(model)
        ensure_available(options.region_proxy)  # offline: say so before any work
    if region_labels is not None and not source.takes_labels:
        raise ValueError(f"region labels were given but regions is {options.regions!r}: "
                         "set regions='labels'")
    from ..preprocess import image_layout, to_rgb

    height, width, _ = image_layout(tuple(image.shape))
    labels = source.labels(lambda step: to_rgb(np.asarray(image[::step, ::step]), mapping),
                           (height, width), options,
                           region_labels)
    return RegionRun(np.ascontiguousarray(labels, dtype=np.int32), model, options)
