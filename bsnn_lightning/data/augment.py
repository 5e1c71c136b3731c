"""Former home of the per-sample transforms, now :mod:`bsnn_lightning.data.transforms`; kept so that recipes
(``class_path: bsnn_lightning.data.augment.RandomFlip``), code and checkpoints that name it keep working."""

from .transforms.base import Compose, FrameTransform, Identity, RandomChoice, check_transforms
from .transforms.functional import SHIFT_MODES, random_flip, random_shift, translate
from .transforms.spatial import RandomFlip, RandomRoll, RandomTranslate

__all__ = [
    "SHIFT_MODES",
    "Compose",
    "FrameTransform",
    "Identity",
    "RandomChoice",
    "RandomFlip",
    "RandomRoll",
    "RandomTranslate",
    "check_transforms",
    "random_flip",
    "random_shift",
    "translate",
]
