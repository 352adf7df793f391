"""Formal equivalence of two elementwise kernels: their scalar computations in z3, with IEEE floats.

One job: given the reference kernel's module and a candidate's (MLIR text, linalg on
tensors, one public function each, the same signature), prove that no input makes their
outputs differ, or find an input on which the candidate is wrong by the project's own
accuracy rule, or say why neither can be done. `check_equivalence` is the entry point;
`llm_rewrite.evaluate` runs it after a candidate is built and before the randomized check.

What is translated (anything else is "not applicable" and the randomized check alone decides):
- Ops: `linalg.generic` with parallel iterators only, whose output maps are permutations and
  whose input maps hold loop dimensions or constants (identity, broadcast, transpose); the
  named ops that generalize to that (`linalg.fill`, `copy`, `transpose`, `broadcast`, `map`);
  arith and math ops applied to whole tensors (`convert-elementwise-to-linalg`); splat
  constants; `tensor.empty` as a destination that is never read. A chain of such ops is
  followed through: each output element is one formula over input elements.
- Shapes: output element (d0, d1, ...) reads each input at index expressions in those loop
  variables (a dimension of size 1 is always index 0). Every distinct (argument, index
  expression) is its own variable, so `x[d0, d1]` and `x[d1, d0]` are independent: a proof
  over independent variables covers every real input and more, so it is sound.
- Element types: f32, f16, bf16 as z3's FP sorts (round to nearest even); iN as bit-vectors;
  i1 as booleans. f64 is not: IREE demotes it to f32 at the module boundary
  (`--iree-input-demote-f64-to-f32`), so what runs is not what the MLIR says.
- Scalar ops, with the semantics of MLIR's arith dialect documentation: addf subf mulf divf
  negf; maximumf/minimumf (NaN if either operand is NaN, -0 < +0); maxnumf/minnumf (the
  non-NaN operand; on -0 and +0 "either of the arguments": a free choice per op, each side
  its own, in the proof); cmpf (all 16 predicates; ordered ones are false on NaN); select;
  constants; extf truncf (to nearest even) sitofp uitofp; math.absf sqrt fma (correctly
  rounded in IEEE 754); addi subi muli andi ori xori cmpi extsi extui trunci max/min si/ui.
  Not: math.exp, tanh, erf, log, ... (their rounding is a library's, no exact SMT form),
  fastmath flags (they license other results), integer overflow flags, division and
  remainders, bitcasts, fptosi/fptoui (poison out of range), linalg.index.

The steps, all within `timeout_s` together (`EvalSettings.formal_timeout_s`, default 3 s),
z3 bit-blasting to SAT in a fresh context per check:
0. Special values: every argument a constant tensor of ±0, ±1, 2, -0.5, 3, ±inf or NaN
   (`SPECIAL_VALUES`; up to `MAX_SCAN` combinations), each evaluated in the translation's
   own semantics (z3's simplifier on constants). An input the rule below rejects is a
   counter-example at once; one where the bits differ makes the proof moot.
1. Proof: is there an input on which some output differs bit for bit (any NaN equals any
   NaN, +0 differs from -0)? unsat: PROVED. unknown (the time ran out): UNKNOWN.
2. If the bits can differ, is it a counter-example? Inputs are now constant tensors (every
   element of an argument holds one value: an input the worker could be given, and on it
   every output element is the same, so the worker's `compare` on one element is its verdict
   on the tensor), and the tie choices of maxnumf/minnumf are made alike on both sides.
   a. The solver's (or step 0's) example input is checked with the rule below;
   b. failing that, z3 is asked for an input where the outputs differ in kind (below)
      without overflow, underflow or subnormals;
   c. failing that, for one where they differ at all, with every float input zero or of a
      magnitude in one window of `counterexamples.MAGNITUDE_WINDOWS` after another (2^-8..2^40:
      a value bug shows there, beyond any rounding), checked as in a.
   REFUTED when one of them finds one, else UNDECIDED (UNKNOWN if time ran out).

The rule (reassociation is not a counter-example). The randomized check accepts a
candidate whose outputs stay within `equivalence.tolerance` of the reference: reassociating
(a+b)+c into a+(b+c), distributing, or any other reordering that changes the rounding
passes. The proof asks for bit-exactness, so such a candidate is never PROVED, and z3's
example can even be an input where the worker's `compare` would fail: a cancellation
(1e8 + -1e8 + 1 is 1 one way and 0 the other) or an overflow (3e38 + 3e38 - 3e38). Those are
rounding effects at magnitudes the rounding scales with (an underflow to zero is one too:
(a/b)/c against a/(b*c) gives NaN where b*c underflows and a is 0), which the tolerance is
there to accept and the worker's input distributions deliberately avoid (`make_input`:
"large but safe"). So the formal check rejects only on an input where
  - no operation overflows (every add, sub, mul, fma, truncf, conversion of finite operands,
    and every division of finite operands by a nonzero one, has a finite result) or
    underflows (a product of finite nonzero operands, a quotient of a finite nonzero one by a
    finite one, a truncation of a finite nonzero value is not zero), and no input or rounded
    result is subnormal (IREE's CPU code flushes subnormals to zero, as `compare` does: on
    such an input the IEEE semantics proved here and what runs part ways), and
  - an output differs in kind, which `compare` rejects whatever the tolerance: NaN vs not,
    inf vs finite or the sign of an inf, any difference of an integer output, and the sign
    of a zero if `compare` rejects that (it is asked, so the two rules cannot drift apart);
    or its finite values differ by more than `rtol * |ref| + factor * S`, with (rtol,
    factor) = `equivalence.tolerance(dtype, n)`, n the larger of the reduction depth and the
    number of rounded operations of either kernel, and S the largest magnitude of any finite
    input or rounded value of either kernel there (the "largest partial sum"
    `equivalence.tolerance` scales with). Reordering n rounded operations moves a result by at
    most about n units of rounding of S, which this bound accepts;
  - and `equivalence.compare` itself, given the two outputs as one-element tensors (what it sees
    on the constant-tensor input), rejects it: our bound is looser than its, so this only
    guards against our own arithmetic, and a change of its rule reaches this check too.
A difference found only where elements of one argument differ from each other (a transposed
read) is left to the randomized check, and so is a finite difference beyond the bound that
neither example (a, c) shows (the bound itself is not encoded: the multiplications make z3
time out). Known limits: an ill-conditioned computation (branching on a rounded value,
dividing by a cancelled difference) can still yield a counter-example for a reordering; it
is an input on which the candidate's result is wrong by `compare`'s own rule. And z3's
solving times vary between processes (its internal hashing), so a check near the time
limit may end UNKNOWN in one run and decided in another; what it decides never varies in
kind: PROVED is a proof and REFUTED comes with an input that the rule rejects.

PROVED is a statement about the MLIR's IEEE 754 semantics (subnormals included); what runs
is IREE's compilation of it, which the randomized check still tests (as it tests what the
proof does not see: writes into inputs, reused output buffers).

Nothing here runs the candidate: the counter-example is the MLIR's semantics, reported with
its values in the verdict's evidence. Each check has its own z3 context, so checks may run
in parallel threads.

The package, one job a module:
- `result.py`: what a check can conclude (the outcomes, `FormalResult`, `NotApplicable`);
- `sorts.py`: MLIR element types as z3 sorts and exact constants, z3's FP functions in one context;
- `scalar_ops.py`: the semantics of each translated arith/math scalar op;
- `translate.py`: one MLIR kernel's outputs as z3 formulas over shared input variables;
- `counterexamples.py`: the two kernels side by side, the queries that look for a
  counter-example, and the rule above that says whether an input is one.
"""

from __future__ import annotations

import dataclasses
import time

import z3

from mlirforge.llm_rewrite.formal.counterexamples import MAX_SCAN, SPECIAL_VALUES, _Pair
from mlirforge.llm_rewrite.formal.result import (NOT_APPLICABLE, PROVED, REFUTED, UNKNOWN, UNDECIDED,
                                                 FormalResult, NotApplicable)
from mlirforge.llm_rewrite.formal.translate import MAX_SCALAR_OPS
from mlirforge.llm_rewrite.settings import DEFAULT_FORMAL_TIMEOUT_S
from mlirforge.lowering.ir import ir

__all__ = ["FormalResult", "check_equivalence", "PROVED", "REFUTED", "UNDECIDED", "NOT_APPLICABLE", "UNKNOWN",
           # The check's limits: defined where they are used, still readable here as before the split.
           "MAX_SCALAR_OPS", "SPECIAL_VALUES", "MAX_SCAN"]

MEMORY_MB = 2048
"""z3's memory limit (its global `memory_max_size`); past it a query fails and the check says so."""


def check_equivalence(reference: str, candidate: str, depth: int = 1,
                      timeout_s: float = DEFAULT_FORMAL_TIMEOUT_S) -> FormalResult:
    """Prove or refute that `candidate` computes what `reference` does (two MLIR modules' public functions).

    `depth`: the kernel's reduction depth (scales the tolerance, as in the worker). Never
    raises for a malformed or unsupported module: that is NOT_APPLICABLE with the reason.
    """
    start = time.perf_counter()
    z3.set_param("memory_max_size", MEMORY_MB)
    try:
        with ir.Context(), ir.Location.unknown():
            pair = _Pair(reference, candidate, z3.Context())
        result = pair.decide(depth, start + timeout_s, timeout_s)
    except NotApplicable as exc:
        result = FormalResult(NOT_APPLICABLE, str(exc))
    except Exception as exc:  # noqa: BLE001 - what cannot be translated or solved is not judged here
        lines = str(exc).strip().splitlines()
        result = FormalResult(NOT_APPLICABLE, f"could not translate or solve: {type(exc).__name__}"
                                              + (f": {lines[0]}" if lines else ""))
    return dataclasses.replace(result, seconds=time.perf_counter() - start)
