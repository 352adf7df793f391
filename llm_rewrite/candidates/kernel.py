"""`kernel` candidates: a replacement for the whole kernel function.

Payload: {"mlir": "func.func @main(...) -> ... { ... }"}: exactly one
func.func with the kernel's signature, no calls, only ops of pure tensor
computation (`KERNEL_DIALECTS`), which may carry IREE `compilation_info`.
"""

from __future__ import annotations

from typing import Any

from mlirforge.llm_rewrite.candidates.base import (
    Built, CandidateKind, CandidateRejected, first_error, main_function, nesting_depth,
)
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Kernel, Stage

MAX_CANDIDATE_CHARS = 200_000
MAX_NESTING = 128
"""Bracket nesting a replacement may have (a real kernel nests ~15 deep); deeper text is refused
before MLIR's recursive parser sees it."""
MAX_MLIR_IN_PROMPT = 60_000
KERNEL_DIALECTS = ("arith", "math", "linalg", "tensor", "scf", "vector", "affine", "complex", "func")
"""What a replacement kernel may use: pure computation on its tensor arguments."""


class KernelKind(CandidateKind):
    name = "kernel"
    fields = frozenset({"mlir"})

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("mlir"), str):
            raise ValueError("kernel candidate needs 'mlir': the replacement func.func as a string")
        return payload

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        from mlirforge.lowering.ir import ir
        from mlirforge.passes import KERNEL_HASH, KERNEL_ROOT, function_type, op_name, walk_nested

        source = payload.get("mlir")
        if not isinstance(source, str):
            raise CandidateRejected(Stage.PARSE, "kernel candidate without an 'mlir' string")
        if len(source) > MAX_CANDIDATE_CHARS:
            raise CandidateRejected(Stage.PARSE, f"kernel candidate of {len(source)} characters is too large")
        if nesting_depth(source, MAX_NESTING) > MAX_NESTING:
            raise CandidateRejected(Stage.PARSE, f"brackets nest more than {MAX_NESTING} deep")
        with ir.Context(), ir.Location.unknown():
            want = str(function_type(main_function(ir.Module.parse(kernel.module))))
            try:
                cmod = ir.Module.parse(source)
            except ir.MLIRError as exc:
                raise CandidateRejected(Stage.PARSE, f"does not parse: {first_error(exc)}") from None
            if not cmod.operation.verify():
                raise CandidateRejected(Stage.PARSE, "does not verify")
            funcs = [op for op in cmod.body.operations if op_name(op) == "func.func"]
            others = [op_name(op) for op in cmod.body.operations if op_name(op) != "func.func"]
            if len(funcs) != 1 or others:
                raise CandidateRejected(Stage.PARSE,
                                        "a kernel candidate must hold exactly one func.func and nothing else")
            if len(cmod.operation.attributes):
                # Only the function is substituted into the model: module attributes (a target,
                # a device) would change the build that is timed but not the one that ships.
                names = ", ".join(str(a) for a in cmod.operation.attributes)
                raise CandidateRejected(Stage.PARSE, f"a kernel candidate may not set module attributes ({names})")
            got = str(function_type(funcs[0]))
            if got != want:
                raise CandidateRejected(Stage.SIGNATURE, f"signature {got} differs from the kernel's {want}")
            ops: list[str] = []
            walk_nested(funcs[0], lambda o: ops.append(op_name(o)))
            if "func.call" in ops:
                raise CandidateRejected(Stage.SIGNATURE, "kernel candidates must not call other functions")
            foreign = sorted({o for o in ops if o.split(".", 1)[0] not in KERNEL_DIALECTS})
            if foreign:
                # State (util.global), host calls, HAL/stream ops or memory effects outside
                # tensors would let a kernel cache results or reach beyond its arguments.
                raise CandidateRejected(Stage.PARSE, f"op(s) {', '.join(foreign[:5])} not allowed in a kernel "
                                                     f"candidate (allowed dialects: {', '.join(KERNEL_DIALECTS)})")
            new = funcs[0]
            new.attributes["sym_name"] = ir.StringAttr.get("main")
            if "sym_visibility" in new.attributes:
                del new.attributes["sym_visibility"]
            new.attributes[KERNEL_HASH] = ir.StringAttr.get(kernel.hash)
            new.attributes[KERNEL_ROOT] = ir.StringAttr.get(kernel.root)
            return Built(cmod.operation.get_asm(), tuple(settings.base_flags))

    def describe(self, payload: dict[str, Any]) -> str:
        return "kernel (replacement body)"

    def payload_text(self, payload: dict[str, Any], full: bool) -> str:
        mlir = payload.get("mlir", "")
        if full and len(mlir) <= MAX_MLIR_IN_PROMPT:
            return "replacement kernel:\n```mlir\n" + mlir + "\n```"
        return f"replacement kernel ({len(mlir)} characters, not shown)"

    def prompt(self, kernel: Kernel | None) -> str:
        return "\n".join([
            '{"kind": "kernel", "mlir": "func.func @main(...) -> ... { ... }"}',
            "   A replacement for the whole function: exactly one func.func, the identical signature",
            "   (argument and result types in order), no calls to other functions, only upstream MLIR",
            "   dialects (linalg, tensor, arith, math, scf, vector). It must compute the same values for",
            "   every input, including signed zeros, infinities and NaN.",
        ])


KIND = KernelKind()
