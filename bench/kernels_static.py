#!/usr/bin/env python
"""A static performance model of the triton backend's kernels, built on a machine without a GPU.

The benchmark's calls (those of ``bench/kernels.py``: ``SpikingJellyLIF`` and ``SnnTorchLeaky`` with float
parameters, no initial state, T in {4, 8, 16, 32}, fp32 and bf16; forward under ``no_grad`` and
forward + backward with only the spikes carrying a gradient) are run through the real launcher
(``triton_backend._forward_impl`` / ``_backward_impl``) on CPU tensors, with Triton's interpreter off, a
stand-in CUDA driver and a ``jit_cache_hook`` that records each compile request and cancels it. Each
kernel is thereby specialised exactly as on a GPU (dtypes, 16-byte alignment, integers equal to 1 or
divisible by 16, constexprs, ``num_warps``), then compiled with ``triton.compile`` for sm_90 (or
``--arch``) with the ptxas inside the triton wheel. SpikingJelly 2.0's Triton LIF, the benchmark's other
contender, is compiled the same way from the arguments its launcher passes (when it is installed).

Per kernel it prints: registers, CTAs per SM, spills, shared and local memory, then from the SASS of the
time loop: instructions per neuron-step (fast path: the slow-path calls of IEEE division excluded),
whether every global load of an iteration comes before its first global store (``ld<st``) and the order of
them, and the bytes in flight per SM; then the DRAM bytes per neuron-step, a modelled fraction of the
H200's bandwidth (and at 1.5x the latency), what bounds it, and a modelled time per neuron-step; last, per
benchmark row, forward and forward+backward times and the ratios to SpikingJelly.

The model (``--latency-ns``, ``--bandwidth``, ``--clock-ghz`` change its figures; ``docs/kernels.md`` has
the before/after tables):

- one thread is simulated through its kernel's fast path (prologue, the loop ``ceil(T / CHUNK)`` times,
  epilogue): an instruction issues one clock after the previous one, or when the registers it reads (or
  overwrites) arrive from a global load issued a DRAM latency ``L`` earlier. Stores do not wait;
- *bytes in flight per SM* (Little's law): the bytes one loop iteration loads, each in flight for ``L``,
  over the iteration's simulated time, times the threads resident on an SM (registers allocated per warp in
  units of 256 out of 64 K, at most 64 warps and 32 CTAs per SM);
- one wave of the ``n`` threads resident on an SM (``w = n / 32`` warps) takes the longest of: its DRAM
  bytes at the SM's share of the bandwidth (``n x bytes / (B / SMs)``, bytes from the model of
  ``bench/kernels.py``: what the call must move), its instructions at four warp-instructions per clock
  (``w x I / (4 f)``), and one thread's simulated time. The modelled fraction of the bandwidth is the first
  over that longest, which names the bound.

Figures (H200 SXM): ``B`` = 4.8 TB/s (NVIDIA's H200 specification), 132 SMs and a 1.98 GHz boost clock (the
GH100 configuration of the H100 SXM5, which the H200 shares), ``L`` = 600 ns for a DRAM access (unloaded
pointer-chase figures for H100 are some 450-600 ns; under load it is longer, so the table repeats the
fraction at 1.5 L). What it leaves out: DRAM efficiency (a copy reaches less than the datasheet figure),
the latency of dependent arithmetic (some 4 clocks, counted as 1), limits on outstanding requests per SM,
L2 hits, the last partial wave, launch overhead, clock throttling. It ranks variants and finds
latency-bound loops; it does not replace ``bench/kernels.py`` on a GPU.

    python bench/kernels_static.py                     # the benchmark's kernels (about 2 min on 2 cores)
    python bench/kernels_static.py --repo /tmp/before  # the same, for another checkout (e.g. a worktree)
    python bench/kernels_static.py --set check --arch 90 80   # a small representative set; exit 1 on a
                                                      # compile error, a spill, local or shared memory
    python bench/kernels_static.py --set sweep        # 242 kernels: every dynamics, option, dtype (~25 min)
    python bench/kernels_static.py --set sweep --only immediate synaptic sj014   # the labels containing these
    python bench/kernels_static.py --set check --launch FORWARD_CHUNK=16 NUM_WARPS=8 BACKWARD_BLOCK=256
                                                      # other launch constants (bench/gpu_check.py's sweep)
    options: --jobs N, --json FILE, --keep DIR (ptx and SASS per kernel), --no-spikingjelly, --only TEXT ...

Exit status: 0 when every kernel compiled with no spill and no local memory (with ``--set check`` or
``sweep``: no shared memory either); 1 otherwise; 2 on a set-up error.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import io
import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

# Compile, do not interpret (the root conftest sets TRITON_INTERPRET for the tests); before triton loads.
os.environ.pop("TRITON_INTERPRET", None)

HERE = Path(__file__).resolve().parent
FWD, BWD = "multistep_forward_kernel", "multistep_backward_kernel"
COUPLED_FWD, COUPLED_BWD = "coupled_forward_kernel", "coupled_backward_kernel"

# --- the machine (H200 SXM) -------------------------------------------------------------------------------
SMS = 132
REGISTERS_PER_SM = 65536
MAX_WARPS_PER_SM = 64
MAX_CTAS_PER_SM = 32
SHARED_PER_SM = 228 * 1024
SCHEDULERS = 4  # warp schedulers per SM, one warp-instruction per clock each


@dataclass
class Machine:
    bandwidth: float = 4.8e12  # B/s
    clock: float = 1.98e9  # Hz
    latency: float = 600e-9  # s

    def describe(self) -> str:
        return (
            f"H200 SXM model: {self.bandwidth / 1e12:.1f} TB/s over {SMS} SMs ({self.bandwidth / SMS / 1e9:.1f} B/ns "
            f"per SM), {self.clock / 1e9:.2f} GHz, DRAM latency {self.latency * 1e9:.0f} ns "
            f"(so {self.bandwidth / SMS * self.latency / 1024:.1f} KB in flight per SM to reach the bandwidth)"
        )


# --------------------------------------------------------------------------------------------------------
# 1. The launches
# --------------------------------------------------------------------------------------------------------


@dataclass
class Launch:
    label: str  # e.g. "ours[SJ-LIF] bf16 T16 fwd+bwd"
    kernel: str  # the kernel's name
    signature: dict
    constants: dict
    attrs: dict
    options: dict
    steps: int  # T of the call
    neurons_per_thread: int
    steps_per_iteration: int  # CHUNK (SpikingJelly: T, its loop is unrolled)
    bytes_per_neuron_step: float | None = None  # DRAM bytes this kernel moves (benchmark calls only)
    group: str = ""  # the benchmark row (contender, dtype, T, mode)
    source: str = "ours"  # "ours" or "spikingjelly"
    module: str = ""  # where the kernel is defined
    loads_per_step: int = 0  # global loads per step, when the loop's unrolling is the compiler's choice
    loop_model: bool = True  # False: loops nested in the time loop (the staged coupled kernels): not modelled


class _Recorder:
    """A stand-in CUDA driver and a jit_cache_hook that records each compile request and cancels it."""

    def __init__(self, arch: int) -> None:
        self.arch = arch
        self.captured: list[dict] = []

    @contextlib.contextmanager
    def active(self):
        import torch
        from triton import knobs
        from triton.backends.compiler import GPUTarget
        from triton.runtime.driver import driver

        arch = self.arch

        class FakeCudaDriver:  # only what JITFunction.run asks before the compile hook
            def get_current_target(self):
                return GPUTarget("cuda", arch, 32)

            def get_current_device(self):
                return 0

            def get_current_stream(self, device=None):
                return 0

            def get_active_torch_device(self):
                return torch.device("cpu")

        def hook(*, key, repr, fn, compile, is_manual_warmup, already_compiled):
            self.captured.append(
                dict(
                    kernel=fn.name,
                    module=getattr(fn.module, "__name__", str(fn.module)),
                    signature=dict(compile["signature"]),
                    constants=dict(compile["constants"]),
                    attrs=dict(compile["configs"][0]),
                    options=dict(num_warps=compile["num_warps"], enable_fp_fusion=compile["enable_fp_fusion"]),
                )
            )
            return True  # cancel: no compile, no launch

        driver.set_active(FakeCudaDriver())
        knobs.runtime.jit_cache_hook = hook
        try:
            yield self
        finally:
            knobs.runtime.jit_cache_hook = None  # the stand-in driver stays: there is no real one here

    def take(self) -> list[dict]:
        out, self.captured = self.captured, []
        return out


def _constant(spec: dict, name: str):
    return spec["constants"].get((list(spec["signature"]).index(name),))


def _per_thread(spec: dict, block_name: str = "BLOCK") -> int:
    return max(_constant(spec, block_name) // (32 * spec["options"]["num_warps"]), 1)


def _our_launches(configs, recorder: _Recorder) -> list[Launch]:
    """Run each configuration through the launcher; a configuration is a dict (see ``_bench_configs``)."""
    import torch

    from bsnn_lightning.engine import triton_backend as tb

    if tb._interpreted(tb._kernels()):
        raise RuntimeError("Triton's interpreter is on (TRITON_INTERPRET); unset it")
    if hasattr(tb, "ROUNDING_RULE"):  # the code a GPU runs: PyTorch's CUDA rounding rule (the tensors here are CPU's)
        tb.ROUNDING_RULE = "cuda"
    launches = []
    for cfg in configs:
        if cfg.get("coupled"):
            launches += _coupled_launches(cfg, recorder)
            continue
        dynamics, dtype, shape = cfg["dynamics"], cfg["dtype"], cfg["shape"]
        x = cfg.get("x")
        if x is None:
            x = torch.zeros(shape, dtype=dtype)
        params = cfg["params"]
        if hasattr(tb, "_operands"):  # p0 may be computed from the parameters (SpikingJelly014LIF's decay)
            p0, p1, p2 = tb._operands(dynamics, params, x)
        else:  # an older checkout (--repo)
            fused = tb._FUSED[type(dynamics)]
            p0 = tb._as_tensor(params[fused.p0], x) if fused.p0 is not None else None
            p1 = tb._as_tensor(params["threshold"], x)
            p2 = tb._as_tensor(params[fused.p2], x) if fused.p2 is not None else None
        v0 = cfg.get("v0")
        if v0 is None:
            v0 = torch.zeros((), dtype=torch.float32)
        config = tb._Config.of(dynamics)
        if hasattr(config, "for_call"):  # the state's dtype, the rounding rule, which parameters are floats
            config = config.for_call(dynamics, x, params)
        state = dynamics.compute_dtype(dtype)
        with recorder.active():
            _, _, _, ckpt = tb._forward_impl(x, v0, p0, p1, p2, *config, cfg.get("v_seq", False), cfg["train"])
            if cfg["train"]:
                grads = cfg.get("grads", (True, False, False))
                gs = torch.zeros(shape, dtype=dtype) if grads[0] else None
                gvf = torch.zeros(shape[1:], dtype=state) if grads[1] else None
                gvs = torch.zeros(shape, dtype=state) if grads[2] and cfg.get("v_seq", False) else None
                needs = cfg.get("needs", (True, False, False, False, False))
                tb._backward_impl(gs, gvf, gvs, x, v0, p0, p1, p2, ckpt, *config, *needs)
        for spec in recorder.take():
            forward = spec["kernel"] == FWD
            mode = "fwd" if forward else "bwd"
            launches.append(
                Launch(
                    label=f"{cfg['label']} {mode}",
                    steps=shape[0],
                    neurons_per_thread=_per_thread(spec),
                    steps_per_iteration=_constant(spec, "CHUNK"),
                    bytes_per_neuron_step=cfg.get("bytes", {}).get(mode),
                    group=cfg["label"],
                    **{k: spec[k] for k in ("kernel", "module", "signature", "constants", "attrs", "options")},
                )
            )
    return launches


def _coupled_launches(cfg, recorder: _Recorder) -> list[Launch]:
    """A :class:`CoupledBifurcation` configuration through its own launcher (``engine/triton_coupled.py``)."""
    import torch

    from bsnn_lightning.engine import triton_coupled as tc

    shape, dtype, channels = cfg["shape"], cfg["dtype"], cfg["shape"][2]
    x = torch.zeros(shape, dtype=dtype)
    coupling, threshold = torch.eye(channels), cfg["threshold"]
    v0 = cfg.get("v0") if cfg.get("v0") is not None else torch.zeros(())
    config = tc._config(cfg["dynamics"])
    v_seq = cfg.get("v_seq", False)
    with recorder.active():
        tc._forward_impl(x, v0, coupling, threshold, *config, v_seq, True)
        gvf = torch.zeros(shape[1:]) if v_seq else None
        gvs = torch.zeros(shape) if v_seq else None
        tc._backward_impl(torch.zeros(shape, dtype=dtype), gvf, gvs, x, torch.zeros(shape), v0, coupling, threshold,
                          *config, *cfg["needs"])
    staged = tc._Shape(x).staged  # its time loop holds loops over channel chunks and channels
    launches = []
    for spec in recorder.take():
        mode = "fwd" if spec["kernel"] == COUPLED_FWD else "bwd"
        launches.append(
            Launch(
                label=f"{cfg['label']} {mode}", steps=shape[0], neurons_per_thread=channels, steps_per_iteration=1,
                group=cfg["label"], loop_model=not staged,
                **{k: spec[k] for k in ("kernel", "module", "signature", "constants", "attrs", "options")},
            )
        )
    return launches


def _coupled_configs(channels=(4, 8, 16, 32, 64)) -> list[dict]:
    """The coupled bifurcation's kernels, per channel count: a plain fp32 call (floats, gradients of x and the
    coupling), the typical 16-bit training call (a per-neuron IMP too) and every option at once (a full initial
    state, a per-channel threshold, v_seq and its gradient, every gradient). Up to
    ``triton_coupled.CHANNEL_ROWS`` channels the state is in registers, past that staged through the scratch."""
    import torch

    from bsnn_lightning.engine import CoupledBifurcation

    configs = []
    for c in channels:
        shape = (8, 2, c, 8, 8)  # 128 positions: a full program of 4 warps, as a real layer launches
        configs += [
            dict(coupled=True, label=f"coupled C{c} fp32 plain", dynamics=CoupledBifurcation(), dtype=torch.float32,
                 shape=shape, threshold=torch.ones(()), needs=(True, False, True, False)),
            dict(coupled=True, label=f"coupled C{c} bf16 typical", dynamics=CoupledBifurcation(surrogate="sigmoid"),
                 dtype=torch.bfloat16, shape=shape, threshold=torch.ones(()), v0=torch.zeros(shape[2:]),
                 needs=(True, True, True, False)),
            dict(coupled=True, label=f"coupled C{c} bf16 all", dtype=torch.bfloat16, shape=shape,
                 dynamics=CoupledBifurcation(v_reset=0.0, detach_reset=True, surrogate="atan"),
                 threshold=torch.ones((c, 1, 1)), v0=torch.zeros(shape[1:]), v_seq=True, needs=(True, True, True, True)),
        ]
    return configs


def _bench_configs() -> list[dict]:
    """The calls bench/kernels.py times (its shapes scaled down: the same specialisation, M divisible by 16)."""
    import torch

    sys.path.insert(0, str(HERE))
    from kernels import (  # bench/kernels.py
        BETA,
        CHECKPOINT_EVERY,
        DTYPES,
        STEPS,
        TAU,
        THRESHOLD,
        bytes_per_neuron_step,
    )

    from bsnn_lightning.engine import SnnTorchLeaky, SpikingJellyLIF

    contenders = {
        "ours[SJ-LIF]": (SpikingJellyLIF(), {"tau": TAU, "threshold": THRESHOLD}),
        "ours[Leaky]": (SnnTorchLeaky(), {"beta": BETA, "threshold": THRESHOLD, "graded": 1.0}),
    }
    configs = []
    for (name, (dynamics, params)), (dname, dtype), steps in itertools.product(
        contenders.items(), DTYPES.items(), STEPS
    ):
        elem = torch.empty((), dtype=dtype).element_size()
        fwd = bytes_per_neuron_step(name, "fwd", steps, elem)[0]
        both = bytes_per_neuron_step(name, "fwd+bwd", steps, elem)[0]
        train_fwd = fwd + 4 * (-(-steps // CHECKPOINT_EVERY) - 1) / steps  # + the checkpoints it writes
        shape = (steps, 32, 64)  # as the benchmark's (T, 32, 2**24 / T): M and the sample divisible by 16
        label = f"{name} {dname} T{steps}"
        configs.append(dict(label=f"{label} infer", dynamics=dynamics, params=params, dtype=dtype, shape=shape,
                            train=False, bytes={"fwd": fwd}))
        configs.append(dict(label=label, dynamics=dynamics, params=params, dtype=dtype, shape=shape, train=True,
                            bytes={"fwd": train_fwd, "bwd": both - train_fwd}))
    return configs


def _spikingjelly_launches(recorder: _Recorder) -> list[Launch]:
    """SpikingJelly 2.0's Triton LIF as bench/kernels.py calls it (lif_multi_step, tau 2, hard reset to 0,
    decay_input, Sigmoid(4), store_v_seq False, contiguous tensors), launched with the arguments of its
    launcher (spikingjelly/_ops/lif/triton.py), which checks for a CUDA tensor before launching."""
    import torch
    from spikingjelly._ops.lif import triton as sj
    from spikingjelly._ops.triton_runtime import use_static_range_for_triton_neuron_kernel

    sys.path.insert(0, str(HERE))
    from kernels import DTYPES, STEPS, TAU, THRESHOLD, bytes_per_neuron_step

    launches = []
    for (dname, dtype), steps in itertools.product(DTYPES.items(), STEPS):
        shape = (steps, 32, 64)
        x = torch.zeros(shape, dtype=dtype)
        v = torch.zeros(shape[1:], dtype=torch.float32)
        neurons = v.numel()
        spikes, voltages, charged = torch.empty_like(x), torch.empty_like(v), torch.empty(shape)
        gs, gv, gx, gv_init = torch.empty_like(x), torch.zeros_like(v), torch.empty_like(x), torch.empty_like(v)
        unroll = steps if use_static_range_for_triton_neuron_kernel(steps) else 1
        with recorder.active():
            sj._forward_kernel[(_cdiv(neurons, 256),)](
                x, v, spikes, voltages, charged, steps, neurons, TAU, THRESHOLD, 0.0,
                True, False, False, 256, None, enable_fp_fusion=False,
            )  # fmt: skip
            sj._backward_kernel[(_cdiv(neurons, 256),)](
                gs, gv, charged, gx, gv_init, steps, neurons, TAU, THRESHOLD, 0.0, 4.0,
                True, False, False, 0, False, unroll, 256, None, enable_fp_fusion=False,
            )  # fmt: skip
        elem = x.element_size()
        fwd = bytes_per_neuron_step("SpikingJelly", "fwd", steps, elem)[0]
        both = bytes_per_neuron_step("SpikingJelly", "fwd+bwd", steps, elem)[0]
        for spec in recorder.take():
            forward = spec["kernel"] == "_forward_kernel"
            mode = "fwd" if forward else "bwd"
            launches.append(
                Launch(
                    label=f"SpikingJelly {dname} T{steps} {mode}",
                    steps=steps,
                    neurons_per_thread=_per_thread(spec),
                    steps_per_iteration=steps,  # T is a constexpr: unrolled, or a loop (see loads_per_step)
                    loads_per_step=1 if forward else 2,  # x; h and grad_spikes
                    bytes_per_neuron_step=fwd if forward else both - fwd,
                    group=f"SpikingJelly {dname} T{steps}",
                    source="spikingjelly",
                    **{k: spec[k] for k in ("kernel", "module", "signature", "constants", "attrs", "options")},
                )
            )
    return launches


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check_configs() -> list[dict]:
    """A small representative set (the test suite compiles it for sm_90 and sm_80): the heaviest forward and
    backward (every option on, 16-bit x with v_seq and checkpoints, a ragged T), whole chunks of another
    dynamics in fp16, a layer whose neuron count is not a multiple of 16 (scalar accesses), snnTorch's
    immediate reset with every option (its backward keeps one more register tile: the states entering each
    step), SpikingJelly 0.0.0.0.14's product form, and the 16-bit states (a library's membrane kept in the
    input's dtype, every op rounded to it: SpikingJelly's LIF, PLIF and IF, snnTorch's membrane without a
    reset term), compiled with PyTorch's CUDA rule (a Python-float tau: a multiply by its reciprocal)."""
    import torch

    from bsnn_lightning.engine import (
        DiagonalBifurcation,
        SnnTorchLeaky,
        SnnTorchSynapticZeroImmediate,
        SpikingJelly014LIF,
        SpikingJellyIF,
        SpikingJellyLIF,
        SpikingJellyPLIF,
    )

    def heavy(label, dynamics, params, dtype, steps, sample=(3, 4, 8), batch=2, train=True, plain=False):
        shape = (steps, batch, *sample)
        made = {}
        for name, kind in params.items():
            if isinstance(kind, float):  # a Python float, as a library passes tau
                made[name] = kind
                continue
            layout = {"layer": (), "channel": (sample[0],) + (1,) * (len(sample) - 1), "neuron": sample}[kind]
            made[name] = torch.full(layout, 0.75)
        if plain:  # a recipe's call: a per-neuron initial state (the IMP) with its gradient, no v_seq, spikes' gradient
            return dict(label=label, dynamics=dynamics, params=made, dtype=dtype, shape=shape, train=train, v_seq=False,
                        v0=torch.zeros(sample), grads=(True, False, False), needs=(True, True, False, False, False))
        return dict(label=label, dynamics=dynamics, params=made, dtype=dtype, shape=shape, train=train, v_seq=True,
                    v0=torch.zeros(shape[1:]), grads=(True, True, True),
                    needs=(True, True, *(isinstance(made.get(n), torch.Tensor) for n in _p_names(dynamics))))

    return [
        heavy("check LIF sigmoid bf16 all T40", SpikingJellyLIF(), {"tau": "channel", "threshold": "neuron"},
              torch.bfloat16, 40),
        heavy("check Leaky zero atan fp16 all T8", SnnTorchLeaky(reset_mechanism="zero", surrogate="atan"),
              {"beta": "channel", "threshold": "neuron", "graded": "channel"}, torch.float16, 8),
        heavy("check bifurcation bf16 M=105 T40", DiagonalBifurcation(), {"eigenvalues": "neuron",
              "threshold": "channel"}, torch.bfloat16, 40, sample=(5, 7), batch=3, train=False),
        heavy("check Synaptic-zero-immediate sigmoid bf16 all T40", SnnTorchSynapticZeroImmediate(surrogate="sigmoid"),
              {"beta": "neuron", "threshold": "channel", "graded": "neuron"}, torch.bfloat16, 40),
        heavy("check SJ014-LIF hard fp16 all T17", SpikingJelly014LIF(v_reset=0.0, surrogate="atan"),
              {"tau": "channel", "threshold": "neuron"}, torch.float16, 17),
        # 16-bit states (issue 18): SpikingJelly's membrane under AMP, float tau and threshold as it passes them
        heavy("check LIF sigmoid bf16-state all T40", SpikingJellyLIF(state_dtype=torch.bfloat16),
              {"tau": 2.7, "threshold": 1.0}, torch.bfloat16, 40),
        heavy("check LIF soft detach sigmoid fp16-state IMP T16 (CIFAR10-DVS recipe)",
              SpikingJellyLIF(v_reset=None, detach_reset=True, state_dtype=torch.float16),
              {"tau": 2.0, "threshold": 1.0}, torch.float16, 16, sample=(64, 8, 8), plain=True),
        heavy("check LIF soft nodecay atan fp16-state T17", SpikingJellyLIF(v_reset=None, decay_input=False,
              surrogate="atan", state_dtype=torch.float16), {"tau": 2.7, "threshold": 1.0}, torch.float16, 17, plain=True),
        heavy("check PLIF hard fp16-state all T40", SpikingJellyPLIF(state_dtype=torch.float16),
              {"q": "layer", "threshold": 1.0}, torch.float16, 40),
        heavy("check IF soft bf16-state all T17", SpikingJellyIF(v_reset=None, state_dtype=torch.bfloat16),
              {"threshold": 1.0}, torch.bfloat16, 17, sample=(5, 7), batch=3),
        heavy("check Leaky none sigmoid bf16-state all T40",
              SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid", state_dtype=torch.bfloat16),
              {"beta": "layer", "threshold": "layer", "graded": "layer"}, torch.bfloat16, 40),
        heavy("check Leaky none sigmoid fp16-state T40",
              SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid", state_dtype=torch.float16),
              {"beta": "layer", "threshold": "layer", "graded": "layer"}, torch.float16, 40, plain=True),
        # the coupled kernels, staged, with every option at once: 16, 32 and 64 channels (the report's hidden layer)
        *[c for c in _coupled_configs(channels=(16, 32, 64)) if "all" in c["label"]],
    ]


def _p_names(dynamics) -> tuple:
    """The names of the kernels' p0, p1 (threshold) and p2 for a dynamics (None where it has none)."""
    names = dynamics.param_names
    p0 = names[0] if names[0] != "threshold" else None
    return (p0, "threshold", "graded" if "graded" in names else None)


def _sweep_configs() -> list[dict]:
    """Every dynamics x reset x flag, every surrogate and dtype, every value layout, odd shapes."""
    import torch

    from bsnn_lightning.engine import (
        DiagonalBifurcation,
        SnnTorchLeaky,
        SnnTorchLeakyImmediate,
        SnnTorchSynapticZero,
        SnnTorchSynapticZeroImmediate,
        SpikingJelly014LIF,
        SpikingJelly014PLIF,
        SpikingJellyIF,
        SpikingJellyLIF,
        SpikingJellyPLIF,
    )

    C, H, W = 3, 4, 8
    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    surrogates = ("atan", "sigmoid", "fast_sigmoid", "triangle")

    def value(kind, sample):
        if kind == "float":
            return 0.75
        if kind == "layer":
            return torch.full((), 0.75)
        if kind == "channel":
            return torch.full((sample[0],) + (1,) * (len(sample) - 1), 0.75)
        return torch.full(sample, 0.75)

    def config(label, dynamics, modes, dtype, steps, v0=None, sample=(C, H, W), batch=2, v_seq=True,
               train=True, grads=(True, True, True), needs=None):
        shape = (steps, batch, *sample)
        names = tuple(n for n in dynamics.param_names if n != "threshold") + ("threshold",)
        params = {n: value(modes.get(n, "float"), sample) for n in names}
        v0t = None if v0 is None else (torch.zeros(shape[1:]) if v0 == "full" else value(v0, sample))
        if needs is None:
            tensor = lambda n: isinstance(params.get(n), torch.Tensor)
            p0 = names[0] if names[0] != "threshold" else None
            needs = (True, v0t is not None, p0 is not None and tensor(p0), tensor("threshold"), tensor("graded"))
        if v0t is not None and v0t.dim() == 0:
            v0t = v0t.reshape(())
        return dict(label=label, dynamics=dynamics, params=params, dtype=dtype, shape=shape, v0=v0t,
                    v_seq=v_seq, train=train, grads=grads, needs=needs)

    dyns = []
    for cls, k in ((SpikingJellyLIF, "lif"), (SpikingJellyPLIF, "plif")):
        for decay, reset, detach in itertools.product((True, False), (0.0, None), (False, True)):
            dyns.append((f"{k}-{'decay' if decay else 'nodecay'}-{'soft' if reset is None else 'hard'}"
                         f"{'-detach' if detach else ''}",
                         lambda s, c=cls, d=decay, r=reset, t=detach: c(decay_input=d, v_reset=r, detach_reset=t,
                                                                        surrogate=s)))
    for reset, detach in itertools.product((0.0, None), (False, True)):
        hard = "soft" if reset is None else "hard"
        dyns.append((f"if-{hard}{'-detach' if detach else ''}",
                     lambda s, r=reset, t=detach: SpikingJellyIF(v_reset=r, detach_reset=t, surrogate=s)))
        dyns.append((f"bif-{hard}{'-detach' if detach else ''}",
                     lambda s, r=reset, t=detach: DiagonalBifurcation(v_reset=r, detach_reset=t, surrogate=s)))
    for mech in ("subtract", "zero", "none"):
        dyns.append((f"leaky-{mech}", lambda s, m=mech: SnnTorchLeaky(reset_mechanism=m, surrogate=s)))
    for mech in ("subtract", "zero"):
        dyns.append((f"leaky-immediate-{mech}", lambda s, m=mech: SnnTorchLeakyImmediate(reset_mechanism=m, surrogate=s)))
    dyns.append(("synaptic-zero", lambda s: SnnTorchSynapticZero(surrogate=s)))
    dyns.append(("synaptic-zero-immediate", lambda s: SnnTorchSynapticZeroImmediate(surrogate=s)))
    for cls, k in ((SpikingJelly014LIF, "sj014-lif"), (SpikingJelly014PLIF, "sj014-plif")):
        for reset, detach in itertools.product((0.0, None), (False, True)):
            dyns.append((f"{k}-{'soft' if reset is None else 'hard'}{'-detach' if detach else ''}",
                         lambda s, c=cls, r=reset, t=detach: c(v_reset=r, detach_reset=t, surrogate=s)))
    heavy = {"tau": "channel", "q": "neuron", "beta": "channel", "eigenvalues": "neuron", "threshold": "neuron",
             "graded": "channel"}
    name = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    out = []
    # every dynamics with every option on (T = 40: checkpoints, a last chunk of 8), surrogate and dtype rotating
    for i, (label, make) in enumerate(dyns):
        s, dt = surrogates[i % 4], dtypes[i % 3]
        out.append(config(f"sweep {label} {s} {name[dt]} all-options", make(s), heavy, dt, 40, v0="full"))
    # every surrogate and every dtype for LIF and Leaky
    lookup = dict(dyns)
    for label in ("lif-decay-hard", "leaky-subtract"):
        for s, dt in itertools.product(surrogates, dtypes):
            out.append(config(f"sweep {label} {s} {name[dt]} all-options", lookup[label](s), heavy, dt, 40,
                              v0="full"))
    # every forward / backward CHUNK, plain calls, and inference
    for (label, make), dt, steps in itertools.product(
        [("lif", lambda: SpikingJellyLIF()), ("leaky", lambda: SnnTorchLeaky())], dtypes, (1, 2, 3, 5, 9, 40)
    ):
        out.append(config(f"sweep {label} plain {name[dt]} T{steps}", make(), {}, dt, steps, v_seq=False,
                          grads=(True, False, False), needs=(True, False, False, False, False)))
        out.append(config(f"sweep {label} infer {name[dt]} T{steps}", make(), {}, dt, steps, v_seq=False,
                          train=False))
    # every value layout
    layouts = ("layer", "channel", "neuron", "full")
    pm = ("float", "layer", "channel", "neuron")
    for v0m, p0m, p1m, p2m in zip(layouts, pm, pm[1:] + pm[:1], pm[2:] + pm[:2]):
        out.append(config(f"sweep leaky v0={v0m} beta={p0m} thr={p1m} graded={p2m}", SnnTorchLeaky(),
                          {"beta": p0m, "threshold": p1m, "graded": p2m}, torch.bfloat16, 40, v0=v0m))
        out.append(config(f"sweep lif v0={v0m} tau={p0m} thr={p1m}", SpikingJellyLIF(),
                          {"tau": p0m, "threshold": p1m}, torch.float32, 17, v0=v0m))
    # shapes: not a multiple of 16, [T, N, C], [T, N], a single neuron; partial gradients
    out.append(config("sweep lif bf16 M=105", SpikingJellyLIF(), heavy, torch.bfloat16, 40, v0="full",
                      sample=(5, 7), batch=3))
    out.append(config("sweep leaky fp32 M=105", SnnTorchLeaky(), heavy, torch.float32, 40, v0="full",
                      sample=(5, 7), batch=3))
    out.append(config("sweep leaky [T,N,C]", SnnTorchLeaky(), heavy, torch.bfloat16, 40, v0="neuron",
                      sample=(96,)))
    out.append(config("sweep lif [T,N]", SpikingJellyLIF(), {"tau": "layer", "threshold": "layer"},
                      torch.float32, 40, v0="full", sample=(), batch=32))
    out.append(config("sweep lif M=1", SpikingJellyLIF(), {}, torch.float32, 40, sample=(), batch=1))
    out.append(config("sweep lif only grad v_final", SpikingJellyLIF(), heavy, torch.bfloat16, 40, v0="full",
                      grads=(False, True, False)))
    out.append(config("sweep bif params only", DiagonalBifurcation(), heavy, torch.float32, 40,
                      needs=(False, False, True, True, False)))
    out.append(config("sweep leaky-zero v0 only", SnnTorchLeaky(reset_mechanism="zero"), {}, torch.bfloat16, 40,
                      v0="full", needs=(False, True, False, False, False)))
    # snnTorch's immediate reset: plain calls and inference at every forward / backward CHUNK (the zero reset
    # keeps the states tile even then: its gradient needs r_t), and the subtract one with the threshold's
    # gradient only (the states tile for r_t alone)
    for mech, dt, steps in itertools.product(("zero", "subtract"), (torch.float32, torch.bfloat16), (1, 3, 17, 40)):
        make = lambda: SnnTorchLeakyImmediate(reset_mechanism=mech)
        out.append(config(f"sweep leaky-immediate-{mech} plain {name[dt]} T{steps}", make(), {}, dt, steps,
                          v_seq=False, grads=(True, False, False), needs=(True, False, False, False, False)))
        out.append(config(f"sweep leaky-immediate-{mech} infer {name[dt]} T{steps}", make(), {}, dt, steps,
                          v_seq=False, train=False))
    out.append(config("sweep leaky-immediate-subtract threshold only", SnnTorchLeakyImmediate(),
                      {"threshold": "channel"}, torch.bfloat16, 40, v_seq=False, grads=(True, False, False),
                      needs=(True, False, False, True, False)))
    out.append(config("sweep synaptic-zero-immediate fp32 M=105", SnnTorchSynapticZeroImmediate(), heavy,
                      torch.float32, 40, v0="full", sample=(5, 7), batch=3))
    out.append(config("sweep sj014-lif float tau plain bf16 T16", SpikingJelly014LIF(), {}, torch.bfloat16, 16,
                      v_seq=False, grads=(True, False, False), needs=(True, False, False, False, False)))
    return out


# --------------------------------------------------------------------------------------------------------
# 2. Compile one kernel and read its SASS (in a worker process)
# --------------------------------------------------------------------------------------------------------

_PTXAS = {
    "regs": re.compile(r"Used (\d+) registers"),
    "stack": re.compile(r"(\d+) bytes stack frame"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
}
_SASS_LINE = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*)((?:\.[A-Z0-9_]+)*)\s*([^;]*);")


def _compile(args) -> dict:
    launch, arch, keep = args
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget

    result = dict(label=launch.label, kernel=launch.kernel, arch=arch, ok=False)
    cache = tempfile.mkdtemp(prefix="kernels-static-")
    knobs.cache.dir = cache  # a fresh cache: ptxas really runs and prints its log
    knobs.nvidia.dump_ptxas_log = True
    start = time.perf_counter()
    try:
        import importlib

        fn = getattr(importlib.import_module(launch.module), launch.kernel)
        source = triton.compiler.ASTSource(fn=fn, signature=launch.signature, constexprs=launch.constants,
                                           attrs=launch.attrs)
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=launch.options)
        for name, pattern in _PTXAS.items():
            values = [int(v) for v in pattern.findall(log.getvalue())]
            result[name] = max(values) if values else 0
        result["shared"] = compiled.metadata.shared
        tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
        with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
            f.write(compiled.asm["cubin"])
        try:
            sass = subprocess.run([str(tools / "cuobjdump"), "-sass", f.name], capture_output=True, text=True,
                                  check=True).stdout
        finally:
            os.unlink(f.name)
        result["sass"] = sass
        if keep:
            stem = Path(keep) / f"sm{arch}-{re.sub(r'[^A-Za-z0-9_.=-]+', '_', launch.label)}"
            stem.with_suffix(".ptx").write_text(compiled.asm["ptx"])
            stem.with_suffix(".ttgir").write_text(compiled.asm["ttgir"])
            stem.with_suffix(".sass").write_text(sass)
        result["ok"] = True
    except Exception as error:  # a compile failure is a result
        result["error"] = f"{type(error).__name__}: {error}"[-3000:]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# --------------------------------------------------------------------------------------------------------
# 3. The SASS: the loop, its instructions, its loads and stores, one thread's time
# --------------------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    address: int
    predicate: str
    op: str
    modifiers: str
    operands: str

    @property
    def is_load(self) -> bool:
        return self.op == "LDG"

    @property
    def is_store(self) -> bool:
        return self.op == "STG"

    @property
    def width(self) -> int:
        """Bytes per thread of a global load or store."""
        mods = self.modifiers.split(".")
        for token, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
            if token in mods:
                return size
        return 4

    def registers(self) -> tuple[set[int], set[int]]:
        """(written, read) general registers; a ``.64`` operand names a pair, a 64/128-bit load a run."""
        parts = [p.strip() for p in self.operands.split(",")] if self.operands else []
        written, read = set(), set()
        no_dest = self.is_store or self.op in ("BRA", "EXIT", "BSSY", "BSYNC", "CALL", "RET", "BAR", "NOP",
                                               "WARPSYNC", "STS", "STL", "RED", "ATOM")
        for i, part in enumerate(parts):
            regs = set()
            for match in re.finditer(r"\bR(\d+)(\.64)?\b", part):
                base = int(match.group(1))
                regs.update((base, base + 1) if match.group(2) else (base,))
            if i == 0 and not no_dest and not part.startswith("["):
                if self.is_load:
                    regs = set(range(min(regs), min(regs) + max(self.width // 4, 1))) if regs else regs
                elif self.op.endswith("WIDE") or ".WIDE" in self.modifiers or ".64" in self.modifiers:
                    regs = {r for base in regs for r in (base, base + 1)}
                written |= regs
            else:
                read |= regs
        return written, read


def _parse(sass: str) -> list[Instruction]:
    out = []
    for line in sass.splitlines():
        match = _SASS_LINE.match(line)
        if match:
            address, predicate, op, modifiers, operands = match.groups()
            out.append(Instruction(int(address, 16), (predicate or "").strip(), op, modifiers, operands.strip()))
    return out


def _slow_paths(code: list[Instruction]) -> set[int]:
    """Indices of instructions a fast path skips: from a predicated branch over a CALL to its target."""
    index = {ins.address: i for i, ins in enumerate(code)}
    skipped = set()
    for i, ins in enumerate(code):
        if ins.op != "CALL":
            continue
        for j in range(i - 1, max(i - 8, -1), -1):
            branch = code[j]
            if branch.op == "BRA" and branch.predicate:
                target = _target(branch)
                if target is not None and target > ins.address and target in index:
                    skipped.update(range(j + 1, index[target]))
                break
    return skipped


def _target(ins: Instruction) -> int | None:
    match = re.search(r"0x([0-9a-f]+)", ins.operands)
    return int(match.group(1), 16) if match else None


def _kernel_body(code: list[Instruction]) -> list[Instruction]:
    """The kernel up to its last EXIT before the subroutines (IEEE division's slow path) and padding."""
    exits = [i for i, ins in enumerate(code) if ins.op == "EXIT"]
    calls = [_target(ins) for ins in code if ins.op == "CALL"]
    first_sub = min((t for t in calls if t is not None), default=None)
    end = len(code)
    if first_sub is not None:
        end = next((i for i, ins in enumerate(code) if ins.address >= first_sub), end)
    last_exit = max((i for i in exits if i < end), default=end - 1)
    return code[: last_exit + 1]


@dataclass
class LoopReport:
    found: bool  # False: no loop (T a constexpr, unrolled): the whole kernel is one iteration
    prologue: list = field(default_factory=list)  # fast-path instructions before, in and after the loop
    body: list = field(default_factory=list)
    epilogue: list = field(default_factory=list)
    load_bytes_per_iteration: int = 0
    loads_before_stores: bool = True
    order: str = ""
    shared_in_loop: int = 0
    local_in_loop: int = 0
    steps_per_iteration: int = 1
    iterations: int = 1

    @property
    def instructions(self) -> int:
        """Executed per thread over the whole kernel (fast paths)."""
        return len(self.prologue) + self.iterations * len(self.body) + len(self.epilogue)


def _analyse(sass: str, launch: "Launch") -> LoopReport:
    """The time loop of a kernel's SASS (the largest backward branch; the steps inside it are unrolled) and
    how often a thread runs it. A kernel with no loop (SpikingJelly's T is a constexpr) is one iteration."""
    code = _kernel_body(_parse(sass))
    skipped = _slow_paths(code)
    fast = [ins for i, ins in enumerate(code) if i not in skipped]
    index = {ins.address: i for i, ins in enumerate(fast)}
    loop = None
    for i, ins in enumerate(fast):
        if ins.op == "BRA":
            target = _target(ins)
            if target is not None and target < ins.address and target in index:
                span = (index[target], i)
                if loop is None or span[1] - span[0] > loop[1] - loop[0]:
                    loop = span
    if loop is None:
        report = LoopReport(found=False, body=fast)
    else:
        report = LoopReport(found=True, prologue=fast[: loop[0]], body=fast[loop[0] : loop[1] + 1],
                            epilogue=fast[loop[1] + 1 :])
    body = report.body
    memory = [ins for ins in body if ins.is_load or ins.is_store]
    report.load_bytes_per_iteration = sum(ins.width for ins in body if ins.is_load)
    loads = sum(ins.is_load for ins in body)
    if loop is None:
        report.steps_per_iteration = launch.steps
    elif launch.loads_per_step:  # a loop whose unrolling is the compiler's choice: count its step loads
        report.steps_per_iteration = max(loads // launch.loads_per_step, 1)
    else:
        report.steps_per_iteration = launch.steps_per_iteration
    report.iterations = -(-launch.steps // report.steps_per_iteration)
    report.order = _order(memory)
    first_store = next((i for i, ins in enumerate(memory) if ins.is_store), None)
    last_load = max((i for i, ins in enumerate(memory) if ins.is_load), default=None)
    report.loads_before_stores = first_store is None or last_load is None or last_load < first_store
    report.shared_in_loop = sum(ins.op in ("LDS", "STS") for ins in body)
    report.local_in_loop = sum(ins.op in ("LDL", "STL") for ins in body)
    return report


def simulate(parts: list[list[Instruction]], latency_cycles: float) -> list[float]:
    """Cycles one thread spends in each part, alone on its SM: an instruction issues one clock after the
    previous one, or when the registers it reads (or overwrites) have arrived from an earlier global load,
    ``latency_cycles`` after that load issued. Stores and everything else cost their issue clock."""
    ready: dict[int, float] = {}  # register -> clock its pending load delivers it
    now = 0.0
    out = []
    for code in parts:
        start = now
        for ins in code:
            written, read = ins.registers()
            waits = [ready[r] for r in read | written if r in ready]
            if waits:
                now = max(now, max(waits))
            for r in read | written:
                if r in ready and ready[r] <= now:
                    del ready[r]
            now += 1
            if ins.is_load:
                for r in written:
                    ready[r] = now + latency_cycles
        out.append(now - start)
    return out


def _order(memory: list[Instruction]) -> str:
    """Global loads (L) and stores (S) of one iteration, runs compressed: 'L16 S1 L1 S1' ..."""
    out, last, count = [], None, 0
    for ins in memory:
        kind = "L" if ins.is_load else "S"
        if kind == last:
            count += 1
        else:
            if last:
                out.append(f"{last}{count}")
            last, count = kind, 1
    if last:
        out.append(f"{last}{count}")
    text = " ".join(out)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------------------
# 4. The model
# --------------------------------------------------------------------------------------------------------


def occupancy(registers: int, warps_per_cta: int, shared: int) -> int:
    """CTAs per SM on sm_80 / sm_90: registers allocated per warp in units of 256, 64 warps, 32 CTAs."""
    per_warp = -(-max(registers, 1) * 32 // 256) * 256
    warps_by_registers = REGISTERS_PER_SM // per_warp
    ctas = min(MAX_CTAS_PER_SM, MAX_WARPS_PER_SM // warps_per_cta, warps_by_registers // warps_per_cta)
    if shared:
        ctas = min(ctas, SHARED_PER_SM // shared)
    return ctas


def model(launch: Launch, result: dict, loop: LoopReport, machine: Machine) -> dict:
    """Registers to occupancy, the SASS to a thread's time, and both to a fraction of the bandwidth."""
    warps = launch.options["num_warps"]
    ctas = occupancy(result["regs"], warps, result["shared"])
    threads = ctas * warps * 32
    out = dict(
        ctas_per_sm=ctas,
        warps_per_sm=ctas * warps,
        instructions_per_neuron_step=round(len(loop.body) / loop.steps_per_iteration / launch.neurons_per_thread, 1),
        steps_per_iteration=loop.steps_per_iteration,
        loads_before_stores=loop.loads_before_stores,
        order=loop.order,
    )
    cycles = machine.latency * machine.clock
    # a steady-state iteration (loads issued at the end of one may be consumed by the next)
    iteration = simulate([loop.body, loop.body], cycles)[1] if loop.found else simulate([loop.body], cycles)[0]
    # Little's law for one thread: the bytes it loads per iteration were each in flight for a latency
    out["bytes_in_flight_per_sm"] = round(loop.load_bytes_per_iteration * cycles / max(iteration, 1) * threads)
    out["iteration_latency_share"] = round(1 - len(loop.body) / max(iteration, 1), 2)  # waiting, not issuing
    if launch.bytes_per_neuron_step is None or not threads:
        return out
    neuron_steps = launch.neurons_per_thread * launch.steps  # per thread
    t_bytes = threads * neuron_steps * launch.bytes_per_neuron_step / (machine.bandwidth / SMS)
    t_issue = (threads / 32) * loop.instructions / (SCHEDULERS * machine.clock)
    fractions = {}
    for latency in (machine.latency, 1.5 * machine.latency):
        parts = [loop.prologue] + [loop.body] * loop.iterations + [loop.epilogue]
        t_thread = sum(simulate(parts, latency * machine.clock)) / machine.clock
        t = max(t_bytes, t_issue, t_thread)
        bound = "bandwidth" if t == t_bytes else ("issue" if t == t_issue else "latency")
        fractions[latency] = (t_bytes / t, t, bound)
    fraction, t, bound = fractions[machine.latency]
    out.update(
        bytes_per_neuron_step=launch.bytes_per_neuron_step,
        fraction=round(fraction, 3),
        fraction_slow_memory=round(fractions[1.5 * machine.latency][0], 3),
        bound=bound,
        ps_per_neuron_step=round(t / (threads * neuron_steps) / SMS * 1e12, 3),
    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("bench", "check", "sweep", "coupled"), default="bench",
                        help="bench: the benchmark's kernels with the model; check: a small representative set; "
                             "sweep: every dynamics, option, dtype and layout; coupled: the coupled bifurcation's "
                             "kernels at 4, 8, 16, 32 and 64 channels")
    parser.add_argument("--arch", type=int, nargs="+", default=[90], help="compute capabilities (90: H100/H200, 80: A100)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repo", help="import bsnn_lightning from this checkout (e.g. a git worktree)")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("--keep", help="keep the ptx and SASS of every kernel in this folder")
    parser.add_argument("--no-spikingjelly", action="store_true", help="do not model SpikingJelly's Triton LIF")
    parser.add_argument("--only", nargs="+", default=[], metavar="TEXT",
                        help="only the configurations whose label contains one of these (e.g. --set sweep --only "
                             "immediate synaptic sj014)")
    parser.add_argument("--launch", nargs="+", default=[], metavar="NAME=VALUE",
                        help="launch constants in place of the defaults (e.g. FORWARD_CHUNK=16 NUM_WARPS=8 "
                             "BACKWARD_BLOCK=256), through triton_backend.launch_constants")
    parser.add_argument("--latency-ns", type=float, default=600.0)
    parser.add_argument("--bandwidth", type=float, default=4.8, help="TB/s")
    parser.add_argument("--clock-ghz", type=float, default=1.98)
    args = parser.parse_args(argv)
    machine = Machine(args.bandwidth * 1e12, args.clock_ghz * 1e9, args.latency_ns * 1e-9)
    start = time.perf_counter()
    if args.repo:
        sys.path.insert(0, os.path.abspath(args.repo))
    try:
        import triton

        if "nvidia" not in triton.backends.backends:
            raise RuntimeError("this triton build has no NVIDIA backend")
        import bsnn_lightning

        recorder = _Recorder(args.arch[0])
        sets = {"bench": _bench_configs, "check": _check_configs, "sweep": _sweep_configs, "coupled": _coupled_configs}
        configs = sets[args.set]()
        if args.only:
            configs = [c for c in configs if any(text in c["label"] for text in args.only)]
        constants = {name: int(value) for name, value in (item.split("=", 1) for item in args.launch)}
        if constants:
            from bsnn_lightning.engine import triton_backend

            with triton_backend.launch_constants(**constants):
                launches = _our_launches(configs, recorder)
        else:
            launches = _our_launches(configs, recorder)
        if args.set == "bench" and not args.no_spikingjelly:
            try:
                launches += _spikingjelly_launches(recorder)
            except ImportError as error:
                print(f"SpikingJelly not modelled: {error}")
    except Exception:
        traceback.print_exc()
        print("kernels_static: SET-UP ERROR (see above)")
        return 2
    unique: dict[str, Launch] = {}
    same: dict[str, list[Launch]] = {}
    for launch in launches:
        key = json.dumps([launch.kernel, launch.signature, sorted(map(str, launch.constants.items())),
                          sorted(map(str, launch.attrs.items())), launch.options, launch.module], sort_keys=True)
        unique.setdefault(key, launch)
        same.setdefault(key, []).append(launch)
    print(f"triton {triton.__version__}; bsnn_lightning from {Path(bsnn_lightning.__file__).parent.parent}")
    print(f"{len(launches)} launches -> {len(unique)} distinct kernels; arch {args.arch}; {args.jobs} jobs")
    print(machine.describe())
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    work = [(launch, arch, args.keep) for arch in args.arch for launch in unique.values()]
    work.sort(key=lambda w: w[0].kernel != BWD)  # the slow ones first
    compiled: dict[tuple[str, int], dict] = {}
    with cf.ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=mp.get_context("fork")) as pool:
        for (launch, arch, _), result in zip(work, pool.map(_compile, work)):
            compiled[(launch.label, arch)] = result
    failures = []
    rows = []
    for key, launch in unique.items():
        for arch in args.arch:
            result = compiled[(launch.label, arch)]
            if not result["ok"]:
                failures.append(f"sm_{arch} {launch.label}: compile error\n{result['error']}")
                continue
            sass = result.pop("sass")
            loop = _analyse(sass, launch)
            ops = [ins.op for ins in _parse(sass)]
            result.update(LDS=ops.count("LDS"), STS=ops.count("STS"), LDL=ops.count("LDL"), STL=ops.count("STL"))
            for member in same[key]:  # identical kernels of other calls share the compile, not the call's T
                member_loop = loop if member is launch else _analyse(sass, member)
                row = dict(label=member.label, group=member.group, source=member.source, kernel=member.kernel,
                           arch=arch, steps=member.steps, chunk=member.steps_per_iteration,
                           neurons_per_thread=member.neurons_per_thread, num_warps=member.options["num_warps"],
                           **{k: result[k] for k in ("regs", "spill_stores", "spill_loads", "stack", "shared",
                                                     "LDS", "STS", "LDL", "STL", "seconds")})
                row.update(model(member, result, member_loop, machine))
                if not member.loop_model:  # the SASS's largest loop is not one time step's work
                    row.update(instructions_per_neuron_step=None, loads_before_stores=None,
                               bytes_in_flight_per_sm=None, order="(nested loops: not modelled)")
                row["shared_in_loop"] = member_loop.shared_in_loop
                row["local_in_loop"] = member_loop.local_in_loop
                row["loop_found"] = member_loop.found
                rows.append(row)
            bad = []
            if result["spill_stores"] or result["spill_loads"]:
                bad.append(f"spills {result['spill_stores']}/{result['spill_loads']} bytes")
            if result["LDL"] or result["STL"] or result["stack"]:
                bad.append(f"local memory (LDL {result['LDL']}, STL {result['STL']}, stack {result['stack']})")
            if args.set != "bench" and (result["LDS"] or result["STS"] or result["shared"]):
                bad.append(f"shared memory ({result['shared']} bytes, LDS {result['LDS']}, STS {result['STS']})")
            if bad and launch.source == "ours":
                failures.append(f"sm_{arch} {launch.label}: " + ", ".join(bad))
    _print(rows, args, machine)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(triton=triton.__version__, machine=vars(machine), rows=rows),
                                              indent=1))
    wall = time.perf_counter() - start
    for failure in failures:
        print("FAIL", failure)
    ours = [r for r in rows if r["source"] == "ours"]
    summary = []
    for arch in args.arch:
        for kernel, short in ((FWD, "fwd"), (BWD, "bwd"), (COUPLED_FWD, "coupled fwd"), (COUPLED_BWD, "coupled bwd")):
            regs = [r["regs"] for r in ours if r["arch"] == arch and r["kernel"] == kernel]
            ctas = [r["ctas_per_sm"] for r in ours if r["arch"] == arch and r["kernel"] == kernel]
            if regs:
                summary.append(f"sm_{arch} {short} regs {min(regs)}-{max(regs)} CTA/SM {min(ctas)}-{max(ctas)}")
    print(f"kernels_static: {'PASS' if not failures else 'FAIL'}: {len(unique)} kernels x {len(args.arch)} arch, "
          f"{len(failures)} failing; {'; '.join(summary)}; {wall:.0f}s")
    return 1 if failures else 0


def _print(rows: list[dict], args, machine: Machine) -> None:
    slow = round(1.5 * machine.latency * 1e9)
    width = max(len(r["label"]) for r in rows) if rows else 10
    header = (f"{'kernel':<{width}} {'arch':>4} {'regs':>4} {'CTA':>3} {'spill':>5} {'smem':>5} {'lmem':>4} "
              f"{'ins/ns':>6} {'ld<st':>5} {'KB fly':>6} {'B/ns':>5} {'BW%':>4} {f'@{slow}':>5} {'bound':>9} "
              f"{'ps/ns':>6}  global loads (L) / stores (S) of one iteration")
    print("\n" + header)
    print("-" * len(header))
    for r in rows:
        modelled = "fraction" in r
        print(
            f"{r['label']:<{width}} {r['arch']:>4} {r['regs']:>4} {r['ctas_per_sm']:>3} "
            f"{r['spill_stores'] + r['spill_loads']:>5} {r['shared']:>5} {r['LDL'] + r['STL'] + r['stack']:>4} "
            + (f"{r['instructions_per_neuron_step']:>6} {'yes' if r['loads_before_stores'] else 'NO':>5} "
               f"{r['bytes_in_flight_per_sm'] / 1024:>6.1f} " if r["instructions_per_neuron_step"] is not None
               else f"{'-':>6} {'-':>5} {'-':>6} ")
            + (f"{r['bytes_per_neuron_step']:>5.2f} {100 * r['fraction']:>4.0f} {100 * r['fraction_slow_memory']:>5.0f} "
               f"{r['bound']:>9} {r['ps_per_neuron_step']:>6.3f}" if modelled else f"{'-':>5} {'-':>4} {'-':>5} {'-':>9} {'-':>6}")
            + f"  {r['order']}"
        )
    if args.set != "bench":
        return
    # forward + backward per benchmark row, and the ratio to SpikingJelly
    print("\nmodelled time per neuron-step (ps), forward / forward+backward, and SpikingJelly / ours:")
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r["arch"] != args.arch[0] or "ps_per_neuron_step" not in r:
            continue
        name, dtype, steps = r["group"].replace(" infer", "").rsplit(" ", 2)
        slot = groups.setdefault((dtype, steps), {}).setdefault(name, {})
        if r["group"].endswith("infer") or name == "SpikingJelly":
            if r["kernel"] in (FWD, "_forward_kernel"):
                slot["fwd"] = r["ps_per_neuron_step"]
        if not r["group"].endswith("infer"):
            slot.setdefault("train", 0.0)
            slot["train"] += r["ps_per_neuron_step"]
    for (dtype, steps), contenders in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1][1:]))):
        cells = []
        for name, times in contenders.items():
            cells.append(f"{name} {times.get('fwd', float('nan')):.2f} / {times.get('train', float('nan')):.2f}")
        sj, ours = contenders.get("SpikingJelly"), contenders.get("ours[SJ-LIF]")
        ratio = ""
        if sj and ours:
            ratio = (f"  | SJ/ours fwd {sj['fwd'] / ours['fwd']:.2f}x, fwd+bwd {sj['train'] / ours['train']:.2f}x")
        print(f"  {dtype} {steps:<4} " + ", ".join(cells) + ratio)


if __name__ == "__main__":
    raise SystemExit(main())
