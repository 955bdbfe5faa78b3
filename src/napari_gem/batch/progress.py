"""Following a batch run from outside it: tasks as they finish, and a way to stop it.

The command line shows a tqdm bar on stderr; napari (or any caller) passes a
:class:`RunObserver` instead, which hears every finished task and is asked after each
whether the run should stop. Stopping raises :class:`Cancelled` in the driver, between
tasks: what was written stays (a saved encoding's finished blocks, complete outputs), so
the same run started again resumes.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..engine.errors import Cancelled  # one "stopped by the user" for engine, batch and plugin


@runtime_checkable
class RunObserver(Protocol):
    """What a caller implements to follow and stop a run (see :class:`TaskCount`)."""

    def tasks_done(self, count: TaskCount) -> None:
        """A task of the current pass finished (called in the driver's thread)."""

    def cancelled(self) -> bool:
        """True to stop the run before its next task."""


@dataclass
class TaskCount:
    """How far one pass of a run is: ``done`` of ``total`` tasks, since ``started``."""

    label: str
    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds_left(self) -> float | None:
        """The time the pass still needs at its rate so far (None before its first task)."""
        if not self.done:
            return None
        return (time.monotonic() - self.started) / self.done * (self.total - self.done)

    def describe(self) -> str:
        """``"windows 12/96, about 3 min left"``: the pass, its count and the time left."""
        text = f"{self.label} {self.done}/{self.total}"
        left = self.seconds_left
        if left is not None and self.done < self.total:
            text += f", about {format_duration(left)} left"
        return text


def format_duration(seconds: float) -> str:
    """``"40 s"``, ``"3 min"``, ``"1 h 20 min"``: a human's rounding of a duration."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@contextmanager
def task_counter(label: str, total: int, progress):
    """A counter for one pass of ``total`` tasks, shown as ``progress`` asks.

    ``progress``: True (a tqdm bar on stderr), False (nothing) or a :class:`RunObserver`.
    The counter's ``advance()`` is called per finished task; it raises :class:`Cancelled`
    when the observer says stop.
    """
    from tqdm import tqdm

    observer = progress if isinstance(progress, RunObserver) else None
    count = TaskCount(label, total)
    with tqdm(total=total, desc=f"  {label}", unit="task", leave=False, file=sys.stderr,
              disable=progress is not True) as bar:

        def advance() -> None:
            count.done += 1
            bar.update(1)
            if observer is not None:
                observer.tasks_done(count)
                if observer.cancelled():
                    raise Cancelled(f"cancelled during {label} ({count.done}/{total} done)")

        if observer is not None:
            if observer.cancelled():
                raise Cancelled(f"cancelled before {label}")
            observer.tasks_done(count)  # the pass has begun: its label and total
        yield advance


__all__ = ["Cancelled", "RunObserver", "TaskCount", "format_duration", "task_counter"]
