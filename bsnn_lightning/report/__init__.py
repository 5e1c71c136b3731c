"""The evidence report: the BSNN and IMP papers' claims measured on the two embedded tasks (the event digits
and the event intervals), with figures.

    bsnn report OUT_DIR                   # the full report on both tasks (about half an hour on 2 CPU cores)
    bsnn report OUT_DIR --task intervals  # one task
    bsnn report OUT_DIR --quick           # a smaller, shorter run (about a minute)

From Python: ``run_report(out_dir, [QUICK, QUICK_INTERVALS])``. The experiments are in :mod:`.experiments`, the statistics
and the verdict rule in :mod:`.stats`, the figures in :mod:`bsnn_lightning.figures.report`.
"""

from .experiments import FULL, FULL_INTERVALS, PRESETS, QUICK, QUICK_INTERVALS, TASKS, Settings
from .runner import FIGURES, REPORT_FILES, figure_files, main, run_report

__all__ = [
    "FIGURES", "FULL", "FULL_INTERVALS", "PRESETS", "QUICK", "QUICK_INTERVALS", "REPORT_FILES", "TASKS", "Settings",
    "figure_files", "main", "run_report",
]
