"""The private torch API the package relies on (bsnn_lightning/engine/torch_modes.py), behaviour by behaviour,
against real modes; and the list of torch releases on which these tests passed."""

import contextlib

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from bsnn_lightning.engine import torch_modes


class _SeenOps(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(func)
        return func(*args, **(kwargs or {}))


def test_this_torch_release_is_one_the_private_api_was_checked_on():
    release = torch.__version__.split("+")[0]
    assert release in torch_modes.CHECKED_ON, (
        f"torch {release} is not in torch_modes.CHECKED_ON {torch_modes.CHECKED_ON}: run tests/test_torch_modes.py "
        "and the op-counter tests (tests/test_library_tools.py) with it, then add it"
    )


def test_nothing_observes_outside_any_mode():
    assert not torch_modes.ops_observed()


def test_a_dispatch_mode_observes():
    with FlopCounterMode(display=False):
        assert torch_modes.ops_observed()
    assert not torch_modes.ops_observed()


def test_a_function_mode_observes_but_a_default_device_does_not():
    with torch.device("cpu"):
        assert not torch_modes.ops_observed()
        with _SeenOps():
            assert torch_modes.ops_observed()


def test_fake_tensors_do_not_observe():
    from torch._subclasses.fake_tensor import FakeTensorMode  # the infrastructure mode torch.compile uses

    with FakeTensorMode():
        assert not torch_modes.ops_observed()


def test_unobserved_hides_operations_from_both_kinds_of_mode():
    x = torch.ones(4, 4)
    with FlopCounterMode(display=False) as flops, _SeenOps() as functions:
        x @ x
        counted, seen = flops.get_total_flops(), len(functions.seen)
        assert counted > 0 and seen > 0
        with torch_modes.unobserved():
            y = x @ x
        assert flops.get_total_flops() == counted and len(functions.seen) == seen
        assert torch_modes.ops_observed()  # the modes are back after the block
        x @ x
        assert flops.get_total_flops() == 2 * counted
    assert torch.equal(y, torch.full((4, 4), 4.0))  # and the hidden block computed


def test_the_cpu_backends_compiler_settings_exist_and_are_read():
    """The fused CPU backend's private inductor and fx entry points: each option name is one inductor knows (it
    refuses unknown ones), the size-symbol patch applies and restores, and the compiler lookup answers."""
    from torch._inductor import config
    from torch.fx.experimental import _config as fx_config

    assert set(torch_modes.EXACT_INDUCTOR_OPTIONS) <= set(config.get_config_copy())
    assert config.get_config_copy()["cpp.enable_floating_point_contract_flag"] in ("off", False, "fast", "on", True)
    before = fx_config.use_duck_shape
    with torch_modes.distinct_sizes():
        assert fx_config.use_duck_shape is False
    assert fx_config.use_duck_shape == before
    problem = torch_modes.cpp_compiler_problem()
    assert problem is None or problem.startswith("inductor found no C++ compiler")


def test_a_dispatch_mode_is_seen_by_the_cpu_backends_query():
    from torch.utils.flop_counter import FlopCounterMode

    assert not torch_modes.dispatch_observed()
    with FlopCounterMode(display=False):
        assert torch_modes.dispatch_observed()


def test_a_missing_compiler_is_named(monkeypatch, tmp_path):
    from torch._inductor import config

    missing = str(tmp_path / "missing" / "g++")
    # torch reads CXX once, into this setting where it has one; inductor's own patch restores it (a monkeypatch
    # of it, undone, left the setting hidden on torch 2.14.1, and later C++ compiles failed)
    setting = config.patch({"cpp.cxx": (None, missing)}) if hasattr(config.cpp, "cxx") else contextlib.nullcontext()
    monkeypatch.setenv("CXX", missing)
    with setting:
        problem = torch_modes.cpp_compiler_problem()
    assert problem is not None and problem.startswith(f"inductor found no C++ compiler (searched ['{missing}']")
