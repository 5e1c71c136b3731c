"""Is the task fit to test a claim about temporal dynamics? The sweep's LIF network given the recording's
frames averaged over time, against the same network on the frames; and the rule that reads the answer."""

from __future__ import annotations

from .. import stats
from ..formatting import acc_cell, acc_interval, pp, pp_interval
from ..neuron_specs import SweepNeuron
from ..settings import TASK_NAMES, Settings
from ..training import RunSpec
from .base import Experiment

#: a task is fit to test a claim about temporal dynamics if plain LIF's tau_m dependence is beyond noise
#: (permutation p below this) ...
FIT_P = 0.05
#: ... and the network given time-averaged frames is near chance (its 95% interval within this of chance)
FIT_CHANCE_MARGIN = 0.05


class TimeAveragedBaseline(Experiment):
    """What a network that averages over time achieves: the sweep's LIF network at ``settings.baseline_tau``,
    given at every step the recording's frames averaged over time (their sum / T), on the sweep's seeds;
    paired with the sweep's runs of the same network on the frames themselves."""

    key = "time_averaged"
    label = "time-averaged baseline"

    def specs(self, settings: Settings) -> list[RunSpec]:
        tau = settings.baseline_tau
        if tau not in settings.taus:
            raise ValueError(f"expected baseline_tau {tau} among the sweep's taus {settings.taus}")
        return [
            RunSpec(seed, "time_averaged", SweepNeuron("LIF", tau), "ce", settings.epochs_sweep, task=settings.task)
            for seed in settings.seeds_sweep
        ]

    def summarize(self, settings: Settings, results: list[dict], entries: dict) -> dict:
        tau = settings.baseline_tau
        sweep = entries["control_rate"]
        averaged = [r["accuracy"] for r in results]
        framed = sweep["accuracy"]["LIF"][settings.taus.index(tau)]
        chance = 1.0 / results[0]["num_classes"]
        lif = sweep["methods"]["LIF"]
        return {
            "question": "Is the task fit to test a claim about temporal dynamics? Plain LIF's accuracy should depend "
            "on tau_m (its spread over tau_m well above the spread noise alone gives), and a network that sees the "
            "frames averaged over time should be near chance.",
            "setup": {
                "data": TASK_NAMES[settings.task], "time_steps": settings.time_steps_events, "tau_m": tau,
                "neuron": f"LIFNeuron(tau={tau:g}, decay_input=False, v_reset=None)", "loss": "rate cross entropy",
                "input": "the mean over time of the T frames (their sum / T), the same at every one of the T steps",
                "seeds": list(settings.seeds_sweep), "epochs": settings.epochs_sweep,
            },
            "chance": chance,
            "accuracy": {"frames over time": framed, "time-averaged frames": averaged},
            "time_averaged": stats.describe(averaged),
            "time_averaged_minus_chance": stats.describe([a - chance for a in averaged]),
            "frames_minus_time_averaged": stats.paired_difference(framed, averaged),
            "lif_tau_sensitivity": {"spread": lif["spread"], "no_effect_test": lif["no_effect_test"]},
        }

    def overview(self, entries: dict[str, dict]) -> list[str]:
        lines = [
            "## Can the task test a claim about temporal dynamics?",
            "",
            f"Rule, fixed before the runs: a task can if plain LIF's accuracy depends on tau_m beyond what noise alone "
            f"gives (the sweep's permutation test, p < {FIT_P:g}) and the same LIF network given the frames averaged over "
            f"time is near chance (the 95% interval of its accuracy minus chance within ±{100 * FIT_CHANCE_MARGIN:.0f} pp).",
            "",
            "| task | LIF: spread over tau_m [95% interval] | spread if tau_m had no effect | p (no effect) | LIF on time-averaged frames | chance | frames minus time-averaged [95% interval] | fit? |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t, entry in entries.items():
            sensitivity = entry["lif_tau_sensitivity"]
            fit = fitness(entry)
            verdict = "yes" if all(fit.values()) else "no: " + ", ".join(
                text for key, text in (("lif_sensitive", "LIF not sensitive to tau_m"), ("time_averaged_near_chance", "time-averaging is not at chance")) if not fit[key]
            )
            diff = entry["frames_minus_time_averaged"]
            lines.append(
                f"| {TASK_NAMES[t]} | {pp(sensitivity['spread']['spread'])} {pp_interval(sensitivity['spread']['ci95'])} | "
                f"{pp(sensitivity['no_effect_test']['null_mean'])} | {sensitivity['no_effect_test']['p']:.4f} | "
                f"{acc_cell(entry['time_averaged'])} {acc_interval(entry['time_averaged']['ci95'])} | {100 * entry['chance']:.1f} | "
                f"{pp(diff['mean'])} {pp_interval(diff['ci95'])} | {verdict} |"
            )
        some = next(iter(entries.values()))["setup"]
        lines += [
            "",
            f"Time-averaged baseline: {some['neuron']} neuron in the sweep's network, with the sweep's seeds and epochs, "
            f"given {some['input']}; paired with the sweep's runs of the same network on the frames. p cannot go below "
            f"1/2001 = 0.0005 (2,000 permutations). The chance line and the baseline's band are in each task's tau_m figure.",
            "",
        ]
        return lines


def fitness(entry: dict) -> dict:
    """Whether a task can test a claim about temporal dynamics (the rule of FIT_P and FIT_CHANCE_MARGIN), from
    the baseline's summary on that task."""
    sensitivity = entry["lif_tau_sensitivity"]["no_effect_test"]
    interval = entry["time_averaged_minus_chance"]["ci95"]
    near_chance = interval is not None and -FIT_CHANCE_MARGIN <= interval[0] and interval[1] <= FIT_CHANCE_MARGIN
    return {"lif_sensitive": sensitivity["p"] < FIT_P, "time_averaged_near_chance": near_chance}
