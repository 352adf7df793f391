"""Decompositions for the statistics of normalisations: var / var_mean, layer_norm, group_norm, with
the mean and variance two-pass in the input's dtype, summed in short stages (no float64).

Registered into `lowering.decompositions.SEMANTIC_DECOMPOSITIONS`; docs/lowering-choices.md has the figures.
"""

from __future__ import annotations

import torch

from mlirforge.lowering.decompositions import aten, is_float, register

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


@register(aten.var_mean.correction)
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    """Eager rule: the variance with `n - correction` in the denominator (correction None = 1), and the mean.

    Computed two-pass in the input's dtype: torch-mlir's lowering takes the
    mean with one f32 sum (far from exact for rows far from zero: LayerNorm on
    rows of mean 1e3 was 20x less accurate than eager) and extends the whole
    input to f64 for the variance (demoted back to f32 by IREE). InstanceNorm
    and training-mode BatchNorm reach torch-mlir as this op; LayerNorm and
    GroupNorm have entries of their own below.
    """
    if not is_float(x):
        return NotImplemented
    return _moments(x, dim, correction, keepdim)


@register(aten.var.correction)
def var(x, dim=None, *, correction=None, keepdim=False):
    """Eager rule: as `var_mean` (std is `sqrt` of this op after PyTorch's own decomposition)."""
    if not is_float(x):
        return NotImplemented
    return _moments(x, dim, correction, keepdim)[0]


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _rstd(var: torch.Tensor, eps: float) -> torch.Tensor:
    # eps as a 0-d tensor of var's dtype: a Python float would be an f64
    # constant in the lowered MLIR (folded by IREE, but f64 all the same).
    return torch.rsqrt(var + torch.scalar_tensor(eps, dtype=var.dtype))


@register(aten.native_layer_norm.default)
def native_layer_norm(x, normalized_shape, weight, bias, eps):
    """Eager rule: (x - mean) / sqrt(var + eps) over the trailing `normalized_shape` dims, biased variance.

    Returns (out, mean, rstd) like PyTorch's reference (statistics kept as
    size-1 dims, in the input's dtype). The statistics are `var_mean`'s
    two-pass ones, in f32 for f32 and half inputs, and nothing is f64.
    """
    if not is_float(x):
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


@register(aten.native_group_norm.default)
def native_group_norm(x, weight, bias, batch_size, num_channels, inner_size, num_groups, eps):
    """Eager rule: (x - mean) / sqrt(var + eps) per sample and group of C / G channels, biased variance.

    Returns (out, mean, rstd) with mean and rstd of shape [N, G]. Two-pass
    statistics as `var_mean`; the output is formed as (x - mean) * rstd (not
    x * (rstd * w) - mean * rstd * w, which cancels when |mean| >> std).
    """
    if not is_float(x):
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
