"""The compile-time codes the Triton kernels branch on, as plain ints.

The launcher (:mod:`.triton_backend`, which must import without triton) picks them from its table of
dynamics; the kernels (:mod:`.triton_kernels`) wrap each in a ``tl.constexpr`` of the same name. Every
code has one meaning: no number is reused between two names of the same group.
"""

# KIND: the dynamics class (the backend's table maps each fused class to one)
LIF = 0  # SpikingJellyLIF
SNNTORCH_LEAKY = 1  # SnnTorchLeaky (delayed reset)
DIAGONAL_BIFURCATION = 2  # DiagonalBifurcation
IF = 3  # SpikingJellyIF
PLIF = 4  # SpikingJellyPLIF

# RESET: fire-then-reset dynamics (SpikingJelly, bifurcation) ...
RESET_SOFT = 0  # v = h - s * threshold
RESET_HARD = 1  # v = s * v_reset + (1 - s) * h
# ... and snnTorch's delayed reset, applied inside the next step's charge
RESET_SUBTRACT = 2
RESET_ZERO = 3
RESET_NONE = 4

# SURROGATE: the built-in surrogate gradients
SG_ATAN = 0
SG_SIGMOID = 1
SG_FAST_SIGMOID = 2
SG_TRIANGLE = 3

# MODE: how a value (initial state, parameter) is laid out over the neurons
PER_LAYER = 0
PER_CHANNEL = 1
PER_NEURON = 2
FULL_STATE = 3
