"""Augmentation of event frames: per-sample transforms (in the DataLoader workers) and batch mixing (on the
device), after Tonic's and torchvision's split of transforms into classes over plain functions.

* :mod:`~bsnn_lightning.data.transforms.base` -- :class:`FrameTransform`, the base class of every per-sample
  transform, and :class:`Compose`, :class:`RandomChoice`, :class:`Identity` to combine them;
* :mod:`~bsnn_lightning.data.transforms.spatial` -- flips, rolls, translations, shears, shifts along one axis,
  rotations, erasing, and :class:`SpikFormerDVSAugment` (the IMP code's policy);
* :mod:`~bsnn_lightning.data.transforms.functional` -- the operations they apply, as functions of a tensor;
* :mod:`~bsnn_lightning.data.transforms.mixing` -- :class:`MixupCutmix`, mixing whole training batches.

A DVS DataModule takes a list of per-sample transforms as ``augment=`` (in YAML, a list of
``class_path``/``init_args`` entries) and applies them, in that order, to training samples, and a
:class:`MixupCutmix` as ``mix=``. The same transforms are importable from :mod:`bsnn_lightning.data`, and under
their former module names ``bsnn_lightning.data.augment``, ``bsnn_lightning.data.spatial_augment`` and
``bsnn_lightning.data.mixing``, which recipes and saved checkpoints name.
"""

from . import base, mixing, spatial
from .base import *  # noqa: F403
from .functional import SHIFT_MODES, random_flip, random_shift, translate
from .mixing import *  # noqa: F403
from .spatial import *  # noqa: F403

__all__ = [*base.__all__, *mixing.__all__, *spatial.__all__, "SHIFT_MODES", "random_flip", "random_shift", "translate"]
