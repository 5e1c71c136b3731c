"""Former home of the DataModules with a paper's released split, now in
:mod:`bsnn_lightning.data.datasets.cifar10dvs` and :mod:`bsnn_lightning.data.datasets.ncaltech101`; kept so that
recipes (``class_path: bsnn_lightning.data.released_datamodules.CIFAR10DVSReleasedSplit``) keep working."""

from .datasets import CIFAR10DVSReleasedSplit, NCaltech101ReleasedSplit

__all__ = ["CIFAR10DVSReleasedSplit", "NCaltech101ReleasedSplit"]
