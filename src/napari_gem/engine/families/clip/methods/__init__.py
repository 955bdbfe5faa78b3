"""Dense methods: GEM and the other training-free ways to make CLIP ViT patches say *where*.

Each method is one small module registered by name; :func:`create_method` builds one
with validated options and :func:`list_methods` lists them. The import order below is the
listing order.
"""

from . import gem, simple, naclip, gclip, proxyclip  # noqa: F401,I001  (registers the methods, GEM first)
from .base import DenseMethod, MethodOptions
from .gclip import GclipOptions
from .gem import GemOptions
from .global_tokens import GlobalTokenReport, find_global_blocks
from .naclip import NaclipOptions
from .proxyclip import ProxyclipOptions
from .registry import (
    MethodInfo,
    create_method,
    list_methods,
    method_class,
    method_names,
    self_contained_method_names,
)

__all__ = [
    "DenseMethod",
    "GclipOptions",
    "GemOptions",
    "GlobalTokenReport",
    "MethodInfo",
    "MethodOptions",
    "NaclipOptions",
    "ProxyclipOptions",
    "create_method",
    "find_global_blocks",
    "list_methods",
    "method_class",
    "method_names",
    "self_contained_method_names",
]
