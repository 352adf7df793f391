"""The evaluation cascade for one candidate: parse/verify -> signature -> build -> numerics -> timing.

Cheapest first; the first failure stops the cascade and becomes the Verdict's
reason (and the next proposal round's feedback). Numerics and timing run in
a worker subprocess (`llm_rewrite.worker`) under time and memory limits, on
inputs drawn from a fresh random seed that no proposer ever sees.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from mlirforge.llm_rewrite.flags import FlagError, validate_flags
from mlirforge.llm_rewrite.kernels import runnable_module
from mlirforge.llm_rewrite.types import Candidate, Kernel, TensorSpec, Verdict
from mlirforge.llm_rewrite.worker import DISTRIBUTIONS
from mlirforge.lowering.errors import LoweringError
from mlirforge.lowering.iree_compile import CompileResult, ModuleCache, compile_mlir
from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import KERNEL_HASH, KERNEL_ROOT, function_type, op_name, walk_nested
from mlirforge.passes._base import PassFailure
from mlirforge.passes._pipeline import PipelineError, parse_pipeline, run_pipeline

log = logging.getLogger("mlirforge.llm_rewrite")

MAX_CANDIDATE_CHARS = 200_000
KERNEL_DIALECTS = ("arith", "math", "linalg", "tensor", "scf", "vector", "affine", "complex", "func")
"""What a replacement kernel may use: pure computation on its tensor arguments."""


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    base_flags: tuple[str, ...] = ("--iree-opt-data-tiling",)
    driver: str = "local-sync"
    timeout_s: float = 120.0
    memory_mb: int = 8192
    distributions: tuple[str, ...] = DISTRIBUTIONS
    samples: int = 1
    rounds: int = 30
    inner: int = 5
    warmup: int = 3
    min_gain: float = 0.03
    confidence: float = 0.95


class CandidateRejected(Exception):
    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


def merge_flags(base: tuple[str, ...], extra: list[str]) -> list[str]:
    """Candidate flags override base flags of the same name."""
    names = {f.partition("=")[0] for f in extra}
    return [f for f in base if f.partition("=")[0] not in names] + list(extra)


def _main_func(module):
    funcs = [op for op in module.body.operations if op_name(op) == "func.func"]
    for f in funcs:
        if ir.StringAttr(f.attributes["sym_name"]).value == "main":
            return f
    raise CandidateRejected("parse", "the module has no @main")


def build_candidate_source(kernel: Kernel, cand: Candidate, settings: EvalSettings) -> tuple[str, list[str]]:
    """Turn a candidate into (MLIR text of a standalone @main, iree flags).

    Raises CandidateRejected(stage, reason) for anything malformed.
    """
    flags = list(settings.base_flags)
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(kernel.module)
        main = _main_func(module)
        want = str(function_type(main))
        if cand.kind == "flags":
            flags = flags_of(cand, settings)
        elif cand.kind in ("pipeline", "tiling"):
            if cand.kind == "pipeline":
                text = cand.payload.get("pipeline")
                if not isinstance(text, str):
                    raise CandidateRejected("parse", "pipeline candidate without a 'pipeline' string")
            else:
                check_tile_sizes(kernel, cand.payload)
                text = tiling_pipeline(cand.payload)
            try:
                passes = parse_pipeline(text)
            except PipelineError as exc:
                raise CandidateRejected("parse", str(exc)) from None
            try:
                run_pipeline(module, passes)
            except (ir.MLIRError, PassFailure) as exc:
                raise CandidateRejected("parse", f"pipeline failed: {_first_error(exc)}") from None
        elif cand.kind == "kernel":
            source = cand.payload.get("mlir")
            if not isinstance(source, str):
                raise CandidateRejected("parse", "kernel candidate without an 'mlir' string")
            if len(source) > MAX_CANDIDATE_CHARS:
                raise CandidateRejected("parse", f"kernel candidate of {len(source)} characters is too large")
            try:
                cmod = ir.Module.parse(source)
            except ir.MLIRError as exc:
                raise CandidateRejected("parse", f"does not parse: {_first_error(exc)}") from None
            if not cmod.operation.verify():
                raise CandidateRejected("parse", "does not verify")
            funcs = [op for op in cmod.body.operations if op_name(op) == "func.func"]
            others = [op_name(op) for op in cmod.body.operations if op_name(op) != "func.func"]
            if len(funcs) != 1 or others:
                raise CandidateRejected("parse", "a kernel candidate must hold exactly one func.func and nothing else")
            got = str(function_type(funcs[0]))
            if got != want:
                raise CandidateRejected("signature", f"signature {got} differs from the kernel's {want}")
            ops: list[str] = []
            walk_nested(funcs[0], lambda o: ops.append(op_name(o)))
            if "func.call" in ops:
                raise CandidateRejected("signature", "kernel candidates must not call other functions")
            foreign = sorted({o for o in ops if o.split(".", 1)[0] not in KERNEL_DIALECTS})
            if foreign:
                # State (util.global), host calls, HAL/stream ops or memory effects outside
                # tensors would let a kernel cache results or reach beyond its arguments.
                raise CandidateRejected("parse", f"op(s) {', '.join(foreign[:5])} not allowed in a kernel candidate "
                                                 f"(allowed dialects: {', '.join(KERNEL_DIALECTS)})")
            new = funcs[0]
            new.attributes["sym_name"] = ir.StringAttr.get("main")
            if "sym_visibility" in new.attributes:
                del new.attributes["sym_visibility"]
            new.attributes[KERNEL_HASH] = ir.StringAttr.get(kernel.hash)
            new.attributes[KERNEL_ROOT] = ir.StringAttr.get(kernel.root)
            return cmod.operation.get_asm(), flags
        got = str(function_type(_main_func(module)))
        if got != want:
            raise CandidateRejected("signature", f"the rewrite changed the signature to {got}")
        return module.operation.get_asm(), flags


def flags_of(cand: Candidate, settings: EvalSettings) -> list[str]:
    """The full iree-compile flags of a `flags` candidate; CandidateRejected if not whitelisted."""
    from mlirforge.lowering.runtime import DRIVERS

    unknown = set(cand.payload) - {"iree_flags", "driver"}
    if unknown:
        raise CandidateRejected("parse", f"flags candidate with unknown keys {sorted(unknown)}")
    if cand.payload.get("driver", settings.driver) not in DRIVERS:
        raise CandidateRejected("parse", f"driver must be one of {', '.join(DRIVERS)}")
    try:
        return merge_flags(settings.base_flags, validate_flags(cand.payload.get("iree_flags", [])))
    except FlagError as exc:
        raise CandidateRejected("parse", str(exc)) from None


MAX_VECTOR_TILE_ELEMENTS = 8192
"""Product of a tiling's non-zero vector sizes: larger tiles unroll into code that
takes IREE minutes to compile and never runs fast on a CPU's register file."""


def loop_bounds(kernel: Kernel) -> list[int] | None:
    """The root op's loop sizes where the shapes tell them (matmul: m, n, k), else None."""
    out = kernel.outputs[0].shape if kernel.outputs else ()
    if kernel.root == "linalg.matmul" and len(out) == 2:
        return [*out, kernel.reduction_depth]
    if kernel.root == "linalg.batch_matmul" and len(out) == 3:
        return [*out, kernel.reduction_depth]
    return None


def check_tile_sizes(kernel: Kernel, payload: dict) -> None:
    """Legal tile sizes: within the loop bounds, vector tiles within distribution tiles, bounded unrolling."""
    lists = {k: payload.get(k, []) for k in ("distribution", "vector_common_parallel", "vector_reduction")}
    for key, values in lists.items():
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise CandidateRejected("parse", f"tiling '{key}' must be a list of integers")
    bounds = loop_bounds(kernel)
    for key, values in lists.items():
        if bounds is not None and values and len(values) != len(bounds):
            raise CandidateRejected("parse", f"tiling '{key}' has {len(values)} sizes; {kernel.root} has "
                                             f"{len(bounds)} loops {bounds}")
        for i, v in enumerate(values):
            if v < 0 or (bounds is not None and v > bounds[i]):
                raise CandidateRejected("parse", f"tiling '{key}'[{i}] = {v} is outside 0..{bounds[i] if bounds else 'inf'}")
    dist, vec = lists["distribution"], lists["vector_common_parallel"]
    for i, (d, v) in enumerate(zip(dist, vec)):
        if d and v > d:
            raise CandidateRejected("parse", f"vector tile {v} exceeds distribution tile {d} in loop {i}")
    unrolled = 1
    for v in [*vec, *lists["vector_reduction"]]:
        unrolled *= v or 1
    if unrolled > MAX_VECTOR_TILE_ELEMENTS:
        raise CandidateRejected("parse", f"vector tiles of {unrolled} elements in all; at most "
                                         f"{MAX_VECTOR_TILE_ELEMENTS} are allowed")


def tiling_pipeline(payload: dict) -> str:
    """A tiling payload (already through `check_tile_sizes`) as an annotate-tiling pipeline."""
    parts = []
    for key in ("distribution", "vector_common_parallel", "vector_reduction"):
        values = payload.get(key, [])
        if values:
            parts.append(f"{key.replace('_', '-')}={','.join(str(v) for v in values)}")
    pipeline = payload.get("pipeline", "DoubleTilingExpert")
    if not isinstance(pipeline, str) or not pipeline.isidentifier():
        raise CandidateRejected("parse", "tiling 'pipeline' must be a pipeline name")
    parts.append(f"pipeline={pipeline}")
    return "mlirforge-annotate-tiling{" + " ".join(parts) + "}"


def _first_error(exc: Exception) -> str:
    diags = getattr(exc, "error_diagnostics", None)
    if diags:
        d = diags[0]
        return f"{d.location}: {d.message}"
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def compile_or_reject(text: str, flags: list[str], cache: ModuleCache | None,
                      timeout_s: float | None = None) -> CompileResult:
    try:
        return compile_mlir(text, "auto", flags, cache, timeout_s=timeout_s)
    except LoweringError as exc:
        raise CandidateRejected("build", exc.summary()) from None


def module_spec(path: Path, compiled: CompileResult, **extra) -> dict:
    """Write a compiled module for the worker; returns its spec (path, inputs to pass as copies, `extra`)."""
    path.write_bytes(compiled.vmfb)
    return {"vmfb": str(path), "copy_inputs": list(compiled.copy_inputs()), **extra}


def run_worker(
    reference: dict, candidate: dict, inputs: list[TensorSpec], depth: int, settings: EvalSettings,
    workdir: Path, check: bool = True, timing: bool = True, weights: list[TensorSpec] = (),
) -> dict:
    """Run the worker subprocess; returns its reply, or {"error": ...} on crash/timeout."""
    request = {
        "reference": reference,
        "candidate": candidate,
        "inputs": [s.to_json() for s in inputs],
        "weights": [s.to_json() for s in weights],
        "seed": secrets.randbits(31),
        "distributions": list(settings.distributions),
        "samples": settings.samples,
        "reduction_depth": depth,
        "check": check,
        "timing": {
            "rounds": settings.rounds, "inner": settings.inner, "warmup": settings.warmup,
            "confidence": settings.confidence,
        } if timing else None,
        "memory_mb": settings.memory_mb,
        "driver": settings.driver,
    }
    path = workdir / f"request-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(request))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlirforge.llm_rewrite.worker", str(path)],
            capture_output=True, text=True, timeout=settings.timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {settings.timeout_s:.0f} s"}
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {"error": f"worker crashed ({how}) {tail[0]}".strip()}
    try:
        reply = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": "worker gave no result"}
    reply["seed"] = request["seed"]
    return reply


def near_miss(verdict: Verdict, settings: EvalSettings) -> bool:
    """Clearly faster on the medians but the CI missed: a noisy round or two, worth one re-time."""
    return (not verdict.accepted and verdict.equivalent is not False and verdict.speedup is not None
            and verdict.speedup >= 1 + 2 * settings.min_gain)


def retime(first: Verdict, rerun, settings: EvalSettings) -> Verdict:
    """Re-time a near miss once with twice the rounds; the second measurement alone decides."""
    if not near_miss(first, settings):
        return first
    second = rerun(dataclasses.replace(settings, rounds=settings.rounds * 2))
    second.equivalence = first.equivalence or second.equivalence
    second.timing["retimed_after"] = {k: first.timing.get(k) for k in ("speedup", "ci_low", "ci_high")}
    return second


def verdict_from_reply(cand_id: str, reply: dict, settings: EvalSettings) -> Verdict:
    v = Verdict(cand_id, stage="numerics", built=True)
    if "error" in reply:
        v.reason = reply["error"]
        return v
    if "equivalent" in reply:
        v.equivalent = reply["equivalent"]
        v.equivalence = reply.get("equivalence", {})
        if not v.equivalent:
            e = v.equivalence
            v.reason = f"not equivalent on {e.get('distribution')} inputs: {e.get('why') or 'values differ'}"
            if e.get("max_error") is not None and e["max_error"] != float("inf"):  # inf: exact dtypes, listed in `why`
                v.reason += f" (max error {e['max_error']:.3g}, tolerance {e.get('tolerance') or 0:.3g})"
            return v
    if reply.get("timing"):
        v.stage = "timing"
        v.timing = reply["timing"]
        need = 1 + settings.min_gain
        if v.timing["ci_low"] >= need:
            v.stage, v.accepted = "done", True
            v.reason = f"{v.timing['speedup']:.3f}x faster (95% CI lower bound {v.timing['ci_low']:.3f} >= {need:.2f})"
        else:
            v.reason = f"not significantly faster: {v.timing['speedup']:.3f}x, CI lower bound {v.timing['ci_low']:.3f} < {need:.2f}"
    return v


def check_and_time(
    cand_id: str, reference: dict, candidate: dict, inputs: list[TensorSpec], depth: int,
    settings: EvalSettings, workdir: Path, weights: list[TensorSpec] = (),
) -> Verdict:
    """Numerics then timing in the worker, with one re-time of a clear near miss."""

    def measure(s: EvalSettings, check: bool = True) -> Verdict:
        reply = run_worker(reference, candidate, inputs, depth, s, workdir, check=check, weights=weights)
        return verdict_from_reply(cand_id, reply, s)

    return retime(measure(settings), lambda s: measure(s, check=False), settings)


def build_reference(text: str, settings: EvalSettings, cache: ModuleCache | None, path: Path) -> dict:
    """Compile the unmodified module with the base flags once; candidates are timed against it. Returns its spec."""
    return module_spec(path, compile_mlir(text, "auto", list(settings.base_flags), cache))


class KernelEvaluator:
    """Evaluates candidates for one kernel against its unmodified build."""

    def __init__(self, kernel: Kernel, settings: EvalSettings, workdir: Path, cache: ModuleCache | None = None):
        self.kernel = kernel
        self.settings = settings
        self.workdir = workdir
        self.cache = cache
        self._reference: dict | None = None

    def reference(self) -> dict:
        if self._reference is None:
            text = runnable_module(self.kernel, self.kernel.module)
            self._reference = build_reference(text, self.settings, self.cache, self.workdir / f"ref-{self.kernel.hash}.vmfb")
        return self._reference

    def evaluate(self, cand: Candidate) -> Verdict:
        try:
            text, flags = build_candidate_source(self.kernel, cand, self.settings)
            compiled = compile_or_reject(runnable_module(self.kernel, text), flags, self.cache, self.settings.timeout_s)
        except CandidateRejected as exc:
            return Verdict(cand.id, stage=exc.stage, built=exc.stage not in ("parse", "signature", "build"),
                           reason=f"{exc.stage}: {exc.reason}")
        candidate = module_spec(self.workdir / f"cand-{cand.id}.vmfb", compiled)
        verdict = check_and_time(
            cand.id, self.reference(), candidate, self.kernel.call_inputs,
            self.kernel.reduction_depth, self.settings, self.workdir, weights=self.kernel.weights,
        )
        verdict.equivalence.setdefault("flags", flags)
        return verdict


class ModelEvaluator:
    """Evaluates whole-model variants against the unoptimised model build.

    Both run in the worker with the model's weights from one parameter
    archive; the reduction depth for tolerances is the deepest kernel's.
    """

    def __init__(self, mlir: str, parameters_path: Path | None, inputs: list[TensorSpec], depth: int,
                 settings: EvalSettings, workdir: Path, cache: ModuleCache | None = None):
        self.mlir = mlir
        self.parameters = str(parameters_path) if parameters_path else None
        self.inputs = inputs
        self.depth = depth
        self.settings = settings
        self.workdir = workdir
        self.cache = cache
        self._reference: dict | None = None

    def reference(self) -> dict:
        if self._reference is None:
            self._reference = build_reference(self.mlir, self.settings, self.cache, self.workdir / "model-ref.vmfb")
            self._reference["parameters"] = self.parameters
        return self._reference

    def evaluate(self, cand_id: str, mlir: str, flags: list[str], driver: str | None = None) -> Verdict:
        try:
            compiled = compile_or_reject(mlir, flags, self.cache, self.settings.timeout_s)
        except CandidateRejected as exc:
            return Verdict(cand_id, stage=exc.stage, reason=f"{exc.stage}: {exc.reason}")
        candidate = module_spec(self.workdir / f"model-{cand_id}.vmfb", compiled, parameters=self.parameters)
        if driver:
            candidate["driver"] = driver

        verdict = check_and_time(
            cand_id, self.reference(), candidate,
            self.inputs, self.depth, self.settings, self.workdir,
        )
        verdict.equivalence.setdefault("flags", flags)
        if driver:
            verdict.equivalence.setdefault("driver", driver)
        return verdict


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlirforge-eval-"))
