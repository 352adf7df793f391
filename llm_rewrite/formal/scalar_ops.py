"""The semantics of each translated scalar op (MLIR's arith dialect documentation) as z3 terms.

Rounded float ops (`_ROUNDED`, `_rounded`: round to nearest even) are kept apart from exact
ones (`_EXACT`) because the search's rule looks at every rounded result (overflow,
underflow, subnormals, the number of roundings).
"""

from __future__ import annotations

import z3

from mlirforge.llm_rewrite.formal.result import NotApplicable
from mlirforge.llm_rewrite.formal.sorts import _FP, _fp, _fp_const, _sort
from mlirforge.lowering.ir import ir

_ROUNDED = {"arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.truncf", "arith.sitofp",
            "arith.uitofp", "math.sqrt", "math.fma"}


def _scalar_const(attr, dtype: str, ctx: z3.Context) -> z3.ExprRef:
    if isinstance(attr, ir.FloatAttr):
        if dtype not in _FP:
            _sort(dtype, ctx)  # raises for f64 and others
        return _fp_const(ir.FloatAttr(attr).value, dtype, ctx)
    if isinstance(attr, ir.BoolAttr):
        return z3.BoolVal(ir.BoolAttr(attr).value, ctx)
    if isinstance(attr, ir.IntegerAttr):
        value = ir.IntegerAttr(attr).value
        if dtype == "i1":
            return z3.BoolVal(bool(value & 1), ctx)
        width = _sort(dtype, ctx).size()
        return z3.BitVecVal(value % (1 << width), width, ctx)
    raise NotApplicable(f"a constant {attr} is not supported")


def _rounded(name: str, op, a: list, dtype: str, ctx: z3.Context) -> z3.ExprRef:
    rm = z3.RNE(ctx)
    if name in ("arith.addf", "arith.subf", "arith.mulf", "arith.divf"):
        fn = {"arith.addf": _fp.Add, "arith.subf": _fp.Sub, "arith.mulf": _fp.Mul, "arith.divf": _fp.Div}[name]
        return fn(rm, a[0], a[1])
    if name == "math.sqrt":
        return _fp.Sqrt(rm, a[0])
    if name == "math.fma":
        return _fp.FMA(rm, a[0], a[1], a[2])
    if name == "arith.truncf":
        if "roundingmode" in op.attributes:
            raise NotApplicable(f"arith.truncf with {op.attributes['roundingmode']}")
        return _fp.FPToFP(rm, a[0], _sort(dtype, ctx))
    convert = _fp.SignedToFP if name == "arith.sitofp" else _fp.UnsignedToFP
    return convert(rm, _bv(a[0]), _sort(dtype, ctx))


def _bv(x: z3.ExprRef) -> z3.BitVecRef:
    return z3.If(x, z3.BitVecVal(1, 1, x.ctx), z3.BitVecVal(0, 1, x.ctx)) if z3.is_bool(x) else x


def _maximumf(a, b):
    nan = z3.fpNaN(a.sort())
    tie = z3.And(_fp.IsZero(a), _fp.IsZero(b))
    return z3.If(z3.Or(_fp.IsNaN(a), _fp.IsNaN(b)), nan,
                 z3.If(tie, z3.If(_fp.IsNegative(a), b, a), z3.If(_fp.GT(a, b), a, b)))


def _minimumf(a, b):
    nan = z3.fpNaN(a.sort())
    tie = z3.And(_fp.IsZero(a), _fp.IsZero(b))
    return z3.If(z3.Or(_fp.IsNaN(a), _fp.IsNaN(b)), nan,
                 z3.If(tie, z3.If(_fp.IsNegative(a), a, b), z3.If(_fp.LT(a, b), a, b)))


def _cmpf(op, a, _dtype):
    p = ir.IntegerAttr(op.attributes["predicate"]).value
    x, y = a
    uno = z3.Or(_fp.IsNaN(x), _fp.IsNaN(y))
    if p in (0, 15):
        return z3.BoolVal(p == 15, x.ctx)
    if p in (7, 14):  # ord, uno
        return uno if p == 14 else z3.Not(uno)
    base = {1: _fp.EQ, 2: _fp.GT, 3: _fp.GEQ, 4: _fp.LT, 5: _fp.LEQ, 6: _fp.NEQ}
    if p <= 6:  # oeq ogt oge olt ole one: false on NaN
        return z3.And(z3.Not(uno), base[p](x, y))
    return z3.Or(uno, base[p - 7](x, y))  # ueq ugt uge ult ule une: true on NaN


def _cmpi(op, a, _dtype):
    p = ir.IntegerAttr(op.attributes["predicate"]).value
    x, y = _bv(a[0]), _bv(a[1])
    fns = [lambda: x == y, lambda: x != y, lambda: x < y, lambda: x <= y, lambda: x > y, lambda: x >= y,
           lambda: z3.ULT(x, y), lambda: z3.ULE(x, y), lambda: z3.UGT(x, y), lambda: z3.UGE(x, y)]
    return fns[p]()


def _logic(fn_bool, fn_bv):
    return lambda op, a, dtype: fn_bool(a[0], a[1]) if dtype == "i1" else fn_bv(a[0], a[1])


def _extend(signed: bool):
    def extend(op, a, dtype):
        x = _bv(a[0])
        width = _sort(dtype, x.ctx).size()
        grow = width - x.size()
        if grow < 0:
            raise NotApplicable("an integer extension to a narrower type")
        return z3.SignExt(grow, x) if signed else z3.ZeroExt(grow, x)
    return extend


def _trunci(op, a, dtype):
    if dtype == "i1":
        return z3.Extract(0, 0, a[0]) == 1
    return z3.Extract(_sort(dtype, a[0].ctx).size() - 1, 0, a[0])


_EXACT = {
    "arith.negf": lambda op, a, d: _fp.Neg(a[0]),
    "math.absf": lambda op, a, d: _fp.Abs(a[0]),
    "arith.maximumf": lambda op, a, d: _maximumf(a[0], a[1]),
    "arith.minimumf": lambda op, a, d: _minimumf(a[0], a[1]),
    "arith.cmpf": _cmpf,
    "arith.cmpi": _cmpi,
    "arith.select": lambda op, a, d: z3.If(a[0], a[1], a[2]),
    "arith.extf": lambda op, a, d: _fp.FPToFP(z3.RNE(a[0].ctx), a[0], _sort(d, a[0].ctx)),
    "arith.addi": lambda op, a, d: _bv(a[0]) + _bv(a[1]) if d != "i1" else z3.Xor(a[0], a[1]),
    "arith.subi": lambda op, a, d: _bv(a[0]) - _bv(a[1]) if d != "i1" else z3.Xor(a[0], a[1]),
    "arith.muli": lambda op, a, d: _bv(a[0]) * _bv(a[1]) if d != "i1" else z3.And(a[0], a[1]),
    "arith.andi": _logic(z3.And, lambda x, y: x & y),
    "arith.ori": _logic(z3.Or, lambda x, y: x | y),
    "arith.xori": _logic(z3.Xor, lambda x, y: x ^ y),
    "arith.maxsi": lambda op, a, d: z3.If(_bv(a[0]) > _bv(a[1]), a[0], a[1]),
    "arith.minsi": lambda op, a, d: z3.If(_bv(a[0]) < _bv(a[1]), a[0], a[1]),
    "arith.maxui": lambda op, a, d: z3.If(z3.UGT(_bv(a[0]), _bv(a[1])), a[0], a[1]),
    "arith.minui": lambda op, a, d: z3.If(z3.ULT(_bv(a[0]), _bv(a[1])), a[0], a[1]),
    "arith.extsi": _extend(True),
    "arith.extui": _extend(False),
    "arith.trunci": _trunci,
}
