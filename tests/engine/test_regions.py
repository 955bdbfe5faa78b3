"""Region consistency as a user meets it: ``regions=`` in ``segment`` and ``encode``, from
superpixels, a label array or a label file; clear messages for bad labels and for sources
that are not there; the vote on any method and family; region attention in windows."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tifffile

from napari_gem import encode, segment
from napari_gem.engine import ModelLoadError, SegmentOptions
from napari_gem.engine.regions import sources
from napari_gem.engine.regions.sources.sam2 import paint_masks
from napari_gem.engine.vfm import forget_proxies


def make_image(size=96):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = np.stack([(xx > size // 2) * 200, (yy > size // 3) * 150, np.full((size, size), 60)], -1)
    return (image + rng.integers(0, 40, (size, size, 3))).astype(np.uint8)


def regions_of(size=96):
    labels = np.zeros((size, size), np.int32)
    labels[:size // 2, :size // 2] = 7
    labels[size // 2:, :] = 3
    labels[:size // 2, size // 2:] = 12
    labels[:10, :10] = 0  # no region: left as the model says
    return labels


def uniform_inside(classes, labels):
    return all(len(np.unique(classes[labels == value])) == 1 for value in np.unique(labels) if value)


def test_the_class_map_and_masks_agree_inside_each_label_region(tiny_gem):
    labels = regions_of()
    plain = segment(make_image(), ["red", "sky", "grass"], model=tiny_gem, input_size=64)
    voted = segment(make_image(), ["red", "sky", "grass"], model=tiny_gem, input_size=64,
                    regions="labels", region_labels=labels)
    assert not uniform_inside(plain.semantic, labels)
    assert uniform_inside(voted.semantic, labels)
    for mask, instances in zip(voted.masks, voted.instances, strict=True):
        assert uniform_inside(mask.astype(int), labels)
        np.testing.assert_array_equal(instances > 0, mask)
    np.testing.assert_array_equal(voted.heatmaps, plain.heatmaps)  # the vote changes classes only
    corner = (slice(0, 10), slice(0, 10))
    np.testing.assert_array_equal(voted.semantic[corner], plain.semantic[corner])
    assert voted.parameters["options"]["regions"] == "labels"


def test_superpixels_are_the_regions_when_regions_is_slic(tiny_gem):
    options = SegmentOptions(input_size=64, regions="slic", slic_segments=20)
    encoded = encode(make_image(), tiny_gem, options)
    labels = encoded.regions.labels
    assert labels.shape == (96, 96) and labels.min() >= 1 and 5 <= labels.max() <= 60
    assert uniform_inside(encoded.segment(["red", "sky"]).semantic, labels)
    assert not uniform_inside(encoded.segment(["red", "sky"], region_vote=False).semantic, labels) \
        or labels.max() == 1


def test_a_labels_file_is_read_as_the_regions(tiny_gem, tmp_path):
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, regions_of().astype(np.uint16))
    result = segment(make_image(), ["red", "sky"], model=tiny_gem, input_size=64, regions="labels",
                     regions_labels=str(path))
    assert uniform_inside(result.semantic, regions_of())


@pytest.mark.parametrize(("labels", "words"), [
    (np.zeros((50, 96), np.int32), "image's shape (96, 96)"),
    (np.zeros((96, 96, 3), np.int32), "2D label image"),
    (np.full((96, 96), 0.5), "whole numbers"),
    (np.full((96, 96), -1), ">= 0"),
])
def test_bad_labels_get_a_clear_message(tiny_gem, labels, words):
    with pytest.raises(ValueError, match="region labels") as error:
        segment(make_image(), ["red"], model=tiny_gem, regions="labels", region_labels=labels)
    assert words in str(error.value)


def test_missing_labels_say_where_to_give_them(tiny_gem, tmp_path):
    with pytest.raises(ValueError, match="Labels layer.*--regions-labels"):
        segment(make_image(), ["red"], model=tiny_gem, regions="labels")
    with pytest.raises(ValueError, match="does not exist"):
        segment(make_image(), ["red"], model=tiny_gem, regions="labels",
                regions_labels=str(tmp_path / "missing.tif"))
    with pytest.raises(ValueError, match="set regions='labels'"):
        segment(make_image(), ["red"], model=tiny_gem, region_labels=regions_of())


def test_a_mask_generator_that_is_not_installed_is_refused_and_not_offered():
    assert "sam2" in sources.source_names()
    assert "sam2" not in [name for _, name in sources.available_choices()]
    with pytest.raises(ValueError, match="sam2.*not available here: the sam2 package is not installed"):
        SegmentOptions(regions="sam2")
    with pytest.raises(ValueError, match="regions must be none or one of slic, labels, sam2"):
        SegmentOptions(regions="watershed")


def test_sam_masks_are_painted_smallest_first_so_larger_masks_win():
    small = np.zeros((4, 4), bool)
    small[:2, :2] = True
    large = np.zeros((4, 4), bool)
    large[:3, :3] = True
    labels = paint_masks([{"segmentation": large, "area": 9}, {"segmentation": small, "area": 4}], (4, 4))
    assert labels[0, 0] == 2 and labels[2, 2] == 2 and labels[3, 3] == 0


def test_the_vote_follows_other_families_too(tiny_simzss):
    labels = regions_of()
    result = segment(make_image(), ["red", "sky"], model=tiny_simzss, input_size=56,
                     regions="labels", region_labels=labels)
    assert uniform_inside(result.semantic, labels)
    with pytest.raises(ValueError, match="region attention replaces a CLIP's last block"):
        segment(make_image(), ["red"], model=tiny_simzss, input_size=56, regions="labels",
                region_labels=labels, region_attention=True)


def test_region_attention_runs_in_sliding_windows(tiny_gem, tiny_dino_b8):
    options = SegmentOptions(regions="labels", region_attention=True, tiling="always", window=64,
                             overlap=32)
    encoded = encode(make_image(), tiny_gem, options, region_labels=regions_of())
    assert encoded.num_windows > 1 and encoded.grid_shape == (6, 6)
    assert np.isfinite(encoded.features.numpy()).all()
    assert uniform_inside(encoded.segment(["red", "sky"]).semantic, regions_of())


def test_region_attention_offline_fails_fast_naming_the_weights(tiny_gem, monkeypatch):
    from huggingface_hub import constants

    forget_proxies()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="vit_base_patch8_224.dino.*not cached"):
        segment(make_image(), ["red"], model=tiny_gem, regions="slic", region_attention=True)
    assert time.perf_counter() - start < 5


def test_region_options_round_trip_and_reject_bad_values():
    options = SegmentOptions(regions="slic", region_attention=True, region_tau=2.0, slic_segments=50)
    assert SegmentOptions.from_dict(options.to_dict()) == options
    assert options.encoding_key() != SegmentOptions().encoding_key()  # a new encoding, not a cache hit
    with pytest.raises(ValueError, match="region_tau must be a positive number"):
        SegmentOptions(region_tau=0)
    with pytest.raises(ValueError, match="slic_segments must be an integer >= 2"):
        SegmentOptions(slic_segments=1)


@pytest.fixture
def tiny_dino_b8():
    import timm
    import torch

    from napari_gem.engine.vfm import share_proxy

    torch.manual_seed(0)
    module = timm.create_model("vit_base_patch8_224.dino", pretrained=False, depth=2, embed_dim=64,
                               num_heads=2, img_size=64).eval()
    share_proxy("dino-b8", module)
    yield module
    forget_proxies()


def test_the_bench_times_slic_and_the_vote_against_the_target():
    from benchmark_scripts import benchmark_module

    bench_vfm = benchmark_module("bench_vfm")
    REGIONS_TARGET_S, measure_regions, regions_rows = (  # noqa: N806 (the module's names)
        bench_vfm.REGIONS_TARGET_S, bench_vfm.measure_regions, bench_vfm.regions_rows)

    times = measure_regions(side=128, prompts=2, repeats=1)
    rows = regions_rows(times, 128)
    assert times["total"] == times["slic"] + times["vote"] and times["regions"] >= 2
    assert rows[-1][0] == "region consistency with SLIC, 128px (s)"
    assert rows[-1][2] == f"<= {REGIONS_TARGET_S}"


def test_regions_are_chosen_at_encode_time_not_silently_ignored_later(tiny_gem):
    encoded = encode(make_image(), tiny_gem, SegmentOptions(input_size=64))
    with pytest.raises(ValueError, match="regions is an encode option.*encode the image again"):
        encoded.segment(["red"], regions="slic")
