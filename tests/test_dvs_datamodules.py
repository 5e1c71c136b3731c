"""The four DVS DataModules on archives written here in the real layouts (no network, no mocks).

Covers: archives found / downloaded (from file:// and dead URLs) / refused (HTML, empty, wrong MD5,
path traversal); extraction; listing and the shipped splits; the frame cache (same frames as
events_to_frames, keyed by every parameter, atomic, an interrupted build never read as complete,
resumed); setup that only reads; genuine N-MNIST / N-Caltech101 recordings and a genuine DVS128
Gesture labels file through the DataModules' code path, checked against MANIFEST.md.
"""

import hashlib
import io
import json
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bsnn_lightning.data import (
    ArchiveError,
    CIFAR10DVSDataModule,
    DatasetIncompleteError,
    DatasetNotFoundError,
    DVS128GestureDataModule,
    EventFileError,
    NCaltech101DataModule,
    NMNISTDataModule,
    RandomFlip,
    UnsafeArchiveError,
    events_to_frames,
)
from bsnn_lightning.data.formats import read_aedat2_dvs128, read_aedat31_polarity
from bsnn_lightning.data.splits import (
    NCALTECH101_COUNTS,
    expected_splits,
    read_split_file,
    shipped_split,
    write_split_file,
)
from archive_writers import atis_bytes, random_events, write_synthetic_dataset  # tests/archive_writers.py

from test_dvs_formats import SAMPLES, manifest_stats, needs_samples


def make(cls, root, cache, checksums, **kwargs):
    options = dict(
        root=str(root), cache_dir=str(cache), checksums=checksums, allow_partial=True, download=False,
        progress=False, num_workers=0, time_steps=4, batch_size=4,
    )  # fmt: skip
    options.update(kwargs)
    return cls(**options)


def snapshot(*folders) -> dict:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
        for folder in folders
        if Path(folder).exists()
        for p in sorted(Path(folder).rglob("*"))
    }


def write_zip(path: Path, members: dict) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar") / "CIFAR10-DVS"
    return root, write_synthetic_dataset("cifar10-dvs", root, per_class=(2, 1), events_per_sample=800, seed=3)


# ------------------------------------------------------------------------------------------
# End to end, frames, labels, splits
# ------------------------------------------------------------------------------------------


def test_cifar10dvs_frames_are_events_to_frames_of_the_recordings(cifar, tmp_path):
    root, sums = cifar
    dm = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums)
    assert dm.input_shape == (4, 2, 128, 128) and dm.num_classes == 10
    dm.prepare_data()
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.test_set)) == (20, 10)
    split = shipped_split("cifar10dvs")
    assert all(split[k] == "train" for k in dm.train_set.keys) and all(split[k] == "test" for k in dm.test_set.keys)
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (4, 4, 2, 128, 128) and y.dtype == torch.int64
    for i in range(4):
        key = dm.test_set.keys[i]
        cls, name = key.split("/")
        path = next((root / "extracted" / cls).rglob(name))
        expected = events_to_frames(read_aedat2_dvs128(path), (128, 128), 4, "number")
        np.testing.assert_array_equal(x[i].numpy(), expected)
        assert y[i].item() == CIFAR10DVSDataModule.classes.index(cls)
    xf, yf = dm.on_after_batch_transfer((x, y), 0)  # what the model receives: float32, same values
    assert xf.dtype == torch.float32 and torch.equal(xf, x.float()) and torch.equal(yf, y)
    assert len(next(iter(dm.val_dataloader()))[1]) == 4 and len(next(iter(dm.predict_dataloader()))) == 2


def test_augment_transforms_training_samples_only(cifar, tmp_path):
    root, sums = cifar
    plain = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums)
    flipped = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums, augment=[RandomFlip(1.0)])
    for dm in (plain, flipped):
        dm.prepare_data()
        dm.setup("fit")
    assert plain.train_set.augment is None and repr(flipped.train_set.augment) == "Compose([RandomFlip(p=1.0)])"
    assert torch.equal(flipped.train_set[0][0], plain.train_set[0][0].flip(-1))
    assert torch.equal(flipped.test_set[0][0], plain.test_set[0][0])  # test samples are never augmented


def test_resized_frames_and_upright_coordinates(cifar, tmp_path):
    root, sums = cifar
    dm = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums, resize=(48, 40), split_by="time", coordinates="upright")
    dm.prepare_data()
    dm.setup()
    x, _ = dm.test_set[0]
    cls, name = dm.test_set.keys[0].split("/")
    events = read_aedat2_dvs128(next((root / "extracted" / cls).rglob(name)), "upright")
    assert x.dtype == torch.float32 and x.shape == (4, 2, 48, 40)
    np.testing.assert_array_equal(x.numpy(), events_to_frames(events, (128, 128), 4, "time", (48, 40)))
    assert abs(float(x.sum()) - len(events)) < 1e-2  # area resampling keeps every event


def test_parallel_build_writes_the_same_cache(cifar, tmp_path):
    root, sums = cifar
    serial = make(CIFAR10DVSDataModule, root, tmp_path / "a", sums)
    parallel = make(CIFAR10DVSDataModule, root, tmp_path / "b", sums, num_workers=2)
    for dm in (serial, parallel):
        dm.prepare_data()
        dm.setup()
    assert serial.cache_path.name == parallel.cache_path.name
    for a, b in zip(sorted((serial.cache_path / "frames").glob("*.npy")), sorted((parallel.cache_path / "frames").glob("*.npy"))):
        assert a.read_bytes() == b.read_bytes()


@needs_samples
def test_genuine_nmnist_recordings_through_the_datamodule(tmp_path):
    stats = manifest_stats()
    a, b = (SAMPLES / "nmnist_sample_a.bin").read_bytes(), (SAMPLES / "nmnist_sample_b.bin").read_bytes()
    root = tmp_path / "N-MNIST"
    root.mkdir()
    sums = {
        "Train.zip": write_zip(root / "Train.zip", {"Train/3/00001.bin": a, "Train/7/00002.bin": b}),
        "Test.zip": write_zip(root / "Test.zip", {"Test/3/00001.bin": a}),
    }
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums, split_by="time", time_steps=3)
    dm.prepare_data()
    dm.setup()
    manifest = json.loads((dm.cache_path / "manifest.json").read_text())
    by_key = {m["key"]: m for m in manifest["samples"]}
    expected = {"train/3/00001.bin": "nmnist_sample_a.bin", "train/7/00002.bin": "nmnist_sample_b.bin", "test/3/00001.bin": "nmnist_sample_a.bin"}
    assert set(by_key) == set(expected)
    reader = dm._reader()  # the DataModule's own parsing path
    for key, name in expected.items():
        s = stats[name]
        split, digit, file = key.split("/")
        events = reader(root / "extracted" / split.title() / split.title() / digit / file)
        assert by_key[key]["n_events"] == len(events) == s["events"] and by_key[key]["label"] == int(digit)
        assert (events["x"].min(), events["x"].max(), events["y"].min(), events["y"].max()) == (*s["x"], *s["y"])
        assert (events["t"].min(), events["t"].max()) == s["t"]
    x, y = dm.test_set[0]
    assert y.item() == 3 and x.shape == (3, 2, 34, 34)
    s = stats["nmnist_sample_a.bin"]
    assert (int(x[:, 1].sum()), int(x[:, 0].sum())) == (s["on"], s["off"])  # channel 1 = ON, 0 = OFF


@needs_samples
def test_genuine_ncaltech101_recording_through_the_datamodule(tmp_path):
    s = manifest_stats()["ncaltech101_faces_easy_0001.bin"]
    data = (SAMPLES / "ncaltech101_faces_easy_0001.bin").read_bytes()
    split = shipped_split("ncaltech101")
    test_name = next(k for k, v in split.items() if k.startswith("Faces_easy/") and v == "test")
    assert split["Faces_easy/image_0001.bin"] == "train"
    root = tmp_path / "N-Caltech101"
    root.mkdir()
    members = {"Caltech101/Faces_easy/image_0001.bin": data, f"Caltech101/{test_name}": data}
    sums = {"Caltech101.zip": write_zip(root / "Caltech101.zip", members)}
    dm = make(NCaltech101DataModule, root, tmp_path / "cache", sums, resize=(64, 64))
    dm.prepare_data()
    dm.setup()
    events = dm._reader()(root / "extracted" / "Caltech101" / "Caltech101" / "Faces_easy" / "image_0001.bin")
    assert len(events) == s["events"] and (events["t"].min(), events["t"].max()) == s["t"]
    assert (events["x"].min(), events["x"].max(), events["y"].min(), events["y"].max()) == (*s["x"], *s["y"])
    x, y = dm.train_set[0]
    assert y.item() == NCaltech101DataModule.classes.index("Faces_easy") == 1  # uppercase sorts first
    assert x.shape == (4, 2, 64, 64)
    np.testing.assert_allclose(float(x[:, 1].sum()), s["on"], rtol=1e-5)
    np.testing.assert_allclose(float(x[:, 0].sum()), s["off"], rtol=1e-5)
    np.testing.assert_array_equal(x.numpy(), events_to_frames(events, (240, 180), 4, "number", (64, 64)))


@needs_samples
def test_gesture_samples_are_cut_by_the_genuine_labels_file(tmp_path):
    root = tmp_path / "DVS128Gesture"
    labels = SAMPLES / "dvsgesture_user01_natural_labels.csv"
    sums = write_synthetic_dataset("dvs128-gesture", root, events_per_sample=300, gesture_labels={"user01_natural": labels})
    dm = make(DVS128GestureDataModule, root, tmp_path / "cache", sums, resize=(32, 32))
    dm.prepare_data()
    dm.setup()
    assert dm.train_set.keys == [f"user01_natural#{i}" for i in range(12)]
    assert dm.train_set.labels.tolist() == [0, 1, 2, 4, 3, 5, 6, 7, 7, 8, 9, 10]  # the file's classes - 1
    assert len(dm.test_set) == 11
    trial = root / "extracted" / "DvsGesture" / "DvsGesture"
    events = read_aedat31_polarity(trial / "user01_natural.aedat")
    windows = [tuple(map(int, line.split(",")[1:])) for line in labels.read_text().split()[1:]]
    manifest = json.loads((dm.cache_path / "manifest.json").read_text())
    for meta, (start, end) in zip(manifest["samples"][:12], windows):
        assert meta["n_events"] == int(((events["t"] >= start) & (events["t"] < end)).sum()) == 300


# ------------------------------------------------------------------------------------------
# prepare_data / setup contract
# ------------------------------------------------------------------------------------------


def test_setup_before_prepare_raises_and_writes_nothing(cifar, tmp_path):
    root, sums = cifar
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns("extracted"))
    before = snapshot(fresh)
    dm = make(CIFAR10DVSDataModule, fresh, tmp_path / "cache", sums)
    with pytest.raises(FileNotFoundError, match=r"expected the archives \['airplane.zip', .*\] extracted under .* run prepare_data\(\) first"):
        dm.setup("fit")
    assert snapshot(fresh) == before and not (tmp_path / "cache").exists()


def test_setup_only_reads_and_a_second_prepare_changes_nothing(cifar, tmp_path):
    root, sums = cifar
    first = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums)
    first.prepare_data()
    before = snapshot(root, tmp_path / "cache")
    again = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums)
    again.setup("fit")
    again.setup("test")
    assert snapshot(root, tmp_path / "cache") == before
    again.prepare_data()  # archives and cache already there: used as they are
    assert snapshot(root, tmp_path / "cache") == before


def test_cache_folder_is_keyed_by_every_parameter(cifar, tmp_path):
    root, sums = cifar
    base = dict(time_steps=4, split_by="number", resize=None, coordinates="spikingjelly")
    variants = [{}, {"time_steps": 5}, {"split_by": "time"}, {"resize": (64, 64)}, {"coordinates": "upright"}]
    folders = []
    for change in variants:
        dm = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums, **{**base, **change})
        folders.append(dm._cache(dm._checked_sources())[0])
    assert len(set(folders)) == len(variants)
    assert folders[3].name.startswith("cifar10-dvs-v1_T4_number_64x64_coords-spikingjelly_")
    other = tmp_path / "other"  # same names, one recording of another size: another fingerprint
    shutil.copytree(root / "extracted", other / "extracted")
    victim = next((other / "extracted" / "bird").rglob("*.aedat"))
    victim.write_bytes(victim.read_bytes() + b"\0" * 8)
    dm = make(CIFAR10DVSDataModule, other, tmp_path / "cache", sums, **base)
    assert dm._cache(dm._checked_sources())[0] != folders[0]


def _nmnist_with(tmp_path, third: bytes):
    rng = np.random.default_rng(0)
    good = [atis_bytes(random_events(rng, 300, (34, 34), 300_000)) for _ in range(3)]
    root = tmp_path / "N-MNIST"
    root.mkdir(exist_ok=True)
    sums = {
        "Train.zip": write_zip(root / "Train.zip", {"Train/0/00001.bin": good[0], "Train/1/00002.bin": good[1], "Train/2/00003.bin": third}),
        "Test.zip": write_zip(root / "Test.zip", {"Test/0/00004.bin": good[2]}),
    }
    return root, sums, good


def test_interrupted_cache_build_is_never_complete_and_is_resumed(tmp_path):
    good = atis_bytes(random_events(np.random.default_rng(9), 300, (34, 34), 300_000))
    corrupt = bytearray(good)
    corrupt[5 * 120] = 40  # event 120 at x = 40: outside the 34 x 34 sensor, same file size
    root, sums, _ = _nmnist_with(tmp_path, bytes(corrupt))
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums)
    bad_file = root / "extracted" / "Train" / "Train" / "2" / "00003.bin"
    with pytest.raises(EventFileError, match=rf"{re.escape(str(bad_file))}: at byte offset 600: event at \(x=40"):
        dm.prepare_data()
    folder = dm._cache(dm._checked_sources())[0]
    assert not (folder / "manifest.json").exists()
    (folder / "frames" / "000003.npy.abcd.tmp").write_bytes(b"half a file")  # what a killed writer leaves
    with pytest.raises(FileNotFoundError, match=r"expected a complete frame cache .* run the DataModule's prepare_data"):
        make(NMNISTDataModule, root, tmp_path / "cache", sums).setup()
    finished = {p.name: p.stat().st_ino for p in (folder / "frames").glob("00000[01].npy")}
    assert len(finished) == 2  # the two sources before the corrupt one were completed
    bad_file.write_bytes(good)  # repaired in place (same size, same fingerprint)
    dm.prepare_data()
    dm.setup()
    assert {p.name: p.stat().st_ino for p in (folder / "frames").glob("00000[01].npy")} == finished  # reused
    assert len(dm.train_set) == 3 and len(dm.test_set) == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_an_empty_event_file_is_refused_naming_it_not_made_an_all_zero_sample(tmp_path, workers):
    import multiprocessing

    root, sums, _ = _nmnist_with(tmp_path, b"")  # a 0-byte recording (an interrupted copy, a failed extraction)
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums, num_workers=workers)
    empty = root / "extracted" / "Train" / "Train" / "2" / "00003.bin"
    with pytest.raises(EventFileError, match=rf"^{re.escape(str(empty))}: at byte offset 0: no events \(0 bytes\)"):
        dm.prepare_data()  # with workers: the error comes back whole from the worker process ...
    assert not multiprocessing.active_children()  # ... and the workers are gone, not left waiting for work
    assert not (dm._cache(dm._checked_sources())[0] / "manifest.json").exists()


def test_a_truncated_frame_file_in_a_finished_cache_is_named_then_rebuilt(tmp_path):
    root, sums, _ = _nmnist_with(tmp_path, atis_bytes(random_events(np.random.default_rng(2), 80, (34, 34), 9000)))
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums)
    dm.prepare_data()
    dm.setup()
    frames = [dm.train_set[i][0].clone() for i in range(len(dm.train_set))]
    victim = Path(dm.train_set.files[1])
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) // 2])  # a disk that filled up, a copy cut short
    with pytest.raises(RuntimeError, match=rf"wrong size .* e\.g\. {re.escape(str(victim))}: expected {len(whole)} bytes, "
                       rf"found {len(whole) // 2}; run the DataModule's prepare_data\(\) to rebuild them"):
        make(NMNISTDataModule, root, tmp_path / "cache", sums).setup()
    with pytest.warns(RuntimeWarning, match="rebuilding the frame cache"):
        dm.prepare_data()  # rebuilds the truncated file (only its source)
    again = make(NMNISTDataModule, root, tmp_path / "cache", sums)
    again.setup()
    assert all(torch.equal(again.train_set[i][0], frames[i]) for i in range(len(frames)))


def test_an_unreadable_frame_file_is_named_when_loaded(tmp_path):
    root, sums, _ = _nmnist_with(tmp_path, atis_bytes(random_events(np.random.default_rng(3), 80, (34, 34), 9000)))
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums)
    dm.prepare_data()
    dm.setup()
    victim = Path(dm.train_set.files[0])
    victim.write_bytes(b"\0" * victim.stat().st_size)  # same size, no numpy header: found only when read
    with pytest.raises(RuntimeError, match=rf"unreadable frame-cache file {re.escape(str(victim))} \(ValueError: .*\); "
                       r"delete it and run the DataModule's prepare_data\(\) to rebuild it"):
        dm.train_set[0]


def test_cache_with_other_parameters_is_refused_then_rebuilt(tmp_path):
    root, sums, _ = _nmnist_with(tmp_path, atis_bytes(random_events(np.random.default_rng(1), 50, (34, 34), 1000)))
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums)
    dm.prepare_data()
    manifest_path = dm._cache(dm._checked_sources())[0] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["params"]["time_steps"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(RuntimeError, match=r"holds other parameters: expected .*'time_steps': 4"):
        make(NMNISTDataModule, root, tmp_path / "cache", sums).setup()
    with pytest.warns(RuntimeWarning, match="rebuilding the frame cache"):
        dm.prepare_data()
    make(NMNISTDataModule, root, tmp_path / "cache", sums).setup()


# ------------------------------------------------------------------------------------------
# Archives: found, downloaded, refused
# ------------------------------------------------------------------------------------------


def test_missing_dataset_folder_says_what_to_download_and_where(tmp_path):
    root = tmp_path / "nowhere" / "N-MNIST"
    dm = NMNISTDataModule(root=str(root), cache_dir=str(tmp_path / "cache"), download=False, progress=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert f"N-MNIST: 2 archive(s) missing from {root}" in message
    for name, md5 in (("Train.zip", "20959b8e626244a1b502305a9e6e2031"), ("Test.zip", "69ca8762b2fe404d9b9bad1103e97832")):
        assert f"put it, under this name, at {root / name} (MD5 {md5})" in message
    assert "get it by hand from https://www.garrickorchard.com/datasets/n-mnist" in message
    assert "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/" in message
    assert not root.exists()


def test_gesture_archive_has_no_download_link_and_says_where_to_get_it(tmp_path):
    dm = DVS128GestureDataModule(root=str(tmp_path / "g"), cache_dir=str(tmp_path / "c"), progress=False)
    with pytest.raises(DatasetNotFoundError, match=r"DvsGesture.tar.gz: not found \(no direct download link exists\)\n\s+get it by hand from https://ibm.ent.box.com/"):
        dm.prepare_data()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", r"it is empty \(0 bytes\)"),
        (b"\n  <!DOCTYPE html><html><body>Just a moment... checking your browser</body></html>", r"it is an HTML page"),
        (b"PK\x03\x04 not really a zip but starts like one", r"its MD5 is [0-9a-f]{32}, expected 69ca8762b2fe404d9b9bad1103e97832"),
        (b"\x1f\x8b\x08 gzip", r"it does not start like a .zip file \(first bytes b'\\x1f\\x8b\\x08 gzip', size 8 bytes\)"),
    ],
)
def test_a_file_that_is_not_the_archive_is_refused_with_where_to_get_it(tmp_path, content, problem):
    root, sums, _ = _nmnist_with(tmp_path, atis_bytes(random_events(np.random.default_rng(1), 10, (34, 34), 100)))
    (root / "Test.zip").write_bytes(content)
    dm = make(NMNISTDataModule, root, tmp_path / "cache", {"Train.zip": sums["Train.zip"]})  # Test.zip: published MD5
    with pytest.raises(ArchiveError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert message.startswith(f"{root / 'Test.zip'} is not the Test.zip archive: ")
    assert re.search(problem, message), message
    assert f"get Test.zip by hand from https://www.garrickorchard.com/datasets/n-mnist" in message
    assert f"put it at {root / 'Test.zip'}" in message


def test_failed_downloads_leave_nothing_and_explain(tmp_path):
    root, sums, _ = _nmnist_with(tmp_path, atis_bytes(random_events(np.random.default_rng(1), 10, (34, 34), 100)))
    (root / "Test.zip").unlink()
    html = tmp_path / "challenge.html"
    html.write_bytes(b"<html><head><title>Verify you are human</title></head></html>")
    for url, reason in (
        ("http://127.0.0.1:9/Test.zip", r"download from http://127.0.0.1:9/Test.zip failed: \[Errno 111\] Connection refused"),
        (html.as_uri(), r"failed: it is an HTML page"),
    ):
        dm = make(NMNISTDataModule, root, tmp_path / "cache", sums, download=True, urls={"Test.zip": url})
        with pytest.raises(DatasetNotFoundError, match=reason) as info:
            dm.prepare_data()
        assert f"put it, under this name, at {root / 'Test.zip'}" in str(info.value)
        assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["Train.zip"]  # no .part, no Test.zip


def test_download_from_a_working_link_then_extract(tmp_path):
    mirror = tmp_path / "mirror"
    sums = write_synthetic_dataset("n-mnist", mirror, per_class=(1, 1), classes=2, events_per_sample=50)
    root = tmp_path / "N-MNIST"
    (root).mkdir()
    (mirror / "Train.zip").rename(root / "train.zip")  # Tonic's name for it: used as it is
    dm = make(
        NMNISTDataModule, root, tmp_path / "cache", sums, download=True, allow_partial=True,
        urls={"Test.zip": (mirror / "Test.zip").as_uri()},
    )  # fmt: skip
    dm.prepare_data()
    dm.setup()
    assert (root / "Test.zip").read_bytes() == (mirror / "Test.zip").read_bytes()
    assert (len(dm.train_set), len(dm.test_set)) == (2, 2)


def test_archive_member_escaping_the_target_folder_is_refused(tmp_path):
    root = tmp_path / "N-MNIST"
    root.mkdir()
    payload = atis_bytes(random_events(np.random.default_rng(0), 5, (34, 34), 100))
    sums = {
        "Train.zip": write_zip(root / "Train.zip", {"Train/0/00001.bin": payload, "../../evil.bin": payload}),
        "Test.zip": write_zip(root / "Test.zip", {"Test/0/00002.bin": payload}),
    }
    dm = make(NMNISTDataModule, root, tmp_path / "cache", sums)
    with pytest.raises(UnsafeArchiveError, match=r"refusing to extract member '../../evil.bin' of archive .*Train.zip: its path would land outside the target folder"):
        dm.prepare_data()
    assert not list(tmp_path.rglob("evil.bin"))
    assert not (root / "extracted" / "Train").exists() and not list((root / "extracted").glob("Train.tmp-*"))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_unsafe_tar_members_are_refused(tmp_path, kind):
    root = tmp_path / "DVS128Gesture"
    root.mkdir()
    archive = root / "DvsGesture.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("DvsGesture/trials_to_train.txt")
        info.size = 0
        tf.addfile(info, io.BytesIO(b""))
        if kind == "symlink":
            evil = tarfile.TarInfo("DvsGesture/link")
            evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(evil)
        else:
            evil = tarfile.TarInfo("../outside.txt" if kind == "dotdot" else "/tmp/outside.txt")
            evil.size = 3
            tf.addfile(evil, io.BytesIO(b"bad"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    dm = make(DVS128GestureDataModule, root, tmp_path / "cache", {"DvsGesture.tar.gz": md5})
    with pytest.raises(UnsafeArchiveError, match=r"refusing to extract member .* of archive .*DvsGesture.tar.gz"):
        dm.prepare_data()
    assert not (tmp_path / "outside.txt").exists() and not (root / "extracted" / "DvsGesture").exists()


# ------------------------------------------------------------------------------------------
# Splits and completeness
# ------------------------------------------------------------------------------------------


def test_shipped_split_files_follow_the_documented_rule():
    for dataset, expected in expected_splits().items():
        assert shipped_split(dataset) == expected
    cifar = shipped_split("cifar10dvs")
    assert len(cifar) == 10_000 and sum(v == "test" for v in cifar.values()) == 1_000
    for cls in ("airplane", "truck"):
        test = sorted(int(k.split("_")[-1][:-6]) for k, v in cifar.items() if k.startswith(cls + "/") and v == "test")
        assert test == [91, 92, 93, 94, 95, 96, 97, 98, 99] + list(range(909, 1000))  # the last 100 in string order
    caltech = shipped_split("ncaltech101")
    assert len(caltech) == sum(NCALTECH101_COUNTS.values()) == 8709 and len(NCALTECH101_COUNTS) == 101
    assert sum(v == "test" for v in caltech.values()) == 823
    skate = [v for k, v in sorted(caltech.items()) if k.startswith("inline_skate/")]  # 31 recordings: ceil(27.9)
    assert skate == ["train"] * 28 + ["test"] * 3


def test_incomplete_dataset_is_an_error_unless_allowed(cifar, tmp_path):
    root, sums = cifar
    dm = make(CIFAR10DVSDataModule, root, tmp_path / "cache", sums, allow_partial=False)
    with pytest.raises(DatasetIncompleteError, match=r"found 20 train / 10 test samples .* expected 9000 / 1000.*allow_partial=True"):
        dm.prepare_data()


def test_recording_missing_from_the_split_is_an_error_and_a_split_file_fixes_it(cifar, tmp_path):
    root, sums = cifar
    other = tmp_path / "other"
    shutil.copytree(root / "extracted", other / "extracted")
    extra = next((other / "extracted" / "cat").rglob("*.aedat"))
    shutil.copy(extra, extra.with_name("cifar10_cat_1000.aedat"))
    dm = make(CIFAR10DVSDataModule, other, tmp_path / "cache", sums)
    with pytest.raises(DatasetIncompleteError, match=r"'cat/cifar10_cat_1000.aedat'\) is not in the split file shipped .* Pass split_file="):
        dm.prepare_data()
    split = dict(shipped_split("cifar10dvs"), **{"cat/cifar10_cat_1000.aedat": "test"})
    write_split_file(tmp_path / "mine.txt", split, "my split")
    assert read_split_file(tmp_path / "mine.txt") == split
    dm = make(CIFAR10DVSDataModule, other, tmp_path / "cache", sums, split_file=str(tmp_path / "mine.txt"))
    dm.prepare_data()
    dm.setup()
    assert "cat/cifar10_cat_1000.aedat" in dm.test_set.keys


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(split_by="count"), ValueError, "expected split_by in ('time', 'number'), got 'count'"),
        (dict(resize=(48,)), ValueError, "expected resize = (height, width) as two positive ints or None, got (48,)"),
        (dict(augment=RandomFlip(0.5)), TypeError, "expected augment to be a list of FrameTransform objects (e.g. [RandomFlip(0.5), RandomRoll(5)]), got RandomFlip(p=0.5)"),
        (dict(augment=[RandomFlip(0.5), "roll"]), TypeError, "expected augment to be a list of FrameTransform objects"),
        (dict(mix={"mixup_alpha": 0.8}), TypeError, "expected mix to be a MixupCutmix or None, got {'mixup_alpha': 0.8}"),
        (dict(coordinates="jaer"), ValueError, "expected coordinates in ('spikingjelly', 'upright'), got 'jaer'"),
        (dict(time_steps=0), ValueError, "expected time_steps >= 1, got 0"),
        (dict(num_workers=-1), ValueError, "expected num_workers >= 0, got -1"),
        (dict(num_workers=1.5), TypeError, "expected num_workers to be an int, got 1.5"),
        (dict(checksums={"airplane.ZIP": None}), ValueError, "expected checksums keyed by CIFAR10-DVS's archive names"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        CIFAR10DVSDataModule(**kwargs)
