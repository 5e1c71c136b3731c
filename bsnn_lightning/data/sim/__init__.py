"""Event-camera simulation: scenes turned into DVS events, for the embedded datasets.

* :mod:`~bsnn_lightning.data.sim.pixel` -- the DVS pixel model (log intensity, contrast threshold, jittered
  timestamps) on any intensity sequence, and the checks of its parameters;
* :mod:`~bsnn_lightning.data.sim.saccades` -- a still image moved along N-MNIST's three saccades, rendered
  and run through the pixel model.

The embedded digits (:mod:`~bsnn_lightning.data.digits`) and event intervals
(:mod:`~bsnn_lightning.data.intervals`) are built from these; nothing here reads or writes files.
"""

from . import pixel, saccades
from .pixel import *  # noqa: F403
from .saccades import *  # noqa: F403

__all__ = [*pixel.__all__, *saccades.__all__]
