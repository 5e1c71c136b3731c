"""Numbers computed from a network's neurons, shared by the monitoring callbacks and the report.

Plain tensors in, plain numbers out; nothing here trains, logs or draws.

- :func:`eigenvalue_summary`: regime fractions and range of a set of eigenvalues;
- :func:`eigenvalue_regimes`: the same per layer, with the fractions held at the clamp bounds;
- :func:`eigenvalue_bounds`: the clamp bounds of a bifurcation layer;
- :func:`pick_neurons`: which neurons of a layer a figure shows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn


def eigenvalue_summary(eigenvalues: torch.Tensor, tol: float = 1e-2) -> dict[str, float]:
    """Regime fractions and range of a set of (real) eigenvalues of the membrane dynamics: dissipative
    (< -tol), conservative (``|lambda| <= tol``), diffusive (> tol), and min / mean / max.

    >>> eigenvalue_summary(torch.tensor([-0.5, 0.0, 0.1, -0.2]))["dissipative"]
    0.5
    """
    lam = eigenvalues.flatten()
    return {
        "dissipative": float((lam < -tol).float().mean()),
        "conservative": float((lam.abs() <= tol).float().mean()),
        "diffusive": float((lam > tol).float().mean()),
        "min": float(lam.min()),
        "mean": float(lam.mean()),
        "max": float(lam.max()),
    }


def eigenvalue_regimes(
    spectra: Mapping[str, Sequence[float]], tol: float, bounds: tuple[float, float]
) -> dict[str, dict[str, float]]:
    """Per layer of ``spectra``: :func:`eigenvalue_summary`, the count, and the fractions of eigenvalues
    sitting at the lower (``at_lower``) and upper (``at_upper``) clamp bound.

    >>> eigenvalue_regimes({"hidden": [-1.0, -0.5, 0.2]}, tol=1e-2, bounds=(-1.0, 0.2))["hidden"]["at_lower"]
    0.3333333333333333
    """
    lo, hi = bounds
    edge = 1e-6 * (hi - lo)
    out = {}
    for name, values in spectra.items():
        lam = torch.tensor(values, dtype=torch.float64)
        out[name] = {
            **eigenvalue_summary(lam, tol=tol),
            "count": len(values),
            "at_lower": float((lam <= lo + edge).double().mean()),
            "at_upper": float((lam >= hi - edge).double().mean()),
        }
    return out


def eigenvalue_bounds(model: nn.Module, name: str) -> tuple[float, float]:
    """The (lo, hi) clamp of the eigenvalues of the bifurcation layer ``name`` of ``model`` (one of the
    names :func:`bsnn_lightning.convert.bifurcation_eigenvalues` returns).

    >>> from bsnn_lightning import BifurcationNeuron
    >>> eigenvalue_bounds(nn.Sequential(BifurcationNeuron(bounds=(-0.5, 0.1), eigen_init=(-0.5, 0.0))), "0")
    (-0.5, 0.1)
    """
    lo, hi = model.get_submodule(name).bsnn_settings.bounds
    return float(lo), float(hi)


def pick_neurons(counts: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` neuron indices spread over the ranking by spike count (most active first); when at least ``k``
    neurons fired, only those that fired are chosen from.

    >>> pick_neurons(torch.tensor([0.0, 5.0, 1.0, 3.0]), 2).tolist()
    [1, 2]
    """
    order = torch.argsort(counts, descending=True, stable=True)
    active = int((counts > 0).sum())
    pool = order[:active] if active >= k else order
    k = min(k, len(pool))
    positions = torch.linspace(0, len(pool) - 1, k).round().long()
    return pool[positions]
