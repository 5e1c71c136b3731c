"""What the report says about each task before its experiments: one line of what it is, and for the interval
task what its classes look like (:func:`interval_samples`, drawn by :func:`draw_interval_classes`)."""

from __future__ import annotations

import numpy as np

from ..data import load_interval_events
from ..data.events import events_to_frames
from ..figures import report as report_figures
from .data_cache import interval_module
from .settings import Settings

#: the figure of the interval task's classes: file name under figures/ -> kind
INTERVAL_FIGURE = {"intervals_classes.png": "interval_classes"}


def interval_samples(settings: Settings, per_class: int = 200) -> dict:
    """What the interval task's classes look like: per class, one recording's events per 1 ms (ON and OFF),
    and the mean over ``per_class`` training recordings of the frame summed over time (what a network that
    averages over time sees); drawn from the task's DataModule configuration."""
    dm = interval_module(settings)
    config = dm.config
    n = per_class * config.num_classes
    data = load_interval_events(n, "train", dm.seed, config)
    window = (0, config.duration_us)
    bins = config.duration_us // 1000
    examples, summed = [], []
    for label in range(config.num_classes):
        members = np.flatnonzero(data.labels == label)
        events = data.events[members[0]]
        ms = events_to_frames(events, config.sensor_size, bins, time_window=window).sum(axis=(2, 3))  # [bins, 2]
        examples.append({"on": ms[:, 1].tolist(), "off": ms[:, 0].tolist(), "first_slot": int(data.first_slot[members[0]])})
        frames = [events_to_frames(data.events[i], config.sensor_size, 1, time_window=window)[0].sum(0) for i in members]
        summed.append(np.mean(frames, axis=0).tolist())
    return {
        "delays_slots": list(config.delays), "slot_ms": config.slot_us / 1000, "duration_ms": config.duration_us / 1000,
        "examples": examples, "mean_summed_frames": summed, "per_class": per_class,
    }


def draw_interval_classes(samples: dict) -> dict:
    return {"intervals_classes.png": report_figures.interval_classes(
        samples["examples"], samples["mean_summed_frames"], samples["delays_slots"], samples["slot_ms"], samples["per_class"]
    )}


def task_line(task: str, settings: dict) -> str:
    if task == "digits":
        count = "all 1,797" if settings["limit"] is None else f"the first {settings['limit']}"
        return (f"event digits, {count} sklearn digits as simulated DVS recordings, fixed stratified 80/20 split, T = "
                f"{settings['time_steps_events']} (static digits: T = {settings['time_steps_static']})")
    return (f"event intervals, {settings['n_train']} training and {settings['n_test']} test recordings of a square "
            f"flashing twice, 4 classes by the gap, T = {settings['time_steps_events']}")


def task_intro(task: str, samples: dict | None) -> list[str]:
    if task != "intervals" or samples is None:
        return []
    delays = ", ".join(f"{d}" for d in samples["delays_slots"])
    return [
        f"A square flashes twice at the same place in a {samples['duration_ms']:g} ms recording; the class is the gap "
        f"between the flashes, {delays} slots of {samples['slot_ms']:g} ms. Position, first flash and events per flash "
        "do not depend on the class, so the frames summed over time are the same in every class (bottom row).",
        "",
        "![the interval task's classes](figures/intervals_classes.png)",
        "",
    ]

