"""Comparing compiled outputs with eager PyTorch: tolerances by dtype, and inputs left as eager leaves them.

Every comparison with eager goes through `check_against_eager`, which also
checks that the compiled call left its inputs exactly as the eager call left
its own copies (bit for bit, NaN payloads included). A module that writes into
the caller's tensors (IREE can tie a dispatch's result to an imported argument)
is a silent corruption that an output-only comparison cannot see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

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
# How many differing elements an exact-dtype mismatch lists.
SHOWN_DIFFERENCES = 3


def tolerance_for(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (0.0, 0.0))


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes, so that equality is bitwise (NaN == NaN, -0 != +0)."""
    t = t.detach()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.contiguous().reshape(-1).view(torch.uint8)


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(a), _bits(b))


def _differences(a: torch.Tensor, e: torch.Tensor) -> str:
    """`N of M elements differ, first at (i, j): got g, expected x; ...` for exact dtypes."""
    diff = (a != e).reshape(e.shape)
    where = diff.nonzero()
    shown = []
    for idx in where[:SHOWN_DIFFERENCES].tolist():
        got, want = a[tuple(idx)].item(), e[tuple(idx)].item()
        shown.append(f"at {tuple(idx)} got {got!r}, expected {want!r}")
    return f"{int(diff.sum())} of {e.numel()} elements differ: " + "; ".join(shown)


def compare_outputs(actual, expected) -> tuple[bool, float, str]:
    """Compare two output trees; returns (ok, max abs error, message).

    Floating outputs use `TOLERANCES` (atol scaled by the largest |expected|)
    with NaN matching NaN; integer and bool outputs must be equal, and a
    mismatch lists how many elements differ and the first few.
    """
    a_leaves, a_spec = pytree.tree_flatten(actual)
    e_leaves, e_spec = pytree.tree_flatten(expected)
    if a_spec != e_spec:
        return False, float("inf"), f"output structure differs: {a_spec} vs {e_spec}"
    worst = 0.0
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        if not isinstance(e, torch.Tensor):
            both_nan = isinstance(a, float) and isinstance(e, float) and a != a and e != e
            if a != e and not both_nan:
                return False, float("inf"), f"output {i}: {a!r} != {e!r}"
            continue
        if a.shape != e.shape or a.dtype != e.dtype:
            return False, float("inf"), f"output {i}: {a.dtype}{list(a.shape)} vs {e.dtype}{list(e.shape)}"
        a, e = a.detach(), e.detach()
        if e.is_floating_point():
            rtol, atol = tolerance_for(e.dtype)
            # Scale atol by the output's magnitude: a deep reduction's absolute
            # error grows with the values it sums.
            finite = e[e.isfinite()]
            atol = atol * max(1.0, float(finite.abs().max()) if finite.numel() else 1.0)
            err = float((a.double() - e.double()).abs().nan_to_num(0.0).max()) if a.numel() else 0.0
            worst = max(worst, err)
            if not torch.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
                return False, worst, f"output {i}: max abs error {err:.3g} exceeds rtol={rtol} atol={atol:.3g}"
        elif not torch.equal(a, e):
            return False, float("inf"), f"output {i} ({str(e.dtype).removeprefix('torch.')}): {_differences(a, e)}"
    return True, worst, "ok"


def clone_tree(tree):
    """A copy of every tensor in a tree of inputs (other leaves shared)."""
    return pytree.tree_map(lambda x: x.detach().clone() if isinstance(x, torch.Tensor) else x, tree)


def changed_inputs(after: Sequence, reference: Sequence) -> list[int]:
    """Positions whose input (a tensor, or any tensor nested in it) is not bitwise equal to the reference's."""
    changed = []
    for i, (a, r) in enumerate(zip(after, reference)):
        pairs = zip(pytree.tree_leaves(a), pytree.tree_leaves(r))
        if any(isinstance(x, torch.Tensor) and not bitwise_equal(x, y) for x, y in pairs):
            changed.append(i)
    return changed


@dataclasses.dataclass
class EagerCheck:
    """What `check_against_eager` found."""

    ok: bool
    max_abs_error: float
    message: str
    actual: object = None
    expected: object = None


def check_against_eager(compiled: Callable, eager: Callable, inputs: Sequence) -> EagerCheck:
    """Run `eager` on copies of `inputs` and `compiled` on `inputs`; compare outputs and inputs.

    The check fails if the outputs differ (see `compare_outputs`) or if any
    input tensor after the compiled call is not bitwise what the eager call
    left in its copy (for a model that does not write its inputs: unchanged).
    Exceptions from either call propagate.
    """
    eager_inputs = clone_tree(list(inputs))
    expected = eager(*eager_inputs)
    actual = compiled(*inputs)
    changed = changed_inputs(list(inputs), eager_inputs)
    ok, err, message = compare_outputs(actual, expected)
    if changed:
        listed = ", ".join(str(i) for i in changed)
        return EagerCheck(False, err, f"the compiled call modified input(s) {listed} (eager left them unchanged)",
                          actual, expected)
    return EagerCheck(ok, err, message, actual, expected)
