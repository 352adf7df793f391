"""`mlirforge bench-problems DIR`: run a folder of KernelBench-format problems.

Each `*.py` file in DIR defines `class Model(torch.nn.Module)`, `get_inputs()`
and `get_init_inputs()` (`mlirforge.kernelbench.load_model_file`). Every
problem goes through `torch.compile(model, backend="mlirforge", options=...)`
and is compared with eager PyTorch and timed against it, side by side.

    mlirforge bench-problems problems/ [--timeout-s 300] [--max-memory-mb 8192]
        [--rounds 20] [--json OUT] [--filter SUBSTRING] [--options KEY=VALUE ...]

Per problem the status is one of:

  pass       every graph ran in IREE and the outputs match eager
             (`mlirforge.numerics.compare_outputs` tolerances)
  mismatch   the outputs differ from eager (the max abs error is shown)
  fell-back  the outputs match, but part or all of the model ran in eager
             PyTorch (ops mlirforge cannot lower, dynamo graph breaks)
  error      the file fails to import or build, or compiling raises
  timeout    the problem exceeded --timeout-s
  skipped    the problem is estimated too large for --max-memory-mb or for
             the RAM available (estimated on the `meta` device: nothing real
             is allocated)

Why a subprocess per problem: a crash, a hang or a memory blow-up of one
problem must not take down the run. The child (`python -m mlirforge.problems
--one FILE ...`, `mlirforge.problem_child`) bounds its own address space with
RLIMIT_AS before importing torch; the parent (`mlirforge.problem_runner`)
bounds its wall time (and kills its process group, which holds the
`iree-compile` it may have started) and reads one JSON line from its stdout.
Problems run one at a time: concurrent runs would distort each other's
timings on a small machine. This module: the problem files, the options, the
command and its exit status; `mlirforge.problem_results` the table and totals.

Exit status: 0 the run completed (whatever the statuses), 2 usage errors,
1 internal failure, 130 interrupted (the table so far is printed).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from mlirforge.benchmarking import fallback_ops, one_line  # noqa: F401 (fallback_ops: re-exported)
from mlirforge.problem_child import DEFAULT_ROUNDS, child_main
from mlirforge.problem_results import (
    ProblemResult,
    format_table,
    format_totals,
    load_note,
    progress_line,
    totals,
    write_json,
)
from mlirforge.problem_runner import run_problem
from mlirforge.problem_size import (  # noqa: F401 (SizeEstimate, skip_reason re-exported)
    DEFAULT_MAX_MEMORY_MB,
    MIN_MAX_MEMORY_MB,
    SizeEstimate,
    skip_reason,
)

DEFAULT_TIMEOUT_S = 300.0


# --------------------------------------------------------------------------- the problem files


def natural_key(path: Path) -> list:
    """`2_x.py` before `10_x.py`, as KernelBench numbers its problems."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def problem_files(directory: Path, substring: str | None) -> list[Path]:
    files = [p for p in directory.glob("*.py") if p.is_file() and not p.name.startswith("_")]
    if substring:
        files = [p for p in files if substring in p.name]
    return sorted(files, key=natural_key)


def parse_options(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """KEY=VALUE pairs; a VALUE that parses as JSON (true, 20, ["--x"]) is taken as such."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            parser.error(f"--options: expected KEY=VALUE, got '{pair}'")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    if options:
        from mlirforge.config import CompileConfig
        from mlirforge.lowering.errors import UserError

        try:
            CompileConfig.from_options(options)
        except UserError as exc:
            parser.error(f"--options: {exc}")
    return options


# --------------------------------------------------------------------------- the command


def _check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Path]:
    """Usage errors (exit 2) before anything runs; returns the problem files."""
    directory = Path(args.directory)
    if not directory.is_dir():
        parser.error(f"{directory}: no such directory")
    if args.timeout_s <= 0:
        parser.error("--timeout-s must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        parser.error(f"--json {args.json}: its folder does not exist")
    if args.max_memory_mb < MIN_MAX_MEMORY_MB:
        parser.error(f"--max-memory-mb must be at least {MIN_MAX_MEMORY_MB} "
                     "(torch, mlirforge and IREE alone need about 1.4 GB of address space)")
    files = problem_files(directory, args.filter)
    if not files:
        what = f" matching --filter '{args.filter}'" if args.filter else ""
        parser.error(f"{directory}: no .py problem files{what}")
    return files


def cmd_bench_problems(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run every problem in args.directory; print progress, the table and the totals."""
    files = _check_args(args, parser)
    options = parse_options(args.options or [], parser)
    results: list[ProblemResult] = []
    interrupted = False
    print(f"mlirforge: {len(files)} problems in {args.directory}, timeout {args.timeout_s:g} s, "
          f"memory bound {args.max_memory_mb} MB, {args.rounds} rounds", file=sys.stderr)
    failure: BaseException | None = None
    try:
        for i, path in enumerate(files, 1):
            result = run_problem(path, args, options)
            results.append(result)
            print(progress_line(i, len(files), result), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"mlirforge: interrupted after {len(results)} of {len(files)} problems", file=sys.stderr)
    except Exception as exc:  # a bug in the runner itself, not in a problem: still show what ran
        failure = exc
    try:
        for line in format_table(results):
            print(line)
        print(format_totals(totals(results), len(results)), flush=True)
        if args.json:
            write_json(Path(args.json), args, options, results, len(files), interrupted)
    except Exception as exc:
        failure = failure or exc
    note = load_note(results)
    if note:
        print(note, file=sys.stderr)
    if failure is not None:
        print(f"mlirforge: internal error: {one_line(failure)}", file=sys.stderr)
        return 1
    return 130 if interrupted else 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `bench-problems` to a CLI's subparsers (mlirforge.cli and this module's main)."""
    p = subparsers.add_parser(
        "bench-problems", help="run a folder of KernelBench-format problems through the backend",
        description="Run each KernelBench-format *.py in DIR through torch.compile(backend='mlirforge') "
                    "in its own subprocess; report pass / mismatch / fell-back / error / timeout / skipped, "
                    "max abs error, eager and mlirforge µs, speedup and compile time.")
    p.add_argument("directory", metavar="DIR", help="folder of problem files (class Model, get_inputs, get_init_inputs)")
    p.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, dest="timeout_s",
                   help=f"wall-time bound per problem, seconds (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--max-memory-mb", type=int, default=DEFAULT_MAX_MEMORY_MB, dest="max_memory_mb",
                   help=f"address-space bound per problem (RLIMIT_AS), MB; bigger problems are skipped "
                        f"(default {DEFAULT_MAX_MEMORY_MB}; a trivial problem needs ~1.4 GB)")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                   help=f"interleaved timing rounds (default {DEFAULT_ROUNDS})")
    p.add_argument("--json", metavar="OUT", help="write all raw results to this JSON file")
    p.add_argument("--filter", metavar="SUBSTRING", help="only problem files whose name contains SUBSTRING")
    p.add_argument("--options", action="append", metavar="KEY=VALUE",
                   help="backend option, repeatable: --options optimize=true --options budget_s=20")
    p.set_defaults(func=cmd_bench_problems)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m mlirforge.problems [bench-problems] DIR ...` or the child's `--one FILE ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--one"]:
        return child_main(argv)
    if argv and argv[0] not in ("bench-problems", "-h", "--help"):
        argv.insert(0, "bench-problems")
    parser = argparse.ArgumentParser(prog="python -m mlirforge.problems")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args, parser)


if __name__ == "__main__":
    sys.exit(main())
