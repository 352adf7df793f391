"""`pipeline` candidates: an ordered list of passes, run on one kernel.

Payload: {"pipeline": "pass-a,pass-b{option=value}"}: the textual pipeline of
`mlirforge-opt -p`, whose passes are ours (`KERNEL_PASSES`) or passes of the
installed IREE compiler's registry, upstream MLIR and IREE preprocessing
(`REGISTRY_PASSES`), in any order. Consecutive registry passes run as one
`builtin.module(func.func(...))` pipeline in the installed IREE's `iree-opt`, in
a subprocess (a pass crashing on options it does not guard costs a verdict),
which also refuses a name or option this IREE does not have. The result is
checked like a `kernel` candidate (dialects, attributes, signature).
"""

from __future__ import annotations

from typing import Any

from mlirforge.llm_rewrite.candidates.base import Built, CandidateKind, CandidateRejected, first_error, main_function
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Kernel, Stage

KERNEL_PASSES = ("mlirforge-fold-transpose-into-matmul", "mlirforge-conv-to-channels-last",
                 "mlirforge-generalize-named-ops")
"""Passes a pipeline candidate may run on one kernel. Outlining, inlining and substitution are the
search's own; tile sizes go through `tiling` candidates, whose sizes are checked (`tiling.check_tile_sizes`)."""


REGISTRY_PASSES = (
    "canonicalize", "cse", "loop-invariant-code-motion",
    "linalg-generalize-named-ops", "linalg-specialize-generic-ops", "linalg-fold-unit-extent-dims",
    "linalg-fuse-elementwise-ops", "linalg-inline-scalar-operands", "linalg-fold-into-elementwise",
    "linalg-block-pack-matmul",
    "iree-global-opt-convert-conv2d-to-img2col", "iree-global-opt-propagate-linalg-transpose",
    "iree-preprocessing-convert-conv-to-channels-last", "iree-preprocessing-convert-conv-filter-to-channels-last",
    "iree-preprocessing-convert-1x1-filter-conv2d-to-matmul",
)
"""Function passes of the installed IREE compiler (upstream MLIR and IREE preprocessing) a pipeline
candidate may order with ours. Each rewrites linalg on tensors into linalg on tensors, so the result
stays a kernel the checks can read; `iree-opt` refuses one this IREE does not register."""


REGISTRY_TIMEOUT_S = 15.0
"""Seconds `iree-opt` may take for one run of registry passes on one kernel (they take well under one;
a pass given options it does not guard against may crash, or hang in LLVM's crash handler)."""


def _run_registry_passes(module_text: str, pieces: list[str]) -> str:
    """`module_text` after `builtin.module(func.func(pieces))`, run by the installed IREE's `iree-opt` in a
    subprocess: a pass given options it does not guard against (`linalg-block-pack-matmul{block-factors=0,0,0}`
    segfaults) must cost a verdict, never the search's process. CandidateRejected(parse) otherwise."""
    import subprocess

    from iree.compiler.tools.binaries import find_tool

    import os

    pipeline = f"builtin.module(func.func({','.join(pieces)}))"
    # Without symbolization LLVM's crash handler prints its stack at once (with it: a minute of llvm-symbolizer).
    env = {**os.environ, "LLVM_DISABLE_SYMBOLIZATION": "1"}
    try:
        proc = subprocess.run([find_tool("iree-opt"), f"--pass-pipeline={pipeline}", "-"], input=module_text,
                              capture_output=True, text=True, timeout=REGISTRY_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise CandidateRejected(Stage.PARSE, f"pipeline {pipeline} took longer than {REGISTRY_TIMEOUT_S:g} s in the "
                                             "IREE compiler: its options are not valid for this kernel") from None
    if proc.returncode < 0 or "Stack dump" in proc.stderr:
        raise CandidateRejected(Stage.PARSE, f"pipeline {pipeline} crashed the IREE compiler (exit status "
                                             f"{proc.returncode}): its options are not valid for this kernel")
    if proc.returncode != 0:
        error = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:300])
        raise CandidateRejected(Stage.PARSE, f"pipeline {pipeline}: {error.strip()}")
    return proc.stdout


def apply_pipeline(kernel: Kernel, text: str, allowed: tuple[str, ...] | None = None) -> str:
    """The kernel's standalone module after the pipeline `text` (its passes among `allowed`, if given);
    CandidateRejected for a bad or failing one."""
    from mlirforge.lowering.ir import ir
    from mlirforge.passes import PassFailure, PipelineError, function_type, parse_pipeline, run_pipeline, split_pipeline

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(kernel.module)
        want = str(function_type(main_function(module)))
        try:
            pieces = [(piece.strip(), column) for piece, column in split_pipeline(text)]
        except PipelineError as exc:
            raise CandidateRejected(Stage.PARSE, str(exc)) from None
        # Runs of consecutive passes of one registry, in order: ours, or the IREE compiler's.
        runs: list[tuple[bool, list[str]]] = []
        if allowed is not None:
            other = sorted({piece.partition("{")[0].strip() for piece, _ in pieces}
                           - set(allowed) - set(REGISTRY_PASSES))
            if other:
                raise CandidateRejected(Stage.PARSE, f"pass(es) {', '.join(other)} not allowed in a pipeline "
                                                     f"candidate (allowed: {', '.join(allowed)}, "
                                                     f"{', '.join(REGISTRY_PASSES)}; tile sizes: a tiling "
                                                     "candidate)")
        for piece, _ in pieces:
            name = piece.partition("{")[0].strip()
            registry = allowed is not None and name in REGISTRY_PASSES
            if runs and runs[-1][0] == registry:
                runs[-1][1].append(piece)
            else:
                runs.append((registry, [piece]))
        try:
            for registry, run in runs:
                if registry:
                    module = ir.Module.parse(_run_registry_passes(module.operation.get_asm(), run))
                    continue
                try:
                    passes = parse_pipeline(",".join(run))
                except PipelineError as exc:
                    raise CandidateRejected(Stage.PARSE, str(exc)) from None
                run_pipeline(module, passes)
        except (ir.MLIRError, PassFailure) as exc:
            raise CandidateRejected(Stage.PARSE, f"pipeline failed: {first_error(exc)}") from None
        got = str(function_type(main_function(module)))
        if got != want:
            raise CandidateRejected(Stage.SIGNATURE, f"the rewrite changed the signature to {got}")
        return module.operation.get_asm()


class PipelineKind(CandidateKind):
    name = "pipeline"
    fields = frozenset({"pipeline"})

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("pipeline"), str):
            raise ValueError("pipeline candidate needs 'pipeline': a comma-separated pass pipeline string")
        return payload

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        text = payload.get("pipeline")
        if not isinstance(text, str):
            raise CandidateRejected(Stage.PARSE, "pipeline candidate without a 'pipeline' string")
        source = apply_pipeline(kernel, text, KERNEL_PASSES)
        from mlirforge.llm_rewrite.candidates import get

        # The passes' output is checked as a hand-written replacement would be (dialects, attributes).
        return get("kernel").build(kernel, {"mlir": source}, settings)

    def describe(self, payload: dict[str, Any]) -> str:
        return "pipeline " + str(payload.get("pipeline", ""))

    def prompt(self, kernel: Kernel | None) -> str:
        return "\n".join([
            '{"kind": "pipeline", "pipeline": "pass-a,pass-b{option=value}"}',
            "   Passes run on the kernel in order, any mix of ours (names and options below) and these of",
            f"   the IREE compiler (MLIR's own options syntax): {', '.join(REGISTRY_PASSES)}.",
        ])


KIND = PipelineKind()
