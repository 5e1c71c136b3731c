"""Activation memory for long sequences: SpikingJelly 2.0's memopt on SpikingJelly models (native or converted), as a
Lightning callback.

memopt (Zhang et al., "Towards Lossless Memory-efficient Training of Spiking Neural Networks via Gradient
Checkpointing and Spike Compression", ICLR 2026; ``spikingjelly.activation_based.memopt``) recomputes chosen
modules in the backward pass instead of keeping their intermediate tensors, and stores a checkpointed module's
input as bits when it is spikes. Converted neurons recompute exactly (their explicit-state forward is their
own, see ``adapters/spikingjelly_functional.py``), so training computes the same gradients with less memory.
``bench/memory.py`` measures the bytes it saves.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from .callbacks import ConvertNeurons
from .neuron_params import MethodNeuron

__all__ = ["MemoryOptimization", "neuron_block_types"]


class MemoryOptimization(L.Callback):
    """Apply ``memopt.optimize_memory`` to the LightningModule at ``setup``, after the neurons are converted.

    Models of SpikingJelly nodes (native or converted, every dynamics and IMP) only: snnTorch's neurons and
    this package's own keep their state as plain attributes, which memopt cannot hand to a recomputation, so
    they are refused, saying so.

    Lightning calls ``setup`` before it builds optimizers and wraps the model for DDP; memopt's wrappers keep
    the parameter objects and ``state_dict`` keys, so checkpoints load either way. Put it after
    :class:`~bsnn_lightning.callbacks.ConvertNeurons` in the callback list (refused otherwise: memopt must see
    the converted model). Applied once: a later ``setup`` (test after fit) finds the wrappers in place.

    Args:
        level: memopt's level: 1 checkpoints the candidate modules; 2-4 also split them spatially or in time
            and measure CUDA peak memory (SpikingJelly refuses them without a GPU). 0 does nothing.
        budget: ``"speed"``, ``"balanced"`` or ``"memory"``: about 50%, 75% or all candidates, largest
            inputs first.
        compress: store a checkpointed module's input as bits where it is spikes (``BitSpikeCompressor``).
        targets: the candidate module types; None: :func:`neuron_block_types` of the model (the layers and
            neurons of every ``nn.Sequential`` that holds a neuron).
        example_input: one batch as the module's forward takes it, for memopt's probe; None: the module's
            ``example_input_array``.

    >>> MemoryOptimization(budget="fast")
    Traceback (most recent call last):
    ...
    ValueError: expected budget 'speed', 'balanced' or 'memory', got 'fast'
    """

    def __init__(
        self,
        level: int = 1,
        budget: str = "memory",
        compress: bool = True,
        targets: tuple[type, ...] | None = None,
        example_input: torch.Tensor | None = None,
    ) -> None:
        if level not in (0, 1, 2, 3, 4):
            raise ValueError(f"expected memopt level 0, 1, 2, 3 or 4, got {level!r}")
        if budget not in ("speed", "balanced", "memory"):
            raise ValueError(f"expected budget 'speed', 'balanced' or 'memory', got {budget!r}")
        self.level = level
        self.budget = budget
        self.compress = compress
        self.targets = None if targets is None else tuple(targets)
        self.example_input = example_input

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        later = [cb for cb in trainer.callbacks[trainer.callbacks.index(self) + 1 :] if isinstance(cb, ConvertNeurons)]
        if later:
            raise ValueError(
                "MemoryOptimization must come after ConvertNeurons in the callback list (memopt must wrap the "
                f"converted model), got it before {len(later)} ConvertNeurons callback(s)"
            )
        if self.level == 0 or _already_optimized(pl_module):
            return
        from spikingjelly.activation_based import base, functional, memopt

        stateful = [name for name, m in pl_module.named_modules() if _is_neuron(m) and not isinstance(m, base.MemoryModule)]
        if stateful:
            raise ValueError(
                "memopt recomputes a checkpointed module from SpikingJelly's explicit neuron state (its "
                f"MemoryModule memories), but {stateful[:3]}{' ...' if len(stateful) > 3 else ''} keep their state "
                "as plain attributes, so a recomputation would start from the state the forward pass left and "
                "compute different gradients: MemoryOptimization supports SpikingJelly nodes (native or converted)"
            )
        example = self.example_input if self.example_input is not None else pl_module.example_input_array
        if example is None:
            raise ValueError(
                "MemoryOptimization needs one batch to probe the model with: give example_input, or set the "
                "LightningModule's example_input_array"
            )
        example = example.to(pl_module.device)
        targets = self.targets or neuron_block_types(pl_module)
        if not targets:
            raise ValueError("MemoryOptimization found no nn.Sequential holding a spiking neuron: give targets")

        def example_forward(model):
            functional.reset_net(model)
            return model(example)

        # memopt keys its probe by module, and a LightningModule holds metrics whose hash changes as they update:
        # it gets the LightningModule's children that hold neurons (the same objects, so its wrappers land in place)
        parts = nn.Module()
        for name, child in pl_module.named_children():
            if any(_is_neuron(m) for m in child.modules()):
                if isinstance(child, targets):
                    raise ValueError(f"MemoryOptimization cannot wrap {name!r} itself (a direct child of the LightningModule)")
                parts.add_module(name, child)
        memopt.optimize_memory(
            parts, targets, lambda _: example_forward(pl_module), level=self.level, checkpoint_budget=self.budget,
            compress=self.compress,
        )


def neuron_block_types(model: nn.Module) -> tuple[type, ...]:
    """The types of the children of every ``nn.Sequential`` in ``model`` that holds a spiking neuron (this
    package's, a converted one, or a library's): the layers between neurons, and the neurons.

    >>> from bsnn_lightning import LIFNeuron
    >>> [t.__name__ for t in neuron_block_types(nn.Sequential(nn.Linear(4, 3), LIFNeuron()))]
    ['Linear', 'LIFNeuron']
    """
    types: list[type] = []
    for module in model.modules():
        if isinstance(module, nn.Sequential) and any(_is_neuron(child) for child in module):
            types += [type(child) for child in module if type(child) not in types]
    return tuple(types)


def _is_neuron(module: nn.Module) -> bool:
    if isinstance(module, MethodNeuron):
        return True
    kind = type(module).__module__
    return kind.startswith("spikingjelly.activation_based.neuron") or kind.startswith("snntorch._neurons")


def _already_optimized(model: nn.Module) -> bool:
    return any(type(m).__name__ == "CheckpointWrapper" for m in model.modules())
