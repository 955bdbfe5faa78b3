"""Prompt names of the benchmark classes, as used by the training-free protocol.

One class per line, in label order; a line may list several comma-separated
synonyms, and a class scores the best of its synonyms. These are the name lists
shipped with the SCLIP / NACLIP / ClearCLIP evaluation code (``configs/cls_*.txt``),
kept as package data in ``class_name_lists/``: the background class of VOC-21 and
COCO-Object is described by a list of common "stuff" words, since CLIP has no notion of
"background".
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

#: The shipped name lists, one text file per dataset, in the label order of its ground truth.
LISTS = files(__package__) / "class_name_lists"


def dataset_names() -> list[str]:
    """The datasets with a shipped class-name list."""
    return sorted(entry.name.removesuffix(".txt") for entry in LISTS.iterdir()
                  if entry.name.endswith(".txt"))


@dataclass(frozen=True)
class ClassNames:
    """The synonyms of each class, and the flat prompt list the model scores.

    ``prompts[i]`` belongs to class ``prompt_class[i]``; ``display`` holds one
    readable name per class for result tables.
    """

    synonyms: tuple[tuple[str, ...], ...]
    display: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.synonyms)

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(name for names in self.synonyms for name in names)

    @property
    def prompt_class(self) -> tuple[int, ...]:
        return tuple(index for index, names in enumerate(self.synonyms) for _ in names)

    def without_synonyms(self, *, background_first: bool = False) -> ClassNames:
        """One name per class (its first; "background" for a background class 0), as in
        ClearCLIP's name files, which carry no synonyms (github.com/mc-lan/ClearCLIP,
        ``configs/cls_*.txt``; the exact words of those files are inferred)."""
        names = [(names[0],) for names in self.synonyms]
        if background_first:
            names[0] = ("background",)
        return ClassNames(synonyms=tuple(names), display=self.display)


def parse_class_names(text: str, *, background_first: bool = False) -> ClassNames:
    """Parse a name list: one class per non-empty line, synonyms separated by commas.

    With ``background_first`` the first class is displayed as "background" whatever
    words describe it (its prompts are unchanged).
    """
    synonyms = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        names = tuple(name.strip() for name in line.split(","))
        if any(not name for name in names):
            raise ValueError(f"class-name line {number} has an empty name: {line!r}")
        synonyms.append(names)
    if not synonyms:
        raise ValueError("the class-name list is empty")
    display = [names[0] for names in synonyms]
    if background_first:
        display[0] = "background"
    return ClassNames(synonyms=tuple(synonyms), display=tuple(display))


def dataset_class_names(dataset: str, *, background_first: bool = False) -> ClassNames:
    """The shipped class names of a dataset (a file of :data:`LISTS`)."""
    if dataset not in dataset_names():
        known = ", ".join(dataset_names())
        raise ValueError(f"no class names for dataset {dataset!r}; known: {known}")
    text = (LISTS / f"{dataset}.txt").read_text(encoding="utf-8")
    return parse_class_names(text, background_first=background_first)


def read_class_names(path: str | Path, *, background_first: bool = False) -> ClassNames:
    """Read a name list file in the same format (e.g. a reference repo's ``cls_*.txt``)."""
    return parse_class_names(Path(path).read_text(encoding="utf-8"), background_first=background_first)
