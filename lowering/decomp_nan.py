"""Decompositions that keep eager's NaN, ±inf and -0 semantics (argmax/argmin, max/min, clamp
family, relu/hardtanh/elu, `x == x`, cumsum, comparisons with a Python float).

Registered into `lowering.decompositions.SEMANTIC_DECOMPOSITIONS`; docs/semantics.md has each case.
"""

from __future__ import annotations

import math

import torch

from mlirforge.lowering.decompositions import aten, is_float, reentrant_as_is, register, result_dtype

# --- argmax / argmin / max.dim / min.dim -------------------------------------


def _first_true(mask: torch.Tensor, dim: int, keepdim: bool) -> torch.Tensor:
    """Index (int64) of the first True along `dim` (0 when there is none).

    The smallest position holding a True: an integer `amin` over
    `where(mask, position, size)`. Unlike an argmax, whose running index
    makes a serial loop, an integer minimum is associative and commutative,
    so IREE vectorizes it: a values-only `max.dim` over 256x4096 fp32 took
    1150 us on one core with the int32-argmax form and 383 us with this one
    (standalone module, `iree-benchmark-module`; 154 us with the
    `tile-reductions` stage as well).
    """
    size = mask.shape[dim]
    index_dtype = torch.int32 if size < 2**31 else torch.int64
    shape = [1] * mask.dim()
    shape[dim] = size
    position = aten.arange.start_step(0, size, 1, dtype=index_dtype, device=mask.device).reshape(shape)
    candidates = aten.where.self(mask, position, aten.full_like.default(position, size))
    first = aten.amin.default(candidates, [dim], keepdim)
    first = aten.where.self(first == size, aten.zeros_like.default(first), first)
    return first.to(torch.int64)


def _arg_extreme(x: torch.Tensor, dim, keepdim: bool, largest: bool) -> torch.Tensor:
    if dim is None:
        flat = _arg_extreme(x.reshape(-1), 0, False, largest)
        return flat.reshape([1] * x.dim()) if keepdim else flat
    extreme = aten.amax.default(x, [dim], True) if largest else aten.amin.default(x, [dim], True)
    # amax/amin propagate NaN; then no element equals the extreme and the NaN
    # mask alone marks the candidates, so the first NaN wins.
    hit = torch.logical_or(x == extreme, torch.isnan(x))
    return _first_true(hit, dim, keepdim)


@register(aten.argmax.default)
def argmax(x, dim=None, keepdim=False):
    """Eager rule: NaN is the largest value (the index of the first NaN wins); ties give the first index.

    torch-mlir's argmax updates the index on `in > best`, which is false once
    `best` is NaN, so a row with a NaN returned the index of the largest value
    seen before it.
    """
    if not is_float(x) or x.dim() == 0:
        return NotImplemented
    return _arg_extreme(x, dim, keepdim, largest=True)


@register(aten.argmin.default)
def argmin(x, dim=None, keepdim=False):
    """Eager rule: NaN is the smallest value (the index of the first NaN wins); ties give the first index."""
    if not is_float(x) or x.dim() == 0:
        return NotImplemented
    return _arg_extreme(x, dim, keepdim, largest=False)


def _extreme_with_index(x, dim, keepdim, largest):
    index = _arg_extreme(x, dim, True, largest)
    values = aten.gather.default(x, dim, index)
    if not keepdim:
        values, index = values.squeeze(dim), index.squeeze(dim)
    return values, index


@register(aten.max.dim)
def max_dim(x, dim, keepdim=False):
    """Eager rule: the index as `argmax` (first NaN, else first maximum); the value is `x[index]`.

    The value is read at the index, so a row of zeros gives the sign of the
    first zero, as eager does (an IEEE maximum would give +0).
    """
    if not is_float(x) or x.dim() == 0:
        return NotImplemented
    return _extreme_with_index(x, dim, keepdim, largest=True)


@register(aten.min.dim)
def min_dim(x, dim, keepdim=False):
    """Eager rule: the index as `argmin` (first NaN, else first minimum); the value is `x[index]`."""
    if not is_float(x) or x.dim() == 0:
        return NotImplemented
    return _extreme_with_index(x, dim, keepdim, largest=False)


# --- maximum / minimum / fmax / fmin ------------------------------------------


def _binary_float(x, y):
    dtype = result_dtype(x, y)
    if not dtype.is_floating_point:
        return None
    return x.to(dtype), y.to(dtype)


@register(aten.maximum.default)
def maximum(x, y):
    """Eager rule: NaN if either operand is NaN; otherwise the larger.

    torch-mlir selects `x > y ? x : y`, which returns y when x is NaN. On a
    tie (-0 vs +0) eager's vectorised loop returns y and its scalar tail x;
    we return y, as the bulk of a large tensor does.
    """
    pair = _binary_float(x, y)
    if pair is None:
        return NotImplemented
    x, y = pair
    return torch.where(torch.logical_or(x > y, torch.isnan(x)), x, y)


@register(aten.minimum.default)
def minimum(x, y):
    """Eager rule: NaN if either operand is NaN; otherwise the smaller (y on a -0/+0 tie, as `maximum`)."""
    pair = _binary_float(x, y)
    if pair is None:
        return NotImplemented
    x, y = pair
    return torch.where(torch.logical_or(x < y, torch.isnan(x)), x, y)


@register(aten.fmax.default)
def fmax(x, y):
    """Eager rule: NaN only if both are NaN; otherwise the larger, the first operand on a tie.

    So fmax(-0, +0) = -0; torch-mlir's IEEE maxnum gave +0.
    """
    pair = _binary_float(x, y)
    if pair is None:
        return NotImplemented
    x, y = pair
    return torch.where(torch.logical_or(y > x, torch.isnan(x)), y, x)


@register(aten.fmin.default)
def fmin(x, y):
    """Eager rule: NaN only if both are NaN; otherwise the smaller, the first operand on a tie."""
    pair = _binary_float(x, y)
    if pair is None:
        return NotImplemented
    x, y = pair
    return torch.where(torch.logical_or(y < x, torch.isnan(x)), y, x)


# --- clamp / relu / hardtanh ----------------------------------------------------


def _clamp_scalar(x, lo, hi):
    if lo is not None and math.isnan(lo) or hi is not None and math.isnan(hi):
        return torch.full_like(x, math.nan)
    out = x
    if lo is not None:
        out = torch.where(out < lo, lo, out)
    if hi is not None:
        out = torch.where(out > hi, hi, out)
    return out


@register(aten.clamp.default)
def clamp(x, min=None, max=None):
    """Eager rule: `min(max(x, lo), hi)`; NaN input stays NaN, a NaN bound gives NaN, -0 stays -0.

    torch-mlir compares with unordered predicates (`x <u lo`), which are true
    for NaN, so NaN was replaced by the bound.
    """
    dtype = result_dtype(x, min, max)
    if not dtype.is_floating_point:
        return NotImplemented
    return _clamp_scalar(x.to(dtype), min, max)


@register(aten.clamp_min.default)
def clamp_min(x, min):
    """Eager rule: as `clamp(x, min=min)`."""
    return clamp(x, min, None)


@register(aten.clamp_max.default)
def clamp_max(x, max):
    """Eager rule: as `clamp(x, max=max)`."""
    return clamp(x, None, max)


@register(aten.clamp.Tensor)
def clamp_tensor(x, min=None, max=None):
    """Eager rule: `min(max(x, lo), hi)` elementwise; NaN in the input or in a bound gives NaN.

    On a -0/+0 tie the bound is returned, as eager's vectorised loop does.
    """
    dtype = result_dtype(x, min, max)
    if not dtype.is_floating_point:
        return NotImplemented
    out = x.to(dtype)
    if min is not None:
        lo = min.to(dtype)
        out = torch.where(torch.logical_or(out <= lo, torch.isnan(lo)), lo, out)
    if max is not None:
        hi = max.to(dtype)
        out = torch.where(torch.logical_or(out >= hi, torch.isnan(hi)), hi, out)
    return out


@register(aten.clamp_min.Tensor)
def clamp_min_tensor(x, min):
    """Eager rule: as `clamp(x, min=min)` with a tensor bound."""
    return clamp_tensor(x, min, None)


@register(aten.clamp_max.Tensor)
def clamp_max_tensor(x, max):
    """Eager rule: as `clamp(x, max=max)` with a tensor bound."""
    return clamp_tensor(x, None, max)


@register(aten.relu.default)
def relu(x):
    """Eager rule: `x < 0 ? 0 : x`, so relu(NaN) = NaN and relu(-0) = -0 (an IEEE max gives +0)."""
    if not is_float(x):
        return NotImplemented
    return torch.where(x < 0.0, 0.0, x)


@register(aten.hardtanh.default)
def hardtanh(x, min_val=-1, max_val=1):
    """Eager rule: `clamp(x, min_val, max_val)`; hardtanh(NaN) = NaN, relu6(-0) = -0."""
    if not is_float(x):
        return NotImplemented
    return _clamp_scalar(x, min_val, max_val)


@register(aten.elu.default)
def elu(x, alpha=1, scale=1, input_scale=1):
    """Eager rule: `x <= 0 ? expm1(x * input_scale) * alpha * scale : x * scale` (elu(-0) = -0).

    torch-mlir's `exp(x) - 1` loses -0 and all precision for |x| below ~1e-7.
    """
    if not is_float(x):
        return NotImplemented
    negative = torch.expm1(x * input_scale) * (alpha * scale)
    return torch.where(x <= 0.0, negative, x * scale)


# --- NaN tests and scans ------------------------------------------------------------


@register(aten.eq.Tensor)
def eq_tensor(x, y):
    """Eager rule: `x == x` is False where x is NaN.

    torch-mlir folds `aten.eq.Tensor(x, x)` to true, which breaks the NaN
    tests written that way (PyTorch's own `isfinite` is `(x == x) & (|x| != inf)`).
    The same tensor on both sides becomes `~isnan(x)`; other calls are left alone.
    """
    if x is y and is_float(x):
        return torch.logical_not(torch.isnan(x))
    return NotImplemented


@register(aten.cumsum.default)
@reentrant_as_is
def cumsum(x, dim, dtype=None):
    """Eager rule: the running sum starts from +0, so a leading -0 gives +0 (IREE's scan starts from x[0]).

    Adding +0.0 to the scan maps -0 to +0 and leaves every other value as it is.
    """
    if not (is_float(x) or dtype is not None and dtype.is_floating_point):
        return NotImplemented
    return aten.cumsum.default(x, dim, dtype=dtype) + 0.0


# --- comparisons with a Python scalar -------------------------------------------


def _compare_scalar(op, tensor_op):
    def decomposition(x, other):
        if not isinstance(x, torch.Tensor) or not isinstance(other, int | float):
            return NotImplemented
        dtype = result_dtype(x, other)
        if not dtype.is_floating_point:
            return NotImplemented
        return tensor_op(x.to(dtype), torch.scalar_tensor(other, dtype=dtype))

    name = op.overloadpacket.__name__
    decomposition.__name__ = name + "_scalar"
    decomposition.__doc__ = (
        f"Eager rule: `{name}` of a float tensor and a Python scalar compares in the tensor's dtype.\n\n"
        "The scalar is rounded to the tensor's dtype first (0.1 -> 0.1f).\n"
        "torch-mlir extends the tensor to f64 and compares with the double, so\n"
        "torch.tensor([0.1]) > 0.1 was True and == 0.3 on 0.3f False; it also folds\n"
        "a constant float tensor against an int scalar wrongly (torch.full((), 5.0) < 3\n"
        "became True). Compared with a 0-d tensor of the tensor's dtype instead."
    )
    return decomposition


for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    _packet = getattr(aten, _name)
    register(_packet.Scalar)(_compare_scalar(_packet.Scalar, _packet.Tensor))
