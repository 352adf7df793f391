"""The evaluation cascade for one candidate: parse/verify -> signature -> build -> numerics -> timing.

Cheapest first; the first failure stops the cascade and becomes the Verdict's
reason (and the next proposal round's feedback). The first two stages are the
candidate kind's own (`llm_rewrite.candidates`: each kind checks and builds its
payload); numerics and timing run in a worker subprocess (`llm_rewrite.worker`,
spoken to through `llm_rewrite.worker_protocol`) under time and memory limits,
on inputs drawn from a fresh random seed that no proposer ever sees.

Numerics begin, for a kernel candidate once it is built, with the formal check
(`llm_rewrite.formal`, elementwise kernels only): a counter-example rejects the
candidate there; a proof is recorded (`equivalence["method"] = "proved"`) and
the worker's randomized check and timing still run, since they see what the
proof does not (the compiled code, writes into inputs, reused buffers);
anything else leaves the randomized check to decide (`"tested"`).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

from mlirforge.llm_rewrite import formal
from mlirforge.llm_rewrite.candidates import Built, CandidateRejected
from mlirforge.llm_rewrite.kernels import runnable_module
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Candidate, Kernel, Stage, TensorSpec, Verdict
from mlirforge.llm_rewrite.worker_protocol import ModuleSpec, TritonSpec, WorkerRequest, new_seed, run_worker
from mlirforge.lowering.errors import LoweringError
from mlirforge.lowering.iree_compile import CompileResult, ModuleCache, compile_mlir

__all__ = ["EvalSettings", "KernelEvaluator", "ModelEvaluator", "build_candidate", "check_and_time",
           "compile_or_reject", "new_workdir", "record_proof", "refuted", "verdict_from_reply"]

log = logging.getLogger("mlirforge.llm_rewrite")


def build_candidate(kernel: Kernel, cand: Candidate, settings: EvalSettings) -> Built:
    """The candidate's standalone module and flags, by its kind; CandidateRejected for anything malformed."""
    return cand.kind_info.build(kernel, cand.payload, settings)


def compile_or_reject(text: str, flags: list[str] | tuple[str, ...], cache: ModuleCache | None,
                      timeout_s: float | None = None) -> CompileResult:
    try:
        return compile_mlir(text, "auto", list(flags), cache, timeout_s=timeout_s)
    except LoweringError as exc:
        raise CandidateRejected(Stage.BUILD, exc.summary()) from None


def module_spec(path: Path, compiled: CompileResult, parameters: str | None = None,
                driver: str | None = None) -> ModuleSpec:
    """Write a compiled module for the worker; returns its spec (with the inputs it must get as copies)."""
    path.write_bytes(compiled.vmfb)
    return ModuleSpec(str(path), tuple(compiled.copy_inputs()), parameters, driver)


def time_and_check(
    reference: ModuleSpec, candidate: ModuleSpec, inputs: list[TensorSpec], depth: int, settings: EvalSettings,
    workdir: Path, check: bool = True, timing: bool = True, weights: list[TensorSpec] = (),
) -> dict:
    """One worker run under `settings`' limits; its reply, or {"error": ...} on a crash or time-out."""
    request = WorkerRequest(
        reference=reference, candidate=candidate, inputs=tuple(s.to_json() for s in inputs),
        weights=tuple(s.to_json() for s in weights), seed=new_seed(), distributions=tuple(settings.distributions),
        samples=settings.samples, reduction_depth=depth, check=check,
        timing=settings.timing_plan() if timing else None, memory_mb=settings.memory_mb, driver=settings.driver,
    )
    return run_worker(request, settings.timeout_s, workdir)


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
    if second.equivalent is None:  # the re-run only times: the first run's check stands
        second.equivalent = first.equivalent
    second.timing["retimed_after"] = {k: first.timing.get(k) for k in ("speedup", "ci_low", "ci_high")}
    return second


def verdict_from_reply(cand_id: str, reply: dict, settings: EvalSettings) -> Verdict:
    v = Verdict(cand_id, stage=Stage.NUMERICS, built=True)
    if "error" in reply:
        v.reason = reply["error"]
        return v
    if "equivalent" in reply:
        v.equivalent = reply["equivalent"]
        v.equivalence = reply.get("equivalence", {})
        v.equivalence.setdefault("method", "tested")
        if not v.equivalent:
            e = v.equivalence
            v.reason = f"not equivalent on {e.get('distribution')} inputs: {e.get('why') or 'values differ'}"
            if e.get("max_error") is not None and e["max_error"] != float("inf"):  # inf: exact dtypes, listed in `why`
                v.reason += f" (max error {e['max_error']:.3g}, tolerance {e.get('tolerance') or 0:.3g})"
            return v
    if reply.get("timing"):
        v.stage = Stage.TIMING
        v.timing = reply["timing"]
        need = 1 + settings.min_gain
        if v.timing["ci_low"] >= need:
            v.stage, v.accepted = Stage.DONE, True
            v.reason = f"{v.timing['speedup']:.3f}x faster (95% CI lower bound {v.timing['ci_low']:.3f} >= {need:.2f})"
        else:
            v.reason = f"not significantly faster: {v.timing['speedup']:.3f}x, CI lower bound {v.timing['ci_low']:.3f} < {need:.2f}"
    return v


def check_and_time(
    cand_id: str, reference: ModuleSpec, candidate: ModuleSpec, inputs: list[TensorSpec], depth: int,
    settings: EvalSettings, workdir: Path, weights: list[TensorSpec] = (),
) -> Verdict:
    """Numerics then timing in the worker, with one re-time of a clear near miss."""

    def measure(s: EvalSettings, check: bool = True) -> Verdict:
        reply = time_and_check(reference, candidate, inputs, depth, s, workdir, check=check, weights=weights)
        return verdict_from_reply(cand_id, reply, s)

    return retime(measure(settings), lambda s: measure(s, check=False), settings)


def _show(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def refuted(cand_id: str, proof: formal.FormalResult, flags) -> Verdict:
    """The verdict on a candidate the formal check found a counter-example for (`proof.example`)."""
    e = proof.example
    inputs = ", ".join(f"{k} = {_show(v)}" for k, v in e["inputs"].items())
    why = e["why"].split(":", 1)[0]
    reason = (f"not equivalent on a formal counter-example: with every element of {inputs}, output {e['output']} is "
              f"{_show(e['candidate'])} where the reference gives {_show(e['reference'])} ({why})")
    equivalence = {"method": "refuted", "distribution": "formal counter-example", "output": e["output"],
                   "max_error": e["max_error"], "tolerance": e["tolerance"], "why": e["why"],
                   "formal": proof.to_json(), "flags": list(flags)}
    return Verdict(cand_id, stage=Stage.NUMERICS, built=True, equivalent=False, reason=reason, equivalence=equivalence)


def record_proof(verdict: Verdict, proof: formal.FormalResult | None) -> None:
    """The formal check's finding in the verdict's evidence; `proved` only if randomized testing agreed."""
    if proof is None:
        return
    verdict.equivalence["formal"] = proof.to_json()
    if proof.outcome == formal.PROVED and verdict.equivalent:
        verdict.equivalence["method"] = "proved"


def build_reference(text: str, settings: EvalSettings, cache: ModuleCache | None, path: Path,
                    parameters: str | None = None) -> ModuleSpec:
    """Compile the unmodified module with the base flags once; candidates are timed against it. Returns its spec."""
    return module_spec(path, compile_mlir(text, "auto", list(settings.base_flags), cache), parameters)


class KernelEvaluator:
    """Evaluates candidates for one kernel against its unmodified build."""

    def __init__(self, kernel: Kernel, settings: EvalSettings, workdir: Path, cache: ModuleCache | None = None):
        self.kernel = kernel
        self.settings = settings
        self.workdir = workdir
        self.cache = cache
        self._reference: ModuleSpec | None = None
        self._cuda_reference: ModuleSpec | None = None
        self._printed: str | None = None

    def reference(self) -> ModuleSpec:
        if self._reference is None:
            text = runnable_module(self.kernel, self.kernel.module)
            self._reference = build_reference(text, self.settings, self.cache, self.workdir / f"ref-{self.kernel.hash}.vmfb")
        return self._reference

    def cuda_reference(self) -> ModuleSpec:
        """The kernel built by IREE for the visible GPU, run on IREE's `cuda` driver: what a Triton kernel
        on that GPU must beat. The CPU's default flags are left out (as `mlirforge compile --target`)."""
        if self._cuda_reference is None:
            from mlirforge.lowering.target import parse_target

            text = runnable_module(self.kernel, self.kernel.module)
            compiled = compile_mlir(text, "auto", [], self.cache, target=parse_target("cuda"))
            self._cuda_reference = module_spec(self.workdir / f"ref-cuda-{self.kernel.hash}.vmfb", compiled,
                                               driver="cuda")
        return self._cuda_reference

    def _unchanged(self) -> str:
        """The kernel's module as the kinds print it (parsed and printed once)."""
        if self._printed is None:
            from mlirforge.lowering.ir import ir

            with ir.Context(), ir.Location.unknown():
                self._printed = ir.Module.parse(self.kernel.module).operation.get_asm()
        return self._printed

    def _check_built(self, cand: Candidate, built: Built) -> None:
        """What a kernel's candidate may build: something new, compiled with the model's flags."""
        if cand.kind_info.scope == "kernel" and tuple(built.flags) != tuple(self.settings.base_flags):
            # The model is compiled with one set of flags: a kernel's own would hold alone only.
            raise CandidateRejected(Stage.PARSE, f"a {cand.kind} candidate cannot change the compile flags "
                                                 "(the whole model shares one set; propose a flags candidate)")
        if tuple(built.flags) == tuple(self.settings.base_flags) and built.source.strip() in (
                self.kernel.module.strip(), self._unchanged().strip()):
            raise CandidateRejected(Stage.PARSE, "changes nothing: the rewritten kernel is the kernel itself")

    def _prove(self, built: Built) -> formal.FormalResult | None:
        """The formal check of a built candidate against the kernel; None when it is off."""
        if not self.settings.formal_timeout_s:
            return None
        if tuple(built.flags) != tuple(self.settings.base_flags):
            return formal.FormalResult(formal.NOT_APPLICABLE, "the candidate changes the compile flags, "
                                                              "whose effect the MLIR does not show")
        return formal.check_equivalence(self.kernel.module, built.source, self.kernel.reduction_depth,
                                        self.settings.formal_timeout_s)

    def evaluate(self, cand: Candidate) -> Verdict:
        if cand.kind_info.runtime == "triton":
            return self._evaluate_triton(cand)
        try:
            built = build_candidate(self.kernel, cand, self.settings)
            self._check_built(cand, built)
            compiled = compile_or_reject(runnable_module(self.kernel, built.source), built.flags, self.cache,
                                         self.settings.timeout_s)
        except CandidateRejected as exc:
            return Verdict(cand.id, stage=exc.stage, built=False, reason=f"{exc.stage}: {exc.reason}")
        proof = self._prove(built)
        if proof is not None and proof.outcome == formal.REFUTED:
            verdict = refuted(cand.id, proof, built.flags)
            verdict.source = built.source
            return verdict
        candidate = module_spec(self.workdir / f"cand-{cand.id}.vmfb", compiled)
        verdict = check_and_time(
            cand.id, self.reference(), candidate, self.kernel.call_inputs,
            self.kernel.reduction_depth, self.settings, self.workdir, weights=self.kernel.weights,
        )
        verdict.equivalence.setdefault("flags", list(built.flags))
        record_proof(verdict, proof)
        verdict.source = built.source
        return verdict

    def _evaluate_triton(self, cand: Candidate) -> Verdict:
        """A Triton kernel against the kernel's IREE build, in the sandboxed worker (`llm_rewrite.sandbox`).

        Its build is Triton's, at its first launch in the worker: a failure there is the worker's error.
        """
        from mlirforge.llm_rewrite.candidates import triton

        try:
            built = build_candidate(self.kernel, cand, self.settings)
        except CandidateRejected as exc:
            return Verdict(cand.id, stage=exc.stage, built=False, reason=f"{exc.stage}: {exc.reason}")
        where = triton.device()
        try:
            reference = self.reference() if where == "cpu" else self.cuda_reference()
        except LoweringError as exc:
            return Verdict(cand.id, stage=Stage.BUILD, built=False,
                           reason=f"build: the kernel does not build for the GPU to compare with: {exc.summary()}")
        home = self.workdir / f"triton-{cand.id}"
        home.mkdir(exist_ok=True)
        source = home / "kernel.py"
        source.write_text(built.source)
        launch = triton.KIND.check_payload(cand.payload)
        spec = TritonSpec(str(source), str(home), launch["entry"], tuple(launch["grid"]),
                          tuple(o.to_json() for o in self.kernel.outputs), launch["constexprs"],
                          launch["num_warps"], launch["num_stages"], tuple(self.kernel.weight_inputs), where)
        if where == "cpu":
            # The interpreter runs each program in Python: a check of the values, no measure of speed.
            reply = time_and_check(reference, spec, self.kernel.call_inputs, self.kernel.reduction_depth,
                                   self.settings, self.workdir, timing=False, weights=self.kernel.weights)
            verdict = verdict_from_reply(cand.id, reply, self.settings)
            if verdict.equivalent:
                verdict.stage = Stage.TIMING
                verdict.reason = ("equivalent under Triton's interpreter (TRITON_INTERPRET=1); not timed: the "
                                  "interpreter says nothing of a GPU's speed")
        else:
            verdict = check_and_time(cand.id, reference, spec, self.kernel.call_inputs, self.kernel.reduction_depth,
                                     self.settings, self.workdir, weights=self.kernel.weights)
        verdict.equivalence.setdefault("runtime", f"triton on {where}")
        verdict.source = built.source
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
        self._reference: ModuleSpec | None = None

    def reference(self) -> ModuleSpec:
        if self._reference is None:
            self._reference = build_reference(self.mlir, self.settings, self.cache, self.workdir / "model-ref.vmfb",
                                              self.parameters)
        return self._reference

    def evaluate(self, cand_id: str, mlir: str, flags: list[str], driver: str | None = None) -> Verdict:
        try:
            compiled = compile_or_reject(mlir, flags, self.cache, self.settings.timeout_s)
        except CandidateRejected as exc:
            return Verdict(cand_id, stage=exc.stage, reason=f"{exc.stage}: {exc.reason}")
        candidate = module_spec(self.workdir / f"model-{cand_id}.vmfb", compiled, self.parameters, driver)

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
