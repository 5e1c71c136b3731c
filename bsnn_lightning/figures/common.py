"""What every figure shares: the matplotlib check, a figure of a given pixel size, PNG bytes, an RGB array,
an atomic PNG file, the colours, and the shading of the eigenvalue regimes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..atomic import write_atomically

DPI = 100

REGION_COLOURS = {"dissipative": "#dbe9f6", "conservative": "#555555", "diffusive": "#f8dcd6"}
METHOD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def require_matplotlib(purpose: str) -> None:
    """Fail early, before any training, when matplotlib is missing.

    >>> require_matplotlib("the spike figures")  # installed: nothing to say
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(f"{purpose} needs matplotlib, which is not installed: pip install 'bsnn-lightning[plot]'") from error


def new_figure(pixels: tuple[int, int], ncols: int = 1, nrows: int = 1, **subplot_kw):
    """A Figure of ``pixels`` (width, height) with an ``nrows x ncols`` grid of axes (a 2-D array).

    >>> fig, axes = new_figure((320, 240), ncols=2)
    >>> axes.shape
    (1, 2)
    """
    from matplotlib.figure import Figure

    width, height = pixels
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, at its declared size (no cropping).

    >>> png_bytes(new_figure((64, 48))[0])[1:4]  # the PNG signature
    b'PNG'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def rgb_array(fig) -> np.ndarray:
    """The figure as an ``[H, W, 3]`` uint8 array (for loggers that take images).

    >>> image = rgb_array(new_figure((320, 240))[0])
    >>> image.shape, image.dtype
    ((240, 320, 3), dtype('uint8'))
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write the figure as a PNG atomically (temporary file in the same folder, then rename).

    >>> import tempfile
    >>> path = save_png(new_figure((64, 48))[0], Path(tempfile.mkdtemp()) / "figure.png")
    >>> path.read_bytes()[1:4]
    b'PNG'
    """
    path = Path(path)
    write_atomically(path, png_bytes(fig))
    return path


def draw_regions(ax, lo: float, hi: float) -> None:
    """Shade the dissipative (< 0) and diffusive (> 0) regions and mark the conservative line (= 0).

    >>> fig, axes = new_figure((320, 240))
    >>> draw_regions(axes[0, 0], -1.0, 0.2)
    >>> [patch.get_label() for patch in axes[0, 0].patches], len(axes[0, 0].lines)
    (['dissipative', 'diffusive'], 1)
    """
    if lo < 0:
        ax.axvspan(lo, min(0.0, hi), color=REGION_COLOURS["dissipative"], zorder=0, label="dissipative")
    if hi > 0:
        ax.axvspan(max(0.0, lo), hi, color=REGION_COLOURS["diffusive"], zorder=0, label="diffusive")
    if lo <= 0 <= hi:
        ax.axvline(0.0, color=REGION_COLOURS["conservative"], linewidth=1.2, zorder=1, label="conservative")
