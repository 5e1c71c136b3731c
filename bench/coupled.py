#!/usr/bin/env python
"""The coupled bifurcation on a GPU: the fused Triton kernels against the torch backend, side by side.

    python bench/coupled.py              # on a CUDA GPU: C in {4, 8, 16, 32, 64}, fp32 and bf16, T = 16;
                                         # writes bench/results/coupled.json
    python bench/coupled.py --quick      # smaller layers (16 samples, fewer past 16 channels), fewer repeats
    python bench/coupled.py --cpu-smoke  # the same code path on the CPU through Triton's interpreter, tiny
                                         # sizes (3 channels in registers, 9 staged): checks the script,
                                         # measures nothing

For each channel count and dtype it first checks that the fused kernels' spikes equal the torch backend's on
this device bit for bit (the reference sums the channel mixing in a fixed order, which the kernel follows),
then times, interleaved round by round, the forward (``no_grad``) and the forward + backward (gradients of x
and of the coupling matrix) of three contenders on one layer ``[T, N, C, H, W]``:

- ``torch``: :class:`CoupledBifurcation` on the torch backend (a loop over time, ``2C`` elementwise operations
  per step for the mixing: 128 launches per step at 64 channels);
- ``triton``: the same on the triton backend (one fused kernel each way; past 8 channels the state is staged
  through a scratch buffer, so 32 and 64 channels time that path);
- ``diagonal``: :class:`DiagonalBifurcation` on the triton backend, the elementwise kernels' cost for the same
  number of neurons: how much the mixing itself costs.

It prints milliseconds per call, giga neuron-steps per second and the ratios torch/triton (the speed-up over
what a coupled layer ran on before) and triton/diagonal (the price of coupling).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "coupled.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller layer and fewer repeats")
    parser.add_argument("--cpu-smoke", action="store_true", help="exercise the script on the CPU; measures nothing")
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        from common import choose_triton_mode  # bench/common.py (this script's folder is on sys.path)

        choose_triton_mode("interpret")  # before triton is first imported
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print("bench/coupled.py needs a CUDA GPU; use --cpu-smoke to exercise it on the CPU")
        return 2
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    if args.cpu_smoke:
        steps, batch, side, channels, repeats = 3, 2, 4, (3, 9), dict(warmup=1, rounds=1, calls=1)
    elif args.quick:
        # the same number of neurons per step from 16 channels on: the torch contender's cost grows with C
        steps, batch, side, channels, repeats = 16, 16, 32, (4, 8, 16, 32, 64), dict(warmup=2, rounds=3, calls=5)
    else:
        steps, batch, side, channels, repeats = 16, 32, 32, (4, 8, 16, 32, 64), dict(warmup=3, rounds=7, calls=10)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for c in channels:
            shape = (steps, batch * 16 // max(c, 16) if args.quick else batch, c, side, side)
            _check_exact(shape, dtype, device)
            for mode in ("fwd", "fwd+bwd"):
                seconds = _time(shape, dtype, device, mode, repeats)
                rows.append(_row(shape, dtype, mode, seconds))
                _print(rows[-1])
    if not args.cpu_smoke:
        from common import write_json_atomic  # bench/common.py (this script's folder is on sys.path)

        write_json_atomic({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, RESULTS)
        print(f"wrote {RESULTS}")
    return 0


def _layer(shape, device, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    c = shape[2]
    coupling = torch.eye(c) * 0.8 + torch.randn(c, c, generator=g) * (0.3 / c**0.5)
    x = torch.randn(shape, generator=g) * 0.8 + 0.35
    return x.to(device), coupling.to(device)


def _contenders(coupling):
    from bsnn_lightning.engine import CoupledBifurcation, DiagonalBifurcation, multistep

    coupled, diagonal = CoupledBifurcation(surrogate="atan"), DiagonalBifurcation(surrogate="atan")
    eigenvalues = coupling.new_full((coupling.shape[0], 1, 1), -0.2, requires_grad=coupling.requires_grad)
    return {
        "torch": lambda x: multistep(x, coupled, {"coupling": coupling, "threshold": 1.0}, backend="torch").spikes,
        "triton": lambda x: multistep(x, coupled, {"coupling": coupling, "threshold": 1.0}, backend="triton").spikes,
        "diagonal": lambda x: multistep(
            x, diagonal, {"eigenvalues": eigenvalues.view(-1), "threshold": 1.0}, backend="triton"
        ).spikes,
    }


def _check_exact(shape, dtype, device) -> None:
    import torch

    x, coupling = _layer(shape, device, seed=1)
    contenders = _contenders(coupling)
    with torch.no_grad():
        ref, got = contenders["torch"](x.to(dtype)), contenders["triton"](x.to(dtype))
    if not torch.equal(ref, got):
        raise AssertionError(f"coupled spikes differ from the torch backend at {int((ref != got).sum())} of {ref.numel()}")


def _time(shape, dtype, device, mode, repeats) -> dict[str, float]:
    """Median seconds per call of each contender, interleaved round by round: ``bench/kernels.py``'s timing."""
    import torch
    from kernels import _Clock, _time_interleaved  # bench/kernels.py (this script's folder is on sys.path)

    x, coupling = _layer(shape, device)
    coupling.requires_grad_(mode != "fwd")
    grad = torch.randn(shape, device=device).to(dtype)
    return _time_interleaved(_contenders(coupling), x.to(dtype), grad, mode, _Clock(device), repeats)


def _row(shape, dtype, mode, seconds) -> dict:
    neuron_steps = 1
    for size in shape:
        neuron_steps *= size
    return {
        "shape": list(shape),
        "channels": shape[2],
        "dtype": str(dtype).replace("torch.", ""),
        "mode": mode,
        "ms": {name: round(s * 1e3, 4) for name, s in seconds.items()},
        "g_neuron_steps_per_s": {name: round(neuron_steps / s / 1e9, 2) for name, s in seconds.items()},
        "torch/triton": round(seconds["torch"] / seconds["triton"], 2),
        "triton/diagonal": round(seconds["triton"] / seconds["diagonal"], 2),
    }


def _print(row) -> None:
    ms = "  ".join(f"{name} {value:.3f} ms" for name, value in row["ms"].items())
    print(
        f"C={row['channels']:>2} {row['dtype']:>8} {row['mode']:>7}  {ms}  "
        f"torch/triton {row['torch/triton']:.2f}x  triton/diagonal {row['triton/diagonal']:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
