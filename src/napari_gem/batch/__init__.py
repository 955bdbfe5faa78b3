"""Batch segmentation of many images: in-process or on a dask.distributed cluster."""

from .models import ModelSpec
from .report import BatchReport, ImageOutcome
from .runner import segment_files

__all__ = ["BatchReport", "ImageOutcome", "ModelSpec", "segment_files"]
