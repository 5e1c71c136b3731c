"""A user's Tonic datasets (https://github.com/neuromorphs/tonic) in this package's DataModule.

:class:`TonicDataModule` takes two Tonic datasets as they are (the train and the test split, e.g.
``tonic.datasets.NMNIST(save_to, train=True)`` and ``train=False``, or a user's own ``tonic.Dataset``) and
serves them as the DVS DataModules serve theirs: every sample's events binned once into ``[T, 2, H, W]``
frames by the package's one events-to-frames path (:func:`~bsnn_lightning.data.events.events_to_frames`),
cached on disk (:mod:`~bsnn_lightning.data.cache`), then augmented per sample and mixed per batch
like the others. Nothing of the dataset is rewritten: the cache reads ``dataset[i]`` once per sample.

What the datasets must give: ``dataset[i] == (events, target)`` with ``events`` a Tonic event array (a
structured array with integer fields ``x``, ``y``, ``t``, ``p``, polarity 0/1) and an integer ``target``;
``sensor_size`` ``(width, height, polarities)`` as Tonic's datasets declare it, the same for both; a Tonic
``transform`` may be set if it returns events (denoising, cropping), not frames (``ToFrame``: this module bins
events itself, so that every dataset gets the same frames). The cache is keyed by the dataset's files
(``dataset.data`` as Tonic's file-backed datasets list them: names and sizes) or, for a dataset without
files, by a ``fingerprint`` string the user gives (the data's version); anything else is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets.base import DVSDataModule
from .cache import SampleSpec, SourceFile

__all__ = ["TonicDataModule"]


class TonicDataModule(DVSDataModule):
    """Two Tonic datasets (train, test) as a DVS DataModule (see the module docstring).

    Args:
        train, test: Tonic datasets, ``dataset[i] -> (events, target)``.
        num_classes: the number of classes; None: ``len(train.classes)`` where the dataset lists them.
        name: the cache's name for this data (one folder per name and parameters).
        fingerprint: for datasets without a file list (``dataset.data`` of existing files): a string that
            changes whenever the data does; it keys the frame cache.
        **kwargs: as :class:`~bsnn_lightning.data.datasets.base.DVSDataModule` (``time_steps``, ``split_by``, ``resize``,
            ``batch_size``, ``num_workers``, ``cache_dir``, ``augment``, ``mix``, ``progress``); ``root``,
            ``download``, ``urls``, ``checksums`` and ``allow_partial`` do not apply (Tonic fetches its data).

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data.events import events_from_arrays
        >>> class Flashes:  # a dataset with Tonic's interface: sensor_size, classes, dataset[i] -> (events, target)
        ...     sensor_size = (4, 4, 2)
        ...     classes = ["off", "on"]
        ...     def __len__(self):
        ...         return 2
        ...     def __getitem__(self, i):
        ...         return events_from_arrays(t=[0, 10], x=[1, 2], y=[0, 3], p=[i, i]), i
        >>> tmp = tempfile.TemporaryDirectory()
        >>> dm = TonicDataModule(Flashes(), Flashes(), fingerprint="flashes-v1", time_steps=2, batch_size=2,
        ...                      cache_dir=tmp.name, num_workers=0, progress=False)
        >>> dm.input_shape, dm.num_classes
        ((2, 2, 4, 4), 2)
        >>> dm.prepare_data()  # bins every sample once, into the frame cache
        >>> dm.setup()
        >>> x, y = next(iter(dm.test_dataloader()))
        >>> x.shape, y.tolist(), x[1, 1, 1, 3].tolist()  # sample 1, bin 1, ON, row 3: the event at x=2, y=3
        (torch.Size([2, 2, 2, 4, 4]), [0, 1], [0, 0, 1, 0])
        >>> try:
        ...     TonicDataModule(Flashes(), Flashes())
        ... except ValueError as err:
        ...     print(str(err).split(":")[0])
        the frame cache needs to know when the data changes
        >>> tmp.cleanup()
    """

    name = "Tonic"
    slug = "tonic"
    archives = ()

    def __init__(self, train, test, num_classes: int | None = None, name: str = "tonic", fingerprint: str | None = None, **kwargs) -> None:
        for option in ("root", "download", "urls", "checksums", "allow_partial"):
            if option in kwargs:
                raise ValueError(f"TonicDataModule takes no {option!r}: the Tonic datasets fetch and hold their data")
        sizes = [_sensor_size(d, which) for d, which in ((train, "train"), (test, "test"))]
        empty = [which for d, which in ((train, "train"), (test, "test")) if len(d) == 0]
        if empty:
            raise ValueError(f"expected samples in both Tonic datasets, the {' and '.join(empty)} dataset is empty")
        if sizes[0] != sizes[1]:
            raise ValueError(f"expected train and test datasets of one sensor_size, got {sizes[0]} and {sizes[1]}")
        if num_classes is None:
            classes = getattr(train, "classes", None)
            if not classes:
                raise ValueError(f"give num_classes: the train dataset {type(train).__name__} lists no classes")
            num_classes = len(classes)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"expected num_classes to be an int >= 2, got {num_classes!r}")
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"expected name of letters, digits, '-' and '_', got {name!r}")
        self.sensor_size = sizes[0]
        self.num_classes = num_classes
        self.slug = f"tonic-{name}"
        self.name = f"Tonic {name}"
        self.datasets = {"train": train, "test": test}
        self.files = {split: _files_of(d) for split, d in self.datasets.items()}
        if any(f is None for f in self.files.values()) and not fingerprint:
            raise ValueError(
                "the frame cache needs to know when the data changes: these datasets list no files (dataset.data), "
                "so give fingerprint= (a string naming the data's version)"
            )
        self.fingerprint = fingerprint or ""
        super().__init__(root=None, download=False, **kwargs)

    def _reader(self):
        return _TonicReader(self.datasets)

    def _cache_variant(self) -> str:
        return self.fingerprint

    def _list_sources(self) -> list[SourceFile]:
        sources = []
        for split, dataset in self.datasets.items():
            files = self.files[split]
            labels = _labels(dataset)
            for index, label in enumerate(labels):
                if not 0 <= label < self.num_classes:
                    raise ValueError(f"{self.name} {split} sample {index}: target {label} outside 0..{self.num_classes - 1}")
                file = None if files is None else files[index]
                key = f"{split}/{index}"
                relative = key if file is None else f"{split}/{_name(file)}"
                handle = _SampleHandle(split, index, file)
                sources.append(SourceFile(handle, relative, (SampleSpec(key, label, split),)))
        return sources


@dataclass(frozen=True)
class _SampleHandle:
    """Where a sample's events are: what the frame cache takes for a source file's path. ``stat()`` is that of
    the dataset's file for the sample (its size keys the cache), or of nothing (size -1) without one."""

    split: str
    index: int
    file: Path | None

    def stat(self):
        if self.file is None:
            return os.stat_result((0, 0, 0, 0, 0, 0, -1, 0, 0, 0))
        return Path(self.file).stat()

    def __str__(self) -> str:
        return f"{self.split} sample {self.index}" + ("" if self.file is None else f" ({self.file})")


class _TonicReader:
    """``handle -> events`` of one sample (picklable: it holds the datasets, as DataLoader workers do)."""

    def __init__(self, datasets: dict) -> None:
        self.datasets = datasets

    def __call__(self, handle: _SampleHandle) -> np.ndarray:
        item = self.datasets[handle.split][handle.index]
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"expected the Tonic dataset's {handle} to be (events, target), got {type(item).__name__}")
        events = item[0]
        fields = getattr(getattr(events, "dtype", None), "names", None) or ()
        if not isinstance(events, np.ndarray) or not {"x", "y", "t", "p"} <= set(fields):
            what = f"an array of shape {list(events.shape)}" if isinstance(events, np.ndarray) else type(events).__name__
            raise TypeError(
                f"expected the Tonic dataset's {handle} to give events (a structured array with fields x, y, t, p), "
                f"got {what}; a transform that makes frames (ToFrame) must go: the DataModule bins events itself"
            )
        return events


def _sensor_size(dataset, which: str) -> tuple[int, int]:
    size = getattr(dataset, "sensor_size", None)
    if size is None or len(size) < 2:
        raise ValueError(f"expected the {which} dataset to declare sensor_size (width, height, polarities), got {size!r}")
    return int(size[0]), int(size[1])


def _files_of(dataset) -> list[Path] | None:
    data = getattr(dataset, "data", None)
    if not isinstance(data, (list, tuple)) or len(data) != len(dataset):
        return None
    if not all(isinstance(p, (str, os.PathLike)) and Path(p).is_file() for p in data):
        return None
    return [Path(p) for p in data]


def _labels(dataset) -> list[int]:
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, (list, tuple, np.ndarray)) and len(targets) == len(dataset):
        return [int(t) for t in targets]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def _name(path: Path) -> str:
    return path.as_posix()
