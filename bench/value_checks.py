"""What the engine's NaN/Inf check costs per neuron-layer call, in each mode, measured side by side.

For each layer size: the median time of a forward + backward of one ``LIFNeuron`` module call with
``check_finite`` set to "off", "sync" (evaluate and read the answer back at once), "defer" (a flag kept on the
device, read once per logging interval; the read is not in the timed call), printed as ratios to "off". On the
CPU "auto" is "sync"; on a GPU it is "defer". On a GPU the "sync" row also pays the wait for the device to
drain its queue, which is the cost the deferred mode avoids; run it there to see that figure.

    python bench/value_checks.py            # this machine's device (CUDA if available)
    python bench/value_checks.py --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_model, loadavg, version, write_json_atomic  # noqa: E402

import bsnn_lightning as bl  # noqa: E402
from bsnn_lightning.engine import checks  # noqa: E402

SIZES = [(8, 32, 128), (16, 32, 4096), (16, 16, 64 * 32 * 32)]  # [T, N, neurons]: tiny, MLP, conv layer
MODES = ("off", "sync", "defer")


def time_call(mode: str, size, device, repeats: int) -> float:
    neuron = bl.LIFNeuron(backend="torch", check_finite=mode).to(device)
    x = (torch.rand(size, device=device) * 2).requires_grad_()

    def call():
        neuron.reset_state()
        neuron(x).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    checks._DEFERRED.clear()  # the deferred flags are read once per logging interval, not here
    return statistics.median(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    repeats = 7 if args.quick else 25
    rows = []
    print(f"device {device}, torch {torch.__version__}, load {loadavg()}")
    for size in SIZES:
        # interleave the modes so that drift in the machine's load affects them alike
        seconds = {mode: [] for mode in MODES}
        for _ in range(3):
            for mode in MODES:
                seconds[mode].append(time_call(mode, size, device, repeats))
        median = {mode: statistics.median(values) for mode, values in seconds.items()}
        ratios = {mode: round(median[mode] / median["off"], 3) for mode in MODES}
        rows.append({"size": list(size), "ms": {m: round(v * 1e3, 3) for m, v in median.items()}, "ratio_to_off": ratios})
        print(f"[T, N, neurons] = {list(size)}: " + ", ".join(f"{m} {median[m] * 1e3:.3f} ms ({ratios[m]:.3f}x)" for m in MODES))
    result = {
        "device": str(device),
        "cpu": cpu_model(),
        "torch": version("torch"),
        "load": loadavg(),
        "rows": rows,
    }
    write_json_atomic(result, Path(__file__).resolve().parent / "results" / "value_checks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
