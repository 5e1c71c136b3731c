"""``bsnn report OUT_DIR [--quick] [--seeds ...]``: run the experiments, write the table, figures and JSON.

Writes into OUT_DIR (each file atomically: a temporary file, then a rename):

- ``report.md``: the claims, their measured effects with 95% intervals and verdicts, per-experiment
  setup (seeds, epochs, wall-clock and CPU time), and the figures;
- ``report.json``: every number the Markdown shows, and the raw per-run results behind them;
- ``figures/*.png``: the six figures of :data:`FIGURES`, each of the size in
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
import time
import warnings
from pathlib import Path

import lightning
import numpy as np
import torch

from .. import __version__
from ..atomic import write_atomically
from ..figures import report as report_figures
from ..figures.common import require_matplotlib, save_png
from . import experiments
from .experiments import FULL, QUICK, Settings
from .stats import describe

#: figure file name (under figures/) -> its kind in bsnn_lightning.figures.report.FIGURE_PIXELS
FIGURES = {
    "tau_sweep.png": "tau_sweep",
    "eigen_spectrum.png": "eigen_spectrum",
    "imp_per_step.png": "imp_per_step",
    "readout_convergence.png": "readout_convergence",
    "loss_comparison.png": "loss_comparison",
    "firing_patterns.png": "firing_patterns",
}
REPORT_FILES = ("report.md", "report.json")


def main(argv: list[str] | None = None) -> int:
    """The ``bsnn report`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="bsnn report",
        description="Measure the BSNN and IMP papers' claims on the embedded digits; write a Markdown table, "
        "PNG figures and a JSON of every number into OUT_DIR.",
    )
    parser.add_argument("out_dir", help="folder to write report.md, report.json and figures/ into (created if missing)")
    parser.add_argument("--quick", action="store_true", help="a smaller, shorter run (about a minute on 2 CPU cores)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="seeds for every experiment (default: 0 1 2 3 4; --quick: 0 1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="training runs in parallel, one process each (default: 2, or 1 on a one-CPU machine)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: faster for these small networks, see docs/results.md)")
    parser.add_argument("--cache-dir", default=None, help="event-digits cache folder (default: $BSNN_LIGHTNING_CACHE or ~/.cache/bsnn-lightning)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.seeds:
        if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
            parser.error(f"expected distinct seeds >= 0, got {args.seeds}")
        settings = settings.replace(seeds_sweep=tuple(args.seeds), seeds_pairs=tuple(args.seeds))
    if args.threads < 1 or args.jobs < 1:
        parser.error(f"expected --threads >= 1 and --jobs >= 1, got {args.threads} and {args.jobs}")
    settings = settings.replace(threads=args.threads, cache_dir=args.cache_dir)
    try:
        require_matplotlib("bsnn report")
    except ImportError as error:
        parser.exit(2, f"bsnn report: error: {error}\n")
    run_report(args.out_dir, settings, jobs=args.jobs, command=["bsnn", "report", *(sys.argv[2:] if argv is None else argv)])
    return 0


def run_report(
    out_dir: str | os.PathLike, settings: Settings = FULL, jobs: int = 1, command: list[str] | None = None, log=print
) -> dict:
    """Run every experiment with ``settings`` and write the report into ``out_dir``; returns the JSON dict.

    ``jobs`` training runs go in parallel, each in its own worker process; each run uses
    ``settings.threads`` torch threads (default 1): these networks are too small for intra-op parallelism
    to pay, and on a 2-core machine shared with other work two OpenMP threads were measured up to ten times
    slower than one. Results depend on the thread count (floating-point reduction order), so it is
    recorded; they do not depend on ``jobs``. The thread count, the deterministic-algorithms flag (the
    Trainers set it) and Lightning's log level are restored afterwards.
    """
    require_matplotlib("bsnn report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter(), time.process_time()
    load_start = _load_average()
    sweep_runs = len(settings.taus) * len(experiments.SWEEP_METHODS) * len(settings.seeds_sweep)
    pair_runs = 2 * len(settings.seeds_pairs)
    results = {}
    with _quiet_and_single_threaded(settings.threads), experiments.RunPool(settings, jobs) as run:
        log("[1/5] firing patterns of one neuron (no training)")
        results["firing_patterns"] = experiments.firing_patterns()
        log(f"[2/5] control-rate sweep: {sweep_runs} runs x {settings.epochs_sweep} epochs")
        results["control_rate"] = experiments.control_rate_sweep(settings, run)
        log(f"[3/5] per-step accuracy, zero vs learnable IMP: {pair_runs} runs x {settings.epochs_pairs} epochs")
        results["imp_per_step"] = experiments.imp_per_step(settings, run)
        log(f"[4/5] LTS vs mean readout: {pair_runs} runs x {settings.epochs_pairs} epochs")
        results["readout"] = experiments.readout_comparison(settings, run)
        log(f"[5/5] TET vs label-smoothed TET: {pair_runs} runs x {settings.epochs_pairs} epochs")
        results["loss"] = experiments.loss_comparison(settings, run)
    figures = _write_figures(out / "figures", results)
    report = {
        "meta": {
            "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(command) if command else None,
            "mode": settings.mode,
            "versions": _versions(),
            "machine": {"torch_threads": settings.threads, "jobs": jobs, "os_cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average_start": load_start, "load_average_end": _load_average()},
            "wall_s": round(time.perf_counter() - started[0], 1),
            # this process, plus the training runs' own CPU time when they ran in worker processes
            "cpu_s": round(time.process_time() - started[1] + (sum(r["cpu_s"] for r in results.values()) if jobs > 1 else 0), 1),
        },
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items() if k != "cache_dir"},
        "experiments": results,
        "figures": {name: {"file": f"figures/{name}", "pixels": list(report_figures.FIGURE_PIXELS[kind])} for name, kind in figures.items()},
    }
    write_atomically(out / "report.json", json.dumps(report, indent=1, allow_nan=False).encode())
    write_atomically(out / "report.md", render_markdown(report).encode())
    log(f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(figures)} figures in {report['meta']['wall_s']} s")
    return report


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


def _write_figures(folder: Path, results: dict) -> dict[str, str]:
    sweep = results["control_rate"]
    taus = sweep["setup"]["taus"]
    spectrum = sweep["spectrum"]
    layers = {
        method: {layer: (v["before"], v["after"]) for layer, v in per_layer.items()}
        for method, per_layer in spectrum["layers"].items()
    }
    patterns = results["firing_patterns"]
    made = {
        "tau_sweep.png": report_figures.tau_sweep(taus, sweep["accuracy"]),
        "eigen_spectrum.png": report_figures.eigen_spectrum(
            layers, tuple(spectrum["bounds"]),
            f"Eigenvalues lambda of (P - I)/tau_m, tau_m = {spectrum['tau_m']:g}, seed {spectrum['seed']}: before and after training",
        ),
        "imp_per_step.png": report_figures.per_step_accuracy(results["imp_per_step"]["per_step_accuracy"]),
        "readout_convergence.png": report_figures.readout_convergence(results["readout"]["epoch_accuracy"]),
        "loss_comparison.png": report_figures.paired_comparison(results["loss"]["accuracy"], "TET vs label-smoothed TET, event digits"),
        "firing_patterns.png": report_figures.firing_patterns(
            np.asarray(patterns["raster"]), patterns["setup"]["raster_v0"], patterns["setup"]["raster_input"],
            patterns["distinct_spike_trains"], patterns["possible_spike_trains"],
        ),
    }
    if set(made) != set(FIGURES):
        raise RuntimeError(f"expected figures {sorted(FIGURES)}, made {sorted(made)}")
    for name, fig in made.items():
        save_png(fig, folder / name)
    return dict(FIGURES)


# --------------------------------------------------------------------------- Markdown


def render_markdown(report: dict) -> str:
    meta, settings, ex = report["meta"], report["settings"], report["experiments"]
    lines = [
        "# Evidence report: the papers' claims on the embedded digits",
        "",
        f"Generated {meta['generated']} by `{meta['command'] or 'run_report()'}` ({meta['mode']} mode); "
        f"bsnn-lightning {meta['versions']['bsnn_lightning']}, torch {meta['versions']['torch']}, "
        f"lightning {meta['versions']['lightning']}, {meta['machine']['jobs']} parallel run(s) of {meta['machine']['torch_threads']} torch thread(s) each on "
        f"{meta['machine']['os_cpus']} CPUs. Total {meta['wall_s']:.0f} s wall-clock, {meta['cpu_s']:.0f} s CPU "
        f"(load average {_fmt_load(meta['machine']['load_average_start'])} at start, "
        f"{_fmt_load(meta['machine']['load_average_end'])} at end: other processes on the machine inflate wall-clock).",
        "",
        f"Data: {'all 1,797' if settings['limit'] is None else 'the first ' + str(settings['limit'])} sklearn digits, fixed "
        f"stratified 80/20 split, accuracy on the held-out 20%. Network: 2x2 average pooling, conv {settings['channels'][0]} "
        f"and {settings['channels'][1]} channels (BN, neuron, 2x2 max pooling), {settings['hidden']} spiking hidden units, "
        f"linear read-out; AdamW lr {settings['lr']:g}, weight decay {settings['weight_decay']:g} (none on neuron "
        f"parameters), cosine schedule, batch {settings['batch_size']}.",
        "",
        "Verdict rule, fixed before any run: a claim that A beats B **held** if the 95% interval of A - B lies above "
        "0, **did not hold** if it lies below 0, and is **unclear** if it contains 0. Paired differences use the "
        "t-interval over seeds (a seed fixes the initial weights and the batch order); spreads use a bootstrap "
        "over seeds. Accuracies in %, differences in percentage points (pp).",
        "",
        "## Summary",
        "",
        "| claim (source) | measure | effect [95% interval] | verdict |",
        "|---|---|---|---|",
    ]
    sweep = ex["control_rate"]
    for method, comp in sweep["spread_difference_lif_minus"].items():
        lines.append(
            f"| BSNN: insensitive to tau_m (JMLR 2021) | spread(LIF) - spread({method}) | "
            f"{_pp(comp['difference'])} {_pp_interval(comp['ci95'])} | {comp['verdict']} |"
        )
    for key, name in (("imp_per_step", "IMP"), ("readout", "LTS"), ("loss", "LS-TET")):
        for measure, claim in ex[key]["claims"].items():
            lines.append(
                f"| {name} (NeurIPS 2024) | {measure} | {_pp(claim['mean'])} {_pp_interval(claim['ci95'])} | {claim['verdict']} |"
            )
    patterns = ex["firing_patterns"]
    for measure, claim in patterns["claims"].items():
        lines.append(f"| IMP: more firing patterns (NeurIPS 2024) | {measure} | {claim['difference']} (exact) | {claim['verdict']} |")
    if meta["mode"] == "quick":
        lines[2:2] = ["> **Quick mode**: a smoke run (few digits, few epochs, two seeds) that checks the pipeline end to "
                      "end. Its numbers and verdicts are not evidence; run without `--quick` for those.", ""]
    lines += ["", *_sweep_section(sweep), *_spectrum_section(sweep), *_imp_section(ex["imp_per_step"]),
              *_readout_section(ex["readout"]), *_loss_section(ex["loss"]), *_patterns_section(patterns)]
    return "\n".join(lines) + "\n"


def _sweep_section(sweep: dict) -> list[str]:
    setup = sweep["setup"]
    taus = setup["taus"]
    lines = [
        "## 1. Control rate: plain LIF vs bifurcation dynamics",
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
            f"{_pp(null['null_mean'])} | {null['p']:.3f} |"
        )
    lines += [
        "",
        "Cells: mean ± std of test accuracy over seeds. Spread: max - min over tau_m of the seed means. The "
        "no-effect column deals the same runs out to the tau_m values at random: the spread noise alone produces, "
        "and how often it reaches the observed one (p).",
        "",
        "| comparison | difference of spreads [95% interval] | verdict |",
        "|---|---|---|",
    ]
    for method, comp in sweep["spread_difference_lif_minus"].items():
        lines.append(f"| spread(LIF) - spread({method}) | {_pp(comp['difference'])} {_pp_interval(comp['ci95'])} | {comp['verdict']} |")
    lines += ["", "![accuracy vs tau_m](figures/tau_sweep.png)", ""]
    return lines


def _spectrum_section(sweep: dict) -> list[str]:
    spectrum = sweep["spectrum"]
    lines = [
        "## 2. Bifurcation eigenvalue spectrum before and after training",
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
    shares = _regime_shares(sweep["eigen_regimes"])
    lines += ["", "Over every run of the sweep (all tau_m and seeds), the share of eigenvalues in each regime after training:", "",
              "| structure | dissipative | conservative | diffusive | at the lower bound (plain LIF) | at the upper bound |", "|---|---|---|---|---|---|"]
    for method, share in shares.items():
        lines.append(
            f"| {method} | {share['dissipative']:.2f} | {share['conservative']:.2f} | {share['diffusive']:.2f} | "
            f"{share['at_lower']:.2f} | {share['at_upper']:.2f} |"
        )
    check = spectrum["coupled_check"]
    if check:
        lines += ["", f"Coupled check: eigenvalues of A - I against the explicit lambda: largest |imaginary part| "
                  f"{check['max_abs_imaginary']:.1e}, largest difference {check['max_abs_difference_to_explicit']:.1e}."]
    lines += ["", "![eigenvalue spectrum](figures/eigen_spectrum.png)", ""]
    return lines


def _regime_shares(regimes: dict) -> dict:
    """Pooled over runs and layers, from the per-layer summaries (weighted by each layer's neuron count)."""
    out = {}
    for method, entries in regimes.items():
        return_keys = ("dissipative", "conservative", "diffusive")
        totals = dict.fromkeys(return_keys, 0.0)
        at_lower = at_upper = 0.0
        count = 0
        for entry in entries:
            for layer, after in entry["after"].items():
                n = after.get("count", 1)
                for key in return_keys:
                    totals[key] += after[key] * n
                at_lower += after.get("at_lower", 0.0) * n
                at_upper += after.get("at_upper", 0.0) * n
                count += n
        out[method] = {**{k: v / max(count, 1) for k, v in totals.items()}, "at_lower": at_lower / max(count, 1), "at_upper": at_upper / max(count, 1)}
    return out


def _imp_section(imp: dict) -> list[str]:
    setup = imp["setup"]
    curves = imp["per_step_accuracy"]
    steps = len(next(iter(curves.values()))[0])
    lines = [
        "## 3. Per-time-step accuracy with zero vs learnable IMP (static digits)",
        "",
        f"Claim: {imp['claim']}",
        "",
        f"Setup: {setup['data']}, the image presented at each of T = {setup['time_steps']} steps; {setup['neuron']}; "
        f"IMP {setup['imp']}; {setup['loss']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {_timing(imp)}.",
        "",
        "| IMP | " + " | ".join(f"t = {t}" for t in range(1, steps + 1)) + " | mean readout |",
        "|---|" + "---|" * (steps + 1),
    ]
    for name, runs in curves.items():
        values = np.asarray(runs) * 100
        cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), _std(values))]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_acc_cell(describe(imp['accuracy'][name]))} |")
    lines += ["", *_claims_table(imp["claims"]), "", "![per-step accuracy](figures/imp_per_step.png)", ""]
    return lines


def _readout_section(readout: dict) -> list[str]:
    setup = readout["setup"]
    curves = readout["epoch_accuracy"]
    epochs = len(next(iter(curves.values()))[0])
    lines = [
        "## 4. LTS vs mean-over-time readout (static digits)",
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
    lines += ["", *_claims_table(readout["claims"]), "", "![LTS vs mean readout](figures/readout_convergence.png)", ""]
    return lines


def _loss_section(loss: dict) -> list[str]:
    setup = loss["setup"]
    lines = [
        "## 5. TET vs label-smoothed TET (event digits)",
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
    lines += ["", *_claims_table(loss["claims"]), "", "![TET vs label-smoothed TET](figures/loss_comparison.png)", ""]
    return lines


def _patterns_section(patterns: dict) -> list[str]:
    setup = patterns["setup"]
    lines = [
        "## 6. Firing patterns a learnable IMP makes possible",
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
