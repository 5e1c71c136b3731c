"""Embedded default dataset: scikit-learn's 8x8 digits turned into DVS events by simulated saccades.

N-MNIST (Orchard et al. 2015, "Converting static image datasets to spiking neuromorphic datasets
using saccades", Frontiers in Neuroscience 9:437) was recorded by moving an ATIS event camera in
front of an LCD showing MNIST digits, along three ~100 ms saccades that trace a triangle; each
recording covers a 34 x 34 pixel field. A static scene only produces events where the motion sweeps
an intensity edge across pixels, so the events outline the digit; ON events lead a bright stroke
along the motion, OFF events trail it. This module simulates the same recording for the 1,797 8 x 8
digits that ship inside scikit-learn (``sklearn.datasets.load_digits``, no download):

1. **Scene.** A digit (values 0..16, stroke = 16) becomes intensities ``I = v / 16`` in [0, 1]: a
   bright stroke on a dark screen, as MNIST is displayed in N-MNIST. It is upsampled by
   ``upsample`` (bilinear, pixel centres aligned, zero = dark outside the image) and centred on the
   sensor. Default ``upsample = 3``: a 24 x 24 digit in a 34 x 34 field. sklearn's digits fill
   their 8 x 8 box (MNIST digits fill only 20 of 28 pixels), so x3 gives about the field share
   of N-MNIST and leaves room for the saccades; x4 (32 px) would push strokes off the sensor.
2. **Saccades.** The scene moves, at constant speed per saccade, through the triangle
   ``A = (-a/2, +a/2) -> B = (0, -a/2) -> C = (+a/2, +a/2) -> A`` (``(dx, dy)`` in pixels, y down;
   up-right, down-right, then back left), one saccade per ``saccade_us`` (default 100 ms, 300 ms
   in all, as in N-MNIST). Default amplitude ``a = 4`` px: the 24 px digit, shifted by up to
   +-2 px (and smeared by one more pixel between pixel positions), covers pixels 3..30 of the
   34 px field, as N-MNIST's 28 px images move within 34 px. Sub-pixel
   positions are rendered by bilinear interpolation; parts of a scene outside the sensor are
   not seen, as with a real camera (with the defaults, nothing of a digit leaves the field).
3. **DVS pixel model.** The scene is sampled every ``step_us`` (default 1 ms; the saccade moves
   ~0.06 px per step, so edges cross pixels over many steps, as with a real sensor's continuous
   response). Each pixel compares its log intensity with a reference level:

   .. math::

       L_k = \\log(I_k + \\varepsilon), \\qquad
       R_k = L_0 + m_k C, \\qquad
       n_k = \\operatorname{trunc}\\Big(\\frac{L_k - R_{k-1}}{C}\\Big), \\qquad
       m_k = m_{k-1} + n_k

   ``|n_k|`` events fire between samples ``k-1`` and ``k``, ON if ``n_k > 0``, OFF if ``n_k < 0``
   (several when several multiples of ``C`` were crossed), and the reference moves by exactly the
   amount emitted, ``n_k C``. The reference is kept as the integer ``m`` (level index above the
   first sample ``L_0``), so it never drifts: a pixel whose log intensity rises monotonically by
   ``ΔL`` fires ``floor(ΔL / C)`` ON events, and exactly as many OFF events when it comes back.
   ``ε`` stands for the sensor's dark current and the screen's black level: it keeps ``log``
   finite on the black background and bounds the events of a full black-to-white edge to
   ``floor(log((1 + ε) / ε) / C)`` (= 8 with the defaults ``C = 0.2``, ``ε = 0.2``), about what
   a real pixel manages while an edge sweeps it. ``C = 0.2`` (a ~22 % intensity change) is of
   the order of real DVS thresholds (the DVS128 sensor is specified at ~15 % contrast).
   No noise events, refractory period or threshold mismatch are modelled.
4. **Timestamps.** An event from the step between samples ``k-1`` and ``k`` gets
   ``t = (k - 1) * step_us + u``, ``u`` uniform in ``[0, step_us)`` µs from a numpy Generator
   (deterministic under a seed), then each sample's events are sorted by ``t``. The seed changes
   only this jitter, never which events exist.

Speed: digits are simulated 64 at a time, vectorised over digits and pixels, with a Python loop
over the 300 time steps only; rendering and the pixel model run in float32 here
(:func:`dvs_events_from_frames`, the model on explicit frames, uses float64). Measured on the
project's 2-core CPU machine: all 1,797 digits simulate in about 3 s (4-4.5 s with loading
sklearn and writing the cache), 4,725 events per digit on average (3,198 to 6,084, half ON,
half OFF), a 110 MB cache file that later runs read in ~0.2 s (see :func:`load_digit_events`).

Split: :func:`digits_train_test_split` -- fixed, stratified 80/20 per class, independent of the
simulation seed. Static variant: :func:`digit_static_images` -- the upsampled digit, centred,
as ``[1, H, W]``, for experiments that present the same image at every time step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..atomic import atomic_open
from .events import EVENT_DTYPE

__all__ = [
    "CACHE_ENV_VAR",
    "N_DIGITS",
    "DigitEvents",
    "SaccadeConfig",
    "default_cache_dir",
    "digit_events_cache_path",
    "digit_rng",
    "digit_static_images",
    "digits_train_test_split",
    "dvs_events_from_frames",
    "load_digit_events",
    "load_digit_images",
    "saccade_offsets",
    "simulate_saccade_events",
    "static_image",
]

CACHE_ENV_VAR = "BSNN_LIGHTNING_CACHE"
"""Environment variable that overrides the default cache folder ``~/.cache/bsnn-lightning``."""

_CACHE_FORMAT_VERSION = 1  # bump whenever the simulator's output for given parameters changes
N_DIGITS = 1797
"""Number of images in ``sklearn.datasets.load_digits``."""
_CHUNK = 64  # digits simulated together (see _simulate_batch)


@dataclass(frozen=True)
class SaccadeConfig:
    """Every parameter of the saccade simulation (all of them key the on-disk cache).

    Attributes:
        sensor_size: ``(width, height)`` of the simulated sensor, N-MNIST's 34 x 34.
        upsample: integer upsampling factor of the image (bilinear); 8 x 8 -> 24 x 24.
        saccade_amplitude: width and height of the triangular saccade path, in sensor pixels.
        saccade_us: duration of each of the three saccades, µs (N-MNIST: ~100 ms).
        step_us: sampling period of the pixel model, µs; must divide ``saccade_us``.
        contrast_threshold: ``C``, log-intensity change per event (natural log units).
        eps: ``ε`` in ``log(I + ε)``, dark current / screen black level, relative to white = 1.
    """

    sensor_size: tuple[int, int] = (34, 34)
    upsample: int = 3
    saccade_amplitude: float = 4.0
    saccade_us: int = 100_000
    step_us: int = 1_000
    contrast_threshold: float = 0.2
    eps: float = 0.2

    def __post_init__(self) -> None:
        size = self.sensor_size
        if not (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
        ):
            raise ValueError(f"expected sensor_size = (width, height) as two positive ints, got {size!r}")
        object.__setattr__(self, "sensor_size", (int(size[0]), int(size[1])))
        for name in ("upsample", "saccade_us", "step_us"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"expected {name} to be an int >= 1, got {value!r}")
        if self.saccade_us % self.step_us:
            raise ValueError(
                f"expected step_us to divide saccade_us, got saccade_us = {self.saccade_us}, "
                f"step_us = {self.step_us}"
            )
        if not (np.isfinite(self.saccade_amplitude) and self.saccade_amplitude >= 0):
            raise ValueError(f"expected saccade_amplitude >= 0 (pixels), got {self.saccade_amplitude!r}")
        for name in ("contrast_threshold", "eps"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"expected {name} > 0, got {value!r}")
        for name in ("saccade_amplitude", "contrast_threshold", "eps"):  # 4 and 4.0: one cache key
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def steps_per_saccade(self) -> int:
        return self.saccade_us // self.step_us

    @property
    def duration_us(self) -> int:
        """Length of a recording: three saccades."""
        return 3 * self.saccade_us


class DigitEvents(NamedTuple):
    """Result of :func:`load_digit_events`."""

    events: list[np.ndarray]
    """One :data:`EVENT_DTYPE` array per digit, sorted by ``t``."""
    labels: np.ndarray
    """Digit classes 0..9, int64, aligned with ``events``."""
    path: Path
    """The cache file the events were read from or written to."""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def simulate_saccade_events(
    image: np.ndarray,
    rng: int | np.random.Generator = 0,
    config: SaccadeConfig | None = None,
) -> np.ndarray:
    """Simulate a DVS watching a grayscale ``image`` move along N-MNIST-like saccades.

    Args:
        image: ``[h, w]`` intensities in ``[0, 1]`` (0 = dark, 1 = white), any size.
        rng: a numpy Generator, or an int seeding ``np.random.default_rng``; used only for the
            sub-step timestamp jitter.
        config: simulation parameters; defaults to :class:`SaccadeConfig()` (see the module
            docstring for the model and the reasons for the defaults).

    Returns:
        :data:`EVENT_DTYPE` array sorted by ``t``, with ``0 <= t < config.duration_us``.
    """
    config = config or SaccadeConfig()
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a 2-D grayscale image [h, w], got shape {image.shape}")
    _check_intensity_range(image, "image")
    return _simulate_batch(image[None], [_as_generator(rng)], config)[0]


def dvs_events_from_frames(
    frames: np.ndarray,
    contrast_threshold: float = 0.2,
    eps: float = 0.2,
    step_us: int = 1_000,
    rng: int | np.random.Generator = 0,
) -> np.ndarray:
    """DVS pixel model on an explicit intensity sequence (the core of the simulator).

    Frame 0 (time 0) sets every pixel's reference level; each later frame ``k`` is compared with
    it by the model of the module docstring, ``n_k = trunc((log(I_k + ε) - R_{k-1}) / C)``, and
    its ``|n_k|`` events get timestamps in ``[(k - 1) * step_us, k * step_us)``.

    Args:
        frames: ``[S, H, W]`` non-negative finite intensities, ``S >= 1``; pixel ``(y, x)`` of
            frame ``k`` is ``frames[k, y, x]``.
        contrast_threshold: ``C > 0``. eps: ``ε > 0``. step_us: sample period, int µs >= 1.
        rng: Generator or int seed, for the timestamp jitter only.

    Returns:
        :data:`EVENT_DTYPE` array sorted by ``t`` (events of one step keep no particular order
        beyond their jittered timestamps).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[0] < 1 or frames.shape[1] < 1 or frames.shape[2] < 1:
        raise ValueError(f"expected frames [S, H, W] with S, H, W >= 1, got shape {frames.shape}")
    if not np.isfinite(frames).all() or frames.min() < 0:
        raise ValueError(
            f"expected finite, non-negative intensities, got range [{frames.min()}, {frames.max()}]"
        )
    if isinstance(step_us, bool) or not isinstance(step_us, int) or step_us < 1:
        raise ValueError(f"expected step_us to be an int >= 1, got {step_us!r}")
    for name, value in (("contrast_threshold", contrast_threshold), ("eps", eps)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"expected {name} > 0, got {value!r}")
    steps = _dvs_steps((f[None] for f in frames), contrast_threshold, eps)
    return _assemble_events(steps, 1, step_us, [_as_generator(rng)])[0]


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
    format version, every :class:`SaccadeConfig` field and the seed, and ``n`` the number of
    digits (see :func:`digit_events_cache_path`). The file is written atomically: to a
    temporary ``digits_<n>.npz.*.tmp`` in the same folder, fsynced, then ``os.replace``-d onto
    its final name, so an interrupted run leaves at most a stray ``*.tmp``, which is never read
    (and not deleted: another process may still be writing it).

    A cache file that cannot be read or does not match (truncated zip, bad CRC, missing arrays,
    inconsistent offsets, other parameters recorded inside) is reported with a ``RuntimeWarning``
    and rebuilt when ``build=True``, or raises ``RuntimeError`` when ``build=False``.

    Args:
        seed: simulation seed (timestamp jitter only).
        cache_dir: cache root folder (see above).
        limit: simulate only the first ``limit`` digits (tests, quick runs); ``None`` = all 1,797.
        config: simulation parameters, default :class:`SaccadeConfig()`.
        build: if ``False``, only read: raise ``FileNotFoundError`` when there is no cache and
            ``RuntimeError`` when it is unreadable (what ``LightningDataModule.setup`` uses).
    """
    config = config or SaccadeConfig()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"expected seed to be an int >= 0, got {seed!r}")
    images, labels = load_digit_images(limit)
    path = digit_events_cache_path(seed, cache_dir, limit=limit, config=config)
    expected_meta = _cache_metadata(seed, len(labels), config)
    if path.exists():
        try:
            return DigitEvents(_read_cache(path, expected_meta, labels), labels, path)
        except _CorruptCache as err:
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
    events = _simulate_batch(images, rngs, config)
    _write_cache_atomically(path, events, labels, expected_meta)
    return DigitEvents(events, labels, path)


def load_digit_images(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits as intensities ``[N, 8, 8]`` float64 in [0, 1] (``v / 16``) and int64 labels."""
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
    """The static variant: ``([N, 1, H, W] float32, labels int64)``, see :func:`static_image`."""
    images, labels = load_digit_images(limit)
    return _render_centred(images, config or SaccadeConfig())[:, None].astype(np.float32), labels


def static_image(image: np.ndarray, config: SaccadeConfig | None = None) -> np.ndarray:
    """One image as the simulator's scene at rest: upsampled, centred on the sensor, ``[1, H, W]``.

    This is the picture the saccades move around (offset 0, the centre of the triangle's
    bounding box), in [0, 1], float32, for models that see the same image at every time step.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a 2-D grayscale image [h, w], got shape {image.shape}")
    _check_intensity_range(image, "image")
    return _render_centred(image[None], config or SaccadeConfig()).astype(np.float32)


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
    """The Generator that jitters digit ``index`` under simulation ``seed``."""
    return np.random.default_rng([seed, index])


def default_cache_dir() -> Path:
    """``$BSNN_LIGHTNING_CACHE`` if set and non-empty, else ``~/.cache/bsnn-lightning``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bsnn-lightning"


def digit_events_cache_path(
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    *,
    limit: int | None = None,
    config: SaccadeConfig | None = None,
) -> Path:
    """Where :func:`load_digit_events` keeps the events for these parameters."""
    config = config or SaccadeConfig()
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    parts = [f"digit-events-v{_CACHE_FORMAT_VERSION}"]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        text = "x".join(str(v) for v in value) if isinstance(value, tuple) else repr(value)
        parts.append(f"{field.name}-{text}")
    parts.append(f"seed-{seed}")
    n = N_DIGITS if limit is None else limit
    return root / "_".join(parts) / f"digits_{n}.npz"


def saccade_offsets(config: SaccadeConfig | None = None) -> np.ndarray:
    """Scene displacement ``(dx, dy)`` in pixels at each sample ``k = 0 .. 3 * steps_per_saccade``.

    Piecewise linear (constant speed) through the triangle ``A -> B -> C -> A`` of the module
    docstring; shape ``[3 * steps_per_saccade + 1, 2]``.
    """
    config = config or SaccadeConfig()
    half = config.saccade_amplitude / 2.0
    vertices = np.array([[-half, half], [0.0, -half], [half, half], [-half, half]])
    n = config.steps_per_saccade
    frac = np.arange(n) / n
    segments = [vertices[s] + frac[:, None] * (vertices[s + 1] - vertices[s]) for s in range(3)]
    return np.concatenate(segments + [vertices[3:]])


# --------------------------------------------------------------------------------------------
# Simulation helpers
# --------------------------------------------------------------------------------------------


def _simulate_batch(
    images: np.ndarray, rngs: list[np.random.Generator], config: SaccadeConfig
) -> list[np.ndarray]:
    """Simulate ``images [N, h, w]`` together; digit ``i`` uses ``rngs[i]``.

    Rendering and the pixel model are elementwise, so each digit's events do not depend on the
    other digits in the batch. Digits are processed ``_CHUNK`` at a time so that the per-step
    arrays stay in the CPU cache (one chunk of 34 x 34 float64 pixels ~ 0.6 MB): the loop over
    time steps is memory-bound, and whole-set arrays made it ~3x slower.
    """
    offsets = saccade_offsets(config)
    out: list[np.ndarray] = []
    for lo in range(0, len(images), _CHUNK):
        canvas, pad, origin = _scene_canvas(images[lo : lo + _CHUNK], config)
        frames = (_shift_bilinear(canvas, pad, origin + d, config.sensor_size) for d in offsets)
        steps = _dvs_steps(frames, config.contrast_threshold, config.eps)
        out += _assemble_events(steps, len(canvas), config.step_us, rngs[lo : lo + _CHUNK])
    return out


def _dvs_steps(
    frames: Iterator[np.ndarray], contrast_threshold: float, eps: float
) -> Iterator[tuple[int, tuple[np.ndarray, ...], np.ndarray]]:
    """Run the pixel model over ``frames`` (each ``[N, H, W]``); yield the nonzero steps.

    Yields ``(k, (n_idx, y, x), counts)`` for every sample ``k >= 1``, ``counts`` being the signed
    event numbers ``n_k`` (module docstring) of the pixels that fired.
    """
    first = next(frames)
    dtype = first.dtype  # float64 for dvs_events_from_frames, float32 in the digit simulator
    inv_c, eps = dtype.type(1.0 / contrast_threshold), dtype.type(eps)
    ref = np.log(first + eps) * inv_c  # L_0 / C
    level = np.zeros_like(ref)  # m: reference level above L_0, in units of C (integer values)
    work = np.empty_like(ref)
    flat_level, flat_work = level.reshape(-1), work.reshape(-1)
    for k, frame in enumerate(frames, start=1):
        np.add(frame, eps, out=work)
        np.log(work, out=work)
        np.multiply(work, inv_c, out=work)  # L_k / C
        np.subtract(work, ref, out=work)  # (L_k - L_0) / C
        np.subtract(work, level, out=work)  # (L_k - R_{k-1}) / C
        np.trunc(work, out=work)  # n_k
        fired = np.flatnonzero(work != 0)  # (a bool mask is ~10x faster to scan than floats)
        if fired.size:
            counts = flat_work[fired]
            flat_level[fired] += counts
            yield k, np.unravel_index(fired, work.shape), counts.astype(np.int64)


def _assemble_events(
    steps: Iterator[tuple[int, tuple[np.ndarray, ...], np.ndarray]],
    n_samples: int,
    step_us: int,
    rngs: list[np.random.Generator],
) -> list[np.ndarray]:
    """Turn per-step signed counts into one sorted, jittered event array per sample."""
    chunks = [(np.full(c.size, k, dtype=np.int64), idx, c) for k, idx, c in steps]
    if chunks:
        step = np.concatenate([c[0] for c in chunks])
        sample, y, x = (np.concatenate([c[1][a] for c in chunks]) for a in range(3))
        counts = np.concatenate([c[2] for c in chunks])
    else:
        step = sample = y = x = counts = np.zeros(0, dtype=np.int64)
    reps = np.abs(counts)
    order = np.argsort(sample, kind="stable")  # group by sample, keep time order inside
    step, sample, y, x, counts, reps = (a[order] for a in (step, sample, y, x, counts, reps))
    step, sample, y, x, on = (np.repeat(a, reps) for a in (step, sample, y, x, counts > 0))
    bounds = np.searchsorted(sample, np.arange(n_samples + 1))
    out = []
    for i in range(n_samples):
        lo, hi = bounds[i], bounds[i + 1]
        t = (step[lo:hi] - 1) * step_us + rngs[i].integers(0, step_us, size=hi - lo)
        by_time = np.argsort(t, kind="stable")
        ev = np.empty(hi - lo, dtype=EVENT_DTYPE)
        ev["t"] = t[by_time]
        ev["x"] = x[lo:hi][by_time]
        ev["y"] = y[lo:hi][by_time]
        ev["p"] = on[lo:hi][by_time]
        out.append(ev)
    return out


def _scene_canvas(images: np.ndarray, config: SaccadeConfig):
    """Upsampled images on a zero canvas large enough for every saccade position.

    Returns ``(canvas [N, Hc, Wc], pad (py, px), origin (ox, oy))``: the image's top-left pixel is
    at canvas index ``pad`` and, at rest, at sensor position ``origin`` (centred).
    """
    up = _upsample_bilinear(images, config.upsample)
    h, w = up.shape[1:]
    width, height = config.sensor_size
    origin = np.array([(width - w) / 2.0, (height - h) / 2.0])  # (x, y) of the image's pixel 0
    positions = origin + saccade_offsets(config)
    pads = []
    for axis, (size, n) in enumerate(((width, w), (height, h))):
        lo_shift, hi_shift = np.floor(positions[:, axis].min()), np.floor(positions[:, axis].max())
        pad_lo = int(max(0, hi_shift + 1))
        pad_hi = int(max(0, size - lo_shift - n))
        pads.append((pad_lo, pad_hi))
    (px_lo, px_hi), (py_lo, py_hi) = pads
    canvas = np.pad(up, ((0, 0), (py_lo, py_hi), (px_lo, px_hi))).astype(np.float32)
    return canvas, (py_lo, px_lo), origin


def _render_centred(images: np.ndarray, config: SaccadeConfig) -> np.ndarray:
    canvas, pad, origin = _scene_canvas(images, config)
    return _shift_bilinear(canvas, pad, origin, config.sensor_size).astype(np.float64)


def _shift_bilinear(
    canvas: np.ndarray, pad: tuple[int, int], position: np.ndarray, sensor_size: tuple[int, int]
) -> np.ndarray:
    """Sensor view ``[N, H, W]`` of the image placed with its pixel 0 at ``position = (x, y)``.

    Sensor pixel ``y`` sees image coordinate ``y - pos_y``; with ``pos_y = iy + fy``
    (``iy = floor``), that is ``(1 - fy) * img[y - iy] + fy * img[y - iy - 1]`` (same along x).
    """
    width, height = sensor_size
    ix, iy = (int(v) for v in np.floor(position))
    fx, fy = (canvas.dtype.type(f) for f in (position[0] - ix, position[1] - iy))
    one = canvas.dtype.type(1.0)
    r0 = pad[0] - iy
    rows = (one - fy) * canvas[:, r0 : r0 + height] + fy * canvas[:, r0 - 1 : r0 - 1 + height]
    c0 = pad[1] - ix
    return (one - fx) * rows[:, :, c0 : c0 + width] + fx * rows[:, :, c0 - 1 : c0 - 1 + width]


def _upsample_bilinear(images: np.ndarray, factor: int) -> np.ndarray:
    """``[N, h, w] -> [N, h*f, w*f]``, bilinear with pixel centres aligned, dark (0) outside.

    Output pixel ``i`` samples source coordinate ``s = (i + 0.5) / f - 0.5`` and mixes source
    pixels ``floor(s)`` and ``floor(s) + 1`` with weights ``1 - frac(s)``, ``frac(s)``.
    """
    out = images
    for axis in (1, 2):
        n = out.shape[axis]
        s = (np.arange(n * factor) + 0.5) / factor - 0.5
        j = np.floor(s).astype(np.int64)
        frac = s - j
        padded = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in range(3)])
        shape = [1, 1, 1]
        shape[axis] = -1
        lo = np.take(padded, j + 1, axis=axis)
        hi = np.take(padded, j + 2, axis=axis)
        out = (1.0 - frac).reshape(shape) * lo + frac.reshape(shape) * hi
    return out


def _as_generator(rng: int | np.random.Generator) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"expected rng to be a numpy Generator or an int seed, got {rng!r}")


def _check_intensity_range(image: np.ndarray, name: str) -> None:
    if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
        raise ValueError(
            f"expected {name} intensities in [0, 1], got range [{image.min()}, {image.max()}]"
        )


# --------------------------------------------------------------------------------------------
# Cache helpers
# --------------------------------------------------------------------------------------------


class _CorruptCache(Exception):
    pass


def _cache_metadata(seed: int, n: int, config: SaccadeConfig) -> dict:
    return {
        "format_version": _CACHE_FORMAT_VERSION,
        "seed": int(seed),
        "n_digits": int(n),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()},
    }


def _read_cache(path: Path, expected_meta: dict, labels: np.ndarray) -> list[np.ndarray]:
    """Load and check a cache file; raise :class:`_CorruptCache` naming what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["metadata"]))
            events = data["events"]
            offsets = data["offsets"]
            stored_labels = data["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise _CorruptCache(f"{type(err).__name__}: {err}") from err
    if meta != expected_meta:
        raise _CorruptCache(f"expected metadata {expected_meta}, got {meta}")
    if events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise _CorruptCache(f"expected 1-D events of dtype {EVENT_DTYPE}, got {events.dtype} {events.shape}")
    n = len(labels)
    if (
        offsets.shape != (n + 1,)
        or offsets[0] != 0
        or offsets[-1] != len(events)
        or np.any(np.diff(offsets) < 0)
    ):
        raise _CorruptCache(f"expected {n + 1} non-decreasing offsets from 0 to {len(events)}")
    if not np.array_equal(stored_labels, labels):
        raise _CorruptCache("expected the stored labels to equal sklearn's digit labels")
    return np.split(events, offsets[1:-1])


def _write_cache_atomically(
    path: Path, events: list[np.ndarray], labels: np.ndarray, meta: dict
) -> None:
    """Write to ``<name>.<random>.tmp`` in the same folder, fsync, then ``os.replace``."""
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64)
    with atomic_open(path) as f:
        np.savez(
            f,
            events=np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE),
            offsets=offsets,
            labels=labels,
            metadata=np.array(json.dumps(meta)),
        )
