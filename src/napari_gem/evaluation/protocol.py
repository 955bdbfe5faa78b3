"""The training-free evaluation protocol: resize, sliding window, prompts, scoring.

Two settings:

- ``common`` — the protocol of the MMSegmentation-based training-free repositories
  (SCLIP, NACLIP, ClearCLIP, ProxyCLIP): short side resized (aspect kept, long side at
  most 2048, bilinear), sliding windows whose logits are averaged where they overlap,
  the 80 OpenAI ImageNet templates, a logit scale and, for datasets with a background
  class, a probability threshold below which a pixel is background. Each method has
  its own values (:mod:`.presets`): GEM's are ClearCLIP's, under which GEM was re-run
  in the literature (short side 448, 448 x 448 windows, stride 224, logit scale 50);
  NACLIP adds PAMR, SCLIP an area threshold, ClearCLIP uses names without synonyms.
- ``paper`` — the GEM paper's own setting: the whole image resized to 448 x 448
  (bicubic, aspect ignored), one pass, the single template "a photo of a {}." and the
  authors' min-max normalised heatmaps.

In both, the per-prompt logits are resized to the label's size, scaled, softmaxed over
prompts; a class scores the best of its synonyms' probabilities and the arg-max wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.preprocess import CLIP_MEAN, CLIP_STD
from ..engine.refinement import check_pamr_settings, pamr
from ..engine.text import PAPER_TEMPLATES, imagenet_templates

SETTINGS = ("common", "paper")


@dataclass(frozen=True)
class ProtocolSettings:
    """Everything that turns an image into a predicted label map, except the model.

    Exactly one of ``short_side`` (keep the aspect ratio) and ``fixed_size``
    (``(height, width)``, aspect ignored) says how the image is resized. ``crop`` and
    ``stride`` set the sliding window; ``None`` runs the whole image in one pass.
    ``logit_scale`` ``None`` uses the model's own. ``prob_threshold`` (datasets with a
    background class only) turns pixels whose best class probability is below it into
    background (class 0).
    """

    setting: str
    templates: tuple[str, ...]
    short_side: int | None = None
    max_long_side: int = 2048
    fixed_size: tuple[int, int] | None = None
    interpolation: str = "bilinear"
    antialias: bool = False
    crop: int | None = None
    stride: int | None = None
    min_max: bool = False
    logit_scale: float | None = None
    prob_threshold: float | None = None
    area_threshold: float | None = None
    pamr_steps: int | None = None
    pamr_dilations: tuple[int, ...] = (8, 16)
    synonyms: bool = True
    method: str = "gem"
    background_logit: float | None = None  # class 0 scores this constant (Talk2DINO's bg_thresh)

    def __post_init__(self) -> None:
        if (self.short_side is None) == (self.fixed_size is None):
            raise ValueError("give exactly one of short_side and fixed_size")
        if self.short_side is not None and self.short_side < 1:
            raise ValueError(f"short_side must be positive, got {self.short_side}")
        if self.fixed_size is not None and min(self.fixed_size) < 1:
            raise ValueError(f"fixed_size must be positive, got {self.fixed_size}")
        if (self.crop is None) != (self.stride is None):
            raise ValueError("crop and stride go together: give both or neither")
        if self.crop is not None and (self.crop < 1 or self.stride < 1):
            raise ValueError(f"crop and stride must be positive, got {self.crop}, {self.stride}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation must be bilinear or bicubic, not {self.interpolation!r}")
        if not self.templates or any("{}" not in template for template in self.templates):
            raise ValueError("every prompt template must contain '{}' where the class name goes")
        if self.logit_scale is not None and not self.logit_scale > 0:
            raise ValueError(f"logit_scale must be positive, got {self.logit_scale}")
        if self.prob_threshold is not None and not 0 <= self.prob_threshold <= 1:
            raise ValueError(f"prob_threshold must be in [0, 1], got {self.prob_threshold}")
        if self.area_threshold is not None and not 0 <= self.area_threshold < 1:
            raise ValueError(f"area_threshold must be in [0, 1), got {self.area_threshold}")
        if self.pamr_steps is not None:
            check_pamr_settings(self.pamr_steps, self.pamr_dilations)

    def to_dict(self) -> dict:
        """The settings as plain JSON-ready values."""
        values = dataclasses.asdict(self)
        values["templates"] = list(self.templates)
        values["pamr_dilations"] = list(self.pamr_dilations)
        if self.fixed_size is not None:
            values["fixed_size"] = list(self.fixed_size)
        return values


def template_set(name: str) -> tuple[str, ...]:
    """A preset's templates: ``imagenet80``, ``sub-imagenet7`` (Talk2DINO's) or ``bare``."""
    if name == "imagenet80":
        return imagenet_templates()
    if name == "sub-imagenet7":
        from ..engine.families.talk2dino import SUB_IMAGENET_TEMPLATES

        return SUB_IMAGENET_TEMPLATES
    return ("{}",)


def protocol_for(dataset: str, setting: str = "common", *, method: str = "gem",
                 **overrides) -> ProtocolSettings:
    """The protocol settings of ``dataset`` under ``setting`` (``common`` or ``paper``).

    ``common`` takes ``method``'s preset (:mod:`.presets`). ``overrides`` replace
    individual fields (e.g. ``prob_threshold=0.3``); a value of ``None`` in
    ``overrides`` is ignored so command-line defaults can be passed as is.
    """
    from .datasets import dataset_spec
    from .presets import method_preset

    spec = dataset_spec(dataset)
    if setting == "common":
        values = method_preset(method).settings_for(dataset)
        templates = template_set(values.pop("templates"))
        settings = ProtocolSettings(setting="common", templates=templates, method=method, **values)
    elif setting == "paper":
        settings = ProtocolSettings(
            setting="paper",
            templates=PAPER_TEMPLATES,
            fixed_size=(448, 448),
            interpolation="bicubic",
            antialias=True,
            min_max=True,
            method=method,
        )
    else:
        raise ValueError(f"unknown setting {setting!r}; choose one of: {', '.join(SETTINGS)}")
    chosen = {key: value for key, value in overrides.items() if value is not None}
    if "prob_threshold" in chosen and not spec.has_background:
        raise ValueError(f"{dataset} has no background class, so a probability threshold does not apply")
    return dataclasses.replace(settings, **chosen) if chosen else settings


# -- image preparation ---------------------------------------------------------------


def resized_shape(height: int, width: int, settings: ProtocolSettings) -> tuple[int, int]:
    """The ``(height, width)`` an image is resized to before inference.

    With ``short_side``: MMSegmentation's ``Resize(scale=(max_long_side, short_side),
    keep_ratio=True)``, i.e. the largest scale at which the short side is at most
    ``short_side`` and the long side at most ``max_long_side``, sides rounded half up.
    """
    if settings.fixed_size is not None:
        return settings.fixed_size
    factor = min(settings.max_long_side / max(height, width), settings.short_side / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def prepare_pixels(
    image: np.ndarray, settings: ProtocolSettings, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """An RGB uint8 image ``[H, W, 3]`` resized per ``settings`` and CLIP-normalised:
    float32 ``[1, 3, h, w]`` on ``device``."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    pixels = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    pixels = pixels.permute(2, 0, 1).unsqueeze(0).float()
    size = resized_shape(image.shape[0], image.shape[1], settings)
    if size != tuple(image.shape[:2]):
        pixels = F.interpolate(
            pixels,
            size=size,
            mode=settings.interpolation,
            align_corners=False,
            antialias=settings.antialias,
        )
        # The reference pipelines resize 8-bit images and get 8-bit images back.
        pixels = pixels.round().clamp(0, 255)
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels / 255.0 - mean) / std


# -- dense inference -------------------------------------------------------------------


class Window(NamedTuple):
    """A crop ``[top:bottom, left:right]`` of the image."""

    top: int
    bottom: int
    left: int
    right: int


def sliding_windows(height: int, width: int, crop: int, stride: int) -> list[Window]:
    """MMSegmentation's ``slide_inference`` windows, row by row.

    Windows start every ``stride`` pixels; one that would run past the border is moved
    back so it ends flush with it, and one larger than the image is cut to the image.
    So every window has the same size, ``min(crop, height) x min(crop, width)``.
    """
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    windows = []
    for row in range(rows):
        for col in range(cols):
            bottom = min(row * stride + crop, height)
            right = min(col * stride + crop, width)
            windows.append(Window(max(bottom - crop, 0), bottom, max(right - crop, 0), right))
    return windows


CropLogits = Callable[[torch.Tensor], torch.Tensor]
"""Maps normalised crops ``[B, 3, h, w]`` to per-prompt logits ``[B, P, h, w]``."""


def slide_inference(
    pixels: torch.Tensor, crop: int, stride: int, crop_logits: CropLogits, batch_size: int = 8
) -> torch.Tensor:
    """Per-prompt logits ``[P, H, W]`` of ``pixels`` ``[1, 3, H, W]``: each window's logits
    are added in place and the sum is divided by how many windows cover each pixel."""
    height, width = pixels.shape[-2:]
    windows = sliding_windows(height, width, crop, stride)
    total = None
    count = torch.zeros((height, width), device=pixels.device)
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        crops = torch.cat([pixels[:, :, w.top : w.bottom, w.left : w.right] for w in chunk])
        logits = crop_logits(crops).float()
        if total is None:
            total = torch.zeros((logits.shape[1], height, width), device=pixels.device)
        for window, window_logits in zip(chunk, logits, strict=True):
            total[:, window.top : window.bottom, window.left : window.right] += window_logits
            count[window.top : window.bottom, window.left : window.right] += 1
    return total / count


def min_max_normalise(logits: torch.Tensor) -> torch.Tensor:
    """Each prompt's map ``[P, H, W]`` scaled to [0, 1] (constant maps become 0)."""
    low = logits.amin(dim=(-2, -1), keepdim=True)
    span = logits.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (logits - low) / span.clamp_min(torch.finfo(logits.dtype).tiny), 0.0)


def dense_logits(pixels: torch.Tensor, crop_logits: CropLogits, settings: ProtocolSettings) -> torch.Tensor:
    """Per-prompt logits ``[P, h, w]`` of a prepared image, at its prepared size."""
    if settings.crop is None:
        logits = crop_logits(pixels)[0].float()
    else:
        logits = slide_inference(pixels, settings.crop, settings.stride, crop_logits)
    return min_max_normalise(logits) if settings.min_max else logits


def refine_logits(logits: torch.Tensor, pixels: torch.Tensor, settings: ProtocolSettings) -> torch.Tensor:
    """PAMR on the raw logits ``[P, H, W]`` at their size, guided by the prepared image
    resized to that size (bilinear), as NACLIP does; unchanged without ``pamr_steps``."""
    if settings.pamr_steps is None:
        return logits
    guide = F.interpolate(pixels, size=tuple(logits.shape[-2:]), mode="bilinear", align_corners=False)
    return pamr(logits, guide[0], settings.pamr_steps, settings.pamr_dilations)


def resize_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``) of ``[P, h, w]`` logits to ``size``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


# -- from prompt logits to classes -----------------------------------------------------


def class_probabilities(
    logits: torch.Tensor, prompt_class: torch.Tensor, num_classes: int, logit_scale: float
) -> torch.Tensor:
    """``[C, H, W]``: softmax over prompts of ``logit_scale * logits`` ``[P, H, W]``, then
    for each class the largest probability among its prompts (synonyms)."""
    probabilities = torch.softmax(logits * logit_scale, dim=0)
    if prompt_class.numel() == num_classes and bool(
        (prompt_class == torch.arange(num_classes, device=prompt_class.device)).all()
    ):
        return probabilities  # one prompt per class, in class order
    per_class = torch.zeros(
        (num_classes, *probabilities.shape[1:]),
        dtype=probabilities.dtype,
        device=probabilities.device,
    )
    return per_class.index_reduce_(0, prompt_class, probabilities, "amax", include_self=True)


def classify(
    logits: torch.Tensor,
    prompt_class: torch.Tensor,
    num_classes: int,
    logit_scale: float,
    prob_threshold: float | None = None,
    background_class: int = 0,
    area_threshold: float | None = None,
) -> torch.Tensor:
    """Predicted class map ``[H, W]`` (int64) from per-prompt logits ``[P, H, W]``.

    Ties go to the lower class index. With ``area_threshold`` (SCLIP, datasets whose
    class 0 is background), a non-background class predicted on no more than that share
    of the non-background pixels loses all its probability first. With
    ``prob_threshold``, pixels whose best class probability is below it become
    ``background_class``.
    """
    probabilities = class_probabilities(logits, prompt_class, num_classes, logit_scale)
    if area_threshold is not None:
        counts = torch.bincount(probabilities.argmax(dim=0).flatten(), minlength=num_classes)
        counts = counts[1:].to(probabilities.dtype)  # background's own area does not count
        keep = (counts > area_threshold * counts.sum()).to(probabilities.dtype)
        probabilities[1:] *= keep[:, None, None]
    best, prediction = probabilities.max(dim=0)
    if prob_threshold is not None:
        prediction[best < prob_threshold] = background_class
    return prediction
