"""``bsnn report OUT_DIR [--quick] [--task ...] [--seeds ...]``: run the experiments, write the table, figures
and JSON.

Writes into OUT_DIR (each file atomically: a temporary file, then a rename):

- ``report.md``: for each task (the event digits, the event intervals, or both), whether it can test a claim
  about temporal dynamics, the claims' measured effects with 95% intervals and verdicts, the eigenvalue-clamp
  experiment, per-experiment setup (seeds, epochs, wall-clock and CPU time), and the figures;
- ``report.json``: every number the Markdown shows, and the raw per-run results behind them;
- ``figures/*.png``: the figures of :func:`figure_files`, each of the size in
  :data:`bsnn_lightning.figures.report.FIGURE_PIXELS`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Sequence

import lightning
import numpy as np
import torch

from .. import __version__
from ..atomic import write_atomically
from ..figures import report as report_figures
from ..figures.common import require_matplotlib, save_png
from . import experiments
from .experiments import PRESETS, TASK_NAMES, TASKS, Settings
from .stats import describe

#: per-task figure (file name without the "<task>_" prefix) -> its kind in bsnn_lightning.figures.report.FIGURE_PIXELS
TASK_FIGURES = {
    "tau_sweep.png": "tau_sweep",
    "eigen_spectrum.png": "eigen_spectrum",
    "eigen_clamp.png": "eigen_clamp",
    "imp_per_step.png": "imp_per_step",
    "readout_convergence.png": "readout_convergence",
    "loss_comparison.png": "loss_comparison",
}
REPORT_FILES = ("report.md", "report.json")
#: a task is fit to test a claim about temporal dynamics if plain LIF's tau_m dependence is beyond noise
#: (permutation p below this) ...
FIT_P = 0.05
#: ... and the network given time-averaged frames is near chance (its 95% interval within this of chance)
FIT_CHANCE_MARGIN = 0.05


def figure_files(tasks: Sequence[str]) -> dict[str, str]:
    """File name (under figures/) -> figure kind, for a report of ``tasks``."""
    files = {"firing_patterns.png": "firing_patterns"}
    for task in tasks:
        files.update({f"{task}_{name}": kind for name, kind in TASK_FIGURES.items()})
    if "intervals" in tasks:
        files["intervals_classes.png"] = "interval_classes"
    return files


#: the figures of a report of both tasks
FIGURES = figure_files(TASKS)


def main(argv: list[str] | None = None) -> int:
    """The ``bsnn report`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="bsnn report",
        description="Measure the BSNN and IMP papers' claims on the embedded tasks (event digits, event intervals); "
        "write a Markdown table, PNG figures and a JSON of every number into OUT_DIR.",
    )
    parser.add_argument("out_dir", help="folder to write report.md, report.json and figures/ into (created if missing)")
    parser.add_argument("--quick", action="store_true", help="a smaller, shorter run (about a minute on 2 CPU cores)")
    parser.add_argument("--task", choices=(*TASKS, "both"), default="both", help="which task(s) to run the experiments on (default: both)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="seeds for every experiment (default: 0-4 for the sweep, baseline and clamp runs, 0-9 for the paired comparisons; --quick: 0 1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="training runs in parallel, one process each (default: 2, or 1 on a one-CPU machine)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: faster for these small networks, see docs/results.md)")
    parser.add_argument("--cache-dir", default=None, help="event-digits cache folder (default: $BSNN_LIGHTNING_CACHE or ~/.cache/bsnn-lightning)")
    args = parser.parse_args(argv)
    presets = PRESETS["quick" if args.quick else "full"]
    tasks = TASKS if args.task == "both" else (args.task,)
    settings = [presets[task] for task in tasks]
    if args.seeds:
        if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
            parser.error(f"expected distinct seeds >= 0, got {args.seeds}")
        settings = [s.replace(seeds_sweep=tuple(args.seeds), seeds_pairs=tuple(args.seeds)) for s in settings]
    if args.threads < 1 or args.jobs < 1:
        parser.error(f"expected --threads >= 1 and --jobs >= 1, got {args.threads} and {args.jobs}")
    settings = [s.replace(threads=args.threads, cache_dir=args.cache_dir) for s in settings]
    try:
        require_matplotlib("bsnn report")
        check_writable(args.out_dir, tasks)
    except (ImportError, OSError) as error:
        parser.exit(2, f"bsnn report: error: {error}\n")
    run_report(args.out_dir, settings, jobs=args.jobs, command=["bsnn", "report", *(sys.argv[2:] if argv is None else argv)])
    return 0


def run_report(
    out_dir: str | os.PathLike,
    settings: "Settings | Sequence[Settings] | None" = None,
    jobs: int = 1,
    command: list[str] | None = None,
    log=print,
) -> dict:
    """Run every experiment on each task of ``settings`` (one :class:`Settings` per task; default: both tasks'
    full settings) and write the report into ``out_dir``; returns the JSON dict.

    ``jobs`` training runs go in parallel, each in its own worker process; each run uses
    ``settings.threads`` torch threads (default 1): these networks are too small for intra-op parallelism
    to pay, and on a 2-core machine shared with other work two OpenMP threads were measured up to ten times
    slower than one. Results depend on the thread count (floating-point reduction order), so it is
    recorded; they do not depend on ``jobs``. The thread count, the deterministic-algorithms flag (the
    Trainers set it) and Lightning's log level are restored afterwards.
    """
    require_matplotlib("bsnn report")
    listed = list(PRESETS["full"].values()) if settings is None else ([settings] if isinstance(settings, Settings) else list(settings))
    tasks = experiments.settings_by_task(listed)
    if len({s.mode for s in listed}) != 1:
        raise ValueError(f"expected one mode for all tasks, got {[s.mode for s in listed]}")
    check_writable(out_dir, tasks)
    started = time.perf_counter(), time.process_time()
    load_start = _load_average()
    with _quiet_and_single_threaded(listed[0].threads), experiments.RunPool(listed, jobs) as run:
        results = run_experiments(tasks, run, log)
    return write_report(out_dir, results, tasks, jobs=jobs, command=command, started=started, load_start=load_start, log=log)


def check_writable(out_dir: str | os.PathLike, tasks: Sequence[str]) -> None:
    """Make sure the report of ``tasks`` can be written into ``out_dir`` before any run starts (a full report
    takes half an hour): create the folder and its ``figures/``, write and remove a probe file in each, and
    find no folder where a report file or figure goes. Raises an ``OSError`` (``NotADirectoryError``,
    ``IsADirectoryError``, ``PermissionError``, ...) whose message names the path and what is wrong."""
    out = Path(out_dir)
    for folder in (out, out / "figures"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise NotADirectoryError(f"cannot write the report into {folder}: it exists and is not a folder") from None
        except OSError as error:
            raise type(error)(f"cannot write the report into {folder}: cannot create the folder ({error.strerror or error})") from None
        if not folder.is_dir():
            raise NotADirectoryError(f"cannot write the report into {folder}: it exists and is not a folder")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise type(error)(f"cannot write the report into {folder}: {error.strerror or error}") from None
    for path in [out / name for name in REPORT_FILES] + [out / "figures" / name for name in figure_files(list(tasks))]:
        if path.is_dir():
            raise IsADirectoryError(f"cannot write the report file {path}: a folder of that name is in the way")


def run_experiments(tasks: dict[str, Settings], run: experiments.Runner, log=print) -> dict:
    """Every experiment on every task of ``tasks`` (task -> settings), its training runs made by ``run``;
    returns ``{"firing_patterns": ..., task: {experiment: result, "wall_s": ..., "cpu_s": ...}}``."""
    results: dict = {}
    steps = 1 + 6 * len(tasks)
    log(f"[1/{steps}] firing patterns of one neuron (no training)")
    results["firing_patterns"] = experiments.firing_patterns()
    step = 1
    for task, s in tasks.items():
        task_start = time.perf_counter()
        sweep_runs = len(s.taus) * len(experiments.SWEEP_METHODS) * len(s.seeds_sweep)
        pair_runs = 2 * len(s.seeds_pairs)
        clamp_runs = (len(s.taus) + sum(len(v) for v in experiments.CLAMP_UPPER_MU.values()) + 1) * len(s.seeds_sweep)
        name = TASK_NAMES[task]
        entry = {}
        log(f"[{step + 1}/{steps}] {name}: control-rate sweep, {sweep_runs} runs x {s.epochs_sweep} epochs")
        entry["control_rate"] = experiments.control_rate_sweep(s, run)
        log(f"[{step + 2}/{steps}] {name}: time-averaged baseline, {len(s.seeds_sweep)} runs x {s.epochs_sweep} epochs")
        entry["time_averaged"] = experiments.time_averaged_baseline(s, run, entry["control_rate"])
        log(f"[{step + 3}/{steps}] {name}: eigenvalue clamp, {clamp_runs} runs x {s.epochs_sweep} epochs")
        entry["eigen_clamp"] = experiments.eigenvalue_clamp(s, run, entry["control_rate"])
        log(f"[{step + 4}/{steps}] {name}: per-step accuracy, zero vs learnable IMP, {pair_runs} runs x {s.epochs_pairs} epochs")
        entry["imp_per_step"] = experiments.imp_per_step(s, run)
        log(f"[{step + 5}/{steps}] {name}: LTS vs mean readout, {pair_runs} runs x {s.epochs_pairs} epochs")
        entry["readout"] = experiments.readout_comparison(s, run)
        log(f"[{step + 6}/{steps}] {name}: TET vs label-smoothed TET, {pair_runs} runs x {s.epochs_pairs} epochs")
        entry["loss"] = experiments.loss_comparison(s, run)
        entry["wall_s"] = round(time.perf_counter() - task_start, 1)
        entry["cpu_s"] = round(sum(entry[k]["cpu_s"] for k in _TRAINED), 1)
        results[task] = entry
        step += 6
    return results


def write_report(
    out_dir: str | os.PathLike,
    results: dict,
    tasks: dict[str, Settings],
    jobs: int = 1,
    command: list[str] | None = None,
    started: tuple[float, float] | None = None,
    load_start=None,
    log=print,
) -> dict:
    """Write ``report.json``, ``report.md`` and the figures of :func:`run_experiments`' ``results`` into
    ``out_dir``; returns the JSON dict. ``started``: ``(perf_counter, process_time)`` when the run began."""
    started = started or (time.perf_counter(), time.process_time())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = assemble_report(results, tasks, jobs=jobs, command=command, started=started, load_start=load_start)
    figures = _write_figures(out / "figures", results, tasks, report["interval_samples"])
    report["figures"] = {name: {"file": f"figures/{name}", "pixels": list(report_figures.FIGURE_PIXELS[kind])} for name, kind in figures.items()}
    report["meta"].update(_elapsed_since(started, results, tasks, jobs))  # the figures included
    write_atomically(out / "report.json", json.dumps(report, indent=1, allow_nan=False).encode())
    write_atomically(out / "report.md", render_markdown(report).encode())
    log(f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(figures)} figures in {report['meta']['wall_s']} s")
    return report


def assemble_report(
    results: dict,
    tasks: dict[str, Settings],
    jobs: int = 1,
    command: list[str] | None = None,
    started: tuple[float, float] | None = None,
    load_start=None,
) -> dict:
    """The report's JSON dict (without its figures) from :func:`run_experiments`' ``results``."""
    started = started or (time.perf_counter(), time.process_time())
    listed = list(tasks.values())
    return {
        "meta": {
            "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(command) if command else None,
            "mode": listed[0].mode,
            "tasks": list(tasks),
            "versions": _versions(),
            "machine": {"torch_threads": listed[0].threads, "jobs": jobs, "os_cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average_start": load_start, "load_average_end": _load_average()},
            **_elapsed_since(started, results, tasks, jobs),
        },
        "settings": {task: {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(s).items() if k != "cache_dir"} for task, s in tasks.items()},
        "experiments": results,
        "interval_samples": experiments.interval_samples(tasks["intervals"]) if "intervals" in tasks else None,
        "figures": {},
    }


def _elapsed_since(started: tuple[float, float], results: dict, tasks: dict, jobs: int) -> dict:
    """Wall-clock since ``started``; CPU time of this process since then, plus the training runs' own when
    they ran in worker processes."""
    workers = sum(results[t]["cpu_s"] for t in tasks) if jobs > 1 else 0
    return {"wall_s": round(time.perf_counter() - started[0], 1), "cpu_s": round(time.process_time() - started[1] + workers, 1)}


_TRAINED = ("control_rate", "time_averaged", "eigen_clamp", "imp_per_step", "readout", "loss")


@contextlib.contextmanager
def _quiet_and_single_threaded(threads: int):
    """Lightning's per-Trainer info lines off, ``threads`` torch threads; everything restored on exit."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        torch.set_num_threads(threads)
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):  # Lightning's own, about its torch internals
                warnings.filterwarnings("ignore", category=category, module=r"lightning\.")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


# --------------------------------------------------------------------------- figures


def _write_figures(folder: Path, results: dict, tasks: dict, samples: dict | None) -> dict[str, str]:
    patterns = results["firing_patterns"]
    made = {
        "firing_patterns.png": report_figures.firing_patterns(
            np.asarray(patterns["raster"]), patterns["setup"]["raster_v0"], patterns["setup"]["raster_input"],
            patterns["distinct_spike_trains"], patterns["possible_spike_trains"],
        ),
    }
    for task in tasks:
        ex, name = results[task], TASK_NAMES[task]
        sweep, baseline, clamp = ex["control_rate"], ex["time_averaged"], ex["eigen_clamp"]
        spectrum = sweep["spectrum"]
        layers = {
            method: {layer: (v["before"], v["after"]) for layer, v in per_layer.items()}
            for method, per_layer in spectrum["layers"].items()
        }
        imp_data, readout_data = ex["imp_per_step"]["setup"]["data"], ex["readout"]["setup"]["data"]
        made.update({
            f"{task}_tau_sweep.png": report_figures.tau_sweep(
                sweep["setup"]["taus"], sweep["accuracy"], f"{name}: accuracy vs tau_m (mean ± std over seeds; dots: seeds)",
                chance=baseline["chance"], time_averaged=baseline["accuracy"]["time-averaged frames"],
            ),
            f"{task}_eigen_spectrum.png": report_figures.eigen_spectrum(
                layers, tuple(spectrum["bounds"]),
                f"{name}: eigenvalues lambda of (P - I)/tau_m, tau_m = {spectrum['tau_m']:g}, seed {spectrum['seed']}: before and after training",
            ),
            f"{task}_eigen_clamp.png": report_figures.eigen_clamp(
                clamp["by_tau"]["taus"], {k: clamp["by_tau"][k] for k in ("lambda learned", "mu learned")},
                clamp["upper_bounds_at_largest_tau"][1:] + clamp["package_defaults"], sweep["accuracy"]["LIF"],
                f"{name}: diagonal eigenvalues at the upper clamp, and accuracy, by parametrisation and bound",
            ),
            f"{task}_imp_per_step.png": report_figures.per_step_accuracy(
                ex["imp_per_step"]["per_step_accuracy"], f"Per-time-step accuracy, {imp_data} (mean ± std over seeds)"
            ),
            f"{task}_readout_convergence.png": report_figures.readout_convergence(
                ex["readout"]["epoch_accuracy"], f"LTS vs mean-over-time readout, {readout_data}"
            ),
            f"{task}_loss_comparison.png": report_figures.paired_comparison(ex["loss"]["accuracy"], f"TET vs label-smoothed TET, {name}"),
        })
    if samples is not None:
        made["intervals_classes.png"] = report_figures.interval_classes(
            samples["examples"], samples["mean_summed_frames"], samples["delays_slots"], samples["slot_ms"], samples["per_class"]
        )
    expected = figure_files(list(tasks))
    if set(made) != set(expected):
        raise RuntimeError(f"expected figures {sorted(expected)}, made {sorted(made)}")
    for name, fig in made.items():
        save_png(fig, folder / name)
    return expected


# --------------------------------------------------------------------------- Markdown


def render_markdown(report: dict) -> str:
    meta, settings, ex = report["meta"], report["settings"], report["experiments"]
    tasks = meta["tasks"]
    first = settings[tasks[0]]
    lines = [
        "# Evidence report: the papers' claims on the embedded tasks",
        "",
        f"Generated {meta['generated']} by `{meta['command'] or 'run_report()'}` ({meta['mode']} mode); "
        f"bsnn-lightning {meta['versions']['bsnn_lightning']}, torch {meta['versions']['torch']}, "
        f"lightning {meta['versions']['lightning']}, {meta['machine']['jobs']} parallel run(s) of {meta['machine']['torch_threads']} torch thread(s) each on "
        f"{meta['machine']['os_cpus']} CPUs. Total {meta['wall_s']:.0f} s wall-clock, {meta['cpu_s']:.0f} s CPU "
        f"(load average {_fmt_load(meta['machine']['load_average_start'])} at start, "
        f"{_fmt_load(meta['machine']['load_average_end'])} at end: other processes on the machine inflate wall-clock); "
        + "; ".join(f"{TASK_NAMES[t]} {ex[t]['wall_s']:.0f} s wall-clock, {ex[t]['cpu_s']:.0f} s CPU in training runs" for t in tasks) + ".",
        "",
        "Tasks: " + "; ".join(_task_line(t, settings[t]) for t in tasks) + ". "
        f"Network: 2x2 average pooling, conv {first['channels'][0]} and {first['channels'][1]} channels (BN, neuron, 2x2 max "
        f"pooling), {first['hidden']} spiking hidden units, linear read-out; AdamW lr {first['lr']:g}, weight decay "
        f"{first['weight_decay']:g} (none on neuron parameters), cosine schedule, batch {first['batch_size']}.",
        "",
        "Verdict rule, fixed before any run: a claim that A beats B **held** if the 95% interval of A - B lies above "
        "0, **did not hold** if it lies below 0, and is **unclear** if it contains 0. Paired differences use the "
        "t-interval over seeds (a seed fixes the initial weights and the batch order); spreads use a bootstrap "
        "over seeds. Accuracies in %, differences in percentage points (pp).",
        "",
        "## Summary",
        "",
        "| claim (source) | measure | " + " | ".join(f"{TASK_NAMES[t]}: effect [95% interval] | verdict" for t in tasks) + " |",
        "|---|---|" + "---|---|" * len(tasks),
    ]
    for label, measure, per_task in _claim_rows(ex, tasks):
        cells = " | ".join(f"{effect} | {verdict}" for effect, verdict in per_task)
        lines.append(f"| {label} | {measure} | {cells} |")
    patterns = ex["firing_patterns"]
    for measure, claim in patterns["claims"].items():
        lines.append(
            f"| IMP: more firing patterns (NeurIPS 2024) | {measure} | "
            + " | ".join(f"{claim['difference']} (exact, one neuron) | {claim['verdict']}" for _ in tasks) + " |"
        )
    if meta["mode"] == "quick":
        lines[2:2] = ["> **Quick mode**: a smoke run (few samples, few epochs, two seeds) that checks the pipeline end to "
                      "end. Its numbers and verdicts are not evidence; run without `--quick` for those.", ""]
    lines += ["", *_fitness_section(ex, tasks)]
    for t in tasks:
        lines += [f"# Task: {TASK_NAMES[t]}", "", *_task_intro(t, report.get("interval_samples")), *_sweep_section(ex[t]["control_rate"], ex[t]["time_averaged"], t),
                  *_spectrum_section(ex[t]["control_rate"], t), *_clamp_section(ex[t]["eigen_clamp"], t),
                  *_imp_section(ex[t]["imp_per_step"], t), *_readout_section(ex[t]["readout"], t), *_loss_section(ex[t]["loss"], t)]
    lines += ["# Independent of the task", "", *_patterns_section(patterns)]
    return "\n".join(lines) + "\n"


def _task_line(task: str, settings: dict) -> str:
    if task == "digits":
        count = "all 1,797" if settings["limit"] is None else f"the first {settings['limit']}"
        return (f"event digits, {count} sklearn digits as simulated DVS recordings, fixed stratified 80/20 split, T = "
                f"{settings['time_steps_events']} (static digits: T = {settings['time_steps_static']})")
    return (f"event intervals, {settings['n_train']} training and {settings['n_test']} test recordings of a square "
            f"flashing twice, 4 classes by the gap, T = {settings['time_steps_events']}")


def _task_intro(task: str, samples: dict | None) -> list[str]:
    if task != "intervals" or samples is None:
        return []
    delays = ", ".join(f"{d}" for d in samples["delays_slots"])
    return [
        f"A square flashes twice at the same place in a {samples['duration_ms']:g} ms recording; the class is the gap "
        f"between the flashes, {delays} slots of {samples['slot_ms']:g} ms. Position, first flash and events per flash "
        "do not depend on the class, so the frames summed over time are the same in every class (bottom row).",
        "",
        "![the interval task's classes](figures/intervals_classes.png)",
        "",
    ]


def _claim_rows(ex: dict, tasks: list[str]):
    """``(claim, measure, [(effect, verdict) per task])`` for every claim with an interval."""
    first = ex[tasks[0]]
    for method in first["control_rate"]["spread_difference_lif_minus"]:
        yield ("BSNN: insensitive to tau_m (JMLR 2021)", f"spread(LIF) - spread({method})", [
            (f"{_pp(c['difference'])} {_pp_interval(c['ci95'])}", c["verdict"])
            for c in (ex[t]["control_rate"]["spread_difference_lif_minus"][method] for t in tasks)
        ])
    for key, name in (("imp_per_step", "IMP"), ("readout", "LTS"), ("loss", "LS-TET")):
        for measure in first[key]["claims"]:
            yield (f"{name} (NeurIPS 2024)", measure, [
                (f"{_pp(c['mean'])} {_pp_interval(c['ci95'])}", c["verdict"]) for c in (ex[t][key]["claims"][measure] for t in tasks)
            ])


def _fitness(entry: dict) -> dict:
    """Whether a task can test a claim about temporal dynamics (the rule of FIT_P and FIT_CHANCE_MARGIN)."""
    sensitivity = entry["lif_tau_sensitivity"]["no_effect_test"]
    interval = entry["time_averaged_minus_chance"]["ci95"]
    near_chance = interval is not None and -FIT_CHANCE_MARGIN <= interval[0] and interval[1] <= FIT_CHANCE_MARGIN
    return {"lif_sensitive": sensitivity["p"] < FIT_P, "time_averaged_near_chance": near_chance}


def _fitness_section(ex: dict, tasks: list[str]) -> list[str]:
    lines = [
        "## Can the task test a claim about temporal dynamics?",
        "",
        f"Rule, fixed before the runs: a task can if plain LIF's accuracy depends on tau_m beyond what noise alone "
        f"gives (the sweep's permutation test, p < {FIT_P:g}) and the same LIF network given the frames averaged over "
        f"time is near chance (the 95% interval of its accuracy minus chance within ±{100 * FIT_CHANCE_MARGIN:.0f} pp).",
        "",
        "| task | LIF: spread over tau_m [95% interval] | spread if tau_m had no effect | p (no effect) | LIF on time-averaged frames | chance | frames minus time-averaged [95% interval] | fit? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        entry = ex[t]["time_averaged"]
        sensitivity = entry["lif_tau_sensitivity"]
        fit = _fitness(entry)
        verdict = "yes" if all(fit.values()) else "no: " + ", ".join(
            text for key, text in (("lif_sensitive", "LIF not sensitive to tau_m"), ("time_averaged_near_chance", "time-averaging is not at chance")) if not fit[key]
        )
        diff = entry["frames_minus_time_averaged"]
        lines.append(
            f"| {TASK_NAMES[t]} | {_pp(sensitivity['spread']['spread'])} {_pp_interval(sensitivity['spread']['ci95'])} | "
            f"{_pp(sensitivity['no_effect_test']['null_mean'])} | {sensitivity['no_effect_test']['p']:.4f} | "
            f"{_acc_cell(entry['time_averaged'])} {_acc_interval(entry['time_averaged']['ci95'])} | {100 * entry['chance']:.1f} | "
            f"{_pp(diff['mean'])} {_pp_interval(diff['ci95'])} | {verdict} |"
        )
    some = ex[tasks[0]]["time_averaged"]["setup"]
    lines += [
        "",
        f"Time-averaged baseline: {some['neuron']} neuron in the sweep's network, with the sweep's seeds and epochs, "
        f"given {some['input']}; paired with the sweep's runs of the same network on the frames. p cannot go below "
        f"1/2001 = 0.0005 (2,000 permutations). The chance line and the baseline's band are in each task's tau_m figure.",
        "",
    ]
    return lines


def _sweep_section(sweep: dict, baseline: dict, task: str) -> list[str]:
    setup = sweep["setup"]
    taus = setup["taus"]
    lines = [
        f"## 1. Control rate: plain LIF vs bifurcation dynamics ({TASK_NAMES[task]})",
        "",
        f"Claim: {sweep['claim']}",
        "",
        f"Setup: {setup['data']}, T = {setup['time_steps']}, {setup['loss']}; tau_m in {taus}; seeds {setup['seeds']}, "
        f"{setup['epochs']} epochs per run; {_timing(sweep)}. LIF: `{setup['lif']}`. BSNN: `{setup['bsnn']}` "
        "(mu: the eigenvalues of P - I; mu = -1 is plain LIF).",
        "",
        "| method | " + " | ".join(f"tau_m = {t:g}" for t in taus) + " | spread [95% interval] | spread if tau_m had no effect | p (no effect) |",
        "|---|" + "---|" * (len(taus) + 3),
    ]
    for method, res in sweep["methods"].items():
        cells = [_acc_cell(entry) for entry in res["by_tau"]]
        sp, null = res["spread"], res["no_effect_test"]
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | {_pp(sp['spread'])} {_pp_interval(sp['ci95'])} | "
            f"{_pp(null['null_mean'])} | {null['p']:.4f} |"
        )
    lines += [
        "",
        "Cells: mean ± std of test accuracy over seeds. Spread: max - min over tau_m of the seed means. The "
        "no-effect column deals the same runs out to the tau_m values at random: the spread noise alone produces, "
        f"and how often it reaches the observed one (p). Chance: {100 * baseline['chance']:.1f}%; LIF at tau_m = "
        f"{baseline['setup']['tau_m']:g} on time-averaged frames: {_acc_cell(baseline['time_averaged'])}.",
        "",
        "| comparison | difference of spreads [95% interval] | verdict |",
        "|---|---|---|",
    ]
    for method, comp in sweep["spread_difference_lif_minus"].items():
        lines.append(f"| spread(LIF) - spread({method}) | {_pp(comp['difference'])} {_pp_interval(comp['ci95'])} | {comp['verdict']} |")
    lines += ["", f"![accuracy vs tau_m](figures/{task}_tau_sweep.png)", ""]
    return lines


def _spectrum_section(sweep: dict, task: str) -> list[str]:
    spectrum = sweep["spectrum"]
    lines = [
        f"## 2. Bifurcation eigenvalue spectrum before and after training ({TASK_NAMES[task]})",
        "",
        f"The runs at tau_m = {spectrum['tau_m']:g}, seed {spectrum['seed']} of the sweep above. Eigenvalues "
        f"lambda = mu / tau_m, clamped to [{spectrum['bounds'][0]:.3g}, {spectrum['bounds'][1]:.3g}]; dissipative "
        "lambda < 0, conservative lambda = 0, diffusive lambda > 0 (within |mu| <= 0.01 counts as conservative in "
        "the fractions). The coupled structure's matrix A = Q diag(1 + lambda) Q^T is symmetric, so its spectrum "
        "is real and drawn on the real line.",
        "",
        "| structure | layer | neurons | dissipative before -> after | conservative before -> after | diffusive before -> after | range after |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, entries in sweep["eigen_regimes"].items():
        for entry in entries:
            if entry["tau_m"] != spectrum["tau_m"] or entry["seed"] != spectrum["seed"]:
                continue
            for layer, before in entry["before"].items():
                after = entry["after"][layer]
                count = len(spectrum["layers"][method][layer]["after"])
                lines.append(
                    f"| {method} | {layer} | {count} | {before['dissipative']:.2f} -> {after['dissipative']:.2f} | "
                    f"{before['conservative']:.2f} -> {after['conservative']:.2f} | {before['diffusive']:.2f} -> "
                    f"{after['diffusive']:.2f} | [{after['min']:.3f}, {after['max']:.3f}] |"
                )
    taus = sweep["setup"]["taus"]
    lines += ["", "Over every run of the sweep, the share of eigenvalues in each regime after training, and at the upper "
              "bound per tau_m:", "",
              "| structure | dissipative | conservative | diffusive | at the lower bound (plain LIF) | at the upper bound | "
              + " | ".join(f"upper, tau_m = {t:g}" for t in taus) + " |", "|---|---|---|---|---|---|" + "---|" * len(taus)]
    for method, entries in sweep["eigen_regimes"].items():
        share = experiments._pooled_after(entries)
        per_tau = [experiments._pooled_after([e for e in entries if e["tau_m"] == t])["at_upper"] for t in taus]
        lines.append(
            f"| {method} | {share['dissipative']:.2f} | {share['conservative']:.2f} | {share['diffusive']:.2f} | "
            f"{share['at_lower']:.2f} | {share['at_upper']:.2f} | " + " | ".join(f"{v:.2f}" for v in per_tau) + " |"
        )
    check = spectrum["coupled_check"]
    if check:
        lines += ["", f"Coupled check: eigenvalues of A - I against the explicit lambda: largest |imaginary part| "
                  f"{check['max_abs_imaginary']:.1e}, largest difference {check['max_abs_difference_to_explicit']:.1e}."]
    lines += ["", f"![eigenvalue spectrum](figures/{task}_eigen_spectrum.png)", ""]
    return lines


def _clamp_section(clamp: dict, task: str) -> list[str]:
    setup = clamp["setup"]
    taus = clamp["by_tau"]["taus"]
    lines = [
        f"## 3. The eigenvalue clamp: bound or parametrisation? ({TASK_NAMES[task]})",
        "",
        f"Question: {clamp['question']}",
        "",
        f"Setup: {setup['data']}, the sweep's diagonal BSNN network, data, loss, seeds {setup['seeds']} and "
        f"{setup['epochs']} epochs; {setup['optimizer']}; {setup['bounds']}. Lambda learned: {setup['lambda learned']}. "
        f"Mu learned: {setup['mu learned']}. Package defaults: `{setup['package defaults']}`. {_timing(clamp)}.",
        "",
        "| parametrisation | " + " | ".join(f"tau_m = {t:g}" for t in taus) + " |",
        "|---|" + "---|" * len(taus),
    ]
    for name in ("lambda learned", "mu learned"):
        cells = clamp["by_tau"][name]
        lines.append(f"| {name}: accuracy | " + " | ".join(_acc_cell(c["describe"]) for c in cells) + " |")
        lines.append(f"| {name}: at the upper bound | " + " | ".join(f"{c['after']['at_upper']:.2f}" for c in cells) + " |")
        lines.append(f"| {name}: parameter past the upper bound | " + " | ".join(f"{c['after']['past_upper']:.2f}" for c in cells) + " |")
        lines.append(f"| {name}: mean abs. change of mu | " + " | ".join(f"{c['after']['mean_abs_change_mu']:.3f}" for c in cells) + " |")
    diff, spread = clamp["mu_minus_lambda_learned_mean_over_tau"], clamp["spread_difference_lif_minus_mu_learned"]
    lines += [
        "",
        f"Mu learned minus lambda learned, accuracy averaged over tau_m, paired by seed: {_pp(diff['mean'])} "
        f"{_pp_interval(diff['ci95'])}. Spread(LIF) - spread(diagonal, mu learned): {_pp(spread['difference'])} "
        f"{_pp_interval(spread['ci95'])} (added after the first report: exploratory, not a pre-declared claim).",
        "",
        "| variant | tau_m | upper bound of mu | accuracy | minus the reference [95% interval] | at the upper bound | parameter past it | at the lower bound | mean abs. change of mu |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for group in (clamp["upper_bounds_at_largest_tau"], clamp["package_defaults"]):
        for k, cell in enumerate(group):
            rel = cell.get("minus_reference")
            ref = "reference" if k == 0 else f"{_pp(rel['mean'])} {_pp_interval(rel['ci95'])}"
            after = cell["after"]
            lines.append(
                f"| {cell['variant']} | {cell['tau_m']:g} | {cell['upper_mu']:g} | {_acc_cell(cell['describe'])} | {ref} | "
                f"{after['at_upper']:.2f} | {after['past_upper']:.2f} | {after['at_lower']:.2f} | {after['mean_abs_change_mu']:.3f} |"
            )
    lines += ["", f"![eigenvalue clamp](figures/{task}_eigen_clamp.png)", ""]
    return lines


def _imp_section(imp: dict, task: str) -> list[str]:
    setup = imp["setup"]
    curves = imp["per_step_accuracy"]
    steps = len(next(iter(curves.values()))[0])
    lines = [
        f"## 4. Per-time-step accuracy with zero vs learnable IMP ({setup['data']})",
        "",
        f"Claim: {imp['claim']}",
        "",
        f"Setup: {setup['data']}, T = {setup['time_steps']}; {setup['neuron']}; "
        f"IMP {setup['imp']}; {setup['loss']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {_timing(imp)}.",
        "",
        "| IMP | " + " | ".join(f"t = {t}" for t in range(1, steps + 1)) + " | mean readout |",
        "|---|" + "---|" * (steps + 1),
    ]
    for name, runs in curves.items():
        values = np.asarray(runs) * 100
        cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), _std(values))]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_acc_cell(describe(imp['accuracy'][name]))} |")
    lines += ["", *_claims_table(imp["claims"]), "", f"![per-step accuracy](figures/{task}_imp_per_step.png)", ""]
    return lines


def _readout_section(readout: dict, task: str) -> list[str]:
    setup = readout["setup"]
    curves = readout["epoch_accuracy"]
    epochs = len(next(iter(curves.values()))[0])
    lines = [
        f"## 5. LTS vs mean-over-time readout ({setup['data']})",
        "",
        f"Claim: {readout['claim']}",
        "",
        f"Setup: {setup['data']}, T = {setup['time_steps']}; {setup['neuron']}; LTS: {setup['LTS']}; mean: "
        f"{setup['mean over time']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {_timing(readout)}.",
        "",
        "| readout | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |",
        "|---|" + "---|" * epochs,
    ]
    for name, runs in curves.items():
        values = np.asarray(runs) * 100
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), _std(values))) + " |")
    lines += ["", *_claims_table(readout["claims"]), "", f"![LTS vs mean readout](figures/{task}_readout_convergence.png)", ""]
    return lines


def _loss_section(loss: dict, task: str) -> list[str]:
    setup = loss["setup"]
    lines = [
        f"## 6. TET vs label-smoothed TET ({setup['data']})",
        "",
        f"Claim: {loss['claim']}",
        "",
        f"Setup: {setup['data']}, T = {setup['time_steps']}; {setup['neuron']}; TET: {setup['TET']}; label-smoothed "
        f"TET: {setup['label-smoothed TET']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {_timing(loss)}.",
        "",
        "| loss | test accuracy | per seed |",
        "|---|---|---|",
    ]
    for name, values in loss["accuracy"].items():
        lines.append(f"| {name} | {_acc_cell(describe(values))} | {', '.join(f'{100 * v:.1f}' for v in values)} |")
    lines += ["", *_claims_table(loss["claims"]), "", f"![TET vs label-smoothed TET](figures/{task}_loss_comparison.png)", ""]
    return lines


def _patterns_section(patterns: dict) -> list[str]:
    setup = patterns["setup"]
    lines = [
        "## Firing patterns a learnable IMP makes possible",
        "",
        f"Claim: {patterns['claim']}",
        "",
        f"Setup: {setup['neuron']}, constant input over {setup['steps']} steps; raster at input {setup['raster_input']:g} "
        f"for v_0 in {setup['raster_v0']}; counts over {setup['count_inputs']}; no training, {_timing(patterns)}.",
        "",
        f"| initial potentials | distinct spike trains (of {patterns['possible_spike_trains']} possible) |",
        "|---|---|",
    ]
    for name, count in patterns["distinct_spike_trains"].items():
        lines.append(f"| {name} | {count} |")
    lines += ["", "![firing patterns](figures/firing_patterns.png)", ""]
    return lines


def _claims_table(claims: dict) -> list[str]:
    lines = ["| measure | mean [95% interval] | std over seeds | verdict |", "|---|---|---|---|"]
    for measure, claim in claims.items():
        std = "n/a" if claim["std"] is None else _pp(claim["std"])
        lines.append(f"| {measure} | {_pp(claim['mean'])} {_pp_interval(claim['ci95'])} | {std} | {claim['verdict']} |")
    return lines


# --------------------------------------------------------------------------- formatting and facts


def _std(values: np.ndarray) -> np.ndarray:
    return values.std(0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])


def _acc_cell(entry: dict) -> str:
    std = entry["std"]
    return f"{100 * entry['mean']:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _acc_interval(interval) -> str:
    return "[n/a: one seed]" if interval is None else f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def _pp(value: float) -> str:
    return f"{100 * value:+.1f} pp" if value is not None else "n/a"


def _pp_interval(interval) -> str:
    if interval is None:
        return "[n/a: one seed]"
    return f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]"


def _timing(entry: dict) -> str:
    return f"{entry['wall_s']:.0f} s wall-clock, {entry['cpu_s']:.0f} s CPU"


def _fmt_load(load) -> str:
    return "n/a" if load is None else "/".join(f"{v:.1f}" for v in load)


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _versions() -> dict:
    return {"bsnn_lightning": __version__, "torch": torch.__version__, "lightning": lightning.__version__,
            "numpy": np.__version__, "python": platform.python_version()}
