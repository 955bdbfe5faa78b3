"""The worker side without a viewer: prompts, model cache, download progress, the generator."""

from __future__ import annotations

import numpy as np
from napari.layers import Image
from skimage.data import camera

from napari_gem.engine import SegmentOptions, load_model
from napari_gem.engine.families.clip.hub import _reporting_tqdm
from napari_gem.engine.software import software_record
from napari_gem.plugin.cache import EncodedCache, ModelCache, ModelSpec
from napari_gem.plugin.controller import split_prompts
from napari_gem.plugin.planes import ChannelChoice, build_job
from napari_gem.plugin.runner import CancelToken, Progress, RunRequest, run_segmentation


def test_prompts_split_on_lines_and_commas():
    assert split_prompts(" cell nucleus,membrane\n\n  ,mitochondrion , membrane ") == [
        "cell nucleus", "membrane", "mitochondrion"]
    assert split_prompts(" \n , ") == []


def test_model_cache_loads_once_and_rewraps_for_a_new_method_or_options(tiny_model_name,
                                                                 tiny_checkpoint):
    loads = []

    def loader(*args, **kwargs):
        loads.append(args)
        return load_model(*args, **kwargs)

    cache = ModelCache(loader)
    spec = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu")
    first = cache.get(spec)
    assert cache.get(spec) is first
    deeper = cache.get(ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu",
                                 method_options={"depth": 5}))
    assert deeper.method_options.depth == 5 and deeper.clip_model is first.clip_model
    naclip = cache.get(ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu", method="naclip"))
    assert naclip.method == "naclip" and naclip.clip_model is first.clip_model
    assert len(loads) == 1  # the weights were read once


def test_download_progress_reaches_the_report():
    seen = []
    bar = _reporting_tqdm(lambda done, total: seen.append((done, total)))(total=300, unit="B")
    bar.update(100)
    bar.update(200)
    bar.close()
    assert seen == [(100, 300), (300, 300)]


def _request(tiny_model_name, tiny_checkpoint, planes: int) -> RunRequest:
    stack = np.stack([camera()[::8, ::8]] * planes)
    options = SegmentOptions(input_size=64)
    job = build_job(Image(stack), ChannelChoice(), "all", options)
    spec = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu")
    return RunRequest(spec, options, ["man", "sky"], job, source_key=("id", 0), mask_mode="binary")


def _drain(generator):
    steps = []
    try:
        while True:
            steps.append(next(generator))
    except StopIteration as stop:
        return steps, stop.value


def test_run_generator_yields_progress_and_returns_planes(tiny_model_name, tiny_checkpoint):
    request = _request(tiny_model_name, tiny_checkpoint, planes=2)
    encoded = EncodedCache()
    reports: list[Progress] = []
    steps, output = _drain(run_segmentation(request, ModelCache(), encoded, CancelToken(),
                                   reports.append))
    assert output.error is None and not output.cancelled
    assert [p.index for p in output.planes] == [(0,), (1,)]
    assert output.planes[0].heatmaps.shape == (2, 64, 64)
    assert output.planes[0].labels.dtype == np.uint8
    assert any(step.text.startswith("plane 2/2") for step in steps)
    assert any("encoding" in report.text for report in reports)
    assert len(encoded) == 2 and output.parameters["mask_mode"] == "binary"
    assert output.parameters["software"] == software_record()  # the record every JSON carries


def test_run_generator_stops_when_cancelled(tiny_model_name, tiny_checkpoint):
    request = _request(tiny_model_name, tiny_checkpoint, planes=3)
    token = CancelToken()
    generator = run_segmentation(request, ModelCache(), EncodedCache(), token)
    for step in generator:
        if step.text.startswith("plane 2/"):
            token.set()
            break
    steps, output = _drain(generator)
    assert output.cancelled and output.error is None
    assert len(output.planes) == 1  # nothing after the cancel point


def test_a_form_showing_the_models_defaults_records_them_as_the_models():
    """The widget's form holds every value; those equal to the model's defaults are the model's."""
    from napari_gem.demo import MODEL_NAME
    from napari_gem.engine.families.demo import INPUT_SIZE
    from napari_gem.plugin.runner import chosen_options

    spec = ModelSpec(MODEL_NAME, device="cpu")
    form = SegmentOptions(input_size=INPUT_SIZE, window=INPUT_SIZE, overlap=INPUT_SIZE // 4, min_size=7)
    sources = chosen_options(form, spec).with_model_defaults({"input_size": INPUT_SIZE}).sources()
    assert sources["input_size"] == "model default" and sources["min_size"] == "user"
    assert sources["threshold"] == "engine default"
