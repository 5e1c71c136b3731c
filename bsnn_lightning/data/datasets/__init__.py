"""The four DVS datasets as LightningDataModules, one module each (as Tonic keeps one module per dataset):

* :mod:`~bsnn_lightning.data.datasets.cifar10dvs` -- CIFAR10-DVS, with the shipped split and the released ones;
* :mod:`~bsnn_lightning.data.datasets.dvs128_gesture` -- DVS128 Gesture;
* :mod:`~bsnn_lightning.data.datasets.ncaltech101` -- N-Caltech101, with the shipped split and the released one;
* :mod:`~bsnn_lightning.data.datasets.nmnist` -- N-MNIST;
* :mod:`~bsnn_lightning.data.datasets.base` -- what they share: fetching and extracting the archives, listing
  and checking the recordings, the frame cache, the loaders, augmentation and mixing.

Each dataset module holds its archives (names, MD5s, links), sensor size, classes, the reader of its file
format (:mod:`bsnn_lightning.data.formats`) and its split. The DataModules are importable from
:mod:`bsnn_lightning.data` too, and from the former module names ``bsnn_lightning.data.dvs`` and
``bsnn_lightning.data.released_datamodules``, which recipes name.
"""

from .base import DatasetIncompleteError, DVSDataModule
from .cifar10dvs import CIFAR10DVSDataModule, CIFAR10DVSReleasedSplit
from .dvs128_gesture import DVS128GestureDataModule
from .ncaltech101 import NCaltech101DataModule, NCaltech101ReleasedSplit
from .nmnist import NMNISTDataModule

__all__ = [
    "CIFAR10DVSDataModule",
    "CIFAR10DVSReleasedSplit",
    "DVS128GestureDataModule",
    "DVSDataModule",
    "DatasetIncompleteError",
    "NCaltech101DataModule",
    "NCaltech101ReleasedSplit",
    "NMNISTDataModule",
]
