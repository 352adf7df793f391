"""A Triton kernel as an IREE custom dispatch: its PTX embedded in the module, run by IREE's CUDA HAL.

The kernel is compiled to PTX by Triton for a named architecture (no GPU is
needed: Triton's code generator and `ptxas` run on the CPU), in a sandboxed
subprocess (`python -m mlirforge.llm_rewrite.triton_dispatch REQUEST.json`:
the allow-listed environment, no network, files confined to its directory;
`llm_rewrite.sandbox`), since importing the kernel's file runs Python.

`extern_dispatch_module` then writes the kernel as a standalone `@main` whose
body is one `hal.dispatch.extern` of the PTX (an object with its bytes inline,
so the vmfb is self-contained). The ABI that joins the two:
- IREE's CUDA HAL passes a dispatch's bindings as device pointers in binding
  order, then its push constants. Triton's kernel takes its pointer arguments
  and then two more, the global and profile scratch pointers. So the dispatch
  binds the inputs, then each output (tied: passed in and written in place),
  then two 1-byte buffers for the scratch pointers; a kernel that needs global
  or profile scratch memory is refused (`TritonPtx.scratch_bytes`).
- Sizes are constexprs, so there are no push constants.
- One program of the grid is one CUDA block of `num_warps * 32` threads
  (`workgroup_size`); Triton's dynamic shared memory is the export's
  `workgroup_local_memory`.

What this does not do yet: run anywhere but a GPU (the vmfb has only a CUDA
variant), or replace kernels inside a whole model (that needs the model
compiled for CUDA, `docs/gpu.md`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlirforge.llm_rewrite.types import Kernel, TensorSpec

TRITON_TYPES = {"f32": "*fp32", "f16": "*fp16", "bf16": "*bf16", "f64": "*fp64", "i64": "*i64", "i32": "*i32",
                "i16": "*i16", "i8": "*i8", "i1": "*i1"}
"""Triton's pointer type for each MLIR element type of a kernel's tensors."""
COMPILE_TIMEOUT_S = 300.0


class TritonCompileError(Exception):
    """Triton could not compile the kernel (the message is Triton's, or the limit that stopped it)."""


@dataclasses.dataclass(frozen=True)
class TritonPtx:
    """A kernel compiled by Triton: its PTX, entry name, and what a launch must provide."""

    ptx: str
    name: str
    num_warps: int
    shared_bytes: int
    scratch_bytes: int
    """Global plus profile scratch memory the kernel needs; this ABI provides none."""
    arch: str


def compile_to_ptx(kernel: Kernel, launch: dict[str, Any], source: str, arch: str,
                   timeout_s: float = COMPILE_TIMEOUT_S) -> TritonPtx:
    """PTX for `source`'s entry with `launch` (a checked `triton` payload) for `arch` ("sm_80").

    Runs in a sandboxed subprocess; raises TritonCompileError naming what failed.
    """
    from mlirforge.llm_rewrite.sandbox import worker_environment

    major_minor = arch.removeprefix("sm_").rstrip("a")
    if not major_minor.isdigit():
        raise TritonCompileError(f"{arch!r} is not an sm_XX architecture")
    signature = [TRITON_TYPES[s.dtype] for s in (*kernel.inputs, *kernel.outputs)]
    with tempfile.TemporaryDirectory(prefix="mlirforge-triton-") as home:
        (Path(home) / "kernel.py").write_text(source)
        request = {"source": str(Path(home) / "kernel.py"), "home": home, "entry": launch["entry"],
                   "pointers": signature, "constexprs": launch["constexprs"], "num_warps": launch["num_warps"],
                   "num_stages": launch["num_stages"], "capability": int(major_minor)}
        path = Path(home) / "request.json"
        path.write_text(json.dumps(request))
        env = worker_environment(HOME=home, TMPDIR=home, TRITON_CACHE_DIR=str(Path(home) / "cache"))
        env.pop("TRITON_INTERPRET", None)
        try:
            proc = subprocess.run([sys.executable, "-m", "mlirforge.llm_rewrite.triton_dispatch", str(path)],
                                  capture_output=True, text=True, timeout=timeout_s, cwd=home, env=env)
        except subprocess.TimeoutExpired:
            raise TritonCompileError(f"Triton took longer than {timeout_s:g} s to compile the kernel") from None
        out = Path(home) / "out.json"
        if proc.returncode != 0 or not out.exists():
            tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or [f"exit {proc.returncode}"]
            raise TritonCompileError(f"Triton could not compile the kernel: {tail[0][:500]}")
        reply = json.loads(out.read_text())
    return TritonPtx(reply["ptx"], reply["name"], launch["num_warps"], reply["shared"], reply["scratch"], arch)


def _mlir_bytes(data: bytes) -> str:
    return "dense<[" + ", ".join(str(b if b < 128 else b - 256) for b in data) + f"]> : vector<{len(data)}xi8>"


def extern_dispatch_module(kernel: Kernel, compiled: TritonPtx, grid: list[int]) -> str:
    """A module whose public `@main` has the kernel's signature and runs `compiled` as one dispatch.

    Raises ValueError for a kernel this ABI cannot launch (scratch memory, dynamic shapes).
    """
    if compiled.scratch_bytes:
        raise ValueError(f"the kernel needs {compiled.scratch_bytes} bytes of Triton scratch memory, "
                         "which an IREE dispatch does not provide")
    if any(d < 0 for s in (*kernel.inputs, *kernel.outputs) for d in s.shape):
        raise ValueError("dynamic shapes: a Triton kernel here has static sizes")
    gx, gy, gz = (list(grid) + [1, 1])[:3]
    ins = [f"%arg{i}" for i in range(len(kernel.inputs))]
    lines = [f"  func.func @main({', '.join(f'{a}: {s.mlir}' for a, s in zip(ins, kernel.inputs))}) -> "
             f"({', '.join(s.mlir for s in kernel.outputs)}) {{"]
    outs = []
    for j, spec in enumerate(kernel.outputs):
        lines.append(f"    %out{j} = tensor.empty() : {spec.mlir}")
        outs.append(f"%out{j}")
    scratch = TensorSpec((1,), "i8")
    lines.append(f"    %scratch = arith.constant dense<0> : {scratch.mlir}")
    lines.append(f"    %profile = arith.constant dense<0> : {scratch.mlir}")
    operands = [*ins, *outs, "%scratch", "%profile"]
    types = [s.mlir for s in (*kernel.inputs, *kernel.outputs)] + [scratch.mlir, scratch.mlir]
    bindings = (["#hal.pipeline.binding<storage_buffer, ReadOnly>"] * len(ins)
                + ["#hal.pipeline.binding<storage_buffer>"] * len(outs)
                + ["#hal.pipeline.binding<storage_buffer, ReadOnly>"] * 2)  # the scratch pointers, never written
    results = [f"%r{j}" for j in range(len(outs))]
    tied = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    lines += [
        f"    {', '.join(results)} = hal.dispatch.extern \"{compiled.name}\"({', '.join(operands)}) : "
        f"({', '.join(types)}) -> {tied}",
        "      count(%device: !hal.device) -> (index, index, index) {",
        f"        %x = arith.constant {gx} : index",
        f"        %y = arith.constant {gy} : index",
        f"        %z = arith.constant {gz} : index",
        "        hal.return %x, %y, %z : index, index, index",
        "      }",
        f"      layout(#hal.pipeline.layout<bindings = [{', '.join(bindings)}]>)",
        "      objects({",
        "        #hal.executable.target<\"cuda\", \"cuda-nvptx-fb\"> ordinal(0) = "
        f"[#hal.executable.object<{{data = {_mlir_bytes(compiled.ptx.encode())}}}>]",
        f"      }}) <workgroup_size = [{compiled.num_warps * 32} : index, 1 : index, 1 : index], "
        f"workgroup_local_memory = {compiled.shared_bytes}>",
        f"    return {', '.join(results)} : {', '.join(s.mlir for s in kernel.outputs)}",
        "  }",
    ]
    return "module {\n" + "\n".join(lines) + "\n}\n"


def _compile_here(request: dict[str, Any]) -> dict[str, Any]:
    """In the sandboxed subprocess: import the kernel (confined) and compile it with Triton."""
    import importlib.util

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler import compile as triton_compile

    from mlirforge.llm_rewrite import sandbox

    from mlirforge.llm_rewrite.triton_runner import programs_triton_runs

    sandbox.confine(request["home"], programs_triton_runs())  # Triton runs ptxas
    spec = importlib.util.spec_from_file_location("mlirforge_triton_candidate", request["source"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, request["entry"])
    names = list(fn.arg_names)
    pointers = iter(request["pointers"])
    signature = {n: ("constexpr" if n in request["constexprs"] else next(pointers)) for n in names}
    src = ASTSource(fn, signature, constexprs=dict(request["constexprs"]))
    target = GPUTarget("cuda", request["capability"], 32)
    compiled = triton_compile(src, target=target,
                              options={"num_warps": request["num_warps"], "num_stages": request["num_stages"]})
    if sandbox.violations:
        raise PermissionError(f"stopped by the sandbox: the kernel tried to {sandbox.violations[0]}")
    meta = compiled.metadata
    scratch = int(getattr(meta, "global_scratch_size", 0) or 0) + int(getattr(meta, "profile_scratch_size", 0) or 0)
    return {"ptx": compiled.asm["ptx"], "name": meta.name, "shared": int(meta.shared), "scratch": scratch}


def main() -> int:
    from mlirforge.llm_rewrite import sandbox

    sandbox.isolate_network()
    request = json.loads(Path(sys.argv[1]).read_text())
    reply = _compile_here(request)
    Path(request["home"], "out.json").write_text(json.dumps(reply))
    return 0


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    sys.exit(main())
