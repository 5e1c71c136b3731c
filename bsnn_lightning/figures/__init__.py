"""Figures: plain data in, a matplotlib ``Figure`` out, rendered with the Agg backend.

- :mod:`.common`: what every figure shares (sizes, colours, PNG and RGB output, the eigenvalue regions);
- :mod:`.monitor`: the monitoring callbacks' figures (spike raster, membrane traces, rates over epochs,
  eigenvalue spectrum), see :class:`bsnn_lightning.callbacks.SpikeFigures`;
- :mod:`.report`: the six figures of ``bsnn report`` (:mod:`bsnn_lightning.report`).

Every function builds its figure with the object-oriented API (``matplotlib.figure.Figure`` and
``FigureCanvasAgg``), never through ``pyplot``, so it neither needs a display nor changes the backend of
the user's own session. Each figure has a fixed size in pixels (each module's ``FIGURE_PIXELS``); layouts
are fitted inside it, never by cropping, so a saved PNG is exactly that size. matplotlib is imported only
when a figure is made: importing these modules does not need it.
"""
