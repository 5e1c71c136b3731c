"""N-MNIST (Orchard et al., Frontiers in Neuroscience 9:437, 2015): its archives, reader and split (the dataset's
own train and test archives). The frames, cache and augmentation are
:class:`~bsnn_lightning.data.datasets.base.DVSDataModule`'s."""

from __future__ import annotations

from ..archives import ArchiveSpec
from ..cache import SampleSpec, SourceFile
from ..formats import read_atis_bin
from .base import DVSDataModule, DatasetIncompleteError, recording_files, relative_name

__all__ = ["NMNISTDataModule"]


class NMNISTDataModule(DVSDataModule):
    """N-MNIST (Orchard et al., 2015): MNIST's digits recorded by an ATIS sensor on three saccades,
    34 x 34 pixels, ``Train.zip`` (60,000) and ``Test.zip`` (10,000) with ``<digit>/<id>.bin`` files.

    Split: the dataset's own train/test archives.

    Example:
        >>> import tempfile, zipfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> root = Path(tmp.name) / "n-mnist"
        >>> root.mkdir()
        >>> recording = bytes([3, 5, 0x80, 0, 100, 4, 6, 0, 0, 200])  # two ATIS events (see read_atis_bin)
        >>> for name in ("Train", "Test"):  # a digit 7 in each archive, in N-MNIST's layout
        ...     with zipfile.ZipFile(root / f"{name}.zip", "w") as zf:
        ...         zf.writestr(f"{name}/7/00001.bin", recording)
        >>> dm = NMNISTDataModule(root=root, cache_dir=Path(tmp.name) / "frames", time_steps=2, num_workers=0,
        ...                       download=False, progress=False, allow_partial=True,
        ...                       checksums={"Train.zip": None, "Test.zip": None})  # not the published archives
        >>> dm.input_shape, dm.num_classes
        ((2, 2, 34, 34), 10)
        >>> dm.prepare_data()  # extract, list, check, bin every recording into the frame cache
        >>> dm.setup()
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, x.dtype, y.tolist()  # counts as stored; on the device they become float32
        (torch.Size([1, 2, 2, 34, 34]), torch.uint8, [7])
        >>> dm.on_after_batch_transfer((x, y), 0)[0].dtype
        torch.float32
        >>> tmp.cleanup()
    """

    name = "N-MNIST"
    slug = "n-mnist"
    _page = "https://www.garrickorchard.com/datasets/n-mnist"
    _mendeley = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
    archives = (
        ArchiveSpec("Train.zip", "20959b8e626244a1b502305a9e6e2031", _page,
                    _mendeley + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded", aliases=("train.zip",)),
        ArchiveSpec("Test.zip", "69ca8762b2fe404d9b9bad1103e97832", _page,
                    _mendeley + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded", aliases=("test.zip",)),
    )  # fmt: skip
    sensor_size = (34, 34)
    num_classes = 10
    expected_counts = {"train": 60000, "test": 10000}
    read_events = staticmethod(read_atis_bin)

    def _list_sources(self) -> list[SourceFile]:
        sources = []
        for spec, split in zip(self.archives, ("train", "test")):
            folder = self._extracted(spec)
            for path in recording_files(folder, ".bin"):
                digit = path.parent.name
                if digit not in tuple("0123456789"):
                    raise DatasetIncompleteError(
                        f"{self.name}: {path} is not in a digit folder 0..9 (got folder {digit!r})"
                    )
                key = f"{split}/{digit}/{path.name}"
                sources.append(SourceFile(path, relative_name(path, self.root), (SampleSpec(key, int(digit), split),)))
        return sources

