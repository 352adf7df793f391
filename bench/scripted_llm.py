"""A stand-in LLM for demos and the bench's replay rows: an OpenAI-compatible server on localhost.

No LLM is reachable from our machines, so the `llm` proposer's end-to-end
path (prompt -> HTTP -> answer -> checks -> transcript -> replay) is exercised
against this server. It reads the prompt the way a model would have to (the
loop sizes, the vector width, what was tried) and answers with plausible
tiling, pass-pipeline and flag candidates, including some that fail. It is
NOT a language model: figures from its transcripts measure the machinery
and the checks, not what an LLM would find.

    python bench/scripted_llm.py --port 8765 &
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 MLIRFORGE_MODEL=scripted \\
        mlirforge optimize examples/mlp.py -o out/mlp-llm --proposer llm
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
from llm_server import ScriptedLLM, Step, purpose_of  # noqa: E402


def _loops(user: str) -> list[int] | None:
    m = re.search(r"(\d) loops with sizes \[([\d, ]+)\]", user)
    return [int(v) for v in m.group(2).split(",")] if m else None


def _lanes(user: str) -> int:
    m = re.search(r"\((\d+) fp32 lanes\)", user)
    return int(m.group(1)) if m else 8


def _tried(user: str) -> int:
    m = re.search(r"(\d+) candidate\(s\) evaluated so far", user)
    return int(m.group(1)) if m else 0


def _tilings(loops: list[int], lanes: int, round_no: int) -> list[dict]:
    batch = len(loops) == 4
    m, n, k = loops[-3:]
    out = []
    shapes = [(8, lanes), (16, lanes), (8, 2 * lanes), (4, 2 * lanes), (1, 4 * lanes)]
    for mv, nv in shapes[round_no % len(shapes):] + shapes[:round_no % len(shapes)]:
        if m % mv or n % nv:
            continue
        md, nd = min(m, mv * 8), min(n, nv * 4)
        kv = 16 if k % 16 == 0 else 1
        dist, vec, red = [md, nd, 0], [mv, nv, 0], [0, 0, kv]
        if batch:
            dist, vec, red = [1, *dist], [1, *vec], [0, *red]
        out.append({"kind": "tiling", "distribution": dist, "vector_common_parallel": vec,
                    "vector_reduction": red, "pipeline": "DoubleTilingExpert",
                    "rationale": f"{mv}x{nv} register tile ({lanes} lanes), {md}x{nd} per workgroup"})
    return out


def respond(body: dict) -> Step:
    user = body["messages"][-1]["content"]
    n = 4
    if purpose_of(body) == "module":
        cands = [
            {"kind": "flags", "iree_flags": ["--iree-llvmcpu-enable-ukernels=all"], "rationale": "microkernels"},
            {"kind": "flags", "iree_flags": [], "driver": "local-task", "rationale": "use both cores"},
            {"kind": "flags", "iree_flags": ["--iree-llvmcpu-target-cpu=znver4"], "rationale": "(not whitelisted)"},
        ]
    else:
        round_no = _tried(user) // n
        loops = _loops(user)
        cands = _tilings(loops, _lanes(user), round_no)[:3] if loops else []
        if round_no == 0:
            cands.append({"kind": "pipeline", "pipeline": "mlirforge-generalize-named-ops",
                          "rationale": "generic contraction path"})
        if not cands:
            return Step(content="I do not see a profitable change for this kernel.")
    text = "Here are my proposals.\n```json\n" + json.dumps({"candidates": cands[:n]}, indent=1) + "\n```"
    return Step(content=text, delay_s=0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args(argv)
    server = ScriptedLLM(respond, port=args.port)
    with server:
        print(server.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
