"""Options described once: label, help, range and choices live with the dataclass field.

An options dataclass (``SegmentOptions``, each method's options) declares its fields
with :func:`option`; the napari form (:mod:`napari_gem.plugin.forms`) and the
command-line flags (:mod:`napari_gem.cli.option_flags`) are both built from
:func:`describe`, so adding an option is one edit: the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: What kind of value an option holds (the form and the flags pick a control from it).
KINDS = ("int", "float", "bool", "choice", "toggle", "ints", "floats", "texts", "path")
#: When an option acts: on the encoding of an image (the model's pass over it), on the scores of
#: the prompts, on the masks made from the heatmaps, or on the refinement of the heatmaps. An
#: encoded image answers any score, mask or refine option; an encode option needs a new encoding.
STAGES = ("encode", "score", "mask", "refine")
_KEY = "napari_gem"


@dataclass(frozen=True)
class OptionDescription:
    """Everything a form or a command line needs to offer one option.

    ``kind``: ``int``, ``float``, ``bool``, ``choice`` (one of ``choices``), ``toggle`` (a
    choice between the two values of ``choices``, shown as a check box), ``ints`` /
    ``floats`` (a tuple of numbers), ``texts`` (a tuple of strings, comma-separated),
    ``path`` (a folder, file or glob pattern, as text: a form offers a folder chooser).
    ``choices`` are ``(label, value)`` pairs. ``auto`` is the label of ``None`` where
    ``None`` means "decided for you" (a check box beside the value in a form; the word
    ``auto`` on the command line). ``example``: the value a form shows when "auto" is
    off, and the example in messages; ``noun`` names list items in messages ("block
    numbers"). ``in_form=False``: the widget shows it elsewhere or not at all (it is
    still a command-line flag); ``custom=True``: both have their own control for it.
    ``flag``: the command-line flag's name when it is not the field's. ``stage``: one of
    :data:`STAGES` (the encoding key holds the encode options, see
    :func:`encoding_names`); ``keyed=False``: an encode option that changes how the work is
    done, not its result (so no part of a cache key); ``needs``: the option that turns this
    one on (it matters only while that one is not ``"none"``).
    """

    name: str
    default: Any
    label: str
    help: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[tuple[str, Any], ...] = ()
    auto: str | None = None
    example: Any = None
    noun: str = "whole numbers"
    in_form: bool = True
    custom: bool = False
    flag: str | None = None
    stage: str = "encode"
    keyed: bool = True
    needs: str | None = None

    @property
    def values(self) -> tuple[Any, ...]:
        """The allowed values of a choice or toggle."""
        return tuple(value for _, value in self.choices)

    def label_of(self, value: Any) -> str:
        return next((label for label, choice in self.choices if choice == value), str(value))


def option(default: Any, *, label: str, help: str, kind: str, minimum: float | None = None,
           maximum: float | None = None, step: float | None = None, choices=(),
           auto: str | None = None, example: Any = None, noun: str = "whole numbers",
           in_form: bool = True, custom: bool = False, flag: str | None = None,
           stage: str = "encode", keyed: bool = True, needs: str | None = None) -> Any:
    """A dataclass field with its description (see :class:`OptionDescription`).

    ``choices`` may be plain values (their label is the value) or ``(label, value)`` pairs.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}; one of {', '.join(KINDS)}")
    if stage not in STAGES:
        raise ValueError(f"unknown option stage {stage!r}; one of {', '.join(STAGES)}")
    pairs = tuple(choice if isinstance(choice, tuple) else (str(choice), choice) for choice in choices)
    description = dict(label=label, help=help, kind=kind, minimum=minimum, maximum=maximum, step=step,
                       choices=pairs, auto=auto, example=example, noun=noun, in_form=in_form,
                       custom=custom, flag=flag, stage=stage, keyed=keyed, needs=needs)
    return dataclasses.field(default=default, metadata={_KEY: description})


def describe(options_class: type) -> list[OptionDescription]:
    """The described fields of an options dataclass, in declaration order."""
    return [
        OptionDescription(name=field.name, default=field.default, **field.metadata[_KEY])
        for field in dataclasses.fields(options_class) if _KEY in field.metadata
    ]


def encoding_names(options: Any) -> tuple[str, ...]:
    """The options of ``options`` that change an image's encoding, as they stand: the keyed
    encode-stage options, those that need another option only while that one is on."""
    return tuple(
        item.name for item in describe(type(options))
        if item.stage == "encode" and item.keyed
        and (item.needs is None or getattr(options, item.needs) not in (None, "none", False))
    )


def check_described(options: Any) -> None:
    """Check the integer and choice fields of ``options`` against their minimum and choices.

    The maximum only bounds a form's spin box (the command line may go further). Messages
    name the field and the allowed values, as users see them in napari and on the
    command line.
    """
    for item in describe(type(options)):
        value = getattr(options, item.name)
        if value is None and item.auto is not None:
            continue
        if item.kind in ("choice", "toggle") and value not in item.values:
            raise ValueError(f"{item.name} must be one of {', '.join(map(str, item.values))}; got {value!r}")
        if item.kind == "int":
            low = int(item.minimum or 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{item.name} must be an integer >= {low}; got {value!r}")


def parse_list(item: OptionDescription, text: str) -> tuple | None:
    """A list option typed as text ("6, 7"; "auto" or nothing for ``None`` where allowed)."""
    words = text.replace(",", " ").split()
    if item.auto is not None and (not words or words == [item.auto] or words == ["auto"]):
        return None
    if item.kind == "texts":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    convert = int if item.kind == "ints" else float
    try:
        return tuple(convert(word) for word in words)
    except ValueError:
        example = ", ".join(map(str, item.example or item.default or (8, 16)))
        prefix = "'auto' or " if item.auto is not None else ""
        raise ValueError(
            f"{item.label} must be {prefix}{item.noun} such as {example}; got {text!r}") from None


def format_list(value: tuple | None, auto: str | None = None) -> str:
    """The text a list option is typed as (the inverse of :func:`parse_list`)."""
    return auto if value is None and auto is not None else ", ".join(map(str, value or ()))
