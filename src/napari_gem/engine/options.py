"""Every knob of a segmentation run, in one serialisable dataclass."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from .described import check_described, describe, encoding_names, option
from .instances import INSTANCE_MODES
from .refinement import check_pamr_settings
from .regions.sources import available_choices, get_source

#: The choices of each option, with the labels people see.
RESIZE_MODES = ("square", "keep_aspect")
CONTRAST_MODES = ("auto", "percentile", "minmax", "none")
TILING_MODES = ("auto", "always", "never")
TEMPLATE_SETS = ("paper", "imagenet80")
SCORE_MODES = ("minmax", "calibrated")
REFINE_MODES = ("none", "pamr")
_TEMPLATE_CHOICES = (("paper: 'a photo of a {}.'", "paper"), ("ImageNet 80-template ensemble", "imagenet80"))
_REGION_CHOICES = (("none", "none"), *available_choices())
_REGION_PROXIES = (("DINO ViT-B/8 (CorrCLIP's)", "dino-b8"), ("DINO ViT-B/16", "dino-b16"))
_SCORE_CHOICES = (("paper: min-max per prompt", "minmax"),
                  ("calibrated against background prompts", "calibrated"))


@dataclass(frozen=True)
class SegmentOptions:
    """How an image is prepared, encoded, scored and turned into masks (see docs/api.md).

    Each field is described once (label, help, range, choices); the widget's fields and
    the command line's flags are built from those descriptions.
    """

    input_size: int = option(448, kind="int", label="input size", minimum=1, maximum=4096, step=16,
                             help="model input side in pixels", stage="encode")
    resize: str = option("square", kind="choice", label="resize", choices=RESIZE_MODES,
                         help="square: ignore the aspect ratio, as the paper; keep_aspect", stage="encode")
    contrast: str = option("auto", kind="choice", label="contrast", choices=CONTRAST_MODES,
                           help="intensity scaling: auto (uint8 as is, other types by percentiles), "
                           "percentile, minmax, none", stage="encode")
    percentiles: tuple[float, float] = option((1.0, 99.8), kind="floats", label="percentiles",
                                              in_form=False, help="percentiles for contrast scaling",
                                              stage="encode")
    tiling: str = option("auto", kind="choice", label="tiling", choices=TILING_MODES,
                         help="sliding windows at full resolution: auto (above tile above), always, never",
                         stage="encode")
    tile_above: int = option(2048, kind="int", label="tile above (px)", minimum=1, maximum=1_000_000,
                             help="side above which auto tiling starts", stage="encode")
    window: int = option(448, kind="int", label="window (px)", minimum=1, maximum=8192, step=16,
                         help="sliding-window side", stage="encode")
    overlap: int = option(112, kind="int", label="overlap (px)", minimum=0, maximum=8192, step=16,
                          help="overlap of neighbouring windows", stage="encode")
    window_batch: int = option(4, kind="int", label="windows per batch", minimum=1, maximum=256,
                               help="windows per forward pass", stage="encode", keyed=False)
    templates: str = option("paper", kind="choice", label="templates", choices=_TEMPLATE_CHOICES,
                            help="prompt templates: paper ('a photo of a {}.') or imagenet80", stage="score")
    score_mode: str = option("minmax", kind="choice", label="scores", choices=_SCORE_CHOICES,
                             help="minmax: the paper's per-image min-max heatmaps; calibrated: "
                             "probabilities against the background prompts, so absent objects stay dark",
                             stage="score")
    background_prompts: tuple[str, ...] = option(("background",), kind="texts", label="background prompts",
                                                 flag="background",
                                                 help="comma-separated background prompts for "
                                                 "calibrated scores", stage="score")
    threshold: float | str | None = option(None, kind="float", label="threshold", auto="auto",
                                           minimum=0.0, maximum=1.0, step=0.01, custom=True,
                                           help="mask threshold in [0, 1], otsu, or auto (Otsu for "
                                           "minmax, 0.5 for calibrated)", stage="mask")
    min_size: int = option(0, kind="int", label="min object (px)", minimum=0, maximum=100_000_000,
                           help="remove objects smaller than this", stage="mask")
    fill_holes: int = option(0, kind="int", label="fill holes (px)", minimum=0, maximum=100_000_000,
                             help="fill holes up to this size", stage="mask")
    instances: str = option("watershed", kind="choice", label="objects", choices=INSTANCE_MODES,
                            help="how a mask becomes objects: watershed (touching objects split at "
                            "the heatmap's peaks) or components (connected regions)", stage="mask")
    background_threshold: float | None = option(None, kind="float", label="background threshold",
                                                auto="none", minimum=0.0, maximum=1.0, in_form=False,
                                                help="pixels whose best score is below it are background",
                                                stage="mask")
    refine: str = option("none", kind="toggle", label="refine edges (PAMR)", choices=REFINE_MODES,
                         help="refine the heatmaps along image edges with PAMR, as NACLIP and SCLIP "
                         "use it (slower on large images)", stage="refine")
    pamr_steps: int = option(10, kind="int", label="PAMR steps", minimum=1, maximum=100,
                             help="PAMR iterations", stage="refine")
    pamr_dilations: tuple[int, ...] = option((8, 16), kind="ints", label="PAMR dilations",
                                             help="PAMR neighbourhood dilations in pixels", stage="refine")
    # Region consistency (CorrCLIP, vfm-methods-spec §3; docs/methods.md): see engine/regions.
    regions: str = option("none", kind="choice", label="regions", choices=_REGION_CHOICES,
                          help="region consistency: regions inside which the result must agree: "
                          "none, slic (superpixels), labels (a Labels layer; --regions-labels FILE), "
                          "or an installed mask generator (sam2)", stage="encode")
    regions_labels: str | None = option(
        None, kind="texts", label="regions labels file", in_form=False, noun="file path",
        example=("nuclei.tif",), help="the label image (TIFF, PNG; 0 = no region) of regions=labels",
        stage="encode", needs="regions")
    region_vote: bool = option(True, kind="bool", label="majority vote in regions",
                               help="regions: each region takes the class most of its pixels have",
                               stage="mask")
    region_attention: bool = option(False, kind="bool", label="region attention (needs DINO)",
                                    help="regions: CorrCLIP's last block, attention restricted to "
                                    "regions merged by DINO features (replaces the method's last "
                                    "block; needs the DINO weights)", stage="encode", needs="regions")
    region_proxy: str = option("dino-b8", kind="choice", label="region attention model",
                               choices=_REGION_PROXIES, help="regions: the DINO whose q + k features "
                               "merge the regions and weigh the attention", stage="encode", needs="regions")
    region_tau: float = option(4.0, kind="float", label="region attention τ", minimum=0.01, maximum=100.0,
                               in_form=False, help="regions: temperature of the restricted attention",
                               stage="encode", needs="regions")
    region_eps: float = option(0.2, kind="float", label="region merging eps", minimum=0.0, maximum=2.0,
                               in_form=False, help="regions: DBSCAN eps of the merging of regions",
                               stage="encode", needs="regions")
    region_merge: bool = option(True, kind="bool", label="merge similar regions", in_form=False,
                                help="regions: merge regions whose mean DINO features are alike (DBSCAN)",
                                stage="encode", needs="regions")
    slic_segments: int = option(400, kind="int", label="superpixels", minimum=2, maximum=1_000_000,
                                help="regions=slic: about how many superpixels",
                                stage="encode", needs="regions")
    slic_side: int = option(384, kind="int", label="superpixel side (px)", minimum=16, maximum=100_000,
                            in_form=False, help="regions=slic: SLIC runs on a copy at most this wide",
                            stage="encode", needs="regions")

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions_labels", _one_path(self.regions_labels))
        if self.regions != "none":
            get_source(self.regions)  # names an unknown or unavailable source clearly
        for name in ("region_tau", "region_eps"):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 <= value < float("inf") or (name == "region_tau" and value == 0):
                raise ValueError(f"{name} must be a positive number; got {value!r}")
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        check_pamr_settings(self.pamr_steps, self.pamr_dilations)
        object.__setattr__(self, "pamr_dilations", tuple(int(d) for d in self.pamr_dilations))
        object.__setattr__(self, "background_prompts", tuple(self.background_prompts))
        if isinstance(self.threshold, str):
            if self.threshold != "otsu":
                raise ValueError(f"threshold must be one of otsu; got {self.threshold!r}")
        elif self.threshold is not None and not 0 <= float(self.threshold) <= 1:
            raise ValueError(f"threshold must be in [0, 1], 'otsu' or None; got {self.threshold!r}")
        if self.background_threshold is not None and not 0 <= self.background_threshold <= 1:
            raise ValueError("background_threshold must be in [0, 1] or None")
        check_described(self)
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100; got {self.percentiles}")
        if self.overlap >= self.window:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than window ({self.window})")

    def replace(self, **changes: Any) -> SegmentOptions:
        """A copy with some fields changed (validated again); the changed ones count as given."""
        copy = dataclasses.replace(self, **changes)
        _remember(copy, self.given | set(changes), self.from_model - set(changes))
        return copy

    @property
    def given(self) -> frozenset[str]:
        """The fields the user chose (passed when made, or by :meth:`replace`)."""
        return self.__dict__.get("_given", frozenset())

    @property
    def from_model(self) -> frozenset[str]:
        """The fields that hold a model's default (see :meth:`with_model_defaults`)."""
        return self.__dict__.get("_from_model", frozenset())

    def with_model_defaults(self, defaults: dict[str, Any]) -> SegmentOptions:
        """A copy where a model's option defaults replace the engine's, for every field the
        user did not choose (an explicit option always wins)."""
        applied = {name: value for name, value in defaults.items() if name not in self.given}
        copy = dataclasses.replace(self, **applied)
        _remember(copy, self.given, self.from_model | set(applied))
        return copy

    def as_given(self, names) -> SegmentOptions:
        """The same values, with ``names`` as the fields the user chose (a form's changed fields)."""
        copy = dataclasses.replace(self)
        _remember(copy, frozenset(names), self.from_model - set(names))
        return copy

    def sources(self) -> dict[str, str]:
        """Where each value came from: ``user``, ``model default`` or ``engine default``."""
        return {field.name: "user" if field.name in self.given
                else "model default" if field.name in self.from_model else "engine default"
                for field in dataclasses.fields(self)}

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
        """The values of the options that change the image encoding (the cache key of encoded
        images): the encode-stage options, the region ones only while regions are on."""
        return tuple((name, getattr(self, name)) for name in encoding_names(self))

    def scoring_fields(self) -> dict[str, Any]:
        """The options an encoded image answers without encoding again (score, mask, refine)."""
        return {item.name: getattr(self, item.name) for item in describe(type(self))
                if item.stage != "encode"}


def stage_of(name: str) -> str | None:
    """The stage of a :class:`SegmentOptions` option (encode, score, mask, refine; None: no such option)."""
    return _STAGES.get(name)


_STAGES = {item.name: item.stage for item in describe(SegmentOptions)}
_dataclass_init = SegmentOptions.__init__


def _init_remembering_given(self, *args, **kwargs) -> None:
    # Which fields the caller chose is what lets a model's defaults fill in the others
    # (the dataclass's own __init__ cannot tell a default from an equal explicit value).
    _dataclass_init(self, *args, **kwargs)
    names = [field.name for field in dataclasses.fields(SegmentOptions)]
    _remember(self, set(names[: len(args)]) | set(kwargs), frozenset())


SegmentOptions.__init__ = _init_remembering_given  # type: ignore[method-assign]


def _remember(options: SegmentOptions, given, from_model) -> None:
    object.__setattr__(options, "_given", frozenset(given))
    object.__setattr__(options, "_from_model", frozenset(from_model))


def _one_path(value) -> str | None:
    """A path from a string, a path-like, or the text parts a flag gives (split at commas)."""
    if isinstance(value, (tuple, list)):
        value = ",".join(str(part) for part in value)
    if value is None:
        return None
    return str(os.fspath(value)).strip() or None
