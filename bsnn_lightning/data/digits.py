"""Embedded default dataset: scikit-learn's 8x8 digits turned into DVS events by simulated saccades.

N-MNIST (Orchard et al. 2015, "Converting static image datasets to spiking neuromorphic datasets
using saccades", Frontiers in Neuroscience 9:437) was recorded by moving an ATIS event camera in
front of an LCD showing MNIST digits, along three ~100 ms saccades that trace a triangle. This module
makes the same recordings of the 1,797 8 x 8 digits that ship inside scikit-learn
(``sklearn.datasets.load_digits``, no download), with the simulator of :mod:`bsnn_lightning.data.sim`:

1. **Scene.** A digit (values 0..16, stroke = 16) becomes intensities ``I = v / 16`` in [0, 1]: a
   bright stroke on a dark screen, as MNIST is displayed in N-MNIST, upsampled x3 and centred on a
   34 x 34 sensor (sklearn's digits fill their 8 x 8 box, so x3 gives about the field share of
   N-MNIST and leaves room for the saccades; :mod:`~bsnn_lightning.data.sim.saccades` has the details).
2. **Saccades.** Three saccades of 100 ms along a triangle of 4 px (:func:`~bsnn_lightning.data.sim.saccade_offsets`).
3. **DVS pixel model.** Log intensity against a reference level, contrast threshold ``C = 0.2``,
   ``ε = 0.2``, sampled every 1 ms, timestamps jittered within the step by a Generator
   (:mod:`~bsnn_lightning.data.sim.pixel`); digit ``i`` under seed ``s`` uses :func:`digit_rng` ``(s, i)``.

Measured on the project's 2-core CPU machine: all 1,797 digits simulate in about 3 s (4-4.5 s with
loading sklearn and writing the cache), 4,725 events per digit on average (3,198 to 6,084, half ON,
half OFF), a 110 MB cache file (:mod:`~bsnn_lightning.data.cache`) that later runs read in ~0.2 s
(see :func:`load_digit_events`).

Split: :func:`digits_train_test_split` -- fixed, stratified 80/20 per class, independent of the
simulation seed. Static variant: :func:`digit_static_images` -- the upsampled digit, centred,
as ``[1, H, W]``, for experiments that present the same image at every time step.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .cache import CorruptCacheError, default_cache_dir, read_event_cache, write_event_cache
from .sim import SaccadeConfig, render_centred, simulate_saccades

__all__ = [
    "N_DIGITS",
    "DigitEvents",
    "digit_events_cache_path",
    "digit_rng",
    "digit_static_images",
    "digits_train_test_split",
    "load_digit_events",
    "load_digit_images",
]

_CACHE_FORMAT_VERSION = 1  # bump whenever the simulator's output for given parameters changes
N_DIGITS = 1797
"""Number of images in ``sklearn.datasets.load_digits``."""


class DigitEvents(NamedTuple):
    """Result of :func:`load_digit_events`.

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data.sim import SaccadeConfig
        >>> config = SaccadeConfig(sensor_size=(12, 12), upsample=1, saccade_us=10_000)  # small and short
        >>> with tempfile.TemporaryDirectory() as root:
        ...     events, labels, path = load_digit_events(cache_dir=root, limit=2, config=config)
        >>> len(events), labels.tolist(), path.name
        (2, [0, 1], 'digits_2.npz')
    """

    events: list[np.ndarray]
    """One :data:`EVENT_DTYPE` array per digit, sorted by ``t``."""
    labels: np.ndarray
    """Digit classes 0..9, int64, aligned with ``events``."""
    path: Path
    """The cache file the events were read from or written to."""


def load_digit_events(
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    *,
    limit: int | None = None,
    config: SaccadeConfig | None = None,
    build: bool = True,
) -> DigitEvents:
    """All (or the first ``limit``) sklearn digits as simulated event streams, cached on disk.

    Digit ``i`` is simulated with the Generator :func:`digit_rng` ``(seed, i)``, so it equals
    ``simulate_saccade_events(images[i], digit_rng(seed, i), config)`` whatever ``limit`` is.

    Cache: ``<cache_dir>/<key>/digits_<n>.npz``, where ``cache_dir`` is the argument, else
    ``$BSNN_LIGHTNING_CACHE``, else ``~/.cache/bsnn-lightning``; ``<key>`` spells out the cache
    format version, every :class:`~bsnn_lightning.data.sim.SaccadeConfig` field and the seed, and
    ``n`` the number of digits (see :func:`digit_events_cache_path`). The file is an event cache of
    :mod:`bsnn_lightning.data.cache`, written atomically: to a temporary ``digits_<n>.npz.*.tmp`` in
    the same folder, fsynced, then ``os.replace``-d onto its final name, so an interrupted run leaves
    at most a stray ``*.tmp``, which is never read (and not deleted: another process may still be
    writing it).

    A cache file that cannot be read or does not match (truncated zip, bad CRC, missing arrays,
    inconsistent offsets, other parameters recorded inside) is reported with a ``RuntimeWarning``
    and rebuilt when ``build=True``, or raises ``RuntimeError`` when ``build=False``.

    Args:
        seed: simulation seed (timestamp jitter only).
        cache_dir: cache root folder (see above).
        limit: simulate only the first ``limit`` digits (tests, quick runs); ``None`` = all 1,797.
        config: simulation parameters, default :class:`~bsnn_lightning.data.sim.SaccadeConfig()`.
        build: if ``False``, only read: raise ``FileNotFoundError`` when there is no cache and
            ``RuntimeError`` when it is unreadable (what ``LightningDataModule.setup`` uses).

    Example:
        >>> import tempfile
        >>> from bsnn_lightning.data.sim import SaccadeConfig
        >>> config = SaccadeConfig(sensor_size=(12, 12), upsample=1, saccade_us=10_000)  # small and short
        >>> with tempfile.TemporaryDirectory() as root:
        ...     digits = load_digit_events(seed=0, cache_dir=root, limit=2, config=config)  # simulated, cached
        ...     again = load_digit_events(seed=0, cache_dir=root, limit=2, config=config, build=False)  # read back
        >>> [len(e) for e in digits.events], digits.labels.tolist()
        ([1846, 1388], [0, 1])
        >>> digits.events[0][:2].tolist()  # (t, x, y, p)
        [(2, 5, 6, 0), (5, 1, 10, 0)]
        >>> all((a == b).all() for a, b in zip(digits.events, again.events))
        True
    """
    config = config or SaccadeConfig()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"expected seed to be an int >= 0, got {seed!r}")
    images, labels = load_digit_images(limit)
    path = digit_events_cache_path(seed, cache_dir, limit=limit, config=config)
    expected_meta = _cache_metadata(seed, len(labels), config)
    if path.exists():
        try:
            return DigitEvents(read_event_cache(path, expected_meta, labels), labels, path)
        except CorruptCacheError as err:
            if not build:
                raise RuntimeError(
                    f"expected a readable digit-events cache at {path}, got: {err}. Delete it or "
                    "call load_digit_events(build=True) (DataModule.prepare_data) to rebuild it"
                ) from err
            warnings.warn(f"rebuilding unreadable digit-events cache {path}: {err}", RuntimeWarning)
    elif not build:
        raise FileNotFoundError(
            f"expected a digit-events cache at {path}, found none; build it first with "
            "load_digit_events(build=True) (DigitEventsDataModule.prepare_data does this)"
        )
    rngs = [digit_rng(seed, i) for i in range(len(labels))]
    events = simulate_saccades(images, rngs, config)
    write_event_cache(path, events, labels, expected_meta)
    return DigitEvents(events, labels, path)


def load_digit_images(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits as intensities ``[N, 8, 8]`` float64 in [0, 1] (``v / 16``) and int64 labels.

    Example:
        >>> images, labels = load_digit_images(limit=3)
        >>> images.shape, images.dtype, float(images.min()), float(images.max()), labels.tolist()
        ((3, 8, 8), dtype('float64'), 0.0, 1.0, [0, 1, 2])
    """
    from sklearn.datasets import load_digits

    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= N_DIGITS
    ):
        raise ValueError(f"expected limit to be None or an int in [1, {N_DIGITS}], got {limit!r}")
    digits = load_digits()
    n = N_DIGITS if limit is None else limit
    images = digits.images[:n].astype(np.float64) / 16.0
    return images, digits.target[:n].astype(np.int64)


def digit_static_images(
    limit: int | None = None, config: SaccadeConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The static variant: ``([N, 1, H, W] float32, labels int64)``, see :func:`~bsnn_lightning.data.sim.static_image`.

    Example:
        >>> images, labels = digit_static_images(limit=2)  # on N-MNIST's 34 x 34 sensor
        >>> images.shape, images.dtype, labels.tolist()
        ((2, 1, 34, 34), dtype('float32'), [0, 1])
    """
    images, labels = load_digit_images(limit)
    return render_centred(images, config or SaccadeConfig())[:, None].astype(np.float32), labels


def digits_train_test_split(
    labels: np.ndarray, test_fraction: float = 0.2, split_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified split: per class, ``round(test_fraction * n_class)`` samples go to test.

    Each class's indices are shuffled by one ``np.random.default_rng(split_seed)`` (classes in
    ascending order) and the first ``round(test_fraction * n_class)`` become the test set. It
    depends only on the labels, never on the simulation seed, so every run and every seed of
    the digits dataset uses the same split; for the full set it gives 1,438 train / 359 test.

    Returns:
        ``(train_indices, test_indices)``, sorted int64 arrays, disjoint, covering all samples.

    Example:
        >>> import numpy as np
        >>> train, test = digits_train_test_split(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), test_fraction=0.2)
        >>> train.tolist(), test.tolist()  # one of each class's five goes to test
        ([0, 1, 3, 4, 5, 6, 7, 8], [2, 9])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"expected 1-D labels, got shape {labels.shape}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"expected test_fraction in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(split_seed)
    test = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[: int(round(test_fraction * len(members)))])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx).astype(np.int64)
    return train_idx, test_idx


def digit_rng(seed: int, index: int) -> np.random.Generator:
    """The Generator that jitters digit ``index`` under simulation ``seed``.

    Example:
        >>> digit_rng(0, 5).integers(100, size=3).tolist()  # the same numbers on every call
        [69, 38, 83]
        >>> digit_rng(0, 5).integers(100, size=3).tolist()
        [69, 38, 83]
    """
    return np.random.default_rng([seed, index])


def digit_events_cache_path(
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    *,
    limit: int | None = None,
    config: SaccadeConfig | None = None,
) -> Path:
    """Where :func:`load_digit_events` keeps the events for these parameters.

    Example:
        >>> from bsnn_lightning.data.sim import SaccadeConfig
        >>> config = SaccadeConfig(sensor_size=(12, 12), upsample=1, saccade_us=10_000)
        >>> path = digit_events_cache_path(seed=0, cache_dir="cache", limit=2, config=config)
        >>> path.name
        'digits_2.npz'
        >>> print(path.parent.name)  # every parameter spelled out
        digit-events-v1_sensor_size-12x12_upsample-1_saccade_amplitude-4.0_saccade_us-10000_step_us-1000_contrast_threshold-0.2_eps-0.2_seed-0
    """
    config = config or SaccadeConfig()
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    parts = [f"digit-events-v{_CACHE_FORMAT_VERSION}"]
    # the scene's own fields, then the pixel model's keyword-only ones: the order cache folders are named in
    for field in sorted(dataclasses.fields(config), key=lambda field: field.kw_only):
        value = getattr(config, field.name)
        text = "x".join(str(v) for v in value) if isinstance(value, tuple) else repr(value)
        parts.append(f"{field.name}-{text}")
    parts.append(f"seed-{seed}")
    n = N_DIGITS if limit is None else limit
    return root / "_".join(parts) / f"digits_{n}.npz"


def _cache_metadata(seed: int, n: int, config: SaccadeConfig) -> dict:
    return {
        "format_version": _CACHE_FORMAT_VERSION,
        "seed": int(seed),
        "n_digits": int(n),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()},
    }
