#!/usr/bin/env python
"""A static performance model of the triton backend's kernels, built on a machine without a GPU: the command.

The code, and what it models and how, are in the package ``bench/static_model/`` (its docstring).

    python bench/kernels_static.py                          # the benchmark's kernels, with the model
    python bench/kernels_static.py --set check --arch 90 80 # a small representative set; exit 1 on a failure
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: the package static_model

from static_model.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
