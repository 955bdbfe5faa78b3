"""Miniature benchmarks on disk, in each dataset's exact layout, and stub scorers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from napari_gem.evaluation.protocol import CLIP_MEAN, CLIP_STD

# Dataset roots below the folder given as --root.
_VOC = "VOCdevkit/VOC2012"
_CONTEXT = "VOCdevkit/VOC2010"
_COCO = "coco_stuff164k"


def sample_ids(name: str, count: int) -> list[str]:
    """Realistic file ids for each dataset (Cityscapes ids carry their city folder)."""
    if name.startswith("voc"):
        return [f"2007_{index:06d}" for index in range(count)]
    if name.startswith("context"):
        return [f"2008_{index:06d}" for index in range(count)]
    if name.startswith("coco"):
        return [f"{index:012d}" for index in range(count)]
    if name == "cityscapes":
        cities = ("frankfurt", "lindau", "munster")
        return [f"{cities[i % 3]}/{cities[i % 3]}_{i:06d}_000019" for i in range(count)]
    return [f"ADE_val_{index + 1:08d}" for index in range(count)]


def layout_paths(name: str, sample_id: str) -> tuple[str, str]:
    """Image and label paths of a sample, relative to the folder given as --root."""
    if name.startswith("voc"):
        return (f"{_VOC}/JPEGImages/{sample_id}.jpg", f"{_VOC}/SegmentationClass/{sample_id}.png")
    if name.startswith("context"):
        return (
            f"{_CONTEXT}/JPEGImages/{sample_id}.jpg",
            f"{_CONTEXT}/SegmentationClassContext/{sample_id}.png",
        )
    if name == "coco-object":
        return (
            f"{_COCO}/images/val2017/{sample_id}.jpg",
            f"{_COCO}/annotations/val2017/{sample_id}_instanceTrainIds.png",
        )
    if name == "coco-stuff":
        return (
            f"{_COCO}/images/val2017/{sample_id}.jpg",
            f"{_COCO}/annotations/val2017/{sample_id}_labelTrainIds.png",
        )
    if name == "cityscapes":
        return (
            f"cityscapes/leftImg8bit/val/{sample_id}_leftImg8bit.png",
            f"cityscapes/gtFine/val/{sample_id}_gtFine_labelTrainIds.png",
        )
    return (
        f"ADEChallengeData2016/images/validation/{sample_id}.jpg",
        f"ADEChallengeData2016/annotations/validation/{sample_id}.png",
    )


def dataset_folder(name: str) -> str:
    return {"voc": _VOC, "con": _CONTEXT, "coc": _COCO, "cit": "cityscapes"}.get(
        name[:3], "ADEChallengeData2016"
    )


def _write_label(path: Path, label: np.ndarray, palette: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.ascontiguousarray(label.astype(np.uint8))
    if palette:  # VOC stores palette PNGs: the pixel values are the palette indices
        image = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
        image.putpalette([channel for index in range(256) for channel in (index, 255 - index, 7)])
    else:
        image = Image.fromarray(values)
    image.save(path)


def _write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jpg":
        Image.fromarray(image).save(path, quality=100, subsampling=0)
    else:
        Image.fromarray(image).save(path)


def write_dataset(
    name: str,
    base: Path,
    labels: Sequence[np.ndarray],
    images: Sequence[np.ndarray] | None = None,
    ids: Sequence[str] | None = None,
) -> list[str]:
    """Write a miniature ``name`` dataset under ``base`` (the --root folder).

    ``labels`` are the values as stored on disk. Returns the sample ids in the order
    written to the split file (VOC / Context), which is deliberately not sorted.
    """
    ids = list(ids) if ids is not None else sample_ids(name, len(labels))
    rng = np.random.default_rng(0)
    for index, (sample_id, label) in enumerate(zip(ids, labels, strict=True)):
        if images is not None:
            image = images[index]
        else:
            image = rng.integers(0, 256, (*label.shape, 3), dtype=np.uint8)
        image_path, label_path = layout_paths(name, sample_id)
        _write_image(base / image_path, image)
        _write_label(base / label_path, label, palette=name.startswith("voc"))
    if name.startswith(("voc", "context")):
        split = "Segmentation" if name.startswith("voc") else "SegmentationContext"
        split_file = base / dataset_folder(name) / "ImageSets" / split / "val.txt"
        split_file.parent.mkdir(parents=True, exist_ok=True)
        split_file.write_text("".join(f"{sample_id}\n" for sample_id in reversed(ids)))
        return list(reversed(ids))
    return sorted(ids)


@pytest.fixture
def make_dataset(tmp_path):
    """``make_dataset(name, labels, images=None, ids=None) -> (root, ids in order)``."""

    def make(name, labels, images=None, ids=None):
        root = tmp_path / "data"
        order = write_dataset(name, root, labels, images, ids)
        return root, order

    return make


def denormalise(pixels: torch.Tensor) -> torch.Tensor:
    """CLIP-normalised pixels back to 0..255 RGB values."""
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels * std + mean) * 255


class PaletteScorer:
    """A stand-in model that "recognises" class ``c`` where the pixel colour is
    ``colours[c]``: the logit of each prompt is minus the colour distance (in units of
    100 grey levels) to its class's colour. Prompts are passed through as given."""

    def __init__(self, colours: np.ndarray, prompt_class: Sequence[int]) -> None:
        self.colours = torch.as_tensor(colours, dtype=torch.float32)
        self.prompt_class = list(prompt_class)
        self.calls: list[tuple[int, ...]] = []
        self.embedded: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    device = torch.device("cpu")
    logit_scale = 100.0

    def embed_prompts(self, prompts, templates) -> torch.Tensor:
        self.embedded.append((tuple(prompts), tuple(templates)))
        assert len(prompts) == len(self.prompt_class)
        return self.colours[self.prompt_class]  # [P, 3]: each prompt's class colour

    def crop_similarity(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(pixels.shape))
        rgb = denormalise(pixels)  # [B, 3, h, w]
        distance = (rgb[:, None] - text[None, :, :, None, None]).norm(dim=2)  # [B, P, h, w]
        return -distance / 100


class ConstantScorer:
    """A stand-in model that gives every pixel the same prompt logits."""

    device = torch.device("cpu")
    logit_scale = 100.0

    def __init__(self, logits: Sequence[float]) -> None:
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def embed_prompts(self, prompts, templates) -> torch.Tensor:
        assert len(prompts) == len(self.logits)
        return torch.eye(len(prompts))

    def crop_similarity(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = pixels.shape
        return self.logits.view(1, -1, 1, 1).expand(batch, -1, height, width).clone()


@pytest.fixture
def scorers() -> SimpleNamespace:
    """The stand-in model classes: ``scorers.Palette`` and ``scorers.Constant``."""
    return SimpleNamespace(Palette=PaletteScorer, Constant=ConstantScorer)
