"""Warnings that point at the user's line, however deep in this package (or a library) they are raised.

A fixed ``stacklevel`` is right for one call path only: the same warning reached through
:func:`bsnn_lightning.convert`, the ``ConvertNeurons`` callback or a neuron's first forward would point at a
different internal line each time. :func:`warn_user` instead walks up the stack to the first frame that is
not inside this package, PyTorch, Lightning or a supported neuron library.
"""

from __future__ import annotations

import os
import sys
import warnings

_INTERNAL_PACKAGES = ("bsnn_lightning", "torch", "lightning", "lightning_fabric", "pytorch_lightning", "snntorch", "spikingjelly")


def _package_dirs() -> tuple[str, ...]:
    dirs = []
    for name in _INTERNAL_PACKAGES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)


def user_stacklevel() -> int:
    """The ``stacklevel`` (as seen by the caller of this function's caller) of the first frame outside the
    internal packages; the outermost frame if every frame is internal.

    >>> def internal_helper():  # called from a doctest, which lies outside the internal packages
    ...     return user_stacklevel()
    >>> internal_helper()
    1
    """
    internal = _package_dirs()
    frame = sys._getframe(2)  # the caller of warn_user (level 1 for warnings.warn called there)
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(internal) and not filename.startswith("<frozen"):
            return level
        if frame.f_back is None:
            return level
        frame = frame.f_back
        level += 1
    return level


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the user's code (the first frame outside the internal packages).

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("the IMP was made at the first forward")
    >>> caught[0].message.args[0], caught[0].category.__name__
    ('the IMP was made at the first forward', 'UserWarning')
    """
    warnings.warn(message, category, stacklevel=user_stacklevel() + 1)
