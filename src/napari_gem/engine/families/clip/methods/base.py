"""What every dense method is: a named, documented way to run a CLIP ViT's last blocks.

A method owns its options (a frozen dataclass with the paper's defaults, validated on
construction) and one function, :meth:`DenseMethod.forward`, from normalised pixels to
:class:`~napari_gem.engine.families.clip.vision.VisionOutput`. Methods never change the model they run.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from ....promptable import VisionOutput
from ....vfm import ExtraModel


@dataclasses.dataclass(frozen=True)
class MethodOptions:
    """Base of every method's options: a frozen, validated, JSON-ready dataclass."""

    def to_dict(self) -> dict[str, Any]:
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }


class DenseMethod(ABC):
    """One training-free way of reading dense, text-aligned features from a CLIP ViT."""

    #: Registry name (``load_model(..., method=name)``).
    name: ClassVar[str]
    #: Name to show people.
    title: ClassVar[str]
    #: One line on what the method changes.
    summary: ClassVar[str]
    #: Where its definition comes from (paper, official code, or what is inferred).
    provenance: ClassVar[str]
    #: False where parts of the definition are reconstructed rather than read in official code.
    verified: ClassVar[bool] = True
    #: Its options class (defaults are the paper's).
    Options: ClassVar[type[MethodOptions]]
    #: True where the method needs another model's weights besides CLIP's (ProxyCLIP's proxy).
    needs_extra_weights: ClassVar[bool] = False
    #: How it resamples position embeddings (see ``vision.POSITION_RESAMPLING``).
    position_resampling: ClassVar[str] = "scale_factor"

    def __init__(self, options: MethodOptions | None = None, **values: Any) -> None:
        if options is not None and values:
            raise TypeError("give either an options object or option values, not both")
        if options is None:
            options = build_options(self.Options, self.name, values)
        elif not isinstance(options, self.Options):
            raise TypeError(f"{self.name} takes {self.Options.__name__}, not {type(options).__name__}")
        self.options = options

    @classmethod
    def extra_model(cls) -> ExtraModel | None:
        """With default options: the other model this method needs and whether it is cached
        (None where it needs none). Listings and the widget's method list show it."""
        return None

    def check_model(self, visual: nn.Module) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` when the options do not fit this ViT (e.g. too few blocks)."""

    @abstractmethod
    def forward(self, visual: nn.Module, pixels: torch.Tensor, *,
                with_clip_embedding: bool = True) -> VisionOutput:
        """Dense features ``[B, gh, gw, E]`` (and the CLIP image embedding) of ``pixels``."""

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "method_options": self.options.to_dict()}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.options == self.options

    def __hash__(self) -> int:
        return hash((self.name, self.options))

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.options.to_dict().items())
        return f"{self.title}({values})"


def build_options(options_class: type[MethodOptions], method: str, values: dict[str, Any]) -> MethodOptions:
    """``options_class(**values)`` with a clear message for option names it does not have."""
    known = [field.name for field in dataclasses.fields(options_class)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise ValueError(
            f"method {method!r} has no option {', '.join(map(repr, unknown))} (its options: {listed})"
        )
    return options_class(**values)


def check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or value == float("inf"):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
