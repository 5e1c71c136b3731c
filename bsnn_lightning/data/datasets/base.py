"""What the four DVS DataModules share (CIFAR10-DVS, DVS128 Gesture, N-Caltech101, N-MNIST: one module each in
:mod:`bsnn_lightning.data.datasets`).

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
from torch.utils.data import Dataset

from ..archives import EXTRACTED_MARKER, ArchiveSpec, extract_archive, fetch_archives
from ..cache import FrameSpec, SampleSpec, SourceFile, build_frame_cache, cache_folder, default_cache_dir, load_frames, read_manifest
from ..events import SPLIT_BY
from ..loading import TestSplitLoaders, check_choice, check_int, default_num_workers
from ..splits import SHIPPED, read_split_file, shipped_split
from ..transforms import Compose, FrameTransform, MixupCutmix, check_transforms

__all__ = ["DVSDataModule", "DatasetIncompleteError", "assign_split", "recording_files", "relative_name"]


class DatasetIncompleteError(RuntimeError):
    """The extracted dataset does not hold the recordings its split and published counts expect.

    Example:
        >>> import tempfile, zipfile
        >>> from pathlib import Path
        >>> from bsnn_lightning.data import NMNISTDataModule
        >>> tmp = tempfile.TemporaryDirectory()
        >>> root = Path(tmp.name) / "n-mnist"
        >>> root.mkdir()
        >>> for name in ("Train", "Test"):  # one recording in each archive, where N-MNIST has 60,000 and 10,000
        ...     with zipfile.ZipFile(root / f"{name}.zip", "w") as zf:
        ...         zf.writestr(f"{name}/7/00001.bin", bytes([3, 5, 0x80, 0, 100]))
        >>> unchecked = {"Train.zip": None, "Test.zip": None}  # not the published archives: skip their MD5
        >>> dm = NMNISTDataModule(root=root, download=False, progress=False, checksums=unchecked)
        >>> try:
        ...     dm.prepare_data()
        ... except DatasetIncompleteError as err:
        ...     print(str(err).split(" under ")[0])
        N-MNIST: found 1 train / 1 test samples
        >>> tmp.cleanup()
    """


class DVSDataModule(TestSplitLoaders, L.LightningDataModule):
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

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data import DatasetNotFoundError, DVS128GestureDataModule
        >>> from bsnn_lightning.data.transforms import MixupCutmix, RandomFlip, RandomRoll
        >>> tmp = tempfile.TemporaryDirectory()
        >>> dm = DVS128GestureDataModule(root=tmp.name, time_steps=16, resize=(64, 64), download=False, progress=False,
        ...                              augment=[RandomFlip(0.5), RandomRoll(4)], mix=MixupCutmix())
        >>> dm.input_shape, dm.num_classes
        ((16, 2, 64, 64), 11)
        >>> dm.augment
        Compose([RandomFlip(p=0.5), RandomRoll(max_shift=4)])
        >>> try:  # the archive is not in root, and download=False
        ...     dm.prepare_data()
        ... except DatasetNotFoundError as err:
        ...     print(str(err).splitlines()[1])
          - DvsGesture.tar.gz: not found (no direct download link exists)
        >>> tmp.cleanup()
    """

    name = "DVS"
    slug = "dvs"
    archives: tuple[ArchiveSpec, ...] = ()
    sensor_size: tuple[int, int] = (128, 128)
    num_classes = 2
    expected_counts: dict[str, int] = {}
    read_events = None
    """The dataset's reader, ``read(path, **options) -> events`` (set as ``staticmethod(reader)``)."""
    shipped_split_name: str | None = None
    """The split file shipped for the dataset (a key of :data:`bsnn_lightning.data.splits.SPLIT_FILES`), if any."""
    split_file: str | None = None

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
        """``path -> events`` for the cache builder: :attr:`read_events` with :meth:`_reader_options` (a
        ``functools.partial`` of a module-level function, which worker processes can unpickle)."""
        if self.read_events is None:
            raise NotImplementedError(f"{type(self).__name__} must set read_events or define _reader()")
        return functools.partial(self.read_events, **self._reader_options())

    def _reader_options(self) -> dict:
        return {"sensor_size": self.sensor_size}

    def _split(self) -> tuple[dict[str, str], str]:
        """Every recording's part, ``{"<class>/<file>": "train" | "test"}``, and what the split is (for errors):
        ``split_file`` when one was given, else the split shipped as :attr:`shipped_split_name`."""
        if self.split_file:
            return read_split_file(self.split_file), self.split_file
        if self.shipped_split_name is None:
            raise NotImplementedError(f"{self.name} has no shipped split; give split_file")
        return shipped_split(self.shipped_split_name), SHIPPED

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


def recording_files(folder: Path, suffix: str) -> list[Path]:
    """Files ending in ``suffix`` under ``folder``, sorted, without macOS metadata (``._*``, ``__MACOSX``).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> for name in ("7/00002.bin", "7/00001.bin", "7/._00001.bin", "__MACOSX/7/00001.bin"):
        ...     (Path(tmp.name) / name).parent.mkdir(parents=True, exist_ok=True)
        ...     _ = (Path(tmp.name) / name).write_bytes(b"")
        >>> [relative_name(p, Path(tmp.name)) for p in recording_files(Path(tmp.name), ".bin")]
        ['7/00001.bin', '7/00002.bin']
        >>> tmp.cleanup()
    """
    return sorted(
        p
        for p in folder.rglob(f"*{suffix}")
        if p.is_file() and not p.name.startswith("._") and "__MACOSX" not in p.parts
    )


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), or whole when it is outside.

    Example:
        >>> from pathlib import Path
        >>> relative_name(Path("/data/n-mnist/Train/7/00001.bin"), Path("/data/n-mnist"))
        'Train/7/00001.bin'
        >>> relative_name(Path("/elsewhere/00001.bin"), Path("/data/n-mnist"))
        '/elsewhere/00001.bin'
    """
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def assign_split(name: str, root: Path, found, split: dict[str, str], where: str) -> list[SourceFile]:
    """One source per ``(key, path, label)`` of ``found``, its split from ``split`` (which ``where`` names in the
    error): a recording the split does not name is an error, never silently assigned.

    Example:
        >>> from pathlib import Path
        >>> root = Path("/data/toy")
        >>> found = [("cat/a.aedat", root / "cat/a.aedat", 3)]
        >>> sources = assign_split("Toy", root, found, {"cat/a.aedat": "test"}, "my split")
        >>> [source.samples[0].split for source in sources]
        ['test']
        >>> try:
        ...     assign_split("Toy", root, found, {"cat/b.aedat": "test"}, "my split")
        ... except DatasetIncompleteError as err:
        ...     print(str(err).split(";")[0])
        Toy: recording /data/toy/cat/a.aedat ('cat/a.aedat') is not in my split
    """
    sources = []
    for key, path, label in found:
        if key not in split:
            raise DatasetIncompleteError(
                f"{name}: recording {path} ({key!r}) is not in {where}; the dataset on disk differs from the "
                "documented one. Pass split_file= with a split that names every recording "
                "(format: bsnn_lightning.data.splits)"
            )
        sources.append(SourceFile(path, relative_name(path, root), (SampleSpec(key, label, split[key]),)))
    return sources

