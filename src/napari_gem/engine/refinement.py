"""PAMR: pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), as SCLIP and NACLIP use it.

Each pixel's score becomes, ``steps`` times over, an affinity-weighted average of its 8
neighbours at each dilation. The affinity comes from the guide image: for neighbour j
of pixel i, ``softmax_j(mean_rgb(-|I_i - I_j| / (1e-8 + 0.1 std_i)))`` with ``std_i``
the standard deviation of the 3x3 samples at every dilation (centre included), borders
replicated (methods-spec §1.9, NACLIP pamr.py L107-135).

Large images run in tiles with a halo of ``steps * max(dilations)`` pixels: information
travels at most one dilation per step, so the tiled result equals the untiled one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_STEPS = 10
DEFAULT_DILATIONS = (8, 16)


def check_pamr_settings(steps: int, dilations: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """Validated ``(steps, dilations)``; a clear ``ValueError`` otherwise."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"PAMR steps must be an integer >= 1; got {steps!r}")
    try:
        dilations = tuple(int(d) for d in dilations)
    except (TypeError, ValueError):
        raise ValueError(f"PAMR dilations must be positive integers; got {dilations!r}") from None
    if not dilations or any(d < 1 for d in dilations):
        raise ValueError(f"PAMR dilations must be positive integers; got {dilations!r}")
    return steps, dilations


def _offsets(dilations: Sequence[int], centre: bool) -> list[tuple[int, int]]:
    return [(dy * d, dx * d) for d in dilations for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            if centre or (dy, dx) != (0, 0)]


#: Rows per band: every step reads each pixel's 16 neighbours, and working on a band at
#: a time keeps those reads in the CPU cache instead of streaming the image 16 times.
BAND_ROWS = 32


def _bands(height: int) -> range:
    return range(0, height, BAND_ROWS)


def local_affinity(image: torch.Tensor, dilations: Sequence[int]) -> torch.Tensor:
    """Affinity ``[B, 8*len(dilations), H, W]`` (softmax over neighbours) of guide ``[B, 3, H, W]``."""
    batch, _, height, width = image.shape
    pad = max(dilations)
    padded = F.pad(image, [pad] * 4, mode="replicate")
    samples = _offsets(dilations, True)
    neighbours = _offsets(dilations, False)
    logits = torch.empty((batch, len(neighbours), height, width), dtype=image.dtype, device=image.device)
    for y in _bands(height):
        rows = slice(y, min(y + BAND_ROWS, height))

        def shifted(offset, rows=rows):
            oy, ox = offset
            return padded[..., rows.start + pad + oy : rows.stop + pad + oy, pad + ox : pad + ox + width]

        # Unbiased std of the 3x3 samples at every dilation, from running sums.
        total = torch.zeros_like(image[..., rows, :])
        squares = torch.zeros_like(total)
        for offset in samples:
            sample = shifted(offset)
            total += sample
            squares.addcmul_(sample, sample)
        count = len(samples)
        variance = (squares - total * total / count).clamp_(min=0) / (count - 1)
        scale = 1.0 / (1e-8 + 0.1 * variance.sqrt_())
        centre = image[..., rows, :]
        for index, offset in enumerate(neighbours):
            logits[:, index, rows] = -((centre - shifted(offset)).abs_().mul_(scale)).mean(dim=1)
    return logits.softmax(dim=1)


def propagate(maps: torch.Tensor, affinity: torch.Tensor, dilations: Sequence[int],
              steps: int) -> torch.Tensor:
    """``steps`` rounds of ``M_i <- Σ_j a_ij M_j`` of maps ``[B, C, H, W]``."""
    height, width = maps.shape[-2:]
    pad = max(dilations)
    neighbours = _offsets(dilations, False)
    weights = affinity.unsqueeze(1)  # [B, 1, P, H, W], shared by every map
    for _ in range(steps):
        padded = F.pad(maps, [pad] * 4, mode="replicate")
        refined = torch.zeros_like(maps)
        for y in _bands(height):
            y1 = min(y + BAND_ROWS, height)
            band = refined[..., y:y1, :]
            for index, (oy, ox) in enumerate(neighbours):
                source = padded[..., y + pad + oy : y1 + pad + oy, pad + ox : pad + ox + width]
                band.addcmul_(source, weights[:, :, index, y:y1])
        maps = refined
    return maps


def pamr(maps: torch.Tensor, image: torch.Tensor, steps: int = DEFAULT_STEPS,
         dilations: Sequence[int] = DEFAULT_DILATIONS) -> torch.Tensor:
    """Refine score maps ``[B, C, H, W]`` (or ``[C, H, W]``) with guide ``image`` ``[B, 3, H, W]``.

    Maps of another size are first resized to the image bilinearly (``align_corners=True``,
    as the reference code). Computed in float32; returns float32.
    """
    steps, dilations = check_pamr_settings(steps, dilations)
    single = maps.ndim == 3
    maps = (maps[None] if single else maps).float()
    image = (image[None] if image.ndim == 3 else image).float()
    if maps.shape[0] != image.shape[0]:
        raise ValueError(f"{maps.shape[0]} map sets but {image.shape[0]} guide images")
    if maps.shape[-2:] != image.shape[-2:]:
        maps = F.interpolate(maps, size=image.shape[-2:], mode="bilinear", align_corners=True)
    refined = propagate(maps, local_affinity(image, dilations), dilations, steps)
    return refined[0] if single else refined


GuideReader = Callable[[int, int, int, int], torch.Tensor]


def pamr_tiled(maps: np.ndarray | torch.Tensor, read_guide: GuideReader, steps: int = DEFAULT_STEPS,
               dilations: Sequence[int] = DEFAULT_DILATIONS, tile: int = 1024) -> torch.Tensor:
    """:func:`pamr` of full-size maps ``[C, H, W]`` in tiles, with bounded memory.

    ``read_guide(y0, y1, x0, x1)`` returns the guide image's ``[3, y1-y0, x1-x0]``
    window, so the guide is never held whole. Equal to the untiled result.
    """
    steps, dilations = check_pamr_settings(steps, dilations)
    maps = torch.as_tensor(maps).float()
    height, width = maps.shape[-2:]
    halo = steps * max(dilations)
    out = torch.empty_like(maps)
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            y0, x0 = max(0, y - halo), max(0, x - halo)
            y1, x1 = min(height, y + tile + halo), min(width, x + tile + halo)
            refined = pamr(maps[:, y0:y1, x0:x1], read_guide(y0, y1, x0, x1), steps, dilations)
            out[:, y : y + tile, x : x + tile] = refined[:, y - y0 : y - y0 + tile, x - x0 : x - x0 + tile]
    return out
