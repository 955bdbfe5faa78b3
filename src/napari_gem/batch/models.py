"""Which model a batch runs, and loading it once per process (driver or dask worker).

A :class:`ModelSpec` is a small, picklable description of a model: dask workers in
other processes or on other machines rebuild the same GEM from it. Each process keeps
the models it has loaded, keyed by their spec, so a worker loads a model only once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import GEM, load_model

_loaded: dict[ModelSpec, GEM] = {}
_loading = threading.Lock()  # worker threads share the cache: load each model once
_registered_configs: set[str] = set()

_PRECISION_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a GEM anywhere: open_clip model, weights, device, settings.

    ``pretrained`` is an open_clip tag or the path of a checkpoint file (which every
    worker must be able to read). ``model_configs`` are open_clip model-config JSON
    files (or folders of them) registered before loading, for custom architectures;
    the file name (without ``.json``) is the model name.
    """

    name: str = "ViT-B-16"
    pretrained: str | None = "openai"
    device: str = "auto"
    precision: str | None = None
    depth: int = 7
    iterations: int = 1
    temperature: float | None = None
    cache_dir: str | None = None
    model_configs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Paths become absolute strings, so the spec means the same file on every worker
        # whatever its working directory, and stays hashable.
        object.__setattr__(
            self, "model_configs", tuple(_absolute(path) for path in self.model_configs)
        )
        if self.pretrained is not None and Path(os.fspath(self.pretrained)).expanduser().exists():
            object.__setattr__(self, "pretrained", _absolute(self.pretrained))

    @classmethod
    def from_gem(cls, gem: GEM) -> ModelSpec:
        """The spec that rebuilds ``gem`` (a model loaded with :func:`napari_gem.load_model`)."""
        if gem.name is None:
            raise ValueError(
                "this GEM was built from a model object, so dask workers cannot rebuild it; "
                "pass a ModelSpec (model name, weights, settings) instead"
            )
        precision = str(gem.dtype).removeprefix("torch.")
        return cls(
            name=gem.name,
            pretrained=gem.pretrained,
            device=gem.device.type,
            precision=_PRECISION_NAMES.get(precision, precision),
            depth=gem.settings.depth,
            iterations=gem.settings.iterations,
            temperature=gem.settings.temperature,
        )

    def load(self) -> GEM:
        """Build a new GEM (registering the extra model configs first)."""
        register_model_configs(self.model_configs)
        return load_model(
            self.name, self.pretrained, device=self.device, precision=self.precision,
            cache_dir=self.cache_dir, depth=self.depth, iterations=self.iterations,
            temperature=self.temperature,
        )

    def get(self) -> GEM:
        """This process's GEM for the spec, loaded on first use and kept."""
        with _loading:
            if self not in _loaded:
                _loaded[self] = self.load()
            return _loaded[self]


#: The parts of ``GEM.describe()`` that change results (device and precision do not count).
IDENTITY_KEYS = ("model", "pretrained", "depth", "iterations", "temperature")


def model_identity(model: GEM | ModelSpec) -> dict:
    """What a model's results depend on, as recorded in each image's parameters JSON."""
    if isinstance(model, GEM):
        description = model.describe()
        return {key: description[key] for key in IDENTITY_KEYS}
    return {
        "model": model.name, "pretrained": model.pretrained, "depth": model.depth,
        "iterations": model.iterations, "temperature": model.temperature,
    }


class LocalModel:
    """A GEM that lives in this process only: used when the batch runs in-process.

    It refuses to be pickled, so it can never be shipped to workers by mistake.
    """

    def __init__(self, gem: GEM) -> None:
        self.gem = gem

    def get(self) -> GEM:
        return self.gem

    def __reduce__(self):
        raise TypeError("an in-process model cannot be sent to dask workers; use a ModelSpec")


def register_model_configs(paths: tuple[str, ...]) -> None:
    """Add open_clip model-config JSON files (or folders of them), each once per process."""
    if not paths:
        return
    import open_clip

    for path in paths:
        if path not in _registered_configs:
            if not Path(path).exists():
                from ..engine import ModelLoadError

                raise ModelLoadError(f"open_clip model config not found: {path}")
            open_clip.add_model_config(path)
            _registered_configs.add(path)


def _absolute(path) -> str:
    return str(Path(os.fspath(path)).expanduser().absolute())


def use_torch_threads(threads: int | None) -> None:
    """Limit PyTorch's intra-op threads in this process (None: leave as it is).

    Several dask workers on one machine would otherwise each start one thread per core.
    """
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
