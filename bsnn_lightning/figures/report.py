"""The figures of ``bsnn report`` (see :mod:`bsnn_lightning.report.runner`), drawn from the numbers the
experiments return: per task the tau_m sweep, the eigenvalue spectrum and clamp, the per-step accuracy, the
readout and loss comparisons; once, the firing patterns and the interval task's classes."""

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
    "eigen_clamp": (960, 400),
    "interval_classes": (960, 480),
}

def tau_sweep(
    taus: Sequence[float],
    accuracy: Mapping[str, Sequence[Sequence[float]]],
    title: str = "Sensitivity to the control rate (mean ± std over seeds; dots: seeds)",
    chance: float | None = None,
    time_averaged: Sequence[float] | None = None,
):
    """Test accuracy vs tau_m: per method, mean ± std over seeds (error bars) and each seed (dots).

    ``accuracy[method][i]`` holds the per-seed accuracies at ``taus[i]``. ``chance`` draws a dotted line at the
    chance level; ``time_averaged`` (accuracies of the time-averaged baseline) a grey band of their mean ± std.
    """
    fig, axes = new_figure(FIGURE_PIXELS["tau_sweep"])
    ax = axes[0, 0]
    if time_averaged is not None:
        values = 100 * np.asarray(time_averaged, dtype=float)
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        ax.axhspan(values.mean() - std, values.mean() + std, color="#cccccc", alpha=0.7, zorder=0,
                   label="LIF on time-averaged frames (mean ± std)")
    if chance is not None:
        ax.axhline(100 * chance, color="black", linestyle=":", linewidth=1, label="chance")
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
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def per_step_accuracy(curves: Mapping[str, Sequence[Sequence[float]]], title: str = "Per-time-step accuracy, static digits (mean ± std over seeds)"):
    """Accuracy of the output at each time step, per method: ``curves[method][seed][t]``."""
    return _curves_figure("imp_per_step", curves, "time step t", "test accuracy of output O_t (%)", title)


def readout_convergence(curves: Mapping[str, Sequence[Sequence[float]]], title: str = "LTS vs mean-over-time readout, static digits"):
    """Test accuracy after each epoch, per readout: ``curves[readout][seed][epoch]``."""
    return _curves_figure("readout_convergence", curves, "epoch", "test accuracy (%)", title)


def _curves_figure(kind: str, curves: Mapping[str, Sequence[Sequence[float]]], xlabel: str, ylabel: str, title: str):
    """A figure of :data:`FIGURE_PIXELS` ``[kind]`` with one mean ± std curve per key of ``curves``
    (:func:`_mean_std_curves`), a tick at every x and the legend at the lower right."""
    fig, axes = new_figure(FIGURE_PIXELS[kind])
    ax = axes[0, 0]
    ax.set_xticks(_mean_std_curves(ax, curves))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
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



def eigen_clamp(
    taus: Sequence[float],
    lines: Mapping[str, Sequence[Mapping]],
    points: Sequence[Mapping],
    lif: Sequence[Sequence[float]],
    title: str,
):
    """Left: the share of diagonal eigenvalues at the upper clamp after training, against tau_m; right: test
    accuracy against tau_m (mean ± std over seeds).

    ``lines[name]`` is one cell per tau of ``taus`` (``{"after": {"at_upper": ...}, "accuracy": [...]}``), drawn as
    lines; ``points`` are single cells (other bounds, the package defaults) with their own ``tau_m`` and
    ``variant``, drawn as markers; ``lif[i]`` the plain LIF accuracies at ``taus[i]``, for reference.
    """
    fig, axes = new_figure(FIGURE_PIXELS["eigen_clamp"], ncols=2)
    left, right = axes[0, 0], axes[0, 1]
    xs = np.asarray(taus, dtype=float)
    lif_values = [100 * np.asarray(v, dtype=float) for v in lif]
    right.errorbar(xs, [v.mean() for v in lif_values], yerr=[_std(v) for v in lif_values], color="#999999",
                   marker="o", capsize=3, label="LIF")
    for k, (name, cells) in enumerate(lines.items()):
        colour = METHOD_COLOURS[k % len(METHOD_COLOURS)]
        left.plot(xs, [100 * c["after"]["at_upper"] for c in cells], marker="o", color=colour, label=f"diagonal, {name}")
        values = [100 * np.asarray(c["accuracy"], dtype=float) for c in cells]
        right.errorbar(xs, [v.mean() for v in values], yerr=[_std(v) for v in values], marker="o", capsize=3,
                       color=colour, label=f"diagonal, {name}")
    markers = ["s", "^", "v", "D", "P", "X"]
    for k, cell in enumerate(points):
        colour = METHOD_COLOURS[(len(lines) + k) % len(METHOD_COLOURS)]
        label = f"{cell['variant']} (tau_m = {cell['tau_m']:g})"
        left.scatter([cell["tau_m"]], [100 * cell["after"]["at_upper"]], marker=markers[k % len(markers)], s=50, color=colour, label=label, zorder=3)
        v = 100 * np.asarray(cell["accuracy"], dtype=float)
        right.errorbar([cell["tau_m"]], [v.mean()], yerr=[_std(v)], marker=markers[k % len(markers)], capsize=3,
                       color=colour, linestyle="none", label=label)
    ticks = sorted(set(list(taus) + [c["tau_m"] for c in points]))
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("tau_m")
        ax.grid(alpha=0.3)
    left.set_ylabel("eigenvalues at the upper clamp (%)")
    left.set_ylim(-3, 103)
    left.legend(loc="upper left", fontsize=7)
    right.set_ylabel("test accuracy (%)")
    right.legend(loc="best", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def interval_classes(
    examples: Sequence[Mapping], mean_summed: Sequence, delays: Sequence[int], slot_ms: float, per_class: int
):
    """The interval task's classes. Top row: one recording per class, events per millisecond (ON up, OFF
    down). Bottom row: per class, the mean over ``per_class`` recordings of the frame summed over time, what a
    time-averaging network sees (the same in every class)."""
    count = len(examples)
    fig, axes = new_figure(FIGURE_PIXELS["interval_classes"], ncols=count, nrows=2)
    top = max(max(max(e["on"]), max(e["off"])) for e in examples)
    vmax = max(float(np.max(m)) for m in mean_summed)
    for k, (example, summed) in enumerate(zip(examples, mean_summed)):
        ax = axes[0, k]
        on, off = np.asarray(example["on"], dtype=float), np.asarray(example["off"], dtype=float)
        duration = len(on)
        for edge in np.arange(0, duration + slot_ms / 2, slot_ms):
            ax.axvline(edge, color="#dddddd", linewidth=0.6, zorder=0)
        ms = np.arange(duration) + 0.5  # the centre of each 1 ms bin
        ax.vlines(ms[on > 0], 0, on[on > 0], color="#d62728", linewidth=2.5, label="ON")
        ax.vlines(ms[off > 0], 0, -off[off > 0], color="#1f77b4", linewidth=2.5, label="OFF")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xlim(0, duration)
        ax.set_ylim(-1.15 * top, 1.15 * top)
        ax.set_title(f"class {k}: gap {delays[k]} slots ({delays[k] * slot_ms:g} ms)", fontsize=9)
        ax.set_xlabel("t (ms); grid: slots")
        if k == 0:
            ax.set_ylabel("events per ms")
            ax.legend(loc="lower right", fontsize=7)
        ax = axes[1, k]
        image = ax.imshow(np.asarray(summed), cmap="gray", vmin=0, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"class {k}: summed over time", fontsize=8)
    fig.colorbar(image, ax=list(axes[1]), shrink=0.8, label="events / pixel")
    fig.suptitle("Event intervals: the class is the gap between two flashes of the same square\n(top: one recording "
                 f"per class; bottom: the frame summed over time, mean of {per_class} recordings per class)", fontsize=9)
    return fig


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0
