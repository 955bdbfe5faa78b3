"""The proxy vision foundation model (VFM) of ProxyCLIP: a timm ViT whose patch features say
which patches belong together (shared/docs/vfm-methods-spec.md §1).

A proxy is named by a short name (``dino-b16``, ``dino-b8``, ``dinov2-b14-reg``) or any timm
model name. Its weights come from timm's cache (the Hugging Face hub cache) or from a local
timm state dict (``weights=PATH``). One instance per (model, weights, device, dtype) is shared
by every method and model of the process (:func:`load_proxy`); tests and callers holding a
module already can put it there themselves (:func:`share_proxy`).

The VFM runs explicitly (patch embedding, position table, blocks, final norm), because DINO
v1 resamples its position table with its own rule, which timm's dynamic image size does not
reproduce (spec §1.3, pitfall 10).
"""

from __future__ import annotations

import copy
import math
import os
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelLoadError
from .preprocess import renormalised
from .vfm_loading import PROXIES, build_proxy_module, check_weights_available, is_cached

__all__ = ["PROXIES", "ExtraModel", "ProxyVfm", "ensure_available", "forget_proxies", "load_proxy",
           "proxy_status", "share_proxy", "timm_name"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def timm_name(proxy: str) -> str:
    """The timm model name of a proxy's short name (other names are timm names already)."""
    return PROXIES.get(str(proxy).strip().lower(), str(proxy).strip())


def position_rule(name: str) -> str:
    """``dino`` for DINO v1 weights (their own +0.1 scale-factor rule), else ``size``.

    ``size``: bicubic to the exact grid with antialias, in float32: the DINOv2 hub models'
    rule, which is also timm's own (spec §1.3).
    """
    tag = name.rpartition(".")[2].lower()
    return "dino" if tag == "dino" else "size"


class ProxyVfm:
    """A timm ViT run as ProxyCLIP's proxy: final-norm patch tokens ``[B, C, I, J]``."""

    def __init__(self, module: nn.Module, name: str, weights: str | None = None) -> None:
        for part in ("patch_embed", "pos_embed", "blocks", "norm"):
            if not hasattr(module, part):
                raise ModelLoadError(f"proxy {name!r} is not a timm vision transformer (no {part})")
        self.module = module.eval().requires_grad_(False)
        self.name = name
        self.weights = weights
        patch = tuple(module.patch_embed.patch_size)
        if patch[0] != patch[1]:
            raise ModelLoadError(f"proxy {name!r} has non-square patches {patch}")
        self.patch_size = int(patch[0])
        self.position_rule = position_rule(name)
        config = getattr(module, "pretrained_cfg", None) or {}
        self.mean = tuple(config.get("mean", IMAGENET_MEAN))
        self.std = tuple(config.get("std", IMAGENET_STD))
        self._positions: dict[tuple, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.module.patch_embed.proj.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.module.patch_embed.proj.weight.dtype

    def moved(self, device: torch.device, dtype: torch.dtype) -> ProxyVfm:
        """A copy on another device or in another precision (the weights are not reloaded)."""
        module = copy.deepcopy(self.module).to(device=device, dtype=dtype)
        return ProxyVfm(module, self.name, self.weights)

    # -- pixels ---------------------------------------------------------------------------
    def pixels_from_clip(self, pixels: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised pixels re-normalised for this VFM (spec §1.1):
        ``(px·σ_clip + μ_clip − μ) / σ``, so CLIP-space zero padding arrives as CLIP's mean colour."""
        return renormalised(pixels, self.mean, self.std)

    # -- position table -------------------------------------------------------------------
    def _prefix_rows(self) -> int:
        module = self.module
        return 0 if getattr(module, "no_embed_class", False) else int(module.num_prefix_tokens)

    def position_table(self, grid: tuple[int, int]) -> torch.Tensor:
        """``pos_embed`` for a patch grid, resampled with the VFM's own rule, memoised per grid."""
        table = self.module.pos_embed
        key = (tuple(grid), table.dtype, table.device, table._version)
        if key not in self._positions:
            if len(self._positions) >= 8:
                self._positions.clear()
            with torch.no_grad():
                self._positions[key] = self._resampled(table, tuple(grid))
        return self._positions[key]

    def _resampled(self, table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        rows = self._prefix_rows()
        prefix, patches = table[:, :rows], table[:, rows:]
        side = math.isqrt(patches.shape[1])
        if grid == (side, side):  # both official rules skip an unchanged square grid
            return table
        # The official code computes in float32 (DINOv2) or the model dtype (DINO, fp16 on a
        # GPU); float64 stays float64 so that fidelity tests see no float32 rounding.
        work = torch.float64 if table.dtype == torch.float64 else torch.float32
        square = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2).to(work)
        if self.position_rule == "dino":
            factors = ((grid[0] + 0.1) / side, (grid[1] + 0.1) / side)
            resized = F.interpolate(square, scale_factor=factors, mode="bicubic")
        else:
            resized = F.interpolate(square, size=grid, mode="bicubic", antialias=True)
        resized = resized.to(table.dtype).permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
        return torch.cat([prefix, resized], dim=1)

    # -- features -------------------------------------------------------------------------
    def patch_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Final-norm output tokens of the last block, patches only, ``[B, C, I, J]``.

        ``pixels`` are normalised for this VFM (:meth:`pixels_from_clip`); the class token
        and any registers are dropped (spec §1.3: DINO ``get_intermediate_layers(x)[0]``).
        """
        module = self.module
        x, (rows, cols) = self.input_tokens(pixels)
        for block in module.blocks:
            x = block(x)
        x = module.norm(x)[:, module.num_prefix_tokens:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, rows, cols)

    def input_tokens(self, pixels: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """The first block's input ``[B, prefix + I*J, C]`` (patch embedding, prefix tokens,
        the position table resampled to the grid) and the patch grid ``(I, J)``."""
        module = self.module
        patches = module.patch_embed.proj(pixels)  # [B, C, I, J]
        batch, _, rows, cols = patches.shape
        x = module.patch_embed.norm(patches.flatten(2).transpose(1, 2))
        prefix = [token.expand(batch, -1, -1) for token in (module.cls_token, module.reg_token)
                  if token is not None]
        positions = self.position_table((rows, cols)).to(x.dtype)
        if self._prefix_rows() == 0:
            x = torch.cat([*prefix, x + positions], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + positions
        return module.norm_pre(x), (rows, cols)


# -- the shared instances --------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    name: str
    weights: str | None
    device: torch.device
    dtype: torch.dtype


_SHARED: dict[_Key, ProxyVfm] = {}
_LOCK = threading.Lock()


def _key(proxy: str, weights, device, dtype) -> _Key:
    path = os.path.abspath(os.fspath(weights)) if weights is not None else None
    return _Key(timm_name(proxy), path, torch.device(device), dtype)


def share_proxy(proxy: str, module: nn.Module, weights: str | os.PathLike | None = None) -> ProxyVfm:
    """Make ``module`` (a timm ViT) the process's proxy ``proxy`` (with ``weights``) on its
    device and dtype: later :func:`load_proxy` calls use it and load nothing."""
    parameter = module.patch_embed.proj.weight
    key = _key(proxy, weights, parameter.device, parameter.dtype)
    vfm = ProxyVfm(module, key.name, key.weights)
    with _LOCK:
        _SHARED[key] = vfm
    return vfm


def forget_proxies() -> None:
    """Drop every shared proxy (their memory is freed when no method holds them)."""
    with _LOCK:
        _SHARED.clear()


def load_proxy(proxy: str = "dino-b16", weights: str | os.PathLike | None = None, *,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> ProxyVfm:
    """The shared proxy VFM ``proxy`` on ``device`` in ``dtype``, built once per process.

    ``weights``: a timm state dict file; ``None``: timm's pretrained weights from the hub
    cache. When they are not cached and the hub is offline or unreachable, raises
    :class:`ModelLoadError` within a few seconds, naming the weights and the cache folder.
    """
    key = _key(proxy, weights, device, dtype)
    with _LOCK:
        if key in _SHARED:
            return _SHARED[key]
        sibling = next((vfm for other, vfm in _SHARED.items()
                        if (other.name, other.weights) == (key.name, key.weights)), None)
        if sibling is not None:
            vfm = sibling.moved(key.device, key.dtype)
        else:
            module = build_proxy_module(key.name, key.weights)
            vfm = ProxyVfm(module.to(device=key.device, dtype=key.dtype), key.name, key.weights)
        _SHARED[key] = vfm
        return vfm


def ensure_available(proxy: str = "dino-b16", weights: str | os.PathLike | None = None) -> None:
    """Return when ``proxy`` can be built without waiting on a network that is not there:
    it is shared already, its weights file exists, its weights are cached or their host
    answers. Otherwise a :class:`ModelLoadError` within seconds, naming what is missing."""
    name = timm_name(proxy)
    if weights is not None:
        if not os.path.isfile(os.fspath(weights)):
            raise ModelLoadError(f"proxy weights file {os.fspath(weights)!r} does not exist")
        return
    with _LOCK:
        if any(key.name == name and key.weights is None for key in _SHARED):
            return
    check_weights_available(name)


@dataclass(frozen=True)
class ExtraModel:
    """Another model a method needs besides CLIP, and whether its weights are here already."""

    name: str
    cached: bool

    def __str__(self) -> str:
        return f"{self.name}: " + ("cached" if self.cached else "not cached, downloaded on first use")


def proxy_status(proxy: str = "dino-b16") -> ExtraModel:
    """Which model ``proxy`` is and whether it is loaded in this process or in the hub cache."""
    name = timm_name(proxy)
    with _LOCK:
        loaded = any(key.name == name for key in _SHARED)
    try:
        cached = loaded or is_cached(name)
    except Exception:  # an unknown timm name: not here, rather than a failing listing
        cached = False
    return ExtraModel(f"{proxy} ({name})", cached)
