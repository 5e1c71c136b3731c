"""IMP paper: a label-smoothed TET loss, which drops TET's MSE regulariser, trains better than vanilla TET
(Shen et al., NeurIPS 2024, on TET of Deng et al., ICLR 2022). The two losses paired by seed."""

from __future__ import annotations

from ...figures import report as report_figures
from .. import stats
from ..formatting import acc_cell
from ..neuron_specs import ImpNeuron
from ..settings import TASK_NAMES, Settings
from ..stats import describe
from ..training import RunSpec
from .base import PairedExperiment, claim


class LossComparison(PairedExperiment):
    key = "loss"
    label = "TET vs label-smoothed TET"
    figures = {"loss_comparison.png": "loss_comparison"}
    #: name -> (loss, its options): the paper's configs
    methods = {"TET": ("tet", {"lam": 1e-3, "phi": 1.0}), "label-smoothed TET": ("label_smoothed_tet", {"epsilon": 0.01, "lam": 0.0})}
    claim_name = "LS-TET"
    heading = "6. TET vs label-smoothed TET"
    setup_details = "TET: {TET}; label-smoothed TET: {label-smoothed TET}"
    figure_alt = "TET vs label-smoothed TET"

    def method_spec(self, settings: Settings, method: tuple[str, dict]) -> RunSpec:
        loss, options = method
        return RunSpec(0, "events", ImpNeuron("neuron", settings.imp_tau, settings.imp_reset), loss, settings.epochs_pairs,
                       loss_options=options, task=settings.task)

    def summarize_runs(self, settings: Settings, runs: dict[str, list[dict]]) -> dict:
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

    def figure(self, task: str, entry: dict):
        return report_figures.paired_comparison(entry["accuracy"], f"TET vs label-smoothed TET, {TASK_NAMES[task]}")

    def table(self, entry: dict) -> list[str]:
        return [
            "| loss | test accuracy | per seed |",
            "|---|---|---|",
            *(f"| {name} | {acc_cell(describe(values))} | {', '.join(f'{100 * v:.1f}' for v in values)} |"
              for name, values in entry["accuracy"].items()),
        ]
