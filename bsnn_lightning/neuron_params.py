"""The new neuron parameters the methods add, created the same way for every library's neurons.

- the learnable initial membrane potential (IMP; Shen et al., NeurIPS 2024): per neuron (the shape of one
  sample), per channel, or per layer; initialised U(low, high) x threshold, by default U(0.4, 0.6);
- the eigenvalues of bifurcation dynamics (Zhang, Zhang & Zhou, JMLR 2021): spread evenly over
  ``eigen_init`` and shuffled over neurons, so a layer starts with a range of time scales;
- for coupled dynamics, the skew-symmetric generator of the orthogonal basis ``Q = exp(S - S^T)``.
"""

from __future__ import annotations

import math

import torch

IMP_MODES = ("neuron", "channel", "layer")
GRANULARITIES = ("neuron", "channel")


def granular_shape(mode: str, sample_shape: tuple[int, ...] | None, owner: str = "neuron") -> tuple[int, ...]:
    """The shape of a parameter that is per ``"layer"`` (``()``), per ``"channel"`` or per ``"neuron"``."""
    if mode == "layer":
        return ()
    if sample_shape is None:
        raise RuntimeError(f"{owner}: the input shape is unknown before materialize()")
    if mode == "channel":
        if not sample_shape:
            raise ValueError(f"{owner}: per-channel parameters need samples with a channel dimension, got shape []")
        return (sample_shape[0],)
    return tuple(sample_shape)


def initial_imp(shape: tuple[int, ...], imp_init: tuple[float, float], threshold: float, device=None) -> torch.Tensor:
    """U(low, high) x threshold."""
    low, high = imp_init
    return (torch.empty(shape).uniform_(low, high) * float(threshold)).to(device)


def initial_eigenvalues(shape: tuple[int, ...], eigen_init: tuple[float, float], device=None) -> torch.Tensor:
    """Evenly spread over ``eigen_init`` (the midpoint for a single value), in random order."""
    count = math.prod(shape)
    low, high = eigen_init
    spread = torch.linspace(low, high, count) if count > 1 else torch.tensor([(low + high) / 2])
    return spread[torch.randperm(count)].reshape(shape).to(device)


def coupling_matrix(basis: torch.Tensor, eigenvalues: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """``Q diag(1 + clamp(lambda)) Q^T`` with ``Q = matrix_exp(S - S^T)``: explicit eigenvalues, orthogonal Q."""
    q = torch.linalg.matrix_exp(basis - basis.transpose(0, 1))
    return q @ torch.diag(1 + eigenvalues.clamp(*bounds)) @ q.transpose(0, 1)


def mode_of(shape: tuple[int, ...]) -> str:
    """The IMP mode a stored IMP tensor of this shape was made with."""
    return "layer" if shape == () else ("channel" if len(shape) == 1 else "neuron")
