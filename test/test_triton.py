"""The `triton` candidate kind on a CPU: Triton's interpreter (TRITON_INTERPRET=1) runs the kernels.

What is checked here needs no GPU: a correct kernel is accepted as equivalent
(and not timed: the interpreter is no measure of speed), a wrong one, one that
leaves outputs unwritten and one that writes its inputs are rejected, one that
hangs is killed, the screen refuses source that is not a Triton kernel, and
the sandbox stops a kernel that gets past the screen from reading files,
reading the environment's secrets or reaching the network. The GPU test runs
only where torch sees a CUDA device.
"""

from __future__ import annotations

import socket
import textwrap
import threading

import pytest

pytest.importorskip("triton", reason="triton is not installed (pip install -e '.[gpu]')")

from mlirforge.llm_rewrite import candidates, sandbox  # noqa: E402
from mlirforge.llm_rewrite.candidates import CandidateRejected  # noqa: E402
from mlirforge.llm_rewrite.evaluate import EvalSettings, KernelEvaluator, new_workdir  # noqa: E402
from mlirforge.llm_rewrite.kernels import kernel_from_function_text  # noqa: E402
from mlirforge.llm_rewrite.proposers import triton_templates  # noqa: E402
from mlirforge.llm_rewrite.proposers.heuristic import HeuristicProposer  # noqa: E402
from mlirforge.llm_rewrite.types import Candidate, Stage  # noqa: E402
from mlirforge.llm_rewrite.worker_protocol import TritonSpec, WorkerRequest, new_seed, run_worker  # noqa: E402

MATMUL = """
func.func @mm(%a: tensor<16x24xf32>, %b: tensor<24x40xf32>) -> tensor<16x40xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16x40xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<16x40xf32>) -> tensor<16x40xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<16x24xf32>, tensor<24x40xf32>) outs(%acc : tensor<16x40xf32>) -> tensor<16x40xf32>
  return %mm : tensor<16x40xf32>
}
"""

ADD = """
#id = affine_map<(i, j) -> (i, j)>
func.func @add(%x: tensor<8x100xf32>, %y: tensor<8x100xf32>) -> tensor<8x100xf32> {
  %e = tensor.empty() : tensor<8x100xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %y : tensor<8x100xf32>, tensor<8x100xf32>) outs(%e : tensor<8x100xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<8x100xf32>
  return %r : tensor<8x100xf32>
}
"""

SETTINGS = EvalSettings(distributions=("normal", "edge"), timeout_s=90, rounds=5, inner=1, warmup=1)


def add_source(body: str, header: str = "") -> str:
    """An elementwise kernel over 800 elements with `body` computing `out` from x and y."""
    return textwrap.dedent(header) + "import triton\nimport triton.language as tl\n\n\n@triton.jit\n" + \
        "def kernel(x_ptr, y_ptr, out_ptr, SIZE: tl.constexpr, BLOCK: tl.constexpr):\n" + \
        "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)\n    inside = offs < SIZE\n" + \
        "    x = tl.load(x_ptr + offs, mask=inside)\n    y = tl.load(y_ptr + offs, mask=inside)\n" + \
        textwrap.indent(textwrap.dedent(body), "    ")


def add_payload(body: str = "tl.store(out_ptr + offs, x + y, mask=inside)\n", grid: int = 4, header: str = "") -> dict:
    return {"source": add_source(body, header), "entry": "kernel", "grid": [grid], "num_warps": 4, "num_stages": 1,
            "constexprs": {"SIZE": 800, "BLOCK": 256}}


@pytest.fixture
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.fixture(scope="module")
def add_kernel():
    return kernel_from_function_text(ADD)


@pytest.fixture(scope="module")
def matmul_kernel():
    return kernel_from_function_text(MATMUL)


def evaluate(kernel, payload, settings=SETTINGS):
    return KernelEvaluator(kernel, settings, new_workdir()).evaluate(Candidate("triton", payload, kernel.hash))


def test_the_kind_is_offered_only_where_a_triton_kernel_can_run(monkeypatch, matmul_kernel):
    import torch

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if not torch.cuda.is_available():
        assert "triton" not in candidates.names("kernel")
        assert not [c for c in HeuristicProposer().propose(matmul_kernel, [], 100) if c.kind == "triton"]
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert "triton" in candidates.names("kernel")
    proposed = [c for c in HeuristicProposer().propose(matmul_kernel, [], 100) if c.kind == "triton"]
    assert proposed and all(c.payload["constexprs"]["K"] == 24 for c in proposed)


def test_the_llm_is_told_of_the_kind_and_its_answers_are_parsed(interpreter, add_kernel):
    import json

    from mlirforge.llm_rewrite.answers import parse_answer
    from mlirforge.llm_rewrite.prompts.build import describe_kinds

    text = describe_kinds(add_kernel)
    assert '"kind": "triton"' in text and "Triton's interpreter" in text and 'input_precision="ieee"' in text
    payload = add_payload()
    del payload["num_stages"]  # a default
    answer = json.dumps({"candidates": [{"kind": "triton", **payload, "rationale": "one pass"}]})
    parsed = parse_answer(answer, candidates.names("kernel"), add_kernel.hash, 4, {"proposer": "llm"})
    assert [c.kind for c in parsed.candidates] == ["triton"], parsed.problems
    assert parsed.candidates[0].payload["num_stages"] == 2
    bad = json.dumps({"candidates": [{"kind": "triton", **payload, "grid": "all"}]})
    assert "grid" in parse_answer(bad, candidates.names("kernel"), add_kernel.hash, 4, {}).problems[0]


@pytest.mark.parametrize("which", [0, -1])  # 64x64 blocks (masked edges) and 32x32 blocks
def test_the_heuristic_matmul_template_is_equivalent_under_the_interpreter(interpreter, matmul_kernel, which):
    payload, _ = triton_templates.matmul_payloads(matmul_kernel)[which]
    verdict = evaluate(matmul_kernel, payload)
    assert verdict.equivalent is True, verdict.reason
    assert not verdict.accepted and "not timed" in verdict.reason
    assert verdict.equivalence["runtime"] == "triton on cpu"


def test_the_elementwise_template_is_equivalent(interpreter, add_kernel):
    payloads = triton_templates.elementwise_payloads(add_kernel)
    assert payloads and "x0 + x1" in payloads[0][0]["source"]
    verdict = evaluate(add_kernel, payloads[0][0])
    assert verdict.equivalent is True, verdict.reason


def test_templates_do_not_apply_to_kernels_they_do_not_compute(add_kernel, matmul_kernel):
    assert triton_templates.matmul_payloads(add_kernel) == []
    assert triton_templates.elementwise_payloads(matmul_kernel) == []
    transposed = ADD.replace("[#id, #id, #id]", "[#id, affine_map<(i, j) -> (j, i)>, #id]").replace(
        "%y: tensor<8x100xf32>", "%y: tensor<100x8xf32>").replace("%x, %y : tensor<8x100xf32>, tensor<8x100xf32>",
                                                                  "%x, %y : tensor<8x100xf32>, tensor<100x8xf32>")
    assert triton_templates.elementwise_payloads(kernel_from_function_text(transposed)) == []
    maximum = ADD.replace("arith.addf", "arith.maximumf")  # NaN and signed zeros: no one Triton op matches
    assert triton_templates.elementwise_payloads(kernel_from_function_text(maximum)) == []
    bias = MATMUL.replace("arith.constant 0.0", "arith.constant 1.0")
    assert triton_templates.matmul_payloads(kernel_from_function_text(bias)) == []


@pytest.mark.parametrize("body, why", [
    ("tl.store(out_ptr + offs, x - y, mask=inside)\n", "values differ|max error|not equivalent"),
    ("tl.store(out_ptr + offs, x + y, mask=inside & (offs < 799))\n", "not equivalent|nondeterministic"),
    ("tl.store(x_ptr + offs, y, mask=inside)\ntl.store(out_ptr + offs, x + y, mask=inside)\n", "modified its inputs"),
])
def test_wrong_kernels_are_rejected(interpreter, add_kernel, body, why):
    verdict = evaluate(add_kernel, add_payload(body))
    assert verdict.equivalent is False and not verdict.accepted
    import re

    assert re.search(why, verdict.reason), verdict.reason


def test_a_grid_too_small_leaves_outputs_unwritten_and_is_rejected(interpreter, add_kernel):
    verdict = evaluate(add_kernel, add_payload(grid=3))  # 768 of 800 elements
    assert verdict.equivalent is False, verdict.reason


def test_a_hanging_kernel_is_killed(interpreter, add_kernel):
    import dataclasses

    body = "n = 0\nwhile n >= 0:\n    n = n + 1\ntl.store(out_ptr + offs, x + y, mask=inside)\n"
    verdict = evaluate(add_kernel, add_payload(body), dataclasses.replace(SETTINGS, timeout_s=15))
    assert not verdict.accepted and "timed out after 15 s" in verdict.reason
    assert "running the candidate" in verdict.reason


@pytest.mark.parametrize("header, body, why", [
    ("import os\n", "tl.store(out_ptr + offs, x + y, mask=inside)\n", "import os"),
    ("", "f = open('/etc/hostname')\ntl.store(out_ptr + offs, x + y, mask=inside)\n", "'open'"),
    ("", "k = x.__class__\ntl.store(out_ptr + offs, x + y, mask=inside)\n", "'__class__'"),
    ("", "print(x)\ntl.store(out_ptr + offs, x + y, mask=inside)\n", "'print'"),
    ("SECRET = [1]\n", "tl.store(out_ptr + offs, x + y, mask=inside)\n", "List at module level|Assign at module"),
])
def test_the_screen_admits_only_triton_kernels(interpreter, add_kernel, header, body, why):
    import re

    verdict = evaluate(add_kernel, add_payload(body, header=header))
    assert verdict.stage == Stage.PARSE and not verdict.built
    assert re.search(why, verdict.reason), verdict.reason


def test_the_launch_must_match_the_kernel(interpreter, add_kernel):
    kind = candidates.get("triton")
    bad_pointers = add_payload()
    bad_pointers["source"] = bad_pointers["source"].replace("x_ptr, y_ptr, out_ptr", "x_ptr, out_ptr")
    with pytest.raises(CandidateRejected, match="takes 2 pointer parameters.*needs 3"):
        kind.build(add_kernel, bad_pointers, SETTINGS)
    missing = add_payload()
    del missing["constexprs"]["BLOCK"]
    with pytest.raises(CandidateRejected, match=r"missing \['BLOCK'\]"):
        kind.build(add_kernel, missing, SETTINGS)
    for field, value, why in (("grid", [0], "grid axis 0 is 0"), ("grid", [1, 70000], "axis 1"),
                              ("num_warps", 3, "num_warps"), ("num_stages", 0, "num_stages"),
                              ("constexprs", {"__x": 1}, "plain identifier")):
        with pytest.raises(ValueError, match=why):
            kind.check_payload({**add_payload(), field: value})


def _worker_reply(kernel, source: str, tmp_path, monkeypatch) -> dict:
    """The worker's reply for `source`, sent straight to it: past the screen, so only the sandbox stands."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    evaluator = KernelEvaluator(kernel, SETTINGS, tmp_path)
    home = tmp_path / "candidate"
    home.mkdir()
    (home / "kernel.py").write_text(source)
    spec = TritonSpec(str(home / "kernel.py"), str(home), "kernel", (4,), tuple(o.to_json() for o in kernel.outputs),
                      {"SIZE": 800, "BLOCK": 256}, 4, 1, (), "cpu")
    request = WorkerRequest(evaluator.reference(), spec, tuple(s.to_json() for s in kernel.inputs), new_seed(),
                            distributions=("normal",), timing=None, memory_mb=8192)
    return run_worker(request, 90, tmp_path)


def test_the_sandbox_stops_a_file_read_outside_the_work_directory(add_kernel, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("the answer")
    reply = _worker_reply(add_kernel, add_source(f"""
        data = open({str(secret)!r}).read()
        tl.store(out_ptr + offs, x + y, mask=inside)
        """), tmp_path, monkeypatch)
    assert "sandbox" in reply.get("error", "") and f"read {secret}" in reply["error"], reply


def test_a_caught_refusal_still_fails_the_candidate(add_kernel, tmp_path, monkeypatch):
    reply = _worker_reply(add_kernel, add_source("tl.store(out_ptr + offs, x + y, mask=inside)\n", header="""
        try:
            LEAK = open("/etc/hostname").read()
        except PermissionError:
            LEAK = ""
        """), tmp_path, monkeypatch)
    assert "stopped by the sandbox" in reply.get("error", ""), reply


def test_the_worker_sees_no_secret_from_the_environment(add_kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    reply = _worker_reply(add_kernel, add_source("tl.store(out_ptr + offs, x + y, mask=inside)\n", header="""
        import os
        if "OPENAI_API_KEY" in os.environ or "sk-should-not-leak" in str(dict(os.environ)):
            raise RuntimeError("the candidate saw the API key")
        """), tmp_path, monkeypatch)
    assert reply.get("equivalent") is True, reply
    assert "OPENAI_API_KEY" not in sandbox.worker_environment({"OPENAI_API_KEY": "x", "PATH": "/bin"})


def test_the_sandbox_keeps_the_network_out_of_reach(add_kernel, tmp_path, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(30)
    accepted = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    port = server.getsockname()[1]
    reply = _worker_reply(add_kernel, add_source("tl.store(out_ptr + offs, x + y, mask=inside)\n", header=f"""
        import socket
        socket.create_connection(("127.0.0.1", {port}), timeout=5).sendall(b"leak")
        """), tmp_path, monkeypatch)
    server.close()
    assert "error" in reply and ("sandbox" in reply["error"] or "unreachable" in reply["error"]), reply
    assert accepted in ([], [None])


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


def test_a_verified_triton_kernel_is_not_composed_into_the_iree_artifact(tmp_path):
    """Until its PTX can be embedded as an IREE custom dispatch, composition says why it drops one."""
    from mlirforge.llm_rewrite.compose import compose
    from mlirforge.llm_rewrite.evaluate import ModelEvaluator
    from mlirforge.llm_rewrite.kernels import extract_kernels
    from mlirforge.llm_rewrite.types import Verdict

    outlined, kernels = extract_kernels(MATMUL.replace("@mm", "@main"))
    cand = Candidate("triton", triton_templates.matmul_payloads(kernels[0])[0][0], kernels[0].hash)
    verdict = Verdict(cand.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True,
                      timing={"speedup": 2.0, "ci_low": 1.8, "ci_high": 2.2})
    model = ModelEvaluator(MATMUL, None, kernels[0].inputs, 1, SETTINGS, tmp_path)
    result = compose(model, outlined, [(kernels[0], cand, verdict)], list(SETTINGS.base_flags), SETTINGS.driver,
                     SETTINGS)
    assert result.kept == [] and result.verdict is None
    assert [why for _, why in result.dropped] == ["a triton kernel cannot be placed in the IREE artifact yet"]


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_the_matmul_template_on_the_gpu_is_checked_and_timed(matmul_kernel, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    payload, _ = triton_templates.matmul_payloads(matmul_kernel)[0]
    verdict = evaluate(matmul_kernel, payload)
    assert verdict.equivalent is True, verdict.reason
    assert verdict.speedup is not None and verdict.equivalence["runtime"] == "triton on cuda"


# -- a Triton kernel as an IREE custom dispatch (compiled for a named GPU, no GPU needed) --------------------


@pytest.fixture(scope="module")
def matmul_ptx(matmul_kernel):
    from mlirforge.llm_rewrite.candidates.triton import KIND
    from mlirforge.llm_rewrite.triton_dispatch import compile_to_ptx

    payload = KIND.check_payload(triton_templates.matmul_payloads(matmul_kernel)[0][0])
    return payload, compile_to_ptx(matmul_kernel, payload, payload["source"], "sm_80")


def test_triton_compiles_a_kernel_to_ptx_without_a_gpu(matmul_ptx):
    _, ptx = matmul_ptx
    assert ".target sm_80" in ptx.ptx and f".entry {ptx.name}(" in ptx.ptx
    assert ptx.name.startswith("kernel") and ptx.scratch_bytes == 0 and ptx.num_warps == 4


def test_the_ptx_is_embedded_in_a_vmfb_as_an_iree_custom_dispatch(matmul_kernel, matmul_ptx):
    from mlirforge.llm_rewrite.triton_dispatch import extern_dispatch_module
    from mlirforge.lowering.iree_compile import compile_mlir
    from mlirforge.lowering.target import cuda_target

    payload, ptx = matmul_ptx
    module = extern_dispatch_module(matmul_kernel, ptx, payload["grid"])
    assert f'hal.dispatch.extern "{ptx.name}"' in module and "workgroup_size = [128 : index" in module
    vmfb = compile_mlir(module, "auto", [], None, target=cuda_target("sm_80")).vmfb
    assert f".entry {ptx.name}(".encode() in vmfb and b"cuda-nvptx-fb" in vmfb


def test_compiling_a_kernel_to_ptx_runs_confined(matmul_kernel, matmul_ptx, tmp_path):
    from mlirforge.llm_rewrite.triton_dispatch import TritonCompileError, compile_to_ptx

    payload, _ = matmul_ptx
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    source = f"LEAK = open({str(secret)!r}).read()\n" + payload["source"]
    with pytest.raises(TritonCompileError, match="sandbox"):
        compile_to_ptx(matmul_kernel, payload, source, "sm_80")


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_the_embedded_triton_kernel_runs_on_the_cuda_driver(matmul_kernel, matmul_ptx):
    import numpy as np

    import iree.runtime as rt
    import torch

    from mlirforge.llm_rewrite.triton_dispatch import compile_to_ptx, extern_dispatch_module
    from mlirforge.lowering.iree_compile import compile_mlir
    from mlirforge.lowering.target import parse_target

    payload, _ = matmul_ptx
    target = parse_target("cuda")
    ptx = compile_to_ptx(matmul_kernel, payload, payload["source"], target.arch)
    vmfb = compile_mlir(extern_dispatch_module(matmul_kernel, ptx, payload["grid"]), "auto", [], None,
                        target=target).vmfb
    a, b = np.random.rand(16, 24).astype(np.float32), np.random.rand(24, 40).astype(np.float32)
    config = rt.Config("cuda")
    ctx = rt.SystemContext(config=config)
    ctx.add_vm_module(rt.VmModule.copy_buffer(config.vm_instance, vmfb))
    out = ctx.modules.module["main"](a, b).to_host()
    assert torch.allclose(torch.from_numpy(out), torch.from_numpy(a @ b), rtol=1e-5, atol=1e-5)
