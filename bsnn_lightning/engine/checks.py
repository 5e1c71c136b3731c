"""Value checks (NaN / Inf) that never stall an accelerator on the hot path.

Reading a value back to the host (``bool(t)``, ``t.item()``) makes the CPU wait for the GPU to finish its
queue, which costs a training step its overlap of launch and compute. So every value check here has a mode:

- ``"sync"``: evaluate now and raise at once, naming the culprit (costless on the CPU, where nothing is queued);
- ``"defer"``: fold the check into a flag that stays on the device (no host read); :func:`raise_deferred`
  reads every flag once (one sync), clears them and raises naming what failed. Lightning code calls it once
  per logging interval (the ``ConvertNeurons`` callback and ``SpikingClassifier`` do);
- ``"off"``: no check;
- ``"auto"`` (the default everywhere): ``"sync"`` for CPU tensors, ``"defer"`` on any other device.

Shape and dtype checks are not value checks: they cost nothing and always run at once.
"""

from __future__ import annotations

import torch

# the checks run out of sight of any op counter: a check is not part of the model, so it adds nothing to a count
from .torch_modes import unobserved  # noqa: F401

MODES = ("auto", "sync", "defer", "off")

#: (what was checked, device) -> 0-d bool tensor on that device: True once a non-finite value was seen
_DEFERRED: dict[tuple[str, torch.device], torch.Tensor] = {}


def resolve(mode: "str | bool", device: torch.device) -> str:
    """The mode a check on ``device`` runs in (``True`` is ``"sync"``, ``False`` is ``"off"``)."""
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
    sum, finite values cannot overflow into a false alarm."""
    flags = []
    for tensor in tensors:
        if tensor.numel():
            low, high = torch.aminmax(tensor.detach())
            flags.append(~(torch.isfinite(low) & torch.isfinite(high)))
    if not flags:
        return torch.zeros((), dtype=torch.bool, device=tensors[0].device if tensors else None)
    return torch.stack(flags).any()


def defer(what: str, bad: torch.Tensor) -> None:
    """Remember (on the device) whether ``bad`` was True, under ``what``, until :func:`raise_deferred`."""
    key = (what, bad.device)
    previous = _DEFERRED.get(key)
    _DEFERRED[key] = bad.detach() if previous is None else (previous | bad.detach())


def raise_deferred() -> None:
    """Read every deferred flag (one host sync per device), forget them, and raise if any was set."""
    if not _DEFERRED:
        return
    pending = list(_DEFERRED.items())
    _DEFERRED.clear()
    keys = [key for key, _ in pending]
    flags = torch.stack([flag.to("cpu", non_blocking=False) for _, flag in pending]).tolist()
    failed = sorted({what for (what, _), bad in zip(keys, flags) if bad})
    if failed:
        raise ValueError(
            "non-finite values (NaN or Inf) were found since the last check in: " + "; ".join(failed)
            + ". The checks were deferred to avoid stalling the device; run with check_finite='sync' to stop "
            "at the first one with a diagnosis"
        )


def raise_deferred_every(step: int, every: int) -> None:
    """:func:`raise_deferred` on every ``every``-th step (a training loop's logging interval)."""
    if every and step % every == 0:
        raise_deferred()


def pending() -> int:
    """How many deferred flags wait to be read."""
    return len(_DEFERRED)
