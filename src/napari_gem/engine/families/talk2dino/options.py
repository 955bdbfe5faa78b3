"""Talk2DINO's own options: where its frozen parts come from, and the background cleaning.

Described once with :func:`~napari_gem.engine.described.option`; ``load_model`` takes them
as its method options (``load_model("talk2dino-vitb14", "vitb_mlp_infonce.pth",
method_options={"background_cleaning": True})``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ...described import check_described, option


@dataclass(frozen=True)
class Talk2DinoOptions:
    """How a Talk2DINO model is built and how its per-crop masks are made."""

    # Text options (a form's text field, a flag's text): the parts come back as a tuple.
    backbone_weights: str | None = option(
        None, kind="texts", label="DINOv2 weights file", example=("dinov2_vitb14_reg4.pth",),
        noun="file path", help="Talk2DINO: a timm state dict of vit_base_patch14_reg4_dinov2 "
        "(empty: timm's pretrained weights from the Hugging Face cache)")
    text_weights: str | None = option(
        None, kind="texts", label="CLIP text weights file", example=("ViT-B-16.pt",),
        noun="file path", help="Talk2DINO: an open_clip checkpoint of ViT-B-16-quickgelu "
        "(empty: the OpenAI weights from the open_clip cache)")
    background_cleaning: bool = option(
        False, kind="bool", label="background cleaning",
        help="Talk2DINO: blend DINOv2's class-attention heads, weighted by each prompt, into "
        "its masks (the official evaluation turns it on for datasets with a background class)")

    def __post_init__(self) -> None:
        for name in ("backbone_weights", "text_weights"):
            object.__setattr__(self, name, _one_path(getattr(self, name)))
        if not isinstance(self.background_cleaning, bool):
            raise ValueError(f"background_cleaning must be True or False; got {self.background_cleaning!r}")
        check_described(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _one_path(value) -> str | None:
    """A path from a string, a path-like, or the comma-split parts a form or flag gives."""
    if isinstance(value, (tuple, list)):
        value = ",".join(str(part) for part in value)
    if value is None:
        return None
    text = os.fspath(value).strip() if isinstance(value, (str, os.PathLike)) else None
    if text is None:
        raise ValueError(f"a weights file must be a path; got {value!r}")
    return os.path.expanduser(text) if text else None


def options_from(values: dict[str, Any]) -> Talk2DinoOptions:
    """Validated options; a ``ValueError`` naming unknown ones and the known ones."""
    known = [field.name for field in dataclasses.fields(Talk2DinoOptions)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"Talk2DINO has no option {', '.join(map(repr, unknown))} (its options: "
                         f"{', '.join(known)})")
    return Talk2DinoOptions(**values)
