"""The evidence report: the BSNN and IMP papers' claims measured on the two embedded tasks (the event digits
and the event intervals), with figures.

    bsnn report OUT_DIR                   # the full report on both tasks (about half an hour on 2 CPU cores)
    bsnn report OUT_DIR --task intervals  # one task
    bsnn report OUT_DIR --quick           # a smaller, shorter run (about a minute)

From Python: ``run_report(out_dir, [QUICK, QUICK_INTERVALS])``. Where things are:

- :mod:`.settings`: what a report trains per task (:class:`Settings`) and the presets;
- :mod:`.experiments`: one module per experiment (its runs, summary, figures and Markdown) and the registry
  the runner loops over;
- :mod:`.neuron_specs`: the neurons the runs train; :mod:`.training`: one run (:class:`~.training.RunSpec`,
  :func:`~.training.train_and_test`); :mod:`.pool`: the run pool; :mod:`.data_cache`: the data the runs share;
- :mod:`.stats`: the statistics and the verdict rule; :mod:`.markdown`, :mod:`.formatting`, :mod:`.task_pages`:
  the text; :mod:`bsnn_lightning.figures.report`: the figures; :mod:`.runner`: the command and the files.
"""

from .runner import FIGURES, REPORT_FILES, figure_files, main, run_report
from .settings import FULL, FULL_INTERVALS, PRESETS, QUICK, QUICK_INTERVALS, TASKS, Settings

__all__ = [
    "FIGURES", "FULL", "FULL_INTERVALS", "PRESETS", "QUICK", "QUICK_INTERVALS", "REPORT_FILES", "TASKS", "Settings",
    "figure_files", "main", "run_report",
]
