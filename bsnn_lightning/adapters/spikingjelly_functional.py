"""SpikingJelly 2.0's explicit-state forward on a converted node.

SpikingJelly 2.0 gives every stateful module a pure form, ``functional_forward(inputs, states) -> (outputs,
new_states)``, with the states in ``extract_memories`` order. Its tools run a model through it instead of
``forward``: ``memopt.checkpoint_module`` (and so ``memopt.optimize_memory``) recomputes a checkpointed
neuron or ``nn.Sequential`` with it, in time chunks that pass the state on. A converted node inherits the
library class's form, which computes the library's LIF and would silently drop bifurcation dynamics and the
IMP; this mixin replaces it with the node's own forward run on the given states, so the pure form computes
exactly what the node computes. Only ``functional_forward`` is replaced, the entry point the tools call
(``base.to_functional_forward`` calls it for a node, and for each node of an ``nn.Sequential``); the library's
``single_step_functional_forward``/``multi_step_functional_forward`` stay, as the library's own forward calls them
where a converted node runs the library's code (under an op counter, see ``inplace.ConvertedNeuron``).

Unlike the library's form it does not first "materialize" a number state into a tensor: a number is the start
of a sequence, where the IMP applies (as after ``reset()``), and a tensor continues one (a later time chunk).
"""

from __future__ import annotations

import torch


class ExplicitStateForward:
    """Mixin for converted SpikingJelly nodes (see the module docstring). Needs ``_memories``,
    ``step_mode``, ``single_step_forward`` and ``multi_step_forward`` from the node.

    >>> import bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> node = bl.convert(torch.nn.Sequential(neuron.LIFNode(step_mode="m")), "lif", imp="layer")[0]
    >>> isinstance(node, ExplicitStateForward)
    True
    >>> (spikes,), (v,) = node.functional_forward((torch.rand(3, 2, 4),), (0.0,))  # 0.0: a sequence starts
    >>> spikes.shape, v.shape, node.v  # the new state is returned; the node's own is left as it was
    (torch.Size([3, 2, 4]), torch.Size([2, 4]), 0.0)
    """

    def functional_forward(self, inputs: tuple[torch.Tensor, ...], states: tuple, **kwargs):
        if self.step_mode not in ("s", "m"):
            raise ValueError(f"expected step_mode 's' or 'm', got {self.step_mode!r}")
        return self._bsnn_explicit_state(inputs, states, self.step_mode, kwargs)

    def _bsnn_explicit_state(self, inputs, states, step_mode: str, kwargs):
        names = list(self._memories)
        if len(states) != len(names):
            raise ValueError(
                f"{type(self).__name__} expected {len(names)} states ({', '.join(names)}), got {len(states)}"
            )
        held = [self._memories[name] for name in names]
        held_v_seq = self.__dict__.get("v_seq")
        try:
            for name, value in zip(names, states):
                self._memories[name] = value
            forward = self.single_step_forward if step_mode == "s" else self.multi_step_forward
            outputs = forward(*inputs, **kwargs)
            new_states = tuple(self._memories[name] for name in names)
        finally:
            for name, value in zip(names, held):
                self._memories[name] = value
            if "v_seq" in self.__dict__:
                self.__dict__["v_seq"] = held_v_seq
        return (tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)), new_states
