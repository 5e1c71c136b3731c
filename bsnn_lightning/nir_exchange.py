"""NIR (the Neuromorphic Intermediate Representation, https://neuroir.org) for converted models.

Three ways out, by what the model holds:

- LIF without IMP: the libraries' own exporters, inside :func:`library_classes`, which gives every converted
  neuron its library class back for the duration (SpikingJelly's ``nir_exchange.export_to_nir`` and nirtorch
  look neurons up by exact class; snnTorch's ``export_to_nir`` runs the model). The graph is the native
  model's, node for node.
- Diagonal bifurcation (SpikingJelly models): :func:`export_nir` writes each converted node as one NIR ``LIF``
  node with a time constant per neuron, and :func:`import_nir` reads such a graph back into SpikingJelly layers
  and converted nodes that compute the same spikes, bit for bit.
- An IMP, coupled bifurcation, soft reset, or an eigenvalue ``>= 0``: refused, saying why (below).

The discrete-time mapping. NIR's LIF is ``tau dv/dt = (v_leak - v) + r I``; the exporters of both libraries
read it, as here, in forward-Euler steps of ``dt`` (SpikingJelly's ``LIFNode(tau)`` is ``tau_nir = tau dt``,
``r = 1``, ``v_leak = v_reset``): ``v_t = (1 - dt/tau) v_{t-1} + (dt/tau) v_leak + (dt/tau) r x_t``, then fire
where ``v_t >= v_threshold`` and set ``v_reset`` there. The diagonal bifurcation charge
``h_t = (1 + lambda) v_{t-1} + x_t`` (docs/methods.md) is that with

    tau = -dt / lambda,   r = tau / dt = -1 / lambda,   v_leak = 0,

per neuron, with ``lambda`` the clamped eigenvalue the engine uses. It holds for ``lambda < 0`` only: at
``lambda = 0`` (a conservative mode) tau is infinite, and above 0 (energy-diffusing) it is negative, which
NIR's LIF, a leak towards ``v_leak``, does not mean. ``import_nir`` inverts it: ``lambda = -dt / tau``, after
checking ``r = tau / dt`` and ``v_leak = 0``.

Refused, with the reason: an IMP (NIR 1.0's nodes have no initial state, and a graph's edges carry signals
at every step, so no composition sets the membrane once at the start of a sequence); coupled bifurcation
(the coupling mixes the membranes of a layer's neurons, but NIR's edges carry a node's output, which for
``LIF`` is spikes; an ``LI`` node exposes its membrane but cannot fire, and ``LI -> Threshold`` cannot reset
the membrane after a spike, so no NIR composition computes it); soft reset (NIR's ``LIF`` resets to
``v_reset``; SpikingJelly's exporter refuses it too).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .adapters import Plan, adapter_for
from .adapters.inplace import ConvertedNeuron, library_class
from .convert import convert

__all__ = ["library_classes", "export_nir", "import_nir"]


@contextlib.contextmanager
def library_classes(model: nn.Module):
    """Give every converted neuron of ``model`` its library class for the duration of the block, so a library's
    own tools that look neurons up by exact class (its NIR exporter) see the native model; converted again
    after. Only LIF without IMP has a library form: anything else is refused before anything changes.

    >>> import torch, bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> node = bl.convert(torch.nn.Sequential(neuron.LIFNode()), "lif", backend="torch")[0]
    >>> with bl.nir_exchange.library_classes(node):
    ...     print(type(node) is neuron.LIFNode)
    True
    >>> type(node) is neuron.LIFNode, isinstance(node, neuron.LIFNode)
    (False, True)
    """
    converted = [(name, m) for name, m in model.named_modules() if isinstance(m, ConvertedNeuron)]
    for name, module in converted:
        settings = module.bsnn_settings
        held = [n for n in ("imp", "eigenvalues", "basis") if getattr(module, n, None) is not None]
        if settings.dynamics != "lif" or held:
            what = f"{settings.dynamics} dynamics" + (f" and the added parameters {held}" if held else "")
            raise ValueError(
                f"{name or type(module).__name__} has {what}, which its library has no form of, so the library's "
                "own tools (its NIR exporter) cannot represent it; for NIR use bsnn_lightning.nir_exchange."
                "export_nir (diagonal bifurcation as per-neuron LIF time constants; an IMP is not representable)"
            )
        adapter = adapter_for(module)
        if settings.step_mode == "m" and adapter is not None and not adapter.library_step_mode:
            raise ValueError(
                f"{name or type(module).__name__} runs whole sequences (step_mode='m'), which changed the model around "
                "it; its library's tools know only the per-step model: convert with step_mode='s' to use them"
            )
    restored = [(module, adapter_for(module), module.bsnn_settings) for _, module in converted]
    for module, adapter, _ in restored:
        adapter.apply(module, Plan(None))
    try:
        yield model
    finally:
        for module, adapter, settings in restored:
            adapter.apply(module, Plan(settings))


def export_nir(model: nn.Module, example_input: torch.Tensor, dt: float = 1e-4, path: str | Path | None = None):
    """The NIR graph of a SpikingJelly model whose nodes may be converted (LIF or diagonal bifurcation, no
    IMP): SpikingJelly's own mapping for its layers and native nodes, the module docstring's for converted ones.
    ``example_input`` is one batch as the model takes it; ``path`` also writes the graph (HDF5, ``nir.write``).

    >>> import torch, bsnn_lightning as bl
    >>> from spikingjelly.activation_based import layer, neuron
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(layer.Linear(4, 3), neuron.LIFNode(step_mode="m"))
    >>> x = torch.rand(5, 2, 4) * 8  # [T, N, features]
    >>> net = bl.convert(net, "bifurcation", eigen_init=(-0.9, -0.1), example_input=x)
    >>> [round(value, 4) for value in net[1].eigenvalues.tolist()]
    [-0.1, -0.9, -0.5]
    >>> lif = export_nir(net, x, dt=1e-4).nodes["_1"]
    >>> type(lif).__name__, lif.tau.round(6).tolist()  # tau = -dt / lambda, per neuron
    ('LIF', [0.001, 0.000111, 0.0002])
    >>> export_nir(bl.convert(net, imp="neuron"), x)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: cannot export '1' to NIR: it has a learnable initial membrane potential (IMP), and NIR 1.0's ...
    """
    import nir
    import nirtorch
    from spikingjelly.activation_based.nir_exchange import to_nir

    if dt <= 0:
        raise ValueError(f"expected a positive dt, got {dt}")
    mapper = to_nir._ModuleMapper(model, example_input, dt=dt)
    module_map = dict(mapper.map_dict)
    names = {module: name for name, module in model.named_modules()}
    for module in names:
        if isinstance(module, ConvertedNeuron):
            module_map[type(module)] = lambda m: _node_to_nir(m, names[m], mapper._neuron_shape(m), dt, mapper)
    graph = nirtorch.torch_to_nir(model, module_map, type_check=True)
    if path is not None:
        nir.write(path, graph)
    return graph


def import_nir(graph, dt: float = 1e-4, step_mode: str = "m") -> nn.Sequential:
    """A SpikingJelly model (an ``nn.Sequential`` of its layers and nodes) computing a chain-shaped NIR graph:
    SpikingJelly's own mapping for layers and uniform LIF/IF nodes, and for an ``LIF`` node with per-neuron time
    constants a ``LIFNode`` converted to diagonal bifurcation with ``lambda = -dt / tau`` per neuron. ``graph``
    is a ``nir.NIRGraph`` or the path of one written by ``nir.write``.

    A round trip gives the same spikes, bit for bit:

    >>> import torch, bsnn_lightning as bl
    >>> from spikingjelly.activation_based import layer, neuron
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(layer.Linear(4, 3), neuron.LIFNode(step_mode="m"))
    >>> x = torch.rand(5, 2, 4) * 8  # [T, N, features]
    >>> net = bl.convert(net, "bifurcation", eigen_init=(-0.9, -0.1), example_input=x)
    >>> imported = import_nir(export_nir(net, x, dt=1e-4), dt=1e-4)
    >>> bl.reset_states(net)
    >>> spikes = net(x)
    >>> type(imported[1]).__name__, int(spikes.sum()), torch.equal(imported(x), spikes)
    ('LIFNode', 6, True)
    """
    import nir
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.nir_exchange import from_nir

    if isinstance(graph, (str, Path)):
        graph = nir.read(graph)
    library_map = from_nir._NodeMapper(dt=dt).map_dict
    layers = []
    for name in _chain(graph):
        node = graph.nodes[name]
        if isinstance(node, nir.LIF) and not _uniform(node):
            layers.append(_bifurcation_node(node, name, dt))
        elif type(node) in library_map:
            layers.append(library_map[type(node)](node))
        else:
            raise ValueError(f"NIR node {name!r} is a {type(node).__name__}, which import_nir cannot map")
    model = nn.Sequential(*layers)
    functional.set_step_mode(model, step_mode)
    return model


# --- export: one converted node ---------------------------------------------------------------------------


def _node_to_nir(module, name: str, neuron_shape, dt: float, mapper):
    import nir

    settings = module.bsnn_settings
    if module.imp is not None:
        raise ValueError(
            f"cannot export {name!r} to NIR: it has a learnable initial membrane potential (IMP), and NIR 1.0's "
            "nodes have no initial state (a graph's edges carry a signal at every step, so no composition sets the "
            "membrane once at the start of a sequence)"
        )
    if settings.dynamics == "lif":
        return mapper.map_dict[library_class(module)](module)
    if settings.structure == "coupled":
        raise ValueError(
            f"cannot export {name!r} to NIR: coupled bifurcation mixes the membranes of a layer's neurons, but NIR's "
            "edges carry a node's output (spikes, for LIF); an LI node exposes its membrane but cannot fire, and "
            "LI -> Threshold cannot reset it after a spike, so no NIR composition computes it"
        )
    v_reset = getattr(module, "v_reset", None)
    if v_reset is None:
        raise ValueError(f"cannot export {name!r} to NIR: it resets softly (v_reset=None), and NIR's LIF resets to v_reset")
    shape = tuple(neuron_shape)
    lam = module.eigenvalues.detach().clamp(*settings.bounds).double().cpu()
    if settings.granularity == "channel" and lam.dim() == 1 and len(shape) > 1:
        lam = lam.reshape(-1, *[1] * (len(shape) - 1))
    lam = torch.broadcast_to(lam, shape).numpy()
    if not (lam < 0).all():
        raise ValueError(
            f"cannot export {name!r} to NIR: {int((lam >= 0).sum())} of its {lam.size} eigenvalues are >= 0 "
            "(conservative or energy-diffusing modes); NIR's LIF leaks towards v_leak, so it holds only lambda < 0 "
            "(tau = -dt / lambda would be infinite or negative)"
        )
    tau = -dt / lam
    return nir.LIF(
        tau=tau,
        r=tau / dt,
        v_leak=np.zeros(shape),
        v_threshold=np.full(shape, float(module.v_threshold)),
        v_reset=np.full(shape, float(v_reset)),
    )


# --- import ------------------------------------------------------------------------------------------------


def _chain(graph) -> list[str]:
    """The node names between the graph's Input and Output, in order; refuses any other shape of graph."""
    import nir

    successors: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        successors[source].append(target)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"import_nir reads chain-shaped graphs with one Input node, got {len(inputs)} Input nodes")
    order, name = [], inputs[0]
    while True:
        following = successors[name]
        if len(following) != 1:
            raise ValueError(f"import_nir reads chain-shaped graphs: node {name!r} feeds {len(following)} nodes")
        name = following[0]
        if isinstance(graph.nodes[name], nir.Output):
            return order
        if name in order:
            raise ValueError(f"import_nir reads chain-shaped graphs: node {name!r} is on a cycle")
        order.append(name)


def _uniform(node) -> bool:
    return all(np.unique(np.asarray(getattr(node, f))).size == 1 for f in ("tau", "r", "v_leak", "v_threshold", "v_reset"))


def _bifurcation_node(node, name: str, dt: float) -> nn.Module:
    from spikingjelly.activation_based import functional, neuron

    tau, r = np.asarray(node.tau, dtype=np.float64), np.asarray(node.r, dtype=np.float64)
    problems = []
    if not (np.isfinite(tau).all() and (tau > 0).all()):
        problems.append("tau must be finite and positive")
    elif not np.allclose(r, tau / dt, rtol=1e-12, atol=0):
        problems.append("r must equal tau / dt (the input enters with gain 1)")
    if np.any(np.asarray(node.v_leak) != 0):
        problems.append("v_leak must be 0")
    for field in ("v_threshold", "v_reset"):
        if np.unique(np.asarray(getattr(node, field))).size != 1:
            problems.append(f"{field} must be the same for every neuron")
    if problems:
        raise ValueError(
            f"NIR LIF node {name!r} has per-neuron parameters that are not diagonal bifurcation dynamics: "
            + "; ".join(problems)
        )
    lam = -dt / tau
    lif = neuron.LIFNode(
        v_threshold=float(np.asarray(node.v_threshold).flat[0]), v_reset=float(np.asarray(node.v_reset).flat[0])
    )
    functional.set_step_mode(lif, "m")
    shape = tuple(tau.shape)
    lo = min(-1.0, float(lam.min()))
    wrapper = nn.Sequential(lif)
    convert(wrapper, "bifurcation", backend="torch", granularity="neuron", bounds=(lo, 0.2),
            eigen_init=(lo, 0.0), example_input=torch.zeros(1, 1, *shape))
    with torch.no_grad():
        lif.eigenvalues.copy_(torch.from_numpy(lam))
    return lif
