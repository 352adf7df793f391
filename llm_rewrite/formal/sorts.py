"""MLIR element types as z3 sorts and exact constants, and z3's FP functions bound to one context.

The vocabulary the translation and the search both speak: f32/f16/bf16 as FP sorts, iN as
bit-vectors, i1 as booleans; anything else is `NotApplicable`.
"""

from __future__ import annotations

import types

import numpy as np
import z3

from mlirforge.llm_rewrite.formal.result import NotApplicable
from mlirforge.llm_rewrite.equivalence import numpy_dtype

_FP = {"f32": (8, 24), "f16": (5, 11), "bf16": (8, 8)}
_UINT = {"f32": np.uint32, "f16": np.uint16, "bf16": np.uint16}


def _in_context(fn):
    """z3's `fn` in the context of its first z3 argument: its Python API would use one global
    context, where how long a query takes depends on every query before it."""
    return lambda *args: fn(*args, ctx=next(a.ctx for a in args if isinstance(a, z3.AstRef)))


_fp = types.SimpleNamespace(**{name[2:]: _in_context(getattr(z3, name)) for name in (
    "fpAdd", "fpSub", "fpMul", "fpDiv", "fpSqrt", "fpFMA", "fpFPToFP", "fpSignedToFP", "fpUnsignedToFP", "fpNeg",
    "fpAbs", "fpIsNaN", "fpIsInf", "fpIsZero", "fpIsNegative", "fpIsSubnormal", "fpGT", "fpLT", "fpGEQ", "fpLEQ",
    "fpEQ", "fpNEQ", "fpToIEEEBV", "fpBVToFP")})


def _sort(dtype: str, ctx: z3.Context) -> z3.SortRef:
    if dtype in _FP:
        return z3.FPSort(*_FP[dtype], ctx=ctx)
    if dtype == "i1":
        return z3.BoolSort(ctx)
    if dtype.startswith("i") and dtype[1:].isdigit():
        return z3.BitVecSort(int(dtype[1:]), ctx)
    if dtype == "f64":
        raise NotApplicable("f64: IREE demotes f64 to f32 at the module boundary (--iree-input-demote-f64-to-f32), "
                            "so what runs is not what the MLIR says")
    raise NotApplicable(f"element type {dtype} is not supported")


def _fp_const(value: float, dtype: str, ctx: z3.Context) -> z3.FPRef:
    """An FP constant from its exact IEEE bits (never through a decimal string)."""
    bits = int(np.array(value, dtype=numpy_dtype(dtype)).view(_UINT[dtype]))
    return _fp.BVToFP(z3.BitVecVal(bits, 8 * np.dtype(_UINT[dtype]).itemsize, ctx), _sort(dtype, ctx))


def _dtype_of(x: z3.ExprRef) -> str:
    s = x.sort()
    return next(d for d, (e, m) in _FP.items() if (s.ebits(), s.sbits()) == (e, m))
