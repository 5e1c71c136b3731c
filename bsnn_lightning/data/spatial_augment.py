"""Former home of the spatial transforms, now :mod:`bsnn_lightning.data.transforms.spatial`; kept so that recipes
(``class_path: bsnn_lightning.data.spatial_augment.SpikFormerDVSAugment``), code and checkpoints that name it keep
working."""

from .transforms.spatial import *  # noqa: F403
from .transforms.spatial import __all__  # noqa: F401
