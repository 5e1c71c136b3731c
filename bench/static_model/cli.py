"""The command: gather the launches of a configuration set, compile each distinct kernel once per architecture
(in worker processes), model each call and print the table, failures and a PASS / FAIL verdict."""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .compiling import compile_kernel
from .configs import SETS
from .driver import Recorder
from .launches import BWD, COUPLED_BWD, COUPLED_FWD, FWD, Launch, our_launches, spikingjelly_launches
from .model import Machine, model
from .sass import analyse, parse

#: the ptxas and SASS figures a row copies from its kernel's compile result
RESULT_FIELDS = ("regs", "spill_stores", "spill_loads", "stack", "shared", "LDS", "STS", "LDL", "STL", "seconds")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=PACKAGE_DOC.split("\n\n")[0])
    parser.add_argument("--set", choices=tuple(SETS), default="bench",
                        help="bench: the benchmark's kernels with the model; check: a small representative set; "
                             "sweep: every dynamics, option, dtype and layout; coupled: the coupled bifurcation's "
                             "kernels at 4, 8, 16, 32 and 64 channels")
    parser.add_argument("--arch", type=int, nargs="+", default=[90], help="compute capabilities (90: H100/H200, 80: A100)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repo", help="import bsnn_lightning from this checkout (e.g. a git worktree; one that "
                                       "has triton_backend.launch_plan)")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("--keep", help="keep the ptx, ttgir, SASS and ptxas log of every kernel in this folder")
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
    return parser.parse_args(argv)


def gather(args) -> list[Launch]:
    """The launches of ``args.set`` (filtered by ``--only``), through the launch plans under the stand-in driver."""
    from bsnn_lightning.engine import triton_backend

    if not hasattr(triton_backend, "launch_plan"):
        raise RuntimeError(
            f"bsnn_lightning at {triton_backend.__file__} has no triton_backend.launch_plan (it predates the launch "
            "plans this tool compiles); run that checkout's own bench/kernels_static.py"
        )
    recorder = Recorder(args.arch[0])
    configs = SETS[args.set]()
    if args.only:
        configs = [c for c in configs if any(text in c["label"] for text in args.only)]
    constants = {name: int(value) for name, value in (item.split("=", 1) for item in args.launch)}
    with triton_backend.launch_constants(**constants):
        launches = our_launches(configs, recorder)
    if args.set == "bench" and not args.no_spikingjelly:
        try:
            launches += spikingjelly_launches(recorder)
        except ImportError as error:
            print(f"SpikingJelly not modelled: {error}")
    return launches


def distinct(launches: list[Launch]) -> dict[str, list[Launch]]:
    """The launches grouped by the kernel they compile (same kernel, specialisation, options): first one first."""
    same: dict[str, list[Launch]] = {}
    for launch in launches:
        key = json.dumps([launch.kernel, launch.signature, sorted(map(str, launch.constants.items())),
                          sorted(map(str, launch.attrs.items())), launch.options, launch.module], sort_keys=True)
        same.setdefault(key, []).append(launch)
    return same


def compile_all(kernels: list[Launch], arches: list[int], jobs: int, keep: str | None) -> dict[tuple[str, int], dict]:
    """Each kernel for each architecture, in ``jobs`` forked workers: (label, arch) -> compile result."""
    if keep:
        os.makedirs(keep, exist_ok=True)
    work = [(launch, arch, keep) for arch in arches for launch in kernels]
    work.sort(key=lambda w: w[0].kernel != BWD)  # the slow ones first
    compiled: dict[tuple[str, int], dict] = {}
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=mp.get_context("fork")) as pool:
        for (launch, arch, _), result in zip(work, pool.map(compile_kernel, work)):
            compiled[(launch.label, arch)] = result
    return compiled


def kernel_rows(sass: str, result: dict, members: list[Launch], arch: int, machine: Machine) -> list[dict]:
    """One row per call sharing this compiled kernel (identical kernels share the compile, not the call's T):
    the compile's figures, the SASS's shared / local accesses and the model's figures. ``result`` gains the
    kernel-wide LDS, STS, LDL and STL counts."""
    ops = [ins.op for ins in parse(sass)]
    result.update(LDS=ops.count("LDS"), STS=ops.count("STS"), LDL=ops.count("LDL"), STL=ops.count("STL"))
    rows = []
    for member in members:
        loop = analyse(sass, member)
        row = dict(label=member.label, group=member.group, source=member.source, kernel=member.kernel,
                   arch=arch, steps=member.steps, chunk=member.steps_per_iteration,
                   neurons_per_thread=member.neurons_per_thread, num_warps=member.options["num_warps"],
                   **{k: result[k] for k in RESULT_FIELDS})
        row.update(model(member, result, loop, machine))
        if not member.loop_model:  # the SASS's largest loop is not one time step's work
            row.update(instructions_per_neuron_step=None, loads_before_stores=None,
                       bytes_in_flight_per_sm=None, order="(nested loops: not modelled)")
        row.update(shared_in_loop=loop.shared_in_loop, local_in_loop=loop.local_in_loop, loop_found=loop.found)
        rows.append(row)
    return rows


def problems(result: dict, shared_counts: bool) -> list[str]:
    """What fails a compiled kernel: spills, local memory, and (``shared_counts``) shared memory."""
    bad = []
    if result["spill_stores"] or result["spill_loads"]:
        bad.append(f"spills {result['spill_stores']}/{result['spill_loads']} bytes")
    if result["LDL"] or result["STL"] or result["stack"]:
        bad.append(f"local memory (LDL {result['LDL']}, STL {result['STL']}, stack {result['stack']})")
    if shared_counts and (result["LDS"] or result["STS"] or result["shared"]):
        bad.append(f"shared memory ({result['shared']} bytes, LDS {result['LDS']}, STS {result['STS']})")
    return bad


def summary(rows: list[dict], arches: list[int]) -> str:
    """Registers and CTAs per SM, ranged over our kernels, per architecture and kernel."""
    ours = [r for r in rows if r["source"] == "ours"]
    out = []
    for arch in arches:
        for kernel, short in ((FWD, "fwd"), (BWD, "bwd"), (COUPLED_FWD, "coupled fwd"), (COUPLED_BWD, "coupled bwd")):
            regs = [r["regs"] for r in ours if r["arch"] == arch and r["kernel"] == kernel]
            ctas = [r["ctas_per_sm"] for r in ours if r["arch"] == arch and r["kernel"] == kernel]
            if regs:
                out.append(f"sm_{arch} {short} regs {min(regs)}-{max(regs)} CTA/SM {min(ctas)}-{max(ctas)}")
    return "; ".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    machine = Machine(args.bandwidth * 1e12, args.clock_ghz * 1e9, args.latency_ns * 1e-9)
    start = time.perf_counter()
    if args.repo:
        sys.path.insert(0, os.path.abspath(args.repo))
    try:
        from common import choose_triton_mode  # bench/common.py

        choose_triton_mode("compile")  # before anything imports Triton: compiled kernels, not interpreted ones
        import triton

        if "nvidia" not in triton.backends.backends:
            raise RuntimeError("this triton build has no NVIDIA backend")
        import bsnn_lightning

        launches = gather(args)
    except Exception:
        traceback.print_exc()
        print("kernels_static: SET-UP ERROR (see above)")
        return 2
    same = distinct(launches)
    print(f"triton {triton.__version__}; bsnn_lightning from {Path(bsnn_lightning.__file__).parent.parent}")
    print(f"{len(launches)} launches -> {len(same)} distinct kernels; arch {args.arch}; {args.jobs} jobs")
    print(machine.describe())
    compiled = compile_all([members[0] for members in same.values()], args.arch, args.jobs, args.keep)
    failures = []
    rows = []
    for members in same.values():
        launch = members[0]
        for arch in args.arch:
            result = compiled[(launch.label, arch)]
            if not result["ok"]:
                failures.append(f"sm_{arch} {launch.label}: compile error\n{result['error']}")
                continue
            rows += kernel_rows(result.pop("sass"), result, members, arch, machine)
            bad = problems(result, shared_counts=args.set != "bench")
            if bad and launch.source == "ours":
                failures.append(f"sm_{arch} {launch.label}: " + ", ".join(bad))
    print_rows(rows, args, machine)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(triton=triton.__version__, machine=vars(machine), rows=rows),
                                              indent=1))
    wall = time.perf_counter() - start
    for failure in failures:
        print("FAIL", failure)
    print(f"kernels_static: {'PASS' if not failures else 'FAIL'}: {len(same)} kernels x {len(args.arch)} arch, "
          f"{len(failures)} failing; {summary(rows, args.arch)}; {wall:.0f}s")
    return 1 if failures else 0


def print_rows(rows: list[dict], args, machine: Machine) -> None:
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
