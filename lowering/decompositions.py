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
again while tracing, forever; `reentrant_as_is` is the way out when the op
itself is needed). An entry returns `NotImplemented` for inputs it leaves
alone (e.g. integer tensors): the op is then recorded as it is. Entries are
applied again when the backend re-traces a decomposed graph for a new shape,
so each must also be right on its own output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND, elementwise_dtypes

aten = torch.ops.aten

SEMANTIC_DECOMPOSITIONS: dict[torch._ops.OperatorBase, Callable] = {}


def register(*ops):
    def wrap(fn):
        for op in ops:
            SEMANTIC_DECOMPOSITIONS[op] = fn
        return fn

    return wrap


def is_float(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def result_dtype(*args) -> torch.dtype:
    """The dtype eager's default type promotion gives the arguments (None skipped)."""
    present = [a for a in args if a is not None]
    return elementwise_dtypes(*present, type_promotion_kind=ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT)[1]


ACTIVE: set[Callable] = set()


def reentrant_as_is(fn):
    """While `fn` runs, a nested call of the op it decomposes is recorded as it is."""

    def wrapper(*args, **kwargs):
        if fn in ACTIVE:
            return NotImplemented
        ACTIVE.add(fn)
        try:
            return fn(*args, **kwargs)
        finally:
            ACTIVE.discard(fn)

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


# The entries, by family; importing them fills SEMANTIC_DECOMPOSITIONS.
from mlirforge.lowering import decomp_arith, decomp_nan, decomp_stats  # noqa: E402, F401
