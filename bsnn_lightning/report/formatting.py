"""How the report's Markdown writes its numbers: accuracies in %, differences in percentage points, intervals,
timings, and the table of a set of claims."""

from __future__ import annotations

import numpy as np


def claims_table(claims: dict) -> list[str]:
    """A Markdown table of ``{measure: claim}``: mean [95% interval], std over seeds, verdict."""
    lines = ["| measure | mean [95% interval] | std over seeds | verdict |", "|---|---|---|---|"]
    for measure, claim in claims.items():
        std = "n/a" if claim["std"] is None else pp(claim["std"])
        lines.append(f"| {measure} | {pp(claim['mean'])} {pp_interval(claim['ci95'])} | {std} | {claim['verdict']} |")
    return lines


def mean_std_cells(runs) -> list[str]:
    """``mean ± std`` in % over runs (the first axis) of curves of accuracies, one cell per point."""
    values = np.asarray(runs) * 100
    std = values.std(0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    return [f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), std)]


def acc_cell(entry: dict) -> str:
    """``mean ± std`` of a :func:`~.stats.describe` of accuracies, in %."""
    std = entry["std"]
    return f"{100 * entry['mean']:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def acc_interval(interval) -> str:
    return "[n/a: one seed]" if interval is None else f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def pp(value: float) -> str:
    return f"{100 * value:+.1f} pp" if value is not None else "n/a"


def pp_interval(interval) -> str:
    if interval is None:
        return "[n/a: one seed]"
    return f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]"


def timing(entry: dict) -> str:
    return f"{entry['wall_s']:.0f} s wall-clock, {entry['cpu_s']:.0f} s CPU"
