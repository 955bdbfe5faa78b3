"""Which model a batch runs, and loading it once per process (driver or dask worker).

A :class:`~napari_gem.engine.spec.ModelSpec` is a small, picklable description of a
model: dask workers in other processes or on other machines rebuild the same model from it. Each process keeps
the models it has loaded, keyed by their spec, so a worker loads a model only once.
"""

from __future__ import annotations

from ..engine import PromptableModel
from ..engine.model_cache import ModelCache
from ..engine.saved_encoding import model_identity as described_identity
from ..engine.spec import ModelSpec, register_model_configs

__all__ = ["LocalModel", "ModelSpec", "loaded_model", "model_of", "model_identity", "register_model_configs",
           "use_torch_threads"]

#: This process's models: worker threads share it, so each model loads once.
_PROCESS_MODELS = ModelCache(keep=None)


def loaded_model(spec: ModelSpec) -> PromptableModel:
    """This process's model for ``spec``, loaded on first use and kept."""
    return _PROCESS_MODELS.get(spec)


def model_identity(model: PromptableModel | ModelSpec) -> dict:
    """What a model's results depend on, as recorded in each image's parameters JSON."""
    if isinstance(model, PromptableModel):
        return described_identity(model.describe())
    description = model.describe()
    return {
        "model": model.name, "pretrained": model.pretrained, "method": model.method,
        "method_options": description["method_options"],
    }


class LocalModel:
    """A model that lives in this process only: used when the batch runs in-process.

    It refuses to be pickled, so it can never be shipped to workers by mistake.
    """

    def __init__(self, model: PromptableModel) -> None:
        self.model = model

    def __reduce__(self):
        raise TypeError("an in-process model cannot be sent to dask workers; use a ModelSpec")


def model_of(handle: ModelSpec | LocalModel) -> PromptableModel:
    """The model behind a task's model handle: this process's copy for a spec."""
    return handle.model if isinstance(handle, LocalModel) else loaded_model(handle)


def use_torch_threads(threads: int | None) -> None:
    """Limit PyTorch's intra-op threads in this process (None: leave as it is).

    Several dask workers on one machine would otherwise each start one thread per core.
    """
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
