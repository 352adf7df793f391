"""Decompositions for exact arithmetic where torch-mlir's is not: float floor division, fmod and `%`,
uint8 sums and products (no sign extension), 8-bit mul/sub (computed in int32, truncated back).

Registered into `lowering.decompositions.SEMANTIC_DECOMPOSITIONS`; docs/semantics.md has each case.
"""

from __future__ import annotations

import torch

from mlirforge.lowering.decompositions import aten, register, result_dtype

# --- floor division / fmod -------------------------------------------------------


def _as_float_pair(a, b):
    """(a, b, dtype) with tensors converted to the promoted floating dtype, or None for integer results."""
    dtype = result_dtype(a, b)
    if not dtype.is_floating_point:
        return None
    a = a.to(dtype) if isinstance(a, torch.Tensor) else a
    # A Python scalar is computed in the tensor's dtype, as eager does (0.1 -> 0.1f).
    b = b.to(dtype) if isinstance(b, torch.Tensor) else torch.scalar_tensor(b, dtype=dtype)
    return a, b, dtype


def _fmod(a, b):
    # fmod is odd in a and even in b, and on non-negative operands equals
    # remainder, which torch-mlir lowers to an exact `arith.remf`.
    r = aten.remainder.Tensor(torch.abs(a), torch.abs(b))
    # a == ±0: a - r keeps the sign of zero (and is NaN when r is, i.e. b == 0 or NaN).
    return torch.where(a < 0.0, -r, torch.where(a == 0.0, a - r, r))


@register(aten.fmod.Tensor, aten.fmod.Scalar)
def fmod(a, b):
    """Eager rule: C `fmod`, exact, with the sign of `a`.

    fmod(-3, 3) = -0, fmod(x, 0) = NaN, fmod(x, ±inf) = x.

    torch-mlir expands fmod to `a - b * trunc(a / b)`, which is inexact once
    the quotient is rounded (fmod(1e7 + 0.5, 0.1) was off by up to |b|) and
    loses -0; it does not lower `fmod.Scalar` at all.
    """
    pair = _as_float_pair(a, b)
    if pair is None or not isinstance(a, torch.Tensor):
        return NotImplemented
    a, b, _ = pair
    return _fmod(a, b)


@register(aten.div.Tensor_mode, aten.div.Scalar_mode)
def div_mode(a, b, *, rounding_mode=None):
    """Eager rule for `rounding_mode="floor"` on floats (Python's `//`, c10 `div_floor_floating`).

    mod = fmod(a, b); div = (a - mod) / b, minus 1 if mod and b differ in sign;
    the result is floor(div) rounded to the nearest integer, ±0 (the sign of
    a / b) when div is 0, and a / b when b is 0. So inf // 2 = NaN and
    1.0 // 0.1 = 9.0, where torch-mlir's `floor(a / b)` gave inf and 10.0.
    Other rounding modes and integer operands are left to torch-mlir.
    """
    if rounding_mode != "floor" or not isinstance(a, torch.Tensor):
        return NotImplemented
    pair = _as_float_pair(a, b)
    if pair is None:
        return NotImplemented
    a, b, _ = pair
    quotient = a / b
    mod = _fmod(a, b)
    b_negative = b < 0.0
    div = (a - mod) / b
    adjust = torch.logical_and(mod != 0.0, b_negative != (mod < 0.0))
    div = torch.where(adjust, div - 1.0, div)
    floored = torch.floor(div)
    floored = torch.where(div - floored > 0.5, floored + 1.0, floored)
    signed_zero = quotient * 0.0  # finite here: div == 0 means |a / b| < 1
    out = torch.where(div == 0.0, signed_zero, floored)
    return torch.where(b == 0.0, quotient, out)


@register(aten.remainder.Scalar)
def remainder_scalar(a, b):
    """Eager rule: Python's `%` computed in the tensor's dtype (the scalar rounded to it first).

    torch-mlir's `remainder.Scalar` keeps the scalar in f64, so x % 0.1 on f32
    differed from eager by up to 0.1; `remainder.Tensor` (an exact `remf`) does not.
    """
    pair = _as_float_pair(a, b)
    if pair is None or not isinstance(a, torch.Tensor):
        return NotImplemented
    a, b, _ = pair
    return aten.remainder.Tensor(a, b)


# --- uint8 reductions ---------------------------------------------------------------


@register(aten.sum.dim_IntList)
def sum_dim(x, dim, keepdim=False, *, dtype=None):
    """Eager rule: a uint8 sum accumulates in int64 (or `dtype`) from zero-extended values.

    sum([200, 200]) = 400.
    torch-mlir's sum sign-extends ui8 (200 became -56); the conversion to
    int64 (`_to_copy`), which zero-extends correctly, goes first.
    """
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.sum.dim_IntList(x.to(target), dim, keepdim, dtype=target)


@register(aten.sum.default)
def sum_all(x, *, dtype=None):
    """Eager rule: as `sum.dim_IntList` for uint8."""
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.sum.default(x.to(target), dtype=target)


@register(aten.prod.dim_int)
def prod_dim(x, dim, keepdim=False, *, dtype=None):
    """Eager rule: a uint8 product accumulates in int64 from zero-extended values."""
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.prod.dim_int(x.to(target), dim, keepdim, dtype=target)


@register(aten.prod.default)
def prod_all(x, *, dtype=None):
    """Eager rule: as `prod.dim_int` for uint8."""
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.prod.default(x.to(target), dtype=target)


# --- 8-bit integer arithmetic ---------------------------------------------------------

_EIGHT_BIT = (torch.int8, torch.uint8)


def _widened(x, y):
    """(x, y) in int32 when x is an 8-bit integer tensor and the result stays in x's dtype; else None."""
    if not (isinstance(x, torch.Tensor) and x.dtype in _EIGHT_BIT):
        return None
    if isinstance(y, torch.Tensor):
        if y.dtype != x.dtype:
            return None
        return x.to(torch.int32), y.to(torch.int32)
    if isinstance(y, bool) or not isinstance(y, int):
        return None
    return x.to(torch.int32), y


@register(aten.mul.Tensor)
def small_int_mul(x, y):
    """Eager rule: 8-bit integer products wrap modulo 256; computed in int32 and truncated back.

    torch-mlir's pass pipeline crashes the whole process (a segfault, in
    process) on `x * 2` with an int8 or uint8 `x`; the int32 product truncated
    to 8 bits is eager's two's-complement result. Other dtypes are left alone.
    """
    pair = _widened(x, y)
    if pair is None:
        return NotImplemented
    return aten.mul.Tensor(*pair).to(x.dtype)


@register(aten.sub.Tensor)
def small_int_sub(x, y, *, alpha=1):
    """Eager rule: 8-bit integer differences wrap modulo 256 (torch-mlir crashes on `x - 100`, as on `x * 2`)."""
    pair = _widened(x, y)
    if pair is None or isinstance(alpha, float):
        return NotImplemented
    return aten.sub.Tensor(*pair, alpha=alpha).to(x.dtype)
