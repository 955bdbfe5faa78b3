"""Every knob of a segmentation run, in one serialisable dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .refinement import check_pamr_settings

RESIZE_MODES = ("square", "keep_aspect")
CONTRAST_MODES = ("auto", "percentile", "minmax", "none")
TILING_MODES = ("auto", "always", "never")
TEMPLATE_SETS = ("paper", "imagenet80")
SCORE_MODES = ("minmax", "calibrated")
REFINE_MODES = ("none", "pamr")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


@dataclass(frozen=True)
class SegmentOptions:
    """How an image is prepared, encoded, scored and turned into masks (see docs/api.md)."""

    input_size: int = 448
    resize: str = "square"
    contrast: str = "auto"
    percentiles: tuple[float, float] = (1.0, 99.8)
    tiling: str = "auto"
    tile_above: int = 2048
    window: int = 448
    overlap: int = 112
    window_batch: int = 4
    templates: str = "paper"
    score_mode: str = "minmax"
    background_prompts: tuple[str, ...] = ("background",)
    threshold: float | str | None = None
    min_size: int = 0
    fill_holes: int = 0
    background_threshold: float | None = None
    refine: str = "none"
    pamr_steps: int = 10
    pamr_dilations: tuple[int, ...] = (8, 16)

    def __post_init__(self) -> None:
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        _choice("refine", self.refine, REFINE_MODES)
        check_pamr_settings(self.pamr_steps, self.pamr_dilations)
        object.__setattr__(self, "pamr_dilations", tuple(int(d) for d in self.pamr_dilations))
        object.__setattr__(self, "background_prompts", tuple(self.background_prompts))
        _positive_int("input_size", self.input_size)
        _positive_int("window", self.window)
        _positive_int("window_batch", self.window_batch)
        _positive_int("tile_above", self.tile_above)
        _positive_int("overlap", self.overlap, minimum=0)
        _positive_int("min_size", self.min_size, minimum=0)
        _positive_int("fill_holes", self.fill_holes, minimum=0)
        _choice("resize", self.resize, RESIZE_MODES)
        _choice("contrast", self.contrast, CONTRAST_MODES)
        _choice("tiling", self.tiling, TILING_MODES)
        _choice("templates", self.templates, TEMPLATE_SETS)
        _choice("score_mode", self.score_mode, SCORE_MODES)
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100; got {self.percentiles}")
        if self.overlap >= self.window:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than window ({self.window})")
        if isinstance(self.threshold, str):
            _choice("threshold", self.threshold, ("otsu",))
        elif self.threshold is not None and not 0 <= float(self.threshold) <= 1:
            raise ValueError(f"threshold must be in [0, 1], 'otsu' or None; got {self.threshold!r}")
        if self.background_threshold is not None and not 0 <= self.background_threshold <= 1:
            raise ValueError("background_threshold must be in [0, 1] or None")

    def replace(self, **changes: Any) -> SegmentOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SegmentOptions:
        """Inverse of :meth:`to_dict`; unknown keys are an error (they are typos)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        return cls(**values)

    def encoding_key(self) -> tuple:
        """The fields that change the image encoding (cache key for encoded images)."""
        return tuple(getattr(self, name) for name in ENCODING_FIELDS)

    def scoring_fields(self) -> dict[str, Any]:
        """The fields that only change how an encoded image is scored and masked."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.name not in ENCODING_FIELDS}


#: The :class:`SegmentOptions` fields that change an image's encoding.
ENCODING_FIELDS = ("input_size", "resize", "contrast", "percentiles", "tiling", "tile_above",
                   "window", "overlap")
