"""``report.md``: the header, the summary of every claim, each experiment's overview, each task's page (its
experiments' sections, in the registry's order) and the task-free firing patterns, from ``report.json``'s dict."""

from __future__ import annotations

from .experiments import EXPERIMENTS, FIRING_PATTERNS
from .settings import TASK_NAMES
from .task_pages import task_intro, task_line


def render_markdown(report: dict) -> str:
    meta, settings, ex = report["meta"], report["settings"], report["experiments"]
    tasks = meta["tasks"]
    first = settings[tasks[0]]
    lines = [
        "# Evidence report: the papers' claims on the embedded tasks",
        "",
        f"Generated {meta['generated']} by `{meta['command'] or 'run_report()'}` ({meta['mode']} mode); "
        f"bsnn-lightning {meta['versions']['bsnn_lightning']}, torch {meta['versions']['torch']}, "
        f"lightning {meta['versions']['lightning']}, {meta['machine']['jobs']} parallel run(s) of {meta['machine']['torch_threads']} torch thread(s) each on "
        f"{meta['machine']['os_cpus']} CPUs. Total {meta['wall_s']:.0f} s wall-clock, {meta['cpu_s']:.0f} s CPU "
        f"(load average {_fmt_load(meta['machine']['load_average_start'])} at start, "
        f"{_fmt_load(meta['machine']['load_average_end'])} at end: other processes on the machine inflate wall-clock); "
        + "; ".join(f"{TASK_NAMES[t]} {ex[t]['wall_s']:.0f} s wall-clock, {ex[t]['cpu_s']:.0f} s CPU in training runs" for t in tasks) + ".",
        "",
        "Tasks: " + "; ".join(task_line(t, settings[t]) for t in tasks) + ". "
        f"Network: 2x2 average pooling, conv {first['channels'][0]} and {first['channels'][1]} channels (BN, neuron, 2x2 max "
        f"pooling), {first['hidden']} spiking hidden units, linear read-out; AdamW lr {first['lr']:g}, weight decay "
        f"{first['weight_decay']:g} (none on neuron parameters), cosine schedule, batch {first['batch_size']}.",
        "",
        "Verdict rule, fixed before any run: a claim that A beats B **held** if the 95% interval of A - B lies above "
        "0, **did not hold** if it lies below 0, and is **unclear** if it contains 0. Paired differences use the "
        "t-interval over seeds (a seed fixes the initial weights and the batch order); spreads use a bootstrap "
        "over seeds. Accuracies in %, differences in percentage points (pp).",
        "",
        "## Summary",
        "",
        "| claim (source) | measure | " + " | ".join(f"{TASK_NAMES[t]}: effect [95% interval] | verdict" for t in tasks) + " |",
        "|---|---|" + "---|---|" * len(tasks),
    ]
    patterns = ex[FIRING_PATTERNS.key]
    rows = [row for experiment in EXPERIMENTS for row in experiment.claim_rows([ex[t][experiment.key] for t in tasks])]
    for label, measure, per_task in [*rows, *FIRING_PATTERNS.claim_rows(patterns, len(tasks))]:
        cells = " | ".join(f"{effect} | {verdict}" for effect, verdict in per_task)
        lines.append(f"| {label} | {measure} | {cells} |")
    if meta["mode"] == "quick":
        lines[2:2] = ["> **Quick mode**: a smoke run (few samples, few epochs, two seeds) that checks the pipeline end to "
                      "end. Its numbers and verdicts are not evidence; run without `--quick` for those.", ""]
    lines.append("")
    for experiment in EXPERIMENTS:
        lines += experiment.overview({t: ex[t][experiment.key] for t in tasks})
    for t in tasks:
        lines += [f"# Task: {TASK_NAMES[t]}", "", *task_intro(t, report.get("interval_samples"))]
        for experiment in EXPERIMENTS:
            lines += experiment.section(t, ex[t])
    lines += ["# Independent of the task", "", *FIRING_PATTERNS.section(patterns)]
    return "\n".join(lines) + "\n"



def _fmt_load(load) -> str:
    return "n/a" if load is None else "/".join(f"{v:.1f}" for v in load)
