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

NCALTECH101_COUNTS = {
    "BACKGROUND_Google": 467, "Faces_easy": 435, "Leopards": 200, "Motorbikes": 798, "accordion": 55,
    "airplanes": 800, "anchor": 42, "ant": 42, "barrel": 47, "bass": 54, "beaver": 46, "binocular": 33,
    "bonsai": 128, "brain": 98, "brontosaurus": 43, "buddha": 85, "butterfly": 91, "camera": 50,
    "cannon": 43, "car_side": 123, "ceiling_fan": 47, "cellphone": 59, "chair": 62, "chandelier": 107,
    "cougar_body": 47, "cougar_face": 69, "crab": 73, "crayfish": 70, "crocodile": 50,
    "crocodile_head": 51, "cup": 57, "dalmatian": 67, "dollar_bill": 52, "dolphin": 65, "dragonfly": 68,
    "electric_guitar": 75, "elephant": 64, "emu": 53, "euphonium": 64, "ewer": 85, "ferry": 67,
    "flamingo": 67, "flamingo_head": 45, "garfield": 34, "gerenuk": 34, "gramophone": 51,
    "grand_piano": 99, "hawksbill": 100, "headphone": 42, "hedgehog": 54, "helicopter": 88, "ibis": 80,
    "inline_skate": 31, "joshua_tree": 64, "kangaroo": 86, "ketch": 114, "lamp": 61, "laptop": 81,
    "llama": 78, "lobster": 41, "lotus": 66, "mandolin": 43, "mayfly": 40, "menorah": 87, "metronome": 32,
    "minaret": 76, "nautilus": 55, "octopus": 35, "okapi": 39, "pagoda": 47, "panda": 38, "pigeon": 45,
    "pizza": 53, "platypus": 34, "pyramid": 57, "revolver": 82, "rhino": 59, "rooster": 49,
    "saxophone": 40, "schooner": 63, "scissors": 39, "scorpion": 84, "sea_horse": 57, "snoopy": 35,
    "soccer_ball": 64, "stapler": 45, "starfish": 86, "stegosaurus": 59, "stop_sign": 64,
    "strawberry": 35, "sunflower": 85, "tick": 49, "trilobite": 86, "umbrella": 75, "watch": 239,
    "water_lilly": 37, "wheelchair": 59, "wild_cat": 34, "windsor_chair": 56, "wrench": 39, "yin_yang": 60,
}  # fmt: skip
"""Recordings per class of N-Caltech101 (``Caltech101/<class>/image_0001.bin`` ..): Caltech101's
images without its ``Faces`` class, 101 classes including ``BACKGROUND_Google``, 8,709 in all."""

SHIPPED = "the split file shipped with bsnn-lightning"
"""How an error names the shipped split."""

SPLIT_FILES = {"cifar10dvs": "cifar10dvs.txt", "ncaltech101": "ncaltech101.txt"}

_HEADERS = {
    "cifar10dvs": "CIFAR10-DVS: 10 classes x 1000 recordings, 900 train / 100 test per class",
    "ncaltech101": "N-Caltech101: 101 classes, 8709 recordings; ceil(0.9 n) train per class",
}


def cifar10dvs_names() -> dict[str, list[str]]:
    """The documented CIFAR10-DVS file names, by class."""
    return {c: [f"cifar10_{c}_{i}.aedat" for i in range(CIFAR10DVS_PER_CLASS)] for c in CIFAR10DVS_CLASSES}


def ncaltech101_names() -> dict[str, list[str]]:
    """The documented N-Caltech101 file names, by class (``image_0001.bin`` .. ``image_<n>.bin``)."""
    return {c: [f"image_{i:04d}.bin" for i in range(1, n + 1)] for c, n in NCALTECH101_COUNTS.items()}


def ninety_ten_split(names_by_class: dict[str, list[str]]) -> dict[str, str]:
    """``{"<class>/<name>": "train" | "test"}`` by the rule of the module docstring."""
    split = {}
    for cls in sorted(names_by_class):
        names = sorted(names_by_class[cls])
        n_train = math.ceil(TRAIN_FRACTION * len(names))
        for i, name in enumerate(names):
            split[f"{cls}/{name}"] = "train" if i < n_train else "test"
    return split


def shipped_split(dataset: str) -> dict[str, str]:
    """The split file shipped for ``dataset`` ("cifar10dvs" or "ncaltech101"), as a dict."""
    if dataset not in SPLIT_FILES:
        raise ValueError(f"expected a dataset with a shipped split {tuple(SPLIT_FILES)}, got {dataset!r}")
    text = resources.files(__package__).joinpath("split_files", SPLIT_FILES[dataset]).read_text("utf-8")
    return _parse(text, f"<package split file {SPLIT_FILES[dataset]}>")


def read_split_file(path: str | os.PathLike) -> dict[str, str]:
    """Read a split file in the format of the module docstring (e.g. a user's own split)."""
    path = Path(path)
    return _parse(path.read_text("utf-8"), str(path))


def write_split_file(path: str | os.PathLike, split: dict[str, str], title: str) -> None:
    """Write ``split`` in the format of the module docstring."""
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
    """The splits the rule gives for the documented names (what the shipped files must hold)."""
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
