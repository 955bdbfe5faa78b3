"""Where the batch's work runs: in this process, or on a dask.distributed cluster.

Both executors offer the same three things: facts about the model, running whole-image
tasks (yielding outcomes as they finish) and computing lists of dask tasks for the
out-of-core path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..engine import ModelLoadError, PromptableModel, SegmentOptions
from ..engine.extras import require
from .jobs import ImageJob
from .models import LocalModel, ModelSpec, model_of
from .out_of_core import ModelFacts
from .progress import Cancelled, RunObserver, task_counter
from .report import FAILED, ImageOutcome, describe_error
from .whole_image import run_image_job


def model_facts(model) -> ModelFacts:
    """Patch size, logit scale and description of a model (loads it if needed)."""
    loaded = model_of(model)
    return ModelFacts(loaded.patch_size, loaded.logit_scale, loaded.describe())


def model_facts_or_error(model) -> ModelFacts | ModelLoadError:
    """:func:`model_facts` for a worker: a load failure is returned, not raised, so the
    worker does not log it as a crash; the driver raises it with its own message."""
    try:
        return model_facts(model)
    except ModelLoadError as error:
        return error


class InProcess:
    """Everything runs here, one image after the other, with one model."""

    def __init__(self, model: PromptableModel, threads: int | None = None,
                 progress: bool | RunObserver = False) -> None:
        self.model = LocalModel(model)
        self.threads = threads
        self.progress = progress

    def facts(self) -> ModelFacts:
        return model_facts(self.model)

    dashboard = None  # no cluster, no dashboard

    def run_images(self, jobs: Sequence[ImageJob], prompts: Sequence[str],
                   options: SegmentOptions) -> Iterator[tuple[ImageJob, ImageOutcome]]:
        """Segment the images one by one as the outcomes are asked for."""
        return (
            (job, run_image_job(job, prompts, self.model, options, self.threads))
            for job in jobs
        )

    def compute(self, tasks: list, label: str) -> list:
        import dask
        from dask.callbacks import Callback

        keys = {task.key for task in tasks}
        with task_counter(label, len(tasks), self.progress) as advance:

            def count(key, result, graph, state, worker_id) -> None:
                if key in keys:  # the graph has internal tasks too; count ours
                    advance()  # raises Cancelled between tasks when the observer says stop

            with Callback(posttask=count):
                results = dask.compute(*tasks, scheduler="sync")
        return list(results)


class OnCluster:
    """Work goes to dask.distributed workers; each loads the model once from its spec."""

    def __init__(self, client, spec: ModelSpec, threads: int | None = None,
                 progress: bool | RunObserver = False) -> None:
        self.client = client
        self.model = spec
        self.threads = threads
        self.progress = progress

    def facts(self) -> ModelFacts:
        # Loads the model on one worker first: a bad spec fails here, once, with the
        # worker's ModelLoadError, rather than once per image.
        facts = self.client.submit(model_facts_or_error, self.model, pure=False).result()
        if isinstance(facts, ModelLoadError):
            raise facts
        return facts

    def run_images(self, jobs: Sequence[ImageJob], prompts: Sequence[str],
                   options: SegmentOptions) -> Iterator[tuple[ImageJob, ImageOutcome]]:
        """Submit every image now; the outcomes come in the order they finish."""
        futures = {
            self.client.submit(run_image_job, job, list(prompts), self.model, options,
                               self.threads, pure=False): job
            for job in jobs
        }
        return self._outcomes(futures)

    @staticmethod
    def _outcomes(futures: dict) -> Iterator[tuple[ImageJob, ImageOutcome]]:
        from distributed import as_completed

        for future in as_completed(futures):
            job = futures[future]
            try:
                yield job, future.result()
            except Exception as error:  # the worker died (out of memory, killed, ...)
                yield job, ImageOutcome(job.source, FAILED, reason=describe_error(error))

    def compute(self, tasks: list, label: str) -> list:
        from distributed import as_completed

        futures = self.client.compute(tasks)
        try:
            with task_counter(label, len(futures), self.progress) as advance:
                for _ in as_completed(futures):
                    advance()
        except Cancelled:
            self.client.cancel(futures)  # what workers finished stays written
            raise
        return self.client.gather(futures)

    @property
    def dashboard(self) -> str | None:
        """The dask dashboard's address, to watch the workers."""
        return getattr(self.client, "dashboard_link", None)


@contextmanager
def open_executor(model: PromptableModel | ModelSpec, scheduler=None, workers: int | None = None,
                  threads: int | None = None, progress: bool | RunObserver = False):
    """The executor for the arguments: in-process, an existing cluster, or a LocalCluster.

    ``scheduler`` is an address (``tcp://host:8786``) or a ``distributed.Client``;
    ``workers`` starts a LocalCluster of that many single-threaded worker processes
    (PyTorch then gets ``cores / workers`` threads each unless ``threads`` says
    otherwise). Clusters and clients made here are closed again on exit. ``progress``:
    a tqdm bar per pass (True), nothing, or a :class:`~.progress.RunObserver` that hears
    every task and may stop the run between tasks.
    """
    if scheduler is not None and workers is not None:
        raise ValueError("give either a scheduler address or a number of workers, not both")
    if scheduler is None and workers is None:
        loaded = model if isinstance(model, PromptableModel) else model_of(model)
        yield InProcess(loaded, threads, progress)
        return
    spec = model if isinstance(model, ModelSpec) else ModelSpec.from_model(model)
    with _client(scheduler, workers) as client:
        if workers is not None and threads is None:
            threads = max(1, (os.cpu_count() or 1) // workers)
        yield OnCluster(client, spec, threads, progress)


@contextmanager
def _client(scheduler, workers: int | None):
    distributed = require("distributed", extra="cluster", purpose="running on a dask cluster")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # the caller's Client: theirs to close
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as error:
            message = f"cannot reach the dask scheduler at {scheduler}: {error}"
            raise ConnectionError(message) from error
        with client:
            yield client
        return
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    # Port 0: the scheduler's web server takes a free port (8787 may be taken). Worker
    # logs are silenced: failures reach the user through the batch report instead.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.CRITICAL)
    with cluster, Client(cluster) as client:
        yield client
