"""What the batch will do for each input image: where its outputs go, and whether it is done."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.software import software_record
from ..io.export import parameters_path
from ..io.images import image_stem
from ..io.inputs import InputImage

if TYPE_CHECKING:
    from ..engine import SegmentOptions
    from ..io.images import LoadedImage
    from ..io.planes import PlaneLayout


@dataclass(frozen=True)
class ImageJob:
    """One input image and the output folder and file stem of its results."""

    source: Path
    out_dir: Path
    stem: str

    @property
    def parameters(self) -> Path:
        return parameters_path(self.out_dir, self.stem)

    def done_for(self, request: dict) -> bool:
        """Whether complete outputs of this very request exist.

        The parameters JSON is written last: when it is there, every output is. It must
        also record the same prompts, options and model, else the outputs answer another
        question and are made again.
        """
        try:
            recorded = json.loads(self.parameters.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        expected = json.loads(json.dumps(request))  # tuples become lists, as recorded
        model = recorded.get("model", {})
        return (
            recorded.get("prompts") == expected["prompts"]
            and recorded.get("options") == expected["options"]
            and all(model.get(key) == value for key, value in expected["model"].items())
        )


def plan_jobs(images: Iterable[InputImage], out_dir: Path) -> list[ImageJob]:
    """One job per image, with stems unique within each output folder.

    Images below a folder argument keep their subfolder in the output. Two images with
    one stem (``a.tif`` and ``a.png``) are told apart by their full file names.
    """
    images = list(images)
    stems = [image_stem(image.path) for image in images]
    folders = [Path(out_dir) / image.subfolder for image in images]
    clashing = _clashes(zip(folders, stems, strict=True))
    jobs, taken = [], set()
    for image, folder, stem in zip(images, folders, stems, strict=True):
        if (folder, stem.lower()) in clashing:
            stem = image.path.name.replace(".", "_")
        candidate, number = stem, 1
        while (folder, candidate.lower()) in taken:
            number += 1
            candidate = f"{stem}-{number}"
        taken.add((folder, candidate.lower()))
        jobs.append(ImageJob(image.path, folder, candidate))
    return jobs


def _clashes(pairs: Iterable[tuple[Path, str]]) -> set[tuple[Path, str]]:
    # Case-insensitive: macOS and Windows would write both images' outputs to one file.
    seen, clashing = set(), set()
    for folder, stem in pairs:
        key = (folder, stem.lower())
        (clashing if key in seen else seen).add(key)
    return clashing


def parameters_header(job: ImageJob, image: LoadedImage, layout: PlaneLayout, mode: str,
                      prompts: Sequence[str], model: dict, options: SegmentOptions) -> dict:
    """The first entries of an image's parameters JSON, the same on both paths.

    ``mode`` is ``"in-memory"`` or ``"out-of-core"``; ``model`` the model's description.
    """
    return {
        "software": software_record(),
        "mode": mode,
        "source": str(job.source),
        "source_shape": list(image.shape),
        "source_axes": image.axes,
        "output_axes": "".join(image.axes[axis] for axis in layout.output_axes),
        "prompts": list(prompts),
        "model": model,
        "options": options.to_dict(),
        "option_sources": options.sources(),
    }
