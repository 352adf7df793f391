"""The reference and the candidate side by side: the queries for a counter-example, and the rule.

`_Pair.decide` runs the steps of the package docstring (special values, the proof, the
constant-tensor examples); `_Pair.example` and `_beyond` apply its rule (reassociation is
not a counter-example) to one input.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import z3

from mlirforge.llm_rewrite.formal.result import (PROVED, REFUTED, UNKNOWN, UNDECIDED, FormalResult,
                                                 NotApplicable)
from mlirforge.llm_rewrite.formal.sorts import _FP, _UINT, _dtype_of, _fp, _fp_const, _sort
from mlirforge.llm_rewrite.formal.translate import (_ELEMENTWISE_LINALG, _GENERALIZE, _element_type, _Inputs,
                                                    _Kernel, _main_function)
from mlirforge.llm_rewrite.equivalence import compare, numpy_dtype, tolerance
from mlirforge.lowering.ir import ir, passmanager

SPECIAL_VALUES = {"float": (0.0, -0.0, 1.0, -1.0, 2.0, -0.5, 3.0, math.inf, -math.inf, math.nan),
                  "int": (0, 1, -1, 2, 7), "i1": (False, True)}
"""What every argument is tried with (as constant tensors) before z3 searches: special values
catch most wrong candidates in milliseconds, where z3 may need seconds."""
MAX_SCAN = 1000
"""Combinations of special values tried at most (a fixed sample of them beyond that)."""
_TACTICS = ("simplify", "propagate-values", "solve-eqs", "fpa2bv", "simplify", "bit-blast", "sat")
MAGNITUDE_WINDOWS = ((2.0**-8, 2.0**8), (2.0**8, 2.0**24), (2.0**24, 2.0**40))
"""Input magnitudes searched for a counter-example beyond special values, one window after another:
within a window a difference of the result's size is beyond any reordered rounding."""
_UNDERFLOWS = {"arith.mulf": 2, "arith.divf": 1, "arith.truncf": 1}
"""Rounded ops whose result is nonzero when these leading operands are (and all are finite), but for underflow."""


def _finite(x: z3.FPRef) -> z3.BoolRef:
    return z3.Not(z3.Or(_fp.IsNaN(x), _fp.IsInf(x)))


class _Pair:
    """The reference and the candidate translated over one set of input variables."""

    def __init__(self, reference: str, candidate: str, ctx: z3.Context):
        funcs, self._modules = [], []  # the modules own the functions: keep them alive
        for text in (reference, candidate):
            module = ir.Module.parse(text)
            self._modules.append(module)
            for op in _main_function(module).operation.regions[0].blocks[0].operations:
                name = op.operation.name
                if name.startswith("linalg.") and name not in _ELEMENTWISE_LINALG:
                    raise NotApplicable(f"{name} is not elementwise")
            passmanager.PassManager.parse(_GENERALIZE).run(module.operation)
            funcs.append(_main_function(module))
        types = [str(f.operation.attributes["function_type"]) for f in funcs]
        if types[0] != types[1]:
            raise NotApplicable(f"the signatures differ: {types[0]} vs {types[1]}")
        ftype = ir.FunctionType(ir.TypeAttr(funcs[0].operation.attributes["function_type"]).value)
        self.ctx = ctx
        self.inputs = _Inputs([_element_type(t) for t in ftype.inputs], ctx)
        self.ref = _Kernel(funcs[0], self.inputs, "ref")
        self.cand = _Kernel(funcs[1], self.inputs, "cand")

    def decide(self, depth: int, deadline: float, timeout_s: float) -> FormalResult:
        outputs = list(zip(self.ref.outputs, self.cand.outputs))
        differs = z3.Or([z3.Not(r == c) for (r, _), (c, _) in outputs])
        alike = [*self.inputs.constant_tensors(), *(c == d for c, d in self.ref.choices + self.cand.choices)]
        example = self.scan(depth, deadline)
        if example is None:
            status, model = self.solve([differs], deadline)
            if status == z3.unsat:
                return FormalResult(PROVED, "no input makes any output differ bit for bit (any NaN equal to any NaN)")
            if status != z3.sat:
                return FormalResult(UNKNOWN, f"z3 did not decide within {timeout_s:g} s")
            if alike:
                status, model = self.solve([differs, *alike], deadline)
            if status == z3.unsat:
                return FormalResult(UNDECIDED, f"the outputs can differ, but only {self._where()}, which no "
                                               "constant-tensor counter-example shows; left to the randomized check")
            example = self.example(_model_eval(model), depth) if model is not None else None
        if example is not None and example.pop("rejects"):
            return FormalResult(REFUTED, f"a counter-example: {example['why']}", example=example)
        zero_sign = _zero_sign_matters()
        kinds = [_kind_differs(r, c, dt, zero_sign) for (r, dt), (c, _) in outputs]
        kind_status, model = self.solve([z3.Or(kinds), *alike, *self.ordinary()], deadline)
        if kind_status == z3.sat and (found := self.example(_model_eval(model), depth)).pop("rejects"):
            return FormalResult(REFUTED, f"a counter-example: {found['why']}", example=found)
        # A value bug shows on moderate inputs, where no rounding explains a difference of their size; one
        # window of magnitudes after another, so a bug hidden in (3000, 1e10) is found too.
        status = z3.unknown
        far = z3.Or([_far_apart(r, c, dt) for (r, dt), (c, _) in outputs])
        for low, high in MAGNITUDE_WINDOWS:
            status, model = self.solve([far, *alike, *self.ordinary(), *self.moderate(low, high)], deadline)
            if status == z3.sat and (found := self.example(_model_eval(model), depth)).pop("rejects"):
                return FormalResult(REFUTED, f"a counter-example: {found['why']}", example=found)
            if status == z3.unknown:
                break
        if kind_status != z3.unknown and status != z3.unknown:
            windows = ", ".join(f"2^{int(math.log2(lo))}..2^{int(math.log2(hi))}" for lo, hi in MAGNITUDE_WINDOWS)
            return FormalResult(UNDECIDED, "undecided: the bits can differ, and no counter-example was found on "
                                           f"constant tensors of special values or of magnitudes {windows} (what "
                                           "differs may be a reordered rounding); left to the randomized check",
                                example=example)
        return FormalResult(UNKNOWN, f"the bits can differ; z3 did not decide within {timeout_s:g} s whether "
                                     "beyond the tolerance", example=example)

    def _where(self) -> str:
        """Why outputs that differ somewhere agree on every constant-tensor input."""
        several_reads = len(self.inputs.vars) > len(self.inputs.by_argument())
        ties = bool(self.ref.choices + self.cand.choices)
        where = [w for w, present in (("where elements of one input differ from each other", several_reads),
                                      ("where maxnumf/minnumf may return either zero (MLIR leaves it open)", ties))
                 if present]
        return " or ".join(where)

    def scan(self, depth: int, deadline: float) -> dict[str, Any] | None:
        """Special values first (`SPECIAL_VALUES` on constant tensors, evaluated in the translation's own
        semantics): a rejecting example if one is found, else the first where the bits differ, else None."""
        args = self.inputs.by_argument()
        values = [[_scalar_value(v, self.inputs.dtypes[arg], self.ctx) for v in _specials(self.inputs.dtypes[arg])]
                  for arg in args]
        sizes = [len(v) for v in values]
        total = math.prod(sizes)
        picks = range(total) if total <= MAX_SCAN else sorted(random.Random(0).sample(range(total), MAX_SCAN))
        outputs = [(r, c) for (r, _), (c, _) in zip(self.ref.outputs, self.cand.outputs)]
        first = None
        for pick in picks:
            if time.perf_counter() > deadline:
                break
            chosen = []
            for size in reversed(sizes):
                pick, k = divmod(pick, size)
                chosen.append(k)
            chosen.reverse()
            pairs = [(v, values[i][chosen[i]]) for i, vs in enumerate(args.values()) for v in vs]
            pairs += [(c, z3.simplify(z3.substitute(d, *pairs))) for c, d in self.ref.choices + self.cand.choices]

            def evaluate(x: z3.ExprRef, pairs=pairs) -> z3.ExprRef:
                return z3.simplify(z3.substitute(x, *pairs))

            if all(z3.eq(evaluate(r), evaluate(c)) for r, c in outputs):
                continue
            found = self.example(evaluate, depth)
            if found["rejects"]:
                return found
            first = first or found
        return first

    def solve(self, constraints: list, deadline: float):
        left = deadline - time.perf_counter()
        if left <= 0.01:
            return z3.unknown, None
        # Bit-blasting to SAT: z3's QF_FPBV solver takes seconds where this takes a tenth; solving
        # the equalities first is what makes the constant-tensor queries quick.
        solver = z3.Then(*(z3.Tactic(t, self.ctx) for t in _TACTICS), ctx=self.ctx).solver()
        solver.set("timeout", max(1, int(left * 1000)))
        solver.add(*constraints)
        status = solver.check()
        return status, solver.model() if status == z3.sat else None

    def ordinary(self) -> list[z3.BoolRef]:
        """The inputs a counter-example may use: no rounded operation of either kernel overflows (finite
        operands give a finite result), and no input or rounded result is subnormal."""
        out = [z3.Not(_fp.IsSubnormal(v)) for v in self.inputs.vars.values() if isinstance(v, z3.FPRef)]
        for name, result, operands in self.ref.rounded + self.cand.rounded:
            out.append(z3.Not(_fp.IsSubnormal(result)))
            if name == "math.sqrt":
                continue
            fps = [o for o in operands if isinstance(o, z3.FPRef)]
            pre = [_finite(o) for o in fps]
            if name == "arith.divf":
                pre.append(z3.Not(_fp.IsZero(operands[1])))
            out.append(z3.Implies(z3.And(pre) if pre else z3.BoolVal(True, self.ctx), _finite(result)))
            if name in _UNDERFLOWS:
                nonzero = [z3.Not(_fp.IsZero(o)) for o in fps[:_UNDERFLOWS[name]]]
                out.append(z3.Implies(z3.And(*[_finite(o) for o in fps], *nonzero), z3.Not(_fp.IsZero(result))))
        return out

    def moderate(self, low_value: float, high_value: float) -> list[z3.BoolRef]:
        """Every float input zero or of a magnitude in [low_value, high_value] (a ratio rounding cannot
        bridge), clipped to what the input's dtype holds."""
        out = []
        for v in self.inputs.vars.values():
            if isinstance(v, z3.FPRef):
                top = 2.0 ** (2 ** (_FP[_dtype_of(v)][0] - 1) - 2)  # well inside the dtype's range
                low, high = (_fp_const(min(x, top), _dtype_of(v), self.ctx) for x in (low_value, high_value))
                size = _fp.Abs(v)
                out.append(z3.Or(_fp.IsZero(v), z3.And(_fp.GEQ(size, low), _fp.LEQ(size, high))))
        return out

    def example(self, evaluate: Callable[[z3.ExprRef], z3.ExprRef], depth: int) -> dict[str, Any]:
        """An input (`evaluate` gives each expression's value there) and both kernels' outputs there,
        and whether the rule rejects it (`rejects`)."""
        inputs = {f"arg{arg}": _value(evaluate, vs[0], self.inputs.dtypes[arg])
                  for arg, vs in self.inputs.by_argument().items()}
        values = [v for v in inputs.values() if isinstance(v, float)]
        aside = next((f"input {k} = {v!r} is subnormal" for k, v in inputs.items()
                      if isinstance(v, float) and _subnormal(v, self.inputs.dtypes[int(k[3:])])), "")
        for name, result, operands in self.ref.rounded + self.cand.rounded:
            dtype = _dtype_of(result)
            value = _value(evaluate, result, dtype)
            values.append(value)
            if not aside and _subnormal(value, dtype):
                aside = f"{name} gives a subnormal {value!r}"
            elif not aside and name != "math.sqrt":
                ops = [_value(evaluate, o, _dtype_of(o)) for o in operands if isinstance(o, z3.FPRef)]
                finite = all(math.isfinite(v) for v in ops)
                if not math.isfinite(value) and finite and not (name == "arith.divf" and ops[1] == 0):
                    aside = f"{name} overflows"
                elif value == 0 and finite and name in _UNDERFLOWS and all(v != 0 for v in ops[:_UNDERFLOWS[name]]):
                    aside = f"{name} underflows to zero"
        scale = max([abs(v) for v in values if math.isfinite(v)] or [0.0])
        rounding = max(depth, len(self.ref.rounded), len(self.cand.rounded))
        zero_sign = _zero_sign_matters()
        first = None
        for k, ((r, dtype), (c, _)) in enumerate(zip(self.ref.outputs, self.cand.outputs)):
            ref_v, cand_v = _value(evaluate, r, dtype), _value(evaluate, c, dtype)
            if _same(ref_v, cand_v):
                continue
            np_dtype = numpy_dtype(dtype)
            verdict = compare(np.array([ref_v], dtype=np_dtype), np.array([cand_v], dtype=np_dtype), depth)
            shown = {"inputs": inputs, "output": k, "reference": ref_v, "candidate": cand_v,
                     "max_error": verdict.get("max_error"), "tolerance": verdict.get("tolerance"),
                     "why": verdict.get("why") or "within the tolerance"}
            if not aside and not verdict["ok"] and _beyond(ref_v, cand_v, dtype, rounding, scale, zero_sign):
                return {**shown, "rejects": True}
            if not verdict["ok"]:
                shown["compare"] = shown["why"]
            shown["why"] = (f"{aside} here: a rounding effect the tolerance leaves aside" if aside else
                            f"within {rounding} roundings of the largest value there ({scale:.3g}): a reordering")
            first = first or shown
        return {**(first or {"inputs": inputs}), "rejects": False}


def _model_eval(model: z3.ModelRef) -> Callable[[z3.ExprRef], z3.ExprRef]:
    return lambda x: model.eval(x, model_completion=True)


def _value(evaluate: Callable[[z3.ExprRef], z3.ExprRef], x: z3.ExprRef, dtype: str) -> Any:
    """The value of `x` as Python: float (exact, -0.0, nan, inf), int (signed) or bool."""
    if dtype == "i1":
        return bool(z3.is_true(evaluate(x)))
    if dtype not in _FP:
        return evaluate(x).as_signed_long()
    if z3.is_true(evaluate(_fp.IsNaN(x))):
        return float("nan")
    bits = evaluate(_fp.ToIEEEBV(x)).as_long()
    return float(np.array(bits, dtype=_UINT[dtype]).view(numpy_dtype(dtype)))


def _specials(dtype: str) -> tuple:
    return SPECIAL_VALUES["i1" if dtype == "i1" else "float" if dtype in _FP else "int"]


def _scalar_value(v: Any, dtype: str, ctx: z3.Context) -> z3.ExprRef:
    if dtype in _FP:
        return _fp_const(v, dtype, ctx)
    if dtype == "i1":
        return z3.BoolVal(v, ctx)
    width = _sort(dtype, ctx).size()
    return z3.BitVecVal(v % (1 << width), width, ctx)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _subnormal(v: Any, dtype: str) -> bool:
    return dtype in _FP and v != 0 and math.isfinite(v) and abs(v) < float(np.finfo(numpy_dtype(dtype)).smallest_normal)


def _zero_sign_matters() -> bool:
    """Whether `equivalence.compare` rejects -0 where the reference gives +0 (a kind of difference, then)."""
    return not compare(np.array([0.0], np.float32), np.array([-0.0], np.float32), 1)["ok"]


FAR_APART = 2.0**-8
"""Relative difference of two finite outputs the magnitude search asks for: far beyond what reordering a
kernel's few roundings can cause (2^-24 each in f32), so z3 looks for a value bug, not a rounding."""


def _far_apart(r: z3.ExprRef, c: z3.ExprRef, dtype: str) -> z3.BoolRef:
    """The two outputs differ by more than `FAR_APART` of the reference's magnitude (integers: at all)."""
    if dtype not in _FP:
        return r != c
    rne = z3.RNE(r.ctx)
    gap = _fp.Abs(_fp.Sub(rne, r, c))
    return z3.And(z3.Not(_fp.IsNaN(r)), z3.Not(_fp.IsNaN(c)),
                  _fp.GT(gap, _fp.Mul(rne, _fp.Abs(r), _fp_const(FAR_APART, dtype, r.ctx))))


def _kind_differs(r: z3.ExprRef, c: z3.ExprRef, dtype: str, zero_sign: bool) -> z3.BoolRef:
    """The outputs differ in a way `compare` rejects whatever the tolerance."""
    if dtype not in _FP:
        return r != c
    kinds = [z3.Xor(_fp.IsNaN(r), _fp.IsNaN(c)), z3.Xor(_fp.IsInf(r), _fp.IsInf(c)),
             z3.And(_fp.IsInf(r), _fp.IsInf(c), r != c)]
    if zero_sign:
        kinds.append(z3.And(_fp.IsZero(r), _fp.IsZero(c), r != c))
    return z3.Or(kinds)


def _beyond(ref: Any, cand: Any, dtype: str, rounding: int, scale: float, zero_sign: bool) -> bool:
    """The rule of the module docstring: a difference in kind, or one no reordering of the rounding explains."""
    if dtype not in _FP:
        return ref != cand
    if math.isnan(ref) or math.isnan(cand):
        return math.isnan(ref) != math.isnan(cand)
    if math.isinf(ref) or math.isinf(cand):
        return ref != cand
    if ref == 0 and cand == 0:
        return zero_sign and math.copysign(1, ref) != math.copysign(1, cand)
    rtol, factor = tolerance(dtype, rounding)
    return abs(ref - cand) > rtol * abs(ref) + factor * scale
