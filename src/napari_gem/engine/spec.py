"""A small, picklable description of a model: what to load, where, with which settings.

The napari widget and the batch command (including dask workers on other machines)
describe models this way and build them with :meth:`ModelSpec.load`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .loading import ModelLoadError, default_method, load_model
from .methods import DenseMethod, create_method
from .promptable import PromptableModel

_PRECISION_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_registered_configs: set[str] = set()
_registering = threading.Lock()


def _absolute(path) -> str:
    return str(Path(os.fspath(path)).expanduser().absolute())


def register_model_configs(paths: tuple[str, ...]) -> None:
    """Add open_clip model-config JSON files (or folders of them), each once per process."""
    if not paths:
        return
    import open_clip

    with _registering:
        for path in paths:
            if path in _registered_configs:
                continue
            if not Path(path).exists():
                raise ModelLoadError(f"open_clip model config not found: {path}")
            open_clip.add_model_config(path)
            _registered_configs.add(path)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model anywhere: open_clip model, weights, device, method.

    ``pretrained`` is an open_clip tag or the path of a checkpoint file (made absolute,
    so it means the same file whatever the working directory). ``model_configs`` are
    open_clip model-config JSON files (or folders of them) registered before loading,
    for custom architectures; a file's name (without ``.json``) is the model name.
    ``method_options`` are the method's options (a mapping; stored sorted as pairs so
    the spec stays hashable), validated on construction.
    """

    name: str = "ViT-B-16"
    pretrained: str | None = "openai"
    device: str = "auto"
    precision: str | None = None
    method: str | None = None  # None: GEM, or SimZSS for a SimZSS model
    method_options: tuple[tuple[str, Any], ...] = field(default=())
    cache_dir: str | None = None
    model_configs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        options = self.method_options
        pairs = tuple(options.items() if isinstance(options, Mapping) else options)
        own_method = default_method(self.name)
        method = own_method if self.method is None else str(self.method).strip().lower()
        object.__setattr__(self, "method", method)
        if own_method == "simzss" or method == "simzss":
            if (method, own_method) != ("simzss", "simzss") or pairs:
                raise ModelLoadError(
                    f"method {method!r} with options {dict(pairs)} does not fit model {self.name!r}: "
                    "SimZSS models take no CLIP method and no method options"
                )
            complete = {}
        else:
            try:
                complete = self.dense_method().options.to_dict()
            except (TypeError, ValueError) as error:
                raise ModelLoadError(str(error)) from error
        # Every option spelled out, so equal settings make equal specs (and cache keys).
        object.__setattr__(self, "method_options", tuple(sorted(
            (key, tuple(value) if isinstance(value, list) else value) for key, value in complete.items()
        )))
        object.__setattr__(
            self, "model_configs", tuple(_absolute(path) for path in self.model_configs)
        )
        if self.pretrained is not None and Path(os.fspath(self.pretrained)).expanduser().exists():
            object.__setattr__(self, "pretrained", _absolute(self.pretrained))

    @property
    def is_file(self) -> bool:
        """Whether ``pretrained`` names a checkpoint file rather than an open_clip tag."""
        weights = self.pretrained or ""
        return os.sep in weights or "/" in weights or Path(weights).expanduser().is_file()

    @property
    def uses_clip_method(self) -> bool:
        """Whether the model is an open_clip CLIP run by a registered dense method."""
        return self.method != "simzss"

    def dense_method(self) -> DenseMethod:
        """The CLIP method with its options (validated)."""
        return create_method(self.method, **dict(self.method_options))

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
        """What identifies the features a model computes (weights, method and its options)."""
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
        precision = str(model.dtype).removeprefix("torch.")
        return cls(
            name=model.name,
            pretrained=model.pretrained,
            device=model.device.type,
            precision=_PRECISION_NAMES.get(precision, precision),
            method=model.method,
            method_options=model.describe().get("method_options", {}),
        )

    def load(self) -> PromptableModel:
        """Build a new model (registering the extra model configs first)."""
        register_model_configs(self.model_configs)
        return load_model(
            self.name, self.pretrained, device=self.device, precision=self.precision,
            cache_dir=self.cache_dir, method=self.method, **dict(self.method_options),
        )
