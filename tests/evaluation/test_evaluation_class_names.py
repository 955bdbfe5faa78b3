"""The shipped class-name lists and their parser."""

from __future__ import annotations

import hashlib

import pytest

from napari_gem.evaluation.class_names import (
    dataset_class_names,
    parse_class_names,
    read_class_names,
)

# (classes, prompts, first class's first name, last class's first name) per dataset,
# as in the reference repositories' cls_*.txt files.
EXPECTED = {
    "voc20": (20, 30, "aeroplane", "television monitor"),
    "voc21": (21, 56, "sky", "television monitor"),
    "context59": (59, 59, "aeroplane", "wood"),
    "context60": (60, 60, "background", "wood"),
    "coco-object": (81, 113, "sky", "toothbrush"),
    "coco-stuff": (171, 171, "person", "wood"),
    "cityscapes": (19, 19, "road", "bicycle"),
    "ade20k": (150, 150, "wall", "flag"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_lists(name):
    classes, prompts, first, last = EXPECTED[name]
    names = dataset_class_names(name)
    assert names.num_classes == classes and len(names.prompts) == prompts
    assert names.synonyms[0][0] == first and names.synonyms[-1][0] == last
    assert all(prompt == prompt.strip() and prompt for prompt in names.prompts)
    assert len(names.prompt_class) == len(names.prompts)


def test_background_is_described_by_stuff_words():
    voc = dataset_class_names("voc21", background_first=True)
    assert voc.display[0] == "background" and len(voc.synonyms[0]) == 26
    assert {"sky", "wall", "tree", "floor", "fence"} <= set(voc.synonyms[0])
    assert voc.synonyms[1:] == dataset_class_names("voc20").synonyms
    coco = dataset_class_names("coco-object", background_first=True)
    assert coco.synonyms[0] == voc.synonyms[0]
    assert coco.synonyms[1][-1] == "body" and coco.display[1] == "person"


def test_known_positions():
    ade = dataset_class_names("ade20k").display
    assert (ade[12], ade[44], ade[89]) == ("person", "chestofdrawers", "televisionreceiver")
    stuff = dataset_class_names("coco-stuff").display
    assert (stuff[79], stuff[80], stuff[90]) == ("toothbrush", "banner", "ceiling-other")
    city = dataset_class_names("cityscapes").display
    assert city[6:8] == ("trafficlight", "trafficsign") and city[11:13] == ("person", "rider")
    voc = dataset_class_names("voc20").synonyms
    assert voc[14][:2] == ("person", "person in shirt") and voc[3] == ("ship",)


def test_parser():
    names = parse_class_names("\n  ground \nperson,man , woman\n\n", background_first=True)
    assert names.synonyms == (("ground",), ("person", "man", "woman"))
    assert names.display == ("background", "person")
    assert names.prompts == ("ground", "person", "man", "woman")
    assert names.prompt_class == (0, 1, 1, 1)
    with pytest.raises(ValueError, match="line 2 has an empty name"):
        parse_class_names("cat\ndog,,\n")
    with pytest.raises(ValueError, match="empty"):
        parse_class_names("\n \n")
    with pytest.raises(ValueError, match="known"):
        dataset_class_names("voc")


def test_read_a_reference_style_file(tmp_path):
    path = tmp_path / "cls_custom.txt"
    path.write_text("background\naeroplane\nperson, person in shirt\n", encoding="utf-8")
    names = read_class_names(path)
    assert names.num_classes == 3 and names.synonyms[2] == ("person", "person in shirt")


# Fingerprints of the full lists (every name, in order), checked by hand against the
# reference cls_*.txt files when written: a changed, dropped or reordered name, which
# would silently misalign prompts and labels, changes them.
FINGERPRINTS = {
    "voc20": "c68f65a2b342397c",
    "voc21": "80e643a9a1439668",
    "context59": "cd808465f06a1616",
    "context60": "e29ff1a0eaea71eb",
    "coco-object": "3475d03d61f85ce0",
    "coco-stuff": "fb98709b9ab1baff",
    "cityscapes": "6f6782fc1bf92bfd",
    "ade20k": "e53ded02c488bdb9",
}


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_lists_are_unchanged(name):
    names = dataset_class_names(name)
    text = "\n".join(", ".join(synonyms) for synonyms in names.synonyms)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == FINGERPRINTS[name]
