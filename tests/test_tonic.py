"""TonicDataModule (bsnn_lightning/data/tonic_datasets.py) on small data in Tonic's own classes and formats:
Tonic's ``NMNIST`` class over N-MNIST ``.bin`` files, and a user's own ``tonic.Dataset`` holding events in
memory. Frames equal the package's own path (its ATIS reader and events_to_frames), the cache is built once,
splits and labels are the datasets', augmentation and mixing apply in a real Trainer."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

import bsnn_lightning as bl
from bsnn_lightning.data import MixupCutmix
from bsnn_lightning.data.transforms import RandomFlip
from bsnn_lightning.data.events import events_to_frames
from bsnn_lightning.data.formats import read_atis_bin
from bsnn_lightning.data.tonic_datasets import TonicDataModule
from bsnn_lightning.models import SpikingConvNet

tonic = pytest.importorskip("tonic")

T = 4
TRAIN, TEST = {0: 3, 1: 2, 7: 2}, {0: 1, 1: 1, 7: 1}  # recordings per label


def write_atis(path: Path, events: np.ndarray) -> None:
    """N-MNIST's ATIS .bin: 5 bytes per event, big-endian x, y, polarity bit 7 + a 23-bit timestamp (µs)."""
    raw = np.zeros((len(events), 5), np.uint8)
    raw[:, 0], raw[:, 1] = events["x"], events["y"]
    raw[:, 2] = (events["p"].astype(np.uint32) << 7) | ((events["t"] >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (events["t"] >> 8) & 0xFF, events["t"] & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


def random_events(rng, n: int, size=(34, 34)) -> np.ndarray:
    events = np.zeros(n, [("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    events["x"], events["y"] = rng.integers(0, size[0], n), rng.integers(0, size[1], n)
    events["t"], events["p"] = np.sort(rng.integers(0, 300_000, n)), rng.integers(0, 2, n)
    return events


class SmallNMNIST(tonic.datasets.NMNIST):
    """Tonic's NMNIST over a handful of recordings (its own check wants all 70,000); Tonic keeps a dataset under
    save_to/<class name>/."""

    def _check_exists(self) -> bool:
        return True


@pytest.fixture
def nmnist_root(tmp_path):
    rng = np.random.default_rng(0)
    for folder, counts in (("Train", TRAIN), ("Test", TEST)):
        for label, count in counts.items():
            for k in range(count):
                write_atis(tmp_path / "SmallNMNIST" / folder / str(label) / f"{k:05d}.bin", random_events(rng, int(rng.integers(50, 400))))
    return tmp_path


def datamodule(root, tmp_path, **kwargs):
    options = dict(time_steps=T, batch_size=4, num_workers=0, cache_dir=str(tmp_path / "cache"), progress=False)
    options.update(kwargs)
    return TonicDataModule(SmallNMNIST(str(root), train=True), SmallNMNIST(str(root), train=False), name="nmnist", **options)


def test_tonic_nmnist_frames_splits_and_labels_are_the_packages_own(nmnist_root, tmp_path):
    dm = datamodule(nmnist_root, tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 10 and dm.input_shape == (T, 2, 34, 34)
    for split, dataset, counts in (("train", dm.train_set, TRAIN), ("test", dm.test_set, TEST)):
        assert len(dataset) == sum(counts.values())
        tonic_set = dm.datasets[split]
        assert dataset.labels.tolist() == tonic_set.targets
        for i in range(len(dataset)):
            x, y = dataset[i]
            # the package's own reader and binning, on the same file: the same frames
            ours = events_to_frames(read_atis_bin(Path(tonic_set.data[i])), (34, 34), T, "number")
            assert np.array_equal(x.numpy(), ours) and x.sum() > 0
            assert int(y) == tonic_set.targets[i]


def test_the_cache_is_built_once_and_read_after(nmnist_root, tmp_path):
    dm = datamodule(nmnist_root, tmp_path)
    dm.prepare_data()
    reads = []

    def counting_getitem(self, index):
        reads.append(index)
        return SmallNMNIST.__getitem__(self, index)

    Counting = type("SmallNMNIST", (SmallNMNIST,), {"__getitem__": counting_getitem})  # Tonic's folder: the class name

    again = TonicDataModule(Counting(str(nmnist_root), train=True), Counting(str(nmnist_root), train=False), name="nmnist",
                            time_steps=T, batch_size=4, num_workers=0, cache_dir=str(tmp_path / "cache"), progress=False)
    again.prepare_data()
    again.setup("fit")
    assert reads == [] and again.cache_path == (dm.setup("fit") or dm.cache_path)
    # another T is another cache
    other = datamodule(nmnist_root, tmp_path, time_steps=T + 1)
    other.prepare_data()
    other.setup("fit")
    assert other.cache_path != dm.cache_path and other.train_set[0][0].shape[0] == T + 1


def test_augmentation_and_mixing_apply_in_a_trainer(nmnist_root, tmp_path):
    seen = {}

    class Peek(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault("batch", batch)

    dm = datamodule(nmnist_root, tmp_path, augment=[RandomFlip(0.5)], mix=MixupCutmix(mixup_alpha=0.5, cutmix_alpha=1.0))
    net = SpikingConvNet(in_channels=2, num_classes=10, channels=(4,), hidden=8, input_size=(34, 34))
    trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu", devices=1, callbacks=[Peek()], limit_val_batches=0)
    trainer.fit(bl.SpikingClassifier(net, num_classes=10), datamodule=dm)
    x, y = seen["batch"]
    assert x.dtype == torch.float32 and x.shape == (4, T, 2, 34, 34)
    assert y.shape == (4, 10) and torch.allclose(y.sum(1), torch.ones(4))  # mixed soft targets


class InMemory(tonic.Dataset):
    """A user's own Tonic dataset: events made in memory, no files."""

    sensor_size = (16, 12, 2)
    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    classes = ["a", "b", "c"]

    def __init__(self, seed: int, n: int, transform=None):
        super().__init__(save_to="", transform=transform)
        rng = np.random.default_rng(seed)
        self.events = [random_events(rng, 100, self.sensor_size[:2]) for _ in range(n)]
        self.targets = [i % 3 for i in range(n)]

    def __getitem__(self, index):
        events = self.events[index]
        if self.transform is not None:
            events = self.transform(events)
        return events, self.targets[index]

    def __len__(self):
        return len(self.events)


def test_a_users_own_tonic_dataset_with_a_fingerprint_and_an_event_transform(tmp_path):
    denoise = tonic.transforms.Denoise(filter_time=10_000)
    dm = TonicDataModule(InMemory(0, 6, denoise), InMemory(1, 3, denoise), name="mine", fingerprint="v1", time_steps=T,
                         batch_size=2, num_workers=0, cache_dir=str(tmp_path), split_by="time", resize=(6, 8), progress=False)
    dm.prepare_data()
    dm.setup("fit")
    x, y = dm.train_set[1]
    expected = events_to_frames(denoise(dm.datasets["train"].events[1]), (16, 12), T, "time", (6, 8))
    assert x.shape == (T, 2, 6, 8) and np.allclose(x.numpy(), expected) and int(y) == 1


def test_refused_with_the_reason(nmnist_root, tmp_path):
    with pytest.raises(ValueError, match="give fingerprint="):
        TonicDataModule(InMemory(0, 3), InMemory(1, 3), cache_dir=str(tmp_path))
    small = SmallNMNIST(str(nmnist_root), train=False)
    with pytest.raises(ValueError, match="one sensor_size"):
        TonicDataModule(SmallNMNIST(str(nmnist_root), train=True), InMemory(1, 3), fingerprint="x", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="takes no 'root'"):
        TonicDataModule(small, small, root=str(tmp_path))
    framed = SmallNMNIST(str(nmnist_root), train=True, transform=tonic.transforms.ToFrame(sensor_size=(34, 34, 2), n_time_bins=T))
    dm = TonicDataModule(framed, small, time_steps=T, num_workers=0, cache_dir=str(tmp_path / "c"), progress=False)
    with pytest.raises(TypeError, match="ToFrame"):
        dm.prepare_data()
