"""IMP paper: a label-smoothed TET loss, which drops TET's MSE regulariser, trains better than vanilla TET
(Shen et al., NeurIPS 2024, on TET of Deng et al., ICLR 2022). The two losses paired by seed."""

from __future__ import annotations

from typing import Iterator

from ...figures import report as report_figures
from .. import stats
from ..formatting import acc_cell, claims_table, timing
from ..neuron_specs import ImpNeuron
from ..settings import TASK_NAMES, Settings
from ..stats import describe
from ..training import RunSpec
from .base import ClaimRow, Experiment, by_method, claim, paired_claim_rows, paired_specs

#: name -> (loss, its options): the paper's configs
METHODS = {"TET": ("tet", {"lam": 1e-3, "phi": 1.0}), "label-smoothed TET": ("label_smoothed_tet", {"epsilon": 0.01, "lam": 0.0})}


class LossComparison(Experiment):
    key = "loss"
    label = "TET vs label-smoothed TET"
    figures = {"loss_comparison.png": "loss_comparison"}

    def specs(self, settings: Settings) -> list[RunSpec]:
        return paired_specs(settings, {
            name: RunSpec(0, "events", ImpNeuron("neuron", settings.imp_tau, settings.imp_reset), loss, settings.epochs_pairs,
                          loss_options=options, task=settings.task)
            for name, (loss, options) in METHODS.items()
        })

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        runs = by_method(list(METHODS), results)
        accuracy = {name: [r["accuracy"] for r in rs] for name, rs in runs.items()}
        claims = {
            "test accuracy, label-smoothed TET minus TET": claim(stats.paired_difference(accuracy["label-smoothed TET"], accuracy["TET"]))
        }
        return {
            "claim": "A label-smoothed TET loss, which drops TET's MSE regulariser, trains better than vanilla TET "
            "(Shen et al., NeurIPS 2024, on TET of Deng et al., ICLR 2022).",
            "setup": {
                "data": TASK_NAMES[settings.task], "time_steps": settings.time_steps_events,
                "neuron": f"{ImpNeuron(None, settings.imp_tau, settings.imp_reset).describe()} with a learnable IMP per neuron",
                "TET": "lam 1e-3, phi 1", "label-smoothed TET": "epsilon 0.01, lam 0 (the paper's configs)",
                "seeds": list(settings.seeds_pairs), "epochs": settings.epochs_pairs,
            },
            "accuracy": accuracy,
            "claims": claims,
        }

    def draw(self, task: str, entries: dict) -> dict:
        return {"loss_comparison.png": report_figures.paired_comparison(
            entries[self.key]["accuracy"], f"TET vs label-smoothed TET, {TASK_NAMES[task]}"
        )}

    def section(self, task: str, entries: dict) -> list[str]:
        return _loss_section(entries[self.key], task)

    def claim_rows(self, entries: list[dict]) -> Iterator[ClaimRow]:
        return paired_claim_rows("LS-TET", entries)


def _loss_section(loss: dict, task: str) -> list[str]:
    setup = loss["setup"]
    lines = [
        f"## 6. TET vs label-smoothed TET ({setup['data']})",
        "",
        f"Claim: {loss['claim']}",
        "",
        f"Setup: {setup['data']}, T = {setup['time_steps']}; {setup['neuron']}; TET: {setup['TET']}; label-smoothed "
        f"TET: {setup['label-smoothed TET']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {timing(loss)}.",
        "",
        "| loss | test accuracy | per seed |",
        "|---|---|---|",
    ]
    for name, values in loss["accuracy"].items():
        lines.append(f"| {name} | {acc_cell(describe(values))} | {', '.join(f'{100 * v:.1f}' for v in values)} |")
    lines += ["", *claims_table(loss["claims"]), "", f"![TET vs label-smoothed TET](figures/{task}_loss_comparison.png)", ""]
    return lines


