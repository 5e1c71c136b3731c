"""The engine's on/off environment switches (``BSNN_CPU_AUTO``, ``BSNN_CPU_REWRITE``, ``BSNN_CPU_DIRECT``),
read one way."""

from __future__ import annotations

import os


def switched_on(name: str) -> bool:
    """Whether the environment variable ``name`` is on: ``on``, ``1`` or unset/empty (the default) is on,
    ``off`` or ``0`` off, in any case and spacing; anything else is an error that names what it expected.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"BSNN_EXAMPLE": " OFF "}):
    ...     print(switched_on("BSNN_EXAMPLE"))
    False
    >>> with mock.patch.dict(os.environ, {"BSNN_EXAMPLE": "sideways"}):
    ...     switched_on("BSNN_EXAMPLE")
    Traceback (most recent call last):
        ...
    ValueError: expected BSNN_EXAMPLE 'on' or 'off', got 'sideways'
    """
    setting = os.environ.get(name, "on").strip().lower()
    if setting in ("on", "1", ""):
        return True
    if setting in ("off", "0"):
        return False
    raise ValueError(f"expected {name} 'on' or 'off', got {os.environ[name]!r}")
