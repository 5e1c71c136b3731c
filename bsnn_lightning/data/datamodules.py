"""Lightning DataModules."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from .digits import (
    N_DIGITS,
    digit_static_images,
    digits_train_test_split,
    load_digit_events,
    load_digit_images,
)
from .events import SPLIT_BY, events_to_frames
from .intervals import IntervalConfig, load_interval_events
from .sim import SaccadeConfig
from .loading import TestSplitLoaders, check_choice, check_int

__all__ = ["DigitEventsDataModule", "IntervalEventsDataModule"]

VARIANTS = ("events", "static")


class DigitEventsDataModule(TestSplitLoaders, L.LightningDataModule):
    """sklearn's 1,797 8x8 digits as simulated N-MNIST-style DVS recordings (no download).

    See :mod:`bsnn_lightning.data.digits` for the simulation (34 x 34 sensor, three 100 ms
    saccades, contrast threshold 0.2). Samples are ``(x, y)`` with ``y`` an int64 class 0..9 and

    * ``variant="events"``: ``x`` float32 ``[time_steps, 2, 34, 34]``, event counts per bin,
      channel 0 = OFF, channel 1 = ON (:func:`~bsnn_lightning.data.events.events_to_frames`);
    * ``variant="static"``: ``x`` float32 ``[1, 34, 34]``, the upsampled digit centred on the
      sensor, intensities in [0, 1]; the classifier repeats it over ``time_steps``.

    Batches add a leading batch dimension. Split: the fixed stratified 80/20 split of
    :func:`~bsnn_lightning.data.digits.digits_train_test_split` (1,438 train / 359 test),
    independent of ``seed``. **Validation uses the test split**, as the DVS literature reports
    test accuracy with no separate validation set; ``val``, ``test`` and ``predict`` loaders all
    serve the same 359 samples, ``predict`` as ``(x, y)`` batches too.

    ``prepare_data`` simulates the events and writes the on-disk cache (once, on one process);
    ``setup`` only reads it and bins every sample into frames once, held in memory as the
    smallest integer type that holds the counts (uint8 for the defaults: 33 MB for the full set
    at 8 time steps, against 133 MB as float32), converted to float32 per sample.

    Args:
        time_steps: number of frames ``T`` per sample (also what a model repeats a static image).
        variant: ``"events"`` (frames of events) or ``"static"`` (the image itself).
        split_by: ``"time"`` (equal-duration bins) or ``"number"`` (equal event counts); see
            :func:`~bsnn_lightning.data.events.events_to_frames`. Ignored by ``"static"``.
        batch_size: samples per batch, for every loader.
        num_workers: DataLoader worker processes (0 = load in the main process).
        seed: simulation seed (jitter of the event timestamps); does not change the split.
        cache_dir: folder of the event cache; ``None`` = ``$BSNN_LIGHTNING_CACHE`` or
            ``~/.cache/bsnn-lightning``.
        limit: use only the first ``limit`` digits (quick runs, tests); ``None`` = all 1,797.
            The split is then made on those digits; a class with fewer than 3 of them puts
            none in the test split (``round(0.2 * n) = 0``), so keep ``limit >= 30``.

    Attributes:
        num_classes: 10.
        input_shape: per-sample shape, ``(time_steps, 2, 34, 34)`` or ``(1, 34, 34)``.
        time_steps: as given.

    Example:
        >>> dm = DigitEventsDataModule(variant="static", time_steps=4, batch_size=8, limit=40)
        >>> dm.prepare_data()  # the static images need no simulation nor cache
        >>> dm.setup()
        >>> dm.num_classes, dm.input_shape, len(dm.train_set), len(dm.test_set)
        (10, (1, 34, 34), 30, 10)
        >>> x, y = next(iter(dm.test_dataloader()))
        >>> x.shape, x.dtype, y.dtype
        (torch.Size([8, 1, 34, 34]), torch.float32, torch.int64)
        >>> DigitEventsDataModule(limit=5000)
        Traceback (most recent call last):
            ...
        ValueError: expected limit <= 1797 (the number of digits), got 5000
    """

    def __init__(
        self,
        time_steps: int = 8,
        variant: str = "events",
        split_by: str = "time",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__()
        check_int("time_steps", time_steps, 1)
        check_choice("variant", variant, VARIANTS)
        check_choice("split_by", split_by, SPLIT_BY)
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("seed", seed, 0)
        if limit is not None:
            check_int("limit", limit, 1)
            if limit > N_DIGITS:
                raise ValueError(f"expected limit <= {N_DIGITS} (the number of digits), got {limit}")
        self.save_hyperparameters()
        self.time_steps = time_steps
        self.variant = variant
        self.split_by = split_by
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.cache_dir = cache_dir
        self.limit = limit
        self.config = SaccadeConfig()
        width, height = self.config.sensor_size
        self.num_classes = 10
        self.input_shape = (
            (time_steps, 2, height, width) if variant == "events" else (1, height, width)
        )
        self.train_indices: np.ndarray | None = None
        self.test_indices: np.ndarray | None = None
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None

    def prepare_data(self) -> None:
        """Simulate and cache the events if needed (Lightning calls this on one process)."""
        if self.variant == "events":
            load_digit_events(self.seed, self.cache_dir, limit=self.limit, config=self.config)
        else:
            load_digit_images(self.limit)  # checks ``limit``; the images ship with sklearn

    def setup(self, stage: str | None = None) -> None:
        """Read the cache (never writes) and build the in-memory samples and the split."""
        if self._x is not None:
            return
        if self.variant == "events":
            events, labels, _ = load_digit_events(
                self.seed, self.cache_dir, limit=self.limit, config=self.config, build=False
            )
            frames = np.stack(
                [
                    events_to_frames(e, self.config.sensor_size, self.time_steps, self.split_by)
                    for e in events
                ]
            )
            x = torch.from_numpy(_compact_counts(frames))
        else:
            images, labels = digit_static_images(self.limit, self.config)
            x = torch.from_numpy(images)
        self.train_indices, self.test_indices = digits_train_test_split(labels)
        self._x, self._y = x, torch.from_numpy(labels.astype(np.int64))

    @property
    def train_set(self) -> "_FloatSamples | None":
        """The training split's samples (None before :meth:`setup`)."""
        return self._samples(self.train_indices)

    @property
    def test_set(self) -> "_FloatSamples | None":
        """The test split's samples (None before :meth:`setup`); validation uses them too."""
        return self._samples(self.test_indices)

    def _samples(self, indices: np.ndarray | None) -> "_FloatSamples | None":
        return None if indices is None or self._x is None else _FloatSamples(self._x, self._y, indices)


class IntervalEventsDataModule(TestSplitLoaders, L.LightningDataModule):
    """The event-interval task (no download): a square flashes twice, the class is the gap between flashes.

    See :mod:`bsnn_lightning.data.intervals` for the recordings (16 x 16 sensor, 16 slots of 10 ms, delays of
    2, 4, 6 or 8 slots: four classes that differ only in time). Samples are ``(x, y)``, ``x`` float32
    ``[time_steps, 2, 16, 16]`` event counts per bin (channel 0 = OFF, channel 1 = ON), binned by
    :func:`~bsnn_lightning.data.events.events_to_frames` over the fixed window ``[0, duration)`` of a
    recording, and ``y`` an int64 class. Training and test samples are drawn from separate Generator streams
    of ``seed`` (``n_train`` and ``n_test`` of them, labels balanced); as for the digits, **validation uses
    the test split**, and ``val``, ``test`` and ``predict`` serve the same samples.

    There is nothing to download or cache: ``setup`` generates the recordings (deterministic under ``seed``,
    about a second for the defaults) and bins them once into memory as uint8 counts.

    Args:
        time_steps: number of frames ``T``; the default 16 gives each 10 ms slot one frame.
        delays: the classes' intervals between the flashes, in slots (difficulty: longer and closer delays
            are harder; every delay must be below ``slots``).
        noise_events: mean number of uniform background events per recording (difficulty).
        slots: time slots per recording (each ``slot_us`` = 10 ms).
        position_jitter: the square's offset from the centre, uniform in ``[-j, j]`` pixels per axis.
        n_train, n_test: samples per split.
        batch_size: samples per batch, for every loader.
        num_workers: DataLoader worker processes (0 = load in the main process).
        seed: draws every recording (training and test alike).

    Attributes:
        config: the :class:`~bsnn_lightning.data.intervals.IntervalConfig` the recordings follow.
        num_classes: ``len(delays)``.
        input_shape: per-sample shape, ``(time_steps, 2, 16, 16)``.
        time_steps: as given.

    Example:
        >>> dm = IntervalEventsDataModule(time_steps=8, n_train=8, n_test=4, batch_size=4)
        >>> dm.setup()  # generates the recordings, nothing to download or cache
        >>> dm.num_classes, dm.input_shape, len(dm.train_set), len(dm.test_set)
        (4, (8, 2, 16, 16), 8, 4)
        >>> x, y = next(iter(dm.test_dataloader()))
        >>> x.shape, x.dtype, y.tolist()
        (torch.Size([4, 8, 2, 16, 16]), torch.float32, [0, 1, 2, 3])
        >>> IntervalEventsDataModule(delays=(2, 20))
        Traceback (most recent call last):
            ...
        ValueError: expected every delay < slots = 16, got delays (2, 20)
    """

    def __init__(
        self,
        time_steps: int = 16,
        delays: tuple[int, ...] = (2, 4, 6, 8),
        noise_events: float = 0.0,
        slots: int = 16,
        position_jitter: int = 2,
        n_train: int = 1000,
        n_test: int = 500,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_int("time_steps", time_steps, 1)
        check_int("n_train", n_train, 1)
        check_int("n_test", n_test, 1)
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("seed", seed, 0)
        self.config = IntervalConfig(
            delays=tuple(delays), noise_events=noise_events, slots=slots, position_jitter=position_jitter
        )
        self.save_hyperparameters()
        self.time_steps = time_steps
        self.n_train, self.n_test = n_train, n_test
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        width, height = self.config.sensor_size
        self.num_classes = self.config.num_classes
        self.input_shape = (time_steps, 2, height, width)
        self.train_set: _FloatSamples | None = None
        self.test_set: _FloatSamples | None = None

    def prepare_data(self) -> None:
        """Nothing to do: the recordings are generated in :meth:`setup`, identically on every process."""

    def setup(self, stage: str | None = None) -> None:
        """Generate both splits and bin them into frames (once; later calls keep them)."""
        if self.train_set is not None:
            return
        self.train_set = self._split("train", self.n_train)
        self.test_set = self._split("test", self.n_test)

    def _split(self, split: str, n: int) -> "_FloatSamples":
        events, labels, _, _ = load_interval_events(n, split, self.seed, self.config)
        window = (0, self.config.duration_us)
        frames = np.stack(
            [events_to_frames(e, self.config.sensor_size, self.time_steps, "time", time_window=window) for e in events]
        )
        x = torch.from_numpy(_compact_counts(frames))
        return _FloatSamples(x, torch.from_numpy(labels), np.arange(n))



class _FloatSamples(Dataset):
    """``(x[i].float(), y[i])`` for ``i`` in ``indices``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, indices: np.ndarray) -> None:
        self.x, self.y = x, y
        self.indices = torch.as_tensor(indices, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.indices[i]
        return self.x[j].to(torch.float32), self.y[j]


def _compact_counts(frames: np.ndarray) -> np.ndarray:
    """Event counts as uint8 or int16 when they fit exactly, else unchanged (float32)."""
    largest = frames.max(initial=0)
    for dtype in (np.uint8, np.int16):
        if largest <= np.iinfo(dtype).max:
            return frames.astype(dtype)
    return frames
