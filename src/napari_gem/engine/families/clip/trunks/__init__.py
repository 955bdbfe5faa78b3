"""Trunk adapters: every ViT layout the dense methods run on (see :mod:`.base`)."""

from .base import POSITION_RESAMPLING, TrunkBlock, VisionTrunk, merge_heads, resample_table, split_heads
from .detect import as_block, as_trunk, build_trunk

__all__ = ["POSITION_RESAMPLING", "TrunkBlock", "VisionTrunk", "as_block", "as_trunk", "build_trunk",
           "merge_heads", "resample_table", "split_heads"]
