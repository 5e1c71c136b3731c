"""N-Caltech101 (Orchard et al., Frontiers in Neuroscience 9:437, 2015): its archive, classes, reader and splits.

:class:`NCaltech101DataModule` uses the 9:1 split shipped with the package (:mod:`bsnn_lightning.data.splits`) or
a split file of your own; :class:`NCaltech101ReleasedSplit` the split the IMP paper's released code makes
(:mod:`bsnn_lightning.data.released_splits`). The frames, cache and augmentation are
:class:`~bsnn_lightning.data.datasets.base.DVSDataModule`'s.
"""

from __future__ import annotations

from ..archives import ArchiveSpec
from ..cache import SourceFile
from ..formats import read_atis_bin
from ..released_splits import imp_ncaltech101, split_counts
from ..splits import NCALTECH101_COUNTS
from .base import DVSDataModule, DatasetIncompleteError, assign_split, recording_files

__all__ = ["NCaltech101DataModule", "NCaltech101ReleasedSplit"]


class NCaltech101DataModule(DVSDataModule):
    """N-Caltech101 (Orchard et al., Frontiers in Neuroscience 9:437, 2015): 101 classes (100 objects and
    ``BACKGROUND_Google``), 8,709 ATIS recordings of up to 240 x 180 pixels in ``Caltech101.zip``.

    Frames span the full 240 x 180 sensor (events keep their coordinates); give ``resize`` (the
    recipes use 128 x 128). Split: the 9:1 per-class split shipped in
    ``bsnn_lightning/data/split_files/ncaltech101.txt`` (7,886 train / 823 test), or ``split_file``.
    Labels: class folders sorted as strings (uppercase first), as SpikingJelly and Tonic number them.

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data import DatasetNotFoundError
        >>> tmp = tempfile.TemporaryDirectory()
        >>> dm = NCaltech101DataModule(root=tmp.name, time_steps=10, resize=(128, 128), download=False, progress=False)
        >>> dm.input_shape, dm.num_classes, dm.classes[:2]
        ((10, 2, 128, 128), 101, ('BACKGROUND_Google', 'Faces_easy'))
        >>> try:
        ...     dm.prepare_data()
        ... except DatasetNotFoundError as err:
        ...     print(str(err).splitlines()[1])
          - Caltech101.zip: not found (download=False)
        >>> tmp.cleanup()
    """

    name = "N-Caltech101"
    slug = "n-caltech101"
    archives = (
        ArchiveSpec(
            "Caltech101.zip",
            "66201824eabb0239c7ab992480b50ba3",
            "https://www.garrickorchard.com/datasets/n-caltech101",
            "https://data.mendeley.com/public-files/datasets/cy6cvx3ryv/files/36b5c52a-b49d-4853-addb-a836a8883e49/file_downloaded",
        ),
    )
    sensor_size = (240, 180)
    num_classes = 101
    classes = tuple(sorted(NCALTECH101_COUNTS))
    expected_counts = {"train": 7886, "test": 823}
    read_events = staticmethod(read_atis_bin)
    shipped_split_name = "ncaltech101"

    def __init__(self, split_file: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.split_file = split_file

    def _list_sources(self) -> list[SourceFile]:
        split, where = self._split()
        index = {c: i for i, c in enumerate(self.classes)}
        found = []
        for path in recording_files(self._extracted(self.archives[0]), ".bin"):
            cls = path.parent.name
            if cls not in index:
                raise DatasetIncompleteError(
                    f"{self.name}: {path} is in a folder {cls!r} that is not an N-Caltech101 class "
                    f"(expected one of the 101 class folders, e.g. {self.classes[:3]})"
                )
            found.append((f"{cls}/{path.name}", path, index[cls]))
        return assign_split(self.name, self.root, found, split, where)


class NCaltech101ReleasedSplit(NCaltech101DataModule):
    """N-Caltech101 split as a released code splits it.

    Args:
        split: ``"imp"``: the IMP paper's code's rule, ``int(0.9 n)`` train per class after a shuffle seeded
            with the class index (7,795 / 914; see :func:`~bsnn_lightning.data.released_splits.imp_ncaltech101`).
        listing: None to shuffle each class's names sorted as strings (the code's counts, another test set
            than the released run's, whose ``os.listdir`` order is lost), or a file listing the run's
            ``os.listdir`` order (:func:`~bsnn_lightning.data.released_splits.read_listing`), which gives
            that run's test set.
        **kwargs: see :class:`~bsnn_lightning.data.NCaltech101DataModule` (``split_file`` excepted).

    Example:
        >>> dm = NCaltech101ReleasedSplit(split="imp", root="n-caltech101", progress=False)  # reads nothing yet
        >>> dm.expected_counts
        {'train': 7795, 'test': 914}
        >>> NCaltech101ReleasedSplit(split_file="my_split.txt")
        Traceback (most recent call last):
            ...
        ValueError: give either split (a released split) or split_file, not both; use NCaltech101DataModule for a file
    """

    splits = {"imp": imp_ncaltech101}

    def __init__(self, split: str = "imp", listing: str | None = None, **kwargs) -> None:
        if split not in self.splits:
            raise ValueError(f"expected split in {sorted(self.splits)}, got {split!r}")
        if kwargs.get("split_file") is not None:
            raise ValueError("give either split (a released split) or split_file, not both; use NCaltech101DataModule for a file")
        super().__init__(**kwargs)
        self.split, self.listing = split, listing
        self.assignment = self.splits[split](listing)
        self.expected_counts = split_counts(self.assignment)

    def _split(self) -> tuple[dict[str, str], str]:
        return self.assignment, f"the released split {self.split!r}"
