"""CIFAR10-DVS (Li et al., Frontiers in Neuroscience 11:309, 2017): its archives, classes, reader and splits.

:class:`CIFAR10DVSDataModule` uses the 9:1 split shipped with the package (:mod:`bsnn_lightning.data.splits`) or a
split file of your own; :class:`CIFAR10DVSReleasedSplit` the split a paper's released code makes
(:mod:`bsnn_lightning.data.released_splits`). The frames, cache and augmentation are
:class:`~bsnn_lightning.data.datasets.base.DVSDataModule`'s.
"""

from __future__ import annotations

from ..archives import ArchiveSpec
from ..cache import SourceFile
from ..formats import AEDAT2_COORDINATES, read_aedat2_dvs128
from ..released_splits import imp_cifar10dvs, imp_legacy_cifar10dvs, split_counts, tet_2024_cifar10dvs, tet_cifar10dvs
from ..splits import CIFAR10DVS_CLASSES
from .base import DVSDataModule, assign_split, recording_files

__all__ = ["CIFAR10DVSDataModule", "CIFAR10DVSReleasedSplit"]


_CIFAR10DVS_PAGE = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
_CIFAR10DVS_ARCHIVES = tuple(
    ArchiveSpec(f"{cls}.zip", md5, _CIFAR10DVS_PAGE, f"https://ndownloader.figshare.com/files/{file_id}")
    for cls, file_id, md5 in (
        ("airplane", 7712788, "0afd5c4bf9ae06af762a77b180354fdd"),
        ("automobile", 7712791, "8438dfeba3bc970c94962d995b1b9bdd"),
        ("bird", 7712794, "a9c207c91c55b9dc2002dc21c684d785"),
        ("cat", 7712812, "52c63c677c2b15fa5146a8daf4d56687"),
        ("deer", 7712815, "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
        ("dog", 7712818, "f379ebdf6703d16e0a690782e62639c3"),
        ("frog", 7712842, "cad6ed91214b1c7388a5f6ee56d08803"),
        ("horse", 7712851, "e7cbbf77bec584ffbf913f00e682782a"),
        ("ship", 7712836, "41c7bd7d6b251be82557c6cce9a7d5c9"),
        ("truck", 7712839, "89f3922fd147d9aeff89e76a2b0b70a7"),
    )
)
"""The ten class archives: original names, published MD5s (as SpikingJelly lists them), figshare links."""


class CIFAR10DVSDataModule(DVSDataModule):
    """CIFAR10-DVS (Li et al., Frontiers in Neuroscience 11:309, 2017): 10 classes x 1000 recordings,
    DVS128 sensor, jAER AEDAT 2.0 files, one zip archive per class.

    Split: the 9:1 per-class split shipped in ``bsnn_lightning/data/split_files/cifar10dvs.txt``
    (9,000 train / 1,000 test; :mod:`bsnn_lightning.data.splits`), or your own ``split_file``.

    Args:
        coordinates: ``"spikingjelly"`` (default) or ``"upright"``; see
            :func:`~bsnn_lightning.data.formats.read_aedat2_dvs128` and ``docs/datasets.md``.
        split_file: a split file in the format of :mod:`bsnn_lightning.data.splits`, instead of the
            shipped one.
        **kwargs: see :class:`DVSDataModule`.

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data import DatasetNotFoundError
        >>> tmp = tempfile.TemporaryDirectory()
        >>> dm = CIFAR10DVSDataModule(root=tmp.name, time_steps=10, resize=(48, 48), download=False, progress=False)
        >>> dm.input_shape, dm.num_classes, dm.expected_counts
        ((10, 2, 48, 48), 10, {'train': 9000, 'test': 1000})
        >>> [spec.filename for spec in dm.archives[:3]]  # one archive per class
        ['airplane.zip', 'automobile.zip', 'bird.zip']
        >>> try:
        ...     dm.prepare_data()
        ... except DatasetNotFoundError as err:
        ...     print(str(err).splitlines()[1])
          - airplane.zip: not found (download=False)
        >>> CIFAR10DVSDataModule(coordinates="flipped")
        Traceback (most recent call last):
            ...
        ValueError: expected coordinates in ('spikingjelly', 'upright'), got 'flipped'
        >>> tmp.cleanup()
    """

    name = "CIFAR10-DVS"
    slug = "cifar10-dvs"
    archives = _CIFAR10DVS_ARCHIVES
    sensor_size = (128, 128)
    num_classes = 10
    classes = CIFAR10DVS_CLASSES
    expected_counts = {"train": 9000, "test": 1000}
    read_events = staticmethod(read_aedat2_dvs128)
    shipped_split_name = "cifar10dvs"

    def __init__(self, coordinates: str = "spikingjelly", split_file: str | None = None, **kwargs) -> None:
        if coordinates not in AEDAT2_COORDINATES:
            raise ValueError(f"expected coordinates in {AEDAT2_COORDINATES}, got {coordinates!r}")
        super().__init__(**kwargs)
        self.coordinates = coordinates
        self.split_file = split_file

    def _reader_options(self) -> dict:
        return {"coordinates": self.coordinates}

    def _cache_variant(self) -> str:
        return f"coords-{self.coordinates}"

    def _list_sources(self) -> list[SourceFile]:
        split, where = self._split()
        found = []
        for label, cls in enumerate(self.classes):
            for path in recording_files(self._extracted(self.archives[label]), ".aedat"):
                found.append((f"{cls}/{path.name}", path, label))
        return assign_split(self.name, self.root, found, split, where)



class CIFAR10DVSReleasedSplit(CIFAR10DVSDataModule):
    """CIFAR10-DVS split as a released code splits it.

    Args:
        split: ``"imp"`` (the IMP paper's 128 x 128 code, 9,000 / 1,000), ``"imp_legacy"`` (its 48 x 48 code,
            recordings 0-99 of each class test), ``"tet"`` (TET's preprocessing at f9bde41, 2022-02-09,
            7,000 / 3,000) or ``"tet_2024"`` (the same since 643be1c, 2024-08-16, 9,000 / 1,000); see
            :mod:`bsnn_lightning.data.released_splits`.
        **kwargs: see :class:`~bsnn_lightning.data.CIFAR10DVSDataModule` (``split_file`` excepted).

    Example:
        >>> dm = CIFAR10DVSReleasedSplit(split="tet", root="cifar10-dvs", progress=False)  # reads nothing yet
        >>> dm.expected_counts
        {'train': 7000, 'test': 3000}
        >>> dm.assignment["airplane/cifar10_airplane_699.aedat"], dm.assignment["airplane/cifar10_airplane_700.aedat"]
        ('train', 'test')
        >>> CIFAR10DVSReleasedSplit(split="snn")
        Traceback (most recent call last):
            ...
        ValueError: expected split in ['imp', 'imp_legacy', 'tet', 'tet_2024'], got 'snn'
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
        self.expected_counts = split_counts(self.assignment)

    def _split(self) -> tuple[dict[str, str], str]:
        return self.assignment, f"the released split {self.split!r}"
