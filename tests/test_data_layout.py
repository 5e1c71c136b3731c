"""The data package's layout (docs/datasets.md, "The package's layout"): what moved keeps its public names, the
former module names re-export the very same objects, and a transform pickled under its former module (as a
checkpoint's saved hyperparameters hold it) loads."""

import importlib
import importlib.util
import pickle

import pytest

import bsnn_lightning.data as data
from bsnn_lightning.data import datasets, sim, transforms
from bsnn_lightning.data.transforms import mixing, spatial

#: every name bsnn_lightning.data exported before the package was laid out in subpackages (the public API)
EXPORTED_BEFORE = (
    "CACHE_ENV_VAR", "EVENT_DTYPE", "N_DIGITS", "SPLIT_BY", "ArchiveError", "ArchiveSpec", "CIFAR10DVSDataModule",
    "Compose", "DVS128GestureDataModule", "DVSDataModule", "DatasetIncompleteError", "DatasetNotFoundError",
    "DigitEvents", "DigitEventsDataModule", "EventFileError", "FrameTransform", "IntervalConfig", "IntervalEvents",
    "IntervalEventsDataModule", "MixupCutmix", "NCaltech101DataModule", "NMNISTDataModule", "TonicDataModule",
    "RandomFlip", "RandomRoll", "RandomTranslate", "UnsafeArchiveError", "SaccadeConfig", "default_cache_dir",
    "digit_events_cache_path", "digit_rng", "digit_static_images", "digits_train_test_split", "dvs_events_from_frames",
    "events_from_arrays", "events_to_frames", "interval_rng", "load_digit_events", "load_digit_images",
    "load_interval_events", "random_flip", "random_shift", "read_aedat2_dvs128", "read_aedat31_polarity",
    "read_atis_bin", "read_gesture_labels", "saccade_offsets", "simulate_interval_events", "simulate_saccade_events",
    "static_image",
)  # fmt: skip

#: former module -> the module (or package) whose objects it re-exports
FORMER_MODULES = {
    "bsnn_lightning.data.augment": transforms,
    "bsnn_lightning.data.spatial_augment": spatial,
    "bsnn_lightning.data.mixing": mixing,
    "bsnn_lightning.data.dvs": datasets,
    "bsnn_lightning.data.released_datamodules": datasets,
}


def test_the_package_exports_what_it_exported_before():
    missing = sorted(set(EXPORTED_BEFORE) - set(data.__all__))
    assert not missing
    for name in EXPORTED_BEFORE:
        assert getattr(data, name) is not None


@pytest.mark.parametrize("former", sorted(FORMER_MODULES))
def test_a_former_module_name_reexports_the_same_objects(former):
    module = importlib.import_module(former)
    home = FORMER_MODULES[former]
    names = [name for name in module.__all__ if name != "default_num_workers"]
    assert names, former
    for name in names:
        assert getattr(module, name) is getattr(home, name), f"{former}.{name}"


def test_the_embedded_datasets_use_the_simulator_through_its_public_api():
    assert data.SaccadeConfig is sim.SaccadeConfig
    assert data.dvs_events_from_frames is sim.dvs_events_from_frames
    assert issubclass(data.IntervalConfig, sim.PixelSettings) and issubclass(data.SaccadeConfig, sim.PixelSettings)


@pytest.mark.parametrize(
    ("make", "former"),
    [
        (lambda: transforms.RandomFlip(0.25), "bsnn_lightning.data.augment"),
        (lambda: transforms.RandomRoll(3), "bsnn_lightning.data.augment"),
        (lambda: spatial.SpikFormerDVSAugment(max_degrees=20.0), "bsnn_lightning.data.spatial_augment"),
        (lambda: mixing.MixupCutmix(mixup_alpha=0.5, partner="permutation"), "bsnn_lightning.data.mixing"),
    ],
)
def test_an_object_pickled_under_its_former_module_loads(monkeypatch, make, former):
    obj = make()
    cls = type(obj)
    monkeypatch.setattr(cls, "__module__", former)  # pickle it as a checkpoint written before the move did
    old_bytes = pickle.dumps(obj)
    monkeypatch.undo()
    assert former.encode() in old_bytes
    loaded = pickle.loads(old_bytes)
    assert type(loaded) is cls and repr(loaded) == repr(obj)


def test_the_archive_writers_are_not_in_the_package():
    assert importlib.util.find_spec("bsnn_lightning.data.synthetic") is None
