"""What the DataModules share: the checks of their arguments (the augmentation objects' included) and the
DataLoaders they serve.

:class:`~bsnn_lightning.data.DigitEventsDataModule` and the DVS DataModules
(:mod:`bsnn_lightning.data.dvs`) build their loaders here, so that both serve batches the same way
(shuffled training set, persistent workers when there are workers, pinned memory when CUDA is there).
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["check_choice", "check_int", "check_probability", "default_num_workers", "make_loader"]


def default_num_workers() -> int:
    """DataLoader (and cache-building) workers when none are given: ``min(4, usable CPUs)``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(4, cpus)


def make_loader(dataset: Dataset | None, *, batch_size: int, num_workers: int, shuffle: bool) -> DataLoader:
    """A DataLoader over ``dataset``; ``None`` (``setup()`` has not run) is an error that says so."""
    if dataset is None:
        raise RuntimeError("expected setup() to have run before asking for a dataloader, it has not")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def check_int(name: str, value, minimum: int | None = None) -> None:
    """``value`` is an int (not a bool) and, when ``minimum`` is given, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected {name} to be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {value}")


def check_choice(name: str, value, choices: tuple) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"expected {name} in {choices}, got {value!r}")


def check_probability(name: str, value) -> None:
    """``value`` is a real number (not a bool) in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected {name} to be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected {name} in [0, 1], got {value}")
