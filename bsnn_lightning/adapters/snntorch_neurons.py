"""Converted snnTorch ``Synaptic`` and ``RLeaky`` (snnTorch 1.0): the mixins :class:`ConvertedSynaptic` and
:class:`ConvertedRLeaky`, which the snnTorch adapter (:mod:`bsnn_lightning.adapters.snntorch`) puts in front
of the library's class, as it puts ``ConvertedLeaky`` in front of ``Leaky``.

``Synaptic`` (snnTorch's own order of operations; ``r_t`` the delayed reset, from the previous membrane)::

    syn_t = clamp(alpha, 0, 1) syn_{t-1} + x_t                  no spike in it: a linear filter of the input
    subtract: mem_t = clamp(beta, 0, 1) mem_{t-1} + syn_t - r_t threshold
    zero:     m_t = clamp(beta, 0, 1) mem_{t-1} + syn_t,  mem_t = m_t - m_t r_t   (the input is zeroed too)
    none:     mem_t = clamp(beta, 0, 1) mem_{t-1} + syn_t
    spk_t = graded H(mem_t - threshold)                          (plus the immediate reset, reset_delay=False)

The converted neuron filters the synaptic current in PyTorch, the same operations in the same order, over the
whole call (one step, or the whole sequence in step mode "m"), and the engine runs the membrane on ``syn_t``
in one call: ``SnnTorchLeaky`` / ``SnnTorchLeakyImmediate`` for "subtract" and "none" (``Leaky``'s membrane
with ``syn_t`` as input), ``SnnTorchSynapticZero`` / ``SnnTorchSynapticZeroImmediate`` for "zero".

``RLeaky`` adds the recurrent current of its own module ``V`` (``recurrent``: ``nn.Linear``, ``nn.Conv2d`` or
snnTorch's one-to-one weight ``V``) applied to the previous step's spikes::

    mem_t = (clamp(beta, 0, 1) mem_{t-1} + x_t) + V(spk_{t-1}) - r_t threshold     (zero, none: as Synaptic)

``V`` is an arbitrary module, so no time loop can be fused around it: the converted neuron steps through time
itself (one call per step, or a loop over the sequence in step mode "m"). With ``dynamics="lif"`` each step
is snnTorch's own step (``RLeaky.forward``): the engine takes one input per step, and adding ``x_t + V(spk)``
before the decayed membrane rounds differently from snnTorch's ``(beta mem + x_t) + V(spk)``, so an engine
step would be one rounding off, not bit for bit. With ``dynamics="bifurcation"`` each step is one engine
call on the input ``x_t + V(spk_{t-1})``.

The methods act on the membrane ``mem``: the IMP is the membrane a sequence starts from (``syn`` starts from
its own state, 0 after a reset; ``spk`` likewise), and bifurcation dynamics replace ``beta``'s decay of the
membrane by the learnable eigenvalues, ``mem_t = (1 + lambda) mem_{t-1} + syn_t`` (``Synaptic``: the synaptic
current keeps its ``alpha``) or ``+ x_t + V(spk_{t-1})`` (``RLeaky``), then fire and reset as for ``Leaky``.
See ``docs/methods.md``.
"""

from __future__ import annotations

import sys

import torch

from ..neuron_params import Recording, record
from .snntorch import ConvertedSnnTorchNeuron


class ConvertedSynaptic(ConvertedSnnTorchNeuron):
    """The mixin of a converted ``snntorch.Synaptic`` (see the module docstring).

    In step mode "m" it takes the whole sequence and returns its states as sequences too:

    >>> import snntorch as snn, bsnn_lightning as bl
    >>> syn = bl.convert(torch.nn.Sequential(snn.Synaptic(alpha=0.5, beta=0.5)), "lif", step_mode="m")[0]
    >>> spk, syn_seq, mem_seq = syn(torch.rand(4, 2, 3))  # [T, N, features]
    >>> isinstance(syn, ConvertedSynaptic), spk.shape, syn_seq.shape, syn.mem.shape  # mem: the last membrane
    (True, torch.Size([4, 2, 3]), torch.Size([4, 2, 3]), torch.Size([2, 3]))
    """

    def _bsnn_membrane_keeps_input_dtype(self) -> bool:
        # its delayed reset to zero is in place (mem -= mem * reset), which keeps the membrane's dtype
        return self.reset_mechanism == "none" or (self.reset_mechanism == "zero" and bool(self.reset_delay))

    def forward(self, input_, syn=None, mem=None):
        if self.init_hidden and (syn is not None or mem is not None):
            raise TypeError("`mem` or `syn` should not be passed as an argument while `init_hidden=True`")
        sequence = self.bsnn_settings.step_mode == "m"
        if self.bsnn_runs_library_code():
            return self._library_forward(input_, syn, mem, sequence)
        seq, batched = self._bsnn_sequence(input_, sequence)
        fresh = self._bsnn_fresh(mem)
        current = self._bsnn_state("syn", syn, seq, batched)
        if current is None:  # snnTorch's zeros, in the input's dtype (the current is computed here, in PyTorch)
            current = torch.zeros_like(seq[0])
        state = self._bsnn_state("mem", mem, seq, batched)  # None: a new sequence, from 0.0 (broadcast)
        # the synaptic current, as snnTorch computes it: syn_t = clamp(alpha, 0, 1) * syn_{t-1} + x_t
        alpha = self.alpha.clamp(0, 1)
        currents = []
        for x_t in seq:
            current = alpha * current + x_t
            currents.append(current)
        syn_seq = torch.stack(currents) if len(currents) > 1 else current.unsqueeze(0)
        want_seq = sequence and (self.output or not self.init_hidden)
        out = self.bsnn_run(
            syn_seq, 0.0 if state is None else state, fresh=fresh or state is None, return_v_seq=want_seq, single=not sequence
        )
        spikes, v, v_seq = out.spikes, out.v, out.v_seq
        if not batched:
            spikes, v, current, syn_seq = spikes.squeeze(1), v.reshape(()), current.reshape(()), syn_seq.squeeze(1)
            v_seq = None if v_seq is None else v_seq.squeeze(1)
        spikes = self._bsnn_output_spikes(spikes)
        self._buffers["syn"], self._buffers["mem"] = current, v  # the last step's own tensors, not views
        self.__dict__["bsnn_fresh"] = False
        spk = spikes if sequence else spikes[0]
        syn_out, mem_out = (syn_seq, v_seq) if want_seq else (current, v)
        if self.output or not self.init_hidden:
            return spk, syn_out, mem_out
        return spk

    def _library_forward(self, input_, syn, mem, sequence):
        """snnTorch's own ``Synaptic.forward`` (see ``bsnn_runs_library_code``); a sequence runs step by step."""
        step = sys.modules["snntorch"].Synaptic.forward
        if not sequence:
            return step(self, input_, syn, mem)
        outputs = []
        for x_t in input_:
            out = step(self, x_t, syn, mem)
            if not self.init_hidden:
                syn, mem = out[1], out[2]
            outputs.append(out)
        if self.init_hidden and not self.output:
            return torch.stack(outputs)
        return tuple(torch.stack([o[i] for o in outputs]) for i in range(3))

    def _bsnn_lif(self, sample_shape):
        return self._bsnn_leaky_lif(zero_charged=True), self._bsnn_membrane_params(sample_shape)


class ConvertedRLeaky(ConvertedSnnTorchNeuron):
    """The mixin of a converted ``snntorch.RLeaky`` (see the module docstring). Its recurrent module
    (``recurrent``, and ``V`` for one-to-one connections) stays the library's, under the library's names.

    >>> import snntorch as snn, bsnn_lightning as bl
    >>> _ = torch.manual_seed(0)
    >>> x = torch.rand(4, 2, 3) * 2  # [T, N, features]
    >>> rleaky = snn.RLeaky(beta=0.5, linear_features=3)  # its recurrent module: nn.Linear(3, 3)
    >>> rleaky = bl.convert(torch.nn.Sequential(rleaky), "bifurcation", step_mode="m", example_input=x)[0]
    >>> spk, mem = rleaky(x)
    >>> spk.shape, rleaky.eigenvalues.shape, type(rleaky.recurrent).__name__
    (torch.Size([4, 2, 3]), torch.Size([3]), 'Linear')
    """

    def forward(self, input_, spk=None, mem=None):
        if self.init_hidden and (spk is not None or mem is not None):
            raise TypeError("When `init_hidden=True`,RLeaky expects 1 input argument.")
        sequence = self.bsnn_settings.step_mode == "m"
        if sequence and input_.dim() < 1:
            raise ValueError(f"converted snntorch.RLeaky in step_mode='m' expected input [T, ...], got {list(input_.shape)}")
        steps = input_ if sequence else input_.unsqueeze(0)
        first = steps[0]
        fresh = self._bsnn_fresh(mem)
        spk = self._buffers["spk"] if spk is None else spk
        mem = self._buffers["mem"] if mem is None else mem
        if spk.shape != first.shape:  # snnTorch starts a state of another shape from zeros
            spk = torch.zeros_like(first)
        if mem.shape != first.shape:
            mem, fresh = torch.zeros_like(first), True
        sample_shape = tuple(first.shape[1:])
        self.bsnn_see_shape(sample_shape, first.device)
        if fresh:
            mem = self.bsnn_initial_state(mem)  # the IMP, if any
        bifurcation = self.bsnn_settings.dynamics == "bifurcation"
        spikes, membranes = [], []
        for x_t in steps:
            spk, mem = self._engine_step(x_t, spk, mem) if bifurcation else self._library_step(x_t, spk, mem)
            spikes.append(spk)
            membranes.append(mem)
        self._buffers["spk"], self._buffers["mem"] = spk, mem
        self.__dict__["bsnn_fresh"] = False
        spk_out = torch.stack(spikes) if sequence else spk
        want_seq = sequence and (self.output or not self.init_hidden)
        monitor = self.__dict__.get("bsnn_monitor")
        if monitor is not None:
            membrane = (torch.stack(membranes) if sequence else mem).detach() if monitor == "membrane" else None
            record(self, Recording(spk_out.detach(), membrane, self._bsnn_threshold(sample_shape), sequence))
        mem_out = torch.stack(membranes) if want_seq else mem
        if self.output or not self.init_hidden:
            return spk_out, mem_out
        return spk_out

    def _library_step(self, x_t, spk, mem):
        """One step of snnTorch's own ``RLeaky.forward`` from the state ``(spk, mem)``."""
        self._buffers["spk"], self._buffers["mem"] = spk, mem
        sys.modules["snntorch"].RLeaky.forward(self, x_t)
        return self._buffers["spk"], self._buffers["mem"]

    def _engine_step(self, x_t, spk, mem):
        """One engine step (bifurcation dynamics) on the input ``x_t + V(spk_{t-1})``; spikes times the graded
        factor, as snnTorch scales its own."""
        drive = x_t + self.recurrent(spk)
        scalar = drive.dim() == 0  # one sample of shape [] to the engine
        seq = drive.reshape(1, 1) if scalar else drive.unsqueeze(0)
        out = self.bsnn_run(seq, mem.reshape(1) if scalar else mem, fresh=False, single=True)
        spikes, v = (out.spikes.reshape(()), out.v.reshape(())) if scalar else (out.spikes[0], out.v)
        return self._bsnn_output_spikes(spikes), v

    def _bsnn_lif(self, sample_shape):
        raise RuntimeError(
            "a converted snntorch.RLeaky with dynamics='lif' runs snnTorch's own step, not the engine: the engine "
            "takes one input per step and cannot add the recurrent current in snnTorch's order"
        )
