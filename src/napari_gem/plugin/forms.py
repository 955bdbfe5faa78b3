"""napari fields built from option descriptions (:mod:`napari_gem.engine.described`).

One :class:`OptionField` per option: its magicgui widgets (a check box beside the value
where ``None`` means "auto"), and how to read and show its value. Field names are the
option names (and ``auto_<name>`` for the check box), so scripts and the remembered
settings address them as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FileEdit, FloatSpinBox, LineEdit, SpinBox

from ..engine.described import OptionDescription, format_list, parse_list


class OptionField:
    """The widgets of one described option."""

    def __init__(self, item: OptionDescription) -> None:
        self.item = item
        self.auto: CheckBox | None = None
        if item.auto is not None and item.kind in ("int", "float"):
            self.auto = CheckBox(text=item.auto, value=item.default is None, tooltip=item.help)
        self.value = _value_widget(item)

    @property
    def named_widgets(self) -> dict[str, Any]:
        """``{name: widget}``: the value widget under the option's name, its check box as ``auto_<name>``."""
        widgets = {} if self.auto is None else {f"auto_{self.item.name}": self.auto}
        return {**widgets, self.item.name: self.value}

    def read(self) -> Any:
        """The option's value as the options class takes it (``ValueError`` with the label if unreadable)."""
        item = self.item
        if self.auto is not None and self.auto.value:
            return None
        if item.kind in ("ints", "floats", "texts"):
            return parse_list(item, str(self.value.value))
        if item.kind == "toggle":
            return item.values[1] if self.value.value else item.values[0]
        if item.kind == "path":  # the typed text: an empty field is no path, not "."
            return self.value.line_edit.value.strip()
        return self.value.value

    def show(self, value: Any) -> None:
        """Show ``value`` (as the options class holds it)."""
        item = self.item
        if self.auto is not None:
            self.auto.value = value is None
            if value is None:
                return
        if item.kind in ("ints", "floats", "texts"):
            self.value.value = format_list(value, item.auto)
        elif item.kind == "toggle":
            self.value.value = value == item.values[1]
        else:
            self.value.value = value

    def update_enabled(self) -> None:
        if self.auto is not None:
            self.value.enabled = not self.auto.value

    def set_visible(self, visible: bool) -> None:
        for widget in self.named_widgets.values():
            widget.visible = visible


def _value_widget(item: OptionDescription):
    common = {"tooltip": item.help}
    limits = {key: value for key, value in (("min", item.minimum), ("max", item.maximum), ("step", item.step))
              if value is not None}
    if item.kind == "int":
        start = item.default if item.default is not None else item.example
        return SpinBox(label=item.label, value=start, **limits, **common)
    if item.kind == "float":
        start = item.default if item.default is not None else item.example
        return FloatSpinBox(label=item.label, value=start, **limits, **common)
    if item.kind == "bool":
        return CheckBox(text=item.label, value=item.default, **common)
    if item.kind == "toggle":
        return CheckBox(text=item.label, value=item.default == item.values[1], **common)
    if item.kind == "path":
        return FileEdit(label=item.label, mode="d", value=item.default, **common)
    if item.kind == "choice":
        return ComboBox(label=item.label, choices=list(item.choices), value=item.default, **common)
    return LineEdit(label=item.label, value=format_list(item.default, item.auto), **common)


def build_fields(descriptions: Iterable[OptionDescription]) -> dict[str, OptionField]:
    """One field per option the form shows (``in_form`` and not ``custom``), by option name."""
    return {item.name: OptionField(item) for item in descriptions if item.in_form and not item.custom}
