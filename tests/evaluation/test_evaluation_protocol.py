"""Resize rule, sliding-window geometry, prompt templates and the class decision."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from napari_gem.evaluation.class_names import dataset_class_names, parse_class_names
from napari_gem.evaluation.protocol import (
    CLIP_MEAN,
    ProtocolSettings,
    Window,
    class_probabilities,
    classify,
    dense_logits,
    imagenet_templates,
    min_max_normalise,
    prepare_pixels,
    protocol_for,
    resize_logits,
    resized_shape,
    slide_inference,
    sliding_windows,
)

COMMON = protocol_for("voc20", "common")
PAPER = protocol_for("voc20", "paper")


# -- resizing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((375, 500), (448, 597)),  # a typical VOC image: 500 * 448 / 375 = 597.33
        ((500, 333), (673, 448)),  # portrait: 500 * 448 / 333 = 672.6 rounds up
        ((1024, 2048), (448, 896)),  # Cityscapes
        ((448, 448), (448, 448)),
        ((100, 3000), (68, 2048)),  # the long side is capped at 2048 first
    ],
)
def test_short_side_resize_follows_mmseg(size, expected):
    assert resized_shape(*size, COMMON) == expected


def test_paper_setting_resizes_to_a_fixed_square():
    assert resized_shape(375, 500, PAPER) == (448, 448)


def test_prepare_pixels_normalises_and_resizes():
    mean_colour = np.round(np.array(CLIP_MEAN) * 255).astype(np.uint8)
    image = np.broadcast_to(mean_colour, (30, 40, 3)).copy()
    image[:, :20] = 255  # left half white
    settings = dataclasses.replace(COMMON, short_side=60)

    pixels = prepare_pixels(image, settings)

    assert pixels.shape == (1, 3, 60, 80) and pixels.dtype == torch.float32
    assert pixels[0, :, :, 50:].abs().max() < 0.01  # the mean colour normalises to ~0
    assert (pixels[0, :, :, :30] > 1.5).all()  # white is far above the mean
    no_resize = prepare_pixels(image, dataclasses.replace(COMMON, short_side=30))
    assert no_resize.shape == (1, 3, 30, 40)


def test_prepare_pixels_keeps_8_bit_values_like_the_reference_pipelines():
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    pixels = prepare_pixels(image, PAPER)
    std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
    levels = (pixels * std + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) * 255
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    assert levels.min() >= -1e-3 and levels.max() <= 255 + 1e-3


# -- sliding windows ------------------------------------------------------------------------


def count_map(windows, height, width) -> np.ndarray:
    counts = np.zeros((height, width), dtype=int)
    for window in windows:
        counts[window.top : window.bottom, window.left : window.right] += 1
    return counts


def test_windows_of_a_voc_image():
    windows = sliding_windows(448, 597, crop=448, stride=224)
    # One row; the second window would end at 672, so it is moved back flush with 597.
    assert windows == [Window(0, 448, 0, 448), Window(0, 448, 149, 597)]
    np.testing.assert_array_equal(
        count_map(windows, 448, 597)[0], [1] * 149 + [2] * (448 - 149) + [1] * (597 - 448)
    )


@pytest.mark.parametrize(
    ("height", "width", "crop", "stride"),
    [(448, 896, 224, 224), (673, 448, 448, 224), (100, 50, 448, 224), (37, 91, 16, 5)],
)
def test_windows_cover_the_image_with_equal_sized_crops(height, width, crop, stride):
    windows = sliding_windows(height, width, crop, stride)
    assert count_map(windows, height, width).min() >= 1
    sizes = {(w.bottom - w.top, w.right - w.left) for w in windows}
    assert sizes == {(min(crop, height), min(crop, width))}
    assert max(w.bottom for w in windows) == height and max(w.right for w in windows) == width
    assert all(w.top >= 0 and w.left >= 0 for w in windows)


def test_non_overlapping_cityscapes_windows():
    windows = sliding_windows(448, 896, crop=224, stride=224)
    assert len(windows) == 2 * 4
    assert count_map(windows, 448, 896).max() == 1


def test_blending_averages_overlapping_windows():
    # 4 x 6 image, 4 x 4 windows at x = 0 and x = 2. Each window reports its own left
    # edge everywhere, so the blend must be 0 | mean(0, 2) = 1 | 2 column by column.
    pixels = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 3, 4, 6).contiguous()

    def left_edge(crops):
        return crops[:, :1, :1, :1].expand(-1, 1, crops.shape[2], crops.shape[3])

    blended = slide_inference(pixels, crop=4, stride=2, crop_logits=left_edge)
    np.testing.assert_array_equal(blended[0, 0].numpy(), [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_position_dependent_logits_are_reproduced_exactly(batch_size):
    # Pixels carry their own coordinates; a stand-in model computes logits from what it
    # sees. If windows were misplaced, mis-summed or mis-counted, the blend would differ.
    height, width = 45, 70
    ys, xs = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    pixels = torch.stack([ys, xs, ys * 0]).unsqueeze(0)

    def field(crops):
        y, x = crops[:, 0], crops[:, 1]
        return torch.stack([torch.sin(y / 7) * x, torch.cos(x / 5) + y, y * 1000 + x], dim=1)

    blended = slide_inference(pixels, crop=32, stride=12, crop_logits=field, batch_size=batch_size)

    torch.testing.assert_close(blended, field(pixels)[0], rtol=1e-6, atol=1e-5)


def test_dense_logits_whole_image_and_min_max():
    pixels = torch.randn(1, 3, 8, 8)
    raw = dense_logits(pixels, lambda crops: crops[:, :2] * 3, dataclasses.replace(PAPER, min_max=False))
    torch.testing.assert_close(raw, pixels[0, :2] * 3)
    normalised = dense_logits(pixels, lambda crops: crops[:, :2] * 3, PAPER)
    assert torch.allclose(normalised.amin(dim=(1, 2)), torch.zeros(2))
    assert torch.allclose(normalised.amax(dim=(1, 2)), torch.ones(2))


def test_min_max_of_a_constant_map_is_zero():
    maps = torch.stack([torch.full((3, 3), 5.0), torch.arange(9.0).view(3, 3)])
    normalised = min_max_normalise(maps)
    assert (normalised[0] == 0).all()
    torch.testing.assert_close(normalised[1], torch.arange(9.0).view(3, 3) / 8)


def test_resize_logits_to_the_label_size():
    logits = torch.zeros(2, 4, 6)
    logits[0, :, 3:] = 1  # right half
    resized = resize_logits(logits, (8, 12))
    assert resized.shape == (2, 8, 12)
    assert (resized[0, :, :5] == 0).all() and (resized[0, :, 7:] == 1).all()


# -- templates and settings -------------------------------------------------------------


def test_imagenet_templates():
    templates = imagenet_templates()
    assert len(templates) == 80 and len(set(templates)) == 80
    assert all(template.count("{}") == 1 for template in templates)
    assert "a bad photo of a {}." in templates and "itap of my {}." in templates
    assert COMMON.templates == templates
    assert PAPER.templates == ("a photo of a {}.",)


def test_settings_per_dataset():
    assert (COMMON.short_side, COMMON.crop, COMMON.stride) == (448, 448, 224)
    assert COMMON.logit_scale == 50 and COMMON.prob_threshold is None and not COMMON.min_max
    cityscapes = protocol_for("cityscapes")
    assert (cityscapes.crop, cityscapes.stride) == (224, 224)
    assert protocol_for("voc21").prob_threshold == 0.5
    assert protocol_for("context60").prob_threshold == 0.15
    assert protocol_for("coco-object").prob_threshold == 0.4
    for name in ("context59", "coco-stuff", "ade20k"):
        assert protocol_for(name).prob_threshold is None
    assert PAPER.fixed_size == (448, 448) and PAPER.crop is None and PAPER.min_max
    assert PAPER.interpolation == "bicubic" and PAPER.logit_scale is None


def test_overrides():
    settings = protocol_for("voc21", "common", crop=336, stride=112, prob_threshold=None)
    assert (settings.crop, settings.stride, settings.prob_threshold) == (336, 112, 0.5)
    assert protocol_for("voc21", prob_threshold=0.2).prob_threshold == 0.2
    with pytest.raises(ValueError, match="no background class"):
        protocol_for("voc20", prob_threshold=0.2)
    with pytest.raises(ValueError, match="unknown setting"):
        protocol_for("voc20", "sliding")


@pytest.mark.parametrize(
    "changes",
    [
        {"fixed_size": (448, 448)},  # both resize rules
        {"crop": None},  # crop without stride
        {"stride": 0},
        {"templates": ("a photo of a thing.",)},
        {"prob_threshold": 1.5},
        {"interpolation": "nearest"},
    ],
)
def test_invalid_settings_are_refused(changes):
    with pytest.raises(ValueError):
        dataclasses.replace(COMMON, **changes)


def test_settings_serialise_to_plain_values():
    values = PAPER.to_dict()
    assert values["fixed_size"] == [448, 448] and values["templates"] == ["a photo of a {}."]
    assert isinstance(COMMON.to_dict()["templates"], list)
    assert ProtocolSettings(**{**values, "fixed_size": (448, 448), "templates": ("{}",)})


# -- from prompt logits to classes --------------------------------------------------------


def logits_at_one_pixel(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1)


def test_a_class_scores_its_best_synonym_not_their_sum():
    names = parse_class_names("thing\nperson, man, woman\ndog\n")
    prompt_class = torch.tensor(names.prompt_class)
    assert names.prompts == ("thing", "person", "man", "woman", "dog")
    # The three person synonyms together outweigh "dog", but each alone does not.
    logits = logits_at_one_pixel([0.0, 0.1, 0.1, 0.1, 0.12])
    probabilities = class_probabilities(logits, prompt_class, 3, logit_scale=100)
    expected = torch.softmax(logits[:, 0, 0] * 100, dim=0)
    torch.testing.assert_close(probabilities[:, 0, 0], expected[[0, 1, 4]])
    assert classify(logits, prompt_class, 3, logit_scale=100).item() == 2
    # One strong synonym wins its class.
    logits = logits_at_one_pixel([0.0, 0.0, 0.2, 0.0, 0.12])
    assert classify(logits, prompt_class, 3, logit_scale=100).item() == 1


def test_background_threshold():
    prompt_class = torch.tensor([0, 1, 2])
    # Probabilities at scale 10: softmax([0, 0.2, 0.25] * 10) = [0.06, 0.42, 0.52].
    logits = logits_at_one_pixel([0.0, 0.2, 0.25])
    assert classify(logits, prompt_class, 3, 10, prob_threshold=None).item() == 2
    assert classify(logits, prompt_class, 3, 10, prob_threshold=0.5).item() == 2
    assert classify(logits, prompt_class, 3, 10, prob_threshold=0.6).item() == 0
    # A sharper scale makes the same pixel confident enough.
    assert classify(logits, prompt_class, 3, 100, prob_threshold=0.6).item() == 2


def test_the_logit_scale_never_changes_the_arg_max_without_threshold():
    logits = torch.randn(7, 5, 5)
    prompt_class = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    predictions = [classify(logits, prompt_class, 4, scale) for scale in (1, 40, 100)]
    assert all(torch.equal(predictions[0], other) for other in predictions[1:])


def test_a_prompt_shared_by_background_and_a_class_goes_to_background():
    # COCO-Object lists "bed" among the background words and as a class: ties go to
    # the lower index, as torch.argmax does in the reference code.
    names = dataset_class_names("coco-object", background_first=True)
    prompt_class = torch.tensor(names.prompt_class)
    bed = [index for index, prompt in enumerate(names.prompts) if prompt == "bed"]
    assert [names.prompt_class[index] for index in bed] == [0, 60]
    logits = torch.zeros(len(names.prompts), 1, 1)
    logits[bed] = 1.0
    assert classify(logits, prompt_class, names.num_classes, 50).item() == 0


def test_class_probabilities_of_one_prompt_per_class_are_the_softmax():
    logits = torch.randn(4, 3, 3)
    probabilities = class_probabilities(logits, torch.arange(4), 4, 50)
    torch.testing.assert_close(probabilities, torch.softmax(logits * 50, dim=0))
