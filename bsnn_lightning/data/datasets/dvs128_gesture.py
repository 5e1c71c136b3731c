"""DVS128 Gesture (Amir et al., CVPR 2017): its archive, reader, gesture windows and split (the archive's own
trial lists). The frames, cache and augmentation are :class:`~bsnn_lightning.data.datasets.base.DVSDataModule`'s."""

from __future__ import annotations

from pathlib import Path

from ..archives import ArchiveSpec
from ..cache import SampleSpec, SourceFile
from ..formats import read_aedat31_polarity, read_gesture_labels
from .base import DVSDataModule, DatasetIncompleteError, relative_name

__all__ = ["DVS128GestureDataModule"]


class DVS128GestureDataModule(DVSDataModule):
    """DVS128 Gesture (Amir et al., CVPR 2017): 11 gestures by 29 people under 5 lightings, DVS128
    sensor, AEDAT 3.1 recordings ``userNN_<lighting>.aedat`` in ``DvsGesture.tar.gz``.

    Each recording's ``userNN_<lighting>_labels.csv`` cuts it into samples, one per row: the
    events with ``start <= t < end`` (as SpikingJelly does; 1,176 train / 288 test samples). Split:
    the archive's ``trials_to_train.txt`` / ``trials_to_test.txt`` (users 1-23 / 24-29).

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data import DatasetNotFoundError
        >>> tmp = tempfile.TemporaryDirectory()
        >>> dm = DVS128GestureDataModule(root=tmp.name, time_steps=16, download=False, progress=False)
        >>> dm.input_shape, dm.num_classes, dm.expected_counts
        ((16, 2, 128, 128), 11, {'train': 1176, 'test': 288})
        >>> try:  # IBM's archive has no direct link: put DvsGesture.tar.gz in root by hand
        ...     dm.prepare_data()
        ... except DatasetNotFoundError as err:
        ...     print(str(err).splitlines()[1])
          - DvsGesture.tar.gz: not found (no direct download link exists)
        >>> tmp.cleanup()
    """

    name = "DVS128 Gesture"
    slug = "dvs128-gesture"
    archives = (
        ArchiveSpec(
            "DvsGesture.tar.gz",
            "8a5c71fb11e24e5ca5b11866ca6c00a1",
            "https://ibm.ent.box.com/s/3hiq58ww1pbbjrinh367ykfdf60xsfm8/folder/50167556794 "
            "(IBM's DVS128 Gesture page, https://research.ibm.com/interactive/dvsgesture/)",
        ),
    )
    sensor_size = (128, 128)
    num_classes = 11
    expected_counts = {"train": 1176, "test": 288}
    read_events = staticmethod(read_aedat31_polarity)

    def _list_sources(self) -> list[SourceFile]:
        folder = self._extracted(self.archives[0])
        lists = sorted(folder.rglob("trials_to_train.txt"))
        if not lists:
            raise DatasetIncompleteError(f"{self.name}: no trials_to_train.txt under {folder}; is the archive complete?")
        trials_dir = lists[0].parent
        sources = []
        for split in ("train", "test"):
            listing = trials_dir / f"trials_to_{split}.txt"
            if not listing.is_file():
                raise DatasetIncompleteError(f"{self.name}: expected {listing}, found none")
            for name in listing.read_text().split():
                recording = trials_dir / name
                labels = trials_dir / f"{Path(name).stem}_labels.csv"
                for needed in (recording, labels):
                    if not needed.is_file():
                        if self.allow_partial:
                            break
                        raise DatasetIncompleteError(
                            f"{self.name}: {listing.name} lists {name}, but {needed} is missing "
                            "(pass allow_partial=True to skip such trials)"
                        )
                else:
                    windows = read_gesture_labels(labels, self.num_classes)
                    samples = tuple(
                        SampleSpec(f"{Path(name).stem}#{row}", w.label, split, (w.start_us, w.end_us))
                        for row, w in enumerate(windows)
                    )
                    sources.append(SourceFile(recording, relative_name(recording, self.root), samples))
        return sources

