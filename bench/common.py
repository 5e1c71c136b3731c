"""What every benchmark here shares: the Triton mode, the machine's description and an atomic JSON write.

Nothing here imports the package at module level (``import bsnn_lightning`` imports Triton, which fixes the
Triton mode): a benchmark imports this first and calls :func:`choose_triton_mode` before anything else."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

#: the checkout these benchmarks belong to
ROOT = Path(__file__).resolve().parents[1]


def choose_triton_mode(mode: str = "auto") -> bool:
    """The package's Triton-mode rule (``bsnn_lightning/engine/triton_mode.py``, loaded from its file without
    importing the package, which imports Triton) applied to this process: ``"auto"``, ``"interpret"`` or
    ``"compile"``; returns whether the kernels will be interpreted. Call it before anything imports Triton."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bsnn_triton_mode", ROOT / "bsnn_lightning/engine/triton_mode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.choose_triton_mode(mode)


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
    from bsnn_lightning.atomic import write_atomically

    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())
