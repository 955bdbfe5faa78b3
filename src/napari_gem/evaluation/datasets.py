"""Readers for the eight benchmarks, in the MMSegmentation on-disk layouts.

Each dataset is described by a :class:`DatasetSpec` (where images and labels live,
how labels map to class indices); :func:`open_dataset` checks the layout under a
root folder and lists the image/label pairs in the order MMSegmentation uses
(the split file's order, or sorted file names when there is no split file).

Label conventions: 255 is "ignore". With ``reduce_zero_label`` the label 0
(background / "other") becomes 255 and every other label moves down by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .class_names import ClassNames, dataset_class_names

IGNORE_INDEX = 255


class DatasetLayoutError(FileNotFoundError):
    """The root folder does not hold the dataset in the expected layout."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a benchmark's validation images and labels are, and what labels mean."""

    name: str
    title: str
    num_classes: int
    image_dir: str  # relative to the dataset root
    label_dir: str
    image_suffix: str
    label_suffix: str
    split_file: str | None  # ids listed one per line; None: every image under image_dir
    reduce_zero_label: bool
    has_background: bool  # class 0 is "background" (predicted by threshold / stuff words)
    root_names: tuple[str, ...]  # where the dataset root may sit below the given folder
    layout: str  # the expected layout, in words, for error messages and the docs
    label_hint: str = ""  # how to produce the label files when they are missing

    def class_names(self) -> ClassNames:
        """The shipped prompt names of this dataset's classes."""
        return dataset_class_names(self.name, background_first=self.has_background)


_VOC_LAYOUT = (
    "VOCdevkit/VOC2012/JPEGImages/<id>.jpg, VOCdevkit/VOC2012/SegmentationClass/<id>.png "
    "and VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt"
)
_CONTEXT_LAYOUT = (
    "VOCdevkit/VOC2010/JPEGImages/<id>.jpg, VOCdevkit/VOC2010/SegmentationClassContext/<id>.png "
    "and VOCdevkit/VOC2010/ImageSets/SegmentationContext/val.txt"
)
_CONTEXT_HINT = (
    "SegmentationClassContext is made from trainval_merged.json by MMSegmentation's "
    "tools/dataset_converters/pascal_context.py"
)
_COCO_ROOTS = ("coco_stuff164k", "coco_stuff", "coco")

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="voc20",
            title="PASCAL VOC 2012 val, 20 object classes (background ignored)",
            num_classes=20,
            image_dir="JPEGImages",
            label_dir="SegmentationClass",
            image_suffix=".jpg",
            label_suffix=".png",
            split_file="ImageSets/Segmentation/val.txt",
            reduce_zero_label=True,
            has_background=False,
            root_names=("VOCdevkit/VOC2012", "VOC2012"),
            layout=_VOC_LAYOUT,
        ),
        DatasetSpec(
            name="voc21",
            title="PASCAL VOC 2012 val, background + 20 object classes",
            num_classes=21,
            image_dir="JPEGImages",
            label_dir="SegmentationClass",
            image_suffix=".jpg",
            label_suffix=".png",
            split_file="ImageSets/Segmentation/val.txt",
            reduce_zero_label=False,
            has_background=True,
            root_names=("VOCdevkit/VOC2012", "VOC2012"),
            layout=_VOC_LAYOUT,
        ),
        DatasetSpec(
            name="context59",
            title="PASCAL Context val, 59 classes (background ignored)",
            num_classes=59,
            image_dir="JPEGImages",
            label_dir="SegmentationClassContext",
            image_suffix=".jpg",
            label_suffix=".png",
            split_file="ImageSets/SegmentationContext/val.txt",
            reduce_zero_label=True,
            has_background=False,
            root_names=("VOCdevkit/VOC2010", "VOC2010"),
            layout=_CONTEXT_LAYOUT,
            label_hint=_CONTEXT_HINT,
        ),
        DatasetSpec(
            name="context60",
            title="PASCAL Context val, background + 59 classes",
            num_classes=60,
            image_dir="JPEGImages",
            label_dir="SegmentationClassContext",
            image_suffix=".jpg",
            label_suffix=".png",
            split_file="ImageSets/SegmentationContext/val.txt",
            reduce_zero_label=False,
            has_background=True,
            root_names=("VOCdevkit/VOC2010", "VOC2010"),
            layout=_CONTEXT_LAYOUT,
            label_hint=_CONTEXT_HINT,
        ),
        DatasetSpec(
            name="coco-object",
            title="COCO val2017, background + 80 object classes",
            num_classes=81,
            image_dir="images/val2017",
            label_dir="annotations/val2017",
            image_suffix=".jpg",
            label_suffix="_instanceTrainIds.png",
            split_file=None,
            reduce_zero_label=False,
            has_background=True,
            root_names=_COCO_ROOTS,
            layout=(
                "coco_stuff164k/images/val2017/<id>.jpg and "
                "coco_stuff164k/annotations/val2017/<id>_instanceTrainIds.png"
            ),
            label_hint=(
                "the *_instanceTrainIds.png files are made from COCO-Stuff by "
                "datasets/cvt_coco_object.py of the SCLIP / NACLIP repositories"
            ),
        ),
        DatasetSpec(
            name="coco-stuff",
            title="COCO-Stuff 164k val2017, 171 classes",
            num_classes=171,
            image_dir="images/val2017",
            label_dir="annotations/val2017",
            image_suffix=".jpg",
            label_suffix="_labelTrainIds.png",
            split_file=None,
            reduce_zero_label=False,
            has_background=False,
            root_names=_COCO_ROOTS,
            layout=(
                "coco_stuff164k/images/val2017/<id>.jpg and "
                "coco_stuff164k/annotations/val2017/<id>_labelTrainIds.png"
            ),
            label_hint=(
                "the *_labelTrainIds.png files are made by MMSegmentation's "
                "tools/dataset_converters/coco_stuff164k.py"
            ),
        ),
        DatasetSpec(
            name="cityscapes",
            title="Cityscapes val, 19 classes",
            num_classes=19,
            image_dir="leftImg8bit/val",
            label_dir="gtFine/val",
            image_suffix="_leftImg8bit.png",
            label_suffix="_gtFine_labelTrainIds.png",
            split_file=None,
            reduce_zero_label=False,
            has_background=False,
            root_names=("cityscapes",),
            layout=(
                "cityscapes/leftImg8bit/val/<city>/<name>_leftImg8bit.png and "
                "cityscapes/gtFine/val/<city>/<name>_gtFine_labelTrainIds.png"
            ),
            label_hint=(
                "the *_gtFine_labelTrainIds.png files are made by MMSegmentation's "
                "tools/dataset_converters/cityscapes.py"
            ),
        ),
        DatasetSpec(
            name="ade20k",
            title="ADE20K (SceneParsing) val, 150 classes",
            num_classes=150,
            image_dir="images/validation",
            label_dir="annotations/validation",
            image_suffix=".jpg",
            label_suffix=".png",
            split_file=None,
            reduce_zero_label=True,
            has_background=False,
            root_names=("ADEChallengeData2016", "ade/ADEChallengeData2016"),
            layout=(
                "ADEChallengeData2016/images/validation/<id>.jpg and "
                "ADEChallengeData2016/annotations/validation/<id>.png"
            ),
        ),
    )
}


def dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a dataset name (``voc20``, ``ade20k``, ...)."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise ValueError(f"unknown dataset {name!r}; choose one of: {known}") from None


@dataclass(frozen=True)
class Sample:
    """One validation image and its label map."""

    name: str
    image_path: Path
    label_path: Path


def read_image(path: Path) -> np.ndarray:
    """An image file as ``[H, W, 3]`` uint8 RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_label(path: Path) -> np.ndarray:
    """A label PNG as stored: ``[H, W]`` class indices (palette PNGs give their indices)."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(
                f"{path} is a {image.mode} image, not a label map of class indices "
                "(palette or grey-level PNG)"
            )
        return np.asarray(image).astype(np.int64)


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """MMSegmentation's ``reduce_zero_label``: 0 becomes ignore, ``k`` becomes ``k - 1``."""
    reduced = label.astype(np.int64) - 1
    reduced[label == 0] = IGNORE_INDEX
    reduced[label == IGNORE_INDEX] = IGNORE_INDEX
    return reduced


class SegmentationDataset:
    """The image/label pairs of one benchmark under a checked root folder."""

    def __init__(self, spec: DatasetSpec, root: Path, samples: list[Sample]) -> None:
        self.spec = spec
        self.root = root
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """The RGB image ``[H, W, 3]`` uint8 and the label ``[H, W]`` in class indices
        ``0 .. num_classes-1`` or :data:`IGNORE_INDEX`."""
        image = read_image(sample.image_path)
        label = read_label(sample.label_path)
        if label.shape != image.shape[:2]:
            raise ValueError(
                f"{sample.label_path} is {label.shape[1]}x{label.shape[0]} but its image "
                f"{sample.image_path} is {image.shape[1]}x{image.shape[0]}"
            )
        return image, self.convert_label(label)

    def convert_label(self, label: np.ndarray) -> np.ndarray:
        """Stored label values to class indices, with this dataset's convention."""
        if self.spec.reduce_zero_label:
            return reduce_zero_label(label)
        return label.astype(np.int64)


def _layout_error(
    spec: DatasetSpec, root: Path, missing: str, *, about_labels: bool = False
) -> DatasetLayoutError:
    hint = f" ({spec.label_hint})" if about_labels and spec.label_hint else ""
    return DatasetLayoutError(
        f"{spec.name}: {missing} under {root}{hint}. Expected layout: {spec.layout}; "
        f"--root may point at the folder holding these or at one above it."
    )


def resolve_root(spec: DatasetSpec, root: str | Path) -> Path:
    """The dataset root below or at ``root``: the first candidate with the image folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(f"{spec.name}: the root folder {root} does not exist")
    for candidate in (root, *(root / name for name in spec.root_names)):
        if (candidate / spec.image_dir).is_dir():
            return candidate
    raise _layout_error(spec, root, f"no folder {spec.image_dir}")


def _split_ids(spec: DatasetSpec, root: Path) -> list[str]:
    split = root / spec.split_file
    if not split.is_file():
        raise _layout_error(spec, root, f"no split file {spec.split_file}")
    ids = [line.strip() for line in split.read_text().splitlines() if line.strip()]
    if not ids:
        raise _layout_error(spec, root, f"the split file {spec.split_file} is empty")
    return ids


def _scanned_ids(spec: DatasetSpec, root: Path) -> list[str]:
    # MMSegmentation lists image files recursively and sorts their relative paths.
    image_root = root / spec.image_dir
    found = sorted(
        path.relative_to(image_root).as_posix()
        for path in image_root.rglob(f"*{spec.image_suffix}")
        if path.is_file()
    )
    if not found:
        raise _layout_error(spec, root, f"no *{spec.image_suffix} images in {spec.image_dir}")
    return [relative[: -len(spec.image_suffix)] for relative in found]


def open_dataset(name: str, root: str | Path) -> SegmentationDataset:
    """Check the layout of dataset ``name`` under ``root`` and list its validation pairs.

    Raises :class:`DatasetLayoutError` naming the first missing folder or file and
    the expected layout.
    """
    spec = dataset_spec(name)
    dataset_root = resolve_root(spec, root)
    if not (dataset_root / spec.label_dir).is_dir():
        raise _layout_error(spec, dataset_root, f"no label folder {spec.label_dir}", about_labels=True)
    ids = _split_ids(spec, dataset_root) if spec.split_file else _scanned_ids(spec, dataset_root)
    samples = []
    for sample_id in ids:
        image = dataset_root / spec.image_dir / f"{sample_id}{spec.image_suffix}"
        label = dataset_root / spec.label_dir / f"{sample_id}{spec.label_suffix}"
        if not image.is_file():
            raise _layout_error(spec, dataset_root, f"no image {image.relative_to(dataset_root)}")
        if not label.is_file():
            missing = f"no label file {label.relative_to(dataset_root)}"
            raise _layout_error(spec, dataset_root, missing, about_labels=True)
        samples.append(Sample(name=sample_id, image_path=image, label_path=label))
    return SegmentationDataset(spec, dataset_root, samples)
