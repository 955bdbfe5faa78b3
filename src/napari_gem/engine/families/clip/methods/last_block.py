"""The shared runner of the methods that change only the last block.

Blocks ``0 .. L-2`` run unchanged; the method replaces the last block's attention (and
may drop its residual and MLP). The ordinary CLIP image embedding, when asked for,
comes from the *unmodified* last block, so presence scores mean the same for every
method.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch

from ....promptable import VisionOutput
from .. import vision
from .base import DenseMethod

Trunk = vision.Trunk


class LastBlockMethod(DenseMethod):
    """A method defined by what it does in the last block (methods-spec §2 helper)."""

    #: True when :meth:`last_block` returns CLIP's own last-block output (the baseline).
    keeps_last_block = False

    def trunk(self, visual: Trunk, tokens: torch.Tensor, rope: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, Any]:
        """Blocks 0 .. L-2; returns the tokens entering the last block and any extras."""
        stop = len(vision.blocks(visual)) - 1
        return vision.run_trunk(visual, tokens, stop, rope=rope)

    def unmodified_last_input(self, visual: Trunk, x: torch.Tensor, extras: Any,
                              rope: torch.Tensor | None = None) -> torch.Tensor:
        """The tokens CLIP itself feeds its last block (``x`` unless the trunk was changed)."""
        return x

    @abstractmethod
    def last_block(self, block: vision.Block, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                   v: torch.Tensor, grid: tuple[int, int], extras: Any) -> torch.Tensor:
        """Tokens ``[B, N, D]`` that go to ``ln_post`` and the projection."""

    def forward(self, visual: Trunk, pixels: torch.Tensor, *,
                with_clip_embedding: bool = True) -> VisionOutput:
        visual = vision.as_trunk(visual)
        self.check_model(visual)
        grid = vision.patch_grid(visual, pixels)
        rope = visual.rope(grid)
        x, extras = self.trunk(visual, vision.embed(visual, pixels, self.position_resampling), rope)
        last = visual.blocks[-1]
        q, k, v = last.qkv(last.norm_in(x), rope)
        tokens = self.last_block(last, x, q, k, v, grid, extras)
        embedding = None
        if with_clip_embedding:
            clip_input = self.unmodified_last_input(visual, x, extras, rope)
            if self.keeps_last_block and clip_input is x:
                original = tokens
            elif clip_input is x:
                original = vision.attention_update(last, x, q, k, v)
            else:
                original = vision.block_update(last, clip_input, rope)
            embedding = vision.clip_embedding(visual, original)
        return VisionOutput(vision.dense_output(visual, tokens, grid), embedding)
