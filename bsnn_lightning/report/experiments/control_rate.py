"""BSNN's claim: accuracy is insensitive to the control rate 1/tau_m, unlike plain LIF (Zhang, Zhang & Zhou,
JMLR 2021). Plain LIF and the diagonal and coupled bifurcation neurons at every tau_m of the settings (the
mapping of tau_m into each neuron is in :mod:`..neuron_specs`), and the bifurcation eigenvalues before and after
training."""

from __future__ import annotations

from typing import Iterator

from ...figures import report as report_figures
from .. import stats
from ..formatting import acc_cell, pp, pp_interval, timing
from ..neuron_specs import BOUNDS_MU, EIGEN_INIT_MU, SWEEP_METHODS, SweepNeuron
from ..settings import TASK_NAMES, Settings
from ..training import RunSpec
from .base import ClaimRow, Experiment, pooled_after, regimes


class ControlRateSweep(Experiment):
    key = "control_rate"
    label = "control-rate sweep"
    figures = {"tau_sweep.png": "tau_sweep", "eigen_spectrum.png": "eigen_spectrum"}

    def specs(self, settings: Settings) -> list[RunSpec]:
        return [
            RunSpec(seed, "events", SweepNeuron(method, tau), "ce", settings.epochs_sweep, record_eigenvalues=method != "LIF",
                    task=settings.task)
            for _, tau, method, seed in _grid(settings)
        ]

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        accuracy = {m: [[] for _ in settings.taus] for m in SWEEP_METHODS}
        eigen_regimes = {m: [] for m in SWEEP_METHODS[1:]}
        spectrum_tau = 2.0 if 2.0 in settings.taus else settings.taus[0]
        spectra, coupled_check = {}, None
        for (i, tau, method, seed), result in zip(_grid(settings), results):
            accuracy[method][i].append(result["accuracy"])
            if method == "LIF":
                continue
            eigen_regimes[method].append(regimes(result, tau, seed, SweepNeuron(method, tau).bounds_mu))
            if tau == spectrum_tau and seed == settings.seeds_sweep[0]:
                spectra[method] = {k: (result["eigen_before"][k], result["eigen_after"][k]) for k in result["eigen_after"]}
                if method == "BSNN coupled":
                    coupled_check = result["coupled_check"]
        per_method = {method: sweep_summary(settings.taus, accuracy[method]) for method in SWEEP_METHODS}
        comparisons = {}
        for method in SWEEP_METHODS[1:]:
            comparison = stats.bootstrap_spread_difference(accuracy["LIF"], accuracy[method])
            comparisons[method] = {**comparison, "verdict": stats.verdict(comparison["ci95"])}
        return {
            "claim": "Bifurcation dynamics make accuracy insensitive to the control rate 1/tau_m, which plain LIF is "
            "sensitive to (Zhang, Zhang & Zhou, JMLR 2021): spread(LIF) - spread(BSNN) > 0.",
            "setup": {
                "data": TASK_NAMES[settings.task], "time_steps": settings.time_steps_events, "loss": "rate cross entropy (mean readout)",
                "taus": list(settings.taus), "seeds": list(settings.seeds_sweep), "epochs": settings.epochs_sweep,
                "lif": "LIFNeuron(tau=tau_m, decay_input=False, v_reset=None): lambda = -1/tau_m",
                "bsnn": f"BifurcationNeuron(eigen_init={EIGEN_INIT_MU}/tau_m, bounds={BOUNDS_MU}/tau_m): lambda = mu/tau_m",
            },
            "accuracy": accuracy,
            "methods": per_method,
            "spread_difference_lif_minus": comparisons,
            "eigen_regimes": eigen_regimes,
            "spectrum": {
                "tau_m": spectrum_tau, "seed": settings.seeds_sweep[0],
                "bounds": [BOUNDS_MU[0] / spectrum_tau, BOUNDS_MU[1] / spectrum_tau],
                "layers": {m: {k: {"before": list(b), "after": list(a)} for k, (b, a) in layers.items()} for m, layers in spectra.items()},
                "coupled_check": coupled_check,
            },
        }

    def draw(self, task: str, entries: dict) -> dict:
        sweep, baseline, name = entries[self.key], entries["time_averaged"], TASK_NAMES[task]
        spectrum = sweep["spectrum"]
        layers = {
            method: {layer: (v["before"], v["after"]) for layer, v in per_layer.items()}
            for method, per_layer in spectrum["layers"].items()
        }
        return {
            "tau_sweep.png": report_figures.tau_sweep(
                sweep["setup"]["taus"], sweep["accuracy"], f"{name}: accuracy vs tau_m (mean ± std over seeds; dots: seeds)",
                chance=baseline["chance"], time_averaged=baseline["accuracy"]["time-averaged frames"],
            ),
            "eigen_spectrum.png": report_figures.eigen_spectrum(
                layers, tuple(spectrum["bounds"]),
                f"{name}: eigenvalues lambda of (P - I)/tau_m, tau_m = {spectrum['tau_m']:g}, seed {spectrum['seed']}: before and after training",
            ),
        }

    def section(self, task: str, entries: dict) -> list[str]:
        return [*_sweep_section(entries[self.key], entries["time_averaged"], task), *_spectrum_section(entries[self.key], task)]

    def claim_rows(self, entries: list[dict]) -> Iterator[ClaimRow]:
        for method in entries[0]["spread_difference_lif_minus"]:
            yield ("BSNN: insensitive to tau_m (JMLR 2021)", f"spread(LIF) - spread({method})", [
                (f"{pp(c['difference'])} {pp_interval(c['ci95'])}", c["verdict"])
                for c in (e["spread_difference_lif_minus"][method] for e in entries)
            ])


def sweep_summary(taus, accuracy) -> dict:
    """Per tau_m the accuracies described, their spread over tau_m, and the spread tau_m-free noise gives."""
    return {
        "by_tau": [{"tau_m": tau, **stats.describe(acc)} for tau, acc in zip(taus, accuracy)],
        "spread": stats.bootstrap_spread(accuracy),
        "no_effect_test": stats.permutation_spread(accuracy),
    }


def _grid(settings: Settings) -> list[tuple[int, float, str, int]]:
    return [(i, tau, method, seed) for i, tau in enumerate(settings.taus) for method in SWEEP_METHODS for seed in settings.seeds_sweep]


def _sweep_section(sweep: dict, baseline: dict, task: str) -> list[str]:
    setup = sweep["setup"]
    taus = setup["taus"]
    lines = [
        f"## 1. Control rate: plain LIF vs bifurcation dynamics ({TASK_NAMES[task]})",
        "",
        f"Claim: {sweep['claim']}",
        "",
        f"Setup: {setup['data']}, T = {setup['time_steps']}, {setup['loss']}; tau_m in {taus}; seeds {setup['seeds']}, "
        f"{setup['epochs']} epochs per run; {timing(sweep)}. LIF: `{setup['lif']}`. BSNN: `{setup['bsnn']}` "
        "(mu: the eigenvalues of P - I; mu = -1 is plain LIF).",
        "",
        "| method | " + " | ".join(f"tau_m = {t:g}" for t in taus) + " | spread [95% interval] | spread if tau_m had no effect | p (no effect) |",
        "|---|" + "---|" * (len(taus) + 3),
    ]
    for method, res in sweep["methods"].items():
        cells = [acc_cell(entry) for entry in res["by_tau"]]
        sp, null = res["spread"], res["no_effect_test"]
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | {pp(sp['spread'])} {pp_interval(sp['ci95'])} | "
            f"{pp(null['null_mean'])} | {null['p']:.4f} |"
        )
    lines += [
        "",
        "Cells: mean ± std of test accuracy over seeds. Spread: max - min over tau_m of the seed means. The "
        "no-effect column deals the same runs out to the tau_m values at random: the spread noise alone produces, "
        f"and how often it reaches the observed one (p). Chance: {100 * baseline['chance']:.1f}%; LIF at tau_m = "
        f"{baseline['setup']['tau_m']:g} on time-averaged frames: {acc_cell(baseline['time_averaged'])}.",
        "",
        "| comparison | difference of spreads [95% interval] | verdict |",
        "|---|---|---|",
    ]
    for method, comp in sweep["spread_difference_lif_minus"].items():
        lines.append(f"| spread(LIF) - spread({method}) | {pp(comp['difference'])} {pp_interval(comp['ci95'])} | {comp['verdict']} |")
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
        share = pooled_after(entries)
        per_tau = [pooled_after([e for e in entries if e["tau_m"] == t])["at_upper"] for t in taus]
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
