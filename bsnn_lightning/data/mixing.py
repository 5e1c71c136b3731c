"""Former home of batch mixing, now :mod:`bsnn_lightning.data.transforms.mixing`; kept so that code and
checkpoints that name ``bsnn_lightning.data.mixing.MixupCutmix`` keep working."""

from .transforms.mixing import *  # noqa: F403
from .transforms.mixing import __all__  # noqa: F401
