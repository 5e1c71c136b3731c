"""What the DataModules share: the checks of their arguments (the augmentation objects' included) and the
DataLoaders they serve.

:class:`~bsnn_lightning.data.DigitEventsDataModule` and the DVS DataModules
(:mod:`bsnn_lightning.data.datasets`) build their loaders here (:class:`TestSplitLoaders`), so that all serve
batches the same way (shuffled training set, persistent workers when there are workers, pinned memory when CUDA
is there).

The training set's order in each epoch is drawn from the run's seed and the epoch's number alone
(:class:`EpochShuffle`), so a run resumed from a checkpoint (``--ckpt_path last``) sees the same batches
as the run it continues.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

__all__ = [
    "EpochShuffle",
    "TestSplitLoaders",
    "check_choice",
    "check_int",
    "check_probability",
    "default_num_workers",
    "make_loader",
]


def default_num_workers() -> int:
    """DataLoader (and cache-building) workers when none are given: ``min(4, usable CPUs)``.

    Example:
        >>> 1 <= default_num_workers() <= 4
        True
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(4, cpus)


def make_loader(dataset: Dataset | None, *, batch_size: int, num_workers: int, shuffle: bool) -> DataLoader:
    """A DataLoader over ``dataset``; ``None`` (``setup()`` has not run) is an error that says so.

    Example:
        >>> import torch
        >>> dataset = torch.utils.data.TensorDataset(torch.arange(5))
        >>> loader = make_loader(dataset, batch_size=2, num_workers=0, shuffle=False)
        >>> [batch.tolist() for (batch,) in loader]
        [[0, 1], [2, 3], [4]]
        >>> make_loader(None, batch_size=2, num_workers=0, shuffle=False)
        Traceback (most recent call last):
            ...
        RuntimeError: expected setup() to have run before asking for a dataloader, it has not
    """
    if dataset is None:
        raise RuntimeError("expected setup() to have run before asking for a dataloader, it has not")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffle(dataset) if shuffle else None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


class TestSplitLoaders:
    """The four loaders of a DataModule with a training set and a test set, mixed in before
    ``LightningDataModule``: training batches shuffled (:class:`EpochShuffle`), and **validation, test and
    prediction all served from the test split**, as the DVS literature reports test accuracy and keeps no
    validation set. The DataModule sets ``train_set``, ``test_set`` (None until ``setup()``), ``batch_size`` and
    ``num_workers``.

    Example:
        >>> import torch
        >>> class Tiny(TestSplitLoaders):
        ...     def __init__(self):
        ...         self.train_set = torch.utils.data.TensorDataset(torch.arange(6))
        ...         self.test_set = torch.utils.data.TensorDataset(torch.arange(10, 13))
        ...         self.batch_size, self.num_workers = 3, 0
        >>> [batch.tolist() for (batch,) in Tiny().val_dataloader()]  # validation serves the test split
        [[10, 11, 12]]
        >>> sorted(int(i) for (batch,) in Tiny().train_dataloader() for i in batch)  # every training sample, shuffled
        [0, 1, 2, 3, 4, 5]
    """

    __test__ = False  # not a pytest test class, whatever its name, should pytest be handed this file

    train_set: Dataset | None
    test_set: Dataset | None
    batch_size: int
    num_workers: int

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """The test split (see the class docstring)."""
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        return make_loader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, shuffle=shuffle)


class EpochShuffle(RandomSampler):
    """Every index once per epoch, in an order drawn from ``(seed, epoch)`` alone.

    ``seed`` defaults to ``torch.initial_seed()``: the seed of ``seed_everything`` (every recipe sets one).
    Lightning calls :meth:`set_epoch` before each epoch, as for a ``DistributedSampler``; so a run resumed from
    the checkpoint of epoch ``e`` draws the same order for epoch ``e + 1`` as the run that wrote it did, which a
    ``RandomSampler`` (drawing from the global random state that the earlier epochs advanced) does not. It is
    a ``RandomSampler`` so that Lightning, under DDP, swaps it for a shuffling ``DistributedSampler``, which is
    keyed by seed and epoch too.

    >>> sampler = EpochShuffle(range(5), seed=0)
    >>> first = list(sampler); sampler.set_epoch(1); second = list(sampler); sampler.set_epoch(0)
    >>> sorted(first) == [0, 1, 2, 3, 4], first == list(sampler), first != second
    (True, True, True)
    """

    def __init__(self, data_source, seed: int | None = None) -> None:
        super().__init__(data_source)
        self.seed = torch.initial_seed() if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        yield from np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data_source)).tolist()


def check_int(name: str, value, minimum: int | None = None) -> None:
    """``value`` is an int (not a bool) and, when ``minimum`` is given, at least ``minimum``.

    Example:
        >>> check_int("batch_size", 8, 1)  # fine: returns None
        >>> check_int("batch_size", 0, 1)
        Traceback (most recent call last):
            ...
        ValueError: expected batch_size >= 1, got 0
        >>> check_int("batch_size", True)
        Traceback (most recent call last):
            ...
        TypeError: expected batch_size to be an int, got True
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected {name} to be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {value}")


def check_choice(name: str, value, choices: tuple) -> None:
    """``value`` is one of ``choices``.

    Example:
        >>> check_choice("split_by", "count", ("time", "number"))
        Traceback (most recent call last):
            ...
        ValueError: expected split_by in ('time', 'number'), got 'count'
    """
    if value not in choices:
        raise ValueError(f"expected {name} in {choices}, got {value!r}")


def check_probability(name: str, value) -> None:
    """``value`` is a real number (not a bool) in ``[0, 1]``.

    Example:
        >>> check_probability("p", 0.5)  # fine: returns None
        >>> check_probability("p", 1.5)
        Traceback (most recent call last):
            ...
        ValueError: expected p in [0, 1], got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected {name} to be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected {name} in [0, 1], got {value}")
