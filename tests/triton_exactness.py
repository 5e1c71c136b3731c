"""The triton backend's exactness contract against the reference backend, for the Triton test modules
(imported by name: pytest puts this folder on ``sys.path``; the file name matches no test pattern)."""

import torch


def assert_matches_reference(out, ref_out, grads, ref_grads):
    """Spikes, final state and ``v_seq`` equal the reference's bit for bit; every gradient agrees to rounding
    (16-bit: one rounding of the 16-bit result apart at most; with a 16-bit state, whose reference backward
    rounds every op to 16 bits, every gradient so, and a parameter's, which it sums over time in 16 bits, within
    16 of that dtype's epsilon)."""
    state16 = ref_out[1].dtype in (torch.bfloat16, torch.float16)
    for name, a, b in zip(("spikes", "v", "v_seq"), out, ref_out):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), f"{name} differs from the reference at {int((a != b).sum())} elements"
    assert grads.keys() == ref_grads.keys()
    for name, ref in ref_grads.items():
        got = grads[name]
        assert got is not None and got.dtype == ref.dtype and got.shape == ref.shape, name
        scale = float(ref.abs().max()) + 1.0
        if state16 and ref.numel() < out[0][0].numel():
            # a parameter's gradient, summed over time in the 16-bit dtype by the reference (in float32 here)
            tol = 16 * torch.finfo(ref_out[1].dtype).eps
            torch.testing.assert_close(got.float(), ref.float(), rtol=tol, atol=tol * scale, msg=name)
        elif state16 or ref.dtype in (torch.bfloat16, torch.float16):
            torch.testing.assert_close(got.float(), ref.float(), rtol=1e-2, atol=1e-2 * scale, msg=name)
        else:
            torch.testing.assert_close(got, ref, rtol=2e-5, atol=2e-6 * scale, msg=name)
