"""Fine-tuning SimZSS's text tower on a user's captioned images (``napari-gem train-simzss``).

The vision side stays frozen: its features are computed once and cached on disk, so
training only runs the text tower. See ``docs/simzss.md``.
"""

from .trainer import TrainingConfig, train

__all__ = ["TrainingConfig", "train"]
