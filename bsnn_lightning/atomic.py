"""Atomic file writes: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_open(path: "str | Path") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on a clean exit fsync it, give it the
    mode a plain ``open()`` would, and rename it onto ``path``. On any error the temporary file is removed
    and ``path`` is untouched. A killed process leaves at most a ``<name>.<random>.tmp`` file.

    >>> path = Path(tempfile.mkdtemp()) / "cache.bin"
    >>> with atomic_open(path) as f:
    ...     _ = f.write(b"whole")
    >>> try:
    ...     with atomic_open(path) as f:
    ...         _ = f.write(b"half")
    ...         raise KeyboardInterrupt
    ... except KeyboardInterrupt:
    ...     pass
    >>> path.read_bytes(), sorted(p.name for p in path.parent.iterdir())  # the old file, no temporary left
    (b'whole', ['cache.bin'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: "str | Path", data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    >>> path = Path(tempfile.mkdtemp()) / "sub" / "data.bin"
    >>> write_atomically(path, b"abc")
    >>> path.read_bytes()
    b'abc'
    """
    with atomic_open(path) as f:
        f.write(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
