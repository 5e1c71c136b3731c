"""Train/test splits of CIFAR10-DVS and N-Caltech101 as the papers' released codes make them.

Neither dataset has an official split, and each released code makes its own; these functions rebuild them
from the documented file names (:mod:`bsnn_lightning.data.splits`), as dicts ``{"<class>/<file>": "train" |
"test"}`` that :func:`write` stores in the split-file format the DVS DataModules read (``split_file=``):

* :func:`imp_cifar10dvs` -- the IMP paper's 128 x 128 CIFAR10-DVS (amazing-cls ``DVSCifar10``): class ``j``'s
  recordings are samples ``1000 j .. 1000 j + 999`` of SpikingJelly's listing (names sorted as strings);
  that list of indices seeds numpy's legacy generator, which shuffles it; the first 900 are train.
* :func:`imp_legacy_cifar10dvs` -- the IMP paper's 48 x 48 CIFAR10-DVS (amazing-cls ``CIFAR10DVSLegacy``):
  ``cifar10_<class>_0`` .. ``_99`` test, ``_100`` .. ``_999`` train.
* :func:`tet_cifar10dvs` -- TET's preprocessing (``preprocess/dvscifar_dataloader.py``): recordings 0 .. 699
  of each class train, 700 .. 999 test (7,000 / 3,000).
* :func:`imp_ncaltech101` -- the IMP paper's N-Caltech101 (amazing-cls ``NCaltech101``): each class's files,
  shuffled by numpy's legacy generator seeded with the class index, ``int(0.9 n)`` train. The released code
  shuffles ``os.listdir``'s order, which depends on the file system; we shuffle the names sorted as strings,
  so the counts per class are the code's but which recordings are test is not reproducible from it.

``python -m bsnn_lightning.data.released_splits FOLDER`` writes all four into ``FOLDER``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .splits import CIFAR10DVS_CLASSES, cifar10dvs_names, ncaltech101_names, read_split_file

__all__ = ["RELEASED_SPLITS", "imp_cifar10dvs", "imp_legacy_cifar10dvs", "imp_ncaltech101", "tet_cifar10dvs", "write"]


def _by_index(cls: str, index: int) -> str:
    return f"{cls}/cifar10_{cls}_{index}.aedat"


def imp_cifar10dvs() -> dict[str, str]:
    """The IMP code's 128 x 128 CIFAR10-DVS split (see the module docstring): 9,000 / 1,000."""
    names = cifar10dvs_names()
    split = {}
    for j, cls in enumerate(CIFAR10DVS_CLASSES):
        listed = sorted(names[cls])  # SpikingJelly's order within the class
        indices = list(range(j * 1000, (j + 1) * 1000))
        np.random.RandomState(indices).shuffle(indices)  # what np.random.seed(indices); np.random.shuffle does
        for rank, index in enumerate(indices):
            split[f"{cls}/{listed[index - j * 1000]}"] = "train" if rank < 900 else "test"
    return split


def imp_legacy_cifar10dvs() -> dict[str, str]:
    """The IMP code's 48 x 48 CIFAR10-DVS split: recordings 0..99 of each class test, 100..999 train."""
    return {_by_index(cls, i): "test" if i < 100 else "train" for cls in CIFAR10DVS_CLASSES for i in range(1000)}


def tet_cifar10dvs() -> dict[str, str]:
    """TET's CIFAR10-DVS split: recordings 0..699 of each class train, 700..999 test."""
    return {_by_index(cls, i): "train" if i < 700 else "test" for cls in CIFAR10DVS_CLASSES for i in range(1000)}


def imp_ncaltech101() -> dict[str, str]:
    """The IMP code's N-Caltech101 split rule on names sorted as strings (see the module docstring)."""
    split = {}
    for class_index, (cls, names) in enumerate(sorted(ncaltech101_names().items())):
        files = sorted(names)
        np.random.RandomState(class_index).shuffle(files)
        n_train = int(len(files) * 0.9)
        for rank, name in enumerate(files):
            split[f"{cls}/{name}"] = "train" if rank < n_train else "test"
    return split


RELEASED_SPLITS = {
    "cifar10dvs_imp.txt": (imp_cifar10dvs, "CIFAR10-DVS as the IMP paper's 128 x 128 code splits it (amazing-cls DVSCifar10)"),
    "cifar10dvs_imp_legacy.txt": (imp_legacy_cifar10dvs, "CIFAR10-DVS as the IMP paper's 48 x 48 code splits it (amazing-cls CIFAR10DVSLegacy)"),
    "cifar10dvs_tet.txt": (tet_cifar10dvs, "CIFAR10-DVS as TET's preprocessing splits it (recordings 0-699 train)"),
    "ncaltech101_imp.txt": (imp_ncaltech101, "N-Caltech101 by the IMP code's rule (amazing-cls NCaltech101) on sorted names"),
}
"""File name -> (the function making the split, the title written at the top of the file)."""


def write(folder: str | os.PathLike) -> list[Path]:
    """Write every split of :data:`RELEASED_SPLITS` into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, (make, title) in RELEASED_SPLITS.items():
        split = make()
        n_test = sum(v == "test" for v in split.values())
        lines = [
            f"# {title}",
            f"# {len(split) - n_test} train / {n_test} test. Made by bsnn_lightning.data.released_splits.{make.__name__};",
            "# regenerate with `python -m bsnn_lightning.data.released_splits <folder>` (it must not change).",
            "# <split>\\t<class>/<file>",
        ]
        lines += [f"{v}\t{k}" for k, v in sorted(split.items(), key=lambda kv: kv[0].partition("/")[::2])]
        path = folder / filename
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if read_split_file(path) != split:
            raise RuntimeError(f"{path} does not read back as the split written")
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bsnn_lightning.data.released_splits FOLDER")
    for path in write(sys.argv[1]):
        print(f"wrote {path}")
