"""IMP paper: on static tasks accuracy grows with t from a zero initial membrane potential; a learnable IMP
speeds this up (Shen et al., NeurIPS 2024). Zero against learnable IMP, paired by seed."""

from __future__ import annotations

from ...figures import report as report_figures
from .. import stats
from ..formatting import acc_cell, mean_std_cells
from ..neuron_specs import ImpNeuron
from ..settings import Settings
from ..stats import describe
from ..training import RunSpec
from .base import PairedExperiment, claim, imp_lts_data


class ImpPerStep(PairedExperiment):
    key = "imp_per_step"
    label = "per-step accuracy, zero vs learnable IMP"
    figures = {"imp_per_step.png": "imp_per_step"}
    methods = {"zero IMP": None, "learnable IMP": "neuron"}  # name -> IMP
    claim_name = "IMP"
    heading = "4. Per-time-step accuracy with zero vs learnable IMP"
    setup_details = "IMP {imp}; {loss}"
    figure_alt = "per-step accuracy"

    def method_spec(self, settings: Settings, imp: str | None) -> RunSpec:
        return RunSpec(0, settings.imp_lts_variant, ImpNeuron(imp, settings.imp_tau, settings.imp_reset), "label_smoothed_tet",
                       settings.epochs_pairs, loss_options={"epsilon": 0.01}, task=settings.task)

    def summarize_runs(self, settings: Settings, runs: dict[str, list[dict]]) -> dict:
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

    def figure(self, task: str, entry: dict):
        return report_figures.per_step_accuracy(
            entry["per_step_accuracy"], f"Per-time-step accuracy, {entry['setup']['data']} (mean ± std over seeds)"
        )

    def table(self, entry: dict) -> list[str]:
        curves = entry["per_step_accuracy"]
        steps = len(next(iter(curves.values()))[0])
        return [
            "| IMP | " + " | ".join(f"t = {t}" for t in range(1, steps + 1)) + " | mean readout |",
            "|---|" + "---|" * (steps + 1),
            *(f"| {name} | " + " | ".join(mean_std_cells(runs)) + f" | {acc_cell(describe(entry['accuracy'][name]))} |"
              for name, runs in curves.items()),
        ]
