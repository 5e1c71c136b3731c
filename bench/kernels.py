#!/usr/bin/env python
"""GPU benchmark of the triton backend's fused kernels against the libraries' own neuron loops.

Contenders, on the same input and the same upstream gradient, side by side in one run:

- ``ours[SJ-LIF]``: ``multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="triton")``;
- ``SpikingJelly``: SpikingJelly 2.0's own Triton LIF (``functional.lif_multi_step``, the same
  configuration as ``neuron.LIFNode(tau=2.0)``: decay_input, hard reset to 0, Sigmoid(4) surrogate),
  forced to its Triton implementation with ``SJ_LIF_CUDA_IMPLEMENTATION=triton`` and given the fp32
  initial state its Triton path requires (created once, outside the timing);
- ``ours[Leaky]``: ``multistep(x, SnnTorchLeaky(), {"beta": 0.9, ...}, backend="triton")``;
- ``snnTorch``: a Python loop over time of ``snntorch.Leaky(beta=0.9)`` (subtract reset, ATan), as the
  tutorials run it;
- ``reference``: our ``torch`` backend, SpikingJellyLIF configuration.

For T in {4, 8, 16, 32}, fp32 and bf16 inputs of ``2**29`` (537 M) neuron-steps per call (far beyond any
L2 cache), forward (under ``torch.no_grad()``) and forward+backward (the gradient with respect to x of a
fixed upstream gradient on the spikes). Each time is the median over rounds of back-to-back calls timed
with CUDA events (so Python overhead overlaps the GPU, as in training), contenders interleaved and their
order rotated. Bytes moved per neuron-step are the model of ``docs/kernels.md`` (for the unfused loops,
the floor every implementation must move: they move more); GB/s and the fraction of the bandwidth of a
device-to-device copy measured in the same run follow from them. ``held`` is the memory a forward with
autograd leaves allocated beyond its input and outputs, per neuron-step (what it saves for the backward).

Then one training step (forward, cross-entropy, backward, SGD) of a CIFAR10-DVS-shaped VGG-11 (T = 16,
batch 16, 2 x 128 x 128 frames, fp32) with each library's neurons, as ratios.

Before timing, each pair is checked to compute the same thing (equal spikes; close input gradients).

    python bench/kernels.py               # full run, a few minutes on one GPU
    python bench/kernels.py --quick       # small sizes, few repeats (smoke run on a GPU)
    python bench/kernels.py --cpu-smoke   # exercise the script on the CPU (Triton's interpreter, tiny
                                          # sizes; the numbers mean nothing and nothing is written)

Without a CUDA GPU (and without ``--cpu-smoke``) it prints a message and exits with status 0.
Writes ``bench/results/kernels.json`` (atomically).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from common import choose_triton_mode, version, write_json_atomic  # noqa: E402  (bench/common.py)

# Read by SpikingJelly when it is imported: its LIF then runs its Triton kernels on CUDA.
os.environ.setdefault("SJ_LIF_CUDA_IMPLEMENTATION", "triton")

STEPS = (4, 8, 16, 32)
NEURON_STEPS = 1 << 29  # 537 M: a GPU-bound call (the Python and launch overhead per call is some 0.1 ms)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MODES = ("fwd", "fwd+bwd")
TAU, THRESHOLD, BETA = 2.0, 1.0, 0.9
CHECKPOINT_EVERY = 16  # the backward's state checkpoints (bsnn_lightning.engine.triton_backend)
RESULTS = Path(__file__).resolve().parent / "results" / "kernels.json"
OURS = ("ours[SJ-LIF]", "ours[Leaky]")

FULL = dict(neuron_steps=NEURON_STEPS, steps=STEPS, rounds=7, calls=3, warmup=2, e2e=(16, 16, 128), e2e_repeats=10)
QUICK = dict(neuron_steps=1 << 22, steps=(4, 16), rounds=3, calls=2, warmup=1, e2e=(4, 4, 64), e2e_repeats=3)
CPU_SMOKE = dict(neuron_steps=1 << 10, steps=(4, 17), rounds=1, calls=1, warmup=1, e2e=(2, 2, 32), e2e_repeats=1)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if not torch.cuda.is_available() and not args.cpu_smoke:
        print(
            "bench/kernels.py times CUDA kernels, and this machine has no CUDA GPU "
            "(torch.cuda.is_available() is False): nothing measured. "
            "Run it on a GPU; `--cpu-smoke` only exercises the script."
        )
        return 0
    if args.cpu_smoke:
        choose_triton_mode("interpret")  # bench/common.py: before the kernels are first imported
    settings = CPU_SMOKE if args.cpu_smoke else (QUICK if args.quick else FULL)
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    clock = _Clock(device)
    meta = _environment(device, settings)
    print(f"{meta['device']}; torch {meta['torch']}, triton {meta['triton']}, SpikingJelly {meta['spikingjelly']}, snnTorch {meta['snntorch']}")
    print(f"SpikingJelly's LIF runs its {meta['spikingjelly_lif']!r} implementation\n")

    copy_gbps = _copy_bandwidth(device, clock, small=device.type == "cpu")
    print(f"device-to-device copy: {copy_gbps:.0f} GB/s (read + write)\n")

    rows = []
    for dtype_name, dtype in DTYPES.items():
        _check_agreement(_contenders(device), dtype, device)
        for steps in settings["steps"]:
            neurons = max(settings["neuron_steps"] // steps, 32)
            shape = (steps, 32, neurons // 32)
            x, grad_spikes = _inputs(shape, dtype, device)
            contenders = _contenders(device)
            held = {name: _held_bytes(fn, x, device) for name, fn in contenders.items()}
            for mode in MODES:
                seconds = _time_interleaved(contenders, x, grad_spikes, mode, clock, settings)
                row = _row(shape, dtype_name, mode, seconds, held, copy_gbps)
                rows.append(row)
                _print_row(row)
            del x, grad_spikes, contenders
            _release(device)

    e2e = _end_to_end(device, clock, settings)
    _print_e2e(e2e)
    meta["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    if device.type == "cuda":
        write_json_atomic({"meta": meta, "copy_gbps": round(copy_gbps, 1), "rows": rows, "end_to_end": e2e}, RESULTS)
        print(f"\nwrote {RESULTS}")
    return 0


# --- the contenders ----------------------------------------------------------------------------------------


def _contenders(device: torch.device) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """name -> f(x) returning the spikes [T, N, ...]; every f holds its own state across the sequence."""
    import snntorch
    from spikingjelly.activation_based import functional as sj_functional
    from spikingjelly.activation_based import surrogate as sj_surrogate

    # ours: the public module path users get (a neuron module, value checks at their default: deferred on a
    # GPU), not a private entry point
    ours_lif = _our_lif("triton").to(device)
    ours_leaky = _our_leaky().to(device)
    reference = _our_lif("torch").to(device)
    sj_sigmoid = sj_surrogate.Sigmoid()  # alpha = 4, as SpikingJellyLIF's default surrogate
    snn_leaky = snntorch.Leaky(beta=BETA, threshold=THRESHOLD).to(device)
    initial = {}

    def spikingjelly(x):
        v0 = initial.get(x.shape[1:])
        if v0 is None:  # its Triton path takes an fp32 state of x's step shape; made once per shape
            v0 = initial[x.shape[1:]] = torch.zeros(x.shape[1:], dtype=torch.float32, device=x.device)
        spikes, _, _ = sj_functional.lif_multi_step(x, v0, TAU, True, THRESHOLD, 0.0, sj_sigmoid, False)
        return spikes

    def snntorch_loop(x):
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = snn_leaky(x[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)

    return {
        "ours[SJ-LIF]": lambda x: _fresh_call(ours_lif, x),
        "SpikingJelly": spikingjelly,
        "ours[Leaky]": lambda x: _fresh_call(ours_leaky, x),
        "snnTorch": snntorch_loop,
        "reference": lambda x: _fresh_call(reference, x),
    }


def _our_lif(backend: str) -> nn.Module:
    """bsnn_lightning's LIF module with SpikingJelly's LIFNode defaults (tau, hard reset to 0, Sigmoid(4))."""
    import bsnn_lightning as bl

    return bl.LIFNeuron(tau=TAU, threshold=THRESHOLD, v_reset=0.0, surrogate="sigmoid:4", backend=backend)


def _our_leaky() -> nn.Module:
    """A snnTorch Leaky converted to the Triton backend in sequence mode (one call per sequence)."""
    import snntorch

    import bsnn_lightning as bl

    return bl.convert(snntorch.Leaky(beta=BETA, threshold=THRESHOLD, init_hidden=True), backend="triton", step_mode="m")


def _fresh_call(neuron: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One sequence from the resting state, as a training step runs it."""
    import bsnn_lightning as bl

    bl.reset_states(neuron)
    return neuron(x)


#: which contender each one is compared with, and whether spikes must agree at this dtype
_PAIRS = [("ours[SJ-LIF]", "SpikingJelly"), ("ours[Leaky]", "snnTorch"), ("ours[SJ-LIF]", "reference")]


def _check_agreement(contenders, dtype, device) -> None:
    """Equal spikes and close input gradients on a small input, so that every ratio compares equal work.

    In bf16, snnTorch keeps its membrane in bf16 while ours keeps fp32, so that pair is checked in fp32 only."""
    x, grad_spikes = _inputs((6, 4, 3, 50), dtype, device)
    results = {}
    for name, fn in contenders.items():
        leaf = x.detach().requires_grad_()
        spikes = fn(leaf)
        (grad,) = torch.autograd.grad(spikes, leaf, grad_spikes.to(spikes.dtype))
        results[name] = (spikes.detach().float(), grad.float())
    for ours, theirs in _PAIRS:
        if theirs == "snnTorch" and dtype != torch.float32:
            continue
        (s_ours, g_ours), (s_theirs, g_theirs) = results[ours], results[theirs]
        if not torch.equal(s_ours, s_theirs):
            raise SystemExit(f"{ours} and {theirs} disagree on spikes ({dtype}); the timings would compare different work")
        tol = 1e-4 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(g_ours, g_theirs, rtol=tol, atol=tol, msg=f"{ours} vs {theirs} input gradient ({dtype})")


# --- timing ------------------------------------------------------------------------------------------------


class _Clock:
    """Seconds per call of ``calls`` back-to-back calls: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def per_call(self, fn: Callable[[], object], calls: int) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / calls
        begin = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - begin) / calls


def _call(fn, x, grad_spikes, mode):
    if mode == "fwd":
        with torch.no_grad():
            return fn(x)
    spikes = fn(x)
    return torch.autograd.grad(spikes, x, grad_spikes.to(spikes.dtype))


def _time_interleaved(contenders, x, grad_spikes, mode, clock, settings) -> dict[str, float]:
    """Median seconds per call of each contender; round r runs them in an order rotated by r."""
    x = x.detach().requires_grad_(mode != "fwd")
    names = list(contenders)
    for name in names:  # compile, autotune, allocate
        for _ in range(settings["warmup"]):
            _call(contenders[name], x, grad_spikes, mode)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(settings["rounds"]):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(clock.per_call(lambda: _call(contenders[name], x, grad_spikes, mode), settings["calls"]))
    return {name: statistics.median(values) for name, values in samples.items()}


def _held_bytes(fn, x, device) -> float | None:
    """Bytes per neuron-step a forward with autograd keeps allocated beyond x and its spikes (CUDA only)."""
    if device.type != "cuda":
        return None
    leaf = x.detach().requires_grad_()
    _release(device)
    before = torch.cuda.memory_allocated(device)
    spikes = fn(leaf)
    held = torch.cuda.memory_allocated(device) - before - spikes.numel() * spikes.element_size()
    del spikes
    _release(device)
    return max(held, 0) / x.numel()


def _copy_bandwidth(device, clock, small: bool) -> float:
    """GB/s of a device-to-device copy of a 2 GiB fp32 buffer, counting the read and the write."""
    numel = (1 << 16) if small else (1 << 29)
    src = torch.empty(numel, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    seconds = statistics.median(clock.per_call(lambda: dst.copy_(src), 5) for _ in range(7))
    return 2 * src.numel() * src.element_size() / seconds / 1e9


# --- bytes moved ---------------------------------------------------------------------------------------------


def bytes_per_neuron_step(contender: str, mode: str, steps: int, elem: int) -> tuple[float, bool]:
    """The bytes one call moves per neuron-step (the model of docs/kernels.md), and whether it is that
    contender's own count (True) or only the floor every implementation must move (False: unfused loops)."""
    per_step = 2 * elem  # read x, write the spikes
    if contender in OURS:
        per_neuron = 4  # write the final state (fp32)
        if mode == "fwd+bwd":
            checkpoints = -(-steps // CHECKPOINT_EVERY) - 1
            per_step += 3 * elem  # read x again, read grad_spikes, write grad_x
            per_neuron += 2 * 4 * checkpoints  # each checkpoint written, then read
        return per_step + per_neuron / steps, True
    if contender == "SpikingJelly":
        per_step += 4  # write h (fp32), the tensor it saves for the backward
        per_neuron = 4 + 4  # read v0, write the final state
        if mode == "fwd+bwd":
            per_step += 2 * elem + 4  # read grad_spikes and h, write grad_x
            per_neuron += 3 * 4  # zeros for the final state's gradient (written, read), write grad v0
        return per_step + per_neuron / steps, True
    if mode == "fwd+bwd":
        per_step += 3 * elem  # the floor with nothing saved but x: read x, grad_spikes, write grad_x
    return float(per_step), False


def _row(shape, dtype_name, mode, seconds, held, copy_gbps) -> dict:
    steps, neuron_steps = shape[0], int(torch.Size(shape).numel())
    elem = 4 if dtype_name == "fp32" else 2
    contenders = {}
    for name, s in seconds.items():
        per, own = bytes_per_neuron_step(name, mode, steps, elem)
        gbps = per * neuron_steps / s / 1e9
        contenders[name] = {
            "ms": round(s * 1e3, 4),
            "bytes_per_neuron_step": round(per, 3),
            "bytes_model": "own" if own else "floor",
            "GB/s": round(gbps, 1),
            "of_copy": round(gbps / copy_gbps, 3),
            "held_bytes_per_neuron_step": None if held.get(name) is None else round(held[name], 3),
        }
    ratios = {
        "SpikingJelly/ours[SJ-LIF]": seconds["SpikingJelly"] / seconds["ours[SJ-LIF]"],
        "snnTorch/ours[Leaky]": seconds["snnTorch"] / seconds["ours[Leaky]"],
        "reference/ours[SJ-LIF]": seconds["reference"] / seconds["ours[SJ-LIF]"],
    }
    return {
        "shape": list(shape),
        "neuron_steps": neuron_steps,
        "dtype": dtype_name,
        "mode": mode,
        "contenders": contenders,
        "speedup": {k: round(v, 3) for k, v in ratios.items()},
    }


def _print_row(row) -> None:
    head = f"T={row['shape'][0]:<3} {row['dtype']:<5} {row['mode']:<8}"
    cells = []
    for name, c in row["contenders"].items():
        cells.append(f"{name} {c['ms']:.3f} ms {c['GB/s']:.0f} GB/s ({100 * c['of_copy']:.0f}%{'' if c['bytes_model'] == 'own' else ' floor'})")
    speed = ", ".join(f"{k} {v:.2f}x" for k, v in row["speedup"].items())
    print(head + " | " + " | ".join(cells) + "\n    " + speed)


# --- end to end --------------------------------------------------------------------------------------------


class _SnnTorchLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import snntorch

        self.leaky = snntorch.Leaky(beta=BETA, threshold=THRESHOLD)

    def forward(self, x):
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = self.leaky(x[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)


def _end_to_end(device, clock, settings) -> dict:
    """Median seconds of one training step of VGG-11 with each library's neurons, and the ratios."""
    from spikingjelly.activation_based import functional as sj_functional
    from spikingjelly.activation_based import neuron as sj_neuron

    import bsnn_lightning as bl
    from bsnn_lightning.models import SpikingVGG

    steps, batch, side = settings["e2e"]
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand((steps, batch, 2, side, side), generator=gen) < 0.1).float().to(device)
    labels = torch.randint(0, 10, (batch,), generator=gen).to(device)
    variants = {
        "ours[SJ-LIF]": lambda: _our_lif("triton"),
        "SpikingJelly": lambda: sj_neuron.LIFNode(tau=TAU, step_mode="m"),
        "ours[Leaky]": _our_leaky,
        "snnTorch": _SnnTorchLoop,
    }
    seconds = {}
    for name, neuron in variants.items():
        torch.manual_seed(0)
        model = SpikingVGG("vgg11", in_channels=2, num_classes=10, neuron=neuron).to(device)  # avg pooling, GAP head
        reset = sj_functional.reset_net if name == "SpikingJelly" else bl.reset_states
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def train_step():
            reset(model)  # SpikingJelly's neurons keep their state between calls
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(frames).mean(0), labels)
            loss.backward()
            optimizer.step()

        for _ in range(2):
            train_step()
        seconds[name] = statistics.median(clock.per_call(train_step, 1) for _ in range(settings["e2e_repeats"]))
        del model, optimizer
        _release(device)
    return {
        "model": "VGG-11 (conv3x3-BN-LIF, 2x2 average pooling), fp32, SGD step",
        "input": [steps, batch, 2, side, side],
        "ms": {k: round(v * 1e3, 2) for k, v in seconds.items()},
        "speedup": {
            "SpikingJelly/ours[SJ-LIF]": round(seconds["SpikingJelly"] / seconds["ours[SJ-LIF]"], 3),
            "snnTorch/ours[Leaky]": round(seconds["snnTorch"] / seconds["ours[Leaky]"], 3),
        },
    }


def _print_e2e(e2e) -> None:
    print(f"\nend to end, {e2e['model']}, input {e2e['input']}:")
    print("  " + ", ".join(f"{k} {v:.1f} ms" for k, v in e2e["ms"].items()))
    print("  " + ", ".join(f"{k} {v:.2f}x" for k, v in e2e["speedup"].items()))


# --- helpers -----------------------------------------------------------------------------------------------


def _inputs(shape, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed input (firing rate around 20-40 %) and a fixed upstream gradient on the spikes."""
    gen = torch.Generator(device=device).manual_seed(0)
    x = (torch.randn(shape, generator=gen, device=device) + 0.6).to(dtype)
    grad_spikes = torch.randn(shape, generator=gen, device=device).to(dtype)
    return x, grad_spikes


def _release(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def _environment(device, settings) -> dict:
    from spikingjelly.activation_based import functional as sj_functional

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        sj_lif = sj_functional.neuron_implementation("lif", device)["implementation"]
    else:
        name, sj_lif = f"CPU ({platform.processor() or platform.machine()}), Triton interpreter", "torch (CPU)"
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": version("triton"),
        "spikingjelly": version("spikingjelly"),
        "snntorch": version("snntorch"),
        "spikingjelly_lif": sj_lif,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
    }






def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--cpu-smoke", action="store_true", help="exercise the script on the CPU; measures nothing")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
