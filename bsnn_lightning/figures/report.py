"""The six figures of ``bsnn report`` (see :mod:`bsnn_lightning.report.runner`), drawn from the numbers
the experiments return."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .common import METHOD_COLOURS, draw_regions, new_figure

#: (width, height) in pixels of each figure
FIGURE_PIXELS: dict[str, tuple[int, int]] = {
    "tau_sweep": (720, 420),
    "imp_per_step": (640, 400),
    "readout_convergence": (640, 400),
    "loss_comparison": (560, 400),
    "firing_patterns": (900, 400),
    "eigen_spectrum": (960, 560),
}

def tau_sweep(taus: Sequence[float], accuracy: Mapping[str, Sequence[Sequence[float]]]):
    """Test accuracy vs tau_m: per method, mean ± std over seeds (error bars) and each seed (dots).

    ``accuracy[method][i]`` holds the per-seed accuracies at ``taus[i]``.
    """
    fig, axes = new_figure(FIGURE_PIXELS["tau_sweep"])
    ax = axes[0, 0]
    offsets = np.linspace(-0.04, 0.04, max(len(accuracy), 1))
    for k, (method, per_tau) in enumerate(accuracy.items()):
        colour = METHOD_COLOURS[k % len(METHOD_COLOURS)]
        xs = np.asarray(taus, dtype=float) * np.exp(offsets[k])  # a small shift on the log axis
        values = [100 * np.asarray(v, dtype=float) for v in per_tau]
        means = [v.mean() for v in values]
        stds = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color=colour, label=method)
        for x, v in zip(xs, values):
            ax.scatter(np.full(len(v), x), v, s=8, color=colour, alpha=0.35, linewidths=0)
    ax.set_xscale("log")
    ax.set_xticks(list(taus), [f"{t:g}" for t in taus])
    ax.minorticks_off()
    ax.set_xlabel("tau_m (control rate 1/tau_m)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Sensitivity to the control rate (mean ± std over seeds; dots: seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def per_step_accuracy(curves: Mapping[str, Sequence[Sequence[float]]]):
    """Accuracy of the output at each time step, per method: ``curves[method][seed][t]``."""
    fig, axes = new_figure(FIGURE_PIXELS["imp_per_step"])
    ax = axes[0, 0]
    steps = _mean_std_curves(ax, curves)
    ax.set_xticks(steps)
    ax.set_xlabel("time step t")
    ax.set_ylabel("test accuracy of output O_t (%)")
    ax.set_title("Per-time-step accuracy, static digits (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def readout_convergence(curves: Mapping[str, Sequence[Sequence[float]]]):
    """Test accuracy after each epoch, per readout: ``curves[readout][seed][epoch]``."""
    fig, axes = new_figure(FIGURE_PIXELS["readout_convergence"])
    ax = axes[0, 0]
    epochs = _mean_std_curves(ax, curves)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("LTS vs mean-over-time readout, static digits")
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _mean_std_curves(ax, curves: Mapping[str, Sequence[Sequence[float]]]) -> np.ndarray:
    """One line per method of ``curves[method][seed][i]`` (as %), mean ± std over seeds at x = 1, 2, ...;
    returns the x values."""
    for k, (method, runs) in enumerate(curves.items()):
        values = 100 * np.asarray(runs, dtype=float)
        xs = np.arange(1, values.shape[1] + 1)
        mean = values.mean(axis=0)
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
        ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, color=METHOD_COLOURS[k % len(METHOD_COLOURS)], label=method)
    return xs


def paired_comparison(accuracy: Mapping[str, Sequence[float]], title: str):
    """Per-seed accuracy of two or more methods trained on the same seeds: paired lines, mean ± std."""
    fig, axes = new_figure(FIGURE_PIXELS["loss_comparison"])
    ax = axes[0, 0]
    names = list(accuracy)
    values = np.asarray([100 * np.asarray(accuracy[n], dtype=float) for n in names])
    xs = np.arange(len(names))
    for seed_values in values.T:
        ax.plot(xs, seed_values, color="#999999", alpha=0.6, marker=".", linewidth=1)
    means = values.mean(axis=1)
    stds = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros(len(names))
    ax.errorbar(xs, means, yerr=stds, fmt="s", color="black", capsize=5, markersize=7, label="mean ± std")
    ax.set_xticks(xs, names)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def firing_patterns(
    spikes: np.ndarray, initial_potentials: Sequence[float], input_current: float, counts: Mapping[str, int], possible: int
):
    """Left: spike trains of one neuron under a constant input, one row per initial potential.
    Right: how many distinct spike trains a range of constant inputs produces, per set of initial potentials.
    """
    fig, axes = new_figure(FIGURE_PIXELS["firing_patterns"], ncols=2)
    ax = axes[0, 0]
    spikes = np.asarray(spikes)
    steps = spikes.shape[1]
    for row, train in enumerate(spikes):
        times = np.flatnonzero(train) + 1
        ax.scatter(times, np.full(len(times), row), marker="|", s=220, color="black", linewidths=2)
    ax.set_yticks(np.arange(len(initial_potentials)), [f"{v:+.2f}" for v in initial_potentials])
    ax.set_xticks(np.arange(1, steps + 1))
    ax.set_xlim(0.5, steps + 0.5)
    ax.set_ylim(-0.7, len(initial_potentials) - 0.3)
    zero_rows = [i for i, v in enumerate(initial_potentials) if v == 0]
    for i in zero_rows:
        ax.axhspan(i - 0.45, i + 0.45, color="#fde7b0", zorder=0)
    ax.set_xlabel("time step t")
    ax.set_ylabel("initial membrane potential v_0")
    ax.set_title(f"One LIF neuron, constant input {input_current:g} (shaded: v_0 = 0)", fontsize=10)
    ax = axes[0, 1]
    names = list(counts)
    bars = ax.bar(np.arange(len(names)), [counts[n] for n in names], color=["#bbbbbb", "#1f77b4", "#2ca02c"][: len(names)])
    for bar, name in zip(bars, names):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), str(counts[name]), ha="center", va="bottom")
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
    ax.set_ylabel(f"distinct spike trains (of {possible} possible)")
    ax.set_title("Patterns reachable with constant inputs", fontsize=10)
    return fig


def eigen_spectrum(
    spectra: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], bounds: tuple[float, float], title: str
):
    """Eigenvalues of the membrane dynamics before and after training, on the real line.

    ``spectra[row][layer] = (before, after)``; one row of axes per structure, one column per layer. The
    dissipative (< 0), conservative (= 0) and diffusive (> 0) regions are shaded; dashed lines are the
    clamp bounds.
    """
    rows = list(spectra)
    ncols = max(len(layers) for layers in spectra.values())
    fig, axes = new_figure(FIGURE_PIXELS["eigen_spectrum"], ncols=ncols, nrows=len(rows))
    lo, hi = bounds
    pad = 0.08 * (hi - lo)
    edges = np.linspace(lo - pad, hi + pad, 41)
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            layers = list(spectra[row])
            if c >= len(layers):
                ax.set_visible(False)
                continue
            before, after = (np.asarray(v, dtype=float) for v in spectra[row][layers[c]])
            draw_regions(ax, lo - pad, hi + pad)
            ax.hist(np.clip(before, edges[0], edges[-1]), bins=edges, histtype="step", color="#555555", linewidth=1.5, label="before")
            ax.hist(np.clip(after, edges[0], edges[-1]), bins=edges, color="#1f77b4", alpha=0.6, label="after")
            for bound in bounds:
                ax.axvline(bound, color="black", linestyle="--", linewidth=0.8)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_title(f"{row}: {layers[c]} ({len(after)})", fontsize=9)
            if c == 0:
                ax.set_ylabel("count")
            if r == len(rows) - 1:
                ax.set_xlabel("eigenvalue lambda")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig

