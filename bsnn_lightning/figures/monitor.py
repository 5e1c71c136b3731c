"""The monitoring callbacks' figures (:class:`bsnn_lightning.callbacks.SpikeFigures`): spike raster,
membrane traces, firing rates over epochs, eigenvalue spectrum."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .common import METHOD_COLOURS, draw_regions, new_figure

#: (width, height) in pixels of each figure
FIGURE_PIXELS: dict[str, tuple[int, int]] = {
    "raster": (800, 360),
    "membrane": (800, 360),
    "rates_over_epochs": (640, 380),
    "eigen_monitor": (800, 360),
}

def raster(spikes: Mapping[str, np.ndarray], title: str):
    """Spike raster per layer: ``spikes[layer]`` is ``[T, K]`` (time steps x the K neurons shown)."""
    from matplotlib.ticker import MaxNLocator

    layers = list(spikes)
    fig, axes = new_figure(FIGURE_PIXELS["raster"], ncols=max(len(layers), 1))
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
    traces: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float | np.ndarray | None],
    title: str,
    spikes: Mapping[str, np.ndarray] | None = None,
):
    """Membrane potential after each step's reset, ``traces[layer]`` ``[T, K]``, with the firing threshold;
    a triangle marks each spike (``spikes[layer]``, same shape) in the neuron's colour, on its threshold.

    ``thresholds[layer]`` is one float (a black dashed line), a ``[K]`` array of per-neuron thresholds (a
    dashed line per neuron, in its colour) or None when unknown (no line; the spikes marked along the top).
    """
    from matplotlib.ticker import MaxNLocator

    layers = list(traces)
    fig, axes = new_figure(FIGURE_PIXELS["membrane"], ncols=max(len(layers), 1))
    for ax, layer in zip(axes[0], layers):
        values = np.asarray(traces[layer])
        steps = np.arange(1, values.shape[0] + 1)
        theta = thresholds[layer]
        shared = theta is None or np.ndim(theta) == 0
        for k in range(values.shape[1]):
            (line,) = ax.plot(steps, values[:, k], linewidth=1, alpha=0.8)
            own = theta if shared else float(theta[k])
            if not shared:
                ax.axhline(own, color=line.get_color(), linestyle="--", linewidth=0.8, alpha=0.6)
            if spikes is not None and layer in spikes:
                fired = np.flatnonzero(np.asarray(spikes[layer])[:, k]) + 1
                if own is None:  # x in data, y in axes coordinates: along the top of the plot
                    ax.scatter(fired, np.full(len(fired), 0.97), marker="^", s=25, color=line.get_color(), zorder=3,
                               transform=ax.get_xaxis_transform())
                else:
                    ax.scatter(fired, np.full(len(fired), own), marker="^", s=25, color=line.get_color(), zorder=3)
        if shared and theta is not None:
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

    fig, axes = new_figure(FIGURE_PIXELS["rates_over_epochs"])
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
    fig, axes = new_figure(FIGURE_PIXELS["eigen_monitor"], ncols=max(len(layers), 1))
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
