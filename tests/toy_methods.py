"""Two toy dense methods that share an option name (``temperature``), and one whose option is
named like a segmentation option (``window``): how the flags and fields keep them apart."""

from __future__ import annotations

from dataclasses import dataclass

from napari_gem.engine.described import option
from napari_gem.engine.families.clip.methods import registry
from napari_gem.engine.families.clip.methods.base import MethodOptions
from napari_gem.engine.families.clip.methods.simple import MaskClip


@dataclass(frozen=True)
class WarmOptions(MethodOptions):
    temperature: float = option(2.0, kind="float", label="temperature", minimum=1.0, maximum=5.0,
                                help="toy A: a warm temperature")


@dataclass(frozen=True)
class CoolOptions(MethodOptions):
    temperature: float = option(0.1, kind="float", label="temperature", minimum=0.01, maximum=0.5,
                                help="toy B: a cool temperature")


@dataclass(frozen=True)
class WindowOptions(MethodOptions):
    window: int = option(3, kind="int", label="window", minimum=1, maximum=9,
                         help="toy C: a neighbourhood in patches")
    device: str = option("near", kind="choice", label="device", choices=("near", "far"),
                         help="toy C: named like the model's --device")


class WarmMethod(MaskClip):  # MaskCLIP's features; the options are what the tests look at
    name, title, Options = "toy-warm", "Toy warm", WarmOptions


class CoolMethod(MaskClip):
    name, title, Options = "toy-cool", "Toy cool", CoolOptions


class WindowMethod(MaskClip):
    name, title, Options = "toy-window", "Toy window", WindowOptions


def register_toy_methods(monkeypatch) -> None:
    """Register the three toy methods for one test (monkeypatch takes them away again)."""
    for method in (WarmMethod, CoolMethod, WindowMethod):
        monkeypatch.setitem(registry._METHODS, method.name, method)
