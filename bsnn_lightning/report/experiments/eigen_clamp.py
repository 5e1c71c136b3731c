"""Why the diagonal eigenvalues end at the upper clamp at large tau_m, and whether the bound or the
parametrisation decides it.

Three sets of runs of the diagonal BSNN network (the sweep's data, loss, epochs and seeds):

- ``mu`` learned at every tau_m of the sweep: the eigenvalues' learning rate divided by tau_m (for Adam the
  same as holding ``mu`` itself as the parameter, the paper's ``P``), against the sweep's ``lambda`` learned;
- other upper bounds of ``mu`` at the sweep's largest tau_m (``lambda`` learned, as in the sweep);
- the package's default ``BifurcationNeuron`` (its own ``eigen_init`` and ``bounds``; tau_m = 1, where
  ``lambda = mu``), and another upper bound there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...figures import report as report_figures
from ...neuron_params import MethodSettings
from .. import stats
from ..formatting import acc_cell, pp, pp_interval, timing
from ..neuron_specs import BOUNDS_MU, EIGEN_INIT_MU, ClampNeuron, DefaultNeuron
from ..settings import TASK_NAMES, Settings
from ..training import RunSpec
from .base import Experiment, pooled_after, regimes

#: the other upper bounds of mu, at the sweep's largest tau_m and at tau_m = 1
CLAMP_UPPER_MU = {"largest tau_m": (0.0, 1.0), "tau_m = 1": (0.0,)}


@dataclass(frozen=True)
class ClampVariant:
    """One set of runs: its name in the report, its neuron, the eigenvalues' learning-rate factor, and the
    group it is compared within (``"mu learned"``, ``"largest tau_m"`` or ``"package defaults"``)."""

    name: str
    neuron: ClampNeuron | DefaultNeuron
    eigen_lr_scale: float
    group: str


def variants(settings: Settings) -> list[ClampVariant]:
    """The experiment's runs but the sweep's (which it reuses), in the order they run."""
    big = max(settings.taus)
    found = [ClampVariant("mu learned", ClampNeuron(tau, BOUNDS_MU[1]), 1.0 / tau, "mu learned") for tau in settings.taus]
    found += [ClampVariant(f"mu <= {hi:g}", ClampNeuron(big, hi), 1.0, "largest tau_m") for hi in CLAMP_UPPER_MU["largest tau_m"]]
    found.append(ClampVariant("package defaults", DefaultNeuron(), 1.0, "package defaults"))
    found += [ClampVariant(f"mu <= {hi:g}", ClampNeuron(1.0, hi), 1.0, "package defaults") for hi in CLAMP_UPPER_MU["tau_m = 1"]]
    return found


class EigenvalueClamp(Experiment):
    key = "eigen_clamp"
    label = "eigenvalue clamp"
    figures = {"eigen_clamp.png": "eigen_clamp"}

    def specs(self, settings: Settings) -> list[RunSpec]:
        return [
            RunSpec(seed, "events", variant.neuron, "ce", settings.epochs_sweep, record_eigenvalues=True,
                    eigen_lr_scale=variant.eigen_lr_scale, task=settings.task)
            for variant in variants(settings) for seed in settings.seeds_sweep
        ]

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        sweep = entries["control_rate"]
        taus, big, seeds = settings.taus, max(settings.taus), settings.seeds_sweep
        cells = {"mu learned": [], "largest tau_m": [], "package defaults": []}
        for k, variant in enumerate(variants(settings)):
            runs = results[k * len(seeds) : (k + 1) * len(seeds)]
            neuron = variant.neuron
            cells[variant.group].append(_cell(
                variant.name, neuron.tau, neuron.bounds_mu[1], [r["accuracy"] for r in runs],
                [regimes(r, neuron.tau, seed, neuron.bounds_mu) for seed, r in zip(seeds, runs)],
            ))
        lambda_learned = [
            _cell("lambda learned (the sweep)", tau, BOUNDS_MU[1], sweep["accuracy"]["BSNN diagonal"][i],
                  [e for e in sweep["eigen_regimes"]["BSNN diagonal"] if e["tau_m"] == tau])
            for i, tau in enumerate(taus)
        ]
        mu_learned, defaults = cells["mu learned"], cells["package defaults"]
        bounds = [lambda_learned[taus.index(big)], *cells["largest tau_m"]]
        for cell in bounds[1:]:
            cell["minus_reference"] = stats.paired_difference(cell["accuracy"], bounds[0]["accuracy"])
        for cell in defaults[1:]:
            cell["minus_reference"] = stats.paired_difference(cell["accuracy"], defaults[0]["accuracy"])
        mu_accuracy = [cell["accuracy"] for cell in mu_learned]
        mu_vs_lambda = stats.paired_difference(
            np.mean(mu_accuracy, axis=0), np.mean(sweep["accuracy"]["BSNN diagonal"], axis=0)
        )
        spread = stats.bootstrap_spread_difference(sweep["accuracy"]["LIF"], mu_accuracy)
        return {
            "question": "Why do most diagonal eigenvalues end at the upper clamp at large tau_m, and does the bound or "
            "the parametrisation decide it?",
            "setup": {
                "data": TASK_NAMES[settings.task], "structure": "diagonal", "seeds": list(settings.seeds_sweep),
                "epochs": settings.epochs_sweep, "optimizer": f"AdamW, lr {settings.lr:g} (no weight decay on eigenvalues)",
                "lambda learned": "the neuron's parameter is lambda = mu/tau_m (as in the sweep): an Adam step of lr in "
                "lambda is tau_m * lr in mu",
                "mu learned": "the eigenvalues' learning rate is lr/tau_m: an Adam step of lr in mu, as if mu (the "
                "paper's P - I) were the parameter",
                "bounds": f"mu in [{BOUNDS_MU[0]:g}, upper], eigen_init {EIGEN_INIT_MU}, both / tau_m",
                "package defaults": f"BifurcationNeuron(structure='diagonal'): eigen_init {MethodSettings().eigen_init}, "
                f"bounds {MethodSettings().bounds}",
            },
            "by_tau": {"taus": list(taus), "lambda learned": lambda_learned, "mu learned": mu_learned},
            "upper_bounds_at_largest_tau": bounds,
            "package_defaults": defaults,
            "mu_minus_lambda_learned_mean_over_tau": mu_vs_lambda,
            "spread_difference_lif_minus_mu_learned": spread,
        }

    def draw(self, task: str, entries: dict) -> dict:
        clamp = entries[self.key]
        return {"eigen_clamp.png": report_figures.eigen_clamp(
            clamp["by_tau"]["taus"], {k: clamp["by_tau"][k] for k in ("lambda learned", "mu learned")},
            clamp["upper_bounds_at_largest_tau"][1:] + clamp["package_defaults"], entries["control_rate"]["accuracy"]["LIF"],
            f"{TASK_NAMES[task]}: diagonal eigenvalues at the upper clamp, and accuracy, by parametrisation and bound",
        )}

    def section(self, task: str, entries: dict) -> list[str]:
        return _clamp_section(entries[self.key], task)


def _cell(name: str, tau: float, upper_mu: float, accuracy: list[float], regimes_: list[dict]) -> dict:
    return {"variant": name, "tau_m": tau, "upper_mu": upper_mu, "accuracy": list(accuracy),
            "describe": stats.describe(accuracy), "after": pooled_after(regimes_)}


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
        f"Mu learned: {setup['mu learned']}. Package defaults: `{setup['package defaults']}`. {timing(clamp)}.",
        "",
        "| parametrisation | " + " | ".join(f"tau_m = {t:g}" for t in taus) + " |",
        "|---|" + "---|" * len(taus),
    ]
    for name in ("lambda learned", "mu learned"):
        cells = clamp["by_tau"][name]
        lines.append(f"| {name}: accuracy | " + " | ".join(acc_cell(c["describe"]) for c in cells) + " |")
        lines.append(f"| {name}: at the upper bound | " + " | ".join(f"{c['after']['at_upper']:.2f}" for c in cells) + " |")
        lines.append(f"| {name}: parameter past the upper bound | " + " | ".join(f"{c['after']['past_upper']:.2f}" for c in cells) + " |")
        lines.append(f"| {name}: mean abs. change of mu | " + " | ".join(f"{c['after']['mean_abs_change_mu']:.3f}" for c in cells) + " |")
    diff, spread = clamp["mu_minus_lambda_learned_mean_over_tau"], clamp["spread_difference_lif_minus_mu_learned"]
    lines += [
        "",
        f"Mu learned minus lambda learned, accuracy averaged over tau_m, paired by seed: {pp(diff['mean'])} "
        f"{pp_interval(diff['ci95'])}. Spread(LIF) - spread(diagonal, mu learned): {pp(spread['difference'])} "
        f"{pp_interval(spread['ci95'])} (added after the first report: exploratory, not a pre-declared claim).",
        "",
        "| variant | tau_m | upper bound of mu | accuracy | minus the reference [95% interval] | at the upper bound | parameter past it | at the lower bound | mean abs. change of mu |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for group in (clamp["upper_bounds_at_largest_tau"], clamp["package_defaults"]):
        for k, cell in enumerate(group):
            rel = cell.get("minus_reference")
            ref = "reference" if k == 0 else f"{pp(rel['mean'])} {pp_interval(rel['ci95'])}"
            after = cell["after"]
            lines.append(
                f"| {cell['variant']} | {cell['tau_m']:g} | {cell['upper_mu']:g} | {acc_cell(cell['describe'])} | {ref} | "
                f"{after['at_upper']:.2f} | {after['past_upper']:.2f} | {after['at_lower']:.2f} | {after['mean_abs_change_mu']:.3f} |"
            )
    lines += ["", f"![eigenvalue clamp](figures/{task}_eigen_clamp.png)", ""]
    return lines


