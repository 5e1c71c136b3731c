#!/usr/bin/env python
"""CPU benchmark (bytes, not time): what one training step keeps for its backward pass, side by side.

The CIFAR10-DVS VGG-11 of ``recipes/cifar10dvs_vgg11_imp_tets.yaml`` (``StagedVGG``: stages 1-1-2-4 of conv3x3 +
BN + SpikingJelly ``LIFNode`` (tau 2, soft reset, detach_reset, Sigmoid 4), widths 64-128-256-512, spike GAP,
per-step linear head), at T = 16 and 64, as:

- native: SpikingJelly's own ``LIFNode`` (its CPU path);
- converted, ``torch`` / ``triton`` backend: ``convert(net, imp="neuron", ...)``, as the recipe converts it
  (the Triton kernels run under its interpreter on a CPU);
- + memopt: the converted model after ``memopt.optimize_memory(level=1, checkpoint_budget="memory",
  compress=True)`` over the conv blocks and nodes (``bsnn_lightning.MemoryOptimization``'s defaults).

What is counted: every tensor autograd saves during the forward pass, through
``torch.autograd.graph.saved_tensors_hooks`` (so no GPU is needed), each storage once (the same storage saved
by two operations counts once), leaving out the model's parameters and buffers (a convolution saves its
weight, which the model holds anyway). That is what the step holds between forward and backward; memopt's
checkpoints save their inputs through the same hook (``torch.utils.checkpoint`` keeps them with
``save_for_backward``), a compressed input as its packed bits. Only the forward pass runs: bytes saved do not
depend on the values, and the backward pass adds nothing to them.

The batch is 1 sample and the frames are reduced from 128 x 128 to ``--size`` (default 64) to fit a small
machine's memory and time: every saved activation scales with N x H x W (the network is convolutional up to a global
average), so ratios between contenders hold at any size; the absolute figures scale by (128 / size)^2 x N.

    python bench/memory.py                 # T = 16 and 64, 64 x 64: about 15 minutes on 2 busy cores (the
                                           # Triton rows run under its interpreter and take most of it)
    python bench/memory.py --quick         # T = 4, 16 x 16
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
import time
from pathlib import Path

from common import choose_triton_mode, cpu_model, loadavg, version, write_json_atomic  # bench/common.py

choose_triton_mode("auto")  # before anything imports Triton: the interpreter without a GPU (or TRITON_INTERPRET's word)

import torch  # noqa: E402

import bsnn_lightning as bl  # noqa: E402
from bsnn_lightning.memory import neuron_block_types  # noqa: E402
from bsnn_lightning.models import StagedVGG  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"


def recipe_node():
    from spikingjelly.activation_based import neuron, surrogate

    return neuron.LIFNode(
        tau=2.0, decay_input=True, v_threshold=1.0, v_reset=None, detach_reset=True,
        surrogate_function=surrogate.Sigmoid(alpha=4.0), step_mode="m",
    )  # fmt: skip


def native_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return StagedVGG(in_channels=2, num_classes=10, neuron=recipe_node)


def contenders(example: torch.Tensor) -> dict:
    from spikingjelly.activation_based import functional, memopt

    def converted(backend):
        return bl.convert(copy.deepcopy(native_net()), imp="neuron", backend=backend, example_input=example)

    def optimized(net):
        def forward(model):
            functional.reset_net(model)
            return model(example)

        return memopt.optimize_memory(net, neuron_block_types(net), forward, level=1, checkpoint_budget="memory", compress=True)

    return {
        "native": native_net,
        "native + memopt": lambda: optimized(native_net()),
        "converted, torch": lambda: converted("torch"),
        "converted, triton": lambda: converted("triton"),
        "converted, torch + memopt": lambda: optimized(converted("torch")),
        "converted, triton + memopt": lambda: optimized(converted("triton")),
    }


def saved_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves in one forward pass of ``net`` on ``x``, leaving out the
    model's own parameters and buffers (a layer saves its weight, which the model holds anyway)."""
    from spikingjelly.activation_based import functional

    held = {t.untyped_storage().data_ptr() for t in [*net.parameters(), *net.buffers()]}
    seen: dict[tuple, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in held:
            seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return tensor

    functional.reset_net(net)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = net(x)
    total = sum(seen.values())
    del out
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 4 at 16 x 16: a smoke run")
    parser.add_argument("--size", type=int, default=64, help="frame height and width (the recipe's: 128)")
    parser.add_argument("--steps", type=int, nargs="+", default=[16, 64], help="time steps T")
    args = parser.parse_args(argv)
    size, steps = (16, [4]) if args.quick else (args.size, args.steps)

    rows = []
    started = time.time()
    print(f"CIFAR10-DVS VGG-11 (StagedVGG 1-1-2-4, 64-512), batch 1, {size} x {size} frames; MB saved for backward")
    print(f"{'T':>3}  {'contender':<28} {'MB saved':>10} {'/ native':>9} {'/ converted':>12}")
    for t in steps:
        torch.manual_seed(1)
        x = (torch.rand(t, 1, 2, size, size) < 0.2).float()
        figures = {}
        for name, make in contenders(x[:2]).items():
            net = make()
            figures[name] = saved_bytes(net, x)
            del net
            gc.collect()
            base = "converted, triton" if "triton" in name else "converted, torch"
            against = figures[base] if "memopt" in name and "converted" in name else None
            row = {
                "T": t, "contender": name, "bytes": figures[name], "vs_native": figures[name] / figures["native"],
                "vs_converted": None if against is None else figures[name] / against,
            }  # fmt: skip
            rows.append(row)
            vs_conv = "" if row["vs_converted"] is None else f"{row['vs_converted']:.3f}"
            print(f"{t:>3}  {name:<28} {figures[name] / 2**20:>10.1f} {row['vs_native']:>9.3f} {vs_conv:>12}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__, "spikingjelly": version("spikingjelly"), "triton": version("triton"),
        "cpu": cpu_model(), "loadavg_end": loadavg(), "seconds": round(time.time() - started, 1),
        "batch": 1, "size": size, "quick": args.quick,
        "counted": "bytes of distinct storages saved for backward in one forward pass (saved_tensors_hooks), "
        "parameters and buffers left out",
        "rows": rows,
    }  # fmt: skip
    write_json_atomic(result, RESULTS)
    print(f"written {RESULTS} ({result['seconds']} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
