"""The DVS pixel model: a pixel fires an event each time its log intensity moves one contrast step.

Each pixel compares its log intensity with a reference level, sampled every ``step_us``:

.. math::

    L_k = \\log(I_k + \\varepsilon), \\qquad
    R_k = L_0 + m_k C, \\qquad
    n_k = \\operatorname{trunc}\\Big(\\frac{L_k - R_{k-1}}{C}\\Big), \\qquad
    m_k = m_{k-1} + n_k

``|n_k|`` events fire between samples ``k-1`` and ``k``, ON if ``n_k > 0``, OFF if ``n_k < 0`` (several when
several multiples of ``C`` were crossed), and the reference moves by exactly the amount emitted, ``n_k C``. The
reference is kept as the integer ``m`` (level index above the first sample ``L_0``), so it never drifts: a pixel
whose log intensity rises monotonically by ``ΔL`` fires ``floor(ΔL / C)`` ON events, and exactly as many OFF events
when it comes back. ``ε`` stands for the sensor's dark current and the screen's black level: it keeps ``log``
finite on a black background and bounds the events of a full black-to-white edge to
``floor(log((1 + ε) / ε) / C)`` (= 8 with ``C = 0.2``, ``ε = 0.2``). No noise events, refractory period or
threshold mismatch are modelled.

Timestamps: an event from the step between samples ``k-1`` and ``k`` gets ``t = (k - 1) * step_us + u``, ``u``
uniform in ``[0, step_us)`` µs from a numpy Generator (deterministic under a seed), then each recording's events
are sorted by ``t``. The Generator changes only this jitter, never which events exist.

The scenes that drive it are in :mod:`~bsnn_lightning.data.sim.saccades` (a still image moved along
N-MNIST's saccades) and :mod:`~bsnn_lightning.data.intervals` (a flashing square). Within the package,
:func:`pixel_model_steps` and :func:`assemble_events` are the two halves of :func:`dvs_events_from_frames` for
many recordings at once (frames ``[N, H, W]`` per sample, one Generator per recording).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..events import EVENT_DTYPE

__all__ = [
    "PixelSettings",
    "as_generator",
    "assemble_events",
    "check_pixel_parameters",
    "check_scene_config",
    "check_sensor_size",
    "dvs_events_from_frames",
    "is_int",
    "pixel_model_steps",
]

@dataclass(frozen=True, kw_only=True)
class PixelSettings:
    """The pixel model's parameters, the keyword-only fields every scene config ends with.

    Attributes:
        step_us: sampling period of the pixel model, µs.
        contrast_threshold: ``C``, log-intensity change per event (natural-log units).
        eps: ``ε`` in ``log(I + ε)``, dark current / screen black level, relative to white = 1.

    Example:
        >>> PixelSettings()
        PixelSettings(step_us=1000, contrast_threshold=0.2, eps=0.2)
        >>> PixelSettings(contrast_threshold=0.1).contrast_threshold
        0.1
    """

    step_us: int = 1_000
    contrast_threshold: float = 0.2
    eps: float = 0.2


Steps = Iterator[tuple[int, tuple[np.ndarray, ...], np.ndarray]]
"""What :func:`pixel_model_steps` yields: ``(k, (n_idx, y, x), signed counts n_k)`` for each sample that fired."""


def dvs_events_from_frames(
    frames: np.ndarray,
    contrast_threshold: float = 0.2,
    eps: float = 0.2,
    step_us: int = 1_000,
    rng: int | np.random.Generator = 0,
) -> np.ndarray:
    """DVS pixel model on an explicit intensity sequence (the core of the simulator).

    Frame 0 (time 0) sets every pixel's reference level; each later frame ``k`` is compared with
    it by the pixel model of the module docstring, ``n_k = trunc((log(I_k + ε) - R_{k-1}) / C)``, and
    its ``|n_k|`` events get timestamps in ``[(k - 1) * step_us, k * step_us)``.

    Args:
        frames: ``[S, H, W]`` non-negative finite intensities, ``S >= 1``; pixel ``(y, x)`` of
            frame ``k`` is ``frames[k, y, x]``.
        contrast_threshold: ``C > 0``. eps: ``ε > 0``. step_us: sample period, int µs >= 1.
        rng: Generator or int seed, for the timestamp jitter only.

    Returns:
        :data:`EVENT_DTYPE` array sorted by ``t`` (events of one step keep no particular order
        beyond their jittered timestamps).

    Example:
        >>> import numpy as np
        >>> frames = np.array([[[1.0, 1.0]], [[2.0, 1.0]], [[2.0, 0.5]]])  # S=3 frames of H=1 x W=2 pixels
        >>> events = dvs_events_from_frames(frames, contrast_threshold=0.2, step_us=1000, rng=0)
        >>> events.dtype.names
        ('t', 'x', 'y', 'p')
        >>> events.tolist()  # (t, x, y, p): 3 ON events in step 1 at x=0, 2 OFF events in step 2 at x=1
        [(511, 0, 0, 1), (636, 0, 0, 1), (850, 0, 0, 1), (1269, 1, 0, 0), (1307, 1, 0, 0)]
        >>> dvs_events_from_frames(-frames)
        Traceback (most recent call last):
            ...
        ValueError: expected finite, non-negative intensities, got range [-2.0, -0.5]
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
    check_pixel_parameters(contrast_threshold, eps)
    steps = pixel_model_steps((f[None] for f in frames), contrast_threshold, eps)
    return assemble_events(steps, 1, step_us, [as_generator(rng)])[0]


def pixel_model_steps(
    frames: Iterator[np.ndarray], contrast_threshold: float, eps: float
) -> Steps:
    """Run the pixel model over ``frames`` (each ``[N, H, W]``); yield the nonzero steps.

    Yields ``(k, (n_idx, y, x), counts)`` for every sample ``k >= 1``, ``counts`` being the signed
    event numbers ``n_k`` (module docstring) of the pixels that fired.

    Example:
        >>> import numpy as np
        >>> frames = np.array([[[[1.0, 1.0]]], [[[2.0, 1.0]]], [[[2.0, 0.5]]]])  # 3 steps of [N=1, H=1, W=2]
        >>> for k, (n, y, x), counts in pixel_model_steps(iter(frames), contrast_threshold=0.2, eps=0.2):
        ...     print(k, x.tolist(), counts.tolist())
        1 [0] [3]
        2 [1] [-2]
    """
    first = next(frames)
    dtype = first.dtype  # float64 for dvs_events_from_frames, float32 in the scene simulators
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


def assemble_events(
    steps: Steps,
    n_samples: int,
    step_us: int,
    rngs: list[np.random.Generator],
) -> list[np.ndarray]:
    """Turn per-step signed counts into one sorted, jittered event array per sample.

    Example:
        >>> import numpy as np
        >>> steps = [(1, (np.array([0]), np.array([0]), np.array([0])), np.array([2]))]  # step 1: 2 ON at (0, 0)
        >>> [events] = assemble_events(iter(steps), n_samples=1, step_us=1000, rngs=[np.random.default_rng(0)])
        >>> events.tolist()  # (t, x, y, p), t jittered within [0, 1000)
        [(636, 0, 0, 1), (850, 0, 0, 1)]
    """
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


def as_generator(rng: int | np.random.Generator) -> np.random.Generator:
    """``rng`` itself if it is a Generator, else ``np.random.default_rng(rng)`` for an int seed.

    Example:
        >>> import numpy as np
        >>> as_generator(0).integers(10, size=3).tolist()
        [8, 6, 5]
        >>> generator = np.random.default_rng(0)
        >>> as_generator(generator) is generator
        True
        >>> as_generator(0.5)
        Traceback (most recent call last):
            ...
        TypeError: expected rng to be a numpy Generator or an int seed, got 0.5
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"expected rng to be a numpy Generator or an int seed, got {rng!r}")


def check_sensor_size(size) -> tuple[int, int]:
    """``(width, height)`` as two ints >= 1, or a ``ValueError`` naming what was given.

    Example:
        >>> import numpy as np
        >>> check_sensor_size([34, np.int64(34)])
        (34, 34)
        >>> check_sensor_size((34, 0))
        Traceback (most recent call last):
            ...
        ValueError: expected sensor_size = (width, height) as two positive ints, got (34, 0)
    """
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(is_int(s) and s >= 1 for s in size)):
        raise ValueError(f"expected sensor_size = (width, height) as two positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def check_pixel_parameters(contrast_threshold: float, eps: float) -> tuple[float, float]:
    """The pixel model's ``C`` and ``ε`` as floats, each finite and > 0, or a ``ValueError`` naming the bad one.

    Example:
        >>> check_pixel_parameters(1, 0.2)
        (1.0, 0.2)
        >>> check_pixel_parameters(0.2, 0.0)
        Traceback (most recent call last):
            ...
        ValueError: expected eps > 0, got 0.0
    """
    for name, value in (("contrast_threshold", contrast_threshold), ("eps", eps)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"expected {name} > 0, got {value!r}")
    return float(contrast_threshold), float(eps)


def check_scene_config(config, positive_ints: tuple[str, ...]) -> None:
    """What every frozen scene config (sensor, timing, pixel model) checks in ``__post_init__``, stored back in
    canonical form so that equal settings give one cache key: ``sensor_size`` as two ints >= 1, each field of
    ``positive_ints`` an int >= 1 (a plain ``int``), ``contrast_threshold`` and ``eps`` finite and > 0 (floats).

    Example:
        >>> import numpy as np
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Scene(PixelSettings):
        ...     sensor_size: tuple = (8, 8)
        ...     frames: int = 4
        >>> scene = Scene(sensor_size=[8, np.int64(6)], frames=np.int64(4), contrast_threshold=1)
        >>> check_scene_config(scene, ("frames",))
        >>> scene.sensor_size, type(scene.frames).__name__, scene.contrast_threshold
        ((8, 6), 'int', 1.0)
        >>> check_scene_config(Scene(frames=0), ("frames",))
        Traceback (most recent call last):
            ...
        ValueError: expected frames to be an int >= 1, got 0
    """
    object.__setattr__(config, "sensor_size", check_sensor_size(config.sensor_size))
    for name in positive_ints:
        value = getattr(config, name)
        if not is_int(value) or value < 1:
            raise ValueError(f"expected {name} to be an int >= 1, got {value!r}")
        object.__setattr__(config, name, int(value))
    c, eps = check_pixel_parameters(config.contrast_threshold, config.eps)
    object.__setattr__(config, "contrast_threshold", c)
    object.__setattr__(config, "eps", eps)


def is_int(value) -> bool:
    """An int or numpy integer, not a bool.

    Example:
        >>> import numpy as np
        >>> is_int(3), is_int(np.int32(3)), is_int(True), is_int(3.0)
        (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
