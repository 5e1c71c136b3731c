"""Value checks (NaN / Inf) that never stall an accelerator on the hot path.

Reading a value back to the host (``bool(t)``, ``t.item()``) makes the CPU wait for the GPU to finish its
queue, which costs a training step its overlap of launch and compute. So every value check here has a mode:

- ``"sync"``: evaluate now and raise at once, naming the culprit (costless on the CPU, where nothing is queued);
- ``"defer"``: fold the check into a flag that stays on the device (no host read); :func:`raise_deferred`
  reads the flags once (one sync), clears them and raises naming what failed. Lightning code calls it once
  per logging interval (the ``ConvertNeurons`` callback and ``SpikingClassifier`` do);
- ``"off"``: no check;
- ``"auto"`` (the default everywhere): ``"sync"`` for CPU tensors, ``"defer"`` on any other device.

Deferred flags belong to an owner: the model whose step raised them. Whatever runs a model's steps says so
with :func:`owned_by` (``SpikingClassifier`` around each step, ``ConvertNeurons`` around each batch of any
LightningModule); a flag deferred there is read only by ``raise_deferred(model)`` (or by a bare
:func:`raise_deferred`, which reads them all), so one model's NaN is never raised in another model's loop,
and :func:`clear` at the start of a fit drops what an interrupted run of the same model left behind.
Flags deferred outside any :func:`owned_by` have no owner (a plain training loop: call
:func:`raise_deferred` yourself). Knowing the owner is host bookkeeping only (a context variable and a
dictionary keyed by the object): nothing reads the device.

Shape and dtype checks are not value checks: they cost nothing and always run at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref

import torch

# the checks run out of sight of any op counter: a check is not part of the model, so it adds nothing to a count
from .torch_modes import unobserved  # noqa: F401

MODES = ("auto", "sync", "defer", "off")

Flags = dict[tuple[str, torch.device], torch.Tensor]
#: owner (weakly held: a model that is gone takes its flags with it) -> (what was checked, device) -> 0-d bool
#: tensor on that device, True once a non-finite value was seen
_DEFERRED: "weakref.WeakKeyDictionary[object, Flags]" = weakref.WeakKeyDictionary()
#: the same, for checks deferred outside any owned_by()
_UNOWNED: Flags = {}
#: the owner of the checks deferred now (set by owned_by)
_OWNER: contextvars.ContextVar = contextvars.ContextVar("bsnn_lightning_check_owner", default=None)


def resolve(mode: "str | bool", device: torch.device) -> str:
    """The mode a check on ``device`` runs in (``True`` is ``"sync"``, ``False`` is ``"off"``).

    >>> resolve("auto", torch.device("cpu")), resolve("auto", torch.device("cuda")), resolve(False, torch.device("cpu"))
    ('sync', 'defer', 'off')
    """
    if mode is True:
        return "sync"
    if mode is False:
        return "off"
    if mode not in MODES:
        raise ValueError(f"expected check_finite to be one of {list(MODES)} (or a bool), got {mode!r}")
    if mode == "auto":
        return "sync" if device.type == "cpu" else "defer"
    return mode


def non_finite(*tensors: torch.Tensor) -> torch.Tensor:
    """A 0-d bool tensor on the tensors' device: True if any of them holds a NaN or an Inf (no host read).

    One min/max reduction per tensor: NaN propagates through both, +-Inf shows in one of them, and, unlike a
    sum, finite values cannot overflow into a false alarm.

    >>> non_finite(torch.ones(3), torch.tensor([1.0, float("inf")]))
    tensor(True)
    >>> non_finite(torch.full((2,), 3e38), torch.empty(0))  # large but finite; an empty tensor has no value
    tensor(False)
    """
    flags = []
    for tensor in tensors:
        if tensor.numel():
            low, high = torch.aminmax(tensor.detach())
            flags.append(~(torch.isfinite(low) & torch.isfinite(high)))
    if not flags:
        return torch.zeros((), dtype=torch.bool, device=tensors[0].device if tensors else None)
    return torch.stack(flags).any()


@contextlib.contextmanager
def owned_by(owner):
    """Checks deferred inside this block belong to ``owner`` (a model, or any object that can be weakly
    referenced); :func:`raise_deferred` with that owner reads them.

    >>> from torch import nn
    >>> a, b = nn.Linear(1, 1), nn.Linear(1, 1)
    >>> with owned_by(a):
    ...     defer("a's output", torch.tensor(True))
    >>> raise_deferred(b)  # b's loop: a's flag is not b's
    >>> pending(a)
    1
    >>> clear(a)
    """
    token = enter(owner)
    try:
        yield owner
    finally:
        leave(token)


def enter(owner) -> contextvars.Token:
    """Start :func:`owned_by` ``owner`` without a ``with`` block (for hooks that start and end a step);
    end it with :func:`leave`.

    >>> from torch import nn
    >>> model = nn.Linear(1, 1)
    >>> token = enter(model)  # a step begins
    >>> defer("the step's loss", torch.tensor(False))
    >>> leave(token)  # and ends
    >>> pending(model)
    1
    >>> raise_deferred(model)  # the flag was False: nothing to raise
    """
    weakref.ref(owner)  # refuse, here and not at the first check, an owner that cannot be weakly held
    return _OWNER.set(owner)


def leave(token: contextvars.Token) -> None:
    """End what :func:`enter` began.

    >>> from torch import nn
    >>> token = enter(nn.Linear(1, 1))
    >>> leave(token)
    """
    _OWNER.reset(token)


def defer(what: str, bad: torch.Tensor) -> None:
    """Remember (on the device) whether ``bad`` was True, under ``what`` and the current owner (see
    :func:`owned_by`), until :func:`raise_deferred`.

    >>> defer("layer 1", torch.tensor(False)); defer("layer 1", torch.tensor(False))
    >>> pending()  # one flag per (what, device), or-ed over the calls
    1
    >>> clear()
    """
    owner = _OWNER.get()
    flags = _UNOWNED if owner is None else _DEFERRED.setdefault(owner, {})
    key = (what, bad.device)
    previous = flags.get(key)
    flags[key] = bad.detach() if previous is None else (previous | bad.detach())


def raise_deferred(owner=None) -> None:
    """Read ``owner``'s deferred flags (every flag when ``owner`` is None; one host sync per device),
    forget them, and raise if any was set.

    >>> defer("layer 1", torch.tensor(True))
    >>> raise_deferred()
    Traceback (most recent call last):
    ...
    ValueError: non-finite values (NaN or Inf) were found since the last check in: layer 1. The checks were deferred to avoid stalling the device; run with check_finite='sync' to stop at the first one with a diagnosis
    >>> pending()  # read and forgotten
    0
    """
    # a flag on the meta device (a model traced there for its shapes) holds no value to read: it is dropped
    pending = [(key, flag) for key, flag in _take(owner) if flag.device.type != "meta"]
    if not pending:
        return
    keys = [key for key, _ in pending]
    flags = torch.stack([flag.to("cpu", non_blocking=False) for _, flag in pending]).tolist()
    failed = sorted({what for (what, _), bad in zip(keys, flags) if bad})
    if failed:
        whose = "" if owner is None else f" by {type(owner).__name__}"
        raise ValueError(
            f"non-finite values (NaN or Inf) were found{whose} since the last check in: " + "; ".join(failed)
            + ". The checks were deferred to avoid stalling the device; run with check_finite='sync' to stop "
            "at the first one with a diagnosis"
        )


def raise_deferred_every(step: int, every: int, owner=None) -> None:
    """:func:`raise_deferred` (``owner``'s flags) on every ``every``-th step (a training loop's logging
    interval).

    >>> defer("layer 1", torch.tensor(False))
    >>> raise_deferred_every(step=3, every=50); pending()  # not a logging step: left unread
    1
    >>> raise_deferred_every(step=50, every=50); pending()
    0
    """
    if every and step % every == 0:
        raise_deferred(owner)


def clear(owner=None) -> None:
    """Forget ``owner``'s deferred flags unread (every flag when ``owner`` is None): what an interrupted
    run left behind, at the start of the next fit.

    >>> defer("layer 1", torch.tensor(True))
    >>> clear(); pending()
    0
    """
    _take(owner)


def pending(owner=None) -> int:
    """How many deferred flags of ``owner`` (of anyone when ``owner`` is None) wait to be read.

    >>> defer("layer 1", torch.tensor(False)); defer("layer 2", torch.tensor(False))
    >>> pending()
    2
    >>> clear()
    """
    if owner is None:
        return len(_UNOWNED) + sum(len(flags) for flags in _DEFERRED.values())
    return len(_DEFERRED.get(owner, {}))


def _take(owner) -> list:
    """Remove and return ``owner``'s flags (everyone's when None) as ``[((what, device), flag), ...]``."""
    if owner is not None:
        return list(_DEFERRED.pop(owner, {}).items())
    taken = list(_UNOWNED.items())
    _UNOWNED.clear()
    for flags in list(_DEFERRED.values()):
        taken += flags.items()
    _DEFERRED.clear()
    return taken
