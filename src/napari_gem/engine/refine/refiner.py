"""The stroke room: one encoded image's refiner, made on first use, and everything it keeps.

:class:`StrokeRefiner` is made from an :class:`~napari_gem.engine.encoded.EncodedImage` the
first time a refinement asks for it (``encoded.refiner()``); ``encode`` builds none of its
inputs. It keeps the stroke classifier's per-image inputs between strokes (the image's small
copy and its filters, the dense features' principal components, the candidate objects, the
last text priors) and says how many bytes they hold (:attr:`StrokeRefiner.nbytes`), so a
cache budget (the plugin's) counts them with the features.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass

import numpy as np
import torch

from ..exemplars import Box, boxes_of, check_boxes
from ..maps import upsample
from ..result import SegmentationResult, build_result
from ..text import clean_prompts
from .classifier import fit_predict, image_filters, standardised
from .detail import refine_windows
from .object_labels import DEFAULT_OBJECTS, ObjectDecisions, RefineOptions, apply_decisions, decide_objects
from .objects import build_candidates
from .pixels import (
    EXEMPLAR_PROMPT,
    FEATURE_COMPONENTS,
    INPUTS,
    assemble,
    check_strokes,
    on_working_grid,
    prior_map,
    refine_parameters,
    resize,
    training_set,
    working_shape,
)

#: Text priors (one full-size result each) kept between strokes.
CACHED_PRIORS = 2


class StrokeRefiner:
    """Refines one encoded image's masks from strokes and example boxes; owns their caches."""

    def __init__(self, encoded) -> None:
        self.encoded = encoded
        self._kept: dict[tuple, object] = {}  # the classifier's per-image inputs, by kind (and key)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this refiner keeps (what a cache budget must count)."""
        return sum(_nbytes(value) for value in self._kept.values())

    def clear(self) -> None:
        """Let every kept input go (they are built again when a refinement asks)."""
        self._kept.clear()

    def refine(
        self,
        prompt: str | None,
        *,
        positive=None,
        negative=None,
        exemplars: Mapping[str, Sequence[Box]] | None = None,
        inputs: Sequence[str] = INPUTS,
        objects: str = DEFAULT_OBJECTS,
        object_prior: bool = True,
        **segment_options,
    ) -> SegmentationResult:
        """``prompt``'s mask refined by strokes and example boxes.

        ``positive``/``negative``: boolean masks of the image's shape (painted "this is it" /
        "this is not"). ``exemplars``: ``{prompt: [(y0, x0, y1, x1), ...]}`` as :func:`segment`
        takes them (rows first, napari's order; not SAM's or torchvision's), keyed by the prompt
        refined (any one key with ``prompt=None``), boxes around examples; with a
        prompt, the prior is the mean of the text heatmap and the exemplars' map (both
        min-max); with ``prompt=None``, the exemplars alone. ``inputs``: which of
        :data:`.pixels.INPUTS` the classifier sees. ``objects``: the object stage's labeller
        (:class:`.object_labels.RefineOptions`; ``"off"``: the pixel classifier alone); with
        ``object_prior`` (and the prior among the inputs) unlabelled objects are soft examples
        of their prior. With no strokes and no exemplars the result is ``encoded.segment(prompt)``.
        """
        encoded = self.encoded
        unknown = [name for name in inputs if name not in INPUTS]
        if unknown or not inputs:
            raise ValueError(f"inputs must be a non-empty subset of {INPUTS}; got {tuple(inputs)}")
        settings = RefineOptions(objects=objects)
        positive, negative = check_strokes(positive, negative, encoded.image_shape)
        boxes = check_boxes(boxes_of(prompt, exemplars) or (), encoded.image_shape)
        if prompt is None and not boxes:
            raise ValueError("refine needs a prompt, exemplar boxes, or both")
        options = encoded.options.replace(**segment_options) if segment_options else encoded.options
        has_strokes = bool(positive.any() or negative.any())
        base = None
        if prompt is not None:
            prompt = clean_prompts(prompt)[0]
            base = self._text_result(prompt, segment_options)
            if not has_strokes and not boxes:
                return copy.deepcopy(base)
        prior, presence = prior_map(encoded, base, boxes)
        name = prompt if prompt is not None else EXEMPLAR_PROMPT
        parameters = refine_parameters(encoded, options, name, positive, negative, boxes, inputs)
        parameters["refine"]["objects"] = settings.objects
        if not has_strokes:
            return build_result([name], prior[None], presence, options, parameters)
        prior_key = (name, repr(sorted(segment_options.items())), tuple(boxes))
        small_prior = self._remember("small prior", prior_key,
                                     lambda: resize(prior, working_shape(encoded.image_shape)))
        stage = ObjectStage(settings.objects, object_prior and "prior" in inputs)
        probability = self._probability(prior, small_prior, options, positive, negative, inputs, stage)
        if stage.decisions is not None:
            parameters["refine"]["object_stage"] = {"candidates": len(stage.decisions.scores),
                                                    "kept": stage.decisions.kept,
                                                    "removed": stage.decisions.removed}
        return assemble(name, probability, presence, options, parameters, positive, negative)

    # -- what a refinement builds once per image ---------------------------------------------------
    def thumbnail(self) -> np.ndarray:
        """The image as RGB in [0, 1] at :func:`.pixels.working_shape`, read with a stride."""
        return self._once("thumbnail", self._read_thumbnail)

    def filters(self) -> np.ndarray:
        """Multiscale intensity, edge and texture filters of the thumbnail ``[h * w, F]``."""
        def build():
            filters = image_filters(self.thumbnail())
            return filters.reshape(-1, filters.shape[-1])
        return self._once("filters", build)

    def reduced_grid(self) -> torch.Tensor:
        """The dense features' first principal components on the patch grid ``[C, gh, gw]`` (unit std)."""
        return self._once("reduced grid", lambda: _reduced_grid(self.encoded.features))

    def feature_columns(self, shape: tuple[int, int]) -> np.ndarray:
        """The dense features' principal components, upsampled to the working grid ``[h * w, C]``."""
        def build():
            reduced = self.reduced_grid()
            height, width = self.encoded.image_shape
            scale = shape[0] / height, shape[1] / width
            covered = (max(1, round(self.encoded.covered_shape[0] * scale[0])),
                       max(1, round(self.encoded.covered_shape[1] * scale[1])))
            grid = upsample(reduced[None], covered)[0, :, : shape[0], : shape[1]]
            return grid.permute(1, 2, 0).reshape(-1, reduced.shape[0]).numpy().astype(np.float32)
        return self._once("features", build)

    def candidates(self, shape: tuple[int, int], inputs: Sequence[str]):
        """The image's candidate objects (:func:`.objects.build_candidates`) on the working grid."""
        def build():
            cell = self.encoded.heatmap_cell * shape[0] / self.encoded.image_shape[0]
            features = self.feature_columns(shape) if "features" in inputs else None
            filters = self.filters() if "filters" in inputs else None
            return build_candidates(self.thumbnail(), cell, features, filters)
        return self._once(f"objects {'features' in inputs} {'filters' in inputs}", build)

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """A window of the image as RGB in [0, 1], read again at full resolution (:mod:`.detail`)."""
        return self._windows().read(y0, y1, x0, x1)

    # -- inside ---------------------------------------------------------------------------------
    def _windows(self):
        windows = self.encoded.windows
        if windows is None:
            raise ValueError("the image filters need the image: this encoded image was made without it")
        return windows

    def _read_thumbnail(self) -> np.ndarray:
        from skimage.transform import resize as resize_image

        image_shape = self.encoded.image_shape
        shape = working_shape(image_shape)
        step = max(1, min(image_shape[0] // shape[0], image_shape[1] // shape[1]) // 2)
        rgb = self._windows().strided(step)
        return resize_image(rgb, shape, anti_aliasing=True, preserve_range=True).astype(np.float32)

    def _text_result(self, prompt: str, segment_options: dict) -> SegmentationResult:
        """``encoded.segment([prompt])``, kept for the next strokes on the same prompt.

        The text prior does not change between strokes; only the last :data:`CACHED_PRIORS`
        prompts are kept, so memory stays a few full-size maps.
        """
        return self._remember("segment", (prompt, repr(sorted(segment_options.items()))),
                              lambda: self.encoded.segment([prompt], **segment_options))

    def _once(self, kind: str, build: Callable):
        """``build()``, kept under ``kind`` for every later refinement of this image."""
        if (kind,) not in self._kept:
            self._kept[(kind,)] = build()
        return self._kept[(kind,)]

    def _remember(self, kind: str, key: tuple, build: Callable):
        """``build()``, kept under ``(kind, *key)``; the last :data:`CACHED_PRIORS` of a kind."""
        key = (kind, *key)
        if key not in self._kept:
            kept = [k for k in self._kept if k[0] == kind]  # oldest first
            for old in kept[: max(0, len(kept) - CACHED_PRIORS + 1)]:
                del self._kept[old]
            self._kept[key] = build()
        return self._kept[key]

    def _probability(self, prior, small_prior, options, positive, negative, inputs,
                     stage: ObjectStage) -> np.ndarray:
        """The classifier's probability of the prompt at the image's resolution."""
        encoded = self.encoded
        shape = working_shape(encoded.image_shape)
        columns = self._input_columns(small_prior, shape, inputs)
        uses_prior = "prior" in inputs
        likeness = (self._once("standard filters", lambda: standardised(self.filters()))
                    if uses_prior and encoded.windows is not None else None)
        rows, labels, weights = training_set(encoded.image_shape, shape, positive, negative,
                                             small_prior if uses_prior else None, options, likeness)
        stage.decide(self, shape, small_prior, positive, negative, inputs)
        scores = stage.score_column()
        if scores is not None:  # the trees see each pixel's object score too (as ilastik's autocontext)
            columns = np.concatenate([columns, scores], axis=1)
        one_class = len(np.unique(labels)) < 2
        if one_class:
            small = np.full(shape, float(labels[0]), dtype=np.float32)
        else:
            small = fit_predict(columns, rows, labels, weights).reshape(shape)
        small = stage.apply(small, one_class, uses_prior)
        probability = resize(small, encoded.image_shape)
        if self._reads_detail(shape):
            refine_windows(self, probability, prior=prior, positive=positive, negative=negative,
                           inputs=inputs, coarse_shape=shape)
        return probability

    def _reads_detail(self, shape) -> bool:
        """A tiled image whose working grid is coarser than its pixels reads the stroked windows again."""
        encoded = self.encoded
        return encoded.tiled and tuple(shape) != tuple(encoded.image_shape) and encoded.windows is not None

    def _input_columns(self, small_prior, shape, inputs) -> np.ndarray:
        """Per working pixel, the chosen inputs side by side ``[h * w, C]`` (float32)."""
        parts = []
        if "features" in inputs:
            parts.append(self.feature_columns(shape))
        if "filters" in inputs:
            parts.append(self.filters())
        if "prior" in inputs:
            parts.append(small_prior.reshape(-1, 1))
        return np.concatenate(parts, axis=1)


class ObjectStage:
    """What the object stage of one refinement does (``mode``), and what it decided."""

    def __init__(self, mode: str, soft_prior: bool) -> None:
        self.mode = mode
        self.soft_prior = soft_prior
        self.candidates = None
        self.decisions: ObjectDecisions | None = None
        self.positive: np.ndarray | None = None  # the positive strokes on the working grid

    def decide(self, refiner: StrokeRefiner, shape, small_prior, positive, negative, inputs) -> None:
        """Decide every candidate object of the refiner's image from the strokes (nothing when ``off``)."""
        image_shape = refiner.encoded.image_shape
        if self.mode == "off" or refiner.encoded.windows is None:
            return
        self.candidates = refiner.candidates(shape, inputs)
        on_grid = [on_working_grid(strokes, image_shape, shape) for strokes in (positive, negative)]
        self.decisions = decide_objects(self.candidates, small_prior if "prior" in inputs else None,
                                        *on_grid, self.mode, self.soft_prior)
        self.positive = on_grid[0]

    def score_column(self) -> np.ndarray | None:
        """Per working pixel, its object's score (0.5 outside every candidate) ``[h * w, 1]``."""
        if self.decisions is None:
            return None
        lookup = np.concatenate([[0.5], self.decisions.scores]).astype(np.float32)
        return lookup[self.candidates.labels].reshape(-1, 1)

    def apply(self, small: np.ndarray, one_class: bool, uses_prior: bool) -> np.ndarray:
        """The working-size probability ``small`` with every candidate object decided."""
        if self.decisions is None:
            return small
        if one_class and not uses_prior:
            # One class painted and no text: the trees learnt nothing, the objects say it all.
            small = np.zeros_like(small)
        return apply_decisions(small, self.candidates, self.decisions, self.positive)


def _reduced_grid(features: torch.Tensor) -> torch.Tensor:
    features = features.float().cpu()
    gh, gw, dim = features.shape
    flat = features.reshape(-1, dim)
    flat = flat - flat.mean(0, keepdim=True)
    components = min(FEATURE_COMPONENTS, *flat.shape)
    _, _, basis = torch.linalg.svd(flat, full_matrices=False)
    reduced = (flat @ basis[:components].T).reshape(gh, gw, components)
    return (reduced / reduced.std().clamp_min(1e-6)).permute(2, 0, 1).contiguous()


def _nbytes(value) -> int:
    """Bytes of the arrays inside ``value`` (arrays, tensors, dataclasses, results, containers)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, torch.Tensor):
        return int(value.numel() * value.element_size())
    if isinstance(value, dict):
        return sum(_nbytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(item) for item in value)
    if is_dataclass(value):
        return sum(_nbytes(getattr(value, field.name)) for field in fields(value))
    return 0
