"""`kernel` candidates: a replacement for the whole kernel function.

Payload: {"mlir": "func.func @main(...) -> ... { ... }"}: exactly one
func.func with the kernel's signature, no calls, only ops of pure tensor
computation (`KERNEL_DIALECTS`), which may carry IREE `compilation_info`.
"""

from __future__ import annotations

import re
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


ATTRIBUTE_DIALECTS = ("builtin", "linalg", "arith", "math", "vector", "tensor", "affine", "iree_codegen", "iree_cpu")
"""Dialects whose attributes a replacement may carry: the ops' own, and IREE's codegen configs."""
LOWERING_KEYS = ("distribution", "vector_common_parallel", "vector_reduction", "cache_parallel",
                 "cache_reduction", "vector_inner_parallel")
_DIALECT_REF = re.compile(r"[#!]([A-Za-z_][\w]*)\.")
_DOTTED_KEY = re.compile(r"(?<![\w.#!\"])([A-Za-z_]\w*)\.[\w.]+(?=\s*[=,}])")
"""A dialect attribute's name inside a dictionary (`{hal.executable.objects = ...}`, a unit `{iree.abi.x}`)."""
IREE_ATTRIBUTES = {"iree_codegen": ("compilation_info", "lowering_config", "translation_info"),
                   "iree_cpu": ("lowering_config", "pipeline")}
"""The IREE attributes a replacement may carry: tile configurations, nothing that names code (a ukernel)."""
_IREE_REF = re.compile(r"#(iree_codegen|iree_cpu)\.(\w+)")


def check_attributes(kernel: Kernel, func) -> None:
    """The attributes of a replacement kernel: its ops' own and IREE codegen configurations, checked
    with the limits of `tiling` candidates; nothing that reaches outside the kernel.

    A discardable dialect attribute (`hal.executable.objects` would link an object file into the
    dispatch, `iree_codegen.translation_info`'s `codegen_spec` a transform script) is rejected, and
    every `lowering_config` (inside `compilation_info` or alone) must have integer tiles >= 0
    whose vector product is at most `tiling.MAX_VECTOR_TILE_ELEMENTS` (the root op's: also within
    its loop bounds, as a `tiling` candidate's), and a pipeline from `tiling.CODEGEN_PIPELINES`.
    Raises CandidateRejected(parse) naming the op and the attribute.
    """
    from mlirforge.passes import op_name, walk_nested

    problems: list[str] = []

    def visit(op) -> None:
        name = op_name(op)
        attrs = op.operation.attributes
        for i in range(len(attrs)):
            named = attrs[i]  # a NamedAttribute, by position
            key, text = named.name, str(named.attr)
            if "." in key and not key.startswith("mlirforge."):
                problems.append(f"{name} carries attribute '{key}', which a kernel candidate may not set")
                continue
            foreign = sorted({d for d in _DIALECT_REF.findall(text) if d not in ATTRIBUTE_DIALECTS}
                             | {d for d in _DOTTED_KEY.findall(text) if d not in ATTRIBUTE_DIALECTS})
            if foreign:
                problems.append(f"{name} attribute '{key}' uses {', '.join(foreign)} (allowed: "
                                f"{', '.join(ATTRIBUTE_DIALECTS)})")
                continue
            other = sorted({f"#{d}.{a}" for d, a in _IREE_REF.findall(text) if a not in IREE_ATTRIBUTES[d]})
            if other:
                problems.append(f"{name} attribute '{key}' uses {', '.join(other)}; a kernel candidate may carry "
                                "only IREE tile configurations (compilation_info, lowering_config, translation_info)")
                continue
            if "lowering_config" in text or "translation_info" in text:
                why = _lowering_problem(kernel, name, text)
                if why:
                    problems.append(f"{name} attribute '{key}': {why}")

    walk_nested(func, visit)
    if problems:
        raise CandidateRejected(Stage.PARSE, "; ".join(problems[:3]))


def _lowering_problem(kernel: Kernel, op: str, text: str) -> str:
    """Why an IREE lowering configuration is not allowed ('' if it is)."""
    from mlirforge.llm_rewrite.candidates.tiling import CODEGEN_PIPELINES, TILE_KEYS, check_tile_sizes, unrolled_problem

    if "codegen_spec" in text:
        return "a codegen_spec (a transform script) is not allowed"
    for pipeline in re.findall(r"pipeline\s*=\s*(?:#iree_cpu\.pipeline<)?(\w+)", text):
        if pipeline not in CODEGEN_PIPELINES:
            return f"pipeline {pipeline} is not one of {', '.join(CODEGEN_PIPELINES)}"
    lists = {k: [int(v) for v in re.findall(r"-?\d+", body)] for k, body in _bracketed(text, LOWERING_KEYS)}
    nested = re.search(r"tile_sizes\s*=\s*\[(.*)\]\s*[,>]", text)
    if nested:  # the older form: tile_sizes = [[distribution], [parallel vector], [reduction vector]]
        levels = [[int(v) for v in re.findall(r"-?\d+", lvl)] for lvl in re.findall(r"\[([^\[\]]*)\]", nested.group(1))]
        lists.update(zip(TILE_KEYS, levels))
    if any(v < 0 for values in lists.values() for v in values):
        return "tile sizes must be >= 0"
    too_many = unrolled_problem(lists)
    if too_many:
        return too_many
    if op == kernel.root:
        try:
            check_tile_sizes(kernel, {k: lists[k] for k in TILE_KEYS if k in lists})
        except CandidateRejected as exc:
            return exc.reason
    return ""


def _bracketed(text: str, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, the whole balanced `[...]` after `key =`) for each key in `text`: nested lists (scalable
    sizes, `[[1], 100000]`) included, so no size hides behind an inner bracket."""
    out = []
    for m in re.finditer(rf"\b({'|'.join(keys)})\s*=\s*\[", text):
        depth, i = 0, m.end() - 1
        for j in range(i, len(text)):
            depth += {"[": 1, "]": -1}.get(text[j], 0)
            if depth == 0:
                out.append((m.group(1), text[i:j + 1]))
                break
    return out


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
            check_attributes(kernel, funcs[0])
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
            "   every input, including signed zeros, infinities and NaN. Weight arguments may be repacked",
            "   (linalg.pack into panels): work on weights alone is hoisted out of the call. An op may carry",
            "   IREE's tile configuration, checked with the limits of `tiling` candidates:",
            "   {compilation_info = #iree_codegen.compilation_info<lowering_config = #iree_cpu.lowering_config<",
            "   distribution = [..], vector_common_parallel = [..], vector_reduction = [..]>, translation_info =",
            "   #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<DoubleTilingExpert>>>}.",
            "   No other dialect attributes.",
        ])


KIND = KernelKind()
