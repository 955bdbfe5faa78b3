"""Model families: every kind of model napari-gem can load, one module (or package) each.

Every module of this package is imported here, so a family registers itself by being
a module in this folder: adding a family is one new module and no edit elsewhere.
"""

import importlib
import pkgutil

from .base import CatalogueEntry, LoadRequest, ModelFamily
from .registry import catalogue, family_for, family_named, list_families, register_family

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CatalogueEntry", "LoadRequest", "ModelFamily", "catalogue", "family_for", "family_named",
           "list_families", "register_family"]
