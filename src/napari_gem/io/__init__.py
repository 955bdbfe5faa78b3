"""Files in and out: reading images of many formats, writing segmentation outputs."""

from .export import output_files, parameters_path, read_output, write_outputs
from .images import LoadedImage, UnsupportedImageError, guess_axes, open_image
from .inputs import ExpandedInputs, InputImage, expand_inputs
from .naming import slugify, unique_slugs
from .planes import PlaneLayout, PlaneView, planes

__all__ = [
    "ExpandedInputs",
    "InputImage",
    "LoadedImage",
    "PlaneLayout",
    "PlaneView",
    "UnsupportedImageError",
    "expand_inputs",
    "guess_axes",
    "open_image",
    "output_files",
    "parameters_path",
    "planes",
    "read_output",
    "slugify",
    "unique_slugs",
    "write_outputs",
]
