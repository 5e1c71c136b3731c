"""What every experiment of the report is: an :class:`Experiment` holds its training runs, how it sums them
up, its figures and its Markdown; and the helpers several experiments share."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Iterator

import numpy as np

from ...analysis import eigenvalue_regimes
from .. import stats
from ..formatting import claims_table, pp, pp_interval, timing
from ..settings import TASK_NAMES, Settings
from ..training import RunSpec

CONSERVATIVE_TOL_MU = 1e-2  # |mu| below this counts as conservative (EigenvalueMonitor's default tolerance)

#: (claim and source, measure, [(effect, verdict) per task]): one row of the report's summary table
ClaimRow = tuple[str, str, list[tuple[str, str]]]


class Experiment:
    """One experiment run on one task. The runner asks it for its training runs (:meth:`specs`), hands it their
    results (:meth:`summarize`: a dict of plain numbers, what ``report.json`` holds under :attr:`key`), then
    for its figures (:meth:`draw`), its Markdown (:meth:`section`), its rows of the summary table
    (:meth:`claim_rows`) and its text before the tasks' pages (:meth:`overview`).

    ``entries`` (in :meth:`summarize`: the task's experiments run before this one; elsewhere: all of them) maps
    each experiment's :attr:`key` to its summary, with the timings the runner adds (``wall_s``, ``cpu_s``).
    """

    #: the experiment's key in report.json (under the task)
    key: ClassVar[str]
    #: what the progress log calls it
    label: ClassVar[str]
    #: its figures: file name under figures/, after the "<task>_" prefix -> kind in figures.report.FIGURE_PIXELS
    figures: ClassVar[dict[str, str]] = {}

    def specs(self, settings: Settings) -> list[RunSpec]:
        raise NotImplementedError

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        raise NotImplementedError

    def draw(self, task: str, entries: dict) -> dict:
        """File name (as in :attr:`figures`) -> matplotlib figure."""
        return {}

    def section(self, task: str, entries: dict) -> list[str]:
        """Markdown lines on this task's page."""
        return []

    def claim_rows(self, entries: list[dict]) -> Iterator[ClaimRow]:
        """Summary rows, from this experiment's summary on each task (in the report's task order)."""
        return iter(())

    def overview(self, entries: dict[str, dict]) -> list[str]:
        """Markdown lines before the tasks' pages, from ``{task: this experiment's summary}``."""
        return []


class PairedExperiment(Experiment):
    """Methods compared run for run: every method of :attr:`methods` at every seed of ``settings.seeds_pairs``
    (the same seed: the same initial weights and batch order). A subclass gives one method's run
    (:meth:`method_spec`; its seed is replaced), the summary of the runs by method (:meth:`summarize_runs`), its
    one figure (:meth:`figure`) and the table of results in its section (:meth:`table`); its ``claims`` go into the section and the summary table."""

    #: method name -> what sets its runs apart (handed to method_spec)
    methods: ClassVar[dict]
    #: the name of its claims in the summary table
    claim_name: ClassVar[str]
    #: its section's heading (the data is added), what its setup line says between the neuron and the seeds (a
    #: format string of the summary's setup), and its figure's alt text
    heading: ClassVar[str]
    setup_details: ClassVar[str]
    figure_alt: ClassVar[str]

    def method_spec(self, settings: Settings, method) -> RunSpec:
        raise NotImplementedError

    def summarize_runs(self, settings: Settings, runs: dict[str, list[dict]]) -> dict:
        """The summary from ``{method: [result per seed]}``."""
        raise NotImplementedError

    def figure(self, task: str, entry: dict):
        raise NotImplementedError

    def table(self, entry: dict) -> list[str]:
        raise NotImplementedError

    def specs(self, settings: Settings) -> list[RunSpec]:
        return [
            dataclasses.replace(self.method_spec(settings, method), seed=seed)
            for seed in settings.seeds_pairs for method in self.methods.values()
        ]

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        names = list(self.methods)
        return self.summarize_runs(settings, {name: results[j :: len(names)] for j, name in enumerate(names)})

    def draw(self, task: str, entries: dict) -> dict:
        (name,) = self.figures
        return {name: self.figure(task, entries[self.key])}

    def section(self, task: str, entries: dict) -> list[str]:
        entry = entries[self.key]
        setup = entry["setup"]
        (figure,) = self.figures
        return [
            f"## {self.heading} ({setup['data']})",
            "",
            f"Claim: {entry['claim']}",
            "",
            f"Setup: {setup['data']}, T = {setup['time_steps']}; {setup['neuron']}; {self.setup_details.format(**setup)}; "
            f"seeds {setup['seeds']}, {setup['epochs']} epochs; {timing(entry)}.",
            "",
            *self.table(entry),
            "", *claims_table(entry["claims"]), "", f"![{self.figure_alt}](figures/{task}_{figure})", "",
        ]

    def claim_rows(self, entries: list[dict]) -> Iterator[ClaimRow]:
        for measure in entries[0]["claims"]:
            yield (f"{self.claim_name} (NeurIPS 2024)", measure, [
                (f"{pp(c['mean'])} {pp_interval(c['ci95'])}", c["verdict"]) for c in (e["claims"][measure] for e in entries)
            ])


def claim(description: dict) -> dict:
    """A :func:`~.stats.describe` or :func:`~.stats.paired_difference` with its verdict."""
    return {**description, "verdict": stats.verdict(description["ci95"])}


def regimes(result: dict, tau: float, seed: int, bounds_mu: tuple[float, float]) -> dict:
    """Regime fractions of a run's eigenvalues before and after training, and how far they moved (in mu)."""
    tol, bounds = CONSERVATIVE_TOL_MU / tau, (bounds_mu[0] / tau, bounds_mu[1] / tau)
    before, after = result["eigen_before"], result["eigen_after"]
    moved = np.concatenate([np.abs(np.subtract(after[k], before[k])) for k in after]) * tau
    raw = np.concatenate([result["eigen_param_after"][k] for k in after])
    return {
        "tau_m": tau, "seed": seed,
        "before": eigenvalue_regimes(before, tol, bounds),
        "after": eigenvalue_regimes(after, tol, bounds),
        "mean_abs_change_mu": float(moved.mean()),
        # parameters past a bound: the clamp holds them there and passes them no gradient
        "past_upper": float((raw > bounds[1]).mean()),
        "past_lower": float((raw < bounds[0]).mean()),
    }


def pooled_after(entries: list[dict]) -> dict:
    """Shares after training pooled over runs and layers (weighted by neurons), and the mean movement in mu,
    of :func:`regimes` entries."""
    keys = ("dissipative", "conservative", "diffusive", "at_lower", "at_upper")
    totals, count = dict.fromkeys(keys, 0.0), 0
    for entry in entries:
        for layer in entry["after"].values():
            for key in keys:
                totals[key] += layer[key] * layer["count"]
            count += layer["count"]
    extra = {key: float(np.mean([e[key] for e in entries])) if entries else None
             for key in ("mean_abs_change_mu", "past_upper", "past_lower")}
    return {**{k: v / max(count, 1) for k, v in totals.items()}, **extra}


def imp_lts_data(settings: Settings) -> dict:
    """The data of the IMP and LTS experiments: the static digits, or the task's event frames."""
    if settings.imp_lts_variant == "static":
        return {"data": "static digits", "time_steps": settings.time_steps_static}
    return {"data": TASK_NAMES[settings.task], "time_steps": settings.time_steps_events}

