#!/usr/bin/env python
"""CPU benchmark of the multistep engine against the libraries' own neurons, and against the memory's floor.

Two comparisons, each on the same input and the same upstream gradient:

- ``snnTorch``: a Python loop over time of ``snntorch.Leaky(beta=0.9, threshold=1.0)`` (ATan surrogate,
  reset by subtraction), ``spk, mem = leaky(x[t], mem)`` with ``mem`` starting at zeros, spikes stacked,
  the way snnTorch's tutorials run it; against ``multistep(..., SnnTorchLeaky())`` started from the number
  0.0, as a converted ``snntorch.Leaky`` starts a new sequence (until 2026-12-07 20:45 UTC this contender
  started from ``torch.zeros_like(x[0])``, as the adapter then did).
- ``SpikingJelly``: ``neuron.LIFNode(step_mode="m", tau=2.0)`` (Sigmoid surrogate, hard reset to 0,
  ``decay_input=True``) on its own CPU path; against ``multistep(..., SpikingJellyLIF())``.

Ours runs twice: on the ``cpu`` backend (``ours``: the time loop compiled into one pass over memory per
direction, what ``auto`` picks for these shapes) and on the reference ``torch`` backend (``ref``). A
``copy`` of x into a preallocated tensor, timed in the same rounds, measures the bandwidth under the same load;
the floor of a row is the bytes a layer must move (per neuron-step, float32: x read and spikes written
forward, 8 bytes; with the backward, also the charged potential written and read back, the spikes' gradient
read and x's gradient written: 24 bytes, issue 23's count; the ``cpu`` backend moves 20 where its backward
charges again from x instead of reading a saved potential, SpikingJelly's LIF excepted) at that bandwidth.
Issue 23 states its floor at the memory's
bandwidth (a 268 MB copy), and a copy of x may run partly from the 32 MB L3 cache for a small layer (4 MB for
the [8, 128, 1024] linear layer), so a ``copy[memory]`` of 256 MiB, far larger than the caches, is timed in
the same rounds too: the ``memory floor`` columns. (In the run of 2026-12-07 15:23 UTC the two bandwidths
were within 20% of each other on every row, the copy of x mostly the slower: it is not the looser yardstick here.)

Modes: ``fwd`` (under ``torch.no_grad()``) and ``fwd+bwd`` (the forward, then the gradient w.r.t. x from a
fixed random gradient on the spikes). Before timing, each pair is checked to compute the same thing (equal
spikes, close gradients), and the ``cpu`` backend's first calls per shape are timed: its compile time
(once per shape class: a later shape with the same number of steps and rank reuses the compiled loop).
Each time is the median of several calls after a warm-up, with the contenders interleaved (and their order
rotated) so that drift and other processes hit all of them alike.

    python bench/engine_cpu.py                # full run, a few minutes on 2 cores; writes the JSON below
    python bench/engine_cpu.py --quick        # one small shape, a few repeats (smoke run; writes nothing)
    python bench/engine_cpu.py --threads 1    # torch.set_num_threads(1)
    python bench/engine_cpu.py --system-malloc  # without the cpu backend's malloc settings (engine/host_memory.py)

Prints a table and writes it as JSON to ``bench/results/engine_cpu.json`` (``--out`` elsewhere).
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

from bsnn_lightning.engine import SnnTorchLeaky, SpikingJellyLIF, host_memory, multistep
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
TARGET_RATIO = 0.5  #: ours / theirs at or below this: twice as fast (issue 23)
TARGET_FLOOR = 2.0  #: ours / floor at or below this: within twice the memory's floor
#: bytes per neuron-step a layer must move in float32 (see the module docstring)
FLOOR_BYTES = {"fwd": 8, "fwd+bwd": 24}
#: the memory yardstick: a copy this large (256 MiB of float32) runs at the memory's bandwidth, not a cache's
MEMORY_COPY_ELEMENTS = 64 << 20
#: the contenders that are yardsticks, not layers
COPIES = ("copy", "copy[memory]")
#: the pairs compared: (ours, theirs)
PAIRS = (("ours[snnTorch]", "snnTorch"), ("ours[SJ]", "SpikingJelly"))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.system_malloc:  # before the cpu backend's first call, which would keep freed memory otherwise
        os.environ[host_memory.MODE_VARIABLE] = "system"
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shapes, repeats, warmup = (
        (QUICK_SHAPES, QUICK_REPEATS, QUICK_WARMUP) if args.quick else (FULL_SHAPES, FULL_REPEATS, FULL_WARMUP)
    )
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    meta = _environment(repeats, warmup, quick=args.quick)
    load = meta["loadavg_start"]
    if load is not None:
        busy = " (the machine is busy: timings will be noisy)" if load[0] > 0.5 * meta["cpu_count"] else ""
        print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{busy}")
    print(
        f"torch {meta['torch']}, {meta['threads']} thread(s), {meta['cpu']}; "
        f"median of {repeats} calls after {warmup} warm-up call(s)\n"
    )

    rows, compile_seconds = [], []
    for shape in shapes:
        x, grad_spikes = _inputs(shape)
        contenders = _contenders(x)
        compile_seconds.append(_first_calls(contenders, x, grad_spikes))
        print(f"{_fmt_shape(shape)}: cpu backend's first calls {compile_seconds[-1]['seconds']:.1f} s (compiling)", flush=True)
        for ours, theirs in PAIRS:
            _assert_agree(contenders[ours], contenders[theirs], x, grad_spikes, (ours, theirs))
            _assert_agree(contenders[ours.replace("ours", "ref")], contenders[theirs], x, grad_spikes, (ours, theirs))
        for mode in MODES:
            samples = _time_interleaved(contenders, x, grad_spikes, mode, repeats, warmup)
            rows.append(_row(shape, mode, samples))
            print(_format_row(rows[-1], header=len(rows) == 1), flush=True)

    meta["loadavg_end"] = loadavg()
    meta["host_memory"] = host_memory.state()
    met = [r for r in rows if max(r["ours/snnTorch"], r["ours/SpikingJelly"]) <= TARGET_RATIO]
    near = [r for r in rows if r["ours/floor"] <= TARGET_FLOOR]
    near_memory = [r for r in rows if r["ours/memory_floor"] <= TARGET_FLOOR]
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in meta['loadavg_end'] or [])}")
    print(f"host memory: {meta['host_memory']}")
    print(f"target ours/theirs <= {TARGET_RATIO}: {len(met)} of {len(rows)} rows meet it")
    print(f"target ours/floor <= {TARGET_FLOOR}: {len(near)} of {len(rows)} rows meet it (floor: a copy of x)")
    print(f"target ours/memory floor <= {TARGET_FLOOR}: {len(near_memory)} of {len(rows)} rows meet it (floor: a 256 MiB copy)")
    if out is not None:
        write_json_atomic({"meta": meta, "compile": compile_seconds, "rows": rows}, out)
        print(f"wrote {out}")
    return 0


# --- the contenders: each maps x [T, N, ...] to spikes [T, N, ...] --------------------------------------


def _contenders(x: torch.Tensor) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
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
    copy_target = torch.empty_like(x)
    memory_source, memory_target = torch.ones(MEMORY_COPY_ELEMENTS), torch.empty(MEMORY_COPY_ELEMENTS)

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

    def ours_snntorch(backend):
        return lambda x: multistep(x, ours_snn, snn_params, 0.0, backend=backend).spikes

    def ours_spikingjelly(backend):
        return lambda x: multistep(x, ours_sj, sj_params, 0.0, backend=backend).spikes

    return {
        "ours[snnTorch]": ours_snntorch("cpu"),
        "ref[snnTorch]": ours_snntorch("torch"),
        "snnTorch": snntorch_loop,
        "ours[SJ]": ours_spikingjelly("cpu"),
        "ref[SJ]": ours_spikingjelly("torch"),
        "SpikingJelly": spikingjelly_lif,
        "copy": lambda x: copy_target.copy_(x),
        "copy[memory]": lambda x: memory_target.copy_(memory_source),
    }


def _call(fn, x: torch.Tensor, grad_spikes: torch.Tensor, mode: str) -> torch.Tensor:
    """One timed unit of work: the forward alone, or the forward and the gradient w.r.t. x."""
    if mode == "fwd":
        with torch.no_grad():
            return fn(x)
    (grad_x,) = torch.autograd.grad(fn(x), x, grad_spikes)
    return grad_x


def _first_calls(contenders, x, grad_spikes) -> dict:
    """Seconds of the ``cpu`` backend's first forward and forward+backward calls per contender (they compile
    its loops, unless an earlier shape of the same class did), minus a steady call's time."""
    seconds = 0.0
    for name in (ours for ours, _ in PAIRS):
        for mode in MODES:
            xx = x.detach().requires_grad_(mode != "fwd")
            start = time.perf_counter()
            _call(contenders[name], xx, grad_spikes, mode)
            first = time.perf_counter() - start
            start = time.perf_counter()
            _call(contenders[name], xx, grad_spikes, mode)
            seconds += max(first - (time.perf_counter() - start), 0.0)
    return {"shape": list(x.shape), "seconds": round(seconds, 2)}


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
                _call(contenders[name], x, grad_spikes, "fwd" if name in COPIES else mode)  # a copy in both modes
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
    numel = torch.Size(shape).numel()
    bandwidth = 8 * numel / median["copy"]  # bytes per second: x read and its copy written
    floor = FLOOR_BYTES[mode] * numel / bandwidth
    memory_bandwidth = 8 * MEMORY_COPY_ELEMENTS / median["copy[memory]"]
    memory_floor = FLOOR_BYTES[mode] * numel / memory_bandwidth
    ours = max(median[name] for name, _ in PAIRS)
    return {
        "shape": list(shape),
        "neurons_per_step": int(torch.Size(shape[1:]).numel()),
        "mode": mode,
        "ms_per_call": {name: round(seconds * 1e3, 3) for name, seconds in median.items() if name not in COPIES},
        "ms_min": {name: round(min(values) * 1e3, 3) for name, values in samples.items() if name not in COPIES},
        "ours/snnTorch": round(median["ours[snnTorch]"] / median["snnTorch"], 3),
        "ours/SpikingJelly": round(median["ours[SJ]"] / median["SpikingJelly"], 3),
        "ref/snnTorch": round(median["ref[snnTorch]"] / median["snnTorch"], 3),
        "ref/SpikingJelly": round(median["ref[SJ]"] / median["SpikingJelly"], 3),
        "copy_GB_per_s": round(bandwidth / 1e9, 2),
        "floor_bytes_per_neuron_step": FLOOR_BYTES[mode],
        "floor_ms": round(floor * 1e3, 3),
        "ours/floor": round(ours / floor, 3),
        "memory_copy_GB_per_s": round(memory_bandwidth / 1e9, 2),
        "memory_floor_ms": round(memory_floor * 1e3, 3),
        "ours/memory_floor": round(ours / memory_floor, 3),
    }


_COLUMNS = [
    ("shape [T, N, ...]", 20),
    ("mode", 8),
    ("ours[snn] ms", 12),
    ("snnTorch ms", 11),
    ("ours/snnTorch", 13),
    ("ref/snnTorch", 12),
    ("ours[SJ] ms", 11),
    ("SJ ms", 8),
    ("ours/SJ", 8),
    ("ref/SJ", 7),
    ("copy GB/s", 9),
    ("floor ms", 8),
    ("ours/floor", 10),
    ("mem GB/s", 8),
    ("mem floor", 9),
    ("ours/mem", 8),
]


def _format_row(row: dict, header: bool = False) -> str:
    ms = row["ms_per_call"]
    cells = [
        _fmt_shape(row["shape"]),
        row["mode"],
        f"{ms['ours[snnTorch]']:.2f}",
        f"{ms['snnTorch']:.2f}",
        _ratio(row["ours/snnTorch"], TARGET_RATIO),
        f"{row['ref/snnTorch']:.2f}",
        f"{ms['ours[SJ]']:.2f}",
        f"{ms['SpikingJelly']:.2f}",
        _ratio(row["ours/SpikingJelly"], TARGET_RATIO),
        f"{row['ref/SpikingJelly']:.2f}",
        f"{row['copy_GB_per_s']:.1f}",
        f"{row['floor_ms']:.2f}",
        _ratio(row["ours/floor"], TARGET_FLOOR),
        f"{row['memory_copy_GB_per_s']:.1f}",
        f"{row['memory_floor_ms']:.2f}",
        _ratio(row["ours/memory_floor"], TARGET_FLOOR),
    ]
    line = "  ".join(cell.rjust(width) if i > 1 else cell.ljust(width) for i, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS)))
    if not header:
        return line
    head = "  ".join(name.rjust(width) if i > 1 else name.ljust(width) for i, (name, width) in enumerate(_COLUMNS))
    note = "(* misses its target; ours: the cpu backend, ref: the torch backend, both / the library's time)"
    return note + "\n" + head + "\n" + "-" * len(head) + "\n" + line


def _fmt_shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _ratio(value: float, target: float) -> str:
    return f"{value:.2f}" + ("" if value <= target else " *")


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
        "target": f"ours / theirs <= {TARGET_RATIO}, ours / floor <= {TARGET_FLOOR}",
        "floor": "bytes per neuron-step (fwd 8, fwd+bwd 24) at the bandwidth of a copy of x timed in the same rounds",
        "memory_floor": "the same bytes at the bandwidth of a 256 MiB copy (larger than every cache) timed in the same rounds",
    }

def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small shape and a few repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) before timing")
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave malloc's settings as they are (BSNN_CPU_MALLOC=system): every call's outputs are fresh mappings",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"write the JSON here (default: {RESULTS.name} for a full run, nothing for --quick)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
