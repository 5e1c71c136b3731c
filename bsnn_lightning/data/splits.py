"""The fixed train/test splits of CIFAR10-DVS and N-Caltech101, shipped as files in the package.

Neither dataset comes with a split. Most papers use 9:1 per class, made the way SpikingJelly's
``split_to_train_test_set(0.9, dataset, num_classes, random_split=False)`` makes it: within each
class, take the recordings in the order the dataset lists them -- file names sorted as strings,
the order torchvision's ``DatasetFolder`` (under SpikingJelly's dataset classes) gives -- and put
the first ``ceil(0.9 * n)`` in train, the rest in test. That order is lexicographic, so for
CIFAR10-DVS (``cifar10_airplane_0.aedat`` .. ``cifar10_airplane_999.aedat``) the test set of a
class is *not* indices 900..999 but the last 100 names in string order: indices 909, 91..99 and
910..999 (``cifar10_airplane_909.aedat``, ``cifar10_airplane_91.aedat``, ...).

The split files are generated from the datasets' documented file names and per-class counts
(:data:`CIFAR10DVS_CLASSES`, 1000 recordings each; :data:`NCALTECH101_COUNTS`), not from a
listing of the real archives, and are checked against those counts when a dataset is loaded:
a recording on disk that the split does not name is an error, never silently assigned.
Regenerate them (they must not change) with ``python -m bsnn_lightning.data.splits``.

File format (``split_files/<dataset>.txt``): ``#`` comment lines, then one line per recording,
``<train|test><TAB><class folder>/<file name>``, sorted by class then by name.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path

__all__ = [
    "CIFAR10DVS_CLASSES",
    "NCALTECH101_COUNTS",
    "SHIPPED",
    "SPLIT_FILES",
    "cifar10dvs_names",
    "expected_splits",
    "ncaltech101_names",
    "ninety_ten_split",
    "read_split_file",
    "shipped_split",
    "write_split_file",
]

TRAIN_FRACTION = 0.9

CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""CIFAR10-DVS classes; each archive ``<class>.zip`` holds ``cifar10_<class>_<i>.aedat``, i = 0..999."""
CIFAR10DVS_PER_CLASS = 1000

def _read_counts(filename: str) -> dict[str, int]:
    """``{class: recordings}`` from a ``<class>\t<count>`` file shipped in ``split_files/``."""
    text = resources.files(__package__).joinpath("split_files", filename).read_text("utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {cls: int(count) for cls, count in rows}


NCALTECH101_COUNTS = _read_counts("ncaltech101_counts.txt")
"""Recordings per class of N-Caltech101 (``Caltech101/<class>/image_0001.bin`` ..): Caltech101's
images without its ``Faces`` class, 101 classes including ``BACKGROUND_Google``, 8,709 in all
(``split_files/ncaltech101_counts.txt``)."""

SHIPPED = "the split file shipped with bsnn-lightning"
"""How an error names the shipped split."""

SPLIT_FILES = {"cifar10dvs": "cifar10dvs.txt", "ncaltech101": "ncaltech101.txt"}

_HEADERS = {
    "cifar10dvs": "CIFAR10-DVS: 10 classes x 1000 recordings, 900 train / 100 test per class",
    "ncaltech101": "N-Caltech101: 101 classes, 8709 recordings; ceil(0.9 n) train per class",
}


def cifar10dvs_names() -> dict[str, list[str]]:
    """The documented CIFAR10-DVS file names, by class.

    Example:
        >>> names = cifar10dvs_names()
        >>> len(names), len(names["airplane"]), names["airplane"][:2]
        (10, 1000, ['cifar10_airplane_0.aedat', 'cifar10_airplane_1.aedat'])
    """
    return {c: [f"cifar10_{c}_{i}.aedat" for i in range(CIFAR10DVS_PER_CLASS)] for c in CIFAR10DVS_CLASSES}


def ncaltech101_names() -> dict[str, list[str]]:
    """The documented N-Caltech101 file names, by class (``image_0001.bin`` .. ``image_<n>.bin``).

    Example:
        >>> names = ncaltech101_names()
        >>> len(names), len(names["Faces_easy"]), names["Faces_easy"][0]
        (101, 435, 'image_0001.bin')
    """
    return {c: [f"image_{i:04d}.bin" for i in range(1, n + 1)] for c, n in NCALTECH101_COUNTS.items()}


def ninety_ten_split(names_by_class: dict[str, list[str]]) -> dict[str, str]:
    """``{"<class>/<name>": "train" | "test"}`` by the rule of the module docstring.

    Example:
        >>> split = ninety_ten_split({"cat": [f"cat_{i}.aedat" for i in range(12)]})  # ceil(0.9 * 12) = 11 train
        >>> [name for name, part in split.items() if part == "test"]  # the last in string order, not cat_11
        ['cat/cat_9.aedat']
    """
    split = {}
    for cls in sorted(names_by_class):
        names = sorted(names_by_class[cls])
        n_train = math.ceil(TRAIN_FRACTION * len(names))
        for i, name in enumerate(names):
            split[f"{cls}/{name}"] = "train" if i < n_train else "test"
    return split


def shipped_split(dataset: str) -> dict[str, str]:
    """The split file shipped for ``dataset`` ("cifar10dvs" or "ncaltech101"), as a dict.

    Example:
        >>> split = shipped_split("cifar10dvs")
        >>> len(split), split["airplane/cifar10_airplane_909.aedat"], split["airplane/cifar10_airplane_900.aedat"]
        (10000, 'test', 'train')
        >>> shipped_split("nmnist")
        Traceback (most recent call last):
            ...
        ValueError: expected a dataset with a shipped split ('cifar10dvs', 'ncaltech101'), got 'nmnist'
    """
    if dataset not in SPLIT_FILES:
        raise ValueError(f"expected a dataset with a shipped split {tuple(SPLIT_FILES)}, got {dataset!r}")
    text = resources.files(__package__).joinpath("split_files", SPLIT_FILES[dataset]).read_text("utf-8")
    return _parse(text, f"<package split file {SPLIT_FILES[dataset]}>")


def read_split_file(path: str | os.PathLike) -> dict[str, str]:
    """Read a split file in the format of the module docstring (e.g. a user's own split).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "my_split.txt"
        >>> _ = path.write_text("# my split\\ntrain\\tcat/a.aedat\\ntest\\tcat/b.aedat\\n")
        >>> read_split_file(path)
        {'cat/a.aedat': 'train', 'cat/b.aedat': 'test'}
        >>> _ = path.write_text("val\\tcat/b.aedat\\n")
        >>> try:
        ...     read_split_file(path)
        ... except ValueError as err:
        ...     print(str(err).split(", ", 1)[1])
        line 1: expected '<train|test>\\t<class>/<file>', got 'val\\tcat/b.aedat'
        >>> tmp.cleanup()
    """
    path = Path(path)
    return _parse(path.read_text("utf-8"), str(path))


def write_split_file(path: str | os.PathLike, split: dict[str, str], title: str) -> None:
    """Write ``split`` in the format of the module docstring.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "my_split.txt"
        >>> write_split_file(path, {"cat/b.aedat": "test", "cat/a.aedat": "train"}, "my split")
        >>> path.read_text().splitlines()[-2:]  # after the comment lines, sorted by class then name
        ['train\\tcat/a.aedat', 'test\\tcat/b.aedat']
        >>> read_split_file(path)
        {'cat/a.aedat': 'train', 'cat/b.aedat': 'test'}
        >>> tmp.cleanup()
    """
    lines = [
        f"# {title}",
        "# Fixed train/test split shipped with bsnn-lightning. Rule: within each class, file names sorted",
        "# as strings (the order SpikingJelly's dataset classes list them in); the first ceil(0.9 n) are",
        "# train, the rest test -- spikingjelly.datasets.split_to_train_test_set(0.9, ..., random_split=False).",
        "# Generated from the documented file names and per-class counts by `python -m bsnn_lightning.data.splits`.",
        "# <split>\\t<class>/<file>",
    ]
    lines += [f"{s}\t{key}" for key, s in sorted(split.items(), key=lambda kv: _sort_key(kv[0]))]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def expected_splits() -> dict[str, dict[str, str]]:
    """The splits the rule gives for the documented names (what the shipped files must hold).

    Example:
        >>> splits = expected_splits()
        >>> {name: sum(part == "test" for part in split.values()) for name, split in splits.items()}  # test recordings
        {'cifar10dvs': 1000, 'ncaltech101': 823}
        >>> splits["cifar10dvs"] == shipped_split("cifar10dvs")
        True
    """
    return {"cifar10dvs": ninety_ten_split(cifar10dvs_names()), "ncaltech101": ninety_ten_split(ncaltech101_names())}


def _parse(text: str, where: str) -> dict[str, str]:
    split = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        part, _, key = line.partition("\t")
        if part not in ("train", "test") or not key or "/" not in key:
            raise ValueError(f"{where}, line {number}: expected '<train|test>\\t<class>/<file>', got {line!r}")
        if key in split:
            raise ValueError(f"{where}, line {number}: {key!r} is listed twice")
        split[key] = part
    return split


def _sort_key(key: str) -> tuple[str, str]:
    cls, _, name = key.partition("/")
    return cls, name


def main() -> None:
    folder = Path(__file__).resolve().parent / "split_files"
    folder.mkdir(exist_ok=True)
    for dataset, split in expected_splits().items():
        path = folder / SPLIT_FILES[dataset]
        write_split_file(path, split, _HEADERS[dataset])
        n_test = sum(s == "test" for s in split.values())
        print(f"wrote {path}: {len(split)} recordings, {len(split) - n_test} train / {n_test} test")


if __name__ == "__main__":
    main()
