"""CIFAR10-DVS and N-Caltech101 with the train/test split a paper's released code makes.

:class:`CIFAR10DVSReleasedSplit` and :class:`NCaltech101ReleasedSplit` are the package's DataModules with
one more argument, ``split``, naming a split of :mod:`bsnn_lightning.data.released_splits` (built from the
documented file names, so nothing depends on where a recipe is run from); the counts a complete dataset
must give are that split's. Everything else (frames, cache, augmentation, mixing) is the parent's.
"""

from __future__ import annotations

from .dvs import CIFAR10DVSDataModule, NCaltech101DataModule, _assign, _files
from .released_splits import imp_cifar10dvs, imp_legacy_cifar10dvs, imp_ncaltech101, tet_2024_cifar10dvs, tet_cifar10dvs

__all__ = ["CIFAR10DVSReleasedSplit", "NCaltech101ReleasedSplit"]


def _counts(split: dict[str, str]) -> dict[str, int]:
    return {part: sum(v == part for v in split.values()) for part in ("train", "test")}


class CIFAR10DVSReleasedSplit(CIFAR10DVSDataModule):
    """CIFAR10-DVS split as a released code splits it.

    Args:
        split: ``"imp"`` (the IMP paper's 128 x 128 code, 9,000 / 1,000), ``"imp_legacy"`` (its 48 x 48 code,
            recordings 0-99 of each class test), ``"tet"`` (TET's preprocessing at f9bde41, 2022-02-09,
            7,000 / 3,000) or ``"tet_2024"`` (the same since 643be1c, 2024-08-16, 9,000 / 1,000); see
            :mod:`bsnn_lightning.data.released_splits`.
        **kwargs: see :class:`~bsnn_lightning.data.CIFAR10DVSDataModule` (``split_file`` excepted).
    """

    splits = {"imp": imp_cifar10dvs, "imp_legacy": imp_legacy_cifar10dvs, "tet": tet_cifar10dvs, "tet_2024": tet_2024_cifar10dvs}

    def __init__(self, split: str = "imp", **kwargs) -> None:
        if split not in self.splits:
            raise ValueError(f"expected split in {sorted(self.splits)}, got {split!r}")
        if kwargs.get("split_file") is not None:
            raise ValueError("give either split (a released split) or split_file, not both; use CIFAR10DVSDataModule for a file")
        super().__init__(**kwargs)
        self.split = split
        self.assignment = self.splits[split]()
        self.expected_counts = _counts(self.assignment)

    def _list_sources(self):
        found = []
        for label, cls in enumerate(self.classes):
            for path in _files(self._extracted(self.archives[label]), ".aedat"):
                found.append((f"{cls}/{path.name}", path, label))
        return _assign(self.name, self.root, found, self.assignment, f"the released split {self.split!r}")


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
        self.expected_counts = _counts(self.assignment)

    def _list_sources(self):
        index = {c: i for i, c in enumerate(self.classes)}
        found = []
        for path in _files(self._extracted(self.archives[0]), ".bin"):
            cls = path.parent.name
            if cls not in index:
                raise ValueError(f"{self.name}: {path} is in a folder {cls!r} that is not an N-Caltech101 class")
            found.append((f"{cls}/{path.name}", path, index[cls]))
        return _assign(self.name, self.root, found, self.assignment, f"the released split {self.split!r}")
