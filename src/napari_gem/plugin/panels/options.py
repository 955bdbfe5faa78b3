"""The method-options and Advanced panels: fields built from the option descriptions.

Every method's options and every :class:`~napari_gem.SegmentOptions` field get their
field from :func:`~napari_gem.plugin.forms.build_fields`; only the chosen method's
options are shown. A name two methods share gets one field per method
(``gem_temperature``: :mod:`napari_gem.engine.method_fields`), each with its own range and help.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container

from ...engine import SegmentOptions
from ...engine.described import describe
from ...engine.method_fields import method_options, options_class_of
from ..forms import OptionField, build_fields


class OptionsPanel:
    """The chosen method's options, then the segmentation options (the Advanced section)."""

    def __init__(self) -> None:
        self._keyed = method_options()
        self.method_fields: dict[str, OptionField] = build_fields(
            option.description for option in self._keyed)
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

    def _chosen_keys(self) -> dict[str, str]:
        """``{option name: field key}`` of the chosen method's fields (a family's own method
        when the model brings its own dense features)."""
        chosen = options_class_of(self._method) if self._clip else self._own
        return {option.name: option.key for option in self._keyed
                if option.options_class is chosen and option.key in self.method_fields}

    def show_method(self, method: str, uses_clip_methods: bool, own_options: type | None = None) -> None:
        self._method, self._clip, self._own = method, uses_clip_methods, own_options
        self.update_visibility()

    def update_visibility(self, *_) -> None:
        shown = set(self._chosen_keys().values())
        for key, field in self.method_fields.items():
            field.set_visible(key in shown)
        refine = self.segment_fields["refine"].value.value
        for name in ("pamr_steps", "pamr_dilations"):
            self.segment_fields[name].set_visible(bool(refine))
        for field in self._all():
            field.update_enabled()

    def method_options(self) -> dict[str, Any]:
        """The chosen method's options as the fields give them (``ValueError`` if unreadable)."""
        return {name: self.method_fields[key].read() for name, key in self._chosen_keys().items()}

    def segment_values(self) -> dict[str, Any]:
        """The segmentation options the fields give (``ValueError`` if unreadable)."""
        return {name: field.read() for name, field in self.segment_fields.items()}

    def show_values(self, values: dict[str, Any]) -> None:
        """Show option values (e.g. a model family's defaults) in the fields that have them."""
        chosen = {name: self.method_fields[key] for name, key in self._chosen_keys().items()}
        fields = {**self.method_fields, **chosen, **self.segment_fields}
        for name, value in values.items():
            if name in fields:
                fields[name].show(value)
        self.update_visibility()
