"""IMP paper: with v_0 = 0 a neuron's spike trains are limited; other initial potentials add patterns (Shen et
al., NeurIPS 2024). One neuron, no training: the one experiment that does not depend on the task."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ...figures import report as report_figures
from ...neurons import LIFNeuron
from ..formatting import timing
from ..training import clock, elapsed
from .base import ClaimRow


class FiringPatterns:
    """Run once per report (:meth:`measure`), drawn once, one section after the tasks' pages."""

    key = "firing_patterns"
    label = "firing patterns of one neuron (no training)"
    figures = {"firing_patterns.png": "firing_patterns"}

    def measure(self) -> dict:
        return firing_patterns()

    def draw(self, entry: dict) -> dict:
        return {"firing_patterns.png": report_figures.firing_patterns(
            np.asarray(entry["raster"]), entry["setup"]["raster_v0"], entry["setup"]["raster_input"],
            entry["distinct_spike_trains"], entry["possible_spike_trains"],
        )}

    def section(self, entry: dict) -> list[str]:
        return _patterns_section(entry)

    def claim_rows(self, entry: dict, tasks: int) -> Iterator[ClaimRow]:
        """Summary rows: the same exact count in every task's columns."""
        for measure, claim in entry["claims"].items():
            yield ("IMP: more firing patterns (NeurIPS 2024)", measure,
                   [(f"{claim['difference']} (exact, one neuron)", claim["verdict"])] * tasks)


def firing_patterns(steps: int = 8, input_current: float = 1.2) -> dict:
    """IMP paper: with v_0 = 0 a neuron's spike trains are limited; other initial potentials add patterns.

    One LIF neuron (tau 2, hard reset to 0, threshold 1), constant input over ``steps`` steps. The raster is
    one input current for a range of v_0; the counts are the distinct spike trains over 301 constant
    inputs in [0, 3] with v_0 = 0 only, with v_0 in [0, 0.95] (the region the paper initialises in), and with
    v_0 in [-1, 0.95].
    """
    start = clock()
    raster_v0 = [-0.6, -0.3, 0.0, 0.2, 0.4, 0.6, 0.8, 0.95]
    spikes = _constant_input_spikes(np.array(raster_v0), np.array([input_current]), steps)[:, 0, :]
    currents = np.linspace(0.0, 3.0, 301)
    grids = {"v_0 = 0": np.array([0.0]), "v_0 in [0, 0.95]": np.linspace(0.0, 0.95, 20), "v_0 in [-1, 0.95]": np.linspace(-1.0, 0.95, 40)}
    counts = {}
    for name, v0s in grids.items():
        trains = _constant_input_spikes(v0s, currents, steps).reshape(-1, steps)
        counts[name] = int(len(np.unique(trains, axis=0)))
    return {
        "claim": "With a zero initial membrane potential a neuron's firing patterns are limited; adjusting the IMP "
        "produces additional patterns (Shen et al., NeurIPS 2024).",
        "setup": {
            "neuron": "LIFNeuron(tau=2, v_reset=0, threshold=1)", "steps": steps, "raster_input": input_current,
            "raster_v0": raster_v0, "count_inputs": "301 constant inputs in [0, 3]",
        },
        "raster": spikes.astype(int).tolist(),
        "distinct_spike_trains": counts,
        "possible_spike_trains": 2**steps,
        "claims": {
            "distinct spike trains, v_0 in [0, 0.95] minus v_0 = 0": {
                "difference": counts["v_0 in [0, 0.95]"] - counts["v_0 = 0"],
                "verdict": "held" if counts["v_0 in [0, 0.95]"] > counts["v_0 = 0"] else "did not hold",
                "note": "exact count (no randomness), so no interval",
            }
        },
        **elapsed(start),
    }




def _constant_input_spikes(v0s: np.ndarray, currents: np.ndarray, steps: int) -> np.ndarray:
    """Spike trains ``[len(v0s), len(currents), steps]`` of the IMP experiment's LIF neuron."""
    count = len(v0s) * len(currents)
    neuron = LIFNeuron(tau=2.0, v_reset=0.0, imp="neuron", shape=(count,))
    with torch.no_grad():
        neuron.imp.copy_(torch.as_tensor(np.repeat(v0s, len(currents)), dtype=torch.float32))
        x = torch.as_tensor(np.tile(currents, len(v0s)), dtype=torch.float32).expand(steps, 1, count)
        spikes = neuron(x)[:, 0, :]  # [steps, count]
    return spikes.T.reshape(len(v0s), len(currents), steps).numpy()




def _patterns_section(patterns: dict) -> list[str]:
    setup = patterns["setup"]
    lines = [
        "## Firing patterns a learnable IMP makes possible",
        "",
        f"Claim: {patterns['claim']}",
        "",
        f"Setup: {setup['neuron']}, constant input over {setup['steps']} steps; raster at input {setup['raster_input']:g} "
        f"for v_0 in {setup['raster_v0']}; counts over {setup['count_inputs']}; no training, {timing(patterns)}.",
        "",
        f"| initial potentials | distinct spike trains (of {patterns['possible_spike_trains']} possible) |",
        "|---|---|",
    ]
    for name, count in patterns["distinct_spike_trains"].items():
        lines.append(f"| {name} | {count} |")
    lines += ["", "![firing patterns](figures/firing_patterns.png)", ""]
    return lines
