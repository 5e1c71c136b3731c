"""``bsnn report OUT_DIR [--quick] [--task ...] [--seeds ...]``: run the experiments, write the table, figures
and JSON.

Writes into OUT_DIR (each file atomically: a temporary file, then a rename):

- ``report.md``: for each task (the event digits, the event intervals, or both), whether it can test a claim
  about temporal dynamics, the claims' measured effects with 95% intervals and verdicts, the eigenvalue-clamp
  experiment, per-experiment setup (seeds, epochs, wall-clock and CPU time), and the figures;
- ``report.json``: every number the Markdown shows, and the raw per-run results behind them;
- ``figures/*.png``: the figures of :func:`figure_files`, each of the size in
  :data:`bsnn_lightning.figures.report.FIGURE_PIXELS`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import NamedTuple, Sequence

import lightning
import numpy as np
import torch

from .. import __version__
from ..atomic import write_atomically
from ..figures import report as report_figures
from ..figures.common import require_matplotlib, save_png
from .experiments import EXPERIMENTS, FIRING_PATTERNS
from .markdown import render_markdown
from .pool import RunPool
from .settings import PRESETS, TASK_NAMES, TASKS, Settings, settings_by_task
from .task_pages import INTERVAL_FIGURE, draw_interval_classes, interval_samples
from .training import Runner, clock, elapsed

#: per-task figure (file name without the "<task>_" prefix) -> its kind in bsnn_lightning.figures.report.FIGURE_PIXELS
TASK_FIGURES = {name: kind for experiment in EXPERIMENTS for name, kind in experiment.figures.items()}
REPORT_FILES = ("report.md", "report.json")


def figure_files(tasks: Sequence[str]) -> dict[str, str]:
    """File name (under figures/) -> figure kind, for a report of ``tasks``.

    >>> files = figure_files(["digits"])
    >>> all(name.endswith(".png") for name in files), any(name.startswith("digits_") for name in files)
    (True, True)
    >>> any(name.startswith("intervals_") for name in files)  # only the tasks asked for
    False
    """
    files = dict(FIRING_PATTERNS.figures)
    for task in tasks:
        files.update({f"{task}_{name}": kind for name, kind in TASK_FIGURES.items()})
    if "intervals" in tasks:
        files.update(INTERVAL_FIGURE)
    return files


#: the figures of a report of both tasks
FIGURES = figure_files(TASKS)


def main(argv: list[str] | None = None) -> int:
    """The ``bsnn report`` subcommand (``argv`` without the ``report`` word); returns the exit status.

    A wrong option stops before any run, with argparse's message on stderr and status 2:

    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as said:
    ...     main(["out", "--task", "sideways"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    >>> "invalid choice: 'sideways'" in said.getvalue()
    True
    """
    parser = argparse.ArgumentParser(
        prog="bsnn report",
        description="Measure the BSNN and IMP papers' claims on the embedded tasks (event digits, event intervals); "
        "write a Markdown table, PNG figures and a JSON of every number into OUT_DIR.",
    )
    parser.add_argument("out_dir", help="folder to write report.md, report.json and figures/ into (created if missing)")
    parser.add_argument("--quick", action="store_true", help="a smaller, shorter run (about a minute on 2 CPU cores)")
    parser.add_argument("--task", choices=(*TASKS, "both"), default="both", help="which task(s) to run the experiments on (default: both)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="seeds for every experiment (default: 0-4 for the sweep, baseline and clamp runs, 0-9 for the paired comparisons; --quick: 0 1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="training runs in parallel, one process each (default: 2, or 1 on a one-CPU machine)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: faster for these small networks, see docs/results.md)")
    parser.add_argument("--cache-dir", default=None, help="event-digits cache folder (default: $BSNN_LIGHTNING_CACHE or ~/.cache/bsnn-lightning)")
    args = parser.parse_args(argv)
    presets = PRESETS["quick" if args.quick else "full"]
    tasks = TASKS if args.task == "both" else (args.task,)
    settings = [presets[task] for task in tasks]
    if args.seeds:
        if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
            parser.error(f"expected distinct seeds >= 0, got {args.seeds}")
        settings = [s.replace(seeds_sweep=tuple(args.seeds), seeds_pairs=tuple(args.seeds)) for s in settings]
    if args.threads < 1 or args.jobs < 1:
        parser.error(f"expected --threads >= 1 and --jobs >= 1, got {args.threads} and {args.jobs}")
    settings = [s.replace(threads=args.threads, cache_dir=args.cache_dir) for s in settings]
    try:
        require_matplotlib("bsnn report")
        check_writable(args.out_dir, tasks)
    except (ImportError, OSError) as error:
        parser.exit(2, f"bsnn report: error: {error}\n")
    run_report(args.out_dir, settings, jobs=args.jobs, command=["bsnn", "report", *(sys.argv[2:] if argv is None else argv)])
    return 0


def run_report(
    out_dir: str | os.PathLike,
    settings: Settings | Sequence[Settings] | None = None,
    jobs: int = 1,
    command: list[str] | None = None,
    log=print,
) -> dict:
    """Run every experiment on each task of ``settings`` (one :class:`Settings` per task; default: both tasks'
    full settings) and write the report into ``out_dir``; returns the JSON dict.

    ``jobs`` training runs go in parallel, each in its own worker process; each run uses
    ``settings.threads`` torch threads (default 1): these networks are too small for intra-op parallelism
    to pay, and on a 2-core machine shared with other work two OpenMP threads were measured up to ten times
    slower than one. Results depend on the thread count (floating-point reduction order), so it is
    recorded; they do not depend on ``jobs``. The thread count, the deterministic-algorithms flag (the
    Trainers set it) and Lightning's log level are restored afterwards.

    Settings that cannot go together are refused before any run starts (a full report takes half an hour):

    >>> from bsnn_lightning.report import PRESETS
    >>> run_report("unused", [PRESETS["quick"]["digits"], PRESETS["full"]["intervals"]])
    Traceback (most recent call last):
    ...
    ValueError: expected one mode for all tasks, got ['quick', 'full']
    """
    require_matplotlib("bsnn report")
    listed = list(PRESETS["full"].values()) if settings is None else ([settings] if isinstance(settings, Settings) else list(settings))
    tasks = settings_by_task(listed)
    if len({s.mode for s in listed}) != 1:
        raise ValueError(f"expected one mode for all tasks, got {[s.mode for s in listed]}")
    check_writable(out_dir, tasks)
    started = RunStart.now()
    with _quiet_and_single_threaded(listed[0].threads), RunPool(listed, jobs) as run:
        results = run_experiments(tasks, run, log)
    return write_report(out_dir, results, tasks, jobs=jobs, command=command, started=started, log=log)


def check_writable(out_dir: str | os.PathLike, tasks: Sequence[str]) -> None:
    """Make sure the report of ``tasks`` can be written into ``out_dir`` before any run starts (a full report
    takes half an hour): create the folder and its ``figures/``, write and remove a probe file in each, and
    find no folder where a report file or figure goes. Raises an ``OSError`` (``NotADirectoryError``,
    ``IsADirectoryError``, ``PermissionError``, ...) whose message names the path and what is wrong."""
    out = Path(out_dir)
    for folder in (out, out / "figures"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise NotADirectoryError(f"cannot write the report into {folder}: it exists and is not a folder") from None
        except OSError as error:
            raise type(error)(f"cannot write the report into {folder}: cannot create the folder ({error.strerror or error})") from None
        if not folder.is_dir():
            raise NotADirectoryError(f"cannot write the report into {folder}: it exists and is not a folder")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise type(error)(f"cannot write the report into {folder}: {error.strerror or error}") from None
    for path in [out / name for name in REPORT_FILES] + [out / "figures" / name for name in figure_files(list(tasks))]:
        if path.is_dir():
            raise IsADirectoryError(f"cannot write the report file {path}: a folder of that name is in the way")


def run_experiments(tasks: dict[str, Settings], run: Runner, log=print) -> dict:
    """Every experiment on every task of ``tasks`` (task -> settings), its training runs made by ``run``;
    returns ``{"firing_patterns": ..., task: {experiment: result, "wall_s": ..., "cpu_s": ...}}``."""
    results: dict = {}
    steps = 1 + len(EXPERIMENTS) * len(tasks)
    log(f"[1/{steps}] {FIRING_PATTERNS.label}")
    results[FIRING_PATTERNS.key] = FIRING_PATTERNS.measure()
    step = 1
    for task, settings in tasks.items():
        task_start = time.perf_counter()
        entries: dict = {}
        for experiment in EXPERIMENTS:
            start = clock()
            specs = experiment.specs(settings)
            step += 1
            log(f"[{step}/{steps}] {TASK_NAMES[task]}: {experiment.label}, {len(specs)} runs x {specs[0].epochs} epochs")
            runs = run(specs)
            entries[experiment.key] = {**experiment.summarize(settings, runs, entries), **elapsed(start, runs)}
        entries["wall_s"] = round(time.perf_counter() - task_start, 1)
        entries["cpu_s"] = round(sum(entries[experiment.key]["cpu_s"] for experiment in EXPERIMENTS), 1)
        results[task] = entries
    return results


def write_report(
    out_dir: str | os.PathLike,
    results: dict,
    tasks: dict[str, Settings],
    jobs: int = 1,
    command: list[str] | None = None,
    started: RunStart | None = None,
    log=print,
) -> dict:
    """Write ``report.json``, ``report.md`` and the figures of :func:`run_experiments`' ``results`` into
    ``out_dir``; returns the JSON dict. ``started``: when the runs began (default: now)."""
    started = started or RunStart.now()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = assemble_report(results, tasks, jobs=jobs, command=command, started=started)
    figures = _write_figures(out / "figures", results, tasks, report["interval_samples"])
    report["figures"] = {name: {"file": f"figures/{name}", "pixels": list(report_figures.FIGURE_PIXELS[kind])} for name, kind in figures.items()}
    report["meta"].update(_elapsed_since(started, results, tasks, jobs))  # the figures included
    write_atomically(out / "report.json", json.dumps(report, indent=1, allow_nan=False).encode())
    write_atomically(out / "report.md", render_markdown(report).encode())
    log(f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(figures)} figures in {report['meta']['wall_s']} s")
    return report


def assemble_report(
    results: dict,
    tasks: dict[str, Settings],
    jobs: int = 1,
    command: list[str] | None = None,
    started: RunStart | None = None,
) -> dict:
    """The report's JSON dict (without its figures) from :func:`run_experiments`' ``results``; ``started``: when
    the runs began (default: now)."""
    started = started or RunStart.now()
    listed = list(tasks.values())
    return {
        "meta": {
            "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(command) if command else None,
            "mode": listed[0].mode,
            "tasks": list(tasks),
            "versions": _versions(),
            "machine": {"torch_threads": listed[0].threads, "jobs": jobs, "os_cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average_start": started.load_average, "load_average_end": _load_average()},
            **_elapsed_since(started, results, tasks, jobs),
        },
        "settings": {task: {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(s).items() if k != "cache_dir"} for task, s in tasks.items()},
        "experiments": results,
        "interval_samples": interval_samples(tasks["intervals"]) if "intervals" in tasks else None,
        "figures": {},
    }


class RunStart(NamedTuple):
    """What the report records of the moment the runs began: the wall-clock and CPU clocks
    (``time.perf_counter``, ``time.process_time``) and the load average (None where the OS has none)."""

    wall: float
    cpu: float
    load_average: list[float] | None

    @classmethod
    def now(cls) -> RunStart:
        return cls(time.perf_counter(), time.process_time(), _load_average())


def _elapsed_since(started: RunStart, results: dict, tasks: dict, jobs: int) -> dict:
    """Wall-clock since ``started``; CPU time of this process since then, plus the training runs' own when
    they ran in worker processes."""
    workers = sum(results[t]["cpu_s"] for t in tasks) if jobs > 1 else 0
    return {"wall_s": round(time.perf_counter() - started.wall, 1), "cpu_s": round(time.process_time() - started.cpu + workers, 1)}



@contextlib.contextmanager
def _quiet_and_single_threaded(threads: int):
    """Lightning's per-Trainer info lines off, ``threads`` torch threads; everything restored on exit."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        torch.set_num_threads(threads)
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):  # Lightning's own, about its torch internals
                warnings.filterwarnings("ignore", category=category, module=r"lightning\.")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


def _write_figures(folder: Path, results: dict, tasks: dict, samples: dict | None) -> dict[str, str]:
    made = FIRING_PATTERNS.draw(results[FIRING_PATTERNS.key])
    for task in tasks:
        for experiment in EXPERIMENTS:
            made.update({f"{task}_{name}": fig for name, fig in experiment.draw(task, results[task]).items()})
    if samples is not None:
        made.update(draw_interval_classes(samples))
    expected = figure_files(list(tasks))
    if set(made) != set(expected):
        raise RuntimeError(f"expected figures {sorted(expected)}, made {sorted(made)}")
    for name, fig in made.items():
        save_png(fig, folder / name)
    return expected


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _versions() -> dict:
    return {"bsnn_lightning": __version__, "torch": torch.__version__, "lightning": lightning.__version__,
            "numpy": np.__version__, "python": platform.python_version()}
