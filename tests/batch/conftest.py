"""Batch fixtures: a model spec that dask workers can rebuild, one PyTorch thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_gem.batch import ModelSpec


@pytest.fixture(scope="session")
def tiny_config_file(tiny_model_name, tmp_path_factory) -> Path:
    """The tiny model's open_clip config as a JSON file, for processes that lack it."""
    import open_clip

    path = tmp_path_factory.mktemp("tiny_config") / f"{tiny_model_name}.json"
    path.write_text(json.dumps(open_clip.get_model_config(tiny_model_name)))
    return path


@pytest.fixture(scope="session")
def tiny_spec(tiny_model_name, tiny_checkpoint, tiny_config_file) -> ModelSpec:
    """The tiny model as a spec: checkpoint file plus config, on the CPU."""
    return ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu",
                     model_configs=(str(tiny_config_file),))


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread (deterministic sums), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
