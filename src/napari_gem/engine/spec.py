"""A small, picklable description of a model: what to load, where, with which settings.

The napari widget and the batch command (including dask workers on other machines)
describe models this way and build them with :meth:`ModelSpec.load`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .gem import GEM
from .loading import ModelLoadError, load_model
from .vision import GemSettings

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
    """Everything needed to build a GEM anywhere: open_clip model, weights, device, settings.

    ``pretrained`` is an open_clip tag or the path of a checkpoint file (made absolute,
    so it means the same file whatever the working directory). ``model_configs`` are
    open_clip model-config JSON files (or folders of them) registered before loading,
    for custom architectures; a file's name (without ``.json``) is the model name.
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

    def settings(self) -> GemSettings:
        return GemSettings(self.depth, self.iterations, self.temperature)

    def weights_key(self) -> tuple:
        """What identifies loaded weights (a rewritten checkpoint file counts as new)."""
        stamp: tuple = ()
        if self.is_file:
            path = Path(self.pretrained).expanduser()
            stat = path.stat() if path.is_file() else None
            stamp = (stat.st_mtime_ns, stat.st_size) if stat else ()
        return (self.name, self.pretrained, stamp, self.device, self.precision, self.cache_dir,
                self.model_configs)

    def gem_key(self) -> tuple:
        """What identifies the features a model computes (weights and GEM settings)."""
        return (*self.weights_key(), self.depth, self.iterations, self.temperature)

    def describe(self) -> dict:
        description = asdict(self)
        description["model_configs"] = list(self.model_configs)
        return description

    @classmethod
    def from_gem(cls, gem: GEM) -> ModelSpec:
        """The spec that rebuilds ``gem`` (a model loaded with :func:`load_model`)."""
        if gem.name is None:
            raise ValueError(
                "this GEM was built from a model object, so it cannot be rebuilt elsewhere; "
                "describe it with a ModelSpec (model name, weights, settings) instead"
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
