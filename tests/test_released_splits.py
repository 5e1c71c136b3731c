"""The released codes' train/test splits (data/released_splits.py) and the DataModules that use them."""

import numpy as np
import pytest

from bsnn_lightning.data.released_datamodules import CIFAR10DVSReleasedSplit, NCaltech101ReleasedSplit
from bsnn_lightning.data.released_splits import (
    RELEASED_SPLITS,
    imp_cifar10dvs,
    imp_legacy_cifar10dvs,
    imp_ncaltech101,
    tet_cifar10dvs,
    write,
)
from bsnn_lightning.data.splits import CIFAR10DVS_CLASSES, NCALTECH101_COUNTS, read_split_file
from bsnn_lightning.data.synthetic import write_synthetic_dataset


def per_class(split, part):
    counts = {}
    for key, value in split.items():
        if value == part:
            cls = key.partition("/")[0]
            counts[cls] = counts.get(cls, 0) + 1
    return counts


def test_imp_cifar10dvs_is_numpys_seeded_shuffle_of_spikingjellys_indices():
    split = imp_cifar10dvs()
    assert per_class(split, "test") == {cls: 100 for cls in CIFAR10DVS_CLASSES}
    j, cls = 3, CIFAR10DVS_CLASSES[3]
    listed = sorted(f"cifar10_{cls}_{i}.aedat" for i in range(1000))  # SpikingJelly's order: names as strings
    state = np.random.get_state()
    try:  # the released code's own calls, on numpy's global generator
        indices = [i for i in range(j * 1000, (j + 1) * 1000)]
        np.random.seed(indices)
        np.random.shuffle(indices)
    finally:
        np.random.set_state(state)
    test = {f"{cls}/{listed[i - j * 1000]}" for i in indices[900:]}
    assert test == {k for k, v in split.items() if v == "test" and k.startswith(f"{cls}/")}
    assert split == imp_cifar10dvs()  # fixed, whatever numpy's global state


def test_imp_legacy_and_tet_split_by_recording_number():
    legacy, tet = imp_legacy_cifar10dvs(), tet_cifar10dvs()
    assert legacy["cat/cifar10_cat_99.aedat"] == "test" and legacy["cat/cifar10_cat_100.aedat"] == "train"
    assert per_class(legacy, "test") == {cls: 100 for cls in CIFAR10DVS_CLASSES}
    assert tet["cat/cifar10_cat_699.aedat"] == "train" and tet["cat/cifar10_cat_700.aedat"] == "test"
    assert per_class(tet, "train") == {cls: 700 for cls in CIFAR10DVS_CLASSES}


def test_imp_ncaltech101_trains_on_the_floor_of_nine_tenths_after_a_shuffle_seeded_by_the_class_index():
    split = imp_ncaltech101()
    assert per_class(split, "train") == {cls: int(n * 0.9) for cls, n in NCALTECH101_COUNTS.items()}
    assert sum(v == "train" for v in split.values()) == 7795 and sum(v == "test" for v in split.values()) == 914
    index = sorted(NCALTECH101_COUNTS).index("anchor")
    names = sorted(f"image_{i:04d}.bin" for i in range(1, NCALTECH101_COUNTS["anchor"] + 1))
    np.random.RandomState(index).shuffle(names)
    assert {f"anchor/{n}" for n in names[int(len(names) * 0.9) :]} == {k for k, v in split.items() if v == "test" and k.startswith("anchor/")}


def test_written_split_files_read_back(tmp_path):
    paths = write(tmp_path)
    assert sorted(p.name for p in paths) == sorted(RELEASED_SPLITS)
    assert read_split_file(tmp_path / "cifar10dvs_tet.txt") == tet_cifar10dvs()


def test_released_split_datamodules_expect_their_splits_counts():
    assert CIFAR10DVSReleasedSplit(split="tet", root="unused").expected_counts == {"train": 7000, "test": 3000}
    assert CIFAR10DVSReleasedSplit(split="imp", root="unused").expected_counts == {"train": 9000, "test": 1000}
    assert NCaltech101ReleasedSplit(root="unused").expected_counts == {"train": 7795, "test": 914}
    with pytest.raises(ValueError, match=r"expected split in \['imp', 'imp_legacy', 'tet'\], got 'paper'"):
        CIFAR10DVSReleasedSplit(split="paper", root="unused")
    with pytest.raises(ValueError, match="give either split .* or split_file, not both"):
        NCaltech101ReleasedSplit(split="imp", split_file="mine.txt", root="unused")


@pytest.mark.parametrize("split", ["imp", "imp_legacy", "tet"])
def test_released_split_datamodule_assigns_recordings_by_its_split(tmp_path, split):
    sums = write_synthetic_dataset("cifar10-dvs", tmp_path / "data", per_class=(1, 1), events_per_sample=50)
    dm = CIFAR10DVSReleasedSplit(split=split, root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                                 checksums=sums, allow_partial=True, download=False, progress=False)  # fmt: skip
    dm._extract_all()
    samples = [s for source in dm._list_sources() for s in source.samples]
    assert len(samples) == 20
    expected = CIFAR10DVSReleasedSplit.splits[split]()
    assert all(s.split == expected[s.key] for s in samples)
