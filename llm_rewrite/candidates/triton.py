"""`triton` candidates: a Triton kernel and its launch configuration in place of the kernel.

Payload: {"source": "<Python>", "entry": "kernel", "grid": [g0, g1?, g2?],
"num_warps": 4, "num_stages": 2, "constexprs": {"BLOCK_M": 64, ...}}.

The calling convention, fixed so that a payload says everything: the entry is
called once per evaluation as `entry[grid](in0, ..., out0, ..., **constexprs,
num_warps=, num_stages=)`, with one pointer per kernel argument (in the
kernel's order, weights included) and then one per result, each a contiguous
row-major tensor of the kernel's static shape and dtype. Shapes are static, so
sizes are constexprs and the grid is a list of integers. Outputs start out
holding a poison value, so every element must be written.

Triton source is Python, so before anything runs, `screen_source` admits only
Triton kernels: imports of `triton`, `triton.language` and `math`, module
constants, and `@triton.jit` functions that touch no name or attribute that
reaches outside the kernel (`open`, `getattr`, `__class__`, ...). What runs is
then confined by the worker's sandbox (`llm_rewrite.sandbox`). The kernel runs
on a CUDA GPU, or on the CPU under Triton's interpreter (`TRITON_INTERPRET=1`),
where it is checked for equivalence but never faster. Offered to proposers only
where it can run (`available`).

Not yet: a verified Triton kernel is not placed in the compiled artifact (that
needs its PTX embedded as an IREE custom dispatch); composition drops it with
that reason (`compose`).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
from typing import Any

from mlirforge.llm_rewrite.candidates.base import Built, CandidateKind, CandidateRejected
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.triton_dispatch import TRITON_TYPES
from mlirforge.llm_rewrite.types import Kernel, Stage

MAX_SOURCE_CHARS = 50_000
MAX_CONSTEXPRS = 32
NUM_WARPS = (1, 2, 4, 8, 16, 32)
MAX_STAGES = 8
MAX_GRID = (2**31 - 1, 65535, 65535)
"""CUDA's grid limits per axis (x, y, z)."""
LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg", "grid", "warmup", "stream", "device")
"""Keyword arguments a Triton launch takes for itself: no constexpr may be called so."""
DTYPES = tuple(TRITON_TYPES)
"""Element types a Triton kernel here takes pointers to (`triton_dispatch.TRITON_TYPES`)."""
IMPORTS = ("triton", "triton.language", "math")
FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "input", "breakpoint", "memoryview", "help", "exit", "quit", "print", "dir", "type", "object", "super",
    "classmethod", "staticmethod", "property",
})
"""Builtins a kernel has no use for and a cheat does: files, code, introspection, output."""


def available() -> bool:
    """Whether a Triton kernel can run here: a GPU, or Triton's interpreter switched on
    (`TRITON_INTERPRET=1`, Triton's own switch), and triton installed."""
    return _available(os.environ.get("TRITON_INTERPRET") == "1")


@functools.lru_cache(maxsize=None)
def _available(interpret: bool) -> bool:
    if not (interpret or _cuda_available()):
        return False
    return importlib.util.find_spec("triton") is not None


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def device() -> str:
    """Where a Triton candidate runs now: "cuda", or "cpu" under the interpreter."""
    return "cpu" if os.environ.get("TRITON_INTERPRET") == "1" or not _cuda_available() else "cuda"


def _decorated_jit(fn: ast.FunctionDef, jit_names: set[str], triton_names: set[str]) -> bool:
    if len(fn.decorator_list) != 1:
        return False
    d = fn.decorator_list[0]
    if isinstance(d, ast.Name):
        return d.id in jit_names
    return isinstance(d, ast.Attribute) and d.attr == "jit" and isinstance(d.value, ast.Name) and d.value.id in triton_names


def _is_constexpr(annotation: ast.expr | None) -> bool:
    return annotation is not None and (
        (isinstance(annotation, ast.Attribute) and annotation.attr == "constexpr")
        or (isinstance(annotation, ast.Name) and annotation.id == "constexpr"))


def screen_source(source: str, entry: str) -> tuple[list[str], list[str]]:
    """Check that `source` is only Triton kernels; returns the entry's (pointer, constexpr) parameter names.

    Raises CandidateRejected(parse) naming the line and what is not allowed.
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise CandidateRejected(Stage.PARSE, f"Triton source of {len(source)} characters (at most {MAX_SOURCE_CHARS})")
    try:
        tree = ast.parse(source, "<triton candidate>")
    except SyntaxError as exc:
        raise CandidateRejected(Stage.PARSE, f"Triton source does not parse: line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CandidateRejected(Stage.PARSE, f"Triton source does not parse: {type(exc).__name__}") from None

    def bad(node: ast.AST, what: str) -> CandidateRejected:
        return CandidateRejected(Stage.PARSE, f"Triton source line {getattr(node, 'lineno', '?')}: {what}")

    triton_names, jit_names, functions = set(), set(), {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in IMPORTS:
                    raise bad(node, f"import {alias.name} (only {', '.join(IMPORTS)})")
                if alias.name == "triton":
                    triton_names.add(alias.asname or "triton")
        elif isinstance(node, ast.ImportFrom):
            allowed = {"triton": {"language", "jit", "cdiv", "next_power_of_2"}, "triton.language": None}
            if node.module not in allowed or node.level:
                raise bad(node, f"from {node.module} import ... (only from triton or triton.language)")
            for alias in node.names:
                names = allowed[node.module]
                if alias.name == "*" or (names is not None and alias.name not in names):
                    raise bad(node, f"from {node.module} import {alias.name}")
                if node.module == "triton" and alias.name == "jit":
                    jit_names.add(alias.asname or "jit")
        elif isinstance(node, ast.FunctionDef):
            functions[node.name] = node
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) \
                and isinstance(node.value, ast.Constant):
            pass  # a module constant
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            pass  # a docstring
        else:
            raise bad(node, f"{type(node).__name__} at module level (only imports, constants and @triton.jit functions)")
    for fn in functions.values():
        if not _decorated_jit(fn, jit_names, triton_names):
            raise bad(fn, f"function {fn.name} must have exactly one decorator, @triton.jit")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or node.id.startswith("__")):
            raise bad(node, f"the name {node.id!r} is not allowed in a Triton kernel")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise bad(node, f"the attribute {node.attr!r} is not allowed (no private or special attributes)")
        if isinstance(node, ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda | ast.Global | ast.Nonlocal
                      | ast.Await | ast.Yield | ast.YieldFrom):
            raise bad(node, f"{type(node).__name__} is not allowed in a Triton kernel")
    fn = functions.get(entry)
    if fn is None:
        raise CandidateRejected(Stage.PARSE, f"the Triton source defines no @triton.jit function {entry!r}")
    args = fn.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
        raise bad(fn, f"{entry}: plain parameters only (no defaults, *args, **kwargs or keyword-only)")
    pointers = [a.arg for a in args.args if not _is_constexpr(a.annotation)]
    constexprs = [a.arg for a in args.args if _is_constexpr(a.annotation)]
    return pointers, constexprs


def _launch(payload: dict[str, Any]) -> dict[str, Any]:
    """The launch configuration with defaults; ValueError naming the field."""
    grid = payload.get("grid")
    if not isinstance(grid, list) or not 1 <= len(grid) <= 3 or not all(
            isinstance(g, int) and not isinstance(g, bool) for g in grid):
        raise ValueError("triton candidate needs 'grid': a list of 1 to 3 integers (programs per axis)")
    for axis, (g, most) in enumerate(zip(grid, MAX_GRID)):
        if not 1 <= g <= most:
            raise ValueError(f"grid axis {axis} is {g}; it must be in 1..{most}")
    num_warps = payload.get("num_warps", 4)
    if num_warps not in NUM_WARPS or isinstance(num_warps, bool):
        raise ValueError(f"num_warps must be one of {', '.join(map(str, NUM_WARPS))}, not {num_warps!r}")
    num_stages = payload.get("num_stages", 2)
    if not isinstance(num_stages, int) or isinstance(num_stages, bool) or not 1 <= num_stages <= MAX_STAGES:
        raise ValueError(f"num_stages must be an integer in 1..{MAX_STAGES}, not {num_stages!r}")
    constexprs = payload.get("constexprs", {})
    if not isinstance(constexprs, dict) or len(constexprs) > MAX_CONSTEXPRS:
        raise ValueError(f"constexprs must be an object of at most {MAX_CONSTEXPRS} name: value pairs")
    for name, value in constexprs.items():
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"constexpr name {name!r} is not a plain identifier")
        if name in LAUNCH_OPTIONS:
            raise ValueError(f"constexpr name {name!r} is one of Triton's launch options ({', '.join(LAUNCH_OPTIONS)})")
        if not isinstance(value, int | float | bool):
            raise ValueError(f"constexpr {name} = {value!r}: only integers, floats and booleans")
    entry = payload.get("entry", "kernel")
    if not isinstance(entry, str) or not entry.isidentifier() or entry.startswith("_"):
        raise ValueError(f"entry {entry!r} is not a plain identifier")
    return {"entry": entry, "grid": grid, "num_warps": num_warps, "num_stages": num_stages,
            "constexprs": constexprs}


class TritonKind(CandidateKind):
    name = "triton"
    runtime = "triton"
    fields = frozenset({"source", "entry", "grid", "num_warps", "num_stages", "constexprs"})

    def available(self) -> bool:
        return available()

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("source"), str):
            raise ValueError("triton candidate needs 'source': the Python file with the @triton.jit kernel")
        return {"source": payload["source"], **_launch(payload)}

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        """The checked source (`Built.source` is Python here; no flags): CandidateRejected for anything malformed."""
        try:
            launch = _launch(payload)
        except ValueError as exc:
            raise CandidateRejected(Stage.PARSE, str(exc)) from None
        source = payload.get("source")
        if not isinstance(source, str):
            raise CandidateRejected(Stage.PARSE, "triton candidate without a 'source' string")
        unsupported = sorted({s.dtype for s in (*kernel.inputs, *kernel.outputs)} - set(DTYPES))
        if unsupported:
            raise CandidateRejected(Stage.SIGNATURE, f"element type(s) {', '.join(unsupported)} have no Triton "
                                                     "pointer type here")
        pointers, constexprs = screen_source(source, launch["entry"])
        want = len(kernel.inputs) + len(kernel.outputs)
        if len(pointers) != want:
            raise CandidateRejected(Stage.SIGNATURE, f"{launch['entry']} takes {len(pointers)} pointer parameters "
                                                     f"({', '.join(pointers)}); the kernel needs {want}: "
                                                     f"{len(kernel.inputs)} inputs then {len(kernel.outputs)} outputs")
        missing = [c for c in constexprs if c not in launch["constexprs"]]
        extra = [c for c in launch["constexprs"] if c not in constexprs]
        if missing or extra:
            raise CandidateRejected(Stage.SIGNATURE, "constexprs must give exactly the entry's tl.constexpr "
                                                     f"parameters: missing {missing}, not parameters {extra}")
        return Built(source, ())

    def describe(self, payload: dict[str, Any]) -> str:
        c = payload.get("constexprs", {})
        blocks = ",".join(f"{k}={v}" for k, v in sorted(c.items()) if k.startswith("BLOCK"))
        return (f"triton {payload.get('entry', 'kernel')} grid={payload.get('grid')} "
                f"warps={payload.get('num_warps', 4)} stages={payload.get('num_stages', 2)}"
                + (f" {blocks}" if blocks else ""))

    def payload_text(self, payload: dict[str, Any], full: bool) -> str:
        source = payload.get("source", "")
        launch = {k: v for k, v in payload.items() if k != "source"}
        text = f"`triton` launch {launch}"
        if full and len(source) <= MAX_SOURCE_CHARS:
            return text + ":\n```python\n" + source + "\n```"
        return text + f" ({len(source)} characters of source, not shown)"

    def prompt(self, kernel: Kernel | None) -> str:
        where = device_description()
        return "\n".join([
            '{"kind": "triton", "source": "import triton\\nimport triton.language as tl\\n@triton.jit\\ndef kernel(...): ...",',
            '    "entry": "kernel", "grid": [programs, ...], "num_warps": 4, "num_stages": 2, "constexprs": {"BLOCK_M": 64}}',
            "   A Triton kernel replacing the whole function, launched once as entry[grid](in0, .., out0, ..,",
            "   **constexprs, num_warps=, num_stages=): one pointer per argument in order, then one per result,",
            "   each contiguous row-major with the kernel's static shape; sizes and block sizes are tl.constexpr",
            "   parameters given in `constexprs` (all of them, no others); write every output element. Only",
            "   imports of triton, triton.language and math, module constants and @triton.jit functions; no",
            "   file, environment, network or introspection. For f32 use tl.dot(..., input_precision=\"ieee\"):",
            f"   TF32 fails the equivalence check. It runs on {where}.",
        ])


def device_description() -> str:
    """The GPU a Triton kernel runs on, for the prompt (name, SMs, shared memory, warp size)."""
    if device() == "cpu":
        return "the CPU under Triton's interpreter (TRITON_INTERPRET=1): checked for equivalence, never faster"
    import torch

    p = torch.cuda.get_device_properties(0)
    shared = getattr(p, "shared_memory_per_block_optin", 0) // 1024
    return (f"{p.name} (sm_{p.major}{p.minor}, {p.multi_processor_count} SMs, {p.total_memory // 2**30} GiB, "
            f"{shared} KiB shared memory per block, warp {getattr(p, 'warp_size', 32)})")


KIND = TritonKind()
