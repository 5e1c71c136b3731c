"""Event-camera simulation: scenes turned into DVS events, for the embedded datasets.

* :mod:`~bsnn_lightning.data.sim.pixel` -- the DVS pixel model (log intensity, contrast threshold, jittered
  timestamps) on any intensity sequence, and the checks of its parameters;
* :mod:`~bsnn_lightning.data.sim.saccades` -- a still image moved along N-MNIST's three saccades, rendered
  and run through the pixel model.

The embedded digits (:mod:`~bsnn_lightning.data.digits`) and event intervals
(:mod:`~bsnn_lightning.data.intervals`) are built from these; nothing here reads or writes files.
"""

from .pixel import (
    as_generator,
    assemble_events,
    check_pixel_parameters,
    check_sensor_size,
    dvs_events_from_frames,
    is_int,
    pixel_model_steps,
)
from .saccades import (
    SaccadeConfig,
    check_intensity_range,
    render_centred,
    saccade_offsets,
    simulate_saccade_events,
    simulate_saccades,
    static_image,
)

__all__ = [
    "SaccadeConfig",
    "as_generator",
    "assemble_events",
    "check_intensity_range",
    "check_pixel_parameters",
    "check_sensor_size",
    "dvs_events_from_frames",
    "is_int",
    "pixel_model_steps",
    "render_centred",
    "saccade_offsets",
    "simulate_saccade_events",
    "simulate_saccades",
    "static_image",
]
