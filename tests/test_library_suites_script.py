"""``tests/scripts/library_suites.py`` (docs/adapters.md) refuses a wrong CHECKOUT with a clear message."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "scripts" / "library_suites.py"


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("library_suites_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_checkout_that_is_no_directory_exits_non_zero_saying_so(script, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        script.main(["snntorch", str(tmp_path / "no-such-clone")])
    assert refused.value.code == 2
    assert "not a directory" in capsys.readouterr().err


def test_a_checkout_without_the_library_tests_exits_non_zero_naming_them(script, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        script.main(["spikingjelly", str(tmp_path)])  # a folder, but no clone of SpikingJelly
    assert refused.value.code == 2
    assert "found none of ['test/activation_based/test_monitor.py'" in capsys.readouterr().err
