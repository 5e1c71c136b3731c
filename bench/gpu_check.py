"""The one command for the day a GPU is lent: the GPU-only checks, fitted to an 8-minute lease on one H100.

    python bench/gpu_check.py                # on a CUDA machine: the default parts, writes bench/results/gpu_check.json
    python bench/gpu_check.py --long         # also the long parts (tuning sweep, coupled bench, compile, slow tests)
    python bench/gpu_check.py --dry-run      # anywhere: the same parts on the CPU with tiny sizes (Triton's
                                             # interpreter), so that the first GPU run does not fail on a typo;
                                             # measures nothing, tunes nothing, writes nothing to the package

Each part has a time limit, printed before it starts; a subprocess part is stopped at its limit, an in-process
part is sized to fit it. The default parts' limits add up to 420 s, so the whole run (with the interpreter
start-up and the first CUDA context) fits 8 minutes; the limits were set by construction (sizes, counts of
kernels to compile), not measured: no GPU was lent while writing this. A part that fails is recorded and the
others still run. Default parts:

1. ``triton-tests``: the fast Triton tests (``-m "not slow"``) with the kernels compiled, not interpreted.
2. ``exactness``: SpikingJelly's LIFNode, ParametricLIFNode and IFNode and snnTorch's Leaky, native against
   converted on the triton backend, on CUDA in fp32, fp16 and bf16 (the libraries' 16-bit membranes), taus
   1.7, 2.0, 2.7 and 3.3: spikes and membranes bit for bit, gradients to rounding.
3. ``no-host-sync``: one training step of a converted VGG-11 under ``torch.cuda.set_sync_debug_mode("error")``.
4. ``kernels``: ``bench/kernels.py --quick`` (ours against SpikingJelly's Triton LIF and snnTorch's loop).
5. ``recipe-steps``: one training step of each GPU recipe's network at its precision, per backend (native where
   the recipe's neurons are a library's, torch, triton): ms per step and the ratios.

Long parts (``--long``): ``tuning`` (the launch-constant sweep, written to ``engine/triton_tuning.json``),
``coupled`` (``bench/coupled.py --quick``), ``compile`` (inductor on a converted VGG-11 step), ``slow-tests``
(the slow Triton tests, compiled).

Verdicts printed at the end, one line per target.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--long", action="store_true", help="also the long parts (tuning, coupled, compile, slow tests)")
    args = parser.parse_args(argv)
    if args.dry_run:
        from common import choose_triton_mode  # bench/common.py

        choose_triton_mode("interpret")  # before triton is first imported
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("bench/gpu_check.py needs a CUDA GPU (torch.cuda.is_available() is False); use --dry-run to rehearse")
        return 2
    sys.path.insert(0, str(ROOT / "bench"))
    context = Context(dry_run=args.dry_run)
    report = {"dry_run": args.dry_run, "device": context.device_name(), "parts": {}}
    parts = PARTS + (LONG_PARTS if args.long else [])
    print("parts and their time limits: " + ", ".join(f"{name} {limit} s" for name, _, limit in parts if name not in args.skip))
    for name, part, limit in parts:
        if name in args.skip:
            continue
        print(f"[start] {name} (limit {limit} s)", flush=True)
        context.limit = limit * (DRY_RUN_SLACK if args.dry_run else 1)
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
        self.limit = 0  # the running part's time limit, seconds

    def device_name(self) -> str:
        import torch

        return "cpu (dry run)" if self.dry_run else torch.cuda.get_device_name()


# --- the parts ------------------------------------------------------------------------------------------------


TRITON_TESTS = ["tests/test_triton_kernels.py", "tests/test_triton_backend.py", "tests/test_triton_coupled.py"]


def triton_tests(context: Context, marker: str = "not slow") -> dict:
    from bsnn_lightning.engine.triton_mode import environment_for

    env = environment_for("interpret" if context.dry_run else "compile")  # on a GPU: compiled kernels
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", marker, *TRITON_TESTS]
    if context.dry_run:
        command += ["-k", "empty_batch"]  # one, to prove the command line
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=context.limit)
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


def slow_tests(context: Context) -> dict:
    return triton_tests(context, marker="slow")


def _run_bench(context: Context, script: str) -> None:
    """``script --quick`` (``--cpu-smoke`` in a dry run), stopped at the part's limit; a RuntimeError with its
    stderr if it fails."""
    command = [sys.executable, script, "--cpu-smoke" if context.dry_run else "--quick"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=context.limit)
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}: {done.stderr[-800:]}")


def kernels(context: Context) -> dict:
    _run_bench(context, "bench/kernels.py")
    if context.dry_run:
        return {"note": "cpu smoke only"}
    data = json.loads(KERNELS_JSON.read_text())
    wanted = [r for r in data["rows"] if r["dtype"] == "bf16" and r["mode"] == "fwd+bwd" and r["shape"][0] == 16]
    return {"bf16_fwd_bwd_T16": wanted, "end_to_end": data.get("end_to_end")}


def coupled(context: Context) -> dict:
    _run_bench(context, "bench/coupled.py")
    if context.dry_run:
        return {"note": "cpu smoke only"}
    rows = json.loads(COUPLED_JSON.read_text())["rows"]
    return {"torch/triton": {f"C{r['channels']} {r['dtype']} {r['mode']}": r["torch/triton"] for r in rows}}


def exactness(context: Context) -> dict:
    """Native library neurons against the same neurons converted to the triton backend, on the device: spikes and
    membranes bit for bit (fp32, and the libraries' own 16-bit membranes under fp16 and bf16 input), gradients
    to rounding; taus that are powers of two and not."""
    import torch

    checked = []
    for library, make, dtypes in _exactness_cases():
        for dtype in dtypes:
            for tau in (2.7,) if context.dry_run else (1.7, 2.0, 2.7, 3.3):
                label = f"{library} {dtype} tau={tau}"
                _compare_native(context, make(tau), getattr(torch, dtype), label)
                checked.append(label)
    return {"checked": len(checked), "cases": checked}


def _exactness_cases():
    """(library, neuron factory of tau, dtypes): SpikingJelly's three nodes (16-bit membranes under 16-bit input),
    snnTorch's Leaky (subtract: float32 membrane; none: the input's dtype)."""
    cases = []
    try:
        from spikingjelly.activation_based import neuron as sj, surrogate

        cases += [
            ("SJ LIFNode hard", lambda tau: sj.LIFNode(tau=tau, step_mode="m"), ("float32", "float16", "bfloat16")),
            ("SJ LIFNode soft nodecay detach", lambda tau: sj.LIFNode(
                tau=tau, v_reset=None, decay_input=False, detach_reset=True, surrogate_function=surrogate.ATan(),
                step_mode="m"), ("float32", "float16", "bfloat16")),
            ("SJ ParametricLIFNode", lambda tau: sj.ParametricLIFNode(init_tau=tau, step_mode="m"), ("float32", "bfloat16")),
            ("SJ IFNode soft", lambda tau: sj.IFNode(v_reset=None, step_mode="m"), ("float32", "float16")),
        ]
    except ImportError:
        pass
    try:
        import snntorch

        cases += [
            ("snnTorch Leaky subtract", lambda tau: snntorch.Leaky(beta=1 - 1 / tau), ("float32", "float16")),
            ("snnTorch Leaky none", lambda tau: snntorch.Leaky(beta=1 - 1 / tau, reset_mechanism="none"), ("bfloat16",)),
        ]
    except ImportError:
        pass
    if not cases:
        raise RuntimeError("neither SpikingJelly nor snnTorch is installed: nothing to compare")
    return cases


def _compare_native(context: Context, native, dtype, label: str) -> None:
    """One neuron layer, native and converted (triton), same input and upstream gradient."""
    import copy

    import torch

    import bsnn_lightning as bl

    converted = bl.convert(copy.deepcopy(native), backend="triton")  # the interpreter in a dry run
    steps, batch, width = (8, 2, 64) if context.dry_run else (16, 32, 4096)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn((steps, batch, width), generator=gen) * 0.8 + 0.5).to(context.device, dtype)
    upstream = torch.randn((steps, batch, width), generator=gen).to(context.device, dtype)
    results = []
    for model in (native.to(context.device), converted.to(context.device)):
        bl.reset_states(model)
        leaf = x.clone().requires_grad_()
        out = _run_layer(model, leaf)
        spikes = out[0] if isinstance(out, tuple) else out
        (spikes.float() * upstream.float()).sum().backward()
        v = model.mem if hasattr(model, "mem") else model.v
        results.append((spikes.detach(), v.detach().clone(), leaf.grad))
    (s0, v0, g0), (s1, v1, g1) = results
    if not (torch.equal(s0, s1) and torch.equal(v0, v1)):
        raise AssertionError(f"{label}: spikes or membrane differ from native ({int((s0 != s1).sum())} spikes)")
    torch.testing.assert_close(g1.float(), g0.float(), rtol=5e-2, atol=5e-2 * (float(g0.abs().max()) + 1), msg=label)


def _run_layer(model, x):
    """A time-major sequence through one neuron: SpikingJelly's multi-step call, snnTorch's per-step loop."""
    import torch

    if hasattr(model, "step_mode"):
        return model(x)
    out = []
    for t in range(x.shape[0]):
        step = model(x[t])
        out.append(step[0] if isinstance(step, tuple) else step)
    return torch.stack(out)


def recipe_steps(context: Context) -> dict:
    """One training step (forward, loss, backward) of each GPU recipe's network at the recipe's precision, per
    backend: ms per step (median of ``repeats`` after a warm-up) and the ratios to the torch backend."""
    import torch

    rows = {}
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        recipe = _gpu_recipe(path)
        if recipe is None:
            continue
        name, dtype, library = path.stem, recipe["dtype"], recipe["library"]
        backends = (["native"] if library else []) + ["torch", "triton"]
        if context.dry_run:
            backends = ["torch"]  # the interpreter would take minutes for these networks
        timings = {}
        for backend in backends:
            net, batch = _recipe_net(context, path, backend)
            for _ in range(1 if context.dry_run else 4):  # a warm-up (kernels compiled), then 3 timed
                start = time.perf_counter()
                _recipe_step(net, batch, dtype, context)
                if not context.dry_run:
                    torch.cuda.synchronize()
                timings.setdefault(backend, []).append(time.perf_counter() - start)
        ms = {b: round(statistics.median(t[1:] or t) * 1e3, 2) for b, t in timings.items()}
        rows[name] = {"precision": recipe["precision"], "ms": ms,
                      "torch/triton": round(ms["torch"] / ms["triton"], 2) if "triton" in ms else None,
                      "native/triton": round(ms["native"] / ms["triton"], 2) if "native" in ms and "triton" in ms else None}
        print(f"  {name}: {rows[name]}", flush=True)
    return {"rows": rows}


def _gpu_recipe(path: Path) -> dict | None:
    """The recipe's precision and whether its neurons are a library's, or None for a CPU recipe."""
    import torch
    import yaml

    text = path.read_text()
    config = yaml.safe_load(text)
    if config["trainer"].get("accelerator", "auto") == "cpu":
        return None
    precision = str(config["trainer"].get("precision", "32-true"))
    dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision, torch.float32)
    return {"precision": precision, "dtype": dtype, "library": "spikingjelly" in text or "snntorch" in text}


def _recipe_net(context: Context, path: Path, backend: str):
    """The recipe's network as ``bsnn`` builds it, converted to ``backend`` as its ConvertNeurons callbacks
    would (or with its own neurons set to it), on the device, and one batch of the recipe's shape."""
    import lightning as L
    import torch

    from bsnn_lightning.callbacks import ConvertNeurons
    from bsnn_lightning.cli import BsnnCLI
    from bsnn_lightning.convert import spiking_neurons

    text = path.read_text()
    args = ["--config", str(path), "--trainer.accelerator=cpu", "--trainer.precision=32-true"]
    small = context.dry_run and "input_size: [128, 128]" in text
    if small:  # a dry run: 32 x 32 frames for the 128 x 128 networks (their T stays: some nets fix it)
        args.append("--model.init_args.net.init_args.input_size=[32,32]")
    cli = BsnnCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=args)
    model, dm = cli.model, cli.datamodule
    shape = tuple(dm.input_shape)
    batch = 1 if context.dry_run else getattr(dm, "batch_size", 16)
    if context.dry_run and (small or shape[-1] > 48):
        shape = (*shape[:-2], 32, 32)
    model.example_input_array = torch.zeros(1, *shape)
    model = model.to(context.device)  # the converter's dry run then runs on the device
    converters = [c for c in cli.trainer.callbacks if isinstance(c, ConvertNeurons)]
    for converter in converters:
        converter.changes["backend"] = backend  # what the recipe converts with, on this backend
        converter.setup(cli.trainer, model, "fit")
    if not converters:  # the network's own neurons: their backend set as a converter would
        for _, neuron, _ in spiking_neurons(model):
            neuron.bsnn_settings = neuron.bsnn_settings.updated(backend=backend)
    settings = [getattr(neuron, "bsnn_settings", None) for _, neuron, _ in spiking_neurons(model)]
    running = sorted({"native" if s is None else s.backend for s in settings})
    if running != [backend]:  # a row labelled with one backend must time that backend
        raise RuntimeError(f"{path.name}: expected every neuron on backend {backend!r}, got {running}")
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand((batch, *shape), generator=gen) < 0.1).float().to(context.device)
    labels = torch.randint(0, model.hparams.get("num_classes", 10), (batch,), generator=gen).to(context.device)
    return model, (frames, labels)


def _recipe_step(model, batch, dtype, context: Context) -> float:
    import torch

    import bsnn_lightning as bl

    frames, labels = batch
    bl.reset_states(model)
    model.zero_grad(set_to_none=True)
    autocast = dtype != torch.float32 and not context.dry_run
    with torch.autocast(frames.device.type, dtype=dtype, enabled=autocast):
        out = model(frames)  # [T, N, classes]
        loss = torch.nn.functional.cross_entropy(out.float().mean(0), labels)
    loss.backward()
    return float(loss)


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


#: a dry run interprets the kernels on the CPU: its subprocesses get this many times their GPU limits
DRY_RUN_SLACK = 6
#: (name, part, time limit in seconds): 420 s together, an 8-minute lease with a minute for start-up
PARTS = [
    ("triton-tests", triton_tests, 150),
    ("exactness", exactness, 60),
    ("no-host-sync", no_host_sync, 30),
    ("kernels", kernels, 90),
    ("recipe-steps", recipe_steps, 90),
]
#: behind --long
LONG_PARTS = [
    ("tuning", tuning, 90),
    ("coupled", coupled, 90),
    ("compile", compile_step, 90),
    ("slow-tests", slow_tests, 600),
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
    lines.append(f"native libraries against the kernels, fp32/fp16/bf16, several taus: {status('exactness')}")
    steps = parts.get("recipe-steps", {}).get("rows") or {}
    for name, row in steps.items():
        lines.append(f"recipe {name} ({row['precision']}): ms {row['ms']}, torch/triton {row['torch/triton']}x, "
                     f"native/triton {row['native/triton']}x")
    if not steps:
        lines.append(f"recipe training steps: not measured ({status('recipe-steps')})")
    lines.append(f"compiled training step (inductor): {status('compile')}")
    lines.append(f"launch constants tuned and written: {status('tuning')}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
