"""Datasets: the event format, the shared events-to-frames path, the embedded digits set, the embedded
event-interval task, the four DVS datasets (CIFAR10-DVS, DVS128 Gesture, N-Caltech101, N-MNIST) as LightningDataModules, and
their augmentations (per-sample transforms, batch mixing).

Laid out after Tonic's: readers in :mod:`~bsnn_lightning.data.formats`, the caches in :mod:`~bsnn_lightning.data.cache`,
the DVS simulator in :mod:`~bsnn_lightning.data.sim`, the augmentations in :mod:`~bsnn_lightning.data.transforms`,
one module per DVS dataset in :mod:`~bsnn_lightning.data.datasets` (``docs/datasets.md``, "The package's layout")."""

from .archives import ArchiveError, ArchiveSpec, DatasetNotFoundError, UnsafeArchiveError
from .datamodules import DigitEventsDataModule, IntervalEventsDataModule
from .cache import CACHE_ENV_VAR, default_cache_dir
from .digits import (
    N_DIGITS,
    DigitEvents,
    digit_events_cache_path,
    digit_rng,
    digit_static_images,
    digits_train_test_split,
    load_digit_events,
    load_digit_images,
)
from .datasets import (
    CIFAR10DVSDataModule,
    DatasetIncompleteError,
    DVS128GestureDataModule,
    DVSDataModule,
    NCaltech101DataModule,
    NMNISTDataModule,
)
from .events import EVENT_DTYPE, SPLIT_BY, events_from_arrays, events_to_frames
from .intervals import IntervalConfig, IntervalEvents, interval_rng, load_interval_events, simulate_interval_events
from .formats import (
    EventFileError,
    read_aedat2_dvs128,
    read_aedat31_polarity,
    read_atis_bin,
    read_gesture_labels,
)
from .sim import SaccadeConfig, dvs_events_from_frames, saccade_offsets, simulate_saccade_events, static_image
from .tonic_datasets import TonicDataModule
from .transforms import (
    Compose,
    FrameTransform,
    MixupCutmix,
    RandomFlip,
    RandomRoll,
    RandomTranslate,
    random_flip,
    random_shift,
)

__all__ = [
    "CACHE_ENV_VAR",
    "EVENT_DTYPE",
    "N_DIGITS",
    "SPLIT_BY",
    "ArchiveError",
    "ArchiveSpec",
    "CIFAR10DVSDataModule",
    "Compose",
    "DVS128GestureDataModule",
    "DVSDataModule",
    "DatasetIncompleteError",
    "DatasetNotFoundError",
    "DigitEvents",
    "DigitEventsDataModule",
    "EventFileError",
    "FrameTransform",
    "IntervalConfig",
    "IntervalEvents",
    "IntervalEventsDataModule",
    "MixupCutmix",
    "NCaltech101DataModule",
    "NMNISTDataModule",
    "TonicDataModule",
    "RandomFlip",
    "RandomRoll",
    "RandomTranslate",
    "UnsafeArchiveError",
    "SaccadeConfig",
    "default_cache_dir",
    "digit_events_cache_path",
    "digit_rng",
    "digit_static_images",
    "digits_train_test_split",
    "dvs_events_from_frames",
    "events_from_arrays",
    "events_to_frames",
    "interval_rng",
    "load_digit_events",
    "load_digit_images",
    "load_interval_events",
    "random_flip",
    "random_shift",
    "read_aedat2_dvs128",
    "read_aedat31_polarity",
    "read_atis_bin",
    "read_gesture_labels",
    "saccade_offsets",
    "simulate_interval_events",
    "simulate_saccade_events",
    "static_image",
]
