"""``convert`` and the model-wide helpers built on the adapter registry."""

from __future__ import annotations

from dataclasses import fields
from typing import Iterator

import torch
from torch import nn

from .adapters import Adapter, adapter_for, registered_adapters, reset_module
from .neuron_params import (
    BIFURCATION_OPTIONS,
    DYNAMICS,
    IMP_MODES,
    MethodNeuron,
    MethodSettings,
    Recording,
    engine_backends,
    settings_keywords,
)
from .user_warnings import warn_user

IMP_CHOICES = (*IMP_MODES, "none")


#: what ``convert`` and ``ConvertNeurons`` accept beyond a field's own values (added to the fields' help)
CONVERT_NOTES = {
    "imp": ' ("none" removes one)',
    "backend": ', or "native": the library\'s own neuron loop, untouched (converting back to it needs '
    'dynamics="lif" and no IMP)',
    "step_mode": '; for snnTorch nn.Sequential models with init_hidden=True "m" also folds time into the batch for '
    "the layers between neurons; for SpikingJelly it is functional.set_step_mode",
}


@settings_keywords(CONVERT_NOTES)
def convert(
    model: nn.Module,
    settings: MethodSettings | str | None = None,
    *legacy: str | None,
    example_input: torch.Tensor | None = None,
    **changes,
) -> nn.Module:
    """Give every spiking neuron in ``model`` the requested settings (dynamics, IMP, backend, ...), in place.

    Works on this package's neurons and on snnTorch and SpikingJelly models (see
    :mod:`bsnn_lightning.adapters`): library neurons keep their object, class lineage and state-dict keys.

    ``settings``: a :class:`~bsnn_lightning.neuron_params.MethodSettings` that every neuron gets as a whole (an
    ``imp`` of None there removes an IMP, a ``step_mode`` of None leaves it), or the name of the dynamics
    (``convert(net, "bifurcation")``), or None. (The old positional ``imp`` and ``backend`` after it still work,
    with a ``DeprecationWarning``, for one release.) The keyword settings below change it, each one
    through :meth:`MethodSettings.updated`, and each left at None keeps what the neuron has. The bifurcation
    options (``structure``, ``granularity``, ``eigen_init``, ``bounds``) apply to ``dynamics="bifurcation"``.
    The ``check_finite`` check is read once per logging interval by ``ConvertNeurons`` / ``SpikingClassifier``,
    or by :func:`bsnn_lightning.engine.checks.raise_deferred`.

    Per-neuron and per-channel parameters need each neuron's input shape: give ``example_input`` (one
    batch, as ``model`` takes it) unless the model has already run a forward pass. Returns the model (the
    same object unless the model itself was a neuron that had to be replaced). Raises if the model holds no
    neuron that a registered adapter knows.

    >>> import torch, bsnn_lightning as bl
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), bl.LIFNeuron())
    >>> net = bl.convert(net, "bifurcation", imp="channel", example_input=torch.rand(8, 2, 4))
    >>> type(net[1]).__name__, tuple(net[1].eigenvalues.shape), tuple(net[1].imp.shape)
    ('BifurcationNeuron', (3,), (3,))
    """
    changes, options = requested_changes(settings, {**_legacy_positional(legacy, changes), **changes})
    step_mode = changes.get("step_mode")
    # a neuron object may sit at several places (one layer applied twice, or shared by two submodules): it is
    # planned and converted once, and whatever replaces it takes every one of its places
    planned: dict[int, tuple] = {}
    for name, places, module, adapter in _neurons_with_places(model):
        try:
            plan = adapter.plan(module, _settings_for(module, adapter, changes, options))
        except ValueError as error:
            raise ValueError(f"cannot convert {name or type(module).__name__!r}: {error}") from None
        planned[id(module)] = (name, places, module, adapter, plan)
    if example_input is None:  # checked before any neuron changes, so this refusal too leaves the model untouched
        _refuse_unknown_shapes(
            [name or type(m).__name__ for name, _, m, a, plan in planned.values() if _waits_for_shape(m, a, plan)]
        )
    if not planned:
        raise ValueError(
            f"convert found no spiking neuron in {type(model).__name__}; known neuron libraries: "
            f"{registered_adapters()}"
        )
    parameters_before = {id(p) for p in model.parameters()}
    used: list[Adapter] = []
    for _, places, module, adapter, plan in planned.values():
        new = adapter.apply(module, plan)
        if adapter not in used:
            used.append(adapter)
        if new is not module:
            for parent, name in places:
                if parent is None:
                    model = new
                else:
                    parent._modules[name] = new
    for adapter in used:
        adapter.after_convert(model, step_mode)
    if example_input is not None:
        materialize(model, example_input)
    else:  # the check above foresaw every neuron's shape; this one keeps the promise if it ever did not
        _refuse_unknown_shapes(
            [n for n, m, _ in _named_neurons(model) if isinstance(m, MethodNeuron) and m.bsnn_needs_shape()]
        )
    _warn_if_optimizers_exist(model, parameters_before)
    return model


def _waits_for_shape(module: nn.Module, adapter: Adapter, plan) -> bool:
    """True if ``module``, converted by ``plan`` without an example input, would still lack a per-neuron or
    per-channel parameter because its input shape is unknown (what ``MethodNeuron.bsnn_needs_shape`` would
    say after the conversion)."""
    settings = plan.settings
    if settings is None or adapter.known_sample_shape(module, settings) is not None:
        return False
    imp_missing = settings.imp in ("neuron", "channel") and getattr(module, "imp", None) is None
    eigenvalues_missing = settings.dynamics == "bifurcation" and getattr(module, "eigenvalues", None) is None
    return imp_missing or eigenvalues_missing


def _refuse_unknown_shapes(pending: list[str]) -> None:
    if pending:
        raise ValueError(
            f"neurons {pending[:3]}{'...' if len(pending) > 3 else ''} need their input shape for per-neuron or "
            "per-channel parameters: pass one batch as convert(..., example_input=batch) or "
            "ConvertNeurons(example_input=batch), or set the LightningModule's example_input_array, or run the "
            "model once before converting"
        )


_NO_NATIVE = (
    "backend='native' keeps the library's own neuron loop, which has no bifurcation dynamics, IMP or "
    "sequence mode; choose backend 'torch', 'triton', 'cpu' or 'auto' for those"
)


def _legacy_positional(legacy: tuple, changes: dict) -> dict:
    """``convert(model, dynamics, imp, backend)``, the old positional form: deprecated, kept for one release."""
    if not legacy:
        return {}
    if len(legacy) > 2:
        raise TypeError(f"convert takes at most 4 positional arguments (model, dynamics, imp, backend), got {2 + len(legacy)}")
    given = dict(zip(("imp", "backend"), legacy))
    twice = sorted(name for name in given if changes.get(name) is not None)
    if twice:
        raise TypeError(f"convert got {twice} both by position and as keywords")
    warn_user(
        f"convert(model, dynamics, {', '.join(given)}) with {' and '.join(given)} by position is deprecated: give "
        f"{' and '.join(f'{k}={v!r}' for k, v in given.items())} as keywords",
        DeprecationWarning,
    )
    return given


def requested_changes(settings: MethodSettings | str | None, changes: dict) -> tuple[dict, list[str]]:
    """The settings that ``convert(model, settings, **changes)`` changes (None values dropped), checked once for
    the whole model, and the bifurcation options among the keywords.

    >>> requested_changes("bifurcation", {"bounds": (-0.5, 0.2), "imp": None})
    ({'dynamics': 'bifurcation', 'bounds': (-0.5, 0.2)}, ['bounds'])
    >>> requested_changes(None, {"backend": "native", "imp": "channel"})
    Traceback (most recent call last):
    ...
    ValueError: backend='native' keeps the library's own neuron loop, which has no bifurcation dynamics, IMP or sequence mode; choose backend 'torch', 'triton', 'cpu' or 'auto' for those
    """
    changes = {name: value for name, value in changes.items() if value is not None}
    known = [f.name for f in fields(MethodSettings)]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ValueError(f"unknown neuron settings {unknown}; expected some of {known}")
    options = sorted(set(changes) & set(BIFURCATION_OPTIONS))
    if isinstance(settings, str):  # convert(net, "bifurcation"): the dynamics, as its second argument always took
        if "dynamics" in changes:
            raise ValueError(f"got the dynamics twice: {settings!r} and dynamics={changes['dynamics']!r}")
        changes = {"dynamics": settings, **changes}
    elif isinstance(settings, MethodSettings):
        whole = {name: getattr(settings, name) for name in known}
        whole["imp"] = "none" if settings.imp is None else settings.imp
        if settings.step_mode is None:
            del whole["step_mode"]
        changes = {**whole, **changes}
    elif settings is not None:
        raise TypeError(
            f"expected settings as a MethodSettings, a dynamics name {list(DYNAMICS)} or None, got {settings!r}"
        )
    dynamics, imp, backend, step_mode = (changes.get(name) for name in ("dynamics", "imp", "backend", "step_mode"))
    if step_mode not in (None, "s", "m"):
        raise ValueError(f"expected step_mode 's', 'm' or None, got {step_mode!r}")
    if dynamics is not None and dynamics not in DYNAMICS:
        raise ValueError(f"expected dynamics to be one of {list(DYNAMICS)} or None, got {dynamics!r}")
    if imp is not None and imp not in IMP_CHOICES:
        raise ValueError(f"expected imp to be one of {list(IMP_CHOICES)} or None, got {imp!r}")
    backends = (*engine_backends(), "native")
    if backend is not None and backend not in backends:
        raise ValueError(f"expected backend to be one of {list(backends)} or None, got {backend!r}")
    if backend == "native" and (dynamics == "bifurcation" or imp not in (None, "none") or options):
        raise ValueError(_NO_NATIVE)
    return changes, options


def _settings_for(module, adapter: Adapter, changes: dict, options: list[str]):
    """The settings ``module`` gets, or None for "back to the library's own class" (``backend="native"``)."""
    step_mode = changes.get("step_mode")
    if changes.get("backend") == "native":
        if step_mode == "m" and not adapter.library_step_mode:
            raise ValueError(_NO_NATIVE)
        return None
    if adapter.library_step_mode:  # the library keeps its step mode: after_convert sets it
        changes = {name: value for name, value in changes.items() if name != "step_mode"}
    settings = adapter.settings_of(module).updated(**changes)
    if options and settings.dynamics != "bifurcation":
        raise ValueError(f"options {options} apply to dynamics='bifurcation' only")
    return settings


def materialize(model: nn.Module, example_input: torch.Tensor) -> None:
    """Run one dry forward pass to learn every neuron's input shape and create its shaped parameters.

    Runs without gradients in eval mode, then restores the training flag and resets all neuron states.

    >>> from bsnn_lightning import LIFNeuron
    >>> net = nn.Sequential(nn.Linear(4, 3), LIFNeuron(imp="neuron"))
    >>> net[1].imp is None
    True
    >>> materialize(net, torch.rand(2, 1, 4))
    >>> tuple(net[1].imp.shape), net[1].v is None
    ((3,), True)
    """
    hooks = []
    for _, module, adapter in _named_neurons(model):
        if isinstance(module, MethodNeuron) and module.bsnn_needs_shape():
            hooks.append(module.register_forward_pre_hook(_record_shape(adapter)))
    if not hooks:
        return
    was_training = model.training
    try:
        model.eval()
        reset_states(model)
        with torch.no_grad():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
        reset_states(model)


def reset_states(model: nn.Module) -> None:
    """Reset every neuron's state (any registered library), and the state of the libraries' other stateful
    modules (SpikingJelly's ``MemoryModule`` layers, as ``functional.reset_net`` does), so the next call starts
    a new sequence.

    >>> from bsnn_lightning import BifurcationNeuron
    >>> net = nn.Sequential(nn.Linear(4, 3), BifurcationNeuron(shape=(3,)))
    >>> _ = net(torch.rand(2, 1, 4))
    >>> net[1].v is None
    False
    >>> reset_states(net)
    >>> net[1].v is None
    True
    """
    for module in model.modules():
        reset_module(module)


def spiking_neurons(model: nn.Module) -> Iterator[tuple[str, nn.Module, Adapter]]:
    """``(qualified name, module, adapter)`` for every neuron in ``model`` that an adapter knows.

    >>> from bsnn_lightning import BifurcationNeuron
    >>> net = nn.Sequential(nn.Linear(4, 3), BifurcationNeuron(shape=(3,)))
    >>> [(name, type(module).__name__) for name, module, _ in spiking_neurons(net)]
    [('1', 'BifurcationNeuron')]
    """
    return _named_neurons(model)


def neuron_param_groups(model: nn.Module, weight_decay: float | None = None) -> list[dict]:
    """Optimizer parameter groups: weight decay on the weights, none on the neurons' own parameters.

    Neuron parameters (IMP, eigenvalues, learnable thresholds and time constants) set the dynamics; decaying
    them towards 0 would pull the IMP to v_reset and the eigenvalues to the conservative regime. With
    ``weight_decay=None`` the first group takes the optimizer's own ``weight_decay`` setting.

    >>> import torch, bsnn_lightning as bl
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), bl.LIFNeuron(imp="layer"))
    >>> opt = torch.optim.AdamW(bl.neuron_param_groups(net), lr=1e-3, weight_decay=0.06)
    >>> [g["weight_decay"] for g in opt.param_groups], [len(g["params"]) for g in opt.param_groups]
    ([0.06, 0.0], [2, 1])
    """
    no_decay = {id(p) for _, m, a in _named_neurons(model) for p in a.neuron_parameters(m)}
    decay_params = [p for p in model.parameters() if p.requires_grad and id(p) not in no_decay]
    plain = [p for p in model.parameters() if p.requires_grad and id(p) in no_decay]
    groups = [{"params": decay_params} if weight_decay is None else {"params": decay_params, "weight_decay": weight_decay}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    return groups


PARAMETER_KINDS = ("neuron", "imp", "norm", "bias")
"""What :func:`decay_param_groups` can leave undecayed or out of the optimizer: ``"neuron"`` every neuron's own
parameters (IMP, eigenvalues, learnable thresholds and time constants), ``"imp"`` the IMPs only, ``"norm"`` the
parameters of normalisation layers (batch, group, layer and instance norm, and their subclasses), ``"bias"``
the biases of every other layer."""

_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def decay_param_groups(
    model: nn.Module,
    weight_decay: float | None = None,
    no_decay: tuple[str, ...] | list[str] = ("neuron",),
    exclude: tuple[str, ...] | list[str] = (),
) -> list[dict]:
    """Optimizer parameter groups with weight decay on everything but the kinds named in ``no_decay``
    (:data:`PARAMETER_KINDS`); parameters of a kind in ``exclude`` are left out of the optimizer altogether
    (they keep their initial values, as a parameter created after the optimizer was built does).

    ``no_decay=("neuron",)`` gives the groups of :func:`neuron_param_groups`; ``("norm", "bias", "imp")`` those
    of an mmengine optimizer with ``norm_decay_mult=0, bias_decay_mult=0`` and a zero-decay key for the IMP.
    With ``weight_decay=None`` the decayed group takes the optimizer's own ``weight_decay`` setting.

    >>> import torch
    >>> from bsnn_lightning import LIFNeuron
    >>> from bsnn_lightning.convert import decay_param_groups
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), LIFNeuron(imp="layer"))
    >>> groups = decay_param_groups(net, no_decay=["norm", "bias", "imp"])
    >>> [(g.get("weight_decay", "default"), len(g["params"])) for g in groups]
    [('default', 1), (0.0, 4)]
    """
    no_decay, exclude = _kinds("no_decay", no_decay), _kinds("exclude", exclude)
    kinds = _parameter_kinds(model)
    decay, plain, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        found = kinds.get(id(p), set())
        if found & exclude:
            continue
        (plain if found & no_decay else decay).append(p)
    groups = [{"params": decay} if weight_decay is None else {"params": decay, "weight_decay": weight_decay}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    return groups


def unoptimized_parameters(model: nn.Module, optimizers, exclude: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The qualified names of the neurons' trainable parameters (IMP, eigenvalues, coupling basis, learnable
    thresholds and time constants) that none of ``optimizers`` holds, leaving out those of a kind in ``exclude``
    (:data:`PARAMETER_KINDS`, left out of the optimizer on purpose). A parameter that :func:`convert` or a
    neuron's first forward created after the optimizer was built is one: it would keep its initial value.

    >>> from bsnn_lightning import BifurcationNeuron
    >>> net = nn.Sequential(nn.Linear(4, 3), BifurcationNeuron(shape=(3,)))
    >>> unoptimized_parameters(net, [torch.optim.SGD(net[0].parameters(), lr=0.1)])
    ['1.eigenvalues']
    """
    exclude = _kinds("exclude", exclude)
    held = {id(p) for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]}
    neuron_params = {id(p) for _, m, a in _named_neurons(model) for p in a.neuron_parameters(m)}
    kinds = _parameter_kinds(model)
    return [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and id(p) in neuron_params and id(p) not in held and not kinds.get(id(p), set()) & exclude
    ]


def check_optimized(model: nn.Module, optimizers, exclude: tuple[str, ...] | list[str] = ()) -> None:
    """Raise naming the neurons' trainable parameters that no optimizer holds (see :func:`unoptimized_parameters`).

    >>> import torch, bsnn_lightning as bl
    >>> from bsnn_lightning.convert import unoptimized_parameters
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), bl.LIFNeuron())
    >>> optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> net = bl.convert(net, imp="layer")  # adds 1.imp, which the optimizer does not hold
    >>> unoptimized_parameters(net, [optimizer])
    ['1.imp']
    """
    if not optimizers:
        return  # nothing trains (a module with no optimizer, or one that builds its own): nothing to compare with
    missing = unoptimized_parameters(model, optimizers, exclude)
    if missing:
        raise ValueError(
            f"no optimizer holds the neuron parameters {missing}: they were created after the optimizers were built "
            "(by convert, or by a neuron's first forward without example_input), so they would never train. Convert "
            "before the optimizers are built (the ConvertNeurons callback does, at setup; pass example_input so that "
            "shaped parameters exist then), or build the optimizers again; to leave parameters out on purpose, set "
            "requires_grad=False on them"
        )


def _warn_if_optimizers_exist(model: nn.Module, parameters_before: set[int]) -> None:
    """Warn if convert added parameters to a LightningModule whose Trainer has built its optimizers already."""
    added = [name for name, p in model.named_parameters() if id(p) not in parameters_before and p.requires_grad]
    if not added:
        return
    for module in model.modules():
        trainer = module.__dict__.get("_trainer")  # a LightningModule attached to a Trainer
        if trainer is not None and getattr(trainer, "optimizers", None):
            warn_user(
                f"convert added the parameters {added} after the Trainer built its optimizers, which do not hold them: "
                "they will not train (and the first training step refuses). Convert before the optimizers are built "
                "(the ConvertNeurons callback converts at setup), or build them again"
            )
            return


def _parameter_kinds(model: nn.Module) -> dict[int, set[str]]:
    """``id(parameter) -> kinds`` (:data:`PARAMETER_KINDS`) for every parameter of ``model`` with a kind."""
    kinds: dict[int, set[str]] = {}
    for _, module, adapter in _named_neurons(model):
        for p in adapter.neuron_parameters(module):
            kinds.setdefault(id(p), set()).add("neuron")
        imp = getattr(module, "imp", None)
        if isinstance(imp, torch.Tensor):
            kinds.setdefault(id(imp), set()).add("imp")
    for module in model.modules():
        is_norm = isinstance(module, _NORM_LAYERS)
        for name, p in module.named_parameters(recurse=False):
            if is_norm:
                kinds.setdefault(id(p), set()).add("norm")
            elif name == "bias" and id(p) not in kinds:
                kinds.setdefault(id(p), set()).add("bias")
    return kinds


def _kinds(name: str, given) -> set[str]:
    if isinstance(given, str) or not all(isinstance(k, str) for k in given):
        raise TypeError(f"expected {name} to be a list of kinds from {list(PARAMETER_KINDS)}, got {given!r}")
    unknown = sorted(set(given) - set(PARAMETER_KINDS))
    if unknown:
        raise ValueError(f"expected {name} to name kinds from {list(PARAMETER_KINDS)}, got {unknown}")
    return set(given)


def set_monitoring(model: nn.Module, on: bool, membrane: bool = False) -> None:
    """Make every neuron record (or stop recording) its forward calls: the spikes and, with ``membrane``, the
    membrane potential after every step (neurons that run on the engine). Read them with :func:`recordings`
    or :func:`firing_rates`; turning monitoring off drops what was recorded.

    >>> from bsnn_lightning import BifurcationNeuron
    >>> net = nn.Sequential(nn.Linear(4, 3), BifurcationNeuron(shape=(3,)))
    >>> set_monitoring(net, True, membrane=True)
    >>> _ = net(torch.rand(5, 2, 4))
    >>> tuple(recordings(net)["1"].membrane.shape)
    (5, 2, 3)
    >>> set_monitoring(net, False)
    >>> recordings(net)
    {}
    """
    mode = ("membrane" if membrane else "spikes") if on else None
    for _, module, adapter in _named_neurons(model):
        adapter.set_monitor(module, mode)


def recordings(model: nn.Module) -> dict[str, Recording]:
    """What every monitored neuron kept of its last forward call (see :class:`~bsnn_lightning.neuron_params.Recording`).

    >>> from bsnn_lightning import BifurcationNeuron
    >>> net = nn.Sequential(nn.Linear(4, 3), BifurcationNeuron(shape=(3,)))
    >>> set_monitoring(net, True)
    >>> _ = net(torch.rand(5, 2, 4))
    >>> recordings(net)["1"].sequence, recordings(net)["1"].membrane
    (True, None)
    """
    found = {}
    for name, module, adapter in _named_neurons(model):
        recording = adapter.recording(module)
        if recording is not None:
            found[name] = recording
    return found


def firing_rates(model: nn.Module) -> dict[str, torch.Tensor]:
    """Mean firing rate (spikes per neuron per step) of every monitored neuron's last forward pass.

    >>> from bsnn_lightning import LIFNeuron
    >>> net = nn.Sequential(LIFNeuron(tau=2.0))
    >>> set_monitoring(net, True)
    >>> _ = net(torch.full((4, 1, 2), 2.5))  # above threshold after one step: fires at every step
    >>> firing_rates(net)
    {'0': tensor(1.)}
    """
    return {name: recording.spikes.float().mean() for name, recording in recordings(model).items()}


def bifurcation_eigenvalues(model: nn.Module) -> dict[str, torch.Tensor]:
    """The eigenvalues each bifurcation layer's forward pass uses (clamped to its bounds), flattened; the
    bounds of each are ``model.get_submodule(name).bsnn_settings.bounds``.

    >>> from bsnn_lightning import BifurcationNeuron
    >>> net = nn.Sequential(BifurcationNeuron(shape=(2,), eigen_init=(-0.5, -0.5)))
    >>> with torch.no_grad():
    ...     _ = net[0].eigenvalues.fill_(0.9)  # as if trained past the upper bound
    >>> bifurcation_eigenvalues(net)  # clamped to bounds (-1.0, 0.2)
    {'0': tensor([0.2000, 0.2000])}
    """
    spectra = {}
    for name, module, _ in _named_neurons(model):
        if isinstance(module, MethodNeuron) and module.eigenvalues is not None:
            spectra[name] = module.effective_eigenvalues()
    return spectra


def _record_shape(adapter):
    def hook(module, args):
        x = args[0]
        module.bsnn_materialize(adapter.sample_shape(module, x), x.device)

    return hook


def _named_neurons(model: nn.Module):
    for name, module in model.named_modules():
        adapter = adapter_for(module)
        if adapter is not None:
            yield name, module, adapter


def _neurons_with_places(model: nn.Module):
    """``(qualified name, places, module, adapter)`` for every neuron object in ``model``, once per object;
    ``places`` lists every ``(parent, attribute name)`` that holds it (``(None, "")`` for the model itself).
    A neuron's own children are not searched."""
    root = adapter_for(model)
    if root is not None:
        yield "", [(None, "")], model, root
        return
    found: dict[int, tuple] = {}
    visited: set[int] = set()

    def walk(prefix: str, parent: nn.Module) -> None:
        if id(parent) in visited:
            return
        visited.add(id(parent))
        for name, child in parent._modules.items():  # every place, not named_children's first one only
            if child is None:
                continue
            qualified = f"{prefix}.{name}" if prefix else name
            adapter = adapter_for(child)
            if adapter is None:
                walk(qualified, child)
            elif id(child) in found:
                found[id(child)][1].append((parent, name))
            else:
                found[id(child)] = (qualified, [(parent, name)], child, adapter)

    walk("", model)
    yield from found.values()
