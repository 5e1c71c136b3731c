#!/usr/bin/env python
"""What the monitoring callback costs a training step, measured side by side in one run.

Four Trainer configurations fit the same small spiking network on the same random event frames, one
epoch each, interleaved over several rounds (the order rotated every round):

- ``none``: no monitoring callback;
- ``none (again)``: the same, a second time: the noise floor of the comparison;
- ``monitor off``: :class:`~bsnn_lightning.callbacks.SpikeMonitor` installed with firing-rate logging at
  no step of the epoch and figures off (``figures_every_n_epochs=None``): what "the callbacks are off" costs;
- ``monitor on``: rates every 10 steps and the four figures at the end of every epoch (for reference).

A training step is timed from the first callback's ``on_train_batch_start`` to the last callback's
``on_train_batch_end`` (so it includes every callback's batch hooks, the forward, the backward and the
optimizer step). The first steps of each epoch are a warm-up and not counted. The epoch time (first batch
start to the end of ``on_train_epoch_end``, where the figures are made) is reported too.

    python bench/monitor_overhead.py            # about a minute on 2 cores
    python bench/monitor_overhead.py --quick    # smoke run

Prints ratios to ``none`` (of the medians over rounds, and the median and range of the per-round ratios,
each round comparing the configurations under the same machine state) and writes them as JSON to
``bench/results/monitor_overhead.json``.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons, SpikeMonitor
from bsnn_lightning.models import SpikingConvNet
from common import cpu_model, loadavg, write_json_atomic  # noqa: E402  (bench/common.py)

RESULTS = Path(__file__).resolve().parent / "results" / "monitor_overhead.json"
CONFIGS = ("none", "none (again)", "monitor off", "monitor on")
WARMUP_STEPS = 5


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rounds, batches = (2, 12) if args.quick else (7, 60)
    meta = _environment(rounds, batches, args.quick)
    if meta["loadavg_start"] is not None and meta["loadavg_start"][0] > 0.5:
        print(f"warning: the machine is busy (load average {meta['loadavg_start'][0]:.2f}); timings will be noisy")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    data = _data(batches)
    step_ms = {name: [] for name in CONFIGS}  # per round: the median step time
    mean_ms = {name: [] for name in CONFIGS}  # per round: the mean step time (includes the monitored steps)
    epoch_ms = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = CONFIGS[r % len(CONFIGS):] + CONFIGS[: r % len(CONFIGS)]
            for name in order:
                steps, epoch = _fit_once(name, data, Path(tmp) / f"{r}_{name.replace(' ', '_')}")
                step_ms[name].append(statistics.median(steps[WARMUP_STEPS:]))
                mean_ms[name].append(statistics.fmean(steps[WARMUP_STEPS:]))
                epoch_ms[name].append(epoch)
    meta["loadavg_end"] = loadavg()
    base_step = statistics.median(step_ms["none"])
    base_mean = statistics.median(mean_ms["none"])
    base_epoch = statistics.median(epoch_ms["none"])
    rows = []
    print(f"{'configuration':<16} {'median step ms':>15} {'ratio':>7} {'per-round ratios':>20} {'mean step ms':>13} "
          f"{'ratio':>7} {'epoch ms':>10} {'ratio':>7}")
    for name in CONFIGS:
        step, mean, epoch = (statistics.median(v[name]) for v in (step_ms, mean_ms, epoch_ms))
        paired = [a / b for a, b in zip(step_ms[name], step_ms["none"])]  # same round: same machine state
        row = {"configuration": name, "step_ms": round(step, 3), "step_ratio": round(step / base_step, 3),
               "paired_step_ratio_median": round(statistics.median(paired), 3),
               "paired_step_ratio_range": [round(min(paired), 3), round(max(paired), 3)],
               "mean_step_ms": round(mean, 3), "mean_step_ratio": round(mean / base_mean, 3),
               "epoch_ms": round(epoch, 1), "epoch_ratio": round(epoch / base_epoch, 3),
               "step_ms_per_round": [round(v, 3) for v in step_ms[name]]}
        rows.append(row)
        spread = f"{row['paired_step_ratio_median']:.3f} [{min(paired):.2f}, {max(paired):.2f}]"
        print(f"{name:<16} {step:>15.3f} {row['step_ratio']:>7.3f} {spread:>20} {mean:>13.3f} {row['mean_step_ratio']:>7.3f} "
              f"{epoch:>10.1f} {row['epoch_ratio']:>7.3f}")
    write_json_atomic({"meta": meta, "rows": rows}, RESULTS)
    print(f"\nwrote {RESULTS}")
    return 0


class _StepTimer:
    """Two callbacks around the others: the first starts the clock, the last stops it."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.epoch_start = self.epoch_end = 0.0
        timer = self

        class First(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                timer.start = time.perf_counter()
                if batch_idx == 0:
                    timer.epoch_start = timer.start

        class Last(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                timer.steps.append(1000 * (time.perf_counter() - timer.start))

            def on_train_epoch_end(self, trainer, pl_module):
                timer.epoch_end = time.perf_counter()

        self.first, self.last = First(), Last()


def _fit_once(name: str, data, folder: Path) -> tuple[list[float], float]:
    torch.manual_seed(0)
    net = SpikingConvNet(in_channels=2, num_classes=10, channels=(8, 16), hidden=64, input_size=(16, 16))
    model = bl.SpikingClassifier(net, num_classes=10, loss="ce")
    model.example_input_array = torch.zeros(2, *data.dataset.tensors[0].shape[1:])
    timer = _StepTimer()
    monitors = []
    if name == "monitor off":
        monitors = [SpikeMonitor(every_n_steps=10**9, figures_every_n_epochs=None)]
    elif name == "monitor on":
        monitors = [SpikeMonitor(every_n_steps=10, figures_every_n_epochs=1)]
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=L.pytorch.loggers.CSVLogger(folder),
        callbacks=[timer.first, ConvertNeurons(dynamics="bifurcation", imp="channel"), *monitors, timer.last],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=10,
        limit_val_batches=0, num_sanity_val_steps=0,
    )
    trainer.fit(model, train_dataloaders=data)  # "monitor off" records step 0 only, inside the warm-up
    return timer.steps, 1000 * (timer.epoch_end - timer.epoch_start)


def _data(batches: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    n = 16 * batches
    y = torch.randint(0, 10, (n,), generator=g)
    x = (torch.rand(n, 6, 2, 16, 16, generator=g) < 0.05 + 0.02 * y.view(-1, 1, 1, 1, 1)).float()
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _environment(rounds: int, batches: int, quick: bool) -> dict:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": loadavg(),
        "rounds": rounds,
        "batches_per_epoch": batches,
        "warmup_steps": WARMUP_STEPS,
        "quick": quick,
        "network": "SpikingConvNet(2 -> 8 -> 16 channels, 64 hidden) on [T=6, N=16, 2, 16, 16], bifurcation + IMP",
        "statistic": "step_ms / mean_step_ms: median over rounds of each epoch's median / mean step time (after the "
        "warm-up); epoch_ms: median over rounds of the epoch time including on_train_epoch_end (the figures)",
    }








def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two rounds of 12 batches (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) before timing")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
