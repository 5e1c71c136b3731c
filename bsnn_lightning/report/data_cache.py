"""The data the runs of one task share (:class:`DataCache`), built once per variant and kept: the task's event
frames, the digits' static images, and the event frames averaged over time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch.utils.data import Dataset

from ..data import DigitEventsDataModule, IntervalEventsDataModule
from ..data.loading import make_loader
from .settings import Settings


@dataclass(frozen=True)
class TaskData:
    """The samples one kind of run trains and tests on."""

    train: Dataset
    test: Dataset
    num_classes: int
    steps: int  # time steps the network runs
    sample_shape: tuple[int, ...]  # one sample: [T, C, H, W] for sequences, [C, H, W] for static inputs
    static: bool  # True: each sample is one frame, presented at every step
    batch_size: int

    def loader(self, split: str):
        dataset = {"train": self.train, "test": self.test}[split]
        return make_loader(dataset, batch_size=self.batch_size, num_workers=0, shuffle=split == "train")


class DataCache:
    """The data the runs of one task share, built once per variant: set up, never reloaded.

    Variants: ``"events"`` (the task's event frames), ``"static"`` (the digits' static images) and
    ``"time_averaged"`` (the event frames' mean over time, one frame per sample, shown at every step).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._data: dict[str, TaskData] = {}

    def prepare(self) -> None:
        """Build what is cached on disk (the digits' events), so that worker processes only read it."""
        if self.settings.task == "digits":
            self._digits_module("events").prepare_data()

    def get(self, variant: str) -> TaskData:
        if variant not in self._data:
            self._data[variant] = self._build(variant)
        return self._data[variant]

    def _build(self, variant: str) -> TaskData:
        settings = self.settings
        if variant == "time_averaged":
            events = self.get("events")
            return dataclasses.replace(
                events, train=_TimeAveraged(events.train), test=_TimeAveraged(events.test),
                sample_shape=events.sample_shape[1:], static=True,
            )
        if variant not in ("events", "static"):
            raise ValueError(f"expected a variant 'events', 'static' or 'time_averaged', got {variant!r}")
        if settings.task == "intervals":
            if variant == "static":
                raise ValueError("expected variant 'events' or 'time_averaged' for the interval task: it has no static variant")
            dm = interval_module(settings)
        else:
            dm = self._digits_module(variant)
            dm.prepare_data()
        dm.setup()
        return TaskData(
            train=dm.train_dataloader().dataset, test=dm.test_dataloader().dataset, num_classes=dm.num_classes,
            steps=dm.time_steps, sample_shape=tuple(dm.input_shape), static=variant == "static",
            batch_size=settings.batch_size,
        )

    def _digits_module(self, variant: str) -> DigitEventsDataModule:
        settings = self.settings
        steps = settings.time_steps_events if variant == "events" else settings.time_steps_static
        return DigitEventsDataModule(
            time_steps=steps, variant=variant, batch_size=settings.batch_size, cache_dir=settings.cache_dir,
            limit=settings.limit,
        )


def interval_module(settings: Settings) -> IntervalEventsDataModule:
    return IntervalEventsDataModule(
        time_steps=settings.time_steps_events, n_train=settings.n_train, n_test=settings.n_test,
        batch_size=settings.batch_size,
    )


class _TimeAveraged(Dataset):
    """``(x.mean(0), y)`` of a dataset of ``(x [T, ...], y)``: the frames summed over time, divided by T."""

    def __init__(self, samples: Dataset) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        x, y = self.samples[i]
        return x.mean(0), y
