"""The one command for the day a GPU is lent: every GPU-only check, on one H100 or H200.

    python bench/gpu_check.py                # on a CUDA machine: runs everything, writes bench/results/gpu_check.json
    python bench/gpu_check.py --dry-run      # anywhere: the same parts on the CPU with tiny sizes (Triton's
                                             # interpreter), so that the first GPU run does not fail on a typo;
                                             # measures nothing, tunes nothing, writes nothing to the package

Parts, each with its own time limit (12 minutes together at most; leave some out with ``--skip`` to fit a
shorter lease); a part that fails is recorded and the others still run:

1. ``triton-tests``: the Triton tests with the kernels compiled (``TRITON_INTERPRET`` unset), not interpreted.
2. ``no-host-sync``: one training step (forward, TET loss, backward, optimizer step) of a converted VGG-11 under
   ``torch.cuda.set_sync_debug_mode("error")``, which raises on any operation that waits for the GPU.
3. ``tuning``: a sweep of the Triton launch constants (``engine/triton_backend.py``'s ``LAUNCH_CANDIDATES``),
   per dtype, on a benchmark-sized layer; the fastest per architecture and dtype is written to
   ``bsnn_lightning/engine/triton_tuning.json``, which the launcher reads.
4. ``kernels``: ``bench/kernels.py --quick`` (ours against SpikingJelly's Triton LIF and snnTorch's loop).
   ``coupled``: ``bench/coupled.py --quick`` (the fused coupled bifurcation against the torch backend, with
   a bit-for-bit check of their spikes on the GPU first).
5. ``training-step``: one VGG-11 training step per backend (SpikingJelly native, converted on ``torch``, converted
   on ``triton``), fp32 and 16-mixed (autocast), timed; the losses must agree across backends.
6. ``compile``: ``torch.compile`` (inductor) of the converted VGG-11's training step, first call and one more.

Verdicts printed at the end, one line per target of issue 11: the kernels at least 1.5x faster than SpikingJelly's
forward+backward at bf16, T = 16; no host synchronisation in a training step; the Triton tests pass compiled; the
compiled step runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gpu_check.json"
KERNELS_JSON = ROOT / "bench" / "results" / "kernels.json"
COUPLED_JSON = ROOT / "bench" / "results" / "coupled.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="rehearse every part on the CPU with tiny sizes")
    parser.add_argument("--skip", nargs="*", default=[], help="parts to leave out")
    args = parser.parse_args(argv)
    if args.dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is first imported
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("bench/gpu_check.py needs a CUDA GPU (torch.cuda.is_available() is False); use --dry-run to rehearse")
        return 2
    sys.path.insert(0, str(ROOT / "bench"))
    context = Context(dry_run=args.dry_run)
    report = {"dry_run": args.dry_run, "device": context.device_name(), "parts": {}}
    for name, part, limit in PARTS:
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            result = part(context)
            status = "ok"
        except Exception as error:  # a failed part is recorded; the others still run
            result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=6)}
            status = "failed"
        seconds = time.perf_counter() - start
        report["parts"][name] = {"status": status, "seconds": round(seconds, 1), "limit_s": limit, **result}
        print(f"[{status}] {name} ({seconds:.1f} s of {limit} s)" + (f": {result['error']}" if status == "failed" else ""))
    report["verdicts"] = verdicts(report)
    print("\nverdicts:")
    for line in report["verdicts"]:
        print("  " + line)
    if not args.dry_run:
        from common import write_json_atomic

        write_json_atomic(report, RESULTS)
        print(f"\nwrote {RESULTS}")
    failed = [name for name, part in report["parts"].items() if part["status"] != "ok"]
    return 1 if failed else 0


class Context:
    """Sizes and the device for a real run or a dry run."""

    def __init__(self, dry_run: bool) -> None:
        import torch

        self.dry_run = dry_run
        self.device = torch.device("cpu" if dry_run else "cuda")
        # VGG-11 input [T, N, 2, H, W]; a layer [T, N, neurons] for the tuning sweep
        self.vgg_input = (2, 2, 32) if dry_run else (16, 16, 128)
        self.layer = (4, 2, 256) if dry_run else (16, 32, 1 << 20)
        self.repeats = 1 if dry_run else 5

    def device_name(self) -> str:
        import torch

        return "cpu (dry run)" if self.dry_run else torch.cuda.get_device_name()


# --- the parts ------------------------------------------------------------------------------------------------


def triton_tests(context: Context) -> dict:
    env = dict(os.environ)
    if not context.dry_run:
        env.pop("TRITON_INTERPRET", None)  # compiled kernels, not the interpreter
    tests = ["tests/test_triton_kernels.py", "tests/test_triton_backend.py", "tests/test_triton_coupled.py"]
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    if context.dry_run:
        command += ["-k", "empty_batch"]  # one, to prove the command line
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    tail = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    if done.returncode != 0:
        raise RuntimeError(f"pytest exited {done.returncode}: {' '.join(tail) or done.stderr[-500:]}")
    return {"summary": " ".join(tail)}


def no_host_sync(context: Context) -> dict:
    import torch

    model, optimizer, frames, labels = vgg_training_setup(context, "triton" if not context.dry_run else "torch")
    step(model, optimizer, frames, labels)  # warm-up: compiles kernels, creates optimizer state
    if context.dry_run:
        step(model, optimizer, frames, labels)
        return {"note": "dry run: set_sync_debug_mode needs CUDA; the meta-device test covers the CPU"}
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(model, optimizer, frames, labels)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return {"host_syncs": 0}


def tuning(context: Context) -> dict:
    import torch

    from bsnn_lightning.engine import triton_backend

    candidates = triton_backend.LAUNCH_CANDIDATES
    results = {}
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        timings = []
        for constants in candidates[:2] if context.dry_run else candidates:
            with triton_backend.launch_constants(**constants):
                seconds = time_layer(context, dtype)
            timings.append((seconds, constants))
        best = min(timings, key=lambda item: item[0])
        results[dtype_name] = {
            "best": best[1],
            "ms": {json.dumps(c, sort_keys=True): round(s * 1e3, 4) for s, c in timings},
        }
    if not context.dry_run:
        arch = "sm_{}{}".format(*torch.cuda.get_device_capability())
        triton_backend.write_tuning({arch: {name: r["best"] for name, r in results.items()}})
    return {"results": results}


def _run_bench(context: Context, script: str, timeout: int) -> None:
    """``script --quick`` (``--cpu-smoke`` in a dry run); a RuntimeError with its stderr if it fails."""
    command = [sys.executable, script, "--cpu-smoke" if context.dry_run else "--quick"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}: {done.stderr[-800:]}")


def kernels(context: Context) -> dict:
    _run_bench(context, "bench/kernels.py", timeout=300)
    if context.dry_run:
        return {"note": "cpu smoke only"}
    data = json.loads(KERNELS_JSON.read_text())
    wanted = [r for r in data["rows"] if r["dtype"] == "bf16" and r["mode"] == "fwd+bwd" and r["shape"][0] == 16]
    return {"bf16_fwd_bwd_T16": wanted, "end_to_end": data.get("end_to_end")}


def coupled(context: Context) -> dict:
    _run_bench(context, "bench/coupled.py", timeout=240)
    if context.dry_run:
        return {"note": "cpu smoke only"}
    rows = json.loads(COUPLED_JSON.read_text())["rows"]
    return {"torch/triton": {f"C{r['channels']} {r['dtype']} {r['mode']}": r["torch/triton"] for r in rows}}


def training_step(context: Context) -> dict:
    import torch

    rows = {}
    for precision in ("fp32", "16-mixed"):
        losses = {}
        for backend in ("native", "torch", "triton"):
            if context.dry_run and backend == "triton":
                continue  # the interpreter would take minutes for a VGG-11
            model, optimizer, frames, labels = vgg_training_setup(context, backend)
            autocast = precision == "16-mixed" and not context.dry_run
            step(model, optimizer, frames, labels, autocast)
            seconds = []
            for _ in range(context.repeats):
                torch.manual_seed(0)
                start = time.perf_counter()
                loss = step(model, optimizer, frames, labels, autocast)
                if not context.dry_run:
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - start)
            losses[backend] = float(loss)
            rows[f"{precision}/{backend}"] = {"ms": round(statistics.median(seconds) * 1e3, 2), "loss": float(loss)}
        spread = max(losses.values()) - min(losses.values())
        rows[f"{precision}/loss_spread"] = spread
    return {"rows": rows}


def compile_step(context: Context) -> dict:
    import torch

    model, optimizer, frames, labels = vgg_training_setup(context, "torch" if context.dry_run else "triton")
    compiled = torch.compile(model, backend="aot_eager" if context.dry_run else "inductor")
    start = time.perf_counter()
    step(compiled, optimizer, frames, labels)
    first = time.perf_counter() - start
    start = time.perf_counter()
    step(compiled, optimizer, frames, labels)
    return {"first_call_s": round(first, 2), "second_call_s": round(time.perf_counter() - start, 3)}


PARTS = [
    ("triton-tests", triton_tests, 240),
    ("no-host-sync", no_host_sync, 60),
    ("tuning", tuning, 90),
    ("kernels", kernels, 120),
    ("coupled", coupled, 90),
    ("training-step", training_step, 60),
    ("compile", compile_step, 90),
]


# --- helpers ------------------------------------------------------------------------------------------------


def vgg_training_setup(context: Context, backend: str):
    """A VGG-11 of SpikingJelly LIF nodes, native or converted to ``backend``, with an optimizer and a batch."""
    import torch
    from spikingjelly.activation_based import neuron

    import bsnn_lightning as bl
    from bsnn_lightning.models import SpikingVGG

    torch.manual_seed(0)
    model = SpikingVGG("vgg11", in_channels=2, num_classes=10, neuron=lambda: neuron.LIFNode(tau=2.0, step_mode="m"))
    model = model.to(context.device)
    if backend != "native":
        # float32 membranes: the fused kernels' state (SpikingJelly keeps 16-bit ones under autocast)
        bl.convert(model, backend=backend, state_dtype="float32")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    steps, batch, side = context.vgg_input
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand((steps, batch, 2, side, side), generator=gen) < 0.1).float().to(context.device)
    labels = torch.randint(0, 10, (batch,), generator=gen).to(context.device)
    return model, optimizer, frames, labels


def step(model, optimizer, frames, labels, autocast: bool = False):
    import torch

    import bsnn_lightning as bl

    bl.reset_states(model)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(frames.device.type, dtype=torch.bfloat16, enabled=autocast):
        loss = bl.losses.label_smoothed_tet(model(frames), labels, epsilon=0.1, lam=0.05)
    loss.backward()
    optimizer.step()
    return loss.detach()


def time_layer(context: Context, dtype) -> float:
    """Median seconds of a forward + backward of one converted-LIF layer on the Triton backend."""
    import torch

    import bsnn_lightning as bl

    neuron = bl.LIFNeuron(backend="triton", surrogate="sigmoid:4").to(context.device)
    x = (torch.rand(context.layer, device=context.device) * 2).to(dtype).requires_grad_()
    samples = []
    for _ in range(context.repeats + 1):
        neuron.reset_state()
        start = time.perf_counter()
        neuron(x).sum().backward()
        if not context.dry_run:
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[1:] or samples)


def verdicts(report: dict) -> list[str]:
    parts = report["parts"]
    lines = []

    def status(name):
        return parts.get(name, {}).get("status", "skipped")

    lines.append(f"Triton tests with compiled kernels: {status('triton-tests')}")
    lines.append(f"no host synchronisation in a training step: {status('no-host-sync')}")
    kernels_part = parts.get("kernels", {})
    rows = kernels_part.get("bf16_fwd_bwd_T16") or []
    if rows:
        ratio = rows[0]["speedup"].get("SpikingJelly/ours[SJ-LIF]")
        verdict = "met" if ratio is not None and ratio >= 1.5 else "NOT met"
        lines.append(f"kernels >= 1.5x SpikingJelly's fwd+bwd at bf16, T=16: {verdict} ({ratio}x)")
    else:
        lines.append(f"kernels >= 1.5x SpikingJelly's fwd+bwd at bf16, T=16: not measured ({status('kernels')})")
    ratios = parts.get("coupled", {}).get("torch/triton")
    if ratios:
        lowest = min(ratios, key=ratios.get)
        lines.append(f"coupled bifurcation, fused vs torch backend: {min(ratios.values())}x to {max(ratios.values())}x "
                     f"(slowest case {lowest})")
    else:
        lines.append(f"coupled bifurcation, fused vs torch backend: not measured ({status('coupled')})")
    lines.append(f"compiled training step (inductor): {status('compile')}")
    lines.append(f"launch constants tuned and written: {status('tuning')}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
