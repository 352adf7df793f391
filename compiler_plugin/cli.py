"""`mlirforge`: the standalone driver.

    mlirforge compile model.py -o out/      KernelBench-format model -> artifact directory
    mlirforge compile in.mlir  -o out.vmfb  MLIR (linalg/torch/any IREE input) -> vmfb
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

    options = {"form": args.form, "driver": args.driver, "use_cache": not args.no_cache}
    if args.iree_flag:
        options["iree_flags"] = args.iree_flag
    return CompileConfig.from_options(options)


def _cmd_compile(args, parser) -> int:
    from mlirforge import api

    src = Path(args.input)
    if not src.is_file():
        parser.error(f"{src}: no such file")
    config = _config_from_args(args)
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
    seconds = api.compile_mlir_file(src, args.output, config)
    print(f"wrote {args.output} ({seconds:.2f} s)")
    return 0


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
    comp.add_argument("--form", choices=["linalg", "torch"], default="linalg", help="what torch-mlir hands IREE")
    comp.add_argument("--driver", choices=["local-sync", "local-task"], default="local-sync")
    comp.add_argument("--iree-flag", action="append", metavar="FLAG", help="extra iree-compile flag (repeatable); replaces the defaults")
    comp.add_argument("--no-cache", action="store_true", help="do not read or write the module cache")
    comp.add_argument("--no-check", action="store_true", help="skip the comparison and timing against eager")
    comp.set_defaults(func=_cmd_compile)

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
