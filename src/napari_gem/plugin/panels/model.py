"""The model panel: which model (grouped as its family catalogues it), its weights, method, device.

Everything that depends on the kind of model (which weights fields show, whether a
CLIP method applies, the tag used by default) is asked of the model's family.
"""

from __future__ import annotations

from pathlib import Path

import torch
from magicgui.widgets import ComboBox, Container, FileEdit
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt

from ...engine import ModelLoadError
from ...engine.cpu_precision import has_native
from ...engine.devices import DEVICE_CHOICES, PRECISION_CHOICES
from ...engine.families import catalogue, family_for
from ...engine.families.base import WEIGHTS_FILE, WEIGHTS_PACKAGED
from ...engine.families.clip.methods import list_methods
from ...engine.paths import CHECKPOINT_SUFFIXES
from ...engine.spec import ModelSpec
from .model_sources import ASKERS, ASKING_ENTRIES, ASKING_VALUES, FOLDER_ENTRY, HUB_ID_ENTRY

DEFAULT_MODEL = "ViT-B-16"
CHECKPOINT_FILTER = " ".join(f"*{suffix}" for suffix in CHECKPOINT_SUFFIXES)
WEIGHT_SOURCES = [("pretrained tag", "tag"), ("checkpoint file", "file")]


def model_choices() -> list[tuple[str, str]]:
    """``(label, name)`` of every catalogued model; groups other than "general" lead the label."""
    return [(entry.label if entry.group == "general" else f"{entry.group}: {entry.label}", entry.name)
            for entry in catalogue()]


def precision_tooltip() -> str:
    """What each precision means, and whether bf16 pays on this computer's CPU."""
    native = has_native(torch.bfloat16)
    if native is None:
        cpu_bf16 = "bf16 on the CPU: about 2x faster than fp32 where the CPU has AMX"
    elif native:
        cpu_bf16 = "bf16 is native on this CPU: about 2x faster than fp32, heatmaps within ~1e-3"
    else:
        cpu_bf16 = "bf16 is not native on this CPU: slower than fp32 here"
    return f"auto: fp32 on the CPU, bf16/fp16 on a GPU. {cpu_bf16}."


def method_label(info) -> str:
    """The method's title, marked where it is reconstructed or needs another model."""
    label = info.title if info.verified else f"{info.title} (reconstructed)"
    if info.extra_model:
        label += " (+ extra model, " + ("cached)" if info.extra_model.cached else "downloads)")
    return label


def method_choices() -> list[tuple[str, str]]:
    return [(method_label(info), info.name) for info in list_methods()]


def method_tooltip(name: str) -> str:
    info = next(info for info in list_methods() if info.name == name)
    caveat = ("\nReconstructed from the paper: its equations are not verified against "
              "official code." if not info.verified else "")
    extra = f"\nIt needs another model: {info.extra_model}." if info.extra_model else ""
    return f"{info.title}: {info.summary}.\nSource: {info.provenance}.{caveat}{extra}"


def tag_label(tag: str, note: str) -> str:
    return f"{tag} ({note})" if note else tag


class ModelPicker(ComboBox):
    """The catalogued models, each with its tooltip, then "a folder…" and "a Hugging Face id…".

    Choosing one of those two asks (a folder dialog, or a repository id) and picks the model
    it names, or goes back to the previous model when the user cancels or the answer names
    no model (a notification says why). Code may also pick any name a family claims.
    """

    def __init__(self, **kwargs) -> None:
        self._models: list[tuple[str, str]] = model_choices()
        self._current: str | None = None
        super().__init__(choices=ModelPicker._entries, **kwargs)
        self.show_tooltips()

    def _entries(self) -> list[tuple[str, str]]:
        return [*self._models, *ASKING_ENTRIES]

    def show_tooltips(self) -> None:
        """Each model's one-line tooltip (domain, licence, size) on its entry in the list."""
        tooltips = {entry.name: entry.tooltip for entry in catalogue()}
        tooltips[FOLDER_ENTRY[1]] = ("A folder with open_clip_config.json (open_clip) or a "
                                     "transformers config.json (Hugging Face CLIP or SigLIP)")
        tooltips[HUB_ID_ENTRY[1]] = ("ORG/REPO of a Hugging Face repository, loaded with open_clip "
                                     "(hf-hub:) or transformers (transformers:)")
        for index in range(self.native.count()):
            name = self.native.itemData(index)
            self.native.setItemData(index, tooltips.get(name, name), Qt.ItemDataRole.ToolTipRole)

    @property
    def value(self):
        # While an asking entry is shown (its dialog open), the model is still the previous one.
        value = ComboBox.value.fget(self)
        return self._current if value in ASKING_VALUES else value

    @value.setter
    def value(self, value) -> None:
        if value in ASKING_VALUES:
            raise ValueError(f"{value!r} is not a model name")
        if value is not None and value not in self.choices:
            try:
                family_for(value).check(value, None)  # an unknown name is refused here
            except ModelLoadError as error:
                raise ValueError(str(error)) from None
            self._models.append((value, value))
            # before the asking entries, which stay last (magicgui would append it after them)
            # (quietly: the shifted index of the shown entry is no new choice)
            blocked = self.native.blockSignals(True)
            self.native.insertItem(len(self._models) - 1, value, value)
            self.native.blockSignals(blocked)
            self.show_tooltips()
        ComboBox.value.fset(self, value)
        self._current = ComboBox.value.fget(self)

    def _on_value_change(self, value=None) -> None:
        if value in ASKING_VALUES:
            self._ask(value)  # emits `changed` only once a model is chosen
            return
        self._current = value
        super()._on_value_change(value)

    def _ask(self, entry: str) -> None:
        try:
            name = ASKERS[entry](self.native)
            if name is not None:
                self.value = name
                return
        except ValueError as error:
            show_error(f"No model chosen: {error}")
        with self.changed.blocked():  # back to the model that was chosen: nothing changed
            ComboBox.value.fset(self, self._current)


class ModelPanel:
    """Model, weights (tag or file), method, device and precision."""

    def __init__(self) -> None:
        self.model = ModelPicker(label="model", value=DEFAULT_MODEL)
        self.weights = ComboBox(label="weights", choices=WEIGHT_SOURCES, value="tag")
        self.pretrained = ComboBox(label="pretrained", choices=self._tag_choices, nullable=True)
        self.checkpoint = FileEdit(label="checkpoint", mode="r", filter=CHECKPOINT_FILTER, value="")
        self.method = ComboBox(label="method", choices=method_choices(), value="gem",
                               tooltip=method_tooltip("gem"))
        self.device = ComboBox(label="device", choices=list(DEVICE_CHOICES), value="auto")
        self.precision = ComboBox(label="precision", choices=list(PRECISION_CHOICES), value="auto",
                                  tooltip=precision_tooltip())
        self.container = Container(widgets=list(self.fields().values()))
        self.show_default_tag()

    def fields(self) -> dict:
        return {name: getattr(self, name) for name in (
            "model", "weights", "pretrained", "checkpoint", "method", "device", "precision")}

    @property
    def family(self):
        return family_for(self.model.value)

    def _tag_choices(self, widget=None) -> list[tuple[str, str]]:
        """``(label, tag)``: a tag whose weights run other than the name says is marked
        (``openai (QuickGELU, runs as ViT-B-16-quickgelu)``)."""
        name = self.model.value if hasattr(self, "model") else DEFAULT_MODEL
        family = self.family if name else None
        return [(tag_label(tag, family.weights_note(name, tag)), tag)
                for tag in (family.pretrained_tags(name) if family else [])]

    def show_default_tag(self) -> None:
        """Show the tag a run will use, rather than an empty box."""
        if self.pretrained.value is None and self.model.value:
            default = self.family.default_pretrained(self.model.value)
            if default in self.pretrained.choices:
                self.pretrained.value = default

    def on_model_changed(self) -> None:
        self.pretrained.reset_choices()
        self.show_default_tag()
        if self.family.weights == WEIGHTS_FILE:
            self.weights.value = "file"

    def update_visibility(self) -> None:
        family = self.family
        packaged = family.weights == WEIGHTS_PACKAGED  # its weights ship with napari-gem
        self.weights.enabled = family.weights != WEIGHTS_FILE
        self.method.visible = family.uses_clip_methods  # other families make their own features
        self.weights.visible = not packaged
        self.pretrained.visible = self.weights.value == "tag" and not packaged
        self.checkpoint.visible = self.weights.value == "file" and not packaged
        self.method.tooltip = method_tooltip(self.method.value)

    def model_spec(self, method_options: dict) -> ModelSpec | None:
        """The model the fields describe (None when a checkpoint file is wanted but not set)."""
        family = self.family
        name = self.model.value
        if family.weights == WEIGHTS_PACKAGED:
            pretrained = family.default_pretrained(name)  # whatever the weights fields say
        elif self.weights.value == "file":
            path = str(self.checkpoint.value or "").strip()
            if not path or path == ".":
                return None
            pretrained = str(Path(path).expanduser())
        else:
            pretrained = self.pretrained.value or family.default_pretrained(name)
        return ModelSpec(
            name=name, pretrained=pretrained, device=self.device.value,
            precision=None if self.precision.value == "auto" else self.precision.value,
            method=self.method.value if family.uses_clip_methods else None,
            method_options=method_options,  # the options panel gives only the family's or method's own
        )
