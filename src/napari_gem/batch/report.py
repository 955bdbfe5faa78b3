"""What a batch did: per image written, skipped, failed or cancelled, and a summary for people."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"
#: An image that a stopped batch did not start (``segment_files(should_stop=...)``).
CANCELLED = "cancelled"


@dataclass
class ImageOutcome:
    """The result of one input: its output files, or why it was skipped or failed."""

    source: Path
    status: str  # WRITTEN, SKIPPED, FAILED or CANCELLED
    outputs: list[Path] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


@dataclass
class BatchReport:
    """Every input's outcome, in input order."""

    outcomes: list[ImageOutcome] = field(default_factory=list)

    @property
    def written(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.status == WRITTEN]

    @property
    def skipped(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.status == SKIPPED]

    @property
    def failed(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def cancelled(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.status == CANCELLED]

    @property
    def ok(self) -> bool:
        """True when nothing failed (skipped inputs are fine)."""
        return not self.failed

    def summary(self) -> str:
        """A few lines for the terminal: counts, then each failure and skip with its reason."""
        lines = [
            f"{len(self.written)} written, {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed"
            + (f", {len(self.cancelled)} cancelled" if self.cancelled else "")
        ]
        lines += [f"  failed: {o.source}: {o.reason}" for o in self.failed]
        lines += [f"  skipped: {o.source}: {o.reason}" for o in self.skipped]
        return "\n".join(lines)


def attempt(source: Path, work: Callable[[], list[Path]]) -> ImageOutcome:
    """Run one image's ``work`` (returning the files written) and say how it went.

    An error becomes a FAILED outcome with its reason instead of being raised: one bad
    image must not stop the batch.
    """
    started = time.perf_counter()
    try:
        outputs = work()
    except Exception as error:
        return ImageOutcome(source, FAILED, reason=describe_error(error),
                            seconds=time.perf_counter() - started)
    return ImageOutcome(source, WRITTEN, outputs, seconds=time.perf_counter() - started)


def describe_error(error: BaseException) -> str:
    """One line for the report: the message, with the kind of error when it is not obvious."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    expected = (ValueError, OSError, RuntimeError)
    if isinstance(error, expected) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
