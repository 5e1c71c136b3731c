"""Former home of the four DVS DataModules, now one module each in :mod:`bsnn_lightning.data.datasets`; kept so
that code that names ``bsnn_lightning.data.dvs`` keeps working."""

from . import datasets
from .datasets import *  # noqa: F403
from .loading import default_num_workers

__all__ = [*datasets.__all__, "default_num_workers"]
