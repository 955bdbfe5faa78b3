"""The method-options and Advanced panels: fields built from the option descriptions.

Every method's options and every :class:`~napari_gem.SegmentOptions` field get their
field from :func:`~napari_gem.plugin.forms.build_fields`; only the chosen method's
options are shown.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from magicgui.widgets import Container

from ...engine import SegmentOptions
from ...engine.described import describe
from ...engine.families import list_families
from ...engine.families.clip.methods import method_class, method_names
from ..forms import OptionField, build_fields


def _method_descriptions():
    """Every CLIP method's options, then those of families with their own (Talk2DINO's)."""
    own = [family.own_options for family in list_families() if family.own_options is not None]
    seen = {}
    for options_class in (*(method_class(name).Options for name in method_names()), *own):
        for item in describe(options_class):
            seen.setdefault(item.name, item)
    return seen.values()


class OptionsPanel:
    """The chosen method's options, then the segmentation options (the Advanced section)."""

    def __init__(self) -> None:
        self.method_fields: dict[str, OptionField] = build_fields(_method_descriptions())
        self.segment_fields: dict[str, OptionField] = build_fields(describe(SegmentOptions))
        self.container = Container(widgets=[widget for field in self._all() for widget in
                                            field.named_widgets.values()])
        for field in self._all():
            if field.auto is not None:
                field.auto.changed.connect(self.update_visibility)
        self.segment_fields["refine"].value.changed.connect(self.update_visibility)
        self._method = "gem"
        self._clip = True
        self._own: type | None = None

    def _all(self) -> list[OptionField]:
        return [*self.method_fields.values(), *self.segment_fields.values()]

    def fields(self) -> dict[str, Any]:
        """Every widget by name (``depth``, ``auto_temperature``, ``input_size`` ...)."""
        return {name: widget for field in self._all() for name, widget in field.named_widgets.items()}

    def method_option_names(self) -> list[str]:
        if not self._clip:  # a family with its own dense features: its own options, if any
            return [field.name for field in dataclasses.fields(self._own)] if self._own else []
        return [field.name for field in dataclasses.fields(method_class(self._method).Options)]

    def show_method(self, method: str, uses_clip_methods: bool, own_options: type | None = None) -> None:
        self._method, self._clip, self._own = method, uses_clip_methods, own_options
        self.update_visibility()

    def update_visibility(self, *_) -> None:
        shown = set(self.method_option_names())
        for name, field in self.method_fields.items():
            field.set_visible(name in shown)
        refine = self.segment_fields["refine"].value.value
        for name in ("pamr_steps", "pamr_dilations"):
            self.segment_fields[name].set_visible(bool(refine))
        for field in self._all():
            field.update_enabled()

    def method_options(self) -> dict[str, Any]:
        """The chosen method's options as the fields give them (``ValueError`` if unreadable)."""
        return {name: self.method_fields[name].read() for name in self.method_option_names()}

    def segment_values(self) -> dict[str, Any]:
        """The segmentation options the fields give (``ValueError`` if unreadable)."""
        return {name: field.read() for name, field in self.segment_fields.items()}

    def show_values(self, values: dict[str, Any]) -> None:
        """Show option values (e.g. a model family's defaults) in the fields that have them."""
        fields = {**self.method_fields, **self.segment_fields}
        for name, value in values.items():
            if name in fields:
                fields[name].show(value)
        self.update_visibility()
