"""Figures: plain data in, a matplotlib ``Figure`` out, rendered with the Agg backend.

Every function here builds its figure with the object-oriented API (``matplotlib.figure.Figure`` and
``FigureCanvasAgg``), never through ``pyplot``, so it neither needs a display nor changes the backend of
the user's own session. Each figure has a fixed size in pixels (:data:`FIGURE_PIXELS`); layouts are
fitted inside it, never by cropping, so a saved PNG is exactly that size.

Used by the report (:mod:`bsnn_lightning.report`) and by the monitoring callback
(:class:`bsnn_lightning.callbacks.SpikeMonitor`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import write_atomically

DPI = 100

#: (width, height) in pixels of every figure this module makes
FIGURE_PIXELS: dict[str, tuple[int, int]] = {
    "tau_sweep": (720, 420),
    "imp_per_step": (640, 400),
    "readout_convergence": (640, 400),
    "loss_comparison": (560, 400),
    "firing_patterns": (900, 400),
    "eigen_spectrum": (960, 560),
    "raster": (800, 360),
    "membrane": (800, 360),
    "rates_over_epochs": (640, 380),
    "eigen_monitor": (800, 360),
}

REGION_COLOURS = {"dissipative": "#dbe9f6", "conservative": "#555555", "diffusive": "#f8dcd6"}
METHOD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def require_matplotlib(purpose: str) -> None:
    """Fail early, before any training, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(f"{purpose} needs matplotlib, which is not installed: pip install 'bsnn-lightning[plot]'") from error


def new_figure(kind: str, ncols: int = 1, nrows: int = 1, **subplot_kw):
    """A Figure of the declared size for ``kind`` with an ``nrows x ncols`` grid of axes (a 2-D array)."""
    from matplotlib.figure import Figure

    if kind not in FIGURE_PIXELS:
        raise ValueError(f"expected a figure kind in {sorted(FIGURE_PIXELS)}, got {kind!r}")
    width, height = FIGURE_PIXELS[kind]
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, at its declared size (no cropping)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def rgb_array(fig) -> np.ndarray:
    """The figure as an ``[H, W, 3]`` uint8 array (for loggers that take images)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write the figure as a PNG atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    write_atomically(path, png_bytes(fig))
    return path


# --------------------------------------------------------------------------- report figures


def tau_sweep(taus: Sequence[float], accuracy: Mapping[str, Sequence[Sequence[float]]]):
    """Test accuracy vs tau_m: per method, mean ± std over seeds (error bars) and each seed (dots).

    ``accuracy[method][i]`` holds the per-seed accuracies at ``taus[i]``.
    """
    fig, axes = new_figure("tau_sweep")
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
    fig, axes = new_figure("imp_per_step")
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
    fig, axes = new_figure("readout_convergence")
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
    fig, axes = new_figure("loss_comparison")
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
    fig, axes = new_figure("firing_patterns", ncols=2)
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
    fig, axes = new_figure("eigen_spectrum", ncols=ncols, nrows=len(rows))
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


def draw_regions(ax, lo: float, hi: float) -> None:
    """Shade the dissipative (< 0) and diffusive (> 0) regions and mark the conservative line (= 0)."""
    if lo < 0:
        ax.axvspan(lo, min(0.0, hi), color=REGION_COLOURS["dissipative"], zorder=0, label="dissipative")
    if hi > 0:
        ax.axvspan(max(0.0, lo), hi, color=REGION_COLOURS["diffusive"], zorder=0, label="diffusive")
    if lo <= 0 <= hi:
        ax.axvline(0.0, color=REGION_COLOURS["conservative"], linewidth=1.2, zorder=1, label="conservative")


# --------------------------------------------------------------------------- monitoring figures


def raster(spikes: Mapping[str, np.ndarray], title: str):
    """Spike raster per layer: ``spikes[layer]`` is ``[T, K]`` (time steps x the K neurons shown)."""
    from matplotlib.ticker import MaxNLocator

    layers = list(spikes)
    fig, axes = new_figure("raster", ncols=max(len(layers), 1))
    for ax, layer in zip(axes[0], layers):
        train = np.asarray(spikes[layer])
        steps, count = train.shape
        t, k = np.nonzero(train)
        ax.scatter(t + 1, k, marker="|", s=60, color="black", linewidths=1.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, steps + 0.5)
        ax.set_ylim(-0.7, count - 0.3)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("time step")
    axes[0, 0].set_ylabel("neuron")
    fig.suptitle(title, fontsize=10)
    return fig


def membrane_traces(
    traces: Mapping[str, np.ndarray], thresholds: Mapping[str, float], title: str, spikes: Mapping[str, np.ndarray] | None = None
):
    """Membrane potential after each step's reset, ``traces[layer]`` ``[T, K]``, with the threshold line;
    a triangle on the threshold line marks each spike (``spikes[layer]``, same shape), in the neuron's colour."""
    from matplotlib.ticker import MaxNLocator

    layers = list(traces)
    fig, axes = new_figure("membrane", ncols=max(len(layers), 1))
    for ax, layer in zip(axes[0], layers):
        values = np.asarray(traces[layer])
        steps = np.arange(1, values.shape[0] + 1)
        theta = thresholds[layer]
        for k in range(values.shape[1]):
            (line,) = ax.plot(steps, values[:, k], linewidth=1, alpha=0.8)
            if spikes is not None and layer in spikes:
                fired = np.flatnonzero(np.asarray(spikes[layer])[:, k]) + 1
                ax.scatter(fired, np.full(len(fired), theta), marker="^", s=25, color=line.get_color(), zorder=3)
        ax.axhline(theta, color="black", linestyle="--", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("time step")
    axes[0, 0].set_ylabel("v_t after reset (triangles: spikes)")
    fig.suptitle(title, fontsize=10)
    return fig


def rates_over_epochs(history: Mapping[str, Sequence[tuple[int, float]]]):
    """Mean firing rate of each layer per epoch: ``history[layer] = [(epoch, rate), ...]``."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = new_figure("rates_over_epochs")
    ax = axes[0, 0]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for k, (layer, points) in enumerate(history.items()):
        if not points:
            continue
        epochs, rates = zip(*points)
        ax.plot(epochs, rates, marker="o", color=METHOD_COLOURS[k % len(METHOD_COLOURS)], label=layer)
    ax.set_xlabel("epoch")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_title("Firing rate per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def eigen_monitor(spectra: Mapping[str, tuple[Sequence[float] | None, Sequence[float]]], bounds: Mapping[str, tuple[float, float]], title: str):
    """The monitoring callback's spectrum: per bifurcation layer, the initial and the current eigenvalues."""
    layers = list(spectra)
    fig, axes = new_figure("eigen_monitor", ncols=max(len(layers), 1))
    for ax, layer in zip(axes[0], layers):
        first, now = spectra[layer]
        lo, hi = bounds[layer]
        pad = 0.08 * (hi - lo)
        edges = np.linspace(lo - pad, hi + pad, 31)
        draw_regions(ax, lo - pad, hi + pad)
        if first is not None:
            ax.hist(np.clip(first, edges[0], edges[-1]), bins=edges, histtype="step", color="#555555", label="start")
        ax.hist(np.clip(now, edges[0], edges[-1]), bins=edges, color="#1f77b4", alpha=0.6, label="now")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("eigenvalue lambda")
    axes[0, 0].set_ylabel("count")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig
