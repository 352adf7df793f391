"""The Python API behind the driver: compile a model or an MLIR file."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import torch

from mlirforge.artifact import atomic_write_bytes, load, write_artifact
from mlirforge.config import CompileConfig

ConfigLike = CompileConfig | dict | None
"""A CompileConfig used as it is, or options loaded like the CLI's and the backend's
(defaults <- mlirforge.toml / [tool.mlirforge] <- environment <- these options)."""
from mlirforge.kernelbench import load_model_file
from mlirforge.lowering.errors import UserError
from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
from mlirforge.lowering.target import CpuTarget, CudaTarget, parse_target
from mlirforge.lowering.torch_export import export_model
from mlirforge.evidence import BaselineRecord, OptimizationRecord, RewriteRecord
from mlirforge.manifest import Manifest
from mlirforge.numerics import check_against_eager
from mlirforge.timing import interleaved_times, median_us

log = logging.getLogger("mlirforge")

# Other processes' share of the CPU above which a timing is flagged as unreliable: 10% of a
# 2-core machine is a neighbour busy a fifth of the time, enough to move eager by 10-20%.
BUSY_SHARE = 0.10


@dataclasses.dataclass
class CompileSummary:
    artifact: Path
    compile_seconds: float
    module_cached: bool
    parameters: int
    parameter_bytes: int
    max_abs_error: float | None = None
    matches_eager: bool | None = None
    eager_us: float | None = None
    compiled_us: float | None = None
    vs_eager: tuple[float, float, float] | None = None
    """(eager median / mlirforge median, 95% CI low, high): interleaved rounds, paired bootstrap."""
    other_cpu_share: float | None = None
    """Share of the machine's CPU time other processes used while this was timed."""
    check_message: str = ""

    def lines(self) -> list[str]:
        out = [
            f"artifact      {self.artifact}",
            f"compile       {self.compile_seconds:.2f} s"
            + (" (module cache hit)" if self.module_cached else ""),
            f"parameters    {self.parameters} tensors, {self.parameter_bytes / 1e6:.2f} MB",
        ]
        if self.matches_eager is not None:
            verdict = "matches eager" if self.matches_eager else f"DOES NOT match eager: {self.check_message}"
            out.append(f"check         {verdict} (max abs error {self.max_abs_error:.3g}; inputs checked unchanged)")
        if self.eager_us is not None and self.compiled_us is not None and self.vs_eager is not None:
            ratio, low, high = self.vs_eager
            out.append(f"time/call     eager {self.eager_us:.1f} us, mlirforge {self.compiled_us:.1f} us "
                       "(medians of interleaved rounds)")
            out.append(f"speedup       {ratio:.2f}x vs eager (95% CI {low:.2f}-{high:.2f}); this process, interleaved")
            if self.other_cpu_share is not None and self.other_cpu_share > BUSY_SHARE:
                out.append(f"warning       other processes used {100 * self.other_cpu_share:.0f}% of the CPU while "
                           "this was timed: the times and the ratio are unreliable; time again on a quiet machine")
        return out


def compile_model(
    model: torch.nn.Module,
    inputs: list,
    out_dir: str | Path,
    config: ConfigLike = None,
    source: str | None = None,
    verify: bool = True,
    time_it: bool = True,
) -> CompileSummary:
    """Compile `model(*inputs)` into an artifact directory.

    With `verify`, the written artifact is loaded and compared with eager
    PyTorch; with `time_it`, both are timed side by side. Raises UserError /
    LoweringError (the latter naming ops that cannot be lowered).
    """
    config = CompileConfig.resolve(config)
    start = time.perf_counter()
    opts = config.lowering
    exported = export_model(model, inputs, opts)
    low = exported.lowered
    cache = ModuleCache() if opts.use_cache else None
    result = compile_mlir(low.mlir, opts.form, opts.iree_flags, cache)
    manifest = Manifest.for_compiled(opts, source, inputs, exported, result, low)
    out = write_artifact(Path(out_dir), result.vmfb, exported.parameters, manifest, {"module.mlir": low.mlir})
    summary = CompileSummary(
        artifact=out,
        compile_seconds=time.perf_counter() - start,
        module_cached=result.cached,
        parameters=len(exported.parameters),
        parameter_bytes=sum(p.numel() * p.element_size() for p in exported.parameters),
    )
    if verify or time_it:
        artifact = load(out)
        with torch.no_grad():
            if verify:
                check = check_against_eager(artifact, model, inputs)
                summary.matches_eager, summary.max_abs_error = check.ok, check.max_abs_error
                summary.check_message = check.message
            if time_it:
                from mlirforge.benchmarking import OtherCpu, paired_ratio

                with OtherCpu() as other:  # a busy neighbour skews eager (all cores) far more than IREE
                    eager_t, ours_t = interleaved_times([lambda: model(*inputs), lambda: artifact(*inputs)])
                summary.eager_us, summary.compiled_us = median_us(eager_t), median_us(ours_t)
                summary.vs_eager = paired_ratio(eager_t, ours_t)
                summary.other_cpu_share = other.share
    return summary


def compile_model_file(path: str | Path, out_dir: str | Path, config: ConfigLike = None, **kw) -> CompileSummary:
    """`mlirforge compile model.py -o out/`: a KernelBench-format file to an artifact."""
    problem = load_model_file(path)
    return compile_model(problem.model, problem.inputs, out_dir, config, source=str(path), **kw)


def _read_text(path: str | Path) -> str:
    """A user's text file; UserError naming it if it is missing or not UTF-8 text."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None


def compile_mlir_file(path: str | Path, out_path: str | Path, config: ConfigLike = None,
                      target: str | CpuTarget | CudaTarget = "host") -> float:
    """`mlirforge compile in.mlir -o out.vmfb [--target T]`; returns seconds spent.

    `target`: `host` (this CPU, llvm-cpu), `cuda:sm_XX` (a named NVIDIA GPU; no GPU needed to compile;
    run the vmfb on IREE's `cuda` driver) or `cuda` (the visible GPU); see `lowering.target.parse_target`.
    A GPU the installed IREE has no entry for gets the newest PTX it knows, with a warning. A CUDA build
    leaves out the CPU's default flags (`lowering.options.DEFAULT_IREE_FLAGS`, measured for llvm-cpu);
    flags the user set are passed as they are, after the target's, so `--iree-cuda-target` there wins.
    Diagnostics name `path` (`file:line:col: error: ...`); nothing is written
    unless compilation succeeds. UserError for a bad target or an output path that cannot be written.
    """
    from mlirforge.lowering.options import DEFAULT_IREE_FLAGS

    config = CompileConfig.resolve(config)
    path, out_path = Path(path), Path(out_path)
    if isinstance(target, str):
        try:
            target = parse_target(target)
        except ValueError as exc:
            raise UserError(f"--target: {exc}") from None
    if isinstance(target, CudaTarget) and target.arch != target.requested:
        log.warning("the installed IREE has no CUDA target for %s; compiling PTX for %s, which the CUDA driver "
                    "JIT-compiles for the GPU", target.requested, target.arch)
    text = _read_text(path)
    opts = config.lowering
    flags = opts.iree_flags
    if isinstance(target, CudaTarget) and tuple(flags) == DEFAULT_IREE_FLAGS:
        flags = ()
    cache = ModuleCache() if opts.use_cache else None
    result = compile_mlir(text, "auto", flags, cache, source_name=str(path), target=target)
    try:
        atomic_write_bytes(out_path, result.vmfb)
    except OSError as exc:
        raise UserError(f"{out_path}: cannot write the vmfb: {exc.strerror or exc}") from None
    for function, written in sorted(result.written_inputs.items()):
        if written:
            # A bare vmfb has no runtime of ours around it to pass copies.
            log.warning("%s: @%s writes into its input(s) %s (IREE ties in-place results to "
                        "arguments); callers must pass copies they do not need back", path, function,
                        ", ".join(str(i) for i in written))
    return result.seconds


@dataclasses.dataclass
class OptimizeSummary:
    artifact: Path
    kernels: list[dict]
    module_candidates: list[dict]
    evaluations: int
    search_seconds: float
    end_to_end: dict | None
    eager_us: float | None = None
    unoptimized_us: float | None = None
    optimized_us: float | None = None
    interrupted: bool = False
    stopped: str = ""
    rejected_answers: int = 0
    llm: dict | None = None
    kept_anything: bool = True  # the search kept a rewrite or a module-wide choice (verified end to end)
    vs_unoptimized: list[float] | None = None  # [median ratio, 95% CI low, high], paired rounds
    vs_eager: list[float] | None = None
    other_cpu_share: float | None = None
    """Share of the machine's CPU other processes used while the artifact was timed (None: unknown)."""

    def lines(self) -> list[str]:
        out = [f"artifact     {self.artifact}", f"search       {self.evaluations} candidates evaluated in {self.search_seconds:.1f} s"
               + (" (interrupted: kept what was verified)" if self.interrupted else "")]
        if self.stopped:
            out.append(f"stopped      {self.stopped} (kept what was verified)")
        if self.llm:
            u = self.llm
            out.append(f"llm          {u['model']}: {u['requests']} requests, {u['tokens']} tokens, "
                       f"{self.rejected_answers} unusable answers")
        if self.module_candidates:
            out.append("module-wide candidates:")
            for m in self.module_candidates:
                out.append(f"  {m['candidate']:<58} {m['result']}")
        out.append("kernels (hottest first):")
        out.append(f"  {'kernel':<18}{'root':<26}{'base us':>9}  {'tried':>5}  result")
        for k in self.kernels:
            out.append(f"  {k['hash']:<18}{k['root']:<26}{k['baseline_us']:>9.1f}  {k['tried']:>5}  {k['result']}")
        if self.end_to_end:
            e = self.end_to_end
            out.append(f"end to end   {e['summary']}")
        if self.unoptimized_us and self.optimized_us:
            out.append(
                f"time/call    eager {self.eager_us:.1f} us, mlirforge unoptimised {self.unoptimized_us:.1f} us, "
                f"optimised {self.optimized_us:.1f} us" if self.kept_anything else
                f"time/call    eager {self.eager_us:.1f} us, mlirforge {self.optimized_us:.1f} us (nothing kept)"
            )
            if self.vs_unoptimized and self.vs_eager:
                u, e = self.vs_unoptimized, self.vs_eager
                # Nothing kept: the artifact is the unoptimised program, and a ratio of a program to
                # itself (whatever the auto driver chose in each) says nothing.
                vs_unopt = (f"{u[0]:.2f}x vs unoptimised (95% CI {u[1]:.2f}-{u[2]:.2f}), " if self.kept_anything
                            else "the artifact is the unoptimised program, ")
                out.append(f"speedup      {vs_unopt}{e[0]:.2f}x vs eager (95% CI {e[1]:.2f}-{e[2]:.2f}); "
                           "fresh process, interleaved")
            if self.kept_anything and self.vs_unoptimized and self.vs_unoptimized[2] < 1.0:
                out.append("warning      in this fresh process the optimised artifact is slower than the "
                           "unoptimised one, although the search's A/B found it faster: the search times in a "
                           "worker with no PyTorch threads beside IREE's (local-task suffers most next to them, "
                           "docs/lowering.md); compile without the search if this is how the model runs")
            if self.other_cpu_share is not None and self.other_cpu_share > BUSY_SHARE:
                out.append(f"warning      other processes used {100 * self.other_cpu_share:.0f}% of the CPU while "
                           "this was timed: the times and ratios above are unreliable (eager, on every core, "
                           "suffers most); time again on a quiet machine")
        return out


def optimize_model(
    model: torch.nn.Module,
    inputs: list,
    out_dir: str | Path,
    config: ConfigLike = None,
    source: str | None = None,
    progress=None,
    time_it: bool = True,
    proposer=None,
) -> OptimizeSummary:
    """Search verified rewrites for `model(*inputs)` and write the optimised artifact.

    The artifact's manifest lists every kept rewrite with its equivalence and
    timing evidence. Raises UserError/LoweringError like `compile_model`.
    """
    import tempfile

    config = CompileConfig.resolve(config)

    from mlirforge.llm_rewrite.optimize import optimize_lowered, unoptimized_result

    scratch = Path(tempfile.mkdtemp(prefix="mlirforge-optimize-"))
    try:
        # The proposer first: a misconfigured LLM fails before minutes of lowering.
        if proposer is None:
            proposer = config.make_proposer(transcript_out=scratch / TRANSCRIPT)
        opts = config.lowering
        exported = export_model(model, inputs, opts)
        low = exported.lowered
        settings = config.eval_settings()
        try:
            result = optimize_lowered(
                low.mlir, exported.parameters, list(inputs), proposer,
                config.search, settings, use_rewrite_cache=config.use_rewrite_cache,
                use_module_cache=opts.use_cache, progress=progress or (lambda e, i: None),
            )
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            # Invariant: a failure in the optimisation path degrades to the
            # unoptimised (still correct) program, with a clear message.
            log.warning("mlirforge: the search failed (%s: %s); writing the unoptimised artifact",
                        type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            result = unoptimized_result(low.mlir, settings)
        finally:
            proposer.close()
        transcript = _transcript_of(proposer)
        return _write_optimized(model, inputs, out_dir, config, source, time_it, proposer, exported, result,
                                transcript)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


TRANSCRIPT = "transcript.jsonl"


def _transcript_of(proposer) -> str | None:
    """The LLM transcript the proposer wrote (llm) or replayed (replay), to keep in the artifact."""
    path = proposer.transcript_file
    return Path(path).read_text(encoding="utf-8") if path and Path(path).is_file() else None


def artifact_driver(user_driver: str, search_driver: str, verified: bool) -> str:
    """The HAL driver an optimised artifact's manifest names.

    The search times under one driver (`CompileConfig.search_driver`) and may
    prefer another. An artifact that keeps nothing from it is the unoptimised
    program and runs under the user's driver, as `mlirforge compile` would.
    Under the user's `auto` (the default) it stays `auto` even when the search
    preferred local-task: the search's worker has no PyTorch threads beside
    IREE's, a user's process has, and there local-task can lose what it won
    (transformer block: 1.29x in the search's A/B, 0.82x in a fresh process
    next to eager), so the artifact decides where it runs. A driver the user
    named is a starting point the search may override.
    """
    return search_driver if verified and user_driver != "auto" else user_driver


def _write_optimized(model, inputs, out_dir, config, source, time_it, proposer, exported, result,
                     transcript: str | None) -> OptimizeSummary:
    """Compile what the search kept and write the artifact with its evidence."""
    opts = config.lowering
    low = exported.lowered
    comp = result.composition
    cache = ModuleCache() if opts.use_cache else None
    compiled = compile_mlir(comp.mlir, "auto", comp.flags, cache)
    kept_transcript = TRANSCRIPT if transcript is not None else None
    rewrites = [RewriteRecord.from_verdict(kernel, cand, verdict, kept_transcript, _in_model_evidence(comp, kernel.hash))
                for kernel, cand, verdict in comp.kept]
    kernel_files = {f"kernels/{kernel.hash}.mlir": kernel.module for kernel, _, _ in comp.kept}
    optimization = OptimizationRecord.for_search(
        proposer, config.search.budget_s, kept_transcript, result.search, comp,
        BaselineRecord(mlir="baseline.mlir", iree_flags=list(opts.iree_flags), driver=opts.driver),
    )
    verified = comp.verdict is not None and comp.verdict.accepted
    manifest = Manifest.for_compiled(opts, source, inputs, exported, compiled, low,
                                     driver=artifact_driver(opts.driver, comp.driver, verified),
                                     iree_flags=comp.flags, rewrites=rewrites, optimization=optimization)
    extra = {"module.mlir": comp.mlir, "baseline.mlir": low.mlir, **_reports(result, comp), **kernel_files}
    if transcript is not None:
        extra[TRANSCRIPT] = transcript
    out = write_artifact(Path(out_dir), compiled.vmfb, exported.parameters, manifest, extra)
    summary = OptimizeSummary(
        artifact=out,
        kept_anything=verified,
        kernels=[_kernel_row(kr, comp) for kr in result.search.kernels],
        module_candidates=[{"candidate": c.describe(), "result": v.feedback()} for c, v in result.search.module_history],
        evaluations=result.search.evaluations,
        search_seconds=result.search.seconds,
        end_to_end={"summary": comp.verdict.reason if comp.verdict else "nothing to compare: no verified rewrite differs from the unoptimised model",
                    **(comp.verdict.timing if comp.verdict else {})},
        interrupted=result.search.interrupted,
        stopped=result.search.stopped,
        rejected_answers=result.search.rejected_answers,
        llm=proposer.usage(),
    )
    if time_it and source:
        from mlirforge.measure import measure_in_subprocess

        figures = measure_in_subprocess(source, out)
        if not figures["matches_eager"]:
            raise UserError(f"the optimised artifact does not match eager PyTorch: {figures['message']}")
        summary.eager_us = figures["eager_us"]
        summary.unoptimized_us = figures["unoptimized_us"]
        summary.optimized_us = figures["optimized_us"]
        summary.vs_unoptimized, summary.vs_eager = figures["vs_unoptimized"], figures["vs_eager"]
        summary.other_cpu_share = figures.get("other_cpu_share")
    return summary


def _in_model_evidence(comp, kernel_hash: str) -> dict | None:
    """A kept rewrite's in-model A/B, with its dispatches before and after (`Composition.profile`) when profiled."""
    ab = comp.in_model.get(kernel_hash)
    if not ab or ab.get("speedup") is None:
        return None
    profile = comp.profile.get(kernel_hash)
    return {**ab, "dispatches": profile} if profile else ab


def _kernel_row(kr, comp) -> dict:
    """One line of the summary's kernel table: the verdict alone, and where it was composed, in the model;
    with a winner, its figures too (`_winner_evidence`)."""
    row = {"hash": kr.kernel.hash, "root": kr.kernel.root, "baseline_us": kr.kernel.baseline_us or 0.0,
           "tried": len(kr.history), "result": kr.skipped or f"no verified rewrite ({len(kr.history)} tried)"}
    if kr.winner is None:
        return row
    c, v = kr.winner
    w = row["winner"] = _winner_evidence(kr, comp)
    result = f"{'cached: ' if kr.from_cache else ''}{v.speedup:.2f}x alone with {c.describe()}"
    inside = w["in_model"]
    if inside and inside.get("speedup") is not None:
        result += f"; {inside['speedup']:.3f}x in the model (CI {inside['ci_low']:.3f}-{inside['ci_high']:.3f})"
    if (w["dispatches"] or {}).get("why"):
        result += f" [{w['dispatches']['why']}]"
    row["result"] = result + (f"; dropped: {w['dropped']}" if w["dropped"] else "; kept" if w["kept"] else "")
    return row


def _winner_evidence(kr, comp) -> dict:
    """A kernel's best verified candidate as figures, kept or not: its A/B alone (µs of the kernel built
    alone, reference and candidate), its in-model A/B, its dispatches in both models and why it was dropped."""
    c, v = kr.winner
    alone = {k: v.timing.get(k) for k in ("speedup", "ci_low", "ci_high", "baseline_us", "candidate_us")}
    why = next((why for (k, _, _), why in comp.dropped if k.hash == kr.kernel.hash), None)
    return {"candidate": c.describe(), "alone": alone, "in_model": comp.in_model.get(kr.kernel.hash),
            "dispatches": comp.profile.get(kr.kernel.hash),
            "kept": any(k.hash == kr.kernel.hash for k, _, _ in comp.kept), "dropped": why}


def _reports(result, comp) -> dict[str, str]:
    """report.md and report.html; a bug in a report must never cost the verified artifact."""
    from mlirforge.report import render_html, render_markdown, report_data

    try:
        data = report_data(result, comp)
        return {"report.md": render_markdown(data), "report.html": render_html(data)}
    except Exception as exc:  # noqa: BLE001 - reports are secondary to the artifact
        log.warning("mlirforge: could not write the report (%s: %s)", type(exc).__name__, exc)
        return {}


def evaluate_files(kernel_path: str | Path, candidate_path: str | Path, config: ConfigLike = None):
    """`mlirforge evaluate`: the whole cascade for one candidate file against one kernel file."""
    from mlirforge.llm_rewrite.evaluate import KernelEvaluator, new_workdir
    from mlirforge.llm_rewrite.kernels import kernel_from_function_text
    from mlirforge.llm_rewrite.types import Candidate

    config = CompileConfig.resolve(config)
    kernel = kernel_from_function_text(_read_text(kernel_path), str(kernel_path))
    candidate = Candidate("kernel", {"mlir": _read_text(candidate_path)}, kernel.hash, proposer="user")
    cache = ModuleCache() if config.lowering.use_cache else None
    workdir = new_workdir()
    try:
        return KernelEvaluator(kernel, config.eval_settings(), workdir, cache).evaluate(candidate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
