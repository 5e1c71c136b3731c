"""The launches to compile: each configuration (:mod:`.configs`) through the triton backend's public launch plan
(``triton_backend.launch_plan`` / ``backward_launch_plan``, ``triton_coupled``'s for the coupled bifurcation),
launched under the stand-in driver (:mod:`.driver`), which records how Triton specialises each kernel; and
SpikingJelly 2.0's Triton LIF, launched with the arguments its own launcher passes."""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass

from .configs import BENCH
from .driver import Recorder

FWD, BWD = "multistep_forward_kernel", "multistep_backward_kernel"
COUPLED_FWD, COUPLED_BWD = "coupled_forward_kernel", "coupled_backward_kernel"
#: what a recorded compile request holds, copied into its Launch
SPEC_FIELDS = ("kernel", "module", "signature", "constants", "attrs", "options")


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


def constant(spec: dict, name: str):
    return spec["constants"].get((list(spec["signature"]).index(name),))


def per_thread(spec: dict, block_name: str = "BLOCK") -> int:
    return max(constant(spec, block_name) // (32 * spec["options"]["num_warps"]), 1)


def our_launches(configs, recorder: Recorder) -> list[Launch]:
    """Run each configuration through the launch plans; a configuration is a dict (see ``configs.bench_configs``)."""
    import torch

    from bsnn_lightning.engine import triton_backend as tb
    from bsnn_lightning.engine.triton_mode import kernels_interpreted

    tb.ROUNDING_RULE = "cuda"  # the code a GPU runs: PyTorch's CUDA rounding rule (the tensors here are CPU's)
    launches = []
    for cfg in configs:
        if cfg.get("coupled"):
            launches += coupled_launches(cfg, recorder)
            continue
        dynamics, dtype, shape = cfg["dynamics"], cfg["dtype"], cfg["shape"]
        x = cfg.get("x")
        if x is None:
            x = torch.zeros(shape, dtype=dtype)
        params = cfg["params"]
        v0 = cfg.get("v0")
        if v0 is None:
            v0 = torch.zeros((), dtype=torch.float32)
        state = dynamics.compute_dtype(dtype)
        with recorder.active():
            forward = tb.launch_plan(x, v0, dynamics, params, return_v_seq=cfg.get("v_seq", False), save=cfg["train"])
            if kernels_interpreted():
                raise RuntimeError("Triton's interpreter is on; the kernels must be compiled (choose_triton_mode)")
            forward.launch()
            if cfg["train"]:
                grads = cfg.get("grads", (True, False, False))
                gs = torch.zeros(shape, dtype=dtype) if grads[0] else None
                gvf = torch.zeros(shape[1:], dtype=state) if grads[1] else None
                gvs = torch.zeros(shape, dtype=state) if grads[2] and cfg.get("v_seq", False) else None
                needs = cfg.get("needs", (True, False, False, False, False))
                tb.backward_launch_plan(x, v0, dynamics, params, checkpoints=forward.outputs[3], grad_spikes=gs,
                                        grad_v_final=gvf, grad_v_seq=gvs, needs=needs).launch()  # fmt: skip
        for spec in recorder.take():
            mode = "fwd" if spec["kernel"] == FWD else "bwd"
            launches.append(
                Launch(
                    label=f"{cfg['label']} {mode}",
                    steps=shape[0],
                    neurons_per_thread=per_thread(spec),
                    steps_per_iteration=constant(spec, "CHUNK"),
                    bytes_per_neuron_step=cfg.get("bytes", {}).get(mode),
                    group=cfg["label"],
                    **{k: spec[k] for k in SPEC_FIELDS},
                )
            )
    return launches


def coupled_launches(cfg, recorder: Recorder) -> list[Launch]:
    """A :class:`CoupledBifurcation` configuration through its own launch plans (``engine/triton_coupled.py``)."""
    import torch

    from bsnn_lightning.engine import triton_coupled as tc

    shape, dtype, channels = cfg["shape"], cfg["dtype"], cfg["shape"][2]
    x = torch.zeros(shape, dtype=dtype)
    params = {"coupling": torch.eye(channels), "threshold": cfg["threshold"]}
    v0 = cfg.get("v0") if cfg.get("v0") is not None else torch.zeros(())
    v_seq = cfg.get("v_seq", False)
    with recorder.active():
        forward = tc.launch_plan(x, v0, cfg["dynamics"], params, return_v_seq=v_seq, save=True)
        forward.launch()
        gvf = torch.zeros(shape[1:]) if v_seq else None
        gvs = torch.zeros(shape) if v_seq else None
        tc.backward_launch_plan(x, v0, cfg["dynamics"], params, h_seq=torch.zeros(shape),
                                grad_spikes=torch.zeros(shape, dtype=dtype), grad_v_final=gvf, grad_v_seq=gvs,
                                needs=cfg["needs"]).launch()  # fmt: skip
    # past CHANNEL_ROWS channels the state is staged: the time loop holds loops over channel chunks and channels
    staged = forward.constexprs["C_PAD"] > forward.constexprs["ROWS"]
    launches = []
    for spec in recorder.take():
        mode = "fwd" if spec["kernel"] == COUPLED_FWD else "bwd"
        launches.append(
            Launch(
                label=f"{cfg['label']} {mode}", steps=shape[0], neurons_per_thread=channels, steps_per_iteration=1,
                group=cfg["label"], loop_model=not staged, **{k: spec[k] for k in SPEC_FIELDS},
            )
        )
    return launches


def spikingjelly_launches(recorder: Recorder) -> list[Launch]:
    """SpikingJelly 2.0's Triton LIF as bench/kernels.py calls it (lif_multi_step, tau 2, hard reset to 0,
    decay_input, Sigmoid(4), store_v_seq False, contiguous tensors), launched with the arguments of its
    launcher (spikingjelly/_ops/lif/triton.py), which checks for a CUDA tensor before launching."""
    import torch
    from spikingjelly._ops.lif import triton as sj
    from spikingjelly._ops.triton_runtime import use_static_range_for_triton_neuron_kernel

    sys.path.insert(0, str(BENCH))
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
                    neurons_per_thread=per_thread(spec),
                    steps_per_iteration=steps,  # T is a constexpr: unrolled, or a loop (see loads_per_step)
                    loads_per_step=1 if forward else 2,  # x; h and grad_spikes
                    bytes_per_neuron_step=fwd if forward else both - fwd,
                    group=f"SpikingJelly {dname} T{steps}",
                    source="spikingjelly",
                    **{k: spec[k] for k in SPEC_FIELDS},
                )
            )
    return launches


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)
