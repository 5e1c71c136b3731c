"""The run pool: :class:`RunPool` runs lists of :class:`~.training.RunSpec` in this process or in worker
processes, each worker holding its own :class:`~.data_cache.DataCache` per task."""

from __future__ import annotations

import torch

from .data_cache import DataCache
from .settings import Settings, settings_by_task
from .training import RunSpec, train_and_test


class RunPool:
    """Runs :class:`RunSpec` lists, in this process (``jobs=1``) or in ``jobs`` worker processes.

    ``settings``: one :class:`Settings` per task the specs may name. Each run is seeded on its own and every
    process uses ``settings.threads`` torch threads, so a result does not depend on which process ran it or in
    what order; results come back in the order asked for. Workers are started once (``spawn``: no state
    inherited from the parent) and keep their data loaded.
    """

    def __init__(self, settings: Settings | list[Settings], jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"expected jobs >= 1, got {jobs}")
        self.tasks = settings_by_task(settings)
        self.jobs = jobs
        self.data = {task: DataCache(s) for task, s in self.tasks.items()}
        for cache in self.data.values():  # build on-disk caches once, before any worker reads them
            cache.prepare()
        self._pool = None
        if jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start, initargs=(list(self.tasks.values()),),
            )

    def __call__(self, specs: list[RunSpec]) -> list[dict]:
        unknown = sorted({spec.task for spec in specs} - set(self.tasks))
        if unknown:
            raise ValueError(f"expected runs of the tasks {sorted(self.tasks)}, got runs of {unknown}")
        if self._pool is None:
            return [train_and_test(self.tasks[spec.task], self.data[spec.task], spec) for spec in specs]
        return list(self._pool.map(_worker_run, specs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> RunPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_WORKER: dict = {}


def _worker_start(settings: list[Settings]) -> None:
    import logging
    import warnings

    torch.set_num_threads(settings[0].threads)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"lightning\.")
    _WORKER.update({s.task: (s, DataCache(s)) for s in settings})


def _worker_run(spec: RunSpec) -> dict:
    settings, data = _WORKER[spec.task]
    return train_and_test(settings, data, spec)


