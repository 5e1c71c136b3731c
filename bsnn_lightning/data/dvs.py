"""LightningDataModules for the four DVS datasets: CIFAR10-DVS, DVS128 Gesture, N-Caltech101, N-MNIST.

All four work the same way (``docs/datasets.md`` has the details):

``prepare_data`` (Lightning runs it once per node, before ``setup``)
    1. finds each archive in the dataset folder ``root`` under its original name, or downloads it
       where a link still works; checks it (not empty, not an HTML page, the published MD5) and
       otherwise stops with a message naming the file, where to get it by hand and exactly where
       to put it;
    2. extracts it, refusing members that would land outside the target folder, into
       ``root/extracted/<archive name>/`` (atomically: a temporary folder renamed at the end);
    3. lists the recordings, assigns train/test (the dataset's own split, or the split file
       shipped in the package for CIFAR10-DVS and N-Caltech101), checks the counts;
    4. bins every sample into frames with :func:`~bsnn_lightning.data.events.events_to_frames` and
       caches them on disk (:mod:`~bsnn_lightning.data.cache`), with a progress bar.

``setup`` only reads: the listing and the cache's manifest. It raises if ``prepare_data`` has not
completed, and writes nothing, so every DDP process can run it on shared storage.

Samples are ``(x, y)``: ``x`` ``[time_steps, 2, H, W]`` (channel 0 = OFF, 1 = ON counts), ``y``
int64. The loaders serve ``x`` in the cache's dtype (exact ``uint8`` / ``uint16`` counts for frames
at the sensor's size, ``float32`` for resized frames) and the DataModule's ``on_after_batch_transfer``
makes it float32 on the device, so a Lightning model always sees float32; a loop of your own over
the loaders should call ``x.float()``. ``val``, ``test`` and ``predict`` loaders all serve the test split: the DVS
literature reports test accuracy and keeps no validation set. Training samples go through the
transforms given as ``augment`` (e.g. ``[RandomFlip(0.5), RandomRoll(5)]``,
:mod:`~bsnn_lightning.data.transforms`); with ``mix`` (:class:`~bsnn_lightning.data.transforms.MixupCutmix`),
training batches are mixed on the device after transfer and ``y`` becomes soft targets
``[N, num_classes]``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .archives import EXTRACTED_MARKER, ArchiveSpec, extract_archive, fetch_archives
from .events import SPLIT_BY
from .formats import (
    AEDAT2_COORDINATES,
    read_aedat2_dvs128,
    read_aedat31_polarity,
    read_atis_bin,
    read_gesture_labels,
)
from .cache import FrameSpec, SampleSpec, SourceFile, build_frame_cache, cache_folder, default_cache_dir, load_frames, read_manifest
from .loading import check_choice, check_int, default_num_workers, make_loader
from .transforms import Compose, FrameTransform, MixupCutmix, check_transforms
from .splits import CIFAR10DVS_CLASSES, NCALTECH101_COUNTS, read_split_file, shipped_split

__all__ = [
    "CIFAR10DVSDataModule",
    "DVS128GestureDataModule",
    "DVSDataModule",
    "DatasetIncompleteError",
    "NCaltech101DataModule",
    "NMNISTDataModule",
    "default_num_workers",
]


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


class DatasetIncompleteError(RuntimeError):
    """The extracted dataset does not hold the recordings its split and published counts expect."""


class DVSDataModule(L.LightningDataModule):
    """What the four DVS DataModules share; use one of the subclasses.

    Args:
        root: the dataset folder, where its archives are (or are downloaded to) under their
            original names and get extracted; default ``<cache>/datasets/<dataset>``, with
            ``<cache>`` = ``$BSNN_LIGHTNING_CACHE`` or ``~/.cache/bsnn-lightning``.
        time_steps: frames ``T`` per sample.
        split_by: ``"number"`` (``T`` bins of equal event count, SpikingJelly's frames the papers
            use) or ``"time"`` (equal duration); see :func:`~bsnn_lightning.data.events.events_to_frames`.
        resize: output ``(height, width)`` (sum-preserving area resampling), or None for the
            sensor's size.
        batch_size: samples per batch, every loader.
        num_workers: DataLoader worker processes, also used to build the cache; None =
            :func:`default_num_workers`.
        cache_dir: root of the frame caches; default ``<cache>/frames``.
        augment: transforms of each training sample, applied in this order in the DataLoader
            workers (:mod:`~bsnn_lightning.data.transforms`: ``RandomFlip``, ``RandomRoll``,
            ``RandomTranslate``, or your own ``FrameTransform``); None or ``[]`` for none.
        mix: mixing of training batches on the device
            (:class:`~bsnn_lightning.data.transforms.MixupCutmix`), or None for none.
        download: try to download missing archives (where a link works).
        urls: download links by archive name, replacing the built-in ones.
        checksums: expected MD5 by archive name, replacing the published ones (``None`` skips).
        allow_partial: use whatever recordings are there instead of requiring the full dataset.
        progress: show progress bars while downloading, extracting and building the cache.
    """

    name = "DVS"
    slug = "dvs"
    archives: tuple[ArchiveSpec, ...] = ()
    sensor_size: tuple[int, int] = (128, 128)
    num_classes = 2
    expected_counts: dict[str, int] = {}

    def __init__(
        self,
        root: str | None = None,
        time_steps: int = 16,
        split_by: str = "number",
        resize: tuple[int, int] | None = None,
        batch_size: int = 16,
        num_workers: int | None = None,
        cache_dir: str | None = None,
        augment: list[FrameTransform] | None = None,
        mix: MixupCutmix | None = None,
        download: bool = True,
        urls: dict[str, str] | None = None,
        checksums: dict[str, str | None] | None = None,
        allow_partial: bool = False,
        progress: bool = True,
    ) -> None:
        super().__init__()
        check_int("time_steps", time_steps, 1)
        check_choice("split_by", split_by, SPLIT_BY)
        if resize is not None:
            if len(resize) != 2 or not all(isinstance(s, int) and s >= 1 for s in resize):
                raise ValueError(f"expected resize = (height, width) as two positive ints or None, got {resize!r}")
            resize = (int(resize[0]), int(resize[1]))
        check_int("batch_size", batch_size, 1)
        if num_workers is not None:
            check_int("num_workers", num_workers, 0)
        transforms = check_transforms("augment", [] if augment is None else augment)
        if mix is not None and not isinstance(mix, MixupCutmix):
            raise TypeError(f"expected mix to be a MixupCutmix or None, got {mix!r}")
        names = {spec.filename for spec in self.archives}
        for option, given in (("urls", urls), ("checksums", checksums)):
            unknown = sorted(set(given or {}) - names)
            if unknown:
                raise ValueError(f"expected {option} keyed by {self.name}'s archive names {sorted(names)}, got {unknown}")
        self.save_hyperparameters()
        self.augment = Compose(transforms) if transforms else None
        self.mix = mix
        self.root = Path(root).expanduser() if root is not None else default_cache_dir() / "datasets" / self.slug
        self.cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "frames"
        self.time_steps = time_steps
        self.split_by = split_by
        self.resize = resize
        self.batch_size = batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.download = download
        self.urls = dict(urls or {})
        self.checksums = dict(checksums or {})
        self.allow_partial = allow_partial
        self.progress = progress
        self.frame_spec = FrameSpec(self.sensor_size, time_steps, split_by, resize)
        self.input_shape = self.frame_spec.shape
        self.train_set: _FrameFiles | None = None
        self.test_set: _FrameFiles | None = None
        self.cache_path: Path | None = None
        self.batch_dtype: str | None = None

    # --- Lightning hooks ------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Fetch, verify and extract the archives, then build the frame cache (once per node)."""
        self._extract_all()
        sources = self._checked_sources()
        folder, params = self._cache(sources)
        try:
            read_manifest(folder, params)
            return
        except (FileNotFoundError, RuntimeError):
            pass
        n_samples = sum(len(s.samples) for s in sources)
        self._say(f"{self.name}: building the frame cache of {n_samples} samples in {folder}")
        build_frame_cache(
            folder,
            params,
            sources,
            self._reader(),
            self.frame_spec,
            workers=self.num_workers,
            progress=self.progress,
            description=f"{self.name} frames",
        )

    def setup(self, stage: str | None = None) -> None:
        """Read the listing and the complete cache; writes nothing."""
        if self.train_set is not None:
            return
        missing = [s.filename for s in self.archives if not (self._extracted(s) / EXTRACTED_MARKER).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.name}: expected the archives {missing} extracted under {self.root / 'extracted'}, "
                "they are not; run prepare_data() first (Lightning's Trainer does, once per node)"
            )
        sources = self._checked_sources()
        folder, params = self._cache(sources)
        manifest = read_manifest(folder, params)
        self.cache_path = folder
        frames = folder / "frames"
        parts = {
            split: [m for m in manifest["samples"] if m["split"] == split] for split in ("train", "test")
        }
        dtypes = {m["dtype"] for m in manifest["samples"]}
        self.batch_dtype = next(d for d in ("float32", "uint16", "uint8") if d in dtypes)  # the widest stored
        self.train_set = _FrameFiles(frames, parts["train"], self.batch_dtype, self.augment)
        self.test_set = _FrameFiles(frames, parts["test"], self.batch_dtype, None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """The test split (see the module docstring)."""
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """On the device: frames to float32, then mixup / cutmix of training batches."""
        if not (isinstance(batch, (list, tuple)) and len(batch) == 2):  # e.g. a model summary's example input
            return batch
        x, y = batch
        if not x.is_floating_point():
            x = x.to(torch.float32)
        trainer = self.trainer
        if self.mix is not None and trainer is not None and trainer.training:
            return self.mix(x, y, self.num_classes)
        return x, y

    # --- what subclasses provide ---------------------------------------------------------------
    def _list_sources(self) -> list[SourceFile]:
        raise NotImplementedError

    def _reader(self):
        raise NotImplementedError

    def _cache_variant(self) -> str:
        return ""

    # --- shared machinery ----------------------------------------------------------------------
    def _extracted(self, spec: ArchiveSpec) -> Path:
        return self.root / "extracted" / spec.stem

    def _extract_all(self) -> None:
        todo = [s for s in self.archives if not (self._extracted(s) / EXTRACTED_MARKER).is_file()]
        if not todo:
            return
        paths = fetch_archives(
            self.name,
            self.root,
            todo,
            download=self.download,
            urls={k: v for k, v in self.urls.items() if k in {s.filename for s in todo}},
            checksums={k: v for k, v in self.checksums.items() if k in {s.filename for s in todo}},
            progress=self.progress,
        )
        for spec in todo:
            md5 = self.checksums.get(spec.filename, spec.md5)
            self._say(f"{self.name}: extracting {paths[spec.filename]} into {self._extracted(spec)}")
            extract_archive(paths[spec.filename], self._extracted(spec), md5=md5, progress=self.progress)

    def _say(self, message: str) -> None:
        """One line on stderr for each long action of ``prepare_data`` (with ``progress=True``)."""
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    def _checked_sources(self) -> list[SourceFile]:
        sources = self._list_sources()
        counts = {"train": 0, "test": 0}
        for source in sources:
            for sample in source.samples:
                counts[sample.split] += 1
        if not self.allow_partial and self.expected_counts and counts != self.expected_counts:
            raise DatasetIncompleteError(
                f"{self.name}: found {counts['train']} train / {counts['test']} test samples under "
                f"{self.root / 'extracted'}, expected {self.expected_counts['train']} / {self.expected_counts['test']}. "
                "An archive may be incomplete (delete its extracted folder and its archive, and get it again), "
                "or pass allow_partial=True to use the recordings that are there"
            )
        if counts["train"] == 0 or counts["test"] == 0:
            raise DatasetIncompleteError(
                f"{self.name}: found {counts['train']} train / {counts['test']} test samples under "
                f"{self.root / 'extracted'}; both splits need at least one"
            )
        return sources

    def _cache(self, sources: list[SourceFile]) -> tuple[Path, dict]:
        return cache_folder(self.cache_root, self.slug, self.frame_spec, sources, self._cache_variant())

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        return make_loader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, shuffle=shuffle)


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
    """

    name = "CIFAR10-DVS"
    slug = "cifar10-dvs"
    archives = _CIFAR10DVS_ARCHIVES
    sensor_size = (128, 128)
    num_classes = 10
    classes = CIFAR10DVS_CLASSES
    expected_counts = {"train": 9000, "test": 1000}

    def __init__(self, coordinates: str = "spikingjelly", split_file: str | None = None, **kwargs) -> None:
        if coordinates not in AEDAT2_COORDINATES:
            raise ValueError(f"expected coordinates in {AEDAT2_COORDINATES}, got {coordinates!r}")
        super().__init__(**kwargs)
        self.coordinates = coordinates
        self.split_file = split_file

    def _reader(self):
        return functools.partial(read_aedat2_dvs128, coordinates=self.coordinates)

    def _cache_variant(self) -> str:
        return f"coords-{self.coordinates}"

    def _list_sources(self) -> list[SourceFile]:
        split = read_split_file(self.split_file) if self.split_file else shipped_split("cifar10dvs")
        found = []
        for label, cls in enumerate(self.classes):
            spec = self.archives[label]
            for path in _files(self._extracted(spec), ".aedat"):
                found.append((f"{cls}/{path.name}", path, label))
        return _assign(self.name, self.root, found, split, self.split_file)


class NCaltech101DataModule(DVSDataModule):
    """N-Caltech101 (Orchard et al., Frontiers in Neuroscience 9:437, 2015): 101 classes (100 objects and
    ``BACKGROUND_Google``), 8,709 ATIS recordings of up to 240 x 180 pixels in ``Caltech101.zip``.

    Frames span the full 240 x 180 sensor (events keep their coordinates); give ``resize`` (the
    recipes use 128 x 128). Split: the 9:1 per-class split shipped in
    ``bsnn_lightning/data/split_files/ncaltech101.txt`` (7,886 train / 823 test), or ``split_file``.
    Labels: class folders sorted as strings (uppercase first), as SpikingJelly and Tonic number them.
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

    def __init__(self, split_file: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.split_file = split_file

    def _reader(self):
        return functools.partial(read_atis_bin, sensor_size=self.sensor_size)

    def _list_sources(self) -> list[SourceFile]:
        split = read_split_file(self.split_file) if self.split_file else shipped_split("ncaltech101")
        index = {c: i for i, c in enumerate(self.classes)}
        found = []
        for path in _files(self._extracted(self.archives[0]), ".bin"):
            cls = path.parent.name
            if cls not in index:
                raise DatasetIncompleteError(
                    f"{self.name}: {path} is in a folder {cls!r} that is not an N-Caltech101 class "
                    f"(expected one of the 101 class folders, e.g. {self.classes[:3]})"
                )
            found.append((f"{cls}/{path.name}", path, index[cls]))
        return _assign(self.name, self.root, found, split, self.split_file)


class NMNISTDataModule(DVSDataModule):
    """N-MNIST (Orchard et al., 2015): MNIST's digits recorded by an ATIS sensor on three saccades,
    34 x 34 pixels, ``Train.zip`` (60,000) and ``Test.zip`` (10,000) with ``<digit>/<id>.bin`` files.

    Split: the dataset's own train/test archives.
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

    def _reader(self):
        return functools.partial(read_atis_bin, sensor_size=self.sensor_size)

    def _list_sources(self) -> list[SourceFile]:
        sources = []
        for spec, split in zip(self.archives, ("train", "test")):
            folder = self._extracted(spec)
            for path in _files(folder, ".bin"):
                digit = path.parent.name
                if digit not in tuple("0123456789"):
                    raise DatasetIncompleteError(
                        f"{self.name}: {path} is not in a digit folder 0..9 (got folder {digit!r})"
                    )
                key = f"{split}/{digit}/{path.name}"
                sources.append(SourceFile(path, _relative(path, self.root), (SampleSpec(key, int(digit), split),)))
        return sources


class DVS128GestureDataModule(DVSDataModule):
    """DVS128 Gesture (Amir et al., CVPR 2017): 11 gestures by 29 people under 5 lightings, DVS128
    sensor, AEDAT 3.1 recordings ``userNN_<lighting>.aedat`` in ``DvsGesture.tar.gz``.

    Each recording's ``userNN_<lighting>_labels.csv`` cuts it into samples, one per row: the
    events with ``start <= t < end`` (as SpikingJelly does; 1,176 train / 288 test samples). Split:
    the archive's ``trials_to_train.txt`` / ``trials_to_test.txt`` (users 1-23 / 24-29).
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

    def _reader(self):
        return functools.partial(read_aedat31_polarity, sensor_size=self.sensor_size)

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
                    sources.append(SourceFile(recording, _relative(recording, self.root), samples))
        return sources


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class _FrameFiles(Dataset):
    """Samples of a frame cache: ``(frames as dtype, int64 label)``, augmented when ``augment`` is set.

    ``dtype`` is the widest dtype stored in the cache, so that a batch stacks; the DataModule turns
    batches into float32 on the device (:meth:`DVSDataModule.on_after_batch_transfer`), which keeps
    the worker-to-main-process traffic of count frames 4x smaller than float32.
    """

    def __init__(self, folder: Path, samples: list[dict], dtype: str, augment: FrameTransform | None) -> None:
        self.files = [str(folder / m["file"]) for m in samples]
        self.labels = torch.tensor([m["label"] for m in samples], dtype=torch.int64)
        self.keys = [m["key"] for m in samples]
        self.dtype = np.dtype(dtype)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(load_frames(self.files[i]).astype(self.dtype, copy=False))
        if self.augment is not None:
            x = self.augment(x)
        return x, self.labels[i]


def _files(folder: Path, suffix: str) -> list[Path]:
    """Files ending in ``suffix`` under ``folder``, sorted, without macOS metadata (``._*``, ``__MACOSX``)."""
    return sorted(
        p
        for p in folder.rglob(f"*{suffix}")
        if p.is_file() and not p.name.startswith("._") and "__MACOSX" not in p.parts
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _assign(name: str, root: Path, found, split: dict[str, str], split_file) -> list[SourceFile]:
    """One source per recording, its split from ``split``; unknown recordings are an error."""
    where = split_file or "the split file shipped with bsnn-lightning"
    sources = []
    for key, path, label in found:
        if key not in split:
            raise DatasetIncompleteError(
                f"{name}: recording {path} ({key!r}) is not in {where}; the dataset on disk differs from the "
                "documented one. Pass split_file= with a split that names every recording "
                "(format: bsnn_lightning.data.splits)"
            )
        sources.append(SourceFile(path, _relative(path, root), (SampleSpec(key, label, split[key]),)))
    return sources
