"""The package's on-disk caches: where they live, the cache of simulated event recordings, and the cache of
event frames. Every file of both is written atomically (:func:`bsnn_lightning.atomic.atomic_open`: a temporary
name in the same folder, fsynced, then ``os.replace``-d), and every read checks the parameters recorded inside
against the ones asked for: a cache of an older format or of other parameters is named and rebuilt, never
read as if it were the one asked for.

Where: ``cache_dir`` when a caller gives one, else :func:`default_cache_dir`, ``$BSNN_LIGHTNING_CACHE`` or
``~/.cache/bsnn-lightning``.

**Event recordings** (:func:`write_event_cache`, :func:`read_event_cache`; the embedded digits): one ``.npz``
per set, holding every recording's events concatenated (``events``, :data:`~bsnn_lightning.data.events.EVENT_DTYPE`),
the ``offsets`` where each recording starts, the ``labels``, and a JSON ``metadata`` record of the parameters
(its ``format_version`` included). A file that cannot be read, or whose arrays or metadata do not match, raises
:class:`CorruptCacheError`, which the caller reports and rebuilds from.

**Event frames** (:func:`build_frame_cache`, :func:`read_manifest`, :func:`load_frames`; the DVS datasets):
built once (``prepare_data``), then only read (``setup``).

Every sample's frames are :func:`~bsnn_lightning.data.events.events_to_frames` of its events --
the one events-to-frames path of the project -- stored as one ``.npy`` file per sample:

* unresized frames are event counts, stored exactly as the smallest of ``uint8`` / ``uint16`` /
  ``float32`` that holds them (most CIFAR10-DVS samples fit ``uint8``);
* resized frames (sum-preserving area resampling, fractional values) are stored as ``float32``.

The loader turns them into ``float32`` tensors; the values equal ``events_to_frames``' output.

Layout of one cache (a folder under the cache root, named by :func:`cache_folder`)::

    <cache root>/<dataset>-v<format>_T<steps>_<split_by>_<HxW or native>[_<variant>]_<fingerprint>/
        frames/000000.npy ...      one file per sample, written to a temporary name then renamed
        frames/source-000000.json  per source file: the metadata of its samples, written last
        manifest.json              written last of all, atomically: the cache is complete

The folder name spells out every parameter that changes the frames, and ends with a hash of them
together with the list of source files (relative names, sizes, labels, splits, time windows); the
manifest repeats them all and is checked on every read, with the size of every sample file (a
truncated one is named, and ``prepare_data`` rebuilds it). A run that is interrupted leaves no
manifest, so its cache is never read as complete; the next ``prepare_data`` keeps the sources
already finished (their ``source-*.json`` exists) and builds the rest. Its worker processes do not
outlive it: Ctrl-C or an error terminates them, and a parent killed outright (SIGTERM, SIGKILL) is
noticed by each worker within a fraction of a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import multiprocessing
import os
import signal
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import atomic_open, write_atomically
from .events import EVENT_DTYPE, events_to_frames
from .formats import EventFileError

__all__ = [
    "CACHE_ENV_VAR",
    "CACHE_FORMAT_VERSION",
    "CorruptCacheError",
    "FrameSpec",
    "SampleSpec",
    "SourceFile",
    "build_frame_cache",
    "cache_folder",
    "default_cache_dir",
    "load_frames",
    "read_event_cache",
    "read_manifest",
    "write_event_cache",
]

CACHE_ENV_VAR = "BSNN_LIGHTNING_CACHE"
"""Environment variable that overrides the default cache folder ``~/.cache/bsnn-lightning``."""

CACHE_FORMAT_VERSION = 1
"""Version of the frame cache's layout; bump whenever the stored frames for given parameters would change."""


def default_cache_dir() -> Path:
    """``$BSNN_LIGHTNING_CACHE`` if set and non-empty, else ``~/.cache/bsnn-lightning``.

    Example:
        >>> import os
        >>> from pathlib import Path
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"BSNN_LIGHTNING_CACHE": "/data/cache"}):
        ...     default_cache_dir().as_posix()
        '/data/cache'
        >>> with mock.patch.dict(os.environ, {"BSNN_LIGHTNING_CACHE": ""}):
        ...     default_cache_dir() == Path.home() / ".cache" / "bsnn-lightning"
        True
    """
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bsnn-lightning"


# --------------------------------------------------------------------------------------------
# Event recordings: one .npz per set
# --------------------------------------------------------------------------------------------


class CorruptCacheError(Exception):
    """A cache file that cannot be read, or that holds other parameters than the ones asked for.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "set.npz"
        >>> write_event_cache(path, [np.zeros(0, EVENT_DTYPE)], np.array([3]), {"seed": 0})
        >>> read_event_cache(path, {"seed": 1}, np.array([3]))
        Traceback (most recent call last):
            ...
        bsnn_lightning.data.cache.CorruptCacheError: expected metadata {'seed': 1}, got {'seed': 0}
        >>> tmp.cleanup()
    """


def write_event_cache(path: Path, events: list[np.ndarray], labels: np.ndarray, metadata: dict) -> None:
    """Write the recordings ``events`` (one :data:`EVENT_DTYPE` array each), their ``labels`` and the JSON-able
    ``metadata`` to ``path``, atomically.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from pathlib import Path
        >>> from bsnn_lightning.data.events import events_from_arrays
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "set.npz"
        >>> events = [events_from_arrays([0, 5], [1, 2], [0, 0], [1, 0]), events_from_arrays([3], [0], [1], [1])]
        >>> write_event_cache(path, events, np.array([0, 1]), {"seed": 0})
        >>> [e.tolist() for e in read_event_cache(path, {"seed": 0}, np.array([0, 1]))]
        [[(0, 1, 0, 1), (5, 2, 0, 0)], [(3, 0, 1, 1)]]
        >>> tmp.cleanup()
    """
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64)
    with atomic_open(path) as f:
        np.savez(
            f,
            events=np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE),
            offsets=offsets,
            labels=labels,
            metadata=np.array(json.dumps(metadata)),
        )


def read_event_cache(path: Path, metadata: dict, labels: np.ndarray) -> list[np.ndarray]:
    """The recordings stored at ``path``, checked against the ``metadata`` and ``labels`` expected.

    Raises:
        CorruptCacheError: naming what is wrong (unreadable zip or array, other metadata -- an older format
            version included --, events of another dtype, inconsistent offsets, other labels).

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from pathlib import Path
        >>> from bsnn_lightning.data.events import events_from_arrays
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "set.npz"
        >>> write_event_cache(path, [events_from_arrays([0], [1], [2], [1])], np.array([4]), {"seed": 0})
        >>> [e.tolist() for e in read_event_cache(path, {"seed": 0}, np.array([4]))]
        [[(0, 1, 2, 1)]]
        >>> try:
        ...     read_event_cache(path, {"seed": 0}, np.array([5]))  # other labels than the file's
        ... except CorruptCacheError as err:
        ...     print(err)
        expected the stored labels to equal the labels asked for
        >>> tmp.cleanup()
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["metadata"]))
            events = data["events"]
            offsets = data["offsets"]
            stored_labels = data["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise CorruptCacheError(f"{type(err).__name__}: {err}") from err
    if stored != metadata:
        raise CorruptCacheError(f"expected metadata {metadata}, got {stored}")
    if events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise CorruptCacheError(f"expected 1-D events of dtype {EVENT_DTYPE}, got {events.dtype} {events.shape}")
    n = len(labels)
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != len(events) or np.any(np.diff(offsets) < 0):
        raise CorruptCacheError(f"expected {n + 1} non-decreasing offsets from 0 to {len(events)}")
    if not np.array_equal(stored_labels, labels):
        raise CorruptCacheError("expected the stored labels to equal the labels asked for")
    return np.split(events, offsets[1:-1])


# --------------------------------------------------------------------------------------------
# Event frames: one folder per dataset and parameters
# --------------------------------------------------------------------------------------------

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FrameSpec:
    """How events become frames (all of it keys the cache).

    Example:
        >>> FrameSpec(sensor_size=(34, 34), time_steps=2, split_by="number", resize=None).shape  # (T, 2, H, W)
        (2, 2, 34, 34)
        >>> FrameSpec(sensor_size=(240, 180), time_steps=10, split_by="number", resize=(128, 128)).shape
        (10, 2, 128, 128)
    """

    sensor_size: tuple[int, int]
    """``(width, height)`` of the sensor, as :func:`events_to_frames` takes it."""
    time_steps: int
    split_by: str
    resize: tuple[int, int] | None
    """``(height, width)`` of the output, or None for the sensor's size."""

    @property
    def shape(self) -> tuple[int, int, int, int]:
        height, width = self.resize if self.resize is not None else self.sensor_size[::-1]
        return (self.time_steps, 2, height, width)


@dataclass(frozen=True)
class SampleSpec:
    """One sample: a whole recording, or the window ``[start, end)`` µs of one (DVS128 Gesture).

    Example:
        >>> SampleSpec("user01_led/3", label=2, split="train", window=(1_000, 2_000))  # a DVS128 Gesture window
        SampleSpec(key='user01_led/3', label=2, split='train', window=(1000, 2000))
    """

    key: str
    label: int
    split: str
    window: tuple[int, int] | None = None


@dataclass(frozen=True)
class SourceFile:
    """An event file and the samples cut from it.

    Example:
        >>> from pathlib import Path
        >>> source = SourceFile(Path("data/7/00001.bin"), "7/00001.bin", (SampleSpec("7/00001.bin", 7, "train"),))
        >>> source.relative, len(source.samples)
        ('7/00001.bin', 1)
    """

    path: Path
    relative: str
    """Its name relative to the dataset folder (what the fingerprint records)."""
    samples: tuple[SampleSpec, ...]


Reader = Callable[[Path], np.ndarray]


def cache_folder(cache_root: Path, dataset: str, spec: FrameSpec, sources: list[SourceFile], variant: str = "") -> tuple[Path, dict]:
    """The cache folder for these parameters and sources, and the parameters recorded in it.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from bsnn_lightning.data.formats import read_atis_bin
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "00001.bin"
        >>> _ = path.write_bytes(bytes([3, 5, 0x80, 0, 100, 4, 6, 0, 0, 200]))  # two ATIS events
        >>> spec = FrameSpec(sensor_size=(34, 34), time_steps=2, split_by="number", resize=None)
        >>> sources = [SourceFile(path, "7/00001.bin", (SampleSpec("7/00001.bin", label=7, split="train"),))]
        >>> folder, params = cache_folder(Path(tmp.name) / "frames", "toy", spec, sources)
        >>> folder.name.rsplit("_", 1)[0]  # then a hash of the parameters and the source list
        'toy-v1_T2_number_native'
        >>> params["time_steps"], params["split_by"], params["resize"]
        (2, 'number', None)
        >>> tmp.cleanup()
    """
    size = "native" if spec.resize is None else f"{spec.resize[0]}x{spec.resize[1]}"
    params = {
        "format_version": CACHE_FORMAT_VERSION,
        "dataset": dataset,
        "variant": variant,
        "sensor_size": list(spec.sensor_size),
        "time_steps": spec.time_steps,
        "split_by": spec.split_by,
        "resize": None if spec.resize is None else list(spec.resize),
    }
    listing = [
        [s.relative, s.path.stat().st_size, [[x.key, x.label, x.split, list(x.window) if x.window else None] for x in s.samples]]
        for s in sources
    ]
    digest = hashlib.sha256(json.dumps([params, listing], sort_keys=True).encode()).hexdigest()[:12]
    params["sources_sha256_12"] = digest
    parts = [f"{dataset}-v{CACHE_FORMAT_VERSION}", f"T{spec.time_steps}", spec.split_by, size]
    if variant:
        parts.append(variant)
    parts.append(digest)
    return cache_root / "_".join(parts), params


def build_frame_cache(
    folder: Path,
    params: dict,
    sources: list[SourceFile],
    reader: Reader,
    spec: FrameSpec,
    *,
    workers: int = 0,
    progress: bool = True,
    description: str = "frames",
) -> dict:
    """Build the cache in ``folder`` unless a complete one is there; return its manifest.

    Args:
        folder, params: from :func:`cache_folder`.
        sources: the event files and their samples, in the order the samples are numbered.
        reader: ``path -> events`` (a picklable function when ``workers > 0``).
        spec: how to make frames.
        workers: processes that read and bin files in parallel (0 = this process).
        progress: show a progress bar (one step per source file).
        description: the progress bar's label.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from bsnn_lightning.data.formats import read_atis_bin
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "00001.bin"
        >>> _ = path.write_bytes(bytes([3, 5, 0x80, 0, 100, 4, 6, 0, 0, 200]))  # two ATIS events
        >>> spec = FrameSpec(sensor_size=(34, 34), time_steps=2, split_by="number", resize=None)
        >>> sources = [SourceFile(path, "7/00001.bin", (SampleSpec("7/00001.bin", label=7, split="train"),))]
        >>> folder, params = cache_folder(Path(tmp.name) / "frames", "toy", spec, sources)
        >>> manifest = build_frame_cache(folder, params, sources, read_atis_bin, spec, progress=False)
        >>> manifest["shape"], manifest["samples"][0]["file"], manifest["samples"][0]["dtype"]
        ([2, 2, 34, 34], '000000.npy', 'uint8')
        >>> again = build_frame_cache(folder, params, sources, read_atis_bin, spec, progress=False)  # read, not rebuilt
        >>> again == manifest
        True
        >>> tmp.cleanup()
    """
    try:
        return read_manifest(folder, params)
    except FileNotFoundError:
        pass
    except RuntimeError as err:
        warnings.warn(f"rebuilding the frame cache {folder}: {err}", RuntimeWarning, stacklevel=2)
    frames_dir = folder / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    jobs, first = [], 0
    for source in sources:
        jobs.append((source, first))
        first += len(source.samples)
    results: dict[int, list[dict]] = {}
    todo = []
    for source, first in jobs:
        done = _finished_source(frames_dir, source, first, spec.shape)
        if done is not None:
            results[first] = done
        else:
            todo.append((source, first))
    bar = _progress(progress, len(jobs), description)
    bar.update(len(jobs) - len(todo))
    try:
        if workers > 0 and len(todo) > 1:
            with _worker_pool(workers) as pool:
                jobs_args = [(s, f, reader, spec, frames_dir) for s, f in todo]
                for first, metas in pool.imap_unordered(_build_job, jobs_args, chunksize=1):
                    results[first] = metas
                    bar.update(1)
        else:
            for source, first in todo:
                results[first] = _build_source(source, first, reader, spec, frames_dir)
                bar.update(1)
    finally:
        bar.close()
    samples = [meta for first in sorted(results) for meta in results[first]]
    resorted = sum(m["resorted"] for m in samples)
    if resorted:
        warnings.warn(
            f"{resorted} of {len(samples)} samples had timestamps that go backwards in file order; their events "
            "were sorted by time (stable) before binning",
            RuntimeWarning,
            stacklevel=2,
        )
    manifest = {"params": params, "shape": list(spec.shape), "samples": samples}
    write_atomically(folder / MANIFEST, json.dumps(manifest).encode())
    return manifest


def read_manifest(folder: Path, params: dict) -> dict:
    """Read a complete cache's manifest; never writes.

    Raises:
        FileNotFoundError: no manifest (never built, or interrupted), naming what to run.
        RuntimeError: a manifest for other parameters, unreadable, or naming missing sample files.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from bsnn_lightning.data.formats import read_atis_bin
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "00001.bin"
        >>> _ = path.write_bytes(bytes([3, 5, 0x80, 0, 100, 4, 6, 0, 0, 200]))  # two ATIS events
        >>> spec = FrameSpec(sensor_size=(34, 34), time_steps=2, split_by="number", resize=None)
        >>> sources = [SourceFile(path, "7/00001.bin", (SampleSpec("7/00001.bin", label=7, split="train"),))]
        >>> folder, params = cache_folder(Path(tmp.name) / "frames", "toy", spec, sources)
        >>> try:
        ...     read_manifest(folder, params)
        ... except FileNotFoundError as err:  # not built yet
        ...     print(str(err).split("; ")[1])
        run the DataModule's prepare_data() first (Lightning's Trainer does)
        >>> manifest = build_frame_cache(folder, params, sources, read_atis_bin, spec, progress=False)
        >>> read_manifest(folder, params) == manifest
        True
        >>> tmp.cleanup()
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"expected a complete frame cache at {folder} (its {MANIFEST}), found none; "
            "run the DataModule's prepare_data() first (Lightning's Trainer does)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RuntimeError(f"unreadable frame-cache manifest {path}: {err}") from err
    if manifest.get("params") != params:
        raise RuntimeError(f"frame cache {folder} holds other parameters: expected {params}, got {manifest.get('params')}")
    missing = [m["file"] for m in manifest["samples"] if not (folder / "frames" / m["file"]).is_file()]
    if missing:
        raise RuntimeError(f"frame cache {folder} is missing {len(missing)} sample file(s), e.g. frames/{missing[0]}")
    shape = tuple(manifest["shape"])
    wrong = [(m["file"], size, expected) for m in manifest["samples"]
             if (size := (folder / "frames" / m["file"]).stat().st_size) != (expected := _npy_size(shape, m["dtype"]))]
    if wrong:
        name, size, expected = wrong[0]
        raise RuntimeError(
            f"frame cache {folder} has {len(wrong)} sample file(s) of the wrong size (truncated or overwritten), "
            f"e.g. {folder / 'frames' / name}: expected {expected} bytes, found {size}; run the DataModule's "
            "prepare_data() to rebuild them (Lightning's Trainer does)"
        )
    return manifest


def load_frames(path: "str | Path") -> np.ndarray:
    """One sample's stored frames; a file that numpy cannot read raises a ``RuntimeError`` that names it
    and says how to rebuild it.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from bsnn_lightning.data.formats import read_atis_bin
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "00001.bin"
        >>> _ = path.write_bytes(bytes([3, 5, 0x80, 0, 100, 4, 6, 0, 0, 200]))  # two ATIS events
        >>> spec = FrameSpec(sensor_size=(34, 34), time_steps=2, split_by="number", resize=None)
        >>> sources = [SourceFile(path, "7/00001.bin", (SampleSpec("7/00001.bin", label=7, split="train"),))]
        >>> folder, params = cache_folder(Path(tmp.name) / "frames", "toy", spec, sources)
        >>> manifest = build_frame_cache(folder, params, sources, read_atis_bin, spec, progress=False)
        >>> frames = load_frames(folder / "frames" / manifest["samples"][0]["file"])
        >>> frames.shape, frames.dtype, int(frames.sum())  # [T, 2, H, W] counts: the two events
        ((2, 2, 34, 34), dtype('uint8'), 2)
        >>> try:
        ...     load_frames(path)  # not a .npy file
        ... except RuntimeError as err:
        ...     print(str(err).split(" (")[0].startswith("unreadable frame-cache file"))
        True
        >>> tmp.cleanup()
    """
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise RuntimeError(
            f"unreadable frame-cache file {path} ({type(err).__name__}: {err}); delete it and run the "
            "DataModule's prepare_data() to rebuild it"
        ) from err


# --------------------------------------------------------------------------------------------
# Helpers (run in worker processes too: module level, picklable)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _worker_pool(workers: int):
    """Worker processes that never outlive the build: an exception or a KeyboardInterrupt here terminates
    them at once (no waiting for the queued files), and each worker ignores SIGINT (Ctrl-C reaches the
    whole process group; the parent alone handles it) and exits by itself within
    :data:`_PARENT_POLL_S` when the parent is gone (killed, SIGTERM or SIGKILL, before it could clean up).
    A worker stopped mid-file leaves at most a ``*.tmp`` file: every write is atomic."""
    # the platform's default start method, as torch's DataLoader workers use (fork on Linux)
    pool = multiprocessing.get_context().Pool(workers, initializer=_watch_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


#: how often a cache-building worker checks that its parent is alive (seconds)
_PARENT_POLL_S = 0.2


def _watch_parent(parent: int) -> None:
    """Worker initializer: ignore SIGINT, and exit as soon as ``parent`` is no longer this process's parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="bsnn-parent-watch", daemon=True).start()


def _build_job(args: tuple) -> tuple[int, list[dict]]:
    source, first, reader, spec, frames_dir = args
    return first, _build_source(source, first, reader, spec, frames_dir)


def _build_source(source: SourceFile, first: int, reader: Reader, spec: FrameSpec, frames_dir: Path) -> list[dict]:
    events = reader(source.path)
    metas = []
    for offset, sample in enumerate(source.samples):
        if sample.window is not None:
            start, end = sample.window
            chosen = events[(events["t"] >= start) & (events["t"] < end)]
        else:
            chosen = events
        if not len(chosen):  # would be an all-zero sample
            where = "" if sample.window is None else f" in the window [{sample.window[0]}, {sample.window[1]}) µs"
            raise EventFileError(
                source.path, 0, f"no events{where} ({source.path.stat().st_size} bytes): expected a recording with "
                "at least one event; the file is empty or cut short (download or extract it again)"
            )
        resorted = bool(len(chosen) > 1 and np.any(np.diff(chosen["t"]) < 0))
        if resorted and spec.split_by == "number":
            chosen = np.sort(chosen, order="t", kind="stable")
        frames = events_to_frames(chosen, spec.sensor_size, spec.time_steps, spec.split_by, spec.resize)
        stored = _compact(frames, exact=spec.resize is None)
        name = f"{first + offset:06d}.npy"
        buffer = _npy_bytes(stored)
        write_atomically(frames_dir / name, buffer)
        metas.append(
            {
                "key": sample.key,
                "label": int(sample.label),
                "split": sample.split,
                "file": name,
                "n_events": int(len(chosen)),
                "dtype": str(stored.dtype),
                "resorted": resorted and spec.split_by == "number",
            }
        )
    write_atomically(frames_dir / f"source-{first:06d}.json", json.dumps({"source": source.relative, "samples": metas}).encode())
    return metas


def _finished_source(frames_dir: Path, source: SourceFile, first: int, shape: tuple[int, ...]) -> list[dict] | None:
    """The metadata of a source finished by an earlier, interrupted build (None if not finished, or if one
    of its files is missing or of the wrong size)."""
    path = frames_dir / f"source-{first:06d}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    metas = record.get("samples", [])
    keys = [m.get("key") for m in metas]
    if record.get("source") != source.relative or keys != [s.key for s in source.samples]:
        return None
    for m in metas:
        path = frames_dir / m["file"]
        if not path.is_file() or path.stat().st_size != _npy_size(tuple(shape), m.get("dtype", "")):
            return None
    return metas


def _compact(frames: np.ndarray, exact: bool) -> np.ndarray:
    if not exact:
        return frames.astype(np.float32)
    largest = frames.max(initial=0)
    for dtype in (np.uint8, np.uint16):
        if largest <= np.iinfo(dtype).max:
            return frames.astype(dtype)
    return frames.astype(np.float32)


@functools.lru_cache(maxsize=None)
def _npy_size(shape: tuple[int, ...], dtype: str) -> int:
    """The size in bytes of the ``.npy`` file :func:`_npy_bytes` writes for an array of this shape and dtype
    (-1 for a dtype no sample is stored as)."""
    if dtype not in ("uint8", "uint16", "float32"):
        return -1
    return len(_npy_bytes(np.zeros(shape, dtype)))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _progress(enabled: bool, total: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="file", disable=not enabled, leave=True)
