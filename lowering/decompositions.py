"""ATen decompositions that keep eager PyTorch's semantics where torch-mlir's lowering departs from them.

`SEMANTIC_DECOMPOSITIONS` maps an ATen overload to a Python function written
in other ATen ops; `fx_import.aten_decompositions` applies it after
torch-mlir's own table, so an entry here wins. docs/semantics.md lists every
case checked against eager, what each entry fixes, and the measured numbers.

* NaN / ±inf / -0: torch-mlir lowers several comparisons with unordered or
  NaN-blind predicates (`argmax` keeps the index from before the first NaN,
  `clamp` maps NaN to a bound, `maximum` drops a NaN in its first operand),
  folds `x == x` to true (so `isfinite(NaN)` was True), compares a float
  tensor with a Python float in f64, expands `fmod` and floor division
  inexactly, sign-extends uint8 in sums, and loses the sign of zero in
  `relu`, `elu`, `fmax` and `cumsum`.
* Statistics of normalisations: mean and variance two-pass in the input's
  dtype, summed in short stages. torch-mlir's `var`/`var_mean` takes the mean
  with one f32 sum and extends the input to f64 for the variance, which IREE
  then demotes back to f32 (`--iree-input-demote-f64-to-f32` is on by
  default): the cost of f64 without its precision.

Rules for an entry: only ATen ops that torch-mlir lowers; no call of an op
that is itself in this table for the same inputs (it would be decomposed
again while tracing, forever; `_reentrant_as_is` is the way out when the op
itself is needed). An entry returns `NotImplemented` for inputs it leaves
alone (e.g. integer tensors): the op is then recorded as it is. Entries are
applied again when the backend re-traces a decomposed graph for a new shape,
so each must also be right on its own output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND, elementwise_dtypes

aten = torch.ops.aten

SEMANTIC_DECOMPOSITIONS: dict[torch._ops.OperatorBase, Callable] = {}


def _register(*ops):
    def wrap(fn):
        for op in ops:
            SEMANTIC_DECOMPOSITIONS[op] = fn
        return fn

    return wrap


def _is_float(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _result_dtype(*args) -> torch.dtype:
    """The dtype eager's default type promotion gives the arguments (None skipped)."""
    present = [a for a in args if a is not None]
    return elementwise_dtypes(*present, type_promotion_kind=ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT)[1]


# --- argmax / argmin / max.dim / min.dim -------------------------------------


def _first_true(mask: torch.Tensor, dim: int, keepdim: bool) -> torch.Tensor:
    """Index of the first True along `dim` (0 when there is none).

    An int32 argmax: torch-mlir lowers an integer argmax with a strict `>`,
    which keeps the first of equal values.
    """
    return aten.argmax.default(mask.to(torch.int32), dim, keepdim)


def _arg_extreme(x: torch.Tensor, dim, keepdim: bool, largest: bool) -> torch.Tensor:
    if dim is None:
        flat = _arg_extreme(x.reshape(-1), 0, False, largest)
        return flat.reshape([1] * x.dim()) if keepdim else flat
    extreme = aten.amax.default(x, [dim], True) if largest else aten.amin.default(x, [dim], True)
    # amax/amin propagate NaN; then no element equals the extreme and the NaN
    # mask alone marks the candidates, so the first NaN wins.
    hit = torch.logical_or(x == extreme, torch.isnan(x))
    return _first_true(hit, dim, keepdim)


@_register(aten.argmax.default)
def argmax(x, dim=None, keepdim=False):
    """Eager rule: NaN is the largest value (the index of the first NaN wins); ties give the first index.

    torch-mlir's argmax updates the index on `in > best`, which is false once
    `best` is NaN, so a row with a NaN returned the index of the largest value
    seen before it.
    """
    if not _is_float(x) or x.dim() == 0:
        return NotImplemented
    return _arg_extreme(x, dim, keepdim, largest=True)


@_register(aten.argmin.default)
def argmin(x, dim=None, keepdim=False):
    """Eager rule: NaN is the smallest value (the index of the first NaN wins); ties give the first index."""
    if not _is_float(x) or x.dim() == 0:
        return NotImplemented
    return _arg_extreme(x, dim, keepdim, largest=False)


def _extreme_with_index(x, dim, keepdim, largest):
    index = _arg_extreme(x, dim, True, largest)
    values = aten.gather.default(x, dim, index)
    if not keepdim:
        values, index = values.squeeze(dim), index.squeeze(dim)
    return values, index


@_register(aten.max.dim)
def max_dim(x, dim, keepdim=False):
    """Eager rule: the index as `argmax` (first NaN, else first maximum); the value is `x[index]`.

    The value is read at the index, so a row of zeros gives the sign of the
    first zero, as eager does (an IEEE maximum would give +0).
    """
    if not _is_float(x) or x.dim() == 0:
        return NotImplemented
    return _extreme_with_index(x, dim, keepdim, largest=True)


@_register(aten.min.dim)
def min_dim(x, dim, keepdim=False):
    """Eager rule: the index as `argmin` (first NaN, else first minimum); the value is `x[index]`."""
    if not _is_float(x) or x.dim() == 0:
        return NotImplemented
    return _extreme_with_index(x, dim, keepdim, largest=False)


# --- maximum / minimum / fmax / fmin ------------------------------------------


def _binary_float(x, y):
    dtype = _result_dtype(x, y)
    if not dtype.is_floating_point:
        return None
    return x.to(dtype), y.to(dtype)


@_register(aten.maximum.default)
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


@_register(aten.minimum.default)
def minimum(x, y):
    """Eager rule: NaN if either operand is NaN; otherwise the smaller (y on a -0/+0 tie, as `maximum`)."""
    pair = _binary_float(x, y)
    if pair is None:
        return NotImplemented
    x, y = pair
    return torch.where(torch.logical_or(x < y, torch.isnan(x)), x, y)


@_register(aten.fmax.default)
def fmax(x, y):
    """Eager rule: NaN only if both are NaN; otherwise the larger, the first operand on a tie.

    So fmax(-0, +0) = -0; torch-mlir's IEEE maxnum gave +0.
    """
    pair = _binary_float(x, y)
    if pair is None:
        return NotImplemented
    x, y = pair
    return torch.where(torch.logical_or(y > x, torch.isnan(x)), y, x)


@_register(aten.fmin.default)
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


@_register(aten.clamp.default)
def clamp(x, min=None, max=None):
    """Eager rule: `min(max(x, lo), hi)`; NaN input stays NaN, a NaN bound gives NaN, -0 stays -0.

    torch-mlir compares with unordered predicates (`x <u lo`), which are true
    for NaN, so NaN was replaced by the bound.
    """
    dtype = _result_dtype(x, min, max)
    if not dtype.is_floating_point:
        return NotImplemented
    return _clamp_scalar(x.to(dtype), min, max)


@_register(aten.clamp_min.default)
def clamp_min(x, min):
    """Eager rule: as `clamp(x, min=min)`."""
    return clamp(x, min, None)


@_register(aten.clamp_max.default)
def clamp_max(x, max):
    """Eager rule: as `clamp(x, max=max)`."""
    return clamp(x, None, max)


@_register(aten.clamp.Tensor)
def clamp_tensor(x, min=None, max=None):
    """Eager rule: `min(max(x, lo), hi)` elementwise; NaN in the input or in a bound gives NaN.

    On a -0/+0 tie the bound is returned, as eager's vectorised loop does.
    """
    dtype = _result_dtype(x, min, max)
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


@_register(aten.clamp_min.Tensor)
def clamp_min_tensor(x, min):
    """Eager rule: as `clamp(x, min=min)` with a tensor bound."""
    return clamp_tensor(x, min, None)


@_register(aten.clamp_max.Tensor)
def clamp_max_tensor(x, max):
    """Eager rule: as `clamp(x, max=max)` with a tensor bound."""
    return clamp_tensor(x, None, max)


@_register(aten.relu.default)
def relu(x):
    """Eager rule: `x < 0 ? 0 : x`, so relu(NaN) = NaN and relu(-0) = -0 (an IEEE max gives +0)."""
    if not _is_float(x):
        return NotImplemented
    return torch.where(x < 0.0, 0.0, x)


@_register(aten.hardtanh.default)
def hardtanh(x, min_val=-1, max_val=1):
    """Eager rule: `clamp(x, min_val, max_val)`; hardtanh(NaN) = NaN, relu6(-0) = -0."""
    if not _is_float(x):
        return NotImplemented
    return _clamp_scalar(x, min_val, max_val)


@_register(aten.elu.default)
def elu(x, alpha=1, scale=1, input_scale=1):
    """Eager rule: `x <= 0 ? expm1(x * input_scale) * alpha * scale : x * scale` (elu(-0) = -0).

    torch-mlir's `exp(x) - 1` loses -0 and all precision for |x| below ~1e-7.
    """
    if not _is_float(x):
        return NotImplemented
    negative = torch.expm1(x * input_scale) * (alpha * scale)
    return torch.where(x <= 0.0, negative, x * scale)


# --- NaN tests and scans ------------------------------------------------------------


@_register(aten.eq.Tensor)
def eq_tensor(x, y):
    """Eager rule: `x == x` is False where x is NaN.

    torch-mlir folds `aten.eq.Tensor(x, x)` to true, which breaks the NaN
    tests written that way (PyTorch's own `isfinite` is `(x == x) & (|x| != inf)`).
    The same tensor on both sides becomes `~isnan(x)`; other calls are left alone.
    """
    if x is y and _is_float(x):
        return torch.logical_not(torch.isnan(x))
    return NotImplemented


_ACTIVE: set[Callable] = set()


def _reentrant_as_is(fn):
    """While `fn` runs, a nested call of the op it decomposes is recorded as it is."""

    def wrapper(*args, **kwargs):
        if fn in _ACTIVE:
            return NotImplemented
        _ACTIVE.add(fn)
        try:
            return fn(*args, **kwargs)
        finally:
            _ACTIVE.discard(fn)

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


@_register(aten.cumsum.default)
@_reentrant_as_is
def cumsum(x, dim, dtype=None):
    """Eager rule: the running sum starts from +0, so a leading -0 gives +0 (IREE's scan starts from x[0]).

    Adding +0.0 to the scan maps -0 to +0 and leaves every other value as it is.
    """
    if not (_is_float(x) or dtype is not None and dtype.is_floating_point):
        return NotImplemented
    return aten.cumsum.default(x, dim, dtype=dtype) + 0.0


# --- floor division / fmod -------------------------------------------------------


def _as_float_pair(a, b):
    """(a, b, dtype) with tensors converted to the promoted floating dtype, or None for integer results."""
    dtype = _result_dtype(a, b)
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


@_register(aten.fmod.Tensor, aten.fmod.Scalar)
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


@_register(aten.div.Tensor_mode, aten.div.Scalar_mode)
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


@_register(aten.remainder.Scalar)
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


# --- comparisons with a Python scalar -------------------------------------------


def _compare_scalar(op, tensor_op):
    def decomposition(x, other):
        if not isinstance(x, torch.Tensor) or not isinstance(other, int | float):
            return NotImplemented
        dtype = _result_dtype(x, other)
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
    SEMANTIC_DECOMPOSITIONS[_packet.Scalar] = _compare_scalar(_packet.Scalar, _packet.Tensor)


# --- uint8 reductions ---------------------------------------------------------------


@_register(aten.sum.dim_IntList)
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


@_register(aten.sum.default)
def sum_all(x, *, dtype=None):
    """Eager rule: as `sum.dim_IntList` for uint8."""
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.sum.default(x.to(target), dtype=target)


@_register(aten.prod.dim_int)
def prod_dim(x, dim, keepdim=False, *, dtype=None):
    """Eager rule: a uint8 product accumulates in int64 from zero-extended values."""
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.prod.dim_int(x.to(target), dim, keepdim, dtype=target)


@_register(aten.prod.default)
def prod_all(x, *, dtype=None):
    """Eager rule: as `prod.dim_int` for uint8."""
    if x.dtype != torch.uint8 or dtype == torch.uint8:
        return NotImplemented
    target = dtype or torch.int64
    return aten.prod.default(x.to(target), dtype=target)


# --- statistics: var / var_mean ------------------------------------------------------


# A reduction over at least this many elements is summed in stages; below it
# one loop is accurate enough once the mean is corrected (LayerNorm rows of
# 768 far from zero: see docs/semantics.md).
CASCADE_MIN_COUNT = 4096
# The longest run of terms one stage adds up sequentially.
CASCADE_RUN = 64


def _stage_factors(n: int) -> list[int]:
    """n as a product of factors of at most CASCADE_RUN where it divides so (a larger prime stays whole)."""
    factors = []
    while n > CASCADE_RUN:
        d = next((d for d in range(CASCADE_RUN, 1, -1) if n % d == 0), 1)
        if d == 1:
            break
        factors.append(d)
        n //= d
    factors.append(n)
    return factors


def _staged_sum(t: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """`t.sum(dims, keepdim=True)`, summed in stages of at most ~CASCADE_RUN terms.

    Without `--iree-llvmcpu-reassociate-fp-reductions` IREE keeps f32
    additions in order, so a reduction is one sequential loop per output
    element and its rounding error grows with the count; with it, the loop is
    split over a vector's lanes, which still leaves long runs (a GroupNorm
    group of 19652 post-ReLU values summed to relative error 4e-6 in order,
    against eager's 1.5e-7). Each reduced dim longer than CASCADE_RUN is split
    into factors of at most CASCADE_RUN (a view that only splits dims, so IREE
    still fuses the producer into the first stage; merging dims first made it
    materialise the producer), and the dims are reduced one at a time, the
    longest first: the first stage reads `t` once, the later ones a tensor
    smaller by that factor. The error grows with the sum of the factors
    instead of their product, and short stages vectorise better than one long
    loop (a sum over 8 x 19652: 41 us against 160 us).
    """
    count = 1
    for d in dims:
        count *= t.shape[d]
    if count < CASCADE_MIN_COUNT:
        return aten.sum.dim_IntList(t, dims, True)
    keep_shape = [1 if i in dims else n for i, n in enumerate(t.shape)]
    shape, stages = [], []
    for i, n in enumerate(t.shape):
        reduced = i in dims and n > 1
        factors = _stage_factors(n) if reduced else [n]
        if reduced:
            stages += [(-f, len(shape) + j) for j, f in enumerate(factors)]
        shape += factors
    out = aten.view.default(t, shape) if len(shape) != t.dim() else t
    for _, d in sorted(stages):
        out = aten.sum.dim_IntList(out, [d], True)
    return aten.view.default(out, keep_shape) if out.dim() != len(keep_shape) else out


def _moments(x, dim, correction, keepdim):
    """(var, mean) of `x` over `dim`, two-pass in the input's dtype (f32 for half types)."""
    dim = [dim] if isinstance(dim, int) else dim
    dims = list(range(x.dim())) if dim is None or len(dim) == 0 else sorted(d % max(x.dim(), 1) for d in dim)
    count = 1
    for d in dims:
        count *= x.shape[d]
    correction = 1 if correction is None else correction
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.to(torch.float32)  # eager accumulates half types in f32
    # Pass 1: a first mean. Pass 2: the deviations from it, whose sum corrects
    # the mean (an f32 sum of values far from zero is what loses digits) and
    # whose squares give the variance: var = (sum d^2 - (sum d)^2 / n) / (n - correction).
    # The deviation sum is written as -sum(first - x) so that its producer is
    # not the `x - first` of the squares: one shared producer would be
    # materialised by IREE instead of fused into both reductions.
    first = _staged_sum(x, dims) / count
    dev = x - first
    dev_sum = -_staged_sum(first - x, dims)
    sq_sum = _staged_sum(dev * dev, dims)
    mean = first + dev_sum / count
    var = (sq_sum - dev_sum * dev_sum / count) / max(count - correction, 0)
    var = torch.where(var < 0.0, 0.0, var)  # rounding on a constant row; NaN stays NaN
    if not keepdim:
        var, mean = var.squeeze(dims), mean.squeeze(dims)
    return var.to(out_dtype), mean.to(out_dtype)


@_register(aten.var_mean.correction)
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    """Eager rule: the variance with `n - correction` in the denominator (correction None = 1), and the mean.

    Computed two-pass in the input's dtype: torch-mlir's lowering takes the
    mean with one f32 sum (far from exact for rows far from zero: LayerNorm on
    rows of mean 1e3 was 20x less accurate than eager) and extends the whole
    input to f64 for the variance (demoted back to f32 by IREE). InstanceNorm
    and training-mode BatchNorm reach torch-mlir as this op; LayerNorm and
    GroupNorm have entries of their own below.
    """
    if not _is_float(x):
        return NotImplemented
    return _moments(x, dim, correction, keepdim)


@_register(aten.var.correction)
def var(x, dim=None, *, correction=None, keepdim=False):
    """Eager rule: as `var_mean` (std is `sqrt` of this op after PyTorch's own decomposition)."""
    if not _is_float(x):
        return NotImplemented
    return _moments(x, dim, correction, keepdim)[0]


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _rstd(var: torch.Tensor, eps: float) -> torch.Tensor:
    # eps as a 0-d tensor of var's dtype: a Python float would be an f64
    # constant in the lowered MLIR (folded by IREE, but f64 all the same).
    return torch.rsqrt(var + torch.scalar_tensor(eps, dtype=var.dtype))


@_register(aten.native_layer_norm.default)
def native_layer_norm(x, normalized_shape, weight, bias, eps):
    """Eager rule: (x - mean) / sqrt(var + eps) over the trailing `normalized_shape` dims, biased variance.

    Returns (out, mean, rstd) like PyTorch's reference (statistics kept as
    size-1 dims, in the input's dtype). The statistics are `var_mean`'s
    two-pass ones, in f32 for f32 and half inputs, and nothing is f64.
    """
    if not _is_float(x):
        return NotImplemented
    dtype = _computation_dtype(x.dtype)
    a = x.to(dtype)
    dims = list(range(x.dim() - len(normalized_shape), x.dim()))
    var, mean = _moments(a, dims, 0, True)
    rstd = _rstd(var, eps)
    out = (a - mean) * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out.to(x.dtype), mean.to(x.dtype), rstd.to(x.dtype)


@_register(aten.native_group_norm.default)
def native_group_norm(x, weight, bias, batch_size, num_channels, inner_size, num_groups, eps):
    """Eager rule: (x - mean) / sqrt(var + eps) per sample and group of C / G channels, biased variance.

    Returns (out, mean, rstd) with mean and rstd of shape [N, G]. Two-pass
    statistics as `var_mean`; the output is formed as (x - mean) * rstd (not
    x * (rstd * w) - mean * rstd * w, which cancels when |mean| >> std).
    """
    if not _is_float(x):
        return NotImplemented
    dtype = _computation_dtype(x.dtype)
    a = x.to(dtype)
    per_group = num_channels // num_groups
    # The statistics over one dim of (C / G) * inner elements (a collapse of
    # the input itself), so that the stages split a single dim; the output in
    # [N, G, C / G, inner], where weight and bias broadcast, so that
    # normalisation and affine are one elementwise pass.
    grouped = a.reshape(batch_size, num_groups, per_group * inner_size)  # copies a channels-last input
    var, mean = _moments(grouped, [2], 0, True)
    rstd = _rstd(var, eps)
    scale = aten.view.default(rstd, [batch_size, num_groups, 1, 1])
    shift = aten.view.default(mean, [batch_size, num_groups, 1, 1])
    out = (grouped.reshape(batch_size, num_groups, per_group, inner_size) - shift) * scale
    if weight is not None:
        out = out * aten.view.default(weight, [1, num_groups, per_group, 1])
    if bias is not None:
        out = out + aten.view.default(bias, [1, num_groups, per_group, 1])
    out = out.reshape(x.shape)
    mean, rstd = mean.reshape(batch_size, num_groups), rstd.reshape(batch_size, num_groups)
    return out.to(x.dtype), mean.to(x.dtype), rstd.to(x.dtype)



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


@_register(aten.mul.Tensor)
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


@_register(aten.sub.Tensor)
def small_int_sub(x, y, *, alpha=1):
    """Eager rule: 8-bit integer differences wrap modulo 256 (torch-mlir crashes on `x - 100`, as on `x * 2`)."""
    pair = _widened(x, y)
    if pair is None or isinstance(alpha, float):
        return NotImplemented
    return aten.sub.Tensor(*pair, alpha=alpha).to(x.dtype)
