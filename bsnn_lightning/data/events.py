"""Event records and the one events-to-frames path shared by every dataset of the project.

An event camera (DVS) reports, per pixel and asynchronously, that the log intensity has changed
by more than a contrast threshold since the pixel's last event. Each event is a record
``(t, x, y, p)``:

* ``t``: timestamp in microseconds (int64),
* ``x``, ``y``: pixel column and row, ``0 <= x < width``, ``0 <= y < height`` (int16),
* ``p``: polarity, ``1`` = ON (brightness went up), ``0`` = OFF (brightness went down) (int8).

The field names are those the Tonic library uses, so Tonic event arrays can be passed in
directly (any integer or boolean field types are accepted; the field order does not matter).

:func:`events_to_frames` turns such an array into a dense ``float32`` tensor ``[T, 2, H, W]`` of
event counts, **channel 0 = OFF counts, channel 1 = ON counts** (channel index = polarity). The
embedded digits dataset and the real DVS datasets (N-MNIST, CIFAR10-DVS, DVS128 Gesture,
N-Caltech101) all go through this function, so their frames follow the same conventions; so does the
embedded event-interval task, binned with ``time_window`` on the fixed time base of its recordings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EVENT_DTYPE", "SPLIT_BY", "events_from_arrays", "events_to_frames"]

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
"""Structured dtype of one event: ``t`` (µs, int64), ``x``/``y`` (int16), ``p`` (int8, 0/1)."""

SPLIT_BY = ("time", "number")
"""Accepted values of ``events_to_frames(split_by=...)``."""

_FIELDS = ("t", "x", "y", "p")


def events_to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int],
    time_steps: int,
    split_by: str = "time",
    resize: tuple[int, int] | None = None,
    time_window: tuple[int, int] | None = None,
) -> np.ndarray:
    """Bin an event stream into ``time_steps`` frames of per-pixel, per-polarity event counts.

    Args:
        events: 1-D structured array with integer fields ``t``, ``x``, ``y``, ``p`` (see
            :data:`EVENT_DTYPE`; Tonic arrays work as they are). ``p`` must be 0 (OFF) or 1 (ON).
        sensor_size: ``(width, height)`` of the sensor, Tonic's order. Every event must satisfy
            ``0 <= x < width`` and ``0 <= y < height``; events outside raise (nothing is clipped).
        time_steps: number of frames ``T >= 1``.
        split_by: how events are assigned to the ``T`` frames:

            * ``"time"``: ``T`` bins of equal duration over the integer span
              ``[t_first, t_last]`` (``t_first = min t``, ``t_last = max t``, inclusive): the
              event at time ``t`` goes to bin ``floor((t - t_first) * T / (t_last - t_first + 1))``.
              Timestamps need not be sorted.
            * ``"number"``: ``T`` bins of nearly equal event count: the ``i``-th of ``N`` events
              goes to bin ``floor(i * T / N)``, so bin sizes differ by at most one (with
              ``N < T`` some bins are empty). Events must be sorted by ``t`` (non-decreasing),
              because their order in the array is taken as their temporal order.
        resize: optional output size ``(height, width)`` -- note: rows first, like the frame's
            trailing dimensions and ``torch.nn.functional.interpolate``, unlike ``sensor_size``.
            Resampling is *sum-preserving area resampling*: each sensor pixel is a unit square
            whose count is shared among the output pixels its footprint overlaps, in proportion to
            the overlapped area. Every frame and channel keeps its total event count exactly (up
            to float rounding); the output values are therefore no longer integers in general.
            ``(128, 128) -> (48, 48)`` gives each output pixel the events of a 2.67 x 2.67 block.
        time_window: optional ``(start, stop)`` in µs, ``start < stop``, for ``split_by="time"`` only:
            the ``T`` bins then divide ``[start, stop)`` instead of the events' own span, so a recording
            of known duration is binned on a fixed time base whatever its first and last events are
            (the event at ``t`` goes to bin ``floor((t - start) * T / (stop - start))``). Every event
            must satisfy ``start <= t < stop``; events outside raise (nothing is clipped).

    Returns:
        ``float32`` array ``[T, 2, H, W]`` (``H, W`` = ``resize`` if given, else the sensor's
        ``height, width``); ``frames[k, p, y, x]`` is the number of events of polarity ``p`` at
        pixel ``(x, y)`` in bin ``k``. An empty event array gives all-zero frames of that shape.

    Raises:
        ValueError / TypeError: for wrong dtype or fields, coordinates outside the sensor,
            polarities other than 0/1, ``T < 1``, unknown ``split_by``, bad sizes, or unsorted
            timestamps with ``split_by="number"``; the message names what was expected and what
            was given.

    Example:
        >>> events = events_from_arrays(t=[0, 10, 20, 30], x=[0, 1, 1, 2], y=[0, 0, 1, 1], p=[1, 0, 1, 1])
        >>> frames = events_to_frames(events, sensor_size=(3, 2), time_steps=2)  # (width, height)
        >>> frames.shape, frames.dtype
        ((2, 2, 2, 3), dtype('float32'))
        >>> frames[1, 1]  # bin 1 (t = 20, 30), ON events, rows y = 0, 1
        array([[0., 0., 0.],
               [0., 1., 1.]], dtype=float32)
        >>> events_to_frames(events, sensor_size=(3, 2), time_steps=2, split_by="number", resize=(1, 1)).ravel()
        array([1., 1., 0., 2.], dtype=float32)
        >>> events_to_frames(events, sensor_size=(2, 2), time_steps=2)
        Traceback (most recent call last):
            ...
        ValueError: expected events with x in [0, 2), got max x = 2
    """
    width, height = _check_size(sensor_size, "sensor_size", "(width, height)")
    n_bins = _check_time_steps(time_steps)
    if split_by not in SPLIT_BY:
        raise ValueError(f"expected split_by in {SPLIT_BY}, got {split_by!r}")
    out_size = None if resize is None else _check_size(resize, "resize", "(height, width)")
    window = None if time_window is None else _check_window(time_window, split_by)
    _check_events(events, width, height, require_sorted=(split_by == "number"))

    n_events = len(events)
    if n_events == 0:
        frames = np.zeros((n_bins, 2, height, width), dtype=np.float64)
    else:
        bins = _bin_indices(events["t"].astype(np.int64), n_bins, split_by, window)
        x = events["x"].astype(np.int64)
        y = events["y"].astype(np.int64)
        p = events["p"].astype(np.int64)
        flat = ((bins * 2 + p) * height + y) * width + x
        counts = np.bincount(flat, minlength=n_bins * 2 * height * width)
        frames = counts.reshape(n_bins, 2, height, width).astype(np.float64)
    if out_size is not None:
        frames = _resize_sum_preserving(frames, out_size)
    return frames.astype(np.float32)


def events_from_arrays(t, x, y, p) -> np.ndarray:
    """Pack four equal-length 1-D sequences into an :data:`EVENT_DTYPE` array (no sorting).

    Values must fit the field types exactly (``t`` int64, ``x``/``y`` int16, ``p`` in {0, 1});
    anything that would change on conversion raises instead of being wrapped or truncated.

    Example:
        >>> events = events_from_arrays(t=[0, 10], x=[3, 4], y=[5, 6], p=[1, 0])
        >>> events.dtype.names, events.tolist()
        (('t', 'x', 'y', 'p'), [(0, 3, 5, 1), (10, 4, 6, 0)])
        >>> events_from_arrays(t=[0], x=[40000], y=[0], p=[1])  # x is int16
        Traceback (most recent call last):
            ...
        ValueError: expected x values representable as int16, got range [40000, 40000]
    """
    columns = {name: np.asarray(values) for name, values in zip(_FIELDS, (t, x, y, p))}
    lengths = {name: col.shape for name, col in columns.items()}
    if any(col.ndim != 1 for col in columns.values()) or len(set(lengths.values())) != 1:
        raise ValueError(f"expected four 1-D arrays of equal length, got shapes {lengths}")
    events = np.empty(len(columns["t"]), dtype=EVENT_DTYPE)
    for name, col in columns.items():
        with np.errstate(invalid="ignore"):
            converted = col.astype(EVENT_DTYPE[name])
        if col.size and not np.array_equal(converted, col):
            raise ValueError(
                f"expected {name} values representable as {EVENT_DTYPE[name]}, "
                f"got range [{col.min()}, {col.max()}]"
            )
        events[name] = converted
    if events.size and not np.isin(events["p"], (0, 1)).all():
        raise ValueError(f"expected p in {{0, 1}}, got values {np.unique(events['p']).tolist()}")
    return events


def _bin_indices(
    t: np.ndarray, n_bins: int, split_by: str, window: tuple[int, int] | None = None
) -> np.ndarray:
    """Frame index of every event (int64), following the rules of :func:`events_to_frames`."""
    if split_by == "number":
        return (np.arange(len(t), dtype=np.int64) * n_bins) // len(t)
    if window is None:
        t_first = int(t.min())
        span = int(t.max()) - t_first + 1
    else:
        t_first, stop = window
        span = stop - t_first
        lo, hi = int(t.min()), int(t.max())
        if lo < t_first or hi >= stop:
            raise ValueError(
                f"expected every event in the time window [{t_first}, {stop}) µs, "
                f"got timestamps from {lo} to {hi}"
            )
    if span > np.iinfo(np.int64).max // n_bins:
        raise ValueError(
            f"expected (t_last - t_first + 1) * time_steps to fit in int64, "
            f"got a span of {span} µs with time_steps = {n_bins}"
        )
    return ((t - t_first) * n_bins) // span


def _resize_sum_preserving(frames: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """``frames[..., H, W] -> [..., H', W']`` with ``out = Ry @ frames @ Rx.T`` (see below)."""
    out_h, out_w = out_size
    rows = _overlap_matrix(frames.shape[-2], out_h)
    cols = _overlap_matrix(frames.shape[-1], out_w)
    return rows @ frames @ cols.T


def _overlap_matrix(n_in: int, n_out: int) -> np.ndarray:
    """1-D area-resampling matrix ``R[n_out, n_in]`` whose columns sum to one.

    Input pixel ``i`` covers ``[i * s, (i + 1) * s)`` in output-pixel units (``s = n_out / n_in``);
    ``R[o, i] = |[i s, (i+1) s) ∩ [o, o+1)| / s`` is the fraction of its count that lands in output
    pixel ``o``. Applying it along rows and columns shares 2-D pixels by overlapped area.
    """
    scale = n_out / n_in
    lo = np.arange(n_in) * scale
    hi = lo + scale
    o = np.arange(n_out)[:, None]
    overlap = np.clip(np.minimum(hi[None, :], o + 1) - np.maximum(lo[None, :], o), 0.0, None)
    return overlap / scale


def _check_events(events: np.ndarray, width: int, height: int, require_sorted: bool) -> None:
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        given = events.dtype if isinstance(events, np.ndarray) else type(events).__name__
        raise TypeError(
            f"expected a structured numpy array with fields {_FIELDS} (see EVENT_DTYPE), "
            f"got {given}"
        )
    missing = [name for name in _FIELDS if name not in events.dtype.names]
    if missing:
        raise TypeError(
            f"expected a structured array with fields {_FIELDS}, got fields "
            f"{events.dtype.names} (missing {tuple(missing)})"
        )
    for name in _FIELDS:
        kind = events.dtype[name].kind
        if kind not in "iub":
            raise TypeError(
                f"expected an integer field {name!r}, got dtype {events.dtype[name]}"
            )
    if events.ndim != 1:
        raise ValueError(f"expected a 1-D array of events, got shape {events.shape}")
    if len(events) == 0:
        return
    for name, size in (("x", width), ("y", height)):
        lo, hi = int(events[name].min()), int(events[name].max())
        if lo < 0:
            raise ValueError(f"expected events with {name} in [0, {size}), got min {name} = {lo}")
        if hi >= size:
            raise ValueError(f"expected events with {name} in [0, {size}), got max {name} = {hi}")
    p = events["p"]
    if p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"expected p in {{0, 1}} (0 = OFF, 1 = ON), got values {np.unique(p).tolist()}"
        )
    if require_sorted:
        t = events["t"]
        backwards = np.flatnonzero(t[1:] < t[:-1])
        if backwards.size:
            i = int(backwards[0])
            raise ValueError(
                "expected events sorted by t (non-decreasing) for split_by='number', got "
                f"t[{i}] = {int(t[i])} > t[{i + 1}] = {int(t[i + 1])}; sort them first with "
                "np.sort(events, order='t', kind='stable')"
            )


def _check_window(time_window, split_by: str) -> tuple[int, int]:
    if split_by != "time":
        raise ValueError(f"expected time_window only with split_by='time', got split_by={split_by!r}")
    ok = (
        isinstance(time_window, (tuple, list))
        and len(time_window) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in time_window)
    )
    if not ok or not time_window[0] < time_window[1]:
        raise ValueError(f"expected time_window = (start, stop) as two ints with start < stop, got {time_window!r}")
    return int(time_window[0]), int(time_window[1])


def _check_time_steps(time_steps: int) -> int:
    if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)):
        raise TypeError(f"expected time_steps to be an int >= 1, got {time_steps!r}")
    if time_steps < 1:
        raise ValueError(f"expected time_steps >= 1, got {time_steps}")
    return int(time_steps)


def _check_size(size: Sequence[int], name: str, order: str) -> tuple[int, int]:
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
        and all(s >= 1 for s in size)
    )
    if not ok:
        raise ValueError(f"expected {name} = {order} as two positive ints, got {size!r}")
    return int(size[0]), int(size[1])
