"""Train/test splits of CIFAR10-DVS and N-Caltech101 as the papers' released codes make them.

Neither dataset has an official split, and each released code makes its own; these functions rebuild them
from the documented file names (:mod:`bsnn_lightning.data.splits`), as dicts ``{"<class>/<file>": "train" |
"test"}`` that :func:`write` stores in the split-file format the DVS DataModules read (``split_file=``):

* :func:`imp_cifar10dvs` -- the IMP paper's 128 x 128 CIFAR10-DVS (amazing-cls ``DVSCifar10``): class ``j``'s
  recordings are samples ``1000 j .. 1000 j + 999`` of SpikingJelly's listing (names sorted as strings);
  that list of indices seeds numpy's legacy generator, which shuffles it; the first 900 are train.
* :func:`imp_legacy_cifar10dvs` -- the IMP paper's 48 x 48 CIFAR10-DVS (amazing-cls ``CIFAR10DVSLegacy``):
  ``cifar10_<class>_0`` .. ``_99`` test, ``_100`` .. ``_999`` train.
* :func:`tet_cifar10dvs` -- TET's preprocessing (``preprocess/dvscifar_dataloader.py``) at f9bde41
  (2022-02-09): recordings 0 .. 699 of each class train, 700 .. 999 test (7,000 / 3,000).
* :func:`tet_2024_cifar10dvs` -- the same script since 643be1c (2024-08-16, TET's HEAD 8217492):
  ``train_test_portion = 0.9``, recordings 0 .. 899 train, 900 .. 999 test (9,000 / 1,000).
* :func:`imp_ncaltech101` -- the IMP paper's N-Caltech101 (amazing-cls ``NCaltech101``): each class's files,
  shuffled by numpy's legacy generator seeded with the class index, ``int(0.9 n)`` train. The released code
  shuffles ``os.listdir``'s order of SpikingJelly's frame files, which depends on the file system that held
  them; by default we shuffle the names sorted as strings, which gives the code's counts per class but
  another test set than the released run's. Given that run's listing (``listing=``, one ``<class>/<file>``
  per line in ``os.listdir`` order, as :func:`listdir_listing` writes it on the machine that ran the code),
  the shuffle is applied to it and the released test set comes back.

``python -m bsnn_lightning.data.released_splits FOLDER`` writes the splits into ``FOLDER``;
``python -m bsnn_lightning.data.released_splits --listing FRAMES_FOLDER OUT`` writes a listing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .splits import CIFAR10DVS_CLASSES, cifar10dvs_names, ncaltech101_names, read_split_file

__all__ = [
    "RELEASED_SPLITS",
    "imp_cifar10dvs",
    "imp_legacy_cifar10dvs",
    "imp_ncaltech101",
    "listdir_listing",
    "read_listing",
    "split_counts",
    "tet_2024_cifar10dvs",
    "tet_cifar10dvs",
    "write",
]


def split_counts(split: dict[str, str]) -> dict[str, int]:
    """``{"train": n_train, "test": n_test}`` of a split: what a complete dataset must give under it.

    Example:
        >>> split_counts({"cat/a.aedat": "train", "cat/b.aedat": "train", "cat/c.aedat": "test"})
        {'train': 2, 'test': 1}
    """
    return {part: sum(v == part for v in split.values()) for part in ("train", "test")}


def _by_index(cls: str, index: int) -> str:
    return f"{cls}/cifar10_{cls}_{index}.aedat"


def imp_cifar10dvs() -> dict[str, str]:
    """The IMP code's 128 x 128 CIFAR10-DVS split (see the module docstring): 9,000 / 1,000.

    Example:
        >>> split_counts(imp_cifar10dvs())
        {'train': 9000, 'test': 1000}
    """
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
    """The IMP code's 48 x 48 CIFAR10-DVS split: recordings 0..99 of each class test, 100..999 train.

    Example:
        >>> split = imp_legacy_cifar10dvs()
        >>> split["airplane/cifar10_airplane_99.aedat"], split["airplane/cifar10_airplane_100.aedat"]
        ('test', 'train')
    """
    return {_by_index(cls, i): "test" if i < 100 else "train" for cls in CIFAR10DVS_CLASSES for i in range(1000)}


def tet_cifar10dvs() -> dict[str, str]:
    """TET's CIFAR10-DVS split at f9bde41 (2022-02-09): recordings 0..699 of each class train, 700..999 test.

    Example:
        >>> split = tet_cifar10dvs()
        >>> split_counts(split), split["cat/cifar10_cat_699.aedat"], split["cat/cifar10_cat_700.aedat"]
        ({'train': 7000, 'test': 3000}, 'train', 'test')
    """
    return {_by_index(cls, i): "train" if i < 700 else "test" for cls in CIFAR10DVS_CLASSES for i in range(1000)}


def tet_2024_cifar10dvs() -> dict[str, str]:
    """TET's CIFAR10-DVS split since 643be1c (2024-08-16): recordings 0..899 of each class train, 900..999 test.

    Example:
        >>> split = tet_2024_cifar10dvs()
        >>> split_counts(split), split["cat/cifar10_cat_899.aedat"], split["cat/cifar10_cat_900.aedat"]
        ({'train': 9000, 'test': 1000}, 'train', 'test')
    """
    return {_by_index(cls, i): "train" if i < 900 else "test" for cls in CIFAR10DVS_CLASSES for i in range(1000)}


def imp_ncaltech101(listing: str | os.PathLike | None = None) -> dict[str, str]:
    """The IMP code's N-Caltech101 split rule (see the module docstring): on names sorted as strings, or on
    the order of a ``listing`` file (:func:`read_listing`), the released run's ``os.listdir`` order.

    Example:
        >>> split = imp_ncaltech101()  # names sorted as strings
        >>> split_counts(split)
        {'train': 7795, 'test': 914}
    """
    expected = ncaltech101_names()
    order = {cls: sorted(names) for cls, names in expected.items()} if listing is None else read_listing(listing, expected)
    split = {}
    for class_index, cls in enumerate(sorted(order)):  # the code sorts the class folders
        files = list(order[cls])
        np.random.RandomState(class_index).shuffle(files)
        n_train = int(len(files) * 0.9)
        for rank, name in enumerate(files):
            split[f"{cls}/{name}"] = "train" if rank < n_train else "test"
    return split


def read_listing(path: str | os.PathLike, expected: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Each class's file names in the order a listing file gives them: one ``<class>/<file>`` per line
    (blank lines and lines starting with ``#`` skipped). Names of SpikingJelly's frame files (``.npz``, what
    the released code listed) stand for the recordings of the same stem (``.bin``). The listing must name
    every recording of ``expected`` (default: the documented N-Caltech101 names) once, and nothing else.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "listing.txt"
        >>> _ = path.write_text("# the run's order\\ncat/b.npz\\ncat/a.bin\\n")  # .npz frames stand for .bin recordings
        >>> read_listing(path, expected={"cat": ["a.bin", "b.bin"]})
        {'cat': ['b.bin', 'a.bin']}
        >>> _ = path.write_text("cat/b.npz\\n")
        >>> try:
        ...     read_listing(path, expected={"cat": ["a.bin", "b.bin"]})
        ... except ValueError as err:
        ...     print(str(err).split(": ", 1)[1])
        class 'cat': expected its 2 recordings once each, missing ['a.bin'], unknown [], repeated []
        >>> tmp.cleanup()
    """
    expected = ncaltech101_names() if expected is None else expected
    path = Path(path)
    order: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cls, slash, name = line.partition("/")
        if not slash or not name or "/" in name:
            raise ValueError(f"{path}:{number}: expected <class>/<file>, got {line!r}")
        stem, dot, ext = name.rpartition(".")
        if not dot or ext not in ("bin", "npz"):
            raise ValueError(f"{path}:{number}: expected a .bin recording or a SpikingJelly .npz frame file, got {name!r}")
        order.setdefault(cls, []).append(f"{stem}.bin")
    if sorted(order) != sorted(expected):
        missing, extra = sorted(set(expected) - set(order)), sorted(set(order) - set(expected))
        raise ValueError(f"{path}: expected all {len(expected)} classes, missing {missing[:5]}, unknown {extra[:5]}")
    for cls, names in order.items():
        if len(set(names)) != len(names) or set(names) != set(expected[cls]):
            missing = sorted(set(expected[cls]) - set(names))
            extra = sorted(set(names) - set(expected[cls]))
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(
                f"{path}: class {cls!r}: expected its {len(expected[cls])} recordings once each, "
                f"missing {missing[:5]}, unknown {extra[:5]}, repeated {repeated[:5]}"
            )
    return order


def listdir_listing(folder: str | os.PathLike) -> list[str]:
    """``<class>/<file>`` lines in the order the released code sees them: the class folders of ``folder``
    sorted, each one's files in ``os.listdir`` order. Run it on the folder the code read (SpikingJelly's
    frames folder, e.g. ``.../frames_number_16_split_by_number``) on the file system that held it then; the
    order is that file system's and may differ on any other.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> for cls, name in (("b", "y.npz"), ("a", "x.npz")):
        ...     (Path(tmp.name) / cls).mkdir()
        ...     _ = (Path(tmp.name) / cls / name).write_bytes(b"")
        >>> listdir_listing(tmp.name)  # classes sorted; files in os.listdir order
        ['a/x.npz', 'b/y.npz']
        >>> tmp.cleanup()
    """
    folder = Path(folder)
    classes = sorted(entry for entry in os.listdir(folder) if (folder / entry).is_dir())
    return [f"{cls}/{name}" for cls in classes for name in os.listdir(folder / cls)]


RELEASED_SPLITS = {
    "cifar10dvs_imp.txt": (imp_cifar10dvs, "CIFAR10-DVS as the IMP paper's 128 x 128 code splits it (amazing-cls DVSCifar10)"),
    "cifar10dvs_imp_legacy.txt": (imp_legacy_cifar10dvs, "CIFAR10-DVS as the IMP paper's 48 x 48 code splits it (amazing-cls CIFAR10DVSLegacy)"),
    "cifar10dvs_tet.txt": (tet_cifar10dvs, "CIFAR10-DVS as TET's preprocessing splits it at f9bde41, 2022-02-09 (recordings 0-699 train)"),
    "cifar10dvs_tet_2024.txt": (tet_2024_cifar10dvs, "CIFAR10-DVS as TET's preprocessing splits it since 643be1c, 2024-08-16 (recordings 0-899 train)"),
    "ncaltech101_imp.txt": (imp_ncaltech101, "N-Caltech101 by the IMP code's rule (amazing-cls NCaltech101) on sorted names"),
}
"""File name -> (the function making the split, the title written at the top of the file)."""


def write(folder: str | os.PathLike) -> list[Path]:
    """Write every split of :data:`RELEASED_SPLITS` into ``folder``; returns the paths.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> [path.name for path in write(tmp.name)]  # doctest: +NORMALIZE_WHITESPACE
        ['cifar10dvs_imp.txt', 'cifar10dvs_imp_legacy.txt', 'cifar10dvs_tet.txt', 'cifar10dvs_tet_2024.txt',
         'ncaltech101_imp.txt']
        >>> tmp.cleanup()
    """
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
    if len(sys.argv) == 4 and sys.argv[1] == "--listing":
        lines = listdir_listing(sys.argv[2])
        Path(sys.argv[3]).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {sys.argv[3]} ({len(lines)} files)")
    elif len(sys.argv) == 2:
        for path in write(sys.argv[1]):
            print(f"wrote {path}")
    else:
        raise SystemExit(
            "usage: python -m bsnn_lightning.data.released_splits FOLDER\n"
            "       python -m bsnn_lightning.data.released_splits --listing FRAMES_FOLDER OUT"
        )
