"""Output layers: one heatmap Image and one mask Labels layer per prompt (or one semantic map).

Output layers are found again through their metadata (``layer.metadata["napari_gem"]``:
role, prompt, source layer id), not their names, so renaming any layer is harmless.
A mask is "edited" when its data no longer matches the digest recorded when the plugin
last wrote it: such a mask is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

META = "napari_gem"

#: Mask colours, one per prompt (Okabe-Ito, readable for colour-blind users).
PALETTE = (
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#ffffff",
)
HEATMAP_COLORMAP = "gem-inferno"
MASK_OPACITY = 0.5
#: New masks open as outlines (pixels wide), so the image and heatmap under them stay in
#: sight; napari's brush and eraser paint the same, and the layer controls fill them.
MASK_CONTOUR = 2


def heatmap_colormap():
    """Inferno (perceptually uniform) fading to transparent at low scores.

    Low scores let the image show through and high scores glow, on dark fluorescence
    and bright photographs alike (plain additive blending washes bright images out).
    """
    from napari.utils.colormaps import Colormap, ensure_colormap

    colors = np.array(ensure_colormap("inferno").colors, dtype=np.float32)
    colors[:, 3] = np.linspace(0.0, 1.0, len(colors)) ** 0.6
    return Colormap(colors, name=HEATMAP_COLORMAP, display_name="inferno (fading)")


def heatmap_style() -> dict:
    """Keyword arguments giving a heatmap Image layer its look."""
    return {
        "colormap": heatmap_colormap(),
        "blending": "translucent",
        "opacity": 0.85,
        "contrast_limits": (0.0, 1.0),
    }


# -- identity and bookkeeping ----------------------------------------------------------------
def source_id(layer) -> str:
    """A stable id of a source layer that survives renaming."""
    return str(layer.unique_id)


def heatmap_name(prompt: str, source: str) -> str:
    return f"{prompt} heatmap ({source})"


def mask_name(prompt: str, source: str, mode: str) -> str:
    kind = "instances" if mode == "instances" else "mask"
    return f"{prompt} {kind} ({source})"


def semantic_name(source: str) -> str:
    return f"semantic labels ({source})"


def info(layer) -> dict:
    """The plugin's metadata of a layer (empty for layers it did not make)."""
    value = layer.metadata.get(META) if hasattr(layer, "metadata") else None
    return value if isinstance(value, dict) else {}


def digest(array) -> str:
    """A fingerprint of an array's contents (to tell whether a mask was edited by hand)."""
    array = np.ascontiguousarray(array)
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(repr((array.shape, array.dtype.str)).encode())
    hasher.update(memoryview(array).cast("B"))
    return hasher.hexdigest()


def is_edited(layer) -> bool:
    """Whether a mask layer's data differs from what the plugin last wrote into it."""
    recorded = info(layer).get("digest")
    return recorded is not None and recorded != digest(layer.data)


def outputs_of(layers: Iterable, source: str, role: str, prompt: str | None = None) -> list:
    """Output layers of ``source`` with ``role`` (and ``prompt``), bottom to top."""
    found = []
    for layer in layers:
        meta = info(layer)
        if meta.get("source_id") != source or meta.get("role") != role:
            continue
        if prompt is not None and meta.get("prompt") != prompt:
            continue
        found.append(layer)
    return found


def signature(parameters: dict) -> str:
    """What makes heatmaps comparable: model, encoding and scoring, source level/channels.

    Planes computed under another signature are not mixed into one layer.
    """
    options = dict(parameters.get("options", {}))
    for name in ("threshold", "min_size", "fill_holes", "instances", "background_threshold",
                 "window_batch"):
        options.pop(name, None)
    model = dict(parameters.get("model", {}))
    source = dict(parameters.get("source", {}))
    source.pop("layer", None)  # a renamed source is still the same source
    return json.dumps({"model": model, "options": options, "source": source}, sort_keys=True,
                      default=str)


def plane_key(index: Sequence[int]) -> str:
    return ",".join(str(int(i)) for i in index)


def parse_plane_key(key: str) -> tuple[int, ...]:
    return tuple(int(i) for i in key.split(",")) if key else ()


# -- results in, layers out ---------------------------------------------------------------------
@dataclass
class WriteReport:
    """What a write did, for the widget to tell the user."""

    layers: list = field(default_factory=list)
    diverted: list[tuple[str, str]] = field(default_factory=list)  # (edited layer, new layer)
    skipped_edited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _style_mask(layer, mode: str, prompts: Sequence[str], prompt_index: int | None) -> None:
    from napari.utils.colormaps import DirectLabelColormap, label_colormap

    if mode == "instances":
        layer.colormap = label_colormap()  # napari's own: neighbours look different
    elif mode == "binary" and prompt_index is not None:
        colour = PALETTE[prompt_index % len(PALETTE)]
        layer.colormap = DirectLabelColormap(
            color_dict={None: colour, 0: "transparent", 1: colour}
        )
    elif mode == "semantic":
        colours = {None: "#ffffff", 0: "transparent"}
        colours.update({i + 1: PALETTE[i % len(PALETTE)] for i in range(len(prompts))})
        layer.colormap = DirectLabelColormap(color_dict=colours)
        import pandas as pd

        layer.features = pd.DataFrame(
            {"index": np.arange(len(prompts) + 1), "prompt": ["background", *prompts]}
        )


def _fresh(shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def _reusable(layers: Sequence, ndim: int):
    """The newest of ``layers`` that can take data of ``ndim`` axes (older ones step aside)."""
    for layer in reversed(layers):
        if layer.ndim == ndim:
            return layer
        # Another geometry (e.g. a channel axis now consumed): keep it, but stop finding it.
        layer.metadata[META]["role"] = "superseded"
    return None


def _target_array(layer, shape, dtype, same_signature: bool) -> np.ndarray:
    """The array to write planes into: the layer's own when compatible, else a new one."""
    if layer is None or not same_signature or tuple(layer.data.shape) != tuple(shape):
        return _fresh(shape, dtype)
    data = np.asarray(layer.data)
    return data.astype(dtype) if data.dtype != dtype else data.copy()


class OutputWriter:
    """Creates and updates the output layers of one source layer in one viewer."""

    def __init__(self, viewer, source_layer, geometry) -> None:
        self.viewer = viewer
        self.source = source_layer
        self.sid = source_id(source_layer)
        self.geometry = geometry

    @property
    def source_name(self) -> str:
        return self.source.name

    @property
    def shown_name(self) -> str:
        """The source as output layer names give it: with the geometry's note (a view)."""
        note = self.geometry.note
        return f"{self.source.name}, {note}" if note else self.source.name

    def _meta(self, role: str, prompt: str | None, parameters: dict, planes: dict,
              **extra) -> dict:
        return {
            META: {
                "role": role,
                "prompt": prompt,
                "source_id": self.sid,
                "source_name": self.source_name,
                "signature": signature(parameters),
                "parameters": parameters,
                "planes": planes,
                **extra,
            }
        }

    # heatmaps --------------------------------------------------------------------------------
    def write_heatmaps(self, prompts: Sequence[str], plane_results, parameters: dict) -> list:
        """Put each prompt's heatmap planes into its heatmap layer (updated in place)."""
        shape = self.geometry.shape
        sig = signature(parameters)
        layers = []
        for p, prompt in enumerate(prompts):
            existing = outputs_of(self.viewer.layers, self.sid, "heatmap", prompt)
            layer = _reusable(existing, len(shape))
            same = layer is not None and info(layer).get("signature") == sig
            data = _target_array(layer, shape, np.float32, same)
            planes = dict(info(layer).get("planes", {})) if same else {}
            for result in plane_results:
                data[tuple(result.index)] = result.heatmaps[p]
                planes[plane_key(result.index)] = {
                    "threshold": float(result.thresholds[p]),
                    "presence": float(result.presence[p]),
                    **({"skipped": result.skipped} if result.skipped else {}),
                }
            name = heatmap_name(prompt, self.shown_name)
            meta = self._meta("heatmap", prompt, parameters, planes, auto_name=name)
            if layer is None:
                layer = self.viewer.add_image(
                    data, name=name, metadata=meta, **heatmap_style(),
                    **self.geometry.layer_kwargs(),
                )
            else:
                if layer.name == info(layer).get("auto_name"):
                    layer.name = name
                layer.metadata = {**layer.metadata, **meta}
                layer.data = data
                self._place(layer)
                layer.contrast_limits = (0.0, 1.0)
            layers.append(layer)
        return layers

    def _place(self, layer) -> None:
        for name, value in self.geometry.layer_kwargs().items():
            setattr(layer, name, value)

    # masks -------------------------------------------------------------------------------------
    def write_masks(
        self,
        prompts: Sequence[str],
        mode: str,
        plane_labels: Sequence[tuple[tuple[int, ...], np.ndarray]],
        parameters: dict,
        *,
        edited: str = "divert",
    ) -> WriteReport:
        """Write label planes into the mask layers of ``mode``.

        ``plane_labels``: (plane index, labels) with labels ``[P, H, W]`` (binary or
        instances) or ``[H, W]`` (semantic). An edited mask layer is never written:
        ``edited="divert"`` puts the result into a new layer, ``"skip"`` leaves it be.
        Unedited mask layers of the other modes for these prompts are removed (they
        would show stale results).
        """
        report = WriteReport()
        dtype = np.uint8 if mode == "binary" else np.int32
        if mode == "semantic":
            targets = [(None, None, "semantic", semantic_name(self.shown_name))]
        else:
            targets = [(p, prompt, "mask", mask_name(prompt, self.shown_name, mode))
                       for p, prompt in enumerate(prompts)]
        for p, prompt, role, name in targets:
            planes = [(index, labels if p is None else labels[p]) for index, labels in plane_labels]
            self._write_mask(role, prompt, p, name, mode, prompts, planes, parameters, dtype,
                             edited, report)
        self._remove_other_modes(prompts, mode, report)
        return report

    def _write_mask(self, role, prompt, p, name, mode, prompts, planes, parameters, dtype,
                    edited, report) -> None:
        shape = self.geometry.shape
        sig = signature(parameters)
        candidates = [
            layer for layer in outputs_of(self.viewer.layers, self.sid, role, prompt)
            if role != "semantic" or info(layer).get("prompts") == list(prompts)
        ]
        edited_layers = [layer for layer in candidates if is_edited(layer)]
        clean = [layer for layer in candidates if layer not in edited_layers]
        layer = _reusable(clean, len(shape))
        if layer is None and edited_layers and edited == "skip":
            report.skipped_edited.append(edited_layers[-1].name)
            return
        same = (layer is not None and info(layer).get("signature") == sig
                and info(layer).get("mode") == mode)
        data = _target_array(layer, shape, dtype, same)
        done = dict(info(layer).get("planes", {})) if same else {}
        for index, labels in planes:
            data[tuple(index)] = labels
            done[plane_key(index)] = True
        meta = self._meta(role, prompt, parameters, done, mode=mode, prompts=list(prompts),
                          auto_name=name)
        if layer is None:
            layer = self.viewer.add_labels(
                data, name=name, metadata=meta, opacity=MASK_OPACITY,
                **self.geometry.layer_kwargs(),
            )
            layer.contour = MASK_CONTOUR  # only when made: a later run keeps the user's choice
            if edited_layers:
                report.diverted.append((edited_layers[-1].name, layer.name))
        else:
            if layer.name == info(layer).get("auto_name"):
                layer.name = name  # our own name: follow the mode and the source's name
            layer.metadata = {**layer.metadata, **meta}
            layer.data = data
            self._place(layer)
        # The digest of what napari holds now: any later difference is the user's edit.
        layer.metadata[META]["digest"] = digest(layer.data)
        _style_mask(layer, mode, prompts, p)
        report.layers.append(layer)

    def _remove_other_modes(self, prompts, mode, report) -> None:
        stale = []
        for layer in list(self.viewer.layers):
            meta = info(layer)
            if meta.get("source_id") != self.sid or meta.get("role") not in ("mask", "semantic"):
                continue
            if meta.get("mode") == mode or is_edited(layer):
                continue
            overlapping = (
                set(meta.get("prompts", [])) & set(prompts)
                if meta.get("role") == "semantic"
                else meta.get("prompt") in prompts
            )
            if overlapping:
                stale.append(layer)
        for layer in stale:
            report.removed.append(layer.name)
            self.viewer.layers.remove(layer)


# -- the planes of stored heatmaps (live threshold) ---------------------------------------------
def computed_planes(heatmap_layers: Sequence) -> list[tuple[int, ...]]:
    """Planes computed (and not skipped as constant) in all of these heatmap layers."""
    keys = None
    for layer in heatmap_layers:
        planes = {k for k, v in info(layer).get("planes", {}).items() if not v.get("skipped")}
        keys = planes if keys is None else keys & planes
    return [parse_plane_key(key) for key in sorted(keys or (), key=parse_plane_key)]
