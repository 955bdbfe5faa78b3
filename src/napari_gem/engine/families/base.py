"""What every model family is: a kind of model that napari-gem knows how to name, fetch and build.

A family answers, for the model names it claims: which names and weights tags to offer,
what ``pretrained`` means for them, whether the CLIP dense methods (GEM, NACLIP, ...)
apply and which method runs by default, and how to build a model. ``load_model``,
``ModelSpec``, the model cache, the widget and the command line ask the family; none of
them tests model names. Adding a family is one module that subclasses
:class:`ModelFamily` and decorates it with :func:`~.registry.register_family`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ModelLoadError
from ..promptable import PromptableModel

if TYPE_CHECKING:
    from .clip.methods import DenseMethod

#: ``report(done_bytes, total_bytes)`` while weights download; total is 0 when unknown.
ByteReport = Callable[[int, int], None]

#: What ``pretrained`` means for a family's models (the widget shows the fields to match).
WEIGHTS_TAG = "tag"  # a named tag the family knows, or a local weights file
WEIGHTS_FILE = "file"  # a local weights file only
WEIGHTS_PACKAGED = "packaged"  # weights ship with napari-gem; ``pretrained`` is ignored
WEIGHTS_KINDS = (WEIGHTS_TAG, WEIGHTS_FILE, WEIGHTS_PACKAGED)


@dataclass(frozen=True)
class CatalogueEntry:
    """One model as pickers and ``napari-gem models`` offer it."""

    name: str  # what load_model takes
    label: str  # what a picker shows
    group: str = "general"  # "general", "science", ... (pickers group by it)
    tooltip: str = ""  # one line: domain, licence, size
    family: str = ""
    pretrained: str | None = None  # the weights tag this entry means (None: the family's default)


@dataclass(frozen=True)
class LoadRequest:
    """One model to build: its name, weights, cache folder, and the dense method to run.

    ``dense_method`` is the CLIP method with its options, validated (the family's default
    method and option defaults already applied); ``None`` for families with their own
    dense features, which get their own options (checked by their ``check_method``) as
    ``options``. Families build on the CPU in float32; :func:`~napari_gem.load_model`
    then moves the model to its device and precision.
    """

    name: str
    pretrained: str | None
    cache_dir: str | None = None
    dense_method: DenseMethod | None = None
    options: dict[str, Any] = field(default_factory=dict)


class ModelFamily(ABC):
    """One kind of model: how its names look, what its weights are, and how to build it."""

    #: Registry name ("open_clip", "simzss", ...).
    name: ClassVar[str]
    #: Name to show people.
    title: ClassVar[str]
    #: One line on what these models are.
    summary: ClassVar[str]
    #: Whether the registered CLIP dense methods (GEM, NACLIP, ...) run on its models.
    uses_clip_methods: ClassVar[bool] = True
    #: The method its models run when none is named.
    default_method: ClassVar[str] = "gem"
    #: What ``pretrained`` means: one of :data:`WEIGHTS_KINDS`.
    weights: ClassVar[str] = WEIGHTS_TAG
    #: Families are asked in increasing priority; a family that claims any name asks last.
    priority: ClassVar[int] = 0
    #: Its own options (a dataclass described with ``described.option``) where it makes its
    #: own dense features and takes options; the command line offers them as flags.
    own_options: ClassVar[type | None] = None

    @abstractmethod
    def claims(self, name: str) -> bool:
        """Whether ``name`` is one of this family's models (cheap: no download, no model build)."""

    def model_names(self) -> list[str]:
        """The names to offer in pickers (not necessarily every name the family claims)."""
        return []

    def display_name(self, name: str) -> str:
        """How a picker labels ``name``."""
        return name

    def catalogue(self) -> list[CatalogueEntry]:
        """The models to offer, grouped for pickers (by default :meth:`model_names`, "general")."""
        return [CatalogueEntry(name, self.display_name(name), "general", self.summary, self.name)
                for name in self.model_names()]

    def pretrained_tags(self, name: str) -> list[str]:
        """The named weights ``name`` can load (empty when only files or packaged weights apply)."""
        return []

    def default_pretrained(self, name: str) -> str | None:
        """The weights a model gets when the user names none."""
        tags = self.pretrained_tags(name)
        return tags[0] if tags else None

    def weights_hint(self, name: str) -> str:
        """What to give as ``pretrained`` when the family has no default weights for ``name``."""
        return "a weights tag or the path of a checkpoint file"

    def weights_note(self, name: str, pretrained: str | None) -> str:
        """How these weights run when the name alone does not say (``QuickGELU, runs as
        ViT-B-16-quickgelu``); empty when there is nothing to add."""
        return ""

    def method_defaults(self, method: str) -> dict[str, Any]:
        """Option defaults this family's models need for ``method`` (e.g. a shallower GEM depth)."""
        return {}

    def segment_defaults(self, name: str) -> dict[str, Any]:
        """:class:`~napari_gem.SegmentOptions` values that suit ``name`` (e.g. its input size)."""
        return {}

    def check(self, name: str, pretrained: str | None) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~napari_gem.engine.errors.ModelLoadError` for a request that cannot work,
        before anything is downloaded (an unknown name or tag, a missing file)."""

    @abstractmethod
    def build(self, request: LoadRequest) -> PromptableModel:
        """The model, on the CPU in float32, in eval mode with gradients off.

        Raises :class:`~napari_gem.engine.errors.ModelLoadError` with a message fit for a
        user on any failure.
        """

    def is_cached(self, name: str, pretrained: str | None,
                  cache_dir: str | os.PathLike | None = None) -> bool:
        """Whether building needs no download (files and packaged weights: always)."""
        return True

    def fetch(  # noqa: B027 - optional hook
        self, name: str, pretrained: str | None, report: ByteReport,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        """Download what :meth:`build` needs into its cache, reporting bytes (no-op when cached).

        ``report`` may raise :class:`~napari_gem.engine.errors.Cancelled` to stop.
        """

    def check_method(self, name: str, method: str | None, options: dict[str, Any]) -> None:
        """Refuse a CLIP method or CLIP options for a family that makes its own dense features."""
        if not self.uses_clip_methods:
            refuse_foreign_method(self.title, self.default_method, name, method, options)

    def describe(self) -> dict[str, Any]:
        return {"family": self.name, "title": self.title, "summary": self.summary,
                "uses_clip_methods": self.uses_clip_methods, "default_method": self.default_method,
                "weights": self.weights}

    def __repr__(self) -> str:
        return f"<model family {self.name!r}>"


def refuse_foreign_method(title: str, own_method: str, name: str, method: str | None,
                          options: dict[str, Any]) -> None:
    """Raise :class:`ModelLoadError` when ``method`` or ``options`` are not ``own_method``'s own."""
    if method not in (None, own_method):
        raise ModelLoadError(
            f"{name} is a {title} model: method {method!r} does not apply ({title} models take "
            f"no CLIP method and no method options: they make their own dense features)"
        )
    if options:
        raise ModelLoadError(
            f"option(s) {', '.join(sorted(options))} do not apply to {title} {name} ({title} "
            "models take no CLIP method and no method options; those are settings of GEM and "
            "the CLIP methods)"
        )
