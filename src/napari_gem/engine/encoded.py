"""Encode a real image once, then ask it any number of prompts.

:func:`encode` prepares a 2D image of any dtype (contrast, RGB, resize or sliding
windows) and runs the vision tower; :class:`EncodedImage` keeps the dense features
and turns prompt lists into full-resolution heatmaps and masks without touching the
vision tower again (PAMR refinement, when asked for, reads the image again in tiles;
so do strokes, through the image's :class:`~.refine.StrokeRefiner`, made on first use).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from .errors import Cancelled, is_out_of_memory
from .exemplars import Box, check_boxes, exemplar_heatmap
from .image_windows import ImageWindows
from .maps import min_max, prompt_softmax, similarity_grid, upsample
from .options import SegmentOptions, stage_of
from .preprocess import (
    image_layout,
    intensity_map,
    model_input_size,
    resize_rgb,
    to_pixels,
    to_rgb,
)
from .promptable import PromptableModel
from .refine import StrokeRefiner
from .refinement import GuideReader, pamr_tiled
from .regions.encoding import RegionRun, prepare_regions
from .result import SegmentationResult, build_result
from .text import clean_prompts, resolve_templates
from .tiling import FeatureBlender, WindowPlan, plan_windows, read_window

ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


class EncodedImage:
    """Dense features of one 2D image (from the model's method), ready for any prompts."""

    def __init__(
        self,
        model: PromptableModel,
        options: SegmentOptions,
        image_shape: tuple[int, int],
        features: torch.Tensor,
        clip_embedding: torch.Tensor,
        covered_shape: tuple[int, int],
        num_windows: int,
        windows: ImageWindows | None = None,
        regions: RegionRun | None = None,
    ) -> None:
        self.model = model
        self.options = options
        self.image_shape = tuple(image_shape)
        self.features = features  # [gh, gw, E] float32
        self.clip_embedding = clip_embedding  # [E] float32, normalised
        self.covered_shape = tuple(covered_shape)  # pixels the grid spans (padded when tiled)
        self.num_windows = num_windows
        self.windows = windows  # the image read again (PAMR's guide, strokes); None: features only
        self.regions = regions  # region consistency's labels (None: off)
        self._refiner: StrokeRefiner | None = None  # made by the first refinement

    @property
    def image(self):
        """The encoded image (numpy or lazy; None for features only), for :meth:`save`'s check."""
        return None if self.windows is None else self.windows.image

    @property
    def read_guide(self) -> GuideReader | None:
        """Normalised image windows ``(y0, y1, x0, x1) -> [3, h, w]``, for PAMR (None without the image)."""
        return None if self.windows is None else self.windows.guide

    @property
    def nbytes(self) -> int:
        """Bytes this encoding holds: the features and embedding, and what its refiner keeps."""
        tensors = (self.features, self.clip_embedding)
        held = sum(int(t.numel() * t.element_size()) for t in tensors)
        return held + (self._refiner.nbytes if self._refiner is not None else 0)

    def refiner(self) -> StrokeRefiner:
        """This image's stroke refiner, made on first use (it owns the strokes' caches)."""
        if self._refiner is None:
            self._refiner = StrokeRefiner(self)
        return self._refiner

    @property
    def tiled(self) -> bool:
        return self.covered_shape != self.image_shape or self.num_windows > 1

    @property
    def grid_shape(self) -> tuple[int, int]:
        return tuple(self.features.shape[:2])

    @property
    def heatmap_cell(self) -> float:
        """The side of one feature-grid cell in image pixels (the scale of the heatmaps' detail)."""
        return float(np.mean(np.divide(self.covered_shape, self.grid_shape)))

    def similarity(self, prompts: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """Cosine similarity ``[P, gh, gw]`` of the features with each prompt."""
        text = self.model.encode_text(prompts, templates)
        return similarity_grid(self.features[None], text.to(self.features.device))[0]

    def _templates(self) -> tuple[str, ...]:
        return resolve_templates(self.options.templates, self.model.default_templates)

    def _full_size(self, grid_maps: torch.Tensor) -> torch.Tensor:
        """``[P, gh, gw]`` grid maps upsampled to float32 ``[P, H, W]`` on the CPU.

        Working per prompt into one preallocated array keeps the peak memory at the
        output plus a single full-size map, whatever the number of prompts.
        """
        height, width = self.image_shape
        out = torch.empty((grid_maps.shape[0], height, width), dtype=torch.float32)
        for index, grid_map in enumerate(grid_maps):
            out[index] = upsample(grid_map[None, None].float(), self.covered_shape)[0, 0, :height, :width]
        return out

    def _refined(self, grid_maps: torch.Tensor, options: SegmentOptions) -> torch.Tensor:
        """Full-size raw maps after PAMR (the reference order: upsample, refine, then score)."""
        if self.read_guide is None:
            raise ValueError("PAMR needs the image: this encoded image was made without it")
        return pamr_tiled(self._full_size(grid_maps), self.read_guide, options.pamr_steps,
                          options.pamr_dilations)

    def presence(self, prompts: Sequence[str], background_prompts: Sequence[str] = ()) -> np.ndarray:
        """Image-level presence ``[P]``: softmax of CLIP logits over prompts and background."""
        prompts, competitors = with_background(prompts, background_prompts)
        text = self.model.encode_text(competitors, self._templates()).to(self.clip_embedding.device)
        logits = (text @ self.clip_embedding)[:, None, None]
        return prompt_softmax(logits, self.model.logit_scale, dim=0)[: len(prompts), 0, 0].numpy()

    def heatmaps(
        self,
        prompts: Sequence[str] | str,
        *,
        score_mode: str | None = None,
        background_prompts: Sequence[str] | None = None,
        refine: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution heatmaps ``[P, H, W]`` in [0, 1] and presence scores ``[P]``.

        ``minmax``: the paper's per-prompt min-max of the similarity. ``calibrated``:
        softmax over prompts and background prompts at CLIP's logit scale, times the
        image-level presence, so an absent object stays dark. ``refine="pamr"`` refines
        the raw similarity at full resolution before either (steps and dilations from
        the options).
        """
        prompts = clean_prompts(prompts)
        mode = score_mode or self.options.score_mode
        refine = self.options.refine if refine is None else refine
        options = self.options.replace(score_mode=mode, refine=refine)
        background = self.options.background_prompts if background_prompts is None else background_prompts
        templates = self._templates()
        presence = self.presence(prompts, background)
        with torch.inference_mode():
            if mode == "minmax":
                grid = self.similarity(prompts, templates)
                raw = self._refined(grid, options) if refine == "pamr" else self._full_size(grid)
                maps = min_max(raw, inplace=True)
            else:
                _, competitors = with_background(prompts, background)
                grid = self.similarity(competitors, templates)
                # Unrefined scores are softmaxed on the grid and then upsampled (cheap);
                # PAMR needs the raw full-size similarity first, as its reference does.
                if refine == "pamr":
                    grid = self._refined(grid, options)
                probabilities = prompt_softmax(grid, self.model.logit_scale, dim=0)[: len(prompts)]
                gated = probabilities * torch.from_numpy(presence).to(grid.device)[:, None, None]
                maps = gated if refine == "pamr" else self._full_size(gated)
        return maps.numpy(), presence.astype(np.float32)

    def segment(self, prompts: Sequence[str] | str, *,
                exemplars: Mapping[str, Sequence[Box]] | None = None, **overrides) -> SegmentationResult:
        """Heatmaps, presence, masks, instances and the semantic map for ``prompts``.

        ``exemplars`` maps some of the prompts (e.g. ``"@examples"``) to boxes
        ``(y0, x0, y1, x1)`` around examples (rows first, napari's order; not SAM's or
        torchvision's ``(x0, y0, x1, y1)``): those prompts are answered by the boxes' mean
        dense feature ("more like this", :mod:`.exemplars`), not by their words; their
        heatmap is the min-max similarity map and their presence 1.
        """
        refuse_encode_options(self.options, overrides)
        options = self.options.replace(**overrides) if overrides else self.options
        prompts = clean_prompts(prompts)
        examples = {prompt: check_boxes(boxes, self.image_shape)
                    for prompt, boxes in (exemplars or {}).items()}
        unknown = sorted(set(examples) - set(prompts))
        if unknown:
            raise ValueError(f"exemplars name prompts that are not asked: {', '.join(unknown)}")
        words = [prompt for prompt in prompts if prompt not in examples]
        heatmaps, presence = self.heatmaps(
            words, score_mode=options.score_mode, background_prompts=options.background_prompts,
            refine=options.refine,
        ) if words else (np.zeros((0, *self.image_shape), np.float32), np.zeros(0, np.float32))
        if examples:
            heatmaps, presence = self._with_exemplar_maps(prompts, words, heatmaps, presence, examples)
        parameters = {
            "model": self.model.describe(),
            "options": options.to_dict(),
            "option_sources": options.sources(),
            "prompts": list(prompts),
            "image_shape": list(self.image_shape),
            "tiled": self.tiled,
            "num_windows": self.num_windows,
            "heatmap_cell": self.heatmap_cell,
        }
        if examples:
            parameters["exemplars"] = {prompt: [list(box) for box in boxes]
                                       for prompt, boxes in examples.items()}
        voting = self.regions is not None and options.region_vote
        return build_result(prompts, heatmaps, presence, options, parameters,
                            regions=self.regions.labels if voting else None)

    def _with_exemplar_maps(self, prompts, words, heatmaps, presence, examples):
        """The word prompts' heatmaps with each exemplar prompt's map put in its place."""
        answers = {word: (heatmap, score)
                   for word, heatmap, score in zip(words, heatmaps, presence, strict=True)}
        for prompt, boxes in examples.items():
            if not boxes:  # no example here (another plane's boxes): nothing found
                answers[prompt] = (np.zeros(self.image_shape, np.float32), 0.0)
                continue
            heatmap = exemplar_heatmap(self.features, boxes, self.covered_shape, self.image_shape)
            answers[prompt] = (heatmap, 1.0)
        return (np.stack([answers[prompt][0] for prompt in prompts]).astype(np.float32),
                np.array([answers[prompt][1] for prompt in prompts], dtype=np.float32))

    def save(self, path, *, feature_dtype: str = "float16", source: str | None = None):
        """Save the features to a zarr store that :func:`napari_gem.open_encoding` asks any
        prompt later (:mod:`.saved_encoding`: float16 unit vectors and their norms by
        default, ``feature_dtype="float32"`` for exact copies); returns the path."""
        from .saved_encoding import save_encoded

        return save_encoded(self, path, feature_dtype=feature_dtype, image=self.image, source=source)

    def refine(self, prompt: str | None, *, positive=None, negative=None,
               exemplars: Mapping[str, Sequence[Box]] | None = None, **segment_options) -> SegmentationResult:
        """``prompt``'s mask refined by strokes and example boxes (:meth:`.refine.StrokeRefiner.refine`).

        ``exemplars`` takes the form :meth:`segment` takes: ``{prompt: [(y0, x0, y1, x1), ...]}``
        (rows first, napari's order; not SAM's or torchvision's ``(x0, y0, x1, y1)``), keyed by
        the prompt refined (any one key with ``prompt=None``: the boxes alone).
        """
        return self.refiner().refine(prompt, positive=positive, negative=negative,
                                     exemplars=exemplars, **segment_options)


def refuse_unknown_options(overrides: Mapping) -> None:
    """Refuse a keyword that is no :class:`SegmentOptions` field, by name, with the field it may
    have meant (``thresold=`` -> "did you mean 'threshold'?")."""
    import dataclasses
    import difflib

    names = [field.name for field in dataclasses.fields(SegmentOptions)]
    unknown = [name for name in overrides if name not in names]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]!r}?)" if close else " (see napari_gem.SegmentOptions)"
        raise TypeError(f"unknown option {unknown[0]!r}{hint}")


def refuse_encode_options(encoded: SegmentOptions, overrides: Mapping) -> None:
    """Refuse an encode-stage option that differs from the encoding's: asking an encoded image
    cannot change how it was encoded (the result would record a value never used)."""
    refuse_unknown_options(overrides)
    changed = sorted(name for name, value in overrides.items()
                     if stage_of(name) == "encode" and getattr(encoded, name) != value)
    if changed:
        was = ", ".join(f"{name}={getattr(encoded, name)!r}" for name in changed)
        raise ValueError(
            f"{', '.join(changed)} {'is an encode option' if len(changed) == 1 else 'are encode options'}"
            f" (this image was encoded with {was}): encode the image again with the new value "
            "(encode(image, model, options.replace(...))) instead of passing it to segment")


def options_for(model: PromptableModel, options: SegmentOptions | None) -> SegmentOptions:
    """``options`` with ``model``'s defaults (its family's: e.g. the demo's input size) in every
    field the user did not choose."""
    from .loading import segment_defaults

    return (options or SegmentOptions()).with_model_defaults(segment_defaults(model.name))


def with_background(
    prompts: Sequence[str], background_prompts: Sequence[str]
) -> tuple[list[str], list[str]]:
    """``(prompts, prompts + background prompts)``, background deduplicated and not repeating a prompt."""
    prompts = list(prompts)
    extra = [b for b in dict.fromkeys(p.strip() for p in background_prompts) if b and b not in prompts]
    return prompts, prompts + extra


def should_tile(image_shape: tuple[int, int], options: SegmentOptions) -> bool:
    if options.tiling == "always":
        return True
    if options.tiling == "never":
        return False
    return max(image_shape) > options.tile_above


def _check_cancel(cancelled: CancelCheck | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("cancelled by the user")


def overview_embedding(image, mapping, model: PromptableModel, options: SegmentOptions) -> torch.Tensor:
    """CLIP embedding of the whole image, read with a stride so memory stays bounded."""
    height, width = image.shape[:2]
    step = max(1, math.floor(max(height, width) / (2 * options.input_size)))
    rgb = to_rgb(np.asarray(image[::step, ::step]), mapping)
    size = model_input_size(rgb.shape[:2], options.input_size, options.resize, model.patch_size)
    output = model.encode_image(to_pixels(resize_rgb(rgb, size))[None])
    return output.clip_embedding[0].float()


def _encode_whole(image, mapping, model: PromptableModel, options: SegmentOptions,
                  regions: RegionRun | None = None):
    rgb = to_rgb(np.asarray(image), mapping)
    size = model_input_size(rgb.shape[:2], options.input_size, options.resize, model.patch_size)
    try:
        pixels = to_pixels(resize_rgb(rgb, size))[None]
        output = regions.encode_whole(model, pixels) if regions else model.encode_image(pixels)
    except (RuntimeError, torch.OutOfMemoryError) as error:
        if not is_out_of_memory(error):
            raise
        raise MemoryError(
            f"out of memory on {model.device} at input size {size}: use a smaller input "
            "size, tiling, fp16/bf16 precision, or the CPU"
        ) from error
    return output.dense_features[0].float(), output.clip_embedding[0].float()


def _encode_batch(model: PromptableModel, pixels: torch.Tensor) -> torch.Tensor:
    """Dense features of a window batch; on out-of-memory, retry in halves."""
    try:
        return model.encode_image(pixels, with_clip_embedding=False).dense_features
    except (RuntimeError, torch.OutOfMemoryError) as error:
        if not is_out_of_memory(error):
            raise
        if model.device.type == "cuda":
            torch.cuda.empty_cache()
        if pixels.shape[0] == 1:
            raise MemoryError(
                f"out of memory on {model.device} for one {tuple(pixels.shape[-2:])} window: "
                "use a smaller window, fp16/bf16 precision, or the CPU"
            ) from error
        half = pixels.shape[0] // 2
        return torch.cat([_encode_batch(model, pixels[:half]), _encode_batch(model, pixels[half:])])


def _encode_windows(
    image, mapping, model: PromptableModel, plan: WindowPlan, options: SegmentOptions, progress, cancelled,
    regions: RegionRun | None = None,
) -> torch.Tensor:
    blender = FeatureBlender(plan, model.embed_dim, device=model.device)
    batches = list(plan.batches(options.window_batch))
    for done, starts in enumerate(batches, start=1):
        _check_cancel(cancelled)
        pixels = torch.stack([
            to_pixels(to_rgb(read_window(image, start, plan.window_shape), mapping))
            for start in starts
        ])
        encoded = (regions.encode_windows(model, pixels, starts, plan.window_shape)
                   if regions is not None and regions.attention else _encode_batch(model, pixels))
        for start, features in zip(starts, encoded, strict=True):
            blender.add(start, features)
        if progress is not None:
            progress(done, len(batches) + 1)
    return blender.result()


def encode(
    image,
    model: PromptableModel,
    options: SegmentOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancelled: CancelCheck | None = None,
    region_labels=None,
) -> EncodedImage:
    """One pass of the model's method over a 2D image (gray, RGB or RGBA; any dtype; numpy or lazy).

    Arguments in the order of :func:`segment`: the image, the model, the options, then keywords.

    Small images are resized to the model input (the paper's 448 x 448 square by
    default); images larger than ``options.tile_above`` are run in overlapping
    windows at their own resolution and blended. ``progress(done, total)`` is
    called as work completes; ``cancelled()`` is polled between steps and makes
    ``encode`` raise :class:`Cancelled`. ``region_labels``: the label image ``[H, W]`` of
    ``options.regions="labels"`` (region consistency, :mod:`.regions`).
    """
    from .arrays import as_image_array

    model, options = model_and_options(model, options)
    image = as_image_array(image)  # torch, lists, PIL, xarray...: see docs/api.md
    options = options_for(model, options)
    height, width, _ = image_layout(tuple(image.shape))
    if height < 1 or width < 1:
        raise ValueError(f"the image is empty (shape {tuple(image.shape)})")
    mapping = intensity_map(image, options.contrast, options.percentiles)
    regions = prepare_regions(image, mapping, model, options, region_labels)
    _check_cancel(cancelled)
    if should_tile((height, width), options):
        plan = plan_windows((height, width), options.window, options.overlap, model.patch_size)
        features = _encode_windows(image, mapping, model, plan, options, progress, cancelled, regions)
        _check_cancel(cancelled)
        embedding = overview_embedding(image, mapping, model, options)
        covered, count = plan.padded_shape, len(plan.starts)
    else:
        features, embedding = _encode_whole(image, mapping, model, options, regions)
        covered, count = (height, width), 1
    if progress is not None:
        progress(1, 1)
    return EncodedImage(model, options, (height, width), features, embedding, covered, count,
                        windows=ImageWindows(image, mapping), regions=regions)


def segment(
    image,
    prompts: Sequence[str] | str,
    model: PromptableModel | None = None,
    options: SegmentOptions | None = None,
    *,
    region_labels=None,
    exemplars: Mapping[str, Sequence[Box]] | None = None,
    **overrides,
) -> SegmentationResult:
    """Where is each prompt in ``image``? Heatmaps, masks and labels at the image's resolution.

    The arguments come in the order of :func:`encode` and :meth:`EncodedImage.refine`: the
    image, what to find, the model, the options; the rest by keyword. ``model`` defaults to
    :func:`~napari_gem.engine.loading.default_model` (ViT-B/16 with OpenAI weights, loaded
    once per process and kept); keyword ``overrides`` change single :class:`SegmentOptions`
    fields; ``region_labels`` is the label image of ``regions="labels"``; ``exemplars`` maps
    prompts (e.g. ``"@examples"``) to boxes ``(y0, x0, y1, x1)`` around examples, the
    rows-then-columns order of napari and numpy (not SAM's or torchvision's ``(x0, y0, x1, y1)``),
    as :meth:`EncodedImage.segment` takes them.
    """
    model, options = model_and_options(model, options)
    if model is None:
        from .loading import default_model

        model = default_model()
    refuse_unknown_options(overrides)
    options = (options or SegmentOptions()).replace(**overrides) if overrides else options
    prompts = clean_prompts(prompts)  # options not chosen take the model's defaults in encode
    return encode(image, model, options, region_labels=region_labels).segment(prompts, exemplars=exemplars)


def model_and_options(model, options) -> tuple[PromptableModel | None, SegmentOptions | None]:
    """``(model, options)``, also when a caller gave them the other way round (options in the
    model's place: an order some scripts used), which still works with a warning."""
    if isinstance(model, SegmentOptions) and not isinstance(options, SegmentOptions):
        from .deprecation import warn_deprecated

        warn_deprecated("passing the options before the model",
                        "the order (image, [prompts], model, options)", stacklevel=4)
        return options, model
    return model, options
