"""NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025): neighbour-aware k-k attention in the last block."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ....described import option
from .. import vision
from .base import MethodOptions, check_positive
from .last_block import LastBlockMethod
from .registry import register


@dataclass(frozen=True)
class NaclipOptions(MethodOptions):
    """NACLIP's Gaussian neighbourhood (paper default: σ = 5 patches)."""

    sigma: float = option(5.0, kind="float", label="σ (patches)", minimum=0.1, maximum=100.0, step=0.5,
                          help="NACLIP: width of the Gaussian neighbourhood prior, in patches")

    def __post_init__(self) -> None:
        check_positive("sigma", self.sigma)


def neighbourhood_prior(grid: tuple[int, int], sigma: float, *, dtype=torch.float32,
                        device=None, prefix: int = 1) -> torch.Tensor:
    """Ω ``[P + gh*gw, P + gh*gw]``: ``exp(-|p_i - p_j|² / 2σ²)`` between patches, 0 for the
    ``prefix`` tokens in front (class token, registers)."""
    rows, cols = torch.meshgrid(torch.arange(grid[0], dtype=torch.float64),
                                torch.arange(grid[1], dtype=torch.float64), indexing="ij")
    positions = torch.stack([rows.flatten(), cols.flatten()], dim=-1)
    squared = torch.cdist(positions, positions).square()
    gaussian = torch.exp(-squared / (2 * float(sigma) ** 2))
    return F.pad(gaussian, (prefix, 0, prefix, 0)).to(dtype=dtype, device=device)


_PRIOR_CACHE: dict[tuple, torch.Tensor] = {}


def _cached_prior(grid, sigma, dtype, device, prefix) -> torch.Tensor:
    key = (tuple(grid), float(sigma), dtype, str(device), prefix)
    if key not in _PRIOR_CACHE:
        if len(_PRIOR_CACHE) >= 8:
            _PRIOR_CACHE.clear()
        _PRIOR_CACHE[key] = neighbourhood_prior(grid, sigma, dtype=dtype, device=device, prefix=prefix)
    return _PRIOR_CACHE[key]


@register
class Naclip(LastBlockMethod):
    name = "naclip"
    title = "NACLIP"
    summary = ("last block: k-k attention plus a Gaussian neighbourhood prior Ω on the logits; "
               "no residual and no MLP")
    provenance = ("Hajimiri, Ben Ayed, Dolz, WACV 2025; official code github.com/sinahmr/NACLIP, "
                  "clip/model.py L94-233")
    Options = NaclipOptions

    def last_block(self, block, x, q, k, v, grid, extras):
        prefix = k.shape[-2] - grid[0] * grid[1]
        prior = _cached_prior(grid, self.options.sigma, k.dtype, k.device, prefix)
        return vision.project_out(block, vision.attention(k, k, v, bias=prior))
