"""How the out-of-core passes run their dask tasks: in this process or on a cluster."""

from __future__ import annotations

from collections.abc import Callable

#: ``compute(tasks, label)`` runs a list of dask delayed tasks and returns their results
#: (:meth:`.execution.InProcess.compute`, :meth:`.execution.OnCluster.compute`).
Compute = Callable[[list, str], list]
