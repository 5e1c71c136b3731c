"""The evidence report: the BSNN and IMP papers' claims measured on the embedded digits, with figures.

    bsnn report OUT_DIR            # the full report (under 20 minutes on 2 CPU cores)
    bsnn report OUT_DIR --quick    # a smaller, shorter run (about a minute)

From Python: ``run_report(out_dir, QUICK)``. The experiments are in :mod:`.experiments`, the statistics
and the verdict rule in :mod:`.stats`, the figures in :mod:`bsnn_lightning.figures.report`.
"""

from .experiments import FULL, QUICK, Settings
from .runner import FIGURES, REPORT_FILES, main, run_report

__all__ = ["FIGURES", "FULL", "QUICK", "REPORT_FILES", "Settings", "main", "run_report"]
