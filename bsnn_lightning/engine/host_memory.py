"""Host memory that a training loop frees is kept for its next step, instead of being handed back to the system.

Every call of a layer writes its spikes, any potentials it saves and, in the backward, x's gradient into fresh
tensors of the input's size (tens of megabytes for a convolutional layer). PyTorch's CPU allocator takes them
from the C library's ``malloc``, and glibc's ``malloc`` serves a request above its mmap threshold (128 KiB,
rising to at most 32 MiB as freed blocks come back) with a new memory mapping, which it unmaps again on
``free``. The kernel then faults in and zeroes every 4 KiB page of the new mapping on first touch, at every
call: on the 2-core machine of issue 23, a forward and backward of a [16, 32, 64, 16, 16] SpikingJelly LIF
layer on the ``cpu`` backend took 41 ms this way and 12 ms with the memory kept (the same loop, the only
difference being these settings; ``bench/engine_cpu.py`` reports both states in its metadata).

:func:`keep_freed_memory` raises glibc's mmap threshold to 1 GiB (larger requests are still mapped) and its
trim threshold to 1 GiB (free memory at the top of the heap is kept up to that size), through ``mallopt``:
after the first step, a step's tensors reuse the memory the previous step freed. The process's resident size
then stays near its peak instead of falling between steps; the C library's ``malloc_trim(0)`` gives the free
memory back on demand. The settings are the process's, so every allocation benefits, the library baselines in
the benchmarks included.

The ``cpu`` backend applies them on its first call unless ``BSNN_CPU_MALLOC=system`` is set in the
environment; a user's own script can call :func:`keep_freed_memory` itself. Where the C library is not glibc
(macOS, musl, Windows) nothing is changed and the reason is returned.
"""

from __future__ import annotations

import ctypes
import os
import threading

#: the environment variable that chooses: "keep" (the default) or "system" (leave malloc's settings alone)
MODE_VARIABLE = "BSNN_CPU_MALLOC"
#: requests up to this size come from the heap, and free heap memory up to this size is kept
KEEP_BYTES = 1 << 30
#: glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

_LOCK = threading.Lock()
_STATE: list[str | None] = []  #: [] until applied or refused, then [None] (applied) or [the reason]
_DEFAULT: list[str | None] = []  #: [] until the cpu backend's first call, then [None] or ["...=system"]


def mode() -> str:
    """``"keep"`` or ``"system"``, from :data:`MODE_VARIABLE` (default ``"keep"``).

    >>> mode() in ("keep", "system")
    True
    """
    value = os.environ.get(MODE_VARIABLE, "keep").strip().lower()
    if value in ("keep", ""):
        return "keep"
    if value == "system":
        return "system"
    raise ValueError(f"expected {MODE_VARIABLE} 'keep' or 'system', got {os.environ[MODE_VARIABLE]!r}")


def keep_freed_memory() -> str | None:
    """Set glibc's mmap and trim thresholds to :data:`KEEP_BYTES` (once per process); None if they are set,
    else why not (not glibc, or ``mallopt`` refused a value). Idempotent and thread-safe.

    >>> reason = keep_freed_memory()
    >>> reason is None or isinstance(reason, str)
    True
    """
    if not _STATE:
        with _LOCK:
            if not _STATE:
                _STATE.append(_apply())
    return _STATE[0]


def apply_default() -> str | None:
    """What the ``cpu`` backend calls when it builds a compiled variant (the first call decides):
    :func:`keep_freed_memory` unless the environment says ``system``; returns the reason nothing was set
    (``"BSNN_CPU_MALLOC=system"`` included)."""
    if not _DEFAULT:
        with _LOCK:
            if not _DEFAULT:
                _DEFAULT.append(f"{MODE_VARIABLE}=system" if mode() == "system" else None)
        if _DEFAULT[0] is None:
            keep_freed_memory()
    return _DEFAULT[0] if _DEFAULT[0] is not None else _STATE[0]


def state() -> str:
    """A line for benchmark metadata: ``"kept (mmap and trim thresholds 1 GiB)"``, or why not / not yet."""
    if _DEFAULT and _DEFAULT[0] is not None:
        return f"system malloc settings ({_DEFAULT[0]})"
    if not _STATE:
        return "system malloc settings (not set: no cpu backend call yet)"
    if _STATE[0] is None:
        return f"kept (glibc mmap and trim thresholds {KEEP_BYTES >> 30} GiB)"
    return f"system malloc settings ({_STATE[0]})"


def _apply() -> str | None:
    libc = _glibc()
    if isinstance(libc, str):
        return libc
    for name, parameter in (("M_MMAP_THRESHOLD", _M_MMAP_THRESHOLD), ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD)):
        if libc.mallopt(ctypes.c_int(parameter), ctypes.c_int(KEEP_BYTES)) != 1:
            return f"glibc's mallopt refused {name} = {KEEP_BYTES}"
    return None


def _glibc() -> ctypes.CDLL | str:
    """The process's C library if it is glibc (it exports ``gnu_get_libc_version``), else why not."""
    try:
        libc = ctypes.CDLL(None)
    except OSError as error:  # Windows: no process-wide symbol table to open
        return f"the C library cannot be opened here ({error})"
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return "the C library is not glibc (no gnu_get_libc_version/mallopt), its malloc is left as it is"
    return libc
