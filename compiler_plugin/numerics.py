"""Comparing compiled outputs with eager PyTorch: tolerances by dtype."""

from __future__ import annotations

import torch
import torch.utils._pytree as pytree

# (rtol, atol) per dtype: fp32 leaves room for reassociated reductions and
# fused multiply-adds; half types for their 8/11-bit mantissas.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-7, 1e-9),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}


def tolerance_for(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (0.0, 0.0))


def compare_outputs(actual, expected) -> tuple[bool, float, str]:
    """Compare two output trees; returns (ok, max abs error, message)."""
    a_leaves, a_spec = pytree.tree_flatten(actual)
    e_leaves, e_spec = pytree.tree_flatten(expected)
    if a_spec != e_spec:
        return False, float("inf"), f"output structure differs: {a_spec} vs {e_spec}"
    worst = 0.0
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        if not isinstance(e, torch.Tensor):
            if a != e:
                return False, float("inf"), f"output {i}: {a!r} != {e!r}"
            continue
        if a.shape != e.shape or a.dtype != e.dtype:
            return False, float("inf"), f"output {i}: {a.dtype}{list(a.shape)} vs {e.dtype}{list(e.shape)}"
        a, e = a.detach(), e.detach()
        if e.is_floating_point():
            rtol, atol = tolerance_for(e.dtype)
            # Scale atol by the output's magnitude: a deep reduction's absolute
            # error grows with the values it sums.
            atol = atol * max(1.0, float(e.abs().max()))
            err = float((a.double() - e.double()).abs().nan_to_num(0.0).max()) if a.numel() else 0.0
            worst = max(worst, err)
            if not torch.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
                return False, worst, f"output {i}: max abs error {err:.3g} exceeds rtol={rtol} atol={atol:.3g}"
        elif not torch.equal(a, e):
            return False, float("inf"), f"output {i}: integer/bool values differ"
    return True, worst, "ok"
