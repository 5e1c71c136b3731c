"""IMP paper: the last-time-step (LTS) readout accelerates convergence on static tasks (Shen et al., NeurIPS
2024). LTS against the mean-over-time readout, paired by seed, with the test accuracy after every epoch."""

from __future__ import annotations

from ...figures import report as report_figures
from .. import stats
from ..formatting import mean_std_cells
from ..neuron_specs import ImpNeuron
from ..settings import Settings
from ..training import RunSpec
from .base import PairedExperiment, claim, imp_lts_data


class ReadoutComparison(PairedExperiment):
    key = "readout"
    label = "LTS vs mean readout"
    figures = {"readout_convergence.png": "readout_convergence"}
    methods = {"LTS": "lts", "mean over time": "ce"}  # readout -> loss
    claim_name = "LTS"
    heading = "5. LTS vs mean-over-time readout"
    setup_details = "LTS: {LTS}; mean: {mean over time}"
    figure_alt = "LTS vs mean readout"

    def method_spec(self, settings: Settings, loss: str) -> RunSpec:
        return RunSpec(0, settings.imp_lts_variant, ImpNeuron("neuron", settings.imp_tau, settings.imp_reset), loss,
                       settings.epochs_pairs, track_epochs=True, task=settings.task)

    def summarize_runs(self, settings: Settings, runs: dict[str, list[dict]]) -> dict:
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

    def figure(self, task: str, entry: dict):
        return report_figures.readout_convergence(entry["epoch_accuracy"], f"LTS vs mean-over-time readout, {entry['setup']['data']}")

    def table(self, entry: dict) -> list[str]:
        curves = entry["epoch_accuracy"]
        epochs = len(next(iter(curves.values()))[0])
        return [
            "| readout | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |",
            "|---|" + "---|" * epochs,
            *(f"| {name} | " + " | ".join(mean_std_cells(runs)) + " |" for name, runs in curves.items()),
        ]
