"""`mlirforge`: the standalone driver.

    mlirforge compile model.py -o out/      KernelBench-format model -> artifact directory
    mlirforge compile in.mlir  -o out.vmfb  MLIR (linalg/torch/any IREE input) -> vmfb
    mlirforge optimize model.py -o out/ [--budget-s N] [--proposer auto|heuristic|llm|replay]
                       [--transcript F] [--llm-model M] [--llm-base-url URL] [--llm-max-requests N]
    mlirforge evaluate KERNEL.mlir CANDIDATE.mlir [--json]
    mlirforge cache list|clear
    mlirforge bench-problems DIR            every KernelBench-format file in DIR through the backend
    mlirforge info                          tool versions and the host target

Exit status: 0 success, 1 the input could not be compiled (diagnostics are
printed as file:line:col: error: ...), 2 usage errors (bad option, missing file).
User errors print one line; --verbose adds the traceback and debug logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
import warnings
from pathlib import Path

from mlirforge.lowering.errors import LoweringError, MlirforgeError, UserError


def _config_from_args(args):
    from mlirforge.config import CompileConfig

    options = {"use_cache": not args.no_cache}
    for key in ("form", "driver", "proposer", "budget_s", "min_gain", "transcript", "patience",
                "llm_model", "llm_base_url", "llm_max_requests", "llm_max_tokens", "llm_timeout_s",
                "llm_samples", "llm_temperatures"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    if args.iree_flag:
        options["iree_flags"] = args.iree_flag
    return CompileConfig.load(options)


def _cmd_compile(args, parser) -> int:
    from mlirforge import api

    src = Path(args.input)
    if not src.is_file():
        parser.error(f"{src}: no such file")
    config = _config_from_args(args)
    from mlirforge.lowering.target import CudaTarget, parse_target

    try:
        target = parse_target(args.target)
    except ValueError as exc:
        raise UserError(f"--target: {exc}") from None
    if src.suffix == ".py" and isinstance(target, CudaTarget):
        parser.error(f"--target {args.target}: only .mlir inputs compile for a GPU so far (a model "
                     "file's artifact is checked against eager PyTorch on this machine's CPU)")
    if src.suffix == ".py":
        print(f"mlirforge: compiling {src} (torch.export -> torch-mlir -> IREE llvm-cpu)", file=sys.stderr)
        summary = api.compile_model_file(src, args.output, config, verify=not args.no_check, time_it=not args.no_check)
        for line in summary.lines():
            print(line)
        if summary.matches_eager is False:
            print("mlirforge: error: the compiled artifact does not match eager PyTorch", file=sys.stderr)
            return 1
        return 0
    if src.suffix not in (".mlir", ".mlirbc"):
        parser.error(f"{src}: expected a .py model file or a .mlir file")
    seconds = api.compile_mlir_file(src, args.output, config, target=target)
    print(f"wrote {args.output} ({seconds:.2f} s)")
    return 0


class _Progress:
    """One line per event on stderr: what is being tried and what the checks said."""

    def __init__(self, budget_s: float):
        import time

        self.start = time.monotonic()
        self.budget = budget_s
        self.evals = 0

    def __call__(self, event: str, info: dict) -> None:
        import time

        elapsed = time.monotonic() - self.start
        filled = min(20, int(20 * elapsed / self.budget)) if self.budget else 20
        bar = f"[{'#' * filled}{'.' * (20 - filled)}] {elapsed:5.1f}/{self.budget:.0f}s"
        if event in ("module-candidate", "kernel-candidate"):
            self.evals += 1
            cand, verdict = info["candidate"], info["verdict"]
            where = "module" if event == "module-candidate" else info["kernel"].hash[:8]
            mark = "ACCEPT" if verdict.accepted else "reject"
            text = verdict.feedback() if verdict.built else verdict.reason
            print(f"{bar} #{self.evals:<3} {where:<8} {cand.describe()[:60]:<60} {mark} {text[:70]}", file=sys.stderr)
        elif event == "profile":
            print(f"{bar} profiling {info['kernels']} kernels", file=sys.stderr)
        elif event == "kernel-start":
            k = info["kernel"]
            print(f"{bar} kernel {info['index'] + 1}/{info['total']} {k.hash[:8]} {k.root} "
                  f"({k.baseline_us or 0:.1f} us x {k.calls})", file=sys.stderr)
        elif event == "kernel-cached":
            k, c = info["kernel"], info["candidate"]
            what = f"cached rewrite: {c.describe()}" if c else "searched before, nothing to reuse"
            print(f"{bar} kernel {k.hash[:8]} {what}", file=sys.stderr)
        elif event == "module-cached":
            c = info["candidate"]
            what = f"cached module-wide choice: {c.describe()}" if c else "module-wide flags searched before, none kept"
            print(f"{bar} {what}", file=sys.stderr)
        elif event == "compose-set":
            print(f"{bar} all {info['kept']} verified rewrite(s) in the model: {info['verdict'].reason}",
                  file=sys.stderr)
        elif event == "compose-ablation":
            t = info["verdict"].timing or {}
            figure = f"{t['speedup']:.3f}x (95% CI {t['ci_low']:.3f}-{t['ci_high']:.3f})" if t else info["verdict"].reason
            print(f"{bar} kernel {info['kernel'].hash[:8]} in the model: {figure}", file=sys.stderr)
        elif event == "compose-final":
            verdict = info["verdict"]
            text = verdict.reason if verdict is not None else "no verified rewrite to put in the model"
            print(f"{bar} end to end: {text}", file=sys.stderr)
        elif event == "interrupted":
            print(f"{bar} interrupted: keeping what was verified", file=sys.stderr)
        elif event == "answer-rejected":
            where = info["kernel"].hash[:8] if info["kernel"] is not None else "module"
            print(f"{bar} {where:<8} unusable answer: {info['reason'][:110]}", file=sys.stderr)
        elif event == "proposer-stopped":
            print(f"{bar} proposer stopped: {info['reason']}; keeping what was verified", file=sys.stderr)


def _cmd_optimize(args, parser) -> int:
    from mlirforge import api
    from mlirforge.kernelbench import load_model_file

    src = Path(args.input)
    if not src.is_file():
        parser.error(f"{src}: no such file")
    if src.suffix != ".py":
        parser.error(f"{src}: optimize takes a model.py (KernelBench convention)")
    config = _config_from_args(args)
    proposer = config.resolved_proposer
    print(f"mlirforge: optimizing {src} with the {proposer} proposer, budget {config.search.budget_s:.0f} s",
          file=sys.stderr)
    if proposer == "heuristic" and not config.llm_configured:
        from mlirforge.llm_rewrite.llm_client import ENABLE_HINT

        print(f"mlirforge: note: {ENABLE_HINT}", file=sys.stderr)
    problem = load_model_file(src)
    summary = api.optimize_model(problem.model, problem.inputs, args.output, config, source=str(src),
                                 progress=_Progress(config.search.budget_s))
    for line in summary.lines():
        print(line)
    return 0


def _cmd_evaluate(args, parser) -> int:
    from mlirforge import api

    for path in (args.kernel, args.candidate):
        if not Path(path).is_file():
            parser.error(f"{path}: no such file")
    config = _config_from_args(args)
    verdict = api.evaluate_files(args.kernel, args.candidate, config)
    if args.json:
        print(json.dumps(verdict.to_json(), indent=2))
    else:
        print(f"built       {verdict.built}")
        print(f"equivalent  {verdict.equivalent}")
        proof = verdict.equivalence.get("formal")
        note = "" if not proof else (f" ({proof['why']})" if proof["outcome"] == verdict.method
                                     else f" (formal check {proof['outcome']}: {proof['why']})")
        print(f"method      {verdict.method or '-'}{note}")
        speedup = f"{verdict.speedup:.3f}x (95% CI {verdict.timing['ci_low']:.3f}-{verdict.timing['ci_high']:.3f})" if verdict.speedup else "-"
        print(f"speedup     {speedup}")
        print(f"accepted    {verdict.accepted}")
        print(f"reason      {verdict.reason}")
    return 0 if verdict.accepted else 1


def _cmd_cache(args, parser) -> int:
    from mlirforge.llm_rewrite.cache import RewriteCache

    cache = RewriteCache()
    try:
        if args.action == "clear":
            n = cache.clear()
            print(f"removed {n} rewrites from {cache.path}")
            return 0
        entries = cache.entries()
        print(f"{cache.path}: {len(entries)} verified rewrites, {cache.searched_count()} kernels searched")
        for e in entries:
            print(f"  {e['kernel']}  {e['speedup']:.2f}x  {e['candidate']}  ({e['proposer']})")
        return 0
    finally:
        cache.close()


def _cmd_info(args, parser) -> int:
    from mlirforge.lowering.target import host_cpu
    from mlirforge.lowering.versions import tool_versions

    print(json.dumps({"tool_versions": tool_versions(), "target": host_cpu().describe()}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlirforge", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    comp = sub.add_parser("compile", help="compile a model.py or .mlir file")
    comp.add_argument("input", help="model.py (KernelBench convention) or a .mlir file")
    comp.add_argument("-o", "--output", required=True, help="artifact directory (model.py) or .vmfb path (.mlir)")
    comp.add_argument("--form", choices=["linalg", "torch"], help="what torch-mlir hands IREE (default linalg)")
    comp.add_argument("--driver", choices=["auto", "local-sync", "local-task"],
                      help="IREE driver (default auto: the faster of the two for this model, timed on first calls)")
    comp.add_argument("--iree-flag", action="append", metavar="FLAG", help="extra iree-compile flag (repeatable); replaces the defaults")
    comp.add_argument("--target", default="host",
                      help="what a .mlir input compiles for: host (this CPU, the default), cuda:sm_XX (a named "
                           "NVIDIA GPU, no GPU needed; run on IREE's cuda driver) or cuda (the visible GPU)")
    comp.add_argument("--no-cache", action="store_true", help="do not read or write the module cache")
    comp.add_argument("--no-check", action="store_true", help="skip the comparison and timing against eager")
    comp.set_defaults(func=_cmd_compile)

    opt = sub.add_parser("optimize", help="search verified rewrites and write an optimised artifact")
    opt.add_argument("input", help="model.py (KernelBench convention)")
    opt.add_argument("-o", "--output", required=True, help="artifact directory")
    opt.add_argument("--budget-s", type=float, dest="budget_s", help="search budget in seconds (default 60)")
    opt.add_argument("--proposer", choices=["auto", "heuristic", "llm", "replay"],
                     help="default auto: llm when OPENAI_BASE_URL is set and a model is configured or is "
                     "the endpoint's only one, else heuristic (offline)")
    opt.add_argument("--transcript", help="transcript to replay (--proposer replay); the llm proposer's is "
                     "always kept in the artifact as transcript.jsonl (and also written here if given)")
    opt.add_argument("--patience", type=int, help="rounds without a better verified rewrite before a kernel's search stops (default 2)")
    opt.add_argument("--llm-base-url", dest="llm_base_url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
    opt.add_argument("--llm-model", dest="llm_model", help="model name (default $MLIRFORGE_MODEL, else the endpoint's only model)")
    opt.add_argument("--llm-max-requests", dest="llm_max_requests", type=int, help="request budget (default 60)")
    opt.add_argument("--llm-max-tokens", dest="llm_max_tokens", type=int, help="token budget, prompt + completion (default 400000)")
    opt.add_argument("--llm-timeout-s", dest="llm_timeout_s", type=float, help="per-request timeout (default 120)")
    opt.add_argument("--llm-samples", dest="llm_samples", type=int, help="answers per request, OpenAI's n (default 1)")
    opt.add_argument("--llm-temperatures", dest="llm_temperatures", metavar="T1,T2,...",
                     help="one request per temperature each round, answers pooled (default: one at 0.7)")
    opt.add_argument("--min-gain", type=float, dest="min_gain", help="required speedup CI lower bound - 1 (default 0.03)")
    opt.add_argument("--form", choices=["linalg", "torch"])
    opt.add_argument("--driver", choices=["auto", "local-sync", "local-task"])
    opt.add_argument("--iree-flag", action="append", metavar="FLAG", help="base iree-compile flag (repeatable)")
    opt.add_argument("--no-cache", action="store_true", help="do not use the module cache")
    opt.set_defaults(func=_cmd_optimize)

    ev = sub.add_parser("evaluate", help="check and time one candidate kernel against a kernel")
    ev.add_argument("kernel", help="KERNEL.mlir: one public func.func with tensor arguments")
    ev.add_argument("candidate", help="CANDIDATE.mlir: a func.func with the identical signature")
    ev.add_argument("--json", action="store_true", help="print the verdict as JSON")
    ev.add_argument("--min-gain", type=float, dest="min_gain")
    ev.add_argument("--iree-flag", action="append", metavar="FLAG")
    ev.add_argument("--no-cache", action="store_true")
    ev.set_defaults(func=_cmd_evaluate)

    cache = sub.add_parser("cache", help="list or clear verified rewrites")
    cache.add_argument("action", choices=["list", "clear"])
    cache.set_defaults(func=_cmd_cache)

    from mlirforge import problems

    problems.add_parser(sub)

    info = sub.add_parser("info", help="print tool versions and the host target")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # torch.export's internals warn about their own deprecations; not the user's business.
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.func(args, parser)
    except LoweringError as exc:
        if args.verbose:
            traceback.print_exc()
        print(exc.diagnostics, file=sys.stderr)
        ops = f" (cannot lower: {', '.join(exc.unsupported_ops)})" if exc.unsupported_ops else ""
        repro = f"; reproducer: {exc.reproducer}" if exc.reproducer else ""
        print(f"mlirforge: error: stage '{exc.stage}' failed{ops}{repro}", file=sys.stderr)
        return 1
    except (UserError, MlirforgeError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"mlirforge: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mlirforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
