"""The released codes' train/test splits (data/released_splits.py) and the DataModules that use them."""

import numpy as np
import pytest

from bsnn_lightning.data.released_datamodules import CIFAR10DVSReleasedSplit, NCaltech101ReleasedSplit
from bsnn_lightning.data.released_splits import (
    RELEASED_SPLITS,
    imp_cifar10dvs,
    imp_legacy_cifar10dvs,
    imp_ncaltech101,
    listdir_listing,
    read_listing,
    tet_2024_cifar10dvs,
    tet_cifar10dvs,
    write,
)
from bsnn_lightning.data.splits import CIFAR10DVS_CLASSES, NCALTECH101_COUNTS, read_split_file
from archive_writers import write_synthetic_dataset  # tests/archive_writers.py


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
    tet_2024 = tet_2024_cifar10dvs()  # TET's preprocessing since 643be1c (2024-08-16): train_test_portion 0.9
    assert tet_2024["cat/cifar10_cat_899.aedat"] == "train" and tet_2024["cat/cifar10_cat_900.aedat"] == "test"
    assert per_class(tet_2024, "test") == {cls: 100 for cls in CIFAR10DVS_CLASSES}


def test_imp_ncaltech101_trains_on_the_floor_of_nine_tenths_after_a_shuffle_seeded_by_the_class_index():
    split = imp_ncaltech101()
    assert per_class(split, "train") == {cls: int(n * 0.9) for cls, n in NCALTECH101_COUNTS.items()}
    assert sum(v == "train" for v in split.values()) == 7795 and sum(v == "test" for v in split.values()) == 914
    index = sorted(NCALTECH101_COUNTS).index("anchor")
    names = sorted(f"image_{i:04d}.bin" for i in range(1, NCALTECH101_COUNTS["anchor"] + 1))
    np.random.RandomState(index).shuffle(names)
    assert {f"anchor/{n}" for n in names[int(len(names) * 0.9) :]} == {k for k, v in split.items() if v == "test" and k.startswith("anchor/")}


def _listing_in_another_order(tmp_path, suffix=".npz"):
    """A listing as os.listdir might give it: each class's files in an order that is not sorted."""
    lines = ["# os.listdir order of the frames folder"]
    for cls, n in sorted(NCALTECH101_COUNTS.items(), reverse=True):  # the class order in the file does not matter
        order = list(range(1, n + 1))
        order = order[1::2] + order[::2][::-1]
        lines += [f"{cls}/image_{i:04d}{suffix}" for i in order]
    path = tmp_path / "listing.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_imp_ncaltech101_from_a_listing_is_the_released_codes_shuffle_of_that_order(tmp_path):
    path = _listing_in_another_order(tmp_path)
    split = imp_ncaltech101(path)
    listed = read_listing(path)
    state = np.random.get_state()
    try:  # amazing-cls load_data_infos, on numpy's global generator
        expected = {}
        for class_index, cls in enumerate(sorted(NCALTECH101_COUNTS)):
            file_list = list(listed[cls])
            np.random.seed(class_index)
            np.random.shuffle(file_list)
            cut = int(len(file_list) * 0.9)
            expected.update({f"{cls}/{n}": "train" for n in file_list[:cut]})
            expected.update({f"{cls}/{n}": "test" for n in file_list[cut:]})
    finally:
        np.random.set_state(state)
    assert split == expected
    assert sum(v == "test" for v in split.values()) == 914  # the same counts, another test set than sorted names give
    assert {k for k, v in split.items() if v == "test"} != {k for k, v in imp_ncaltech101().items() if v == "test"}
    assert NCaltech101ReleasedSplit(root="unused", listing=str(path)).assignment == split
    assert imp_ncaltech101(_listing_in_another_order(tmp_path, ".bin")) == split  # .bin names stand for themselves


def test_listing_must_name_every_recording_once(tmp_path):
    path = _listing_in_another_order(tmp_path)
    lines = path.read_text().splitlines()
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines[:-1]) + "\n")  # the last class's last file left out
    with pytest.raises(ValueError, match=r"class 'BACKGROUND_Google': expected its 467 recordings once each, missing \['image_0001.bin'\]"):
        read_listing(bad)
    bad.write_text("\n".join(lines) + "\nanchor/image_0001.npz\n")
    with pytest.raises(ValueError, match=r"class 'anchor': .* repeated \['image_0001.bin'\]"):
        read_listing(bad)
    bad.write_text("anchor\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: expected <class>/<file>, got 'anchor'"):
        read_listing(bad)
    bad.write_text("anchor/image_0001.aedat\n")
    with pytest.raises(ValueError, match=r"expected a .bin recording or a SpikingJelly .npz frame file, got 'image_0001.aedat'"):
        read_listing(bad)


def test_listdir_listing_sorts_classes_and_keeps_each_folders_own_order(tmp_path):
    for cls in ("b_class", "a_class"):
        (tmp_path / cls).mkdir()
        for name in ("image_0002.npz", "image_0010.npz", "image_0001.npz"):
            (tmp_path / cls / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a class")
    import os

    assert listdir_listing(tmp_path) == [f"{c}/{n}" for c in ("a_class", "b_class") for n in os.listdir(tmp_path / c)]


def test_written_split_files_read_back(tmp_path):
    paths = write(tmp_path)
    assert sorted(p.name for p in paths) == sorted(RELEASED_SPLITS)
    assert read_split_file(tmp_path / "cifar10dvs_tet.txt") == tet_cifar10dvs()


def test_released_split_datamodules_expect_their_splits_counts():
    assert CIFAR10DVSReleasedSplit(split="tet", root="unused").expected_counts == {"train": 7000, "test": 3000}
    assert CIFAR10DVSReleasedSplit(split="imp", root="unused").expected_counts == {"train": 9000, "test": 1000}
    assert NCaltech101ReleasedSplit(root="unused").expected_counts == {"train": 7795, "test": 914}
    assert CIFAR10DVSReleasedSplit(split="tet_2024", root="unused").expected_counts == {"train": 9000, "test": 1000}
    with pytest.raises(ValueError, match=r"expected split in \['imp', 'imp_legacy', 'tet', 'tet_2024'\], got 'paper'"):
        CIFAR10DVSReleasedSplit(split="paper", root="unused")
    with pytest.raises(ValueError, match="give either split .* or split_file, not both"):
        NCaltech101ReleasedSplit(split="imp", split_file="mine.txt", root="unused")


@pytest.mark.parametrize("split", ["imp", "imp_legacy", "tet", "tet_2024"])
def test_released_split_datamodule_assigns_recordings_by_its_split(tmp_path, split):
    sums = write_synthetic_dataset("cifar10-dvs", tmp_path / "data", per_class=(1, 1), events_per_sample=50)
    dm = CIFAR10DVSReleasedSplit(split=split, root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                                 checksums=sums, allow_partial=True, download=False, progress=False)  # fmt: skip
    dm._extract_all()
    samples = [s for source in dm._list_sources() for s in source.samples]
    assert len(samples) == 20
    expected = CIFAR10DVSReleasedSplit.splits[split]()
    assert all(s.split == expected[s.key] for s in samples)
