"""Datasets: the event format, the shared events-to-frames path, and the embedded digits set."""

from .datamodules import DigitEventsDataModule
from .digits import (
    CACHE_ENV_VAR,
    N_DIGITS,
    DigitEvents,
    SaccadeConfig,
    default_cache_dir,
    digit_events_cache_path,
    digit_rng,
    digit_static_images,
    digits_train_test_split,
    dvs_events_from_frames,
    load_digit_events,
    load_digit_images,
    saccade_offsets,
    simulate_saccade_events,
    static_image,
)
from .events import EVENT_DTYPE, SPLIT_BY, events_from_arrays, events_to_frames

__all__ = [
    "CACHE_ENV_VAR",
    "EVENT_DTYPE",
    "N_DIGITS",
    "SPLIT_BY",
    "DigitEvents",
    "DigitEventsDataModule",
    "SaccadeConfig",
    "default_cache_dir",
    "digit_events_cache_path",
    "digit_rng",
    "digit_static_images",
    "digits_train_test_split",
    "dvs_events_from_frames",
    "events_from_arrays",
    "events_to_frames",
    "load_digit_events",
    "load_digit_images",
    "saccade_offsets",
    "simulate_saccade_events",
    "static_image",
]
