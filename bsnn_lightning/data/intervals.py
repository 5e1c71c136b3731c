"""Embedded temporal task: event intervals, a blinking square whose class is *when* it blinks again.

The event digits (:mod:`bsnn_lightning.data.digits`) can be read from one time step: a network that
averages its input over time loses almost nothing there. This second embedded dataset is built so that
time is all there is. Every recording shows the same thing, a bright square flashing twice at the same
place, and the class is the interval between the two flashes:

1. **Scene.** A dark sensor of ``sensor_size`` pixels (default 16 x 16) and a bright square (intensity 1,
   ``square`` pixels a side, default 4) whose top-left corner is the sensor's centre shifted by a
   uniform integer offset in ``[-position_jitter, position_jitter]`` on each axis (default 2 px).
2. **Timing.** A recording lasts ``slots`` time slots of ``slot_us`` µs (default 16 x 10 ms). The square
   is lit for ``flash_us`` µs (default 5 ms) from the start of slot ``s0`` and again from the start of slot
   ``s0 + delays[label]``. ``s0`` is uniform over ``0 .. slots - max(delays) - 1`` for every class, so
   the first flash tells nothing about the class, and with the default ``delays = (2, 4, 6, 8)`` slots
   (20 to 80 ms) there are four classes.
3. **Events.** The scene is sampled every ``step_us`` µs (1 ms) and run through the DVS pixel model of
   the digits (:mod:`~bsnn_lightning.data.sim.pixel`: log intensity, contrast
   threshold ``C = 0.2``, ``eps = 0.2``; the same jittered timestamps), so each flash gives every pixel of
   the square 8 ON events as it lights and 8 OFF events as it goes dark: 512 events per recording.
4. **Noise.** Optionally ``noise_events`` background events on average (Poisson count), uniform over
   the sensor, the recording and the two polarities, independent of the class.

What makes it a temporal task: the position, the number of flashes, the events of each flash and the
noise have one distribution for every class; only the second flash's time depends on the label. The
frames summed over the whole recording therefore have the same distribution in every class, and a network
given only those is at chance (1 / number of classes) whatever it is. A spiking neuron tells the classes
apart only if its membrane still holds the first flash when the second arrives (too short a memory
forgets it), but not as a plain running count of both (a memory much longer than the delays integrates
two flashes to the same total whatever the gap). The difficulty knobs: ``delays`` (which gaps must be told
apart), ``noise_events`` (background events on top of the flashes), and the number of frames ``T`` a
DataModule bins the recording into (fewer frames than slots merge neighbouring slots).

Samples are generated, not downloaded or cached: sample ``i`` of a split is drawn by the Generator
:func:`interval_rng` ``(seed, split, i)``, so it is the same whatever the number of samples asked for,
and the 1,500 samples of the default DataModule take about a second on one CPU core. Labels are
balanced: sample ``i`` has class ``i % len(delays)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .events import EVENT_DTYPE
from .sim import PixelSettings, assemble_events, check_scene_config, is_int, pixel_model_steps

__all__ = [
    "IntervalConfig",
    "IntervalEvents",
    "SPLITS",
    "interval_rng",
    "load_interval_events",
    "simulate_interval_events",
]

SPLITS = ("train", "test")
"""The two splits of the interval task; each draws its samples from its own Generator streams."""

_CHUNK = 256  # recordings run through the pixel model together


@dataclass(frozen=True)
class IntervalConfig(PixelSettings):
    """Every parameter of the event-interval recordings (see the module docstring).

    Attributes:
        sensor_size: ``(width, height)`` of the sensor.
        square: side of the flashing square, in pixels.
        position_jitter: the square's top-left corner is the centred position plus a uniform integer
            offset in ``[-position_jitter, position_jitter]`` on each axis.
        slots: time slots per recording.
        slot_us: duration of a slot, µs.
        flash_us: how long the square stays lit per flash, µs (less than a slot).
        delays: the interval, in slots, from the first flash to the second, one per class.
        noise_events: mean number of uniform background events per recording (Poisson).
        step_us: sampling period of the DVS pixel model, µs; divides ``slot_us`` and ``flash_us``.
        contrast_threshold: ``C`` of the pixel model (natural-log units).
        eps: ``eps`` of the pixel model, ``log(I + eps)``.

    Example:
        >>> config = IntervalConfig(sensor_size=(8, 8), square=2, position_jitter=1, slots=4, delays=(1, 2),
        ...                         slot_us=2000, flash_us=1000)
        >>> config.num_classes, config.duration_us, config.first_slots
        (2, 8000, 2)
        >>> IntervalConfig(delays=(2, 2))
        Traceback (most recent call last):
            ...
        ValueError: expected distinct delays (one per class), got (2, 2)
    """

    sensor_size: tuple[int, int] = (16, 16)
    square: int = 4
    position_jitter: int = 2
    slots: int = 16
    slot_us: int = 10_000
    flash_us: int = 5_000
    delays: tuple[int, ...] = (2, 4, 6, 8)
    noise_events: float = 0.0

    def __post_init__(self) -> None:
        check_scene_config(self, ("square", "slots", "slot_us", "flash_us", "step_us"))
        if not is_int(self.position_jitter) or self.position_jitter < 0:
            raise ValueError(f"expected position_jitter to be an int >= 0, got {self.position_jitter!r}")
        room = min(self.sensor_size) - self.square
        if room < 0 or 2 * self.position_jitter > room:
            raise ValueError(
                f"expected square + 2 * position_jitter <= the sensor's smaller side {min(self.sensor_size)}, "
                f"got square = {self.square}, position_jitter = {self.position_jitter}"
            )
        if self.slot_us % self.step_us or self.flash_us % self.step_us:
            raise ValueError(
                f"expected step_us to divide slot_us and flash_us, got step_us = {self.step_us}, "
                f"slot_us = {self.slot_us}, flash_us = {self.flash_us}"
            )
        if self.flash_us >= self.slot_us:
            raise ValueError(f"expected flash_us < slot_us, got flash_us = {self.flash_us}, slot_us = {self.slot_us}")
        delays = self.delays
        if not (isinstance(delays, (tuple, list)) and len(delays) >= 2 and all(is_int(d) and d >= 1 for d in delays)):
            raise ValueError(f"expected delays as two or more ints >= 1 (slots), got {delays!r}")
        if len(set(delays)) != len(delays):
            raise ValueError(f"expected distinct delays (one per class), got {delays!r}")
        if max(delays) >= self.slots:
            raise ValueError(f"expected every delay < slots = {self.slots}, got delays {tuple(delays)}")
        object.__setattr__(self, "delays", tuple(int(d) for d in delays))
        if not (np.isfinite(self.noise_events) and self.noise_events >= 0):
            raise ValueError(f"expected noise_events >= 0, got {self.noise_events!r}")
        object.__setattr__(self, "noise_events", float(self.noise_events))

    @property
    def num_classes(self) -> int:
        return len(self.delays)

    @property
    def duration_us(self) -> int:
        """Length of a recording; every event has ``0 <= t < duration_us``."""
        return self.slots * self.slot_us

    @property
    def first_slots(self) -> int:
        """How many slots the first flash can start in: ``slots - max(delays)``."""
        return self.slots - max(self.delays)


class IntervalEvents(NamedTuple):
    """Result of :func:`load_interval_events`: the recordings and how each was drawn.

    Example:
        >>> config = IntervalConfig(sensor_size=(8, 8), square=2, position_jitter=1, slots=4, delays=(1, 2),
        ...                         slot_us=2000, flash_us=1000)
        >>> events, labels, first_slot, position = load_interval_events(4, config=config)
        >>> len(events), labels.tolist(), first_slot.tolist(), position.tolist()
        (4, [0, 1, 0, 1], [1, 1, 0, 1], [[3, 3], [3, 2], [3, 3], [4, 4]])
    """

    events: list[np.ndarray]
    """One :data:`EVENT_DTYPE` array per recording, sorted by ``t``."""
    labels: np.ndarray
    """Classes ``0 .. len(delays) - 1`` (int64): class ``k`` has the delay ``delays[k]``."""
    first_slot: np.ndarray
    """Slot of the first flash (int64); the second is at ``first_slot + delays[label]``."""
    position: np.ndarray
    """``[N, 2]`` (x, y) of the square's top-left pixel (int64)."""


def interval_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The Generator that draws recording ``index`` of ``split`` ("train" or "test") under ``seed``.

    Example:
        >>> interval_rng(0, "train", 0).integers(100, size=3).tolist()  # the same numbers on every call
        [85, 63, 51]
    """
    return np.random.default_rng([seed, SPLITS.index(split), index])


def load_interval_events(
    n: int, split: str = "train", seed: int = 0, config: IntervalConfig | None = None
) -> IntervalEvents:
    """``n`` recordings of ``split``, recording ``i`` drawn by :func:`interval_rng` ``(seed, split, i)``.

    Labels are balanced, ``i % len(delays)``, so every class has ``n // len(delays)`` or one more.

    Example:
        >>> config = IntervalConfig(sensor_size=(8, 8), square=2, position_jitter=1, slots=4, delays=(1, 2),
        ...                         slot_us=2000, flash_us=1000)
        >>> recordings = load_interval_events(4, "train", seed=0, config=config)
        >>> recordings.labels.tolist(), [len(e) for e in recordings.events]
        ([0, 1, 0, 1], [128, 128, 128, 128])
        >>> recordings.events[0][:2].tolist()  # (t, x, y, p): the first flash lights up in slot 1
        [(2002, 3, 4, 1), (2016, 3, 3, 1)]
        >>> load_interval_events(2, "val")
        Traceback (most recent call last):
            ...
        ValueError: expected split in ('train', 'test'), got 'val'
    """
    config = config or IntervalConfig()
    if not is_int(n) or n < 1:
        raise ValueError(f"expected n to be an int >= 1, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"expected split in {SPLITS}, got {split!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"expected seed to be an int >= 0, got {seed!r}")
    labels = np.arange(n, dtype=np.int64) % config.num_classes
    rngs = [interval_rng(seed, split, i) for i in range(n)]
    events, first_slot, position = simulate_interval_events(labels, rngs, config)
    return IntervalEvents(events, labels, first_slot, position)


def simulate_interval_events(
    labels: np.ndarray, rngs: list[np.random.Generator], config: IntervalConfig | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Recordings of the classes ``labels``, recording ``i`` drawn with ``rngs[i]``.

    Each Generator draws, in this order, the first flash's slot, the square's offset, the noise events, then
    the timestamp jitter of the pixel model's events, so a recording depends on its own Generator only.

    Returns:
        ``(events, first_slot, position)`` as in :class:`IntervalEvents`.

    Example:
        >>> import numpy as np
        >>> config = IntervalConfig(sensor_size=(8, 8), square=2, position_jitter=1, slots=4, delays=(1, 2),
        ...                         slot_us=2000, flash_us=1000)
        >>> rngs = [interval_rng(0, "test", i) for i in range(2)]
        >>> events, first_slot, position = simulate_interval_events(np.array([0, 1]), rngs, config)
        >>> [len(e) for e in events], first_slot.tolist(), position.tolist()
        ([128, 128], [1, 1], [[4, 4], [4, 4]])
        >>> simulate_interval_events(np.array([5]), rngs[:1], config)
        Traceback (most recent call last):
            ...
        ValueError: expected labels in [0, 2), got range [5, 5]
    """
    config = config or IntervalConfig()
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(rngs):
        raise ValueError(f"expected 1-D labels with one Generator each, got {labels.shape} and {len(rngs)} Generators")
    if len(labels) and (labels.min() < 0 or labels.max() >= config.num_classes):
        raise ValueError(f"expected labels in [0, {config.num_classes}), got range [{labels.min()}, {labels.max()}]")
    width, height = config.sensor_size
    centre = np.array([(width - config.square) // 2, (height - config.square) // 2])
    jitter = config.position_jitter
    first_slot = np.array([rng.integers(0, config.first_slots) for rng in rngs], dtype=np.int64)
    position = np.array([centre + rng.integers(-jitter, jitter + 1, size=2) for rng in rngs], dtype=np.int64)
    position = position.reshape(len(rngs), 2)
    noise = [_noise_events(rng, config) for rng in rngs]
    starts = np.stack([first_slot, first_slot + np.asarray(config.delays)[labels]], axis=1) * config.slot_us
    flashes: list[np.ndarray] = []
    for lo in range(0, len(labels), _CHUNK):
        hi = min(lo + _CHUNK, len(labels))
        frames = _flash_frames(starts[lo:hi], position[lo:hi], config)
        steps = pixel_model_steps(frames, config.contrast_threshold, config.eps)
        flashes += assemble_events(steps, hi - lo, config.step_us, rngs[lo:hi])
    events = [_merge_by_time(f, z) for f, z in zip(flashes, noise)]
    return events, first_slot, position


def _merge_by_time(flash: np.ndarray, noise: np.ndarray) -> np.ndarray:
    if not len(noise):
        return flash
    merged = np.concatenate([flash, noise])
    return merged[np.argsort(merged["t"], kind="stable")]


def _flash_frames(starts: np.ndarray, position: np.ndarray, config: IntervalConfig):
    """The scene at every sample time ``k * step_us``, ``k = 0 .. duration / step_us``: ``[N, H, W]`` frames.

    The square is lit at sample times ``t`` with ``start < t <= start + flash_us`` for either flash start,
    so its ON events fall in ``[start, start + step_us)`` and its OFF events just after ``start + flash_us``.
    """
    width, height = config.sensor_size
    n = len(starts)
    mask = np.zeros((n, height, width), dtype=np.float32)
    for i, (x, y) in enumerate(position):
        mask[i, y : y + config.square, x : x + config.square] = 1.0
    for k in range(config.duration_us // config.step_us + 1):
        t = k * config.step_us
        lit = ((starts < t) & (t <= starts + config.flash_us)).any(axis=1)
        yield mask * lit[:, None, None].astype(np.float32)


def _noise_events(rng: np.random.Generator, config: IntervalConfig) -> np.ndarray:
    width, height = config.sensor_size
    count = int(rng.poisson(config.noise_events)) if config.noise_events > 0 else 0
    noise = np.empty(count, dtype=EVENT_DTYPE)
    noise["t"] = rng.integers(0, config.duration_us, count)
    noise["x"] = rng.integers(0, width, count)
    noise["y"] = rng.integers(0, height, count)
    noise["p"] = rng.integers(0, 2, count)
    return noise

