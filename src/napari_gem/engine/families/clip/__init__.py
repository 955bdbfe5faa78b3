"""CLIP families: open_clip ViTs and the dense methods (GEM, NACLIP, ...) that run on them."""

from . import family  # noqa: F401  (registers the open_clip family)
