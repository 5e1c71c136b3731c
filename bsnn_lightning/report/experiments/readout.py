"""IMP paper: the last-time-step (LTS) readout accelerates convergence on static tasks (Shen et al., NeurIPS
2024). LTS against the mean-over-time readout, paired by seed, with the test accuracy after every epoch."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...figures import report as report_figures
from .. import stats
from ..formatting import claims_table, std_over_runs, timing
from ..neuron_specs import ImpNeuron
from ..settings import Settings
from ..training import RunSpec
from .base import ClaimRow, Experiment, by_method, claim, imp_lts_data, paired_claim_rows, paired_specs

METHODS = {"LTS": "lts", "mean over time": "ce"}  # readout -> loss


class ReadoutComparison(Experiment):
    key = "readout"
    label = "LTS vs mean readout"
    figures = {"readout_convergence.png": "readout_convergence"}

    def specs(self, settings: Settings) -> list[RunSpec]:
        return paired_specs(settings, {
            name: RunSpec(0, settings.imp_lts_variant, ImpNeuron("neuron", settings.imp_tau, settings.imp_reset), loss,
                          settings.epochs_pairs, track_epochs=True, task=settings.task)
            for name, loss in METHODS.items()
        })

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        runs = by_method(list(METHODS), results)
        curves = {name: [r["epoch_accuracy"] for r in rs] for name, rs in runs.items()}
        final = {name: [r["accuracy"] for r in rs] for name, rs in runs.items()}
        first_epoch = {name: [c[0] for c in cs] for name, cs in curves.items()}
        claims = {
            "test accuracy after epoch 1, LTS minus mean": claim(stats.paired_difference(first_epoch["LTS"], first_epoch["mean over time"])),
            "final test accuracy, LTS minus mean": claim(stats.paired_difference(final["LTS"], final["mean over time"])),
        }
        return {
            "claim": "Training on and reading out the last time step only (LTS) accelerates convergence on static "
            "tasks (Shen et al., NeurIPS 2024).",
            "setup": {
                **imp_lts_data(settings),
                "neuron": f"{ImpNeuron(None, settings.imp_tau, settings.imp_reset).describe()} with a learnable IMP per neuron",
                "LTS": "loss CE(O_T, y), prediction argmax O_T", "mean over time": "loss CE(mean_t O_t, y), prediction argmax mean_t O_t",
                "seeds": list(settings.seeds_pairs), "epochs": settings.epochs_pairs,
            },
            "epoch_accuracy": curves,
            "accuracy": final,
            "claims": claims,
        }

    def draw(self, task: str, entries: dict) -> dict:
        entry = entries[self.key]
        return {"readout_convergence.png": report_figures.readout_convergence(
            entry["epoch_accuracy"], f"LTS vs mean-over-time readout, {entry['setup']['data']}"
        )}

    def section(self, task: str, entries: dict) -> list[str]:
        return _readout_section(entries[self.key], task)

    def claim_rows(self, entries: list[dict]) -> Iterator[ClaimRow]:
        return paired_claim_rows("LTS", entries)


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
        f"{setup['mean over time']}; seeds {setup['seeds']}, {setup['epochs']} epochs; {timing(readout)}.",
        "",
        "| readout | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |",
        "|---|" + "---|" * epochs,
    ]
    for name, runs in curves.items():
        values = np.asarray(runs) * 100
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), std_over_runs(values))) + " |")
    lines += ["", *claims_table(readout["claims"]), "", f"![LTS vs mean readout](figures/{task}_readout_convergence.png)", ""]
    return lines


