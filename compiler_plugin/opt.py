"""`mlirforge-opt`: run mlirforge passes on MLIR, like `mlir-opt`.

    mlirforge-opt in.mlir -p 'mlirforge-outline-kernels,mlirforge-inline-kernels' -o out.mlir
    mlirforge-opt --split-input-file --verify-diagnostics invalid.mlir -p ...
    mlirforge-opt --list-passes
    cat in.mlir | mlirforge-opt -p ...

Diagnostics print as `file:line:col: error: ...`; exit 1 on a parse error,
a failing pass or a diagnostics mismatch, 2 on usage errors (unknown pass or
option included).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from mlirforge.lowering.ir import ir

SPLIT_MARKER = re.compile(r"^// -----\s*$", re.MULTILINE)
_EXPECT = re.compile(r"expected-(error|warning|remark|note)\s*(@(?:above|below|[+-]\d+))?\s*\{\{(.*?)\}\}")
_LOC = re.compile(r'^loc\("(?P<file>[^"]*)":(?P<line>\d+):(?P<col>\d+)')


@dataclass
class Diagnostic:
    severity: str
    line: int | None
    col: int | None
    message: str

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}:{self.col}" if self.line is not None else filename
        return f"{where}: {self.severity}: {self.message}"


def _collect(diag, out: list[Diagnostic], severity: str | None = None) -> None:
    sev = severity or str(diag.severity).split(".")[-1].lower()
    match = _LOC.match(str(diag.location))
    line, col = (int(match["line"]), int(match["col"])) if match else (None, None)
    out.append(Diagnostic(sev, line, col, diag.message))
    for note in diag.notes:
        _collect(note, out, "note")


def split_chunks(text: str, split: bool) -> list[tuple[str, int]]:
    """(chunk, 0-based line offset) pairs; one chunk unless splitting."""
    if not split:
        return [(text, 0)]
    chunks, start = [], 0
    for match in SPLIT_MARKER.finditer(text):
        chunks.append((text[start : match.start()], text.count("\n", 0, start)))
        start = match.end()
    chunks.append((text[start:], text.count("\n", 0, start)))
    return chunks


def expectations(chunk: str, offset: int) -> list[Diagnostic]:
    """`// expected-error @+1 {{msg}}` annotations, with absolute line numbers."""
    found = []
    for i, line in enumerate(chunk.split("\n")):
        for match in _EXPECT.finditer(line):
            lineno = offset + i + 1
            anchor = match.group(2)
            if anchor == "@above":
                lineno -= 1
            elif anchor == "@below":
                lineno += 1
            elif anchor:
                lineno += int(anchor[1:])
            found.append(Diagnostic(match.group(1), lineno, None, match.group(3)))
    return found


def verify(expected: list[Diagnostic], actual: list[Diagnostic], filename: str) -> list[str]:
    """Mismatches between expected and produced diagnostics, as error lines."""
    problems = []
    remaining = list(expected)
    for diag in actual:
        hit = next(
            (e for e in remaining if e.severity == diag.severity and e.line == diag.line and e.message in diag.message),
            None,
        )
        if hit is not None:
            remaining.remove(hit)
        elif diag.severity != "note":
            problems.append(f"{diag.render(filename)} (unexpected {diag.severity})")
    for e in remaining:
        problems.append(f'{filename}:{e.line}: error: expected {e.severity} "{e.message}" was not produced')
    return problems


def process_chunk(chunk: str, offset: int, pipeline, filename: str, context) -> tuple[str | None, list[Diagnostic]]:
    """Parse and transform one chunk; returns (output or None, diagnostics)."""
    from mlirforge.passes import run_pipeline

    diags: list[Diagnostic] = []
    handler = context.attach_diagnostic_handler(lambda d: _collect(d, diags) or True)
    try:
        with context:
            try:
                module = ir.Module.parse("\n" * offset + chunk)
            except ir.MLIRError as exc:
                for d in exc.error_diagnostics:
                    _collect(d, diags, "error")
                return None, diags
            try:
                run_pipeline(module, pipeline)
            except ir.MLIRError as exc:
                for d in exc.error_diagnostics:
                    _collect(d, diags, "error")
                if not any(d.severity == "error" for d in diags):
                    diags.append(Diagnostic("error", None, None, str(exc).splitlines()[0]))
                return None, diags
            return module.operation.get_asm(), diags
    finally:
        handler.detach()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlirforge-opt", description=__doc__.split("\n")[0])
    parser.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' or omitted: stdin)")
    parser.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    parser.add_argument("-p", "--pass-pipeline", default="", help="e.g. 'pass-a,pass-b{opt=1}'")
    parser.add_argument("--split-input-file", action="store_true", help="process each '// -----' chunk separately")
    parser.add_argument("--verify-diagnostics", action="store_true", help="check expected-error/... annotations")
    parser.add_argument("--list-passes", action="store_true", help="list the registered passes and their options")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def list_passes() -> str:
    from mlirforge.passes import describe_passes

    return describe_passes()


def main(argv: list[str] | None = None) -> int:
    from mlirforge.passes import PipelineError, parse_pipeline

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_passes:
        print(list_passes())
        return 0
    try:
        pipeline = parse_pipeline(args.pass_pipeline)
    except PipelineError as exc:
        parser.error(f"--pass-pipeline: {exc}")
    filename = "<stdin>" if args.input == "-" else args.input
    try:
        text = sys.stdin.read() if args.input == "-" else open(args.input).read()
    except OSError as exc:
        parser.error(f"{args.input}: {exc.strerror.lower() if exc.strerror else exc}")

    context = ir.Context()
    outputs, failed, problems = [], False, []
    for chunk, offset in split_chunks(text, args.split_input_file):
        out, diags = process_chunk(chunk, offset, pipeline, filename, context)
        if args.verify_diagnostics:
            problems += verify(expectations(chunk, offset), diags, filename)
        else:
            for d in diags:
                print(d.render(filename), file=sys.stderr)
            failed |= out is None
        if out is not None:
            outputs.append(out)
    if args.verify_diagnostics and problems:
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    result = "// -----\n".join(outputs)
    if args.output == "-":
        sys.stdout.write(result)
    elif not failed:  # never leave a half-written output file
        from mlirforge.artifact import atomic_write_bytes
        from pathlib import Path

        atomic_write_bytes(Path(args.output), result.encode())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
