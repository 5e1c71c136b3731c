"""What every benchmark here shares: the machine's description and an atomic JSON write."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from bsnn_lightning.atomic import write_atomically


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
    """Write ``data`` as JSON to ``path`` atomically (``bsnn_lightning.atomic``)."""
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())
