"""What every benchmark here shares: the machine's description and an atomic JSON write."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path


def version(package: str) -> str | None:
    """The installed version of ``package``, or None."""
    from importlib.metadata import PackageNotFoundError, version as _version

    try:
        return _version(package)
    except PackageNotFoundError:
        return None


def loadavg() -> list[float] | None:
    """1-, 5- and 15-minute load averages: other processes on the machine skew the timings."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def write_json_atomic(data: dict, path: Path) -> None:
    """Write ``data`` as JSON to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
