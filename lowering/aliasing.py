"""Which inputs a compiled module may write into, read off IREE's stream-phase IR.

IREE imports a caller's buffer (`stream.tensor.import`) without taking
ownership, yet its dispatch formation can tie an in-place op's result to that
import: `iree_linalg_ext.sort`, `scatter` and `scan`, a `linalg` op whose
`outs` is a function argument, `tensor.insert_slice` into an argument. The
dispatch then binds the caller's memory `rw` and the module silently sorts or
scatters into the user's tensor (IREE issue #16168; seen with topk, index_put,
scatter_reduce and index_add under the torch input form). Clones that we put
into the input IR are elided again by IREE, so the runtime has to pass a copy
instead; this module says which inputs need one.

`written_inputs(stream_ir)` follows each imported argument through the ops
that only rename or view it (`stream.resource.subview`, `stream.timepoint.await`,
the captures of `stream.cmd.execute`) and flags it when it is bound `rw`/`wo`
by a dispatch, is the target of `stream.cmd.copy`/`fill`, is exported as a
result (the result would alias the caller's tensor) or reaches any op this
module does not understand. Unknown means "may write": the price of a false
alarm is one copy per call, the price of a miss is corrupted user data.
"""

from __future__ import annotations

import re

# A public function of the stream phase: `util.func public @name(%arg0: type, ...)`.
_FUNC = re.compile(r"^(\s*)util\.func public @(?P<name>[\w$.-]+)\((?P<args>[^)]*)\)")
_ARG = re.compile(r"%(?P<name>[\w$.-]+): (?P<type>[^,]+)")
_IMPORT = re.compile(r"^\s*(?P<res>%[\w$.-]+) = stream\.tensor\.import\b.*?(?P<src>%[\w$.-]+) :")
_SUBVIEW = re.compile(r"^\s*(?P<res>%[\w$.-]+) = stream\.resource\.subview (?P<src>%[\w$.-]+)\[")
_AWAIT = re.compile(r"^\s*(?P<res>[^=]+) = stream\.timepoint\.await\b[^=]*=> (?P<srcs>[^:]+):")
_CAPTURE = re.compile(r"(?P<outer>%[\w$.-]+) as (?P<inner>%[\w$.-]+):")
_BINDING = re.compile(r"^\s*(?P<access>ro|rw|wo) (?P<name>%[\w$.-]+)\[")
_COPY = re.compile(r"^\s*stream\.cmd\.copy (?P<src>%[\w$.-]+)\[[^\]]*\], (?P<dst>%[\w$.-]+)\[")
_FILL = re.compile(r"^\s*stream\.cmd\.fill [^,]+, (?P<dst>%[\w$.-]+)\[")
_VALUE = re.compile(r"%[\w$.-]+")
# Ops that mention a resource without writing it.
_READ_ONLY = ("stream.cmd.dispatch", "stream.cmd.flush", "stream.cmd.invalidate", "stream.resource.size",
              "stream.cmd.execute", "stream.timepoint.", "hal.buffer_view.assert")


def written_inputs(stream_ir: str) -> dict[str, tuple[int, ...]]:
    """For each public function, the argument positions its body may write or alias in a result.

    `stream_ir` is the text of IREE's stream phase (`--compile-to=stream`, or
    the `*.stream.mlir` file of `--dump-compilation-phases-to`). Keys are the
    function names without IREE's `$async` suffix; positions count only the
    `!hal.buffer_view` arguments (the tensors the caller passes), in order.
    A function whose body cannot be followed has every input flagged.
    """
    found: dict[str, tuple[int, ...]] = {}
    lines = stream_ir.splitlines()
    i = 0
    while i < len(lines):
        match = _FUNC.match(lines[i])
        if not match or lines[i].rstrip().endswith("}"):
            i += 1
            continue
        indent = match.group(1)
        end = i + 1
        while end < len(lines) and lines[end] != f"{indent}}}":
            end += 1
        name = match["name"].removesuffix("$async")
        inputs = [m["name"] for m in _ARG.finditer(match["args"]) if m["type"].strip() == "!hal.buffer_view"]
        flagged = _written(lines[i + 1 : end], inputs)
        # The synchronous wrapper only forwards to `$async`; the `$async` body is the one that decides.
        if name not in found or match["name"].endswith("$async"):
            found[name] = flagged
        i = end + 1
    return found


def _written(body: list[str], inputs: list[str]) -> tuple[int, ...]:
    origin: dict[str, set[int]] = {f"%{name}": {k} for k, name in enumerate(inputs)}
    written: set[int] = set()

    def sources(names) -> set[int]:
        out: set[int] = set()
        for n in names:
            out |= origin.get(n, set())
        return out

    for line in body:
        if m := _IMPORT.match(line):
            origin[m["res"]] = sources([m["src"]])
            continue
        if m := _SUBVIEW.match(line):
            if m["src"] in origin:
                origin[m["res"]] = origin[m["src"]]
            continue
        if m := _AWAIT.match(line):
            results = [r.strip() for r in m["res"].split(",")]
            operands = _VALUE.findall(m["srcs"])
            for r, s in zip(results, operands):
                if s in origin:
                    origin[r] = origin[s]
            continue
        mentioned = [v for v in _VALUE.findall(line) if v in origin]
        if not mentioned:
            continue
        stripped = line.strip()
        if stripped.startswith("stream.cmd.execute") or "stream.cmd.execute" in line:
            for cap in _CAPTURE.finditer(line):
                if cap["outer"] in origin:
                    origin[cap["inner"]] = origin[cap["outer"]]
            continue
        if m := _BINDING.match(line):
            if m["access"] != "ro":
                written |= sources([m["name"]])
            continue
        if m := _COPY.match(line):
            written |= sources([m["dst"]])
            continue
        if m := _FILL.match(line):
            written |= sources([m["dst"]])
            continue
        if stripped.startswith(_READ_ONLY) or " = stream.resource.size" in line:
            continue
        # Exported (a result aliasing the caller's tensor) or an op we do not follow.
        written |= sources(mentioned)
    return tuple(sorted(written))
