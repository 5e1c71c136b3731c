#!/usr/bin/env python
"""Loader benchmark: frames per second served from the frame cache by the DVS DataModules.

What it does, in one run:

1. writes a synthetic CIFAR10-DVS of realistic size (``--per-class`` train + test recordings in each
   of the ten class archives, ``--events`` events per recording over 1.3 s on the 128 x 128 sensor;
   real CIFAR10-DVS recordings are of that order) with the tests' ``tests/archive_writers.py``;
2. runs ``prepare_data`` -- extraction, AEDAT 2.0 parsing, binning, cache writing -- and times it;
3. iterates the training DataLoader from the cache with the **default number of workers**
   (:func:`bsnn_lightning.data.loading.default_num_workers`) for ``--epochs`` epochs after one warm-up
   epoch, with the recipes' per-sample augmentation on, and reports samples/s and frames/s
   (frames = samples x T), for two settings:

   * ``vgg11``: the VGG-11 recipe's frames (T = 16, 128 x 128, stored as exact uint8 counts);
   * ``vggsnn``: the TET recipe's frames (T = 10, 48 x 48 area-resampled, stored as float32).

4. puts the loader's rate next to what the VGG-11 recipe's GPU training step needs: the step's
   arithmetic (multiply-accumulates of VGG-11 at 128 x 128, x T x batch, x 3 for forward + backward)
   and the sustained FLOP/s a GPU would need for the loader to become the bottleneck.

    python bench/data.py                  # default: 20 + 2 recordings per class, 150k events each
    python bench/data.py --quick          # tiny smoke run
    python bench/data.py --workers 8      # override the worker count

Prints a table and writes it as JSON to ``bench/results/data.json``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from bsnn_lightning.data import CIFAR10DVSDataModule, RandomFlip, RandomRoll
from bsnn_lightning.data.loading import default_num_workers
from common import write_json_atomic  # bench/common.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from archive_writers import write_synthetic_dataset  # noqa: E402  (tests/archive_writers.py: test data writers)

RESULTS = Path(__file__).resolve().parent / "results" / "data.json"

SETTINGS = {
    "vgg11": dict(time_steps=16, resize=None, batch_size=16, augment=[RandomFlip(0.5)]),
    "vggsnn": dict(time_steps=10, resize=(48, 48), batch_size=128, augment=[RandomFlip(0.5), RandomRoll(5)]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, nargs=2, default=(20, 2), metavar=("TRAIN", "TEST"))
    parser.add_argument("--events", type=int, default=150_000, help="events per recording")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the DataModule's)")
    parser.add_argument("--quick", action="store_true", help="tiny run (2 + 1 recordings per class, 20k events)")
    parser.add_argument("--keep", type=Path, default=None, help="build the data in this folder and keep it")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.events, args.epochs = (2, 1), 20_000, 1
    workers = default_num_workers() if args.workers is None else args.workers

    work = args.keep or Path(tempfile.mkdtemp(prefix="bsnn-bench-data-"))
    try:
        root = work / "cifar10-dvs"
        t0 = time.perf_counter()
        checksums = write_synthetic_dataset(
            "cifar10-dvs", root, per_class=tuple(args.per_class), events_per_sample=args.events, seed=0
        )
        write_s = time.perf_counter() - t0
        n_recordings = 10 * sum(args.per_class)
        print(f"wrote {n_recordings} recordings ({args.events} events each) in {write_s:.1f} s under {root}")
        rows = []
        for name, setting in SETTINGS.items():
            dm = CIFAR10DVSDataModule(
                root=str(root), cache_dir=str(work / "cache"), num_workers=workers, checksums=checksums,
                allow_partial=True, download=False, progress=False, **setting,
            )  # fmt: skip
            t0 = time.perf_counter()
            dm.prepare_data()
            prepare_s = time.perf_counter() - t0
            dm.setup("fit")
            loader = dm.train_dataloader()
            _epoch(loader)  # warm-up: starts the workers, fills the page cache
            t0 = time.perf_counter()
            samples = sum(_epoch(loader) for _ in range(args.epochs))
            load_s = time.perf_counter() - t0
            stored = sum(f.stat().st_size for f in (dm.cache_path / "frames").glob("*.npy")) / n_recordings
            row = {
                "setting": name,
                "time_steps": dm.time_steps,
                "frame_hw": list(dm.input_shape[2:]),
                "batch_size": dm.batch_size,
                "workers": workers,
                "prepare_s": round(prepare_s, 2),
                "prepare_samples_per_s": round(n_recordings / prepare_s, 1),
                "bytes_per_sample": int(stored),
                "samples_per_s": round(samples / load_s, 1),
                "frames_per_s": round(samples * dm.time_steps / load_s, 1),
                "batch_ms": round(1000 * dm.batch_size * load_s / samples, 2),
            }
            rows.append(row)
            del loader, dm
        vgg11 = rows[0]
        step_flop = vgg11_training_flop(time_steps=16, batch=16, size=128)
        need = step_flop / (vgg11["batch_ms"] / 1000)
        meta = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch": torch.__version__,
            "recordings": n_recordings,
            "events_per_recording": args.events,
            "write_s": round(write_s, 1),
            "vgg11_step_tflop": round(step_flop / 1e12, 2),
            "gpu_tflops_to_outrun_loader": round(need / 1e12, 1),
        }
        _print(rows, meta)
        write_json_atomic({"meta": meta, "rows": rows}, RESULTS)
        print(f"wrote {RESULTS}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def vgg11_training_flop(time_steps: int, batch: int, size: int) -> float:
    """FLOP of one training step of the VGG-11 recipe's convolutions: 2 x MACs x 3 (fwd + bwd).

    VGG-11 configuration A, 3 x 3 convolutions, 2 x 2 pooling after layers 1, 2, 4, 6, 8, input
    2 channels of ``size x size``; the linear head, batch norm and neurons are negligible in FLOP
    (not in memory traffic).
    """
    widths = (64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P")
    macs, channels, side = 0, 2, size
    for item in widths:
        if item == "P":
            side //= 2
            continue
        macs += side * side * item * channels * 9
        channels = item
    return 2.0 * macs * time_steps * batch * 3


def _epoch(loader) -> int:
    n = 0
    for x, y in loader:
        n += y.shape[0]
    return n


def _print(rows, meta) -> None:
    print(
        f"\n{meta['recordings']} recordings x {meta['events_per_recording']} events; "
        f"{meta['usable_cpus']} usable CPUs; torch {meta['torch']}"
    )
    header = f"{'setting':8} {'T':>3} {'HxW':>8} {'batch':>5} {'workers':>7} {'prepare/s':>10} {'KB/sample':>9} {'samples/s':>10} {'frames/s':>10} {'ms/batch':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        hw = "x".join(str(v) for v in r["frame_hw"])
        print(
            f"{r['setting']:8} {r['time_steps']:>3} {hw:>8} {r['batch_size']:>5} {r['workers']:>7} "
            f"{r['prepare_samples_per_s']:>10} {r['bytes_per_sample'] / 1024:>9.0f} {r['samples_per_s']:>10} "
            f"{r['frames_per_s']:>10} {r['batch_ms']:>9}"
        )
    print(
        f"\nVGG-11 recipe step (T=16, batch 16, 128x128): {meta['vgg11_step_tflop']} TFLOP in the convolutions "
        f"(forward + backward). The loader above delivers a batch every {rows[0]['batch_ms']} ms; a GPU would have "
        f"to sustain {meta['gpu_tflops_to_outrun_loader']} TFLOP/s on this network for the loader to be the bottleneck."
    )


if __name__ == "__main__":
    raise SystemExit(main())
