"""``bsnn report --quick`` runs end to end and writes every file it promises; the statistics behind the
verdicts; the firing-pattern experiment against a hand computation."""

import json
import math
import struct

import numpy as np
import pytest
from PIL import Image

from bsnn_lightning.cli import main
from bsnn_lightning.report import FIGURES, QUICK, REPORT_FILES, experiments, stats
from bsnn_lightning.figures.report import FIGURE_PIXELS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_FIGURES = {
    "tau_sweep.png", "eigen_spectrum.png", "imp_per_step.png", "readout_convergence.png", "loss_comparison.png",
    "firing_patterns.png",
}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cache = tmp_path_factory.mktemp("cache")
    assert main(["report", str(out / "out"), "--quick", "--jobs", "2", "--cache-dir", str(cache)]) == 0
    return out / "out"


def test_quick_report_writes_exactly_the_promised_files(quick_report):
    written = {p.relative_to(quick_report).as_posix() for p in quick_report.rglob("*") if p.is_file()}
    assert set(FIGURES) == EXPECTED_FIGURES and set(REPORT_FILES) == {"report.md", "report.json"}
    assert written == {"report.md", "report.json", *(f"figures/{name}" for name in EXPECTED_FIGURES)}  # no temp files left


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


def test_json_numbers_are_finite_and_plentiful(quick_report):
    def refuse(token):
        raise ValueError(f"non-finite JSON token {token}")

    report = json.loads((quick_report / "report.json").read_text(), parse_constant=refuse)
    numbers = list(_numbers(report))
    assert len(numbers) > 500
    assert all(math.isfinite(x) for x in numbers)


def test_every_experiment_states_seeds_epochs_and_time(quick_report):
    report = json.loads((quick_report / "report.json").read_text())
    experiments_ = report["experiments"]
    assert set(experiments_) == {"firing_patterns", "control_rate", "imp_per_step", "readout", "loss"}
    for name, result in experiments_.items():
        assert result["wall_s"] >= 0 and result["cpu_s"] >= 0, name
        if name != "firing_patterns":
            assert result["setup"]["seeds"] == [0, 1] and result["setup"]["epochs"] >= 1, name
            assert result["cpu_s"] > 0, name
    assert report["meta"]["mode"] == "quick" and report["meta"]["wall_s"] > 0
    sweep = experiments_["control_rate"]
    assert set(sweep["accuracy"]) == {"LIF", "BSNN diagonal", "BSNN coupled"}
    assert all(len(per_tau) == 5 and all(len(s) == 2 for s in per_tau) for per_tau in sweep["accuracy"].values())
    assert sweep["spectrum"]["coupled_check"]["max_abs_imaginary"] < 1e-6  # A is symmetric: a real spectrum
    assert sweep["spectrum"]["coupled_check"]["max_abs_difference_to_explicit"] < 1e-4


def test_markdown_shows_each_claim_with_verdict_setup_and_figure(quick_report):
    text = (quick_report / "report.md").read_text()
    assert "Quick mode" in text
    for name in EXPECTED_FIGURES:
        assert f"](figures/{name})" in text
    for heading in ("Control rate", "eigenvalue spectrum", "zero vs learnable IMP", "LTS vs mean", "label-smoothed TET", "Firing patterns"):
        assert heading in text
    assert text.count("seeds [0, 1]") >= 4 and text.count("s wall-clock") >= 6
    verdicts = [line.rsplit("|", 2)[-2].strip() for line in text.splitlines() if line.startswith("| ") and line.count("|") >= 5]
    assert {"held", "unclear", "did not hold"} & set(verdicts)


def test_report_refuses_repeated_seeds(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--seeds", "1", "1"])
    assert "expected distinct seeds >= 0, got [1, 1]" in capsys.readouterr().err


def test_a_run_is_reproducible_from_its_seed_in_any_process(quick_report, tmp_path):
    """The quick report ran its runs in worker processes; the same run here, in this process, agrees exactly."""
    report = json.loads((quick_report / "report.json").read_text())
    sweep = report["experiments"]["control_rate"]
    tau, seed = sweep["spectrum"]["tau_m"], sweep["spectrum"]["seed"]
    assert report["meta"]["machine"]["jobs"] == 2
    settings = QUICK.replace(cache_dir=str(tmp_path))
    spec = experiments.RunSpec(seed, "events", ("sweep", "BSNN diagonal", tau), "ce", settings.epochs_sweep, record_eigenvalues=True)
    again = experiments.train_and_test(settings, experiments.DataCache(settings), spec)
    assert again["accuracy"] == sweep["accuracy"]["BSNN diagonal"][settings.taus.index(tau)][0]
    recorded = sweep["spectrum"]["layers"]["BSNN diagonal"]
    assert again["eigen_after"] == {layer: v["after"] for layer, v in recorded.items()}
    assert again["eigen_after"] != again["eigen_before"]  # the eigenvalues did train


def test_firing_patterns_match_a_hand_computed_lif_neuron():
    result = experiments.firing_patterns(steps=8, input_current=1.2)
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
