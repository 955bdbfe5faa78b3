"""A small, picklable description of a model: what to load, where, with which settings.

The napari widget and the batch command (including dask workers on other machines)
describe models this way and build them with :meth:`ModelSpec.load`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .devices import PRECISION_NAMES
from .families import ModelFamily, family_for
from .families.base import ByteReport
from .families.clip.family import register_model_configs
from .families.clip.methods import DenseMethod
from .loading import DEFAULT_WEIGHTS, load_model, method_for, resolve_pretrained
from .paths import absolute, is_weights_path
from .promptable import PromptableModel

__all__ = ["ModelSpec", "register_model_configs"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model anywhere: model name, weights, device, method.

    ``name`` is any name a model family claims (see :func:`~napari_gem.list_families`).
    ``pretrained`` is a weights tag or the path of a checkpoint file (made absolute,
    so it means the same file whatever the working directory); the default,
    :data:`~napari_gem.engine.loading.DEFAULT_WEIGHTS`, becomes the family's default weights
    on construction (so a spec always says which weights it means). ``model_configs`` are
    open_clip model-config JSON files (or folders of them) registered before loading,
    for custom architectures; a file's name (without ``.json``) is the model name.
    ``method_options`` are the method's options (a mapping; stored sorted as pairs so
    the spec stays hashable), validated on construction.
    """

    name: str = "ViT-B-16"
    pretrained: str | None = DEFAULT_WEIGHTS
    device: str = "auto"
    precision: str | None = None
    method: str | None = None  # None: the family's own (GEM for CLIPs, SimZSS for SimZSS)
    method_options: tuple[tuple[str, Any], ...] = field(default=())
    cache_dir: str | None = None
    model_configs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        options = self.method_options
        pairs = dict(options.items() if isinstance(options, Mapping) else options)
        object.__setattr__(
            self, "model_configs", tuple(absolute(path) for path in self.model_configs)
        )
        family = self.family
        object.__setattr__(self, "pretrained", resolve_pretrained(family, self.name, self.pretrained))
        method = None if self.method is None else str(self.method).strip().lower()
        dense_method = method_for(family, self.name, method, pairs)
        object.__setattr__(self, "method", dense_method.name if dense_method else family.default_method)
        # A family with its own dense features keeps its own options (its check_method checked them).
        complete = dense_method.options.to_dict() if dense_method else pairs
        # Every option spelled out, so equal settings make equal specs (and cache keys).
        object.__setattr__(self, "method_options", tuple(sorted(
            (key, tuple(value) if isinstance(value, list) else value) for key, value in complete.items()
        )))
        if self.pretrained is not None and Path(os.fspath(self.pretrained)).expanduser().exists():
            object.__setattr__(self, "pretrained", absolute(self.pretrained))

    @property
    def family(self) -> ModelFamily:
        """The model family that knows :attr:`name`."""
        return family_for(self.name)

    @property
    def is_file(self) -> bool:
        """Whether ``pretrained`` names a weights file rather than a tag."""
        return is_weights_path(self.pretrained)

    @property
    def uses_clip_method(self) -> bool:
        """Whether the model runs a registered CLIP dense method (its family says)."""
        return self.family.uses_clip_methods

    def dense_method(self) -> DenseMethod | None:
        """The CLIP method with its options (validated); None for families with their own."""
        return method_for(self.family, self.name, self.method, dict(self.method_options))

    def method_identity(self) -> tuple:
        """What identifies how features are made from the weights (method and options)."""
        return (self.method, self.method_options)

    def weights_key(self) -> tuple:
        """What identifies loaded weights (a rewritten checkpoint file counts as new)."""
        stamp: tuple = ()
        if self.is_file:
            path = Path(self.pretrained).expanduser()
            stat = path.stat() if path.is_file() else None
            stamp = (stat.st_mtime_ns, stat.st_size) if stat else ()
        return (self.name, self.pretrained, stamp, self.device, self.precision, self.cache_dir,
                self.model_configs)

    def features_key(self) -> tuple:
        """What identifies a loaded model and the features it computes: its weights, device and
        precision, its method and the method's or the family's own options (the model cache's key)."""
        return (*self.weights_key(), *self.method_identity())

    def describe(self) -> dict:
        description = asdict(self)
        description["model_configs"] = list(self.model_configs)
        description["method_options"] = dict(self.method_options)
        return description

    @classmethod
    def from_model(cls, model: PromptableModel) -> ModelSpec:
        """The spec that rebuilds ``model`` (one loaded with :func:`load_model`)."""
        if model.name is None:
            raise ValueError(
                "this model was built from a model object, so it cannot be rebuilt elsewhere; "
                "describe it with a ModelSpec (model name, weights, method) instead"
            )
        return cls(
            name=model.name,
            pretrained=model.pretrained,
            device=model.device.type,
            precision=PRECISION_NAMES.get(model.dtype, str(model.dtype).removeprefix("torch.")),
            method=model.method,
            method_options=model.describe().get("method_options", {}),
        )

    def fetch(self, report: ByteReport) -> None:
        """Check the request, then download what :meth:`load` needs into its family's cache,
        reporting ``(done, total)`` bytes (nothing to do when cached). Fails fast offline."""
        register_model_configs(self.model_configs)
        self.family.check(self.name, self.pretrained)
        self.family.fetch(self.name, self.pretrained, report, self.cache_dir)

    def load(self, loader: Callable[..., PromptableModel] = load_model) -> PromptableModel:
        """Build a new model (registering the extra model configs first): the one way from a spec
        to a model, used by the model cache of the widget and the batch. ``loader`` takes
        :func:`~napari_gem.load_model`'s arguments."""
        register_model_configs(self.model_configs)
        return loader(
            self.name, self.pretrained, device=self.device, precision=self.precision,
            cache_dir=self.cache_dir, method=self.method, method_options=dict(self.method_options),
        )
