"""``bsnn report --quick`` runs end to end on both tasks and writes every file it promises (slow); the same
pipeline from experiments to Markdown and figures on a stand-in runner (fast); the statistics behind the
verdicts; the firing-pattern experiment against a hand computation; the report's optimizer and baseline data."""

import json
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from bsnn_lightning.cli import main
from bsnn_lightning.convert import materialize
from bsnn_lightning.figures.report import FIGURE_PIXELS
from bsnn_lightning.report import FIGURES, QUICK, QUICK_INTERVALS, REPORT_FILES, figure_files, runner, stats
from bsnn_lightning.report.data_cache import DataCache
from bsnn_lightning.report.experiments.firing_patterns import firing_patterns
from bsnn_lightning.report.experiments.time_averaged import fitness
from bsnn_lightning.report.neuron_specs import ClampNeuron, SweepNeuron
from bsnn_lightning.report.training import RunSpec, _AdamW, build_net, train_and_test

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PER_TASK = ("tau_sweep.png", "eigen_spectrum.png", "eigen_clamp.png", "imp_per_step.png", "readout_convergence.png", "loss_comparison.png")
EXPECTED_FIGURES = {
    "firing_patterns.png", "intervals_classes.png",
    *(f"{task}_{name}" for task in ("digits", "intervals") for name in PER_TASK),
}
EXPERIMENTS = {"control_rate", "time_averaged", "eigen_clamp", "imp_per_step", "readout", "loss"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cache = tmp_path_factory.mktemp("cache")
    assert main(["report", str(out / "out"), "--quick", "--jobs", "2", "--cache-dir", str(cache)]) == 0
    return out / "out"


@pytest.mark.slow
def test_quick_report_writes_exactly_the_promised_files(quick_report):
    written = {p.relative_to(quick_report).as_posix() for p in quick_report.rglob("*") if p.is_file()}
    assert set(FIGURES) == EXPECTED_FIGURES and set(REPORT_FILES) == {"report.md", "report.json"}
    assert written == {"report.md", "report.json", *(f"figures/{name}" for name in EXPECTED_FIGURES)}  # no temp files left


@pytest.mark.slow
def test_figures_are_non_empty_pngs_of_their_declared_size(quick_report):
    report = json.loads((quick_report / "report.json").read_text())
    assert set(report["figures"]) == EXPECTED_FIGURES
    for name, entry in report["figures"].items():
        path = quick_report / entry["file"]
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert (width, height) == FIGURE_PIXELS[FIGURES[name]] == tuple(entry["pixels"]), name
        assert 5_000 < len(data) < 200_000, (name, len(data))
        pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
        assert pixels.std() > 5, f"{name} looks blank"
        assert (pixels < 100).mean() > 0.005, f"{name} has almost nothing drawn in dark ink"


@pytest.mark.slow
def test_json_numbers_are_finite_and_plentiful(quick_report):
    def refuse(token):
        raise ValueError(f"non-finite JSON token {token}")

    report = json.loads((quick_report / "report.json").read_text(), parse_constant=refuse)
    numbers = list(_numbers(report))
    assert len(numbers) > 2000
    assert all(math.isfinite(x) for x in numbers)


@pytest.mark.slow
def test_every_experiment_of_both_tasks_states_seeds_epochs_and_time(quick_report):
    report = json.loads((quick_report / "report.json").read_text())
    experiments_ = report["experiments"]
    assert set(experiments_) == {"firing_patterns", "digits", "intervals"} and report["meta"]["tasks"] == ["digits", "intervals"]
    for task in ("digits", "intervals"):
        assert set(experiments_[task]) == EXPERIMENTS | {"wall_s", "cpu_s"}
        for name in EXPERIMENTS:
            result = experiments_[task][name]
            assert result["wall_s"] >= 0 and result["cpu_s"] > 0, (task, name)
            assert result["setup"]["seeds"] == [0, 1] and result["setup"]["epochs"] >= 1, (task, name)
        sweep = experiments_[task]["control_rate"]
        assert set(sweep["accuracy"]) == {"LIF", "BSNN diagonal", "BSNN coupled"}
        assert all(len(per_tau) == 2 and all(len(s) == 2 for s in per_tau) for per_tau in sweep["accuracy"].values())
        assert sweep["spectrum"]["coupled_check"]["max_abs_imaginary"] < 1e-6  # A is symmetric: a real spectrum
        assert sweep["spectrum"]["coupled_check"]["max_abs_difference_to_explicit"] < 1e-4
        assert experiments_[task]["time_averaged"]["chance"] == (0.1 if task == "digits" else 0.25)
    assert report["meta"]["mode"] == "quick" and report["meta"]["wall_s"] > 0
    assert report["experiments"]["intervals"]["imp_per_step"]["setup"]["data"] == "event intervals"
    assert report["experiments"]["digits"]["imp_per_step"]["setup"]["data"] == "static digits"


@pytest.mark.slow
def test_markdown_shows_each_claim_on_each_task_with_verdict_setup_and_figure(quick_report):
    text = (quick_report / "report.md").read_text()
    _check_markdown(text, seeds="seeds [0, 1]")
    assert "Quick mode" in text


@pytest.mark.slow
def test_a_run_is_reproducible_from_its_seed_in_any_process(quick_report, tmp_path):
    """The quick report ran its runs in worker processes; the same run here, in this process, agrees exactly."""
    report = json.loads((quick_report / "report.json").read_text())
    sweep = report["experiments"]["digits"]["control_rate"]
    tau, seed = sweep["spectrum"]["tau_m"], sweep["spectrum"]["seed"]
    assert report["meta"]["machine"]["jobs"] == 2
    settings = QUICK.replace(cache_dir=str(tmp_path))
    spec = RunSpec(seed, "events", SweepNeuron("BSNN diagonal", tau), "ce", settings.epochs_sweep, record_eigenvalues=True)
    again = train_and_test(settings, DataCache(settings), spec)
    assert again["accuracy"] == sweep["accuracy"]["BSNN diagonal"][settings.taus.index(tau)][0]
    recorded = sweep["spectrum"]["layers"]["BSNN diagonal"]
    assert again["eigen_after"] == {layer: v["after"] for layer, v in recorded.items()}
    assert again["eigen_after"] != again["eigen_before"]  # the eigenvalues did train
    clamp = report["experiments"]["intervals"]["eigen_clamp"]
    settings = QUICK_INTERVALS
    spec = RunSpec(0, "events", ClampNeuron(16.0, 0.2), "ce", settings.epochs_sweep, record_eigenvalues=True,
                   eigen_lr_scale=1 / 16, task="intervals")
    again = train_and_test(settings, DataCache(settings), spec)
    assert again["accuracy"] == clamp["by_tau"]["mu learned"][settings.taus.index(16.0)]["accuracy"][0]


def test_report_refuses_repeated_seeds(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--seeds", "1", "1"])
    assert "expected distinct seeds >= 0, got [1, 1]" in capsys.readouterr().err


def test_report_refuses_an_unknown_task(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--task", "gestures"])
    assert "invalid choice: 'gestures'" in capsys.readouterr().err


def test_figure_files_follow_the_tasks():
    assert set(figure_files(["digits", "intervals"])) == EXPECTED_FIGURES == set(FIGURES)
    assert set(figure_files(["digits"])) == {"firing_patterns.png", *(f"digits_{name}" for name in PER_TASK)}
    assert "intervals_classes.png" in figure_files(["intervals"])


# ------------------------------------------------------------------------------------------
# The whole pipeline on a stand-in runner (no training): statistics, rules, Markdown, figures
# ------------------------------------------------------------------------------------------


def _stand_in_run(specs):
    """Results shaped as train_and_test's, from a rule instead of training: on the intervals, LIF's accuracy
    peaks at tau_m = 4 and the time-averaged network is at chance; on the digits nothing depends on tau_m."""
    out = []
    for spec in specs:
        variant = ("events", "static", "time_averaged").index(spec.variant)
        rng = np.random.default_rng([spec.seed, zlib.crc32(repr(spec.neuron).encode()), variant, int(spec.eigen_lr_scale * 1000)])
        classes = 4 if spec.task == "intervals" else 10
        kind = spec.neuron.kind
        tau = 2.0 if kind == "imp" else spec.neuron.tau
        if spec.variant == "time_averaged":
            accuracy = 1 / classes + 0.005 * rng.standard_normal() if spec.task == "intervals" else 0.9
        elif spec.task == "intervals" and kind == "sweep" and spec.neuron.method == "LIF":
            accuracy = 0.75 - 0.2 * abs(math.log2(tau / 4))
        else:
            accuracy = 0.9
        accuracy = float(np.clip(accuracy + 0.01 * rng.standard_normal(), 0, 1))
        steps = 16 if spec.task == "intervals" else 6
        result = {"seed": spec.seed, "accuracy": accuracy, "per_step": list(np.linspace(1 / classes, accuracy, steps)),
                  "num_classes": classes, "wall_s": 1.0, "cpu_s": 1.0}
        if spec.track_epochs:
            result["epoch_accuracy"] = list(np.linspace(0.5, accuracy, spec.epochs))
        if spec.record_eigenvalues:
            upper = spec.neuron.bounds_mu[1] / tau
            before = {"conv1": list(np.linspace(-0.8, 0, 4) / tau), "hidden": list(np.linspace(-0.8, 0, 8) / tau)}
            # Adam-like: every eigenvalue moves by the same step in its parameter, 0.01 * lr scale, downwards
            after = {k: [min(v - 0.01 * spec.eigen_lr_scale, upper) for v in vs] for k, vs in before.items()}
            param = {k: [v - 0.01 * spec.eigen_lr_scale for v in vs] for k, vs in before.items()}  # unclamped
            result.update(eigen_before=before, eigen_after=after, eigen_param_after=param,
                          coupled_check={"max_abs_imaginary": 0.0, "max_abs_difference_to_explicit": 0.0})
        out.append(result)
    return out


STAND_IN_TASKS = {
    "digits": QUICK.replace(taus=(1.5, 2.0, 4.0, 8.0, 16.0), seeds_sweep=(0, 1, 2), seeds_pairs=(0, 1, 2)),
    "intervals": QUICK_INTERVALS.replace(taus=(1.5, 2.0, 4.0, 8.0, 16.0), baseline_tau=4.0, seeds_sweep=(0, 1, 2), seeds_pairs=(0, 1, 2)),
}


@pytest.fixture(scope="module")
def stand_in_results():
    return runner.run_experiments(STAND_IN_TASKS, _stand_in_run, log=lambda *_: None)


@pytest.fixture(scope="module")
def stand_in_report(stand_in_results):
    """The report's dict, without its figures."""
    return runner.assemble_report(stand_in_results, STAND_IN_TASKS)


@pytest.mark.slow
def test_stand_in_pipeline_writes_markdown_json_and_figures(stand_in_results, tmp_path):
    report = runner.write_report(tmp_path, stand_in_results, STAND_IN_TASKS, log=lambda *_: None)
    assert {p.name for p in (tmp_path / "figures").iterdir()} == EXPECTED_FIGURES
    assert json.loads((tmp_path / "report.json").read_text())["experiments"]["intervals"]["control_rate"]["accuracy"] == report["experiments"]["intervals"]["control_rate"]["accuracy"]
    _check_markdown((tmp_path / "report.md").read_text(), seeds="seeds [0, 1, 2]")


def test_stand_in_markdown_shows_every_claim_on_both_tasks(stand_in_report):
    _check_markdown(runner.render_markdown(stand_in_report), seeds="seeds [0, 1, 2]")


def test_fitness_rule_tells_the_temporal_task_from_the_digits(stand_in_report):
    report = stand_in_report
    intervals = report["experiments"]["intervals"]["time_averaged"]
    digits = report["experiments"]["digits"]["time_averaged"]
    assert fitness(intervals) == {"lif_sensitive": True, "time_averaged_near_chance": True}
    assert fitness(digits) == {"lif_sensitive": False, "time_averaged_near_chance": False}
    assert intervals["lif_tau_sensitivity"]["no_effect_test"]["p"] < 0.01
    text = runner.render_markdown(report)
    fitness_rows = [line for line in text.splitlines() if line.startswith("| event ") and line.rstrip().endswith("|") and "fit?" not in line]
    assert any(row.startswith("| event intervals") and row.endswith("| yes |") for row in fitness_rows)
    assert any(row.startswith("| event digits") and "no: LIF not sensitive to tau_m, time-averaging is not at chance" in row for row in fitness_rows)


def test_clamp_experiment_pairs_each_variant_with_its_reference(stand_in_report):
    report = stand_in_report
    clamp = report["experiments"]["intervals"]["eigen_clamp"]
    assert [c["tau_m"] for c in clamp["by_tau"]["mu learned"]] == [1.5, 2.0, 4.0, 8.0, 16.0]
    assert [c["variant"] for c in clamp["upper_bounds_at_largest_tau"]] == ["lambda learned (the sweep)", "mu <= 0", "mu <= 1"]
    assert [c["variant"] for c in clamp["package_defaults"]] == ["package defaults", "mu <= 0"]
    reference = clamp["upper_bounds_at_largest_tau"][0]
    for cell in clamp["upper_bounds_at_largest_tau"][1:]:
        expected = np.subtract(cell["accuracy"], reference["accuracy"]).mean()
        assert cell["minus_reference"]["mean"] == pytest.approx(expected)
    # the stand-in moves every parameter by 0.01: 0.01 * tau_m in mu when lambda is learned, 0.01 when mu is
    taus = (1.5, 2.0, 4.0, 8.0, 16.0)
    moved = {name: [c["after"]["mean_abs_change_mu"] for c in clamp["by_tau"][name]] for name in ("lambda learned", "mu learned")}
    assert moved["lambda learned"] == pytest.approx([0.01 * t for t in taus])
    assert moved["mu learned"] == pytest.approx([0.01] * len(taus))
    # parameters that moved past the upper bound (none here: the stand-in moves them down) and the lower one
    assert all(c["after"]["past_upper"] == 0 for c in clamp["by_tau"]["lambda learned"])


def _check_markdown(text: str, seeds: str) -> None:
    for name in EXPECTED_FIGURES:
        assert f"](figures/{name})" in text, name
    for heading in ("Control rate", "eigenvalue spectrum", "eigenvalue clamp", "zero vs learnable IMP", "LTS vs mean",
                    "label-smoothed TET", "Firing patterns", "Can the task test a claim", "# Task: event digits",
                    "# Task: event intervals"):
        assert heading in text, heading
    assert text.count(seeds) >= 10 and text.count("s wall-clock") >= 13
    summary = text.split("## Summary")[1].split("## Can the task")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| claim") and "---" not in line]
    assert len(rows) == 9
    for row in rows:  # a verdict for each task
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6 and {cells[3], cells[5]} <= {"held", "unclear", "did not hold"}, row


# ------------------------------------------------------------------------------------------
# Pieces of the experiments
# ------------------------------------------------------------------------------------------


def test_mu_learned_divides_only_the_eigenvalues_learning_rate():
    net = build_net(ClampNeuron(16.0, 0.2).factory(), in_channels=2, channels=(4, 8), hidden=8,
                                num_classes=4, input_size=(16, 16))
    materialize(net, torch.zeros(2, 1, 2, 16, 16))
    groups = [{"params": [p for n, p in net.named_parameters() if not n.endswith("eigenvalues")]},
              {"params": [p for n, p in net.named_parameters() if n.endswith("eigenvalues")], "weight_decay": 0.0}]
    optimizer = _AdamW(net, lr=3e-3, weight_decay=0.01, eigen_lr_scale=1 / 16)(groups)
    eigen = {id(p) for n, p in net.named_parameters() if n.endswith("eigenvalues")}
    for group in optimizer.param_groups:
        is_eigen = {id(p) in eigen for p in group["params"]}
        assert len(is_eigen) == 1
        assert group["lr"] == pytest.approx(3e-3 / 16 if is_eigen.pop() else 3e-3)
    plain = _AdamW(net, lr=3e-3, weight_decay=0.01)(groups)
    assert [g["lr"] for g in plain.param_groups] == [3e-3, 3e-3]
    with pytest.raises(ValueError, match="found no eigenvalues"):
        lif = build_net(SweepNeuron("LIF", 2.0).factory(), 2, (4, 8), 8, 4, (16, 16))
        _AdamW(lif, 3e-3, 0.01, 0.5)([{"params": list(lif.parameters())}])


def test_time_averaged_samples_are_the_mean_frame_of_the_event_samples():
    settings = QUICK_INTERVALS.replace(n_train=8, n_test=8)
    cache = DataCache(settings)
    events, averaged = cache.get("events"), cache.get("time_averaged")
    assert averaged.static and not events.static and averaged.steps == events.steps == 16
    assert averaged.sample_shape == (2, 16, 16) and events.sample_shape == (16, 2, 16, 16)
    for i in range(8):
        x, y = events.test[i]
        xa, ya = averaged.test[i]
        assert torch.equal(xa, x.mean(0)) and int(y) == int(ya)
    with pytest.raises(ValueError, match="has no static variant"):
        cache.get("static")


def test_settings_refuse_a_static_variant_for_the_intervals():
    with pytest.raises(ValueError, match="only the digits have a static variant"):
        QUICK_INTERVALS.replace(imp_lts_variant="static")
    with pytest.raises(ValueError, match="expected task in"):
        QUICK.replace(task="gestures")


def test_firing_patterns_match_a_hand_computed_lif_neuron():
    result = firing_patterns(steps=8, input_current=1.2)
    rows = dict(zip(result["setup"]["raster_v0"], result["raster"]))
    # tau 2, decay_input: h_t = v + (1.2 - v) / 2 -> 0.6, 0.9, 1.05 (spike, reset to 0), 0.6, ...
    assert rows[0.0] == [0, 0, 1, 0, 0, 1, 0, 0]
    # v_0 = 0.95: h_1 = 1.075 spikes at once, then the zero-start cycle
    assert rows[0.95] == [1, 0, 0, 1, 0, 0, 1, 0]
    counts = result["distinct_spike_trains"]
    assert counts["v_0 = 0"] < counts["v_0 in [0, 0.95]"] <= counts["v_0 in [-1, 0.95]"] <= result["possible_spike_trains"]


def test_verdict_rule():
    assert stats.verdict([0.01, 0.2]) == "held"
    assert stats.verdict([-0.2, -0.01]) == "did not hold"
    assert stats.verdict([-0.01, 0.2]) == "unclear"
    assert stats.verdict(None) == "unclear (one seed)"


def test_describe_gives_the_t_interval():
    d = stats.describe([0.1, 0.2, 0.3])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t_0.975(2) * s / sqrt(n)
    assert d["mean"] == pytest.approx(0.2) and d["std"] == pytest.approx(0.1)
    assert d["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
    assert stats.describe([0.5])["ci95"] is None


def test_spread_statistics_separate_an_effect_from_noise():
    rng = np.random.default_rng(1)
    flat = [list(0.9 + 0.01 * rng.standard_normal(4)) for _ in range(5)]
    steep = [list(0.5 + 0.1 * i + 0.01 * rng.standard_normal(4)) for i in range(5)]
    assert stats.permutation_spread(steep)["p"] < 0.01
    assert stats.permutation_spread(flat)["p"] > 0.05
    boot = stats.bootstrap_spread(steep)
    assert boot["ci95"][0] <= boot["spread"] <= boot["ci95"][1]
    difference = stats.bootstrap_spread_difference(steep, flat)
    assert stats.verdict(difference["ci95"]) == "held" and difference["difference"] > 0.3


def _numbers(node):
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return
    if isinstance(node, (int, float)):
        yield float(node)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _numbers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _numbers(value)


@pytest.fixture
def no_runs(monkeypatch):
    """Any experiment run fails the test: the output folder must be checked before the first run."""

    def started(*args, **kwargs):
        raise AssertionError("the experiments started before the output folder was found unwritable")

    monkeypatch.setattr(runner, "run_experiments", started)


def _report_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *argv, "--quick"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("where", ["out_dir", "parent", "figures"])
def test_report_refuses_a_file_where_its_folder_goes_before_any_run(tmp_path, capsys, no_runs, where):
    blocker = {"out_dir": tmp_path / "out", "parent": tmp_path / "parent", "figures": tmp_path / "out" / "figures"}[where]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")
    out = tmp_path / "parent" / "out" if where == "parent" else tmp_path / "out"
    err = _report_error([str(out)], capsys)
    assert err.startswith("bsnn report: error: cannot write the report into ")
    assert ("is not a folder" in err or "Not a directory" in err) and str(tmp_path) in err


def test_report_refuses_a_folder_where_a_report_file_goes_before_any_run(tmp_path, capsys, no_runs):
    (tmp_path / "report.json").mkdir()
    err = _report_error([str(tmp_path)], capsys)
    assert err == f"bsnn report: error: cannot write the report file {tmp_path / 'report.json'}: a folder of that name is in the way"


def test_report_refuses_a_folder_it_may_not_write_before_any_run(tmp_path, capsys, no_runs):
    """A real permission check. Root may write anywhere, so as root the command runs in a forked child that has
    dropped the capabilities to override file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    expected = f"bsnn report: error: cannot write the report into {locked / 'out'}: cannot create the folder (Permission denied)"
    if os.geteuid() != 0:
        assert _report_error([str(locked / "out")], capsys) == expected
        return
    code, err = _in_child_without_dac_capabilities(lambda: main(["report", str(locked / "out"), "--quick"]))
    assert (code, err.strip()) == (2, expected)
    assert not (locked / "out").exists()


def _in_child_without_dac_capabilities(call) -> tuple[int, str]:
    """Run ``call`` in a forked child without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH; its exit status and stderr."""
    import ctypes
    import os
    import sys

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.close(read_end)
            sys.stderr = os.fdopen(write_end, "w")

            class Header(ctypes.Structure):
                _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

            class Data(ctypes.Structure):
                _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

            libc = ctypes.CDLL(None, use_errno=True)
            header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
            dac = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.capget(ctypes.byref(header), data) != 0:
                raise OSError(ctypes.get_errno(), "capget")
            data[0].effective &= ~dac
            data[0].permitted &= ~dac
            if libc.capset(ctypes.byref(header), data) != 0:
                raise OSError(ctypes.get_errno(), "capset")
            call()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException as error:  # noqa: BLE001 -- report anything to the parent
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            code = 71
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        err = pipe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


def test_run_specs_take_named_neurons_and_refuse_tuples():
    with pytest.raises(TypeError, match=r"expected a neuron spec \(SweepNeuron, ClampNeuron, DefaultNeuron, ImpNeuron\), got \('sweep', 'LIF', 2.0\)"):
        RunSpec(0, "events", ("sweep", "LIF", 2.0), "ce", 1)
    with pytest.raises(ValueError, match=r"expected a method in \['LIF', 'BSNN diagonal', 'BSNN coupled'\], got 'ALIF'"):
        SweepNeuron("ALIF", 2.0)
    with pytest.raises(ValueError, match="expected an upper bound of mu >= 0.0"):
        ClampNeuron(4.0, -0.1)


def test_clamp_variants_carry_their_bounds_in_their_neurons():
    """The clamp experiment's cells read each variant's bounds of mu from its neuron, never from its label."""
    from bsnn_lightning.neuron_params import MethodSettings
    from bsnn_lightning.report.experiments.eigen_clamp import variants

    found = variants(QUICK)
    assert [(v.name, v.neuron.tau, v.neuron.bounds_mu, v.group) for v in found] == [
        ("mu learned", 2.0, (-1.0, 0.2), "mu learned"), ("mu learned", 16.0, (-1.0, 0.2), "mu learned"),
        ("mu <= 0", 16.0, (-1.0, 0.0), "largest tau_m"), ("mu <= 1", 16.0, (-1.0, 1.0), "largest tau_m"),
        ("package defaults", 1.0, tuple(MethodSettings().bounds), "package defaults"),
        ("mu <= 0", 1.0, (-1.0, 0.0), "package defaults"),
    ]
    assert [v.eigen_lr_scale for v in found] == [1 / 2, 1 / 16, 1, 1, 1, 1]
    for variant in found:  # the neuron built holds the bounds the cell states, in lambda = mu / tau_m
        neuron = variant.neuron.factory()()
        assert neuron.bsnn_settings.bounds == pytest.approx(tuple(b / variant.neuron.tau for b in variant.neuron.bounds_mu))
