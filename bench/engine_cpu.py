#!/usr/bin/env python
"""CPU benchmark of the multistep engine's reference backend against the libraries' own neurons.

Two comparisons, each on the same input and the same upstream gradient:

- ``snnTorch``: a Python loop over time of ``snntorch.Leaky(beta=0.9, threshold=1.0)`` (ATan surrogate,
  reset by subtraction), ``spk, mem = leaky(x[t], mem)`` with ``mem`` starting at zeros, spikes stacked,
  the way snnTorch's tutorials run it; against ``multistep(..., SnnTorchLeaky(), backend="torch")``.
- ``SpikingJelly``: ``neuron.LIFNode(step_mode="m", tau=2.0)`` (Sigmoid surrogate, hard reset to 0,
  ``decay_input=True``) on its own CPU path; against ``multistep(..., SpikingJellyLIF(), backend="torch")``.

Modes: ``fwd`` (under ``torch.no_grad()``) and ``fwd+bwd`` (the forward, then the gradient w.r.t. x from a
fixed random gradient on the spikes). Before timing, each pair is checked to compute the same thing (equal
spikes, close gradients). Each time is the median of several calls after a warm-up, with the contenders
interleaved (and their order rotated) so that drift hits all of them alike.

    python bench/engine_cpu.py                # full run, about two minutes on 2 cores
    python bench/engine_cpu.py --quick        # one small shape, a few repeats (smoke run)
    python bench/engine_cpu.py --threads 1    # torch.set_num_threads(1)

Prints a table and writes it as JSON to ``bench/results/engine_cpu.json``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from bsnn_lightning.engine import SnnTorchLeaky, SpikingJellyLIF, multistep
from common import cpu_model, loadavg, version, write_json_atomic  # noqa: E402  (bench/common.py)

#: [T, N, ...] input shapes: a conv layer (N * neurons = 524k per step) at three sequence lengths, then a
#: larger (1M) and a smaller (262k) conv layer and a linear layer (131k)
FULL_SHAPES = [
    (4, 32, 64, 16, 16),
    (8, 32, 64, 16, 16),
    (16, 32, 64, 16, 16),
    (8, 16, 64, 32, 32),
    (8, 32, 128, 8, 8),
    (8, 128, 1024),
]
FULL_REPEATS, FULL_WARMUP = 15, 3
QUICK_SHAPES = [(4, 8, 16, 8, 8)]
QUICK_REPEATS, QUICK_WARMUP = 3, 1
MODES = ("fwd", "fwd+bwd")
RESULTS = Path(__file__).resolve().parent / "results" / "engine_cpu.json"

BETA, THRESHOLD, TAU = 0.9, 1.0, 2.0
TARGET_RATIO = 1.05  #: ours / theirs at or below this counts as "not slower"


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shapes, repeats, warmup = (
        (QUICK_SHAPES, QUICK_REPEATS, QUICK_WARMUP) if args.quick else (FULL_SHAPES, FULL_REPEATS, FULL_WARMUP)
    )
    meta = _environment(repeats, warmup, quick=args.quick)
    if meta["loadavg_start"] is not None and meta["loadavg_start"][0] > 0.5:
        print(f"warning: the machine is busy (load average {meta['loadavg_start'][0]:.2f}); timings will be noisy")
    print(
        f"torch {meta['torch']}, {meta['threads']} thread(s), {meta['cpu']}; "
        f"median of {repeats} calls after {warmup} warm-up call(s)\n"
    )

    rows = []
    for shape in shapes:
        x, grad_spikes = _inputs(shape)
        contenders = _contenders(x.shape)
        for pair in (("ours[snnTorch]", "snnTorch"), ("ours[SJ]", "SpikingJelly")):
            _assert_agree(*(contenders[name] for name in pair), x, grad_spikes, pair)
        for mode in MODES:
            samples = _time_interleaved(contenders, x, grad_spikes, mode, repeats, warmup)
            rows.append(_row(shape, mode, samples))
            print(_format_row(rows[-1], header=len(rows) == 1), flush=True)

    meta["loadavg_end"] = loadavg()
    write_json_atomic({"meta": meta, "rows": rows}, RESULTS)
    slower = [r for r in rows if max(r["ours/snnTorch"], r["ours/SpikingJelly"]) > TARGET_RATIO]
    print(f"\ntarget ours/theirs <= {TARGET_RATIO}: {len(rows) - len(slower)} of {len(rows)} rows meet it")
    print(f"wrote {RESULTS}")
    return 0


# --- the contenders: each maps x [T, N, ...] to spikes [T, N, ...] --------------------------------------


def _contenders(shape: torch.Size) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    import snntorch
    from spikingjelly.activation_based import neuron, surrogate

    leaky = snntorch.Leaky(beta=BETA, threshold=THRESHOLD, reset_mechanism="subtract")
    lif_node = neuron.LIFNode(
        tau=TAU,
        v_threshold=THRESHOLD,
        v_reset=0.0,
        decay_input=True,
        detach_reset=False,
        surrogate_function=surrogate.Sigmoid(),
        step_mode="m",
    )
    ours_snn = SnnTorchLeaky(reset_mechanism="subtract")  # ATan(2), like snntorch.Leaky's default
    ours_sj = SpikingJellyLIF(surrogate="sigmoid", v_reset=0.0, detach_reset=False, decay_input=True)
    snn_params = {"beta": BETA, "threshold": THRESHOLD, "graded": 1.0}
    sj_params = {"tau": TAU, "threshold": THRESHOLD}

    def snntorch_loop(x):
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = leaky(x[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)

    def spikingjelly_lif(x):
        lif_node.reset()
        return lif_node(x)

    def ours_snntorch(x):
        return multistep(x, ours_snn, snn_params, torch.zeros_like(x[0]), backend="torch").spikes

    def ours_spikingjelly(x):
        return multistep(x, ours_sj, sj_params, 0.0, backend="torch").spikes

    return {
        "ours[snnTorch]": ours_snntorch,
        "snnTorch": snntorch_loop,
        "ours[SJ]": ours_spikingjelly,
        "SpikingJelly": spikingjelly_lif,
    }


def _call(fn, x: torch.Tensor, grad_spikes: torch.Tensor, mode: str) -> torch.Tensor:
    """One timed unit of work: the forward alone, or the forward and the gradient w.r.t. x."""
    if mode == "fwd":
        with torch.no_grad():
            return fn(x)
    (grad_x,) = torch.autograd.grad(fn(x), x, grad_spikes)
    return grad_x


def _assert_agree(ours, theirs, x, grad_spikes, names) -> None:
    """The two contenders of a pair compute the same spikes and (closely) the same gradient."""
    x = x.detach().requires_grad_()
    s_ours, s_theirs = ours(x), theirs(x)
    if not torch.equal(s_ours, s_theirs):
        differ = int((s_ours != s_theirs).sum())
        raise AssertionError(f"{names[0]} and {names[1]} disagree on {differ} of {s_ours.numel()} spikes")
    rate = float(s_ours.detach().mean())
    if not 0 < rate < 1:
        raise AssertionError(f"degenerate input: spike rate {rate}")
    (g_ours,) = torch.autograd.grad(s_ours, x, grad_spikes)
    (g_theirs,) = torch.autograd.grad(s_theirs, x, grad_spikes)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-4, atol=1e-5, msg=lambda m: f"{names}: {m}")


# --- timing ------------------------------------------------------------------------------------------------


def _time_interleaved(contenders, x, grad_spikes, mode, repeats, warmup) -> dict[str, list[float]]:
    """Seconds per call of each contender, ``repeats`` samples each; round r runs them in an order rotated by r."""
    names = list(contenders)
    x = x.detach().requires_grad_(mode != "fwd")
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(warmup + repeats):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter()
                _call(contenders[name], x, grad_spikes, mode)
                elapsed = time.perf_counter() - start
                if r >= warmup:
                    samples[name].append(elapsed)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def _inputs(shape) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed input (firing rate around 20-40 %) and a fixed upstream gradient on the spikes."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen) * 1.0 + 0.6
    grad_spikes = torch.randn(shape, generator=gen)
    return x, grad_spikes


# --- reporting ---------------------------------------------------------------------------------------------


def _row(shape, mode, samples) -> dict:
    median = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "shape": list(shape),
        "neurons_per_step": int(torch.Size(shape[1:]).numel()),
        "mode": mode,
        "ms_per_call": {name: round(seconds * 1e3, 3) for name, seconds in median.items()},
        "ms_min": {name: round(min(values) * 1e3, 3) for name, values in samples.items()},
        "ours/snnTorch": round(median["ours[snnTorch]"] / median["snnTorch"], 3),
        "ours/SpikingJelly": round(median["ours[SJ]"] / median["SpikingJelly"], 3),
    }


_COLUMNS = [
    ("shape [T, N, ...]", 22),
    ("mode", 8),
    ("ours[snnTorch] ms", 18),
    ("snnTorch ms", 12),
    ("ours/snnTorch", 14),
    ("ours[SJ] ms", 12),
    ("SpikingJelly ms", 16),
    ("ours/SJ", 8),
]


def _format_row(row: dict, header: bool = False) -> str:
    ms = row["ms_per_call"]
    cells = [
        "[" + ", ".join(map(str, row["shape"])) + "]",
        row["mode"],
        f"{ms['ours[snnTorch]']:.2f}",
        f"{ms['snnTorch']:.2f}",
        _ratio(row["ours/snnTorch"]),
        f"{ms['ours[SJ]']:.2f}",
        f"{ms['SpikingJelly']:.2f}",
        _ratio(row["ours/SpikingJelly"]),
    ]
    line = "  ".join(cell.rjust(width) if i > 1 else cell.ljust(width) for i, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS)))
    if not header:
        return line
    head = "  ".join(name.rjust(width) if i > 1 else name.ljust(width) for i, (name, width) in enumerate(_COLUMNS))
    return head + "\n" + "-" * len(head) + "\n" + line


def _ratio(value: float) -> str:
    return f"{value:.2f}" + ("" if value <= TARGET_RATIO else " *")


def _environment(repeats: int, warmup: int, quick: bool) -> dict:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "snntorch": version("snntorch"),
        "spikingjelly": version("spikingjelly"),
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": loadavg(),
        "repeats": repeats,
        "warmup": warmup,
        "quick": quick,
        "statistic": "ms_per_call: median milliseconds per call; ms_min: the fastest call",
        "target": f"ours / theirs <= {TARGET_RATIO}",
    }










def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small shape and a few repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) before timing")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
