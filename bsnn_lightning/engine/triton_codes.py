"""The compile-time codes the Triton kernels branch on, as plain ints.

The launcher (:mod:`.triton_backend`, which must import without triton) picks them from its table of
dynamics; the kernels (:mod:`.triton_kernels`) wrap each in a ``tl.constexpr`` of the same name. Every
code has one meaning: no number is reused between two names of the same group.
"""

# KIND: the dynamics class (the backend's table maps each fused class to one)
LIF = 0  # SpikingJellyLIF
SNNTORCH_LEAKY = 1  # snnTorch's membrane, delayed reset only: SnnTorchLeaky, SnnTorchSynapticZero
DIAGONAL_BIFURCATION = 2  # DiagonalBifurcation
IF = 3  # SpikingJellyIF
PLIF = 4  # SpikingJellyPLIF
# snnTorch's membrane, its reset also applied at once (reset_delay=False): SnnTorchLeakyImmediate,
# SnnTorchSynapticZeroImmediate; u_t needs u_{t-1} besides h_t
SNNTORCH_IMMEDIATE = 5
# SpikingJelly 0.0.0.0.14's product form, h = v * decay + x, with p0 the decay factor (SpikingJelly014LIF:
# 1 - 1/tau, SpikingJelly014PLIF: 1 - q), computed by the launcher with the reference's own expression
PRODUCT_DECAY = 6

# RESET: fire-then-reset dynamics (SpikingJelly, bifurcation) ...
RESET_SOFT = 0  # v = h - s * threshold
RESET_HARD = 1  # v = s * v_reset + (1 - s) * h
# ... and snnTorch's delayed reset, applied inside the next step's charge
RESET_SUBTRACT = 2  # h = beta v + x - r threshold
RESET_ZERO = 3  # Leaky's: h = beta ((1 - r) v) + x, the previous membrane zeroed
RESET_NONE = 4  # h = beta v + x
RESET_ZERO_CHARGED = 5  # Synaptic's: m = beta v + x, h = m - m r, the charged membrane zeroed

# SURROGATE: the built-in surrogate gradients
SG_ATAN = 0
SG_SIGMOID = 1
SG_FAST_SIGMOID = 2
SG_TRIANGLE = 3

# ROUND: a 16-bit dtype the kernels round to, as PyTorch rounds each elementwise op's float32 result (the
# state's dtype: STATE; the spikes' when they carry a graded factor: SPIKE_ROUND); ROUND_FP32 rounds nothing
ROUND_FP32 = 0
ROUND_FP16 = 1
ROUND_BF16 = 2

# MODE: how a value (initial state, parameter) is laid out over the neurons
PER_LAYER = 0
PER_CHANNEL = 1
PER_NEURON = 2
FULL_STATE = 3
