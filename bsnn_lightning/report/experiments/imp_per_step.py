"""IMP paper: on static tasks accuracy grows with t from a zero initial membrane potential; a learnable IMP
speeds this up (Shen et al., NeurIPS 2024). Zero against learnable IMP, paired by seed."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...figures import report as report_figures
from .. import stats
from ..formatting import acc_cell, claims_table, std_over_runs, timing
from ..neuron_specs import ImpNeuron
from ..settings import Settings
from ..stats import describe
from ..training import RunSpec
from .base import ClaimRow, Experiment, by_method, claim, imp_lts_data, paired_claim_rows, paired_specs

METHODS = {"zero IMP": None, "learnable IMP": "neuron"}


class ImpPerStep(Experiment):
    key = "imp_per_step"
    label = "per-step accuracy, zero vs learnable IMP"
    figures = {"imp_per_step.png": "imp_per_step"}

    def specs(self, settings: Settings) -> list[RunSpec]:
        return paired_specs(settings, {
            name: RunSpec(0, settings.imp_lts_variant, ImpNeuron(imp, settings.imp_tau, settings.imp_reset), "label_smoothed_tet",
                          settings.epochs_pairs, loss_options={"epsilon": 0.01}, task=settings.task)
            for name, imp in METHODS.items()
        })

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        runs = by_method(list(METHODS), results)
        curves = {name: [r["per_step"] for r in rs] for name, rs in runs.items()}
        first = {name: [c[0] for c in cs] for name, cs in curves.items()}
        growth = [c[-1] - c[0] for c in curves["zero IMP"]]
        overall = {name: [r["accuracy"] for r in rs] for name, rs in runs.items()}
        claims = {
            "zero IMP: accuracy at the last step minus the first": claim(stats.describe(growth)),
            "first-step accuracy, learnable minus zero IMP": claim(stats.paired_difference(first["learnable IMP"], first["zero IMP"])),
            "test accuracy (mean readout), learnable minus zero IMP": claim(
                stats.paired_difference(overall["learnable IMP"], overall["zero IMP"])
            ),
        }
        return {
            "claim": "On static tasks the accuracy at each time step increases as the membrane potential evolves from "
            "zero; a learnable IMP accelerates that evolution and gives higher accuracy within few time steps "
            "(Shen et al., NeurIPS 2024).",
            "setup": {
                **imp_lts_data(settings),
                "neuron": ImpNeuron(None, settings.imp_tau, settings.imp_reset).describe(), "imp": "per neuron, U(0.4, 0.6)",
                "loss": "label-smoothed TET, epsilon 0.01 (trains the output of every step)", "seeds": list(settings.seeds_pairs),
                "epochs": settings.epochs_pairs,
            },
            "per_step_accuracy": curves,
            "accuracy": overall,
            "claims": claims,
        }

    def draw(self, task: str, entries: dict) -> dict:
        entry = entries[self.key]
        return {"imp_per_step.png": report_figures.per_step_accuracy(
            entry["per_step_accuracy"], f"Per-time-step accuracy, {entry['setup']['data']} (mean ± std over seeds)"
        )}

    def section(self, task: str, entries: dict) -> list[str]:
        return _imp_section(entries[self.key], task)

    def claim_rows(self, entries: list[dict]) -> Iterator[ClaimRow]:
        return paired_claim_rows("IMP", entries)


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
        f"IMP {setup['imp']}; {setup['loss']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {timing(imp)}.",
        "",
        "| IMP | " + " | ".join(f"t = {t}" for t in range(1, steps + 1)) + " | mean readout |",
        "|---|" + "---|" * (steps + 1),
    ]
    for name, runs in curves.items():
        values = np.asarray(runs) * 100
        cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), std_over_runs(values))]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {acc_cell(describe(imp['accuracy'][name]))} |")
    lines += ["", *claims_table(imp["claims"]), "", f"![per-step accuracy](figures/{task}_imp_per_step.png)", ""]
    return lines


