"""Write event files and whole dataset archives in the four datasets' real layouts (test data, not part of the
package: imported by name, ``from archive_writers import ...``, by the tests and by ``bench/data.py``).

For tests, benchmarks and dry runs where the real archives are not at hand: the files are
byte-for-byte in the documented formats (:mod:`bsnn_lightning.data.formats` reads them back), the
archives have the original names and inner folder structure, and the recordings have the real
file names, so the DataModules run on them unchanged (pass ``allow_partial=True`` and the
``checksums`` this module returns). The events are random, not recordings of anything.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from bsnn_lightning.data.events import EVENT_DTYPE
from bsnn_lightning.data.formats import ATIS_OVERFLOW_Y
from bsnn_lightning.data.splits import CIFAR10DVS_CLASSES, NCALTECH101_COUNTS, shipped_split

__all__ = [
    "aedat2_dvs128_bytes",
    "aedat31_polarity_bytes",
    "atis_bytes",
    "random_events",
    "write_aedat2_dvs128",
    "write_aedat31_polarity",
    "write_atis_bin",
    "write_synthetic_dataset",
]

DATASETS = ("cifar10-dvs", "dvs128-gesture", "n-caltech101", "n-mnist")


def random_events(
    rng: np.random.Generator,
    n: int,
    sensor_size: tuple[int, int],
    duration_us: int,
    t0: int = 0,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """``n`` events sorted by time, uniform in ``[t0, t0 + duration_us)`` and in the sensor.

    ``box = (x0, y0, x1, y1)`` limits the pixels to ``x0 <= x < x1``, ``y0 <= y < y1``.
    """
    width, height = sensor_size
    x0, y0, x1, y1 = box if box is not None else (0, 0, width, height)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["t"] = np.sort(rng.integers(t0, t0 + duration_us, n))
    events["x"] = rng.integers(x0, x1, n)
    events["y"] = rng.integers(y0, y1, n)
    events["p"] = rng.integers(0, 2, n)
    return events


def write_atis_bin(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write an ATIS ``.bin`` file (N-MNIST / N-Caltech101 layout) without overflow markers."""
    Path(path).write_bytes(atis_bytes(events))


def atis_bytes(events: np.ndarray) -> bytes:
    """The bytes of :func:`write_atis_bin`."""
    x, y, t, p = (events[k].astype(np.int64) for k in ("x", "y", "t", "p"))
    if len(events) and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() >= ATIS_OVERFLOW_Y):
        raise ValueError(f"expected 0 <= x <= 255 and 0 <= y < {ATIS_OVERFLOW_Y}, got x {x.min()}..{x.max()}, y {y.min()}..{y.max()}")
    if len(events) and (t.min() < 0 or t.max() >= 2**23):
        raise ValueError(f"expected 0 <= t < 2**23 µs (23-bit timestamps), got {t.min()}..{t.max()}")
    raw = np.empty((len(events), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | (t >> 16)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return raw.tobytes()


def write_aedat2_dvs128(path: str | os.PathLike, events: np.ndarray, coordinates: str = "spikingjelly") -> None:
    """Write a jAER AEDAT 2.0 DVS128 file whose reading with ``coordinates`` gives ``events`` back."""
    Path(path).write_bytes(aedat2_dvs128_bytes(events, coordinates))


def aedat2_dvs128_bytes(events: np.ndarray, coordinates: str = "spikingjelly") -> bytes:
    """The bytes of :func:`write_aedat2_dvs128`."""
    x, y, t, p = (events[k].astype(np.int64) for k in ("x", "y", "t", "p"))
    if coordinates == "spikingjelly":
        raw_x, raw_y = 127 - y, 127 - x
    elif coordinates == "upright":
        raw_x, raw_y = 127 - x, 127 - y
    else:
        raise ValueError(f"expected coordinates 'spikingjelly' or 'upright', got {coordinates!r}")
    if len(events) and (min(raw_x.min(), raw_y.min()) < 0 or max(raw_x.max(), raw_y.max()) > 127):
        raise ValueError("expected events on the 128 x 128 sensor")
    if len(events) and (t.min() < 0 or t.max() >= 2**31):
        raise ValueError(f"expected 0 <= t < 2**31 µs, got {t.min()}..{t.max()}")
    records = np.empty(len(events), dtype=[("address", ">u4"), ("t", ">i4")])
    records["address"] = (raw_y << 8) | (raw_x << 1) | (1 - p)
    records["t"] = t
    header = (
        b"#!AER-DAT2.0\r\n"
        b"# This is a raw AE data file - do not edit\r\n"
        b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
        b"# Timestamps tick is 1 us\r\n"
        b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
        b"# written by bsnn-lightning's tests/archive_writers.py\r\n"
    )
    return header + records.tobytes()


def write_aedat31_polarity(path: str | os.PathLike, events: np.ndarray, events_per_packet: int = 4096) -> None:
    """Write an AEDAT 3.1 file of polarity packets (DVS128 Gesture layout), all events valid."""
    Path(path).write_bytes(aedat31_polarity_bytes(events, events_per_packet))


def aedat31_polarity_bytes(events: np.ndarray, events_per_packet: int = 4096) -> bytes:
    """The bytes of :func:`write_aedat31_polarity`."""
    x, y, t, p = (events[k].astype(np.int64) for k in ("x", "y", "t", "p"))
    if len(events) and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ValueError("expected non-negative timestamps sorted by time")
    header = (
        b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
        b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n"
    )
    out = io.BytesIO()
    out.write(header)
    overflow = t >> 31
    start = 0
    while start < len(events):
        stop = min(start + events_per_packet, len(events))
        stop = start + int(np.count_nonzero(overflow[start:stop] == overflow[start]))  # one overflow epoch per packet
        n = stop - start
        head = np.array(
            [(1, 1, 8, 4, int(overflow[start]), n, n, n)],
            dtype=[("type", "<u2"), ("source", "<u2"), ("size", "<u4"), ("ts_offset", "<u4"),
                   ("ts_overflow", "<u4"), ("capacity", "<u4"), ("number", "<u4"), ("valid", "<u4")],
        )  # fmt: skip
        body = np.empty(n, dtype=[("data", "<u4"), ("t", "<i4")])
        body["data"] = (x[start:stop] << 17) | (y[start:stop] << 2) | (p[start:stop] << 1) | 1
        body["t"] = t[start:stop] & 0x7FFFFFFF
        out.write(head.tobytes())
        out.write(body.tobytes())
        start = stop
    return out.getvalue()


def write_synthetic_dataset(
    dataset: str,
    root: str | os.PathLike,
    per_class: tuple[int, int] = (2, 1),
    classes: int | None = None,
    events_per_sample: int = 2000,
    seed: int = 0,
    gesture_trials: tuple[tuple[str, str], ...] = (("user01_natural", "train"), ("user24_led", "test")),
    gesture_labels: dict[str, str | os.PathLike] | None = None,
) -> dict[str, str]:
    """Write ``dataset``'s archives, in its real layout, into ``root``; return ``{archive: md5}``.

    Args:
        dataset: "cifar10-dvs", "dvs128-gesture", "n-caltech101" or "n-mnist".
        root: the dataset folder (a DataModule's ``root``).
        per_class: ``(train, test)`` recordings per class, named as the real ones and, for
            CIFAR10-DVS and N-Caltech101, taken from the shipped split so both splits are filled.
        classes: use only the first ``classes`` classes (default all).
        events_per_sample: events per recording (per gesture window for DVS128 Gesture).
        seed: numpy seed of the events.
        gesture_trials: DVS128 Gesture trials to write, as ``(name, split)``.
        gesture_labels: labels CSVs to use for some trials (by name) instead of generated ones.
    """
    if dataset not in DATASETS:
        raise ValueError(f"expected dataset in {DATASETS}, got {dataset!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    writers = {
        "cifar10-dvs": _cifar10dvs,
        "n-caltech101": _ncaltech101,
        "n-mnist": _nmnist,
    }
    if dataset == "dvs128-gesture":
        return _gesture(root, rng, events_per_sample, gesture_trials, dict(gesture_labels or {}))
    return writers[dataset](root, rng, per_class, classes, events_per_sample)


def _cifar10dvs(root, rng, per_class, classes, n_events):
    split = shipped_split("cifar10dvs")
    checksums = {}
    for cls in CIFAR10DVS_CLASSES[: classes or len(CIFAR10DVS_CLASSES)]:
        members = {}
        for name in _pick(split, cls, per_class):
            events = random_events(rng, n_events, (128, 128), 1_300_000)
            members[f"{cls}/{name}"] = aedat2_dvs128_bytes(events)
        checksums[f"{cls}.zip"] = _write_zip(root / f"{cls}.zip", members)
    return checksums


def _ncaltech101(root, rng, per_class, classes, n_events):
    split = shipped_split("ncaltech101")
    members = {}
    for cls in sorted(NCALTECH101_COUNTS)[: classes or len(NCALTECH101_COUNTS)]:
        for name in _pick(split, cls, per_class):
            width, height = int(rng.integers(150, 241)), int(rng.integers(120, 181))  # image sizes vary
            events = random_events(rng, n_events, (240, 180), 300_000, box=(0, 0, width, height))
            members[f"Caltech101/{cls}/{name}"] = atis_bytes(events)
    return {"Caltech101.zip": _write_zip(root / "Caltech101.zip", members)}


def _nmnist(root, rng, per_class, classes, n_events):
    checksums = {}
    counter = 1
    for archive, folder, count in (("Train.zip", "Train", per_class[0]), ("Test.zip", "Test", per_class[1])):
        members = {}
        for digit in range(classes or 10):
            for _ in range(count):
                events = random_events(rng, n_events, (34, 34), 300_000)
                members[f"{folder}/{digit}/{counter:05d}.bin"] = atis_bytes(events)
                counter += 1
        checksums[archive] = _write_zip(root / archive, members)
    return checksums


def _gesture(root, rng, n_events, trials, labels):
    members = {}
    for split in ("train", "test"):
        names = [f"{name}.aedat" for name, s in trials if s == split]
        members[f"DvsGesture/trials_to_{split}.txt"] = ("".join(n + "\n" for n in names)).encode()
    for name, _ in trials:
        if name in labels:
            csv = Path(labels[name]).read_bytes()
            rows = [line.split(b",") for line in csv.splitlines()[1:] if line.strip()]
            windows = [(int(c), int(s), int(e)) for c, s, e in rows]
        else:
            start, windows = 1_000_000, []
            for cls in range(1, 12):
                windows.append((cls, start, start + 6_000_000))
                start += 6_500_000
            csv = ("class,startTime_usec,endTime_usec\r\n" + "".join(f"{c},{s},{e}\r\n" for c, s, e in windows)).encode()
        parts = [random_events(rng, n_events, (128, 128), e - s, t0=s) for _, s, e in windows]
        gaps = random_events(rng, n_events // 10, (128, 128), 500_000, t0=max(0, windows[0][1] - 500_000))
        events = np.sort(np.concatenate([gaps, *parts]), order="t", kind="stable")
        members[f"DvsGesture/{name}.aedat"] = aedat31_polarity_bytes(events)
        members[f"DvsGesture/{name}_labels.csv"] = csv
    path = root / "DvsGesture.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return {"DvsGesture.tar.gz": _md5(path)}


def _pick(split: dict[str, str], cls: str, per_class: tuple[int, int]) -> list[str]:
    names = {"train": [], "test": []}
    for key, part in split.items():
        if key.startswith(cls + "/"):
            names[part].append(key.split("/", 1)[1])
    return names["train"][: per_class[0]] + names["test"][: per_class[1]]


def _write_zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return _md5(path)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
