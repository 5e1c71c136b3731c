"""Former home of the four DVS DataModules, now one module each in :mod:`bsnn_lightning.data.datasets`; kept so
that code that names ``bsnn_lightning.data.dvs`` keeps working."""

from .datasets import (
    CIFAR10DVSDataModule,
    DatasetIncompleteError,
    DVS128GestureDataModule,
    DVSDataModule,
    NCaltech101DataModule,
    NMNISTDataModule,
)
from .loading import default_num_workers

__all__ = [
    "CIFAR10DVSDataModule",
    "DVS128GestureDataModule",
    "DVSDataModule",
    "DatasetIncompleteError",
    "NCaltech101DataModule",
    "NMNISTDataModule",
    "default_num_workers",
]
