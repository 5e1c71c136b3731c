"""The event-interval task: recordings drawn from a seed, the real event format and frames path, balanced
classes that differ only in time, the fixed time window of events_to_frames, the DataModule and the recipe."""

import functools
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from bsnn_lightning import LIFNeuron, SpikingClassifier
from bsnn_lightning.cli import build_cli
from bsnn_lightning.data import (
    EVENT_DTYPE,
    IntervalConfig,
    IntervalEventsDataModule,
    events_from_arrays,
    events_to_frames,
    interval_rng,
    load_interval_events,
    simulate_interval_events,
)
from bsnn_lightning.models import SpikingConvNet

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "intervals.yaml")
CONFIG = IntervalConfig()
SQUARE_EVENTS = 8  # floor(log((1 + 0.2) / 0.2) / 0.2): events per pixel for a dark-to-white change


def _window(config=CONFIG):
    return (0, config.duration_us)


def _summed(events, config=CONFIG):
    """The whole recording in one frame [2, H, W]: all a time-averaging network can see."""
    return events_to_frames(events, config.sensor_size, 1, time_window=_window(config))[0]


# ------------------------------------------------------------------------------------------
# Recordings
# ------------------------------------------------------------------------------------------


def test_recordings_are_well_formed_events_of_two_flashes():
    data = load_interval_events(24, "train", seed=3)
    width, height = CONFIG.sensor_size
    for events, label, slot, (x0, y0) in zip(*data):
        assert events.dtype == EVENT_DTYPE and events.ndim == 1
        assert np.all(np.diff(events["t"]) >= 0)
        assert events["t"].min() >= 0 and events["t"].max() < CONFIG.duration_us
        assert set(np.unique(events["p"]).tolist()) == {0, 1}
        inside = (events["x"] >= x0) & (events["x"] < x0 + CONFIG.square) & (events["y"] >= y0) & (events["y"] < y0 + CONFIG.square)
        assert inside.all() and 0 <= x0 <= width - CONFIG.square and 0 <= y0 <= height - CONFIG.square
        starts = [slot * CONFIG.slot_us, (slot + CONFIG.delays[label]) * CONFIG.slot_us]
        for start in starts:  # each flash: 8 ON events per square pixel as it lights, 8 OFF as it goes dark
            on = events[(events["t"] >= start) & (events["t"] < start + CONFIG.step_us)]
            off_start = start + CONFIG.flash_us
            off = events[(events["t"] >= off_start) & (events["t"] < off_start + CONFIG.step_us)]
            assert len(on) == len(off) == SQUARE_EVENTS * CONFIG.square**2
            assert on["p"].all() and not off["p"].any()
        assert len(events) == 4 * SQUARE_EVENTS * CONFIG.square**2  # nothing else: no noise by default


def test_first_flash_and_position_do_not_depend_on_the_class():
    data = load_interval_events(400, "train", seed=0)
    for label in range(CONFIG.num_classes):
        of_class = data.labels == label
        assert set(data.first_slot[of_class].tolist()) == set(range(CONFIG.first_slots))
        offsets = data.position[of_class] - data.position.min(0)
        assert set(offsets[:, 0].tolist()) == set(offsets[:, 1].tolist()) == set(range(2 * CONFIG.position_jitter + 1))


def test_recordings_are_determined_by_seed_split_and_index():
    first = load_interval_events(10, "train", seed=7)
    again = load_interval_events(10, "train", seed=7)
    longer = load_interval_events(25, "train", seed=7)
    for a, b, c in zip(first.events, again.events, longer.events):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)  # recording i does not depend on how many were asked for
    rngs = [interval_rng(7, "train", i) for i in range(10)]
    single, _, _ = simulate_interval_events(first.labels, rngs)
    for a, b in zip(first.events, single):
        np.testing.assert_array_equal(a, b)
    other_seed = load_interval_events(10, "train", seed=8)
    test_split = load_interval_events(10, "test", seed=7)
    for other in (other_seed, test_split):
        assert not all(np.array_equal(a, b) for a, b in zip(first.events, other.events))


def test_labels_are_balanced_in_every_split():
    for split, n in (("train", 41), ("test", 10)):
        counts = np.bincount(load_interval_events(n, split, seed=0).labels, minlength=CONFIG.num_classes)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n
    dm = IntervalEventsDataModule(n_train=200, n_test=100)
    dm.setup()
    for loader in (dm.train_dataloader(), dm.test_dataloader()):
        labels = torch.cat([y for _, y in loader])
        assert torch.bincount(labels).tolist() == [len(labels) // 4] * 4


def test_changing_only_the_label_moves_the_second_flash_and_nothing_else_in_time_summed_frames():
    """Same Generator, different class: the frames summed over time are identical, the frames are not."""
    config = IntervalConfig(noise_events=40.0)
    steps = 16
    for index in range(12):
        summed, framed = [], []
        for label in range(config.num_classes):
            (events,), _, _ = simulate_interval_events(np.array([label]), [interval_rng(0, "train", index)], config)
            summed.append(_summed(events, config))
            framed.append(events_to_frames(events, config.sensor_size, steps, time_window=_window(config)))
        for label in range(1, config.num_classes):
            np.testing.assert_array_equal(summed[label], summed[0])
            assert not np.array_equal(framed[label], framed[0])


def test_time_summed_frames_have_the_same_distribution_in_every_class():
    """Per class, the mean summed frame and the distribution of summed per-pixel counts agree to sampling
    noise, while the frames' time profiles (events per bin) separate the classes."""
    data = load_interval_events(800, "train", seed=1, config=IntervalConfig(noise_events=20.0))
    summed = np.stack([_summed(e) for e in data.events]).reshape(len(data.events), -1)
    means = np.stack([summed[data.labels == k].mean(0) for k in range(4)])
    assert np.abs(means - means.mean(0)).max() < 0.25 * means.max()
    per_sample_total = [summed[data.labels == k].sum(1) for k in range(4)]
    assert max(abs(t.mean() - per_sample_total[0].mean()) for t in per_sample_total) < 2.0  # noise: Poisson(20)
    gap = []
    for events, label in zip(data.events, data.labels):
        frames = events_to_frames(events, CONFIG.sensor_size, CONFIG.slots, time_window=_window())
        busy = np.flatnonzero(frames.sum((1, 2, 3)) >= SQUARE_EVENTS * CONFIG.square**2)
        gap.append((label, busy[-1] - busy[0]))
    for label, measured in gap:
        assert measured == CONFIG.delays[label]


def test_noise_events_are_poisson_uniform_and_counted_on_top():
    config = IntervalConfig(noise_events=100.0)
    data = load_interval_events(60, "train", seed=2, config=config)
    extra = np.array([len(e) for e in data.events]) - 4 * SQUARE_EVENTS * config.square**2
    assert 80 < extra.mean() < 120 and extra.min() >= 0
    assert len(np.unique(extra)) > 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delays": (2, 2, 4)}, "expected distinct delays (one per class), got (2, 2, 4)"),
        ({"delays": (2,)}, "expected delays as two or more ints >= 1 (slots), got (2,)"),
        ({"delays": (2, 16)}, "expected every delay < slots = 16, got delays (2, 16)"),
        ({"noise_events": -1.0}, "expected noise_events >= 0, got -1.0"),
        ({"flash_us": 10_000}, "expected flash_us < slot_us, got flash_us = 10000, slot_us = 10000"),
        ({"square": 14}, "expected square + 2 * position_jitter <= the sensor's smaller side 16, got square = 14, position_jitter = 2"),
        ({"step_us": 3_000}, "expected step_us to divide slot_us and flash_us, got step_us = 3000"),
        ({"sensor_size": (16,)}, "expected sensor_size = (width, height) as two positive ints, got (16,)"),
    ],
)
def test_config_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        IntervalConfig(**kwargs)


def test_loader_rejects_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("expected split in ('train', 'test'), got 'val'")):
        load_interval_events(4, "val")
    with pytest.raises(ValueError, match="expected n to be an int >= 1, got 0"):
        load_interval_events(0)
    with pytest.raises(ValueError, match=re.escape("expected labels in [0, 4), got range [0, 4]")):
        simulate_interval_events(np.array([0, 4]), [interval_rng(0, "train", i) for i in range(2)])


# ------------------------------------------------------------------------------------------
# events_to_frames with a fixed time window
# ------------------------------------------------------------------------------------------


def test_time_window_bins_on_a_fixed_time_base():
    events = events_from_arrays([30, 35, 70], [0, 1, 1], [0, 0, 1], [1, 0, 1])
    own_span = events_to_frames(events, (2, 2), 4)  # bins of [30, 70]: 10.25 µs each
    fixed = events_to_frames(events, (2, 2), 4, time_window=(0, 100))  # bins of 25 µs from 0
    assert own_span[0].sum() == 2 and own_span[3].sum() == 1
    assert fixed[:, :, :, :].sum((1, 2, 3)).tolist() == [0, 2, 1, 0]
    assert fixed[1, 1, 0, 0] == 1 and fixed[1, 0, 0, 1] == 1 and fixed[2, 1, 1, 1] == 1
    assert events_to_frames(events[:0], (2, 2), 3, time_window=(0, 10)).shape == (3, 2, 2, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_window": (0, 70)}, "expected every event in the time window [0, 70) µs, got timestamps from 30 to 70"),
        ({"time_window": (31, 100)}, "expected every event in the time window [31, 100) µs, got timestamps from 30 to 70"),
        ({"time_window": (5, 5)}, "expected time_window = (start, stop) as two ints with start < stop, got (5, 5)"),
        ({"time_window": (0, 100), "split_by": "number"}, "expected time_window only with split_by='time', got split_by='number'"),
    ],
)
def test_time_window_is_checked(kwargs, message):
    events = events_from_arrays([30, 35, 70], [0, 1, 1], [0, 0, 1], [1, 0, 1])
    with pytest.raises(ValueError, match=re.escape(message)):
        events_to_frames(events, (2, 2), 4, **kwargs)


# ------------------------------------------------------------------------------------------
# DataModule
# ------------------------------------------------------------------------------------------


def test_datamodule_serves_the_frames_of_the_events_path():
    dm = IntervalEventsDataModule(time_steps=8, n_train=40, n_test=20, batch_size=16, seed=4)
    dm.prepare_data()
    dm.setup()
    assert dm.num_classes == 4 and dm.input_shape == (8, 2, 16, 16)
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.float32 and x.shape == (16, 8, 2, 16, 16) and y.dtype == torch.int64
    data = load_interval_events(20, "test", seed=4)
    for i in range(16):
        expected = events_to_frames(data.events[i], (16, 16), 8, time_window=(0, dm.config.duration_us))
        np.testing.assert_array_equal(x[i].numpy(), expected)
        assert int(y[i]) == data.labels[i]
    for loader in (dm.val_dataloader(), dm.predict_dataloader()):
        xv, yv = next(iter(loader))
        assert torch.equal(xv, x) and torch.equal(yv, y)
    train_x, _ = next(iter(dm.train_dataloader()))
    assert train_x.shape[1:] == (8, 2, 16, 16)


def test_datamodule_difficulty_parameters_reach_the_recordings():
    dm = IntervalEventsDataModule(delays=(1, 5, 9), noise_events=30.0, slots=12, n_train=30, n_test=30)
    assert dm.num_classes == 3 and dm.config.delays == (1, 5, 9) and dm.config.slots == 12
    dm.setup()
    x, _ = next(iter(dm.test_dataloader()))
    assert (x.sum((1, 2, 3, 4)) > 4 * SQUARE_EVENTS * 16).all()  # noise on top of the flashes


def test_datamodule_needs_setup_and_rejects_bad_args():
    with pytest.raises(RuntimeError, match="expected setup\\(\\) to have run"):
        IntervalEventsDataModule().train_dataloader()
    with pytest.raises(ValueError, match="expected n_train >= 1, got 0"):
        IntervalEventsDataModule(n_train=0)
    with pytest.raises(ValueError, match=re.escape("expected every delay < slots = 8, got delays (2, 4, 6, 8)")):
        IntervalEventsDataModule(slots=8)


# ------------------------------------------------------------------------------------------
# What the task is for (training runs)
# ------------------------------------------------------------------------------------------


def _train_lif(dm, tau, average_over_time=False, epochs=5, seed=0):
    """The report's network and LIF neuron; returns the test accuracy."""
    L.seed_everything(seed, verbose=False)
    net = SpikingConvNet(in_channels=2, num_classes=4, channels=(8, 16), hidden=64, input_size=(16, 16), input_pool=2,
                         neuron=functools.partial(LIFNeuron, tau=tau, decay_input=False, v_reset=None))
    model = SpikingClassifier(net, num_classes=4, loss="ce", static_steps=dm.time_steps if average_over_time else None,
                              optimizer=functools.partial(torch.optim.AdamW, lr=3e-3, weight_decay=0.01),
                              lr_scheduler=functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs))
    train, test = dm.train_dataloader(), dm.test_dataloader()
    if average_over_time:  # the frames summed over time (divided by T), presented at every step
        train, test = (
            DataLoader(TensorDataset(*(torch.cat(parts) for parts in zip(*[(x.mean(1), y) for x, y in loader]))),
                       batch_size=dm.batch_size, shuffle=shuffle)
            for loader, shuffle in ((train, True), (test, False))
        )
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=train)
    return trainer.test(model, dataloaders=test, verbose=False)[0]["test/acc"]


@pytest.mark.slow
def test_lif_needs_a_memory_matched_to_the_delays_and_time_averaging_is_at_chance():
    torch.set_num_threads(1)
    dm = IntervalEventsDataModule(n_train=1000, n_test=400)
    dm.setup()
    short, matched = _train_lif(dm, 1.5), _train_lif(dm, 4.0)
    averaged = _train_lif(dm, 4.0, average_over_time=True)
    assert matched > short + 0.15, (short, matched)
    assert abs(averaged - 0.25) < 0.07, averaged


@pytest.mark.slow
def test_recipe_trains_one_epoch(tmp_path):
    cli = build_cli([
        "fit", "--config", RECIPE, "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--data.init_args.n_train=200", "--data.init_args.n_test=100",
    ])
    assert cli.trainer.state.finished
    assert 0.0 <= float(cli.trainer.callback_metrics["test/acc"]) <= 1.0  # bsnn fit tests after fitting
    assert cli.datamodule.num_classes == 4 and cli.datamodule.input_shape == (16, 2, 16, 16)
