"""The DVS pixel model, the saccade simulator, the digit cache and split, and the DataModule."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bsnn_lightning.data import (
    CACHE_ENV_VAR,
    EVENT_DTYPE,
    DigitEventsDataModule,
    SaccadeConfig,
    default_cache_dir,
    digit_events_cache_path,
    digit_rng,
    digit_static_images,
    digits_train_test_split,
    dvs_events_from_frames,
    events_to_frames,
    load_digit_events,
    load_digit_images,
    saccade_offsets,
    simulate_saccade_events,
    static_image,
)
from bsnn_lightning.data.cache import write_event_cache

STEP_US = 1000


# ------------------------------------------------------------------------------------------
# DVS pixel model on a known moving edge
# ------------------------------------------------------------------------------------------


def _bar_frames(width, height, bar, speed, n_frames, bright, dark, start):
    """A bright vertical bar [left, left + bar) moving right by ``speed`` px per frame.

    Pixel x covers [x, x + 1); its intensity is dark + (bright - dark) * covered fraction.
    """
    x = np.arange(width)
    frames = []
    for k in range(n_frames):
        left = start + speed * k
        cover = np.clip(np.minimum(x + 1, left + bar) - np.maximum(x, left), 0, 1)
        frames.append(np.tile(dark + (bright - dark) * cover, (height, 1)))
    return np.stack(frames)


def _per_pixel_counts(events, width, height):
    on = np.zeros((height, width), int)
    off = np.zeros((height, width), int)
    np.add.at(on, (events["y"][events["p"] == 1], events["x"][events["p"] == 1]), 1)
    np.add.at(off, (events["y"][events["p"] == 0], events["x"][events["p"] == 0]), 1)
    return on, off


def test_hard_edged_bar_fires_on_at_leading_and_off_at_trailing_edge():
    bright, dark, eps, c = 0.8, 0.05, 0.1, 0.25
    per_edge = math.floor((math.log(bright + eps) - math.log(dark + eps)) / c)
    assert per_edge == 7  # log(0.9 / 0.15) / 0.25 = 7.17, safely away from an integer
    width, height, bar = 12, 3, 4
    # the bar starts fully left of the sensor and ends fully right of it: 1 px per frame
    frames = _bar_frames(width, height, bar, 1.0, width + bar + 1, bright, dark, start=-bar)
    events = dvs_events_from_frames(frames, contrast_threshold=c, eps=eps, step_us=STEP_US, rng=0)
    assert events.dtype == EVENT_DTYPE
    assert np.all(np.diff(events["t"]) >= 0)
    step = events["t"] // STEP_US + 1  # events of step k carry t in [(k - 1) * step, k * step)
    for k in range(1, len(frames)):
        left = -bar + k  # bar now covers [left, left + bar)
        here = events[step == k]
        on, off = here[here["p"] == 1], here[here["p"] == 0]
        lead, trail = left + bar - 1, left - 1  # pixel that just lit up / just went dark
        assert set(on["x"].tolist()) == ({lead} if 0 <= lead < width else set())
        assert set(off["x"].tolist()) == ({trail} if 0 <= trail < width else set())
        assert len(on) == (per_edge * height if 0 <= lead < width else 0)
        assert len(off) == (per_edge * height if 0 <= trail < width else 0)
    on, off = _per_pixel_counts(events, width, height)
    np.testing.assert_array_equal(on, per_edge)
    np.testing.assert_array_equal(off, per_edge)


@pytest.mark.parametrize("c", [0.15, 0.2, 0.25])
def test_smooth_bar_per_pixel_count_is_floor_of_log_contrast_over_threshold(c):
    bright, dark, eps = 1.0, 0.0, 0.2
    per_edge = math.floor(math.log((bright + eps) / (dark + eps)) / c)
    width, height, bar, speed = 10, 2, 3, 0.25  # each edge takes 4 frames to cross a pixel
    n_frames = int((width + bar) / speed) + 2
    frames = _bar_frames(width, height, bar, speed, n_frames, bright, dark, start=-bar)
    events = dvs_events_from_frames(frames, contrast_threshold=c, eps=eps, step_us=STEP_US, rng=3)
    on, off = _per_pixel_counts(events, width, height)
    np.testing.assert_array_equal(on, per_edge)  # ON and OFF balance once the bar has passed
    np.testing.assert_array_equal(off, per_edge)
    step = events["t"] // STEP_US + 1
    change = np.diff(frames, axis=0)  # change[k - 1] = frames[k] - frames[k - 1]
    for k in np.unique(step):
        here = events[step == k]
        on_x, off_x = here["x"][here["p"] == 1], here["x"][here["p"] == 0]
        # ON only where the intensity rose in that step (leading edge), OFF where it fell
        assert np.all(change[k - 1, 0, on_x] > 0)
        assert np.all(change[k - 1, 0, off_x] < 0)
        if on_x.size and off_x.size:
            assert on_x.min() > off_x.max()  # the leading edge is right of the trailing edge
    for x in range(width):  # every pixel: all ON events precede its OFF events
        pix = events[events["x"] == x]
        assert pix["t"][pix["p"] == 1].max() <= pix["t"][pix["p"] == 0].min()


def test_static_scene_fires_nothing_and_small_changes_accumulate():
    frames = np.full((5, 2, 2), 0.5)
    assert len(dvs_events_from_frames(frames, contrast_threshold=0.2, eps=0.1)) == 0
    # log intensity rises by 0.13 per frame: no single step crosses C = 0.2, but the total does
    levels = np.exp(0.13 * np.arange(6)) - 0.1  # log(I + eps) = 0.13 k
    events = dvs_events_from_frames(levels.reshape(6, 1, 1), contrast_threshold=0.2, eps=0.1)
    # levels 0.2, 0.4, 0.6 are crossed at k = 2 (0.26), k = 4 (0.52) and k = 5 (0.65)
    np.testing.assert_array_equal(events["t"] // STEP_US + 1, [2, 4, 5])
    np.testing.assert_array_equal(events["p"], [1, 1, 1])


def test_dvs_model_rejects_bad_frames():
    with pytest.raises(ValueError, match=re.escape("expected frames [S, H, W] with S, H, W >= 1, got shape (4, 4)")):
        dvs_events_from_frames(np.ones((4, 4)))
    with pytest.raises(ValueError, match="expected finite, non-negative intensities, got range"):
        dvs_events_from_frames(-np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="expected contrast_threshold > 0, got 0"):
        dvs_events_from_frames(np.ones((2, 2, 2)), contrast_threshold=0)


# ------------------------------------------------------------------------------------------
# Saccade simulator
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_images():
    return load_digit_images(limit=30)


def test_simulated_digit_events_are_well_formed_and_balanced(digit_images):
    images, _ = digit_images
    config = SaccadeConfig()
    events = simulate_saccade_events(images[0], rng=0, config=config)
    assert events.dtype == EVENT_DTYPE and len(events) > 1000
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["t"].min() >= 0 and events["t"].max() < config.duration_us == 300_000
    # with the default amplitude the digit stays inside the sensor: no event on the border ring
    assert events["x"].min() >= 1 and events["x"].max() <= 32
    assert events["y"].min() >= 1 and events["y"].max() <= 32
    # the path returns to its start, so every pixel's ON and OFF counts cancel
    on, off = _per_pixel_counts(events, 34, 34)
    np.testing.assert_array_equal(on, off)
    # each of the three saccades produces events
    per_saccade = np.bincount(events["t"] // config.saccade_us, minlength=3)
    assert np.all(per_saccade > 0.2 * len(events))


def test_saccade_path_is_a_closed_triangle():
    config = SaccadeConfig(saccade_amplitude=4.0)
    path = saccade_offsets(config)
    assert path.shape == (301, 2)
    np.testing.assert_allclose(path[[0, 100, 200, 300]], [[-2, 2], [0, -2], [2, 2], [-2, 2]])
    speeds = np.linalg.norm(np.diff(path, axis=0), axis=1)
    np.testing.assert_allclose(speeds[:100], speeds[0])  # constant speed along a saccade


def test_simulation_is_deterministic_and_seed_only_moves_timestamps(digit_images):
    image = digit_images[0][3]
    a = simulate_saccade_events(image, rng=1)
    b = simulate_saccade_events(image, rng=np.random.default_rng(1))
    c = simulate_saccade_events(image, rng=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a["t"], c["t"])

    def keyed(ev):  # events as a multiset of (step, x, y, p)
        return np.sort(np.stack([ev["t"] // STEP_US, ev["x"], ev["y"], ev["p"]]), axis=1)

    np.testing.assert_array_equal(keyed(a), keyed(c))


def test_simulator_rejects_out_of_range_images():
    with pytest.raises(ValueError, match=re.escape("expected image intensities in [0, 1], got range [0.0, 16.0]")):
        simulate_saccade_events(np.eye(8) * 16.0)  # raw sklearn values, not divided by 16
    with pytest.raises(ValueError, match="expected a 2-D grayscale image"):
        simulate_saccade_events(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="expected step_us to divide saccade_us, got saccade_us = 100000, step_us = 3000"):
        SaccadeConfig(step_us=3000)


def test_static_image_is_the_centred_upsampled_image():
    image = np.zeros((4, 4))
    image[1:3, 1:3] = 1.0  # symmetric blob
    config = SaccadeConfig(sensor_size=(20, 20), upsample=3)
    static = static_image(image, config)
    assert static.shape == (1, 20, 20) and static.dtype == np.float32
    np.testing.assert_allclose(static[0], static[0, ::-1], atol=1e-6)  # symmetric about the centre
    np.testing.assert_allclose(static[0], static[0, :, ::-1], atol=1e-6)
    # 12 x 12 upsampled image at rows/cols 4..15; bilinear (centres aligned) keeps the 2 x 2
    # core at full intensity on upsampled pixels 4..7 = sensor 8..11 and reaches 0 at the
    # centres of the dark source pixels 0 and 3 (upsampled 1 and 10 -> sensor 5 and 14)
    np.testing.assert_allclose(static[0, 8:12, 8:12], 1.0, atol=1e-6)
    assert static[0, :6].max() == 0 and static[0, 14:].max() == 0 and static[0, 6:14, 6:14].min() > 0


def test_digit_static_images_shapes_and_range():
    images, labels = digit_static_images(limit=12)
    assert images.shape == (12, 1, 34, 34) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == list(range(10)) + [0, 1]
    assert images.min() >= 0 and images.max() <= 1 and images.max() > 0.9


# ------------------------------------------------------------------------------------------
# Split
# ------------------------------------------------------------------------------------------


def test_split_is_stratified_fixed_and_complete():
    _, labels = load_digit_images()
    train, test = digits_train_test_split(labels)
    assert (len(train), len(test)) == (1438, 359)
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(labels)))
    per_class = np.bincount(labels, minlength=10)
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=10), np.round(0.2 * per_class))
    again_train, again_test = digits_train_test_split(labels)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    # pinned, so that a change of the split cannot go unnoticed
    assert test[:5].tolist() == FIRST_TEST_INDICES


FIRST_TEST_INDICES = [5, 9, 12, 14, 16]


# ------------------------------------------------------------------------------------------
# Cache
# ------------------------------------------------------------------------------------------


def test_loaded_digits_equal_single_simulations_whatever_the_limit(tmp_path, digit_images):
    images, labels = digit_images
    small = load_digit_events(seed=5, cache_dir=tmp_path, limit=6)
    large = load_digit_events(seed=5, cache_dir=tmp_path, limit=30)
    assert small.path != large.path
    np.testing.assert_array_equal(large.labels, labels)
    for i in range(6):
        np.testing.assert_array_equal(small.events[i], large.events[i])
    for i in (0, 29):
        np.testing.assert_array_equal(large.events[i], simulate_saccade_events(images[i], digit_rng(5, i)))


def test_cache_is_reused_and_leftover_temporary_files_are_ignored(tmp_path):
    path = digit_events_cache_path(seed=0, cache_dir=tmp_path, limit=5)
    path.parent.mkdir(parents=True)
    leftover = path.parent / (path.name + ".interrupted.tmp")
    leftover.write_bytes(b"half a zip file")  # what a killed writer would leave behind
    with pytest.raises(FileNotFoundError, match="expected a digit-events cache at"):
        load_digit_events(seed=0, cache_dir=tmp_path, limit=5, build=False)
    first = load_digit_events(seed=0, cache_dir=tmp_path, limit=5)
    assert first.path == path and path.is_file()
    assert leftover.read_bytes() == b"half a zip file"  # neither read nor clobbered
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, leftover.name])
    stat = path.stat()
    second = load_digit_events(seed=0, cache_dir=tmp_path, limit=5, build=False)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    for a, b in zip(first.events, second.events):
        np.testing.assert_array_equal(a, b)
    load_digit_events(seed=0, cache_dir=tmp_path, limit=5)  # build=True also just reads
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


def _truncate(data: bytes) -> bytes:  # what a non-atomic writer killed midway could leave
    return data[: len(data) // 2]


def _flip_a_byte(data: bytes) -> bytes:  # bit rot inside the events array
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(("corrupt", "reason"), [(_truncate, "BadZipFile"), (_flip_a_byte, "Bad CRC-32")])
def test_corrupted_cache_errors_when_read_only_and_is_rebuilt_otherwise(tmp_path, corrupt, reason):
    good = load_digit_events(seed=0, cache_dir=tmp_path, limit=4)
    good.path.write_bytes(corrupt(good.path.read_bytes()))
    with pytest.raises(RuntimeError, match=f"expected a readable digit-events cache at .*{reason}"):
        load_digit_events(seed=0, cache_dir=tmp_path, limit=4, build=False)
    with pytest.warns(RuntimeWarning, match="rebuilding unreadable digit-events cache"):
        rebuilt = load_digit_events(seed=0, cache_dir=tmp_path, limit=4)
    for a, b in zip(good.events, rebuilt.events):
        np.testing.assert_array_equal(a, b)
    assert len(load_digit_events(seed=0, cache_dir=tmp_path, limit=4, build=False).events) == 4


def test_cache_file_with_other_parameters_is_detected(tmp_path):
    good = load_digit_events(seed=0, cache_dir=tmp_path, limit=3)
    other = digit_events_cache_path(seed=1, cache_dir=tmp_path, limit=3)
    other.parent.mkdir(parents=True)
    other.write_bytes(good.path.read_bytes())  # a seed-0 file where seed 1 belongs
    with pytest.raises(RuntimeError, match="expected metadata"):
        load_digit_events(seed=1, cache_dir=tmp_path, limit=3, build=False)


def test_cache_folders_keep_their_names_and_an_older_format_is_rebuilt(tmp_path):
    # the folder a default cache has always had (caches written before data/ was reorganised are found again) ...
    assert digit_events_cache_path(0, tmp_path).parent.name == (
        "digit-events-v1_sensor_size-34x34_upsample-3_saccade_amplitude-4.0_saccade_us-100000_step_us-1000_"
        "contrast_threshold-0.2_eps-0.2_seed-0"
    )
    # ... and a file of another format version at that place is refused, never read as this one
    good = load_digit_events(seed=0, cache_dir=tmp_path, limit=3)
    with np.load(good.path) as stored:
        metadata = json.loads(str(stored["metadata"]))
        events = np.split(stored["events"], stored["offsets"][1:-1])
        labels = stored["labels"]
    write_event_cache(good.path, events, labels, {**metadata, "format_version": 0})
    with pytest.raises(RuntimeError, match="expected metadata .*'format_version': 1.*got .*'format_version': 0"):
        load_digit_events(seed=0, cache_dir=tmp_path, limit=3, build=False)
    with pytest.warns(RuntimeWarning, match="rebuilding unreadable digit-events cache"):
        load_digit_events(seed=0, cache_dir=tmp_path, limit=3)
    assert len(load_digit_events(seed=0, cache_dir=tmp_path, limit=3, build=False).events) == 3


def test_cache_location_keys_every_parameter_and_honours_env(tmp_path, monkeypatch):
    base = digit_events_cache_path(0, tmp_path)
    assert base.parent.parent == tmp_path and base.name == "digits_1797.npz"
    variants = [
        digit_events_cache_path(1, tmp_path),
        digit_events_cache_path(0, tmp_path, limit=10),
        *(digit_events_cache_path(0, tmp_path, config=SaccadeConfig(**{k: v}))
          for k, v in [("sensor_size", (40, 34)), ("upsample", 2), ("saccade_amplitude", 3.0),
                       ("saccade_us", 50_000), ("step_us", 500), ("contrast_threshold", 0.15),
                       ("eps", 0.1)]),
    ]
    assert len({base, *variants}) == len(variants) + 1
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert digit_events_cache_path(0).parent.parent == tmp_path / "env"
    monkeypatch.setenv(CACHE_ENV_VAR, "")  # empty counts as unset
    assert default_cache_dir() == Path.home() / ".cache" / "bsnn-lightning"
    monkeypatch.delenv(CACHE_ENV_VAR)
    assert default_cache_dir() == Path.home() / ".cache" / "bsnn-lightning"


# ------------------------------------------------------------------------------------------
# DataModule
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split_by", ["time", "number"])
def test_datamodule_events_batches(tmp_path, split_by):
    dm = DigitEventsDataModule(time_steps=5, split_by=split_by, batch_size=8, cache_dir=str(tmp_path), limit=40)
    assert (dm.num_classes, dm.time_steps, dm.input_shape) == (10, 5, (5, 2, 34, 34))
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 5, 2, 34, 34) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    # frames are exactly the shared events_to_frames path applied to the cached events
    cached = load_digit_events(0, tmp_path, limit=40, build=False)
    i = int(dm.test_indices[0])
    xv, yv = next(iter(dm.val_dataloader()))
    expected = events_to_frames(cached.events[i], (34, 34), 5, split_by)
    np.testing.assert_array_equal(xv[0].numpy(), expected)
    assert xv[0].sum().item() == len(cached.events[i])
    assert yv[0].item() == cached.labels[i]
    n_val = sum(len(b[1]) for b in dm.val_dataloader())
    n_test = sum(len(b[1]) for b in dm.test_dataloader())
    n_train = sum(len(b[1]) for b in dm.train_dataloader())
    assert n_val == n_test == len(dm.test_indices) and n_train + n_test == 40
    assert len(next(iter(dm.predict_dataloader()))) == 2


def test_datamodule_static_batches(tmp_path):
    dm = DigitEventsDataModule(variant="static", batch_size=4, cache_dir=str(tmp_path), limit=60)
    assert dm.input_shape == (1, 34, 34)
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 1, 34, 34) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= x.min() and x.max() <= 1
    assert not any(tmp_path.iterdir())  # the static variant needs no cache


def test_datamodule_split_does_not_depend_on_seed(tmp_path):
    a = DigitEventsDataModule(seed=0, cache_dir=str(tmp_path), limit=20)
    b = DigitEventsDataModule(seed=1, cache_dir=str(tmp_path), limit=20)
    for dm in (a, b):
        dm.prepare_data()
        dm.setup()
    np.testing.assert_array_equal(a.test_indices, b.test_indices)
    np.testing.assert_array_equal(a.train_indices, b.train_indices)


def test_datamodule_setup_only_reads(tmp_path):
    dm = DigitEventsDataModule(cache_dir=str(tmp_path), limit=5)
    with pytest.raises(FileNotFoundError, match="prepare_data"):
        dm.setup("fit")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(variant="frames"), ValueError, "expected variant in ('events', 'static'), got 'frames'"),
        (dict(split_by="count"), ValueError, "expected split_by in ('time', 'number'), got 'count'"),
        (dict(time_steps=0), ValueError, "expected time_steps >= 1, got 0"),
        (dict(batch_size=0), ValueError, "expected batch_size >= 1, got 0"),
        (dict(num_workers=-1), ValueError, "expected num_workers >= 0, got -1"),
        (dict(limit=5000), ValueError, "expected limit <= 1797 (the number of digits), got 5000"),
        (dict(time_steps="8"), TypeError, "expected time_steps to be an int, got '8'"),
        (dict(seed=-1), ValueError, "expected seed >= 0, got -1"),
    ],
)
def test_datamodule_rejects_bad_args(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        DigitEventsDataModule(**kwargs)
