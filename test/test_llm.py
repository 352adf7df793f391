"""The LLM proposer, end to end against a local scripted OpenAI-compatible server.

Nothing here reaches the internet: `llm_server.ScriptedLLM` listens on
127.0.0.1 and answers with scripted steps (good kernels, wrong ones, prose,
malformed JSON, 429/500, hangs).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import mlirforge
from llm_server import Queues, ScriptedLLM, Step, kernel_mlir_of
from mlirforge.config import CompileConfig
from mlirforge.llm_rewrite.answers import parse_answer
from mlirforge.llm_rewrite import llm_client
from mlirforge.llm_rewrite.llm_client import Budget, BudgetSpent, LLMClient, LLMError, LLMSettings
from mlirforge.llm_rewrite.population import select
from mlirforge.llm_rewrite.prompts import PromptError, render_text
from mlirforge.llm_rewrite.prompts.build import describe_target, kernel_messages, module_messages
from mlirforge.llm_rewrite.transcript import read_transcript, scrub
from mlirforge.llm_rewrite.types import Candidate, Kernel, TensorSpec, Verdict
from mlirforge.lowering.errors import UserError
from mlirforge.lowering.target import host_cpu
from mlirforge.numerics import check_against_eager

SECRET = "sk-test-0123456789abcdefSECRET"


# -- answers -----------------------------------------------------------------


def _parse(text, kinds=("kernel", "tiling", "pipeline"), n=4):
    return parse_answer(text, kinds, "k" * 16, n, {"proposer": "llm", "model": "m"})


def test_answers_are_found_in_prose_fences_lists_and_single_objects():
    fenced = 'Sure! Here is my idea:\n```json\n{"candidates": [{"kind": "pipeline", "pipeline": "p"}]}\n```\nGood luck.'
    assert [c.payload for c in _parse(fenced).candidates] == [{"pipeline": "p"}]
    prose = 'I think {"kind": "tiling", "distribution": [8, 16, 0], "rationale": "fits L2"} is best.'
    (cand,) = _parse(prose).candidates
    assert cand.payload["distribution"] == [8, 16, 0] and cand.payload["pipeline"] == "DoubleTilingExpert"
    assert cand.rationale == "fits L2" and cand.proposer == "llm" and cand.kernel_hash == "k" * 16
    bare = '[{"kind": "pipeline", "pipeline": "a"}, {"kind": "pipeline", "pipeline": "b"}]'
    assert len(_parse(bare).candidates) == 2
    nested = '{"candidates": [{"kind": "kernel", "payload": {"mlir": "func.func @main() { return }"}}]}'
    assert _parse(nested).candidates[0].payload == {"mlir": "func.func @main() { return }"}


@pytest.mark.parametrize("text, problem", [
    ("I would tile the matmul by 8x16 and vectorise the inner loop.", "no JSON"),
    ('{"candidates": [{"kind": "tiling", "distribution": [8, 16', "broken JSON"),
    ("", "empty answer"),
    ("x" * 500_000, "over the"),
    ('{"kind": "triton", "src": "..."}', "kind 'triton' is not one of"),
    ('{"kind": "flags", "iree_flags": []}', "kind 'flags' is not one of"),
    ('{"kind": "pipeline", "pipeline": "p", "shell": "rm -rf /"}', "unknown field(s) shell"),
    ('{"kind": "tiling", "distribution": ["8", 16, 0]}', "list of integers"),
    ('{"kind": "kernel", "mlir": 42}', "needs 'mlir'"),
])
def test_unusable_answers_become_reasons(text, problem):
    parsed = _parse(text)
    assert parsed.candidates == []
    assert any(problem in p for p in parsed.problems), parsed.problems


def test_at_most_n_candidates_are_taken():
    text = json.dumps({"candidates": [{"kind": "pipeline", "pipeline": f"p{i}"} for i in range(6)]})
    parsed = _parse(text, n=4)
    assert len(parsed.candidates) == 4 and sum("more than the 4" in p for p in parsed.problems) == 2


# -- prompts -----------------------------------------------------------------


def test_templates_render_strictly():
    assert render_text("a {{x}} b {{y}}", {"x": 1, "y": "{{x}}"}) == "a 1 b {{x}}"
    with pytest.raises(PromptError, match="no value for placeholder"):
        render_text("a {{x}} {{y}}", {"x": 1})
    with pytest.raises(PromptError, match="have no placeholder"):
        render_text("a {{x}}", {"x": 1, "z": 2})


def _kernel() -> Kernel:
    module = (Path(__file__).parent / "data" / "kernel_slow_matmul.mlir").read_text()
    return Kernel("0123456789abcdef", "mm", "linalg.matmul", module, [TensorSpec((128, 64), "f32"),
                  TensorSpec((64, 512), "f32")], [TensorSpec((128, 512), "f32")], 64, calls=2,
                  baseline_us=41.5, weight_inputs=[1])


def test_the_prompt_holds_the_kernel_target_and_history_but_never_the_checks_inputs():
    kernel = _kernel()
    good = Candidate("tiling", {"distribution": [8, 64, 0], "vector_common_parallel": [8, 16, 0],
                                "vector_reduction": [0, 0, 1], "pipeline": "DoubleTilingExpert"}, kernel.hash)
    wrong = Candidate("kernel", {"mlir": "func.func @main() { return }"}, kernel.hash)
    v_good = Verdict(good.id, stage="done", built=True, equivalent=True, accepted=True,
                     equivalence={"seeds": 918273645, "seed": 918273645},
                     timing={"speedup": 1.31, "ci_low": 1.2, "ci_high": 1.4})
    v_wrong = Verdict(wrong.id, stage="numerics", built=True, equivalent=False,
                      equivalence={"distribution": "edge", "max_error": 1e30, "tolerance": 1e-5, "seed": 918273645})
    messages = kernel_messages(kernel, host_cpu(), select([(good, v_good), (wrong, v_wrong)]), 2,
                               ["broken JSON: expected ..."], 4, "mlirforge-generalize-named-ops  summary")
    user = messages[-1]["content"]
    assert kernel.module.strip() in user
    assert "(tensor<128x64xf32>, tensor<64x512xf32>) -> (tensor<128x512xf32>)" in user
    assert f"{host_cpu().vector_bits} bits" in user and "41.5 us" in user and "#1 tensor<64x512xf32>" in user
    assert "3 loops with sizes [128, 512, 64]" in user and "mlirforge-generalize-named-ops" in user
    assert good.id in user and "speedup 1.310x" in user
    assert "wrong results" in user and "edge" in user and "broken JSON" in user
    assert "918273645" not in json.dumps(messages)  # the check's seeds never reach the model
    module = module_messages([kernel], host_cpu(), [], [], 3, ["--iree-opt-data-tiling"], "local-sync",
                             ("local-sync", "local-task"))[-1]["content"]
    assert "--iree-llvmcpu-enable-ukernels=<none|all|mmt4d|default>" in module and "local-task" in module


def test_the_prompt_says_where_the_kernel_runs_and_the_module_round_ranks_by_measured_time():
    from dataclasses import replace

    from mlirforge.llm_rewrite.in_model import KernelInModel, ModelProfile
    from mlirforge.lowering.target import CpuTarget

    kernel = _kernel()
    cold = replace(kernel, hash="c" * 16, name="kernel_cold", baseline_us=400.0)  # slower alone, cooler inside
    profile = ModelProfile({kernel.hash: KernelInModel(180.0, ("d3", "d4"), ("f3bdf75d1111",)),
                            cold.hash: KernelInModel(20.0, ("d9",), ())}, 400.0)
    user = kernel_messages(kernel, host_cpu(), select([]), 0, [], 4, "", (["--iree-opt-data-tiling"], "local-task"),
                           profile.describe(kernel.hash))[-1]["content"]
    assert "`iree-compile --iree-opt-data-tiling`, runtime driver `local-task`" in user
    assert "180.0 us per model call, 45% of the model's 400 us" in user and "f3bdf75d1111" in user
    assert "kept only if the whole model gets faster" in user and "multiple of the vector size" in user
    avx512 = CpuTarget("x86_64", "test", ("avx2", "avx512f"), 2, None, None, None)
    avx2 = CpuTarget("x86_64", "test", ("avx2",), 2, None, None, None)
    assert "32 zmm registers" in describe_target(avx512) and "16 ymm registers" in describe_target(avx2)
    module = module_messages([cold, kernel], host_cpu(), [], [], 3, [], "local-sync", ("local-sync",),
                             profile)[-1]["content"]
    hot_line, cold_line = f"- {kernel.name}:", f"- {cold.name}:"
    assert module.index(hot_line) < module.index(cold_line)  # 45% of the model before 5%
    unprofiled = module_messages([kernel, cold], host_cpu(), [], [], 3, [], "local-sync", ("local-sync",))
    assert unprofiled[-1]["content"].index(cold_line) < unprofiled[-1]["content"].index(hot_line)


def test_the_population_keeps_the_best_and_one_failure_of_each_kind():
    def verdict(i, **kw):
        return Verdict(f"c{i}", **kw)

    hist = [
        (Candidate("pipeline", {"pipeline": "a"}, "k"), verdict(0, stage="parse", reason="unknown pass")),
        (Candidate("pipeline", {"pipeline": "b"}, "k"), verdict(1, stage="parse", reason="unknown pass")),
        (Candidate("pipeline", {"pipeline": "c"}, "k"), verdict(2, stage="done", built=True, accepted=True,
                                                            timing={"speedup": 1.2, "ci_low": 1.1})),
        (Candidate("pipeline", {"pipeline": "d"}, "k"), verdict(3, stage="done", built=True, accepted=True,
                                                            timing={"speedup": 1.5, "ci_low": 1.4})),
        (Candidate("pipeline", {"pipeline": "e"}, "k"), verdict(4, stage="numerics", built=True, equivalent=False)),
    ]
    pop = select(hist)
    assert [c.payload["pipeline"] for c, _ in pop.elite] == ["d", "c"] and pop.parent.payload["pipeline"] == "d"
    assert [c.payload["pipeline"] for c, _ in pop.failures] == ["e", "b"]


# -- client --------------------------------------------------------------------


def _client(server, **kw) -> LLMClient:
    settings = dict(base_url=server.base_url, model="scripted-model", api_key=SECRET, timeout_s=2.0,
                    max_retries=3, backoff_s=0.2)
    settings.update(kw)
    return LLMClient(LLMSettings(**settings))


def test_a_closed_proposer_never_holds_the_interpreter_at_exit():
    # A request made ahead is still in flight (the server answers after 60 s) when the search stops.
    with ScriptedLLM(lambda body: Step(delay_s=60, content="late")) as server:
        script = (
            "import sys, time\n"
            "from mlirforge.llm_rewrite.llm_client import LLMClient, LLMSettings, LLMError\n"
            "from mlirforge.llm_rewrite.proposers.llm import DaemonExecutor\n"
            f"client = LLMClient(LLMSettings(base_url={server.base_url!r}, model='m', timeout_s=120, max_retries=0))\n"
            "DaemonExecutor().submit(client.complete, [{'role': 'user', 'content': 'hi'}])\n"
            "time.sleep(0.5)\n"
            "client.close()\n"
            "try:\n"
            "    client.complete([{'role': 'user', 'content': 'again'}])\n"
            "except LLMError as exc:\n"
            "    print('refused:', exc)\n"
        )
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr
    assert "refused: the LLM client was closed" in proc.stdout
    assert time.monotonic() - start < 30, "the interpreter waited for the request in flight"


def test_client_retries_429_after_retry_after_and_5xx_and_timeouts():
    steps = [Step(status=429, headers={"Retry-After": "1"}), Step(status=500), Step(delay_s=4, content="late"),
             Step(content="finally")]
    with ScriptedLLM(lambda body: steps.pop(0)) as server:
        completion = _client(server).complete([{"role": "user", "content": "hi"}])
    assert completion.text == "finally"
    assert [a.status for a in completion.attempts] == [429, 500, None, 200]
    assert completion.attempts[0].retry_after_s == 1.0 and completion.attempts[0].waited_s >= 1.0
    assert "timed out" in completion.attempts[2].error
    log = server.log
    assert log[1].arrived - log[0].replied >= 1.0  # Retry-After honoured
    assert log[0].headers.get("authorization") == f"Bearer {SECRET}"


def test_client_survives_dropped_connections_stalled_streams_and_bodies_of_another_type():
    """Faults mid-run (issue "Hardening", item 3): each is one failed attempt, retried, with a reason."""
    steps = [Step(drop=True), Step(trickle_s=0.5, content="x" * 200),
             Step(content_type="text/html", raw=b"<html><body>502 Bad Gateway</body></html>"),
             Step(raw=b'{"choices": "not a list"}'), Step(content="finally")]
    with ScriptedLLM(lambda body: steps.pop(0)) as server:
        completion = _client(server, max_retries=5, timeout_s=1.5).complete([{"role": "user", "content": "hi"}])
    assert completion.text == "finally"
    errors = [a.error for a in completion.attempts[:-1]]
    assert "connection failed" in errors[0] and "timed out" in errors[1]
    assert "not a chat completion" in errors[2] and "not a chat completion" in errors[3]
    # The same faults with no retries left: a clear LLMError, never another exception.
    for step in (Step(drop=True), Step(content_type="text/html", raw=b"<html>oops</html>")):
        with ScriptedLLM(lambda body, step=step: step) as server:
            with pytest.raises(LLMError, match="after 1 attempt"):
                _client(server, max_retries=0).complete([{"role": "user", "content": "hi"}])


def test_several_answers_per_request_are_all_read_and_an_endpoint_refusing_n_gets_one():
    answers = [_answer({"kind": "tiling", "distribution": [8, 16, 0]}),
               _answer({"kind": "tiling", "distribution": [16, 16, 0]}, {"kind": "tiling", "distribution": [8, 16, 0]}),
               "no JSON in this one"]
    with ScriptedLLM(lambda body: Step(contents=answers)) as server:
        completion = _client(server, samples=3).complete([{"role": "user", "content": "hi"}])
    assert server.log[0].body["n"] == 3 and completion.texts == answers
    from mlirforge.llm_rewrite.answers import parse_answers

    parsed = parse_answers(completion.texts, ("tiling",), "k" * 16, 4, {})
    assert [c.payload["distribution"] for c in parsed.candidates] == [[8, 16, 0], [16, 16, 0]]  # pooled, no repeat
    assert parsed.problems == ["answer 3: no JSON in the answer: expected {\"candidates\": [{\"kind\": ...}]}"]
    with ScriptedLLM(lambda body: Step(content="one", refuse_n=True)) as server:
        client = _client(server, samples=3)
        assert client.complete([{"role": "user", "content": "hi"}]).texts == ["one"]
        client.complete([{"role": "user", "content": "again"}])
    assert [e.body.get("n") for e in server.log] == [3, None, None]  # refused once, then never asked again
    with ScriptedLLM(lambda body: Step(content="one", refuse_n=True)) as server:  # even with no retries left
        assert _client(server, samples=3, max_retries=0).complete([{"role": "user", "content": "hi"}]).texts == ["one"]


def test_several_temperatures_are_one_request_each_and_their_answers_are_pooled():
    def respond(body):
        temperature = body["temperature"]
        if temperature == 1.5:
            return Step(status=401)  # this one fails for good: the others still count
        return Step(contents=[_answer({"kind": "tiling", "distribution": [int(8 * (1 + temperature)), 16, 0]})]
                    * int(body.get("n") or 1))

    with ScriptedLLM(respond) as server:
        client = _client(server, temperatures=(0.0, 1.0, 1.5), samples=2, max_retries=0)
        completion = client.complete([{"role": "user", "content": "hi"}])
    assert sorted(e.body["temperature"] for e in server.log) == [0.0, 1.0, 1.5]
    assert all(e.body["n"] == 2 for e in server.log)
    assert client.budget.requests == 3  # variety costs a request per temperature
    assert len(completion.texts) == 4 and completion.text == completion.texts[0]
    assert [a.status for a in completion.attempts].count(401) == 1
    from mlirforge.llm_rewrite.answers import parse_answers

    parsed = parse_answers(completion.texts, ("tiling",), "k" * 16, 4, {})
    assert sorted(c.payload["distribution"][0] for c in parsed.candidates) == [8, 16]  # in temperature order
    with ScriptedLLM(lambda body: Step(status=401)) as server:  # every temperature failed: the error
        with pytest.raises(LLMError, match="HTTP 401"):
            _client(server, temperatures=(0.2, 0.9), max_retries=0).complete([{"role": "user", "content": "hi"}])
    with pytest.raises(ValueError, match="temperatures"):
        LLMSettings(temperatures=(0.5, 3.0))


def test_llm_temperatures_is_an_option_of_every_door():
    from mlirforge.config import CompileConfig

    assert CompileConfig.from_options({"llm_temperatures": [0.2, 1.0]}).llm.temperatures == (0.2, 1.0)
    assert CompileConfig.from_options({"llm_temperatures": "0.2, 0.7"}).llm.temperatures == (0.2, 0.7)
    assert CompileConfig.from_options({"llm_temperatures": 0.5}).llm.temperatures == (0.5,)
    from mlirforge.cli import _config_from_args, build_parser

    args = build_parser().parse_args(["optimize", "m.py", "-o", "out", "--llm-temperatures", "0.1,1.2",
                                      "--llm-samples", "2"])
    config = _config_from_args(args)
    assert config.llm.temperatures == (0.1, 1.2) and config.llm.samples == 2
    with pytest.raises(UserError, match="option 'llm_temperatures': expected a list of numbers"):
        CompileConfig.from_options({"llm_temperatures": ["hot"]})


def test_client_does_not_retry_client_errors_and_gives_up_after_max_retries():
    with ScriptedLLM(lambda body: Step(status=401)) as server:
        with pytest.raises(LLMError, match="HTTP 401 after 1 attempt"):
            _client(server).complete([{"role": "user", "content": "hi"}])
    with ScriptedLLM(lambda body: Step(status=503)) as server:
        with pytest.raises(LLMError, match="HTTP 503 after 3 attempt"):
            _client(server, max_retries=2).complete([{"role": "user", "content": "hi"}])
    assert len(server.log) == 3


def test_client_budget_and_concurrency_limits():
    with ScriptedLLM(lambda body: Step(delay_s=0.5, content="ok", usage=(100, 50))) as server:
        client = _client(server, concurrency=2, max_requests=4)
        threads = [threading.Thread(target=client.complete, args=([{"role": "user", "content": "x"}],))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.max_in_flight == 2 and len(server.log) == 4
        assert client.budget.tokens == 600
        with pytest.raises(BudgetSpent, match="4/4 requests"):
            client.complete([{"role": "user", "content": "x"}])
    assert len(server.log) == 4
    tokens = Budget(max_requests=10, max_tokens=100, max_seconds=60)
    tokens.take_request()
    tokens.add_tokens(150)
    with pytest.raises(BudgetSpent, match="150/100 tokens"):
        tokens.take_request()


def test_secrets_never_reach_the_transcript():
    text = f"key {SECRET} header Authorization: Bearer abcdefghijklmnop url http://user:pw@host/v1 api_key=zzzzzzzzzz"
    clean = scrub({"a": [text]}, (SECRET,))["a"][0]
    assert SECRET not in clean and "abcdefghijklmnop" not in clean and "user:pw" not in clean
    assert "zzzzzzzzzz" not in clean and clean.count("[redacted]") == 4
    # Only the exact secret, not every token it is a piece of (a key "relay", a model "relay-expert").
    assert scrub({"model": "relay-expert", "key": "relay", "why": "key relay refused"}, ("relay",)) == {
        "model": "relay-expert", "key": "[redacted]", "why": "key [redacted] refused"}
    # A real key is scrubbed wherever an error message puts it, next to any character.
    for text in ("invalid key: hunter2secret.", "Bearer%20hunter2secret", "token=hunter2secret_old"):
        assert "hunter2secret" not in scrub(text, ("hunter2secret",))


def test_missing_endpoint_is_a_clear_error_and_the_default_stays_offline(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MLIRFORGE_MODEL", raising=False)

    def no_network(*args, **kw):
        raise AssertionError("the models were listed although no endpoint is configured")

    monkeypatch.setattr(llm_client, "list_models", no_network)
    assert CompileConfig().resolved_proposer == "heuristic"
    assert CompileConfig().make_proposer(Path("t.jsonl")).name == "heuristic"
    with pytest.raises(UserError, match="needs OPENAI_BASE_URL .*MLIRFORGE_MODEL=<model> unless the endpoint"):
        CompileConfig(proposer="llm").make_proposer(Path("t.jsonl"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MLIRFORGE_MODEL", "m")
    assert CompileConfig().resolved_proposer == "llm"
    with pytest.raises(UserError, match="no such transcript"):
        CompileConfig(proposer="replay", transcript="/nonexistent.jsonl").make_proposer()


# -- the model: configured, or the endpoint's only one ----------------------------


@pytest.fixture
def endpoint_only(monkeypatch):
    """OPENAI_BASE_URL is what the test sets; no model is configured."""
    monkeypatch.delenv("MLIRFORGE_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return monkeypatch


def _notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mlirforge"]


def test_the_endpoints_only_model_is_used_and_the_user_is_told(endpoint_only, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="mlirforge")
    with ScriptedLLM(lambda body: Step(content="no ideas"), models=["only-model"]) as server:
        endpoint_only.setenv("OPENAI_BASE_URL", server.base_url)
        assert CompileConfig().resolved_proposer == "llm"  # auto: an endpoint and the model it lists
        proposer = CompileConfig().make_proposer(tmp_path / "t.jsonl")
        assert proposer.settings.model == "only-model" and proposer.settings.model_picked
        proposer.client.complete([{"role": "user", "content": "hi"}])
        proposer.close()
    assert [r.body["model"] for r in server.log] == ["only-model"]
    # Listed once (through the real openai client, with the key), announced once.
    assert [r.body["path"] for r in server.model_requests] == ["/v1/models"]
    assert server.model_requests[0].headers.get("authorization") == f"Bearer {SECRET}"
    assert _notes(caplog) == [f"using model 'only-model', the only model the endpoint at {server.base_url} lists"]
    header = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert header["model"] == "only-model" and header["model_picked"] is True


def test_the_cli_says_which_model_it_picked_or_which_to_choose_from(endpoint_only, tmp_path):
    def cli(base_url, model_file, *extra):
        env = {**os.environ, "OPENAI_BASE_URL": base_url, "MLIRFORGE_CACHE_DIR": str(tmp_path / "cache")}
        return subprocess.run(
            [sys.executable, "-m", "mlirforge.cli", "optimize", str(model_file), "-o", str(tmp_path / "out"),
             "--budget-s", "60", *extra], capture_output=True, text=True, env=env, timeout=300)

    with ScriptedLLM(lambda body: Step(content="no ideas"), models=["alpha-7b", "beta-13b"]) as server:
        proc = cli(server.base_url, MODEL_FILE, "--proposer", "llm")
    assert proc.returncode == 1 and server.log == [], proc.stderr
    assert ("mlirforge: error: the llm proposer needs a model, and the endpoint at " + server.base_url +
            " lists 2 models: alpha-7b, beta-13b; choose one with MLIRFORGE_MODEL=<model> or --llm-model <model>"
            ) in proc.stderr
    # The proposer is chosen before the model file is read: a file that is no model keeps this test fast
    # (the search itself with a picked model is the test above).
    not_a_model = tmp_path / "empty.py"
    not_a_model.write_text("")
    with ScriptedLLM(lambda body: Step(content="no ideas"), models=["only-model"]) as server:
        proc = cli(server.base_url, not_a_model)  # proposer auto
    assert (f"mlirforge: using model 'only-model', the only model the endpoint at {server.base_url} lists\n"
            f"mlirforge: optimizing {not_a_model} with the llm proposer") in proc.stderr, proc.stderr
    assert proc.stderr.count("using model") == 1 and len(server.model_requests) == 1


def test_several_listed_models_are_an_error_naming_them(endpoint_only, caplog):
    caplog.set_level(logging.WARNING, logger="mlirforge")
    with ScriptedLLM(lambda body: Step(content="no ideas"), models=["beta-13b", "alpha-7b"]) as server:
        endpoint_only.setenv("OPENAI_BASE_URL", server.base_url)
        with pytest.raises(UserError) as err:
            CompileConfig(proposer="llm").make_proposer(Path("t.jsonl"))
        # `auto` does not fail over it: it stays offline and says why and how to choose.
        assert CompileConfig().resolved_proposer == "heuristic"
    message = str(err.value)
    assert f"the endpoint at {server.base_url} lists 2 models: alpha-7b, beta-13b" in message
    assert "MLIRFORGE_MODEL=<model> or --llm-model <model>" in message
    (note,) = _notes(caplog)
    assert "lists 2 models: alpha-7b, beta-13b" in note and "heuristic" in note and "MLIRFORGE_MODEL" in note
    assert server.log == [] and len(server.model_requests) == 1  # listed once per endpoint and process


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("server_kw, why", [
    (dict(models_status=404), r"GET http://127\.0\.0\.1:\d+/v1/models: HTTP 404"),
    (dict(models_raw=b"<html>It works!</html>"), r"/v1/models: the answer is not a model list"),
    (dict(models_raw=b'{"data": [{"name": "x"}]}'), r"/v1/models: the answer is not a model list"),
    (dict(models=[]), r"lists no models"),
    (None, r"/v1/models: connection failed \(.*[Rr]efused"),
])
def test_a_failed_model_listing_says_the_model_must_be_set_and_why(endpoint_only, caplog, server_kw, why):
    caplog.set_level(logging.WARNING, logger="mlirforge")
    if server_kw is None:  # nothing listens there
        endpoint_only.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
        with pytest.raises(UserError) as err:
            CompileConfig(proposer="llm").make_proposer(Path("t.jsonl"))
        assert CompileConfig().resolved_proposer == "heuristic"
    else:
        with ScriptedLLM(lambda body: Step(content="no ideas"), **server_kw) as server:
            endpoint_only.setenv("OPENAI_BASE_URL", server.base_url)
            with pytest.raises(UserError) as err:
                CompileConfig(proposer="llm").make_proposer(Path("t.jsonl"))
            assert CompileConfig().resolved_proposer == "heuristic"
        assert server.log == [] and len(server.model_requests) == 1
    message = str(err.value)
    assert message.startswith("the llm proposer needs a model: set MLIRFORGE_MODEL=<model> or --llm-model <model>")
    assert "could not be picked automatically because" in message and re.search(why, message), message
    (note,) = _notes(caplog)
    assert re.search(why, note) and "using the offline heuristic proposer" in note


def test_an_explicit_model_is_used_without_listing(endpoint_only, tmp_path):
    with ScriptedLLM(lambda body: Step(content="no ideas"), models=["listed-model"]) as server:
        endpoint_only.setenv("OPENAI_BASE_URL", server.base_url)
        explicit = CompileConfig.from_options({"llm_model": "explicit-model"})
        assert explicit.resolved_proposer == "llm"
        proposer = explicit.make_proposer(tmp_path / "a.jsonl")
        assert proposer.settings.model == "explicit-model" and not proposer.settings.model_picked
        proposer.close()
        endpoint_only.setenv("MLIRFORGE_MODEL", "env-model")
        assert CompileConfig().resolved_proposer == "llm"
        proposer = CompileConfig(proposer="llm").make_proposer(tmp_path / "b.jsonl")
        assert proposer.settings.model == "env-model"
        proposer.close()
        assert server.model_requests == []
        # The same endpoint, no model configured: now, and only now, it is asked.
        endpoint_only.delenv("MLIRFORGE_MODEL")
        proposer = CompileConfig(proposer="llm").make_proposer(tmp_path / "c.jsonl")
        assert proposer.settings.model == "listed-model"
        proposer.close()
    assert len(server.model_requests) == 1


# -- end to end ------------------------------------------------------------------

MODEL_FILE = Path(__file__).parent / "data" / "identity_chain.py"


def _matmul_result(mlir: str) -> str:
    return re.search(r"(%\w+) = linalg\.matmul", mlir).group(1)


def good_kernel(mlir: str) -> str:
    """Correct and faster: return the matmul, dropping the identity steps."""
    return re.sub(r"return %\w+ :", f"return {_matmul_result(mlir)} :", mlir)


def nan_to_zero_kernel(mlir: str) -> str:
    """Right on every input except NaN: replaces NaN by 0 after the matmul."""
    mm = _matmul_result(mlir)
    ty = re.search(r"-> (tensor<[^>]*>)", mlir.split("func.func", 1)[1]).group(1)
    step = (f"%zz = arith.constant 0.000000e+00 : f32\n    %ee = tensor.empty() : {ty}\n"
            f"    %nz = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], "
            f'iterator_types = ["parallel", "parallel"]}} ins({mm} : {ty}) outs(%ee : {ty}) {{\n'
            f"    ^bb0(%a: f32, %o: f32):\n      %isnan = arith.cmpf uno, %a, %a : f32\n"
            f"      %r = arith.select %isnan, %zz, %a : f32\n      linalg.yield %r : f32\n    }} -> {ty}\n    ")
    return re.sub(r"return %\w+ :", step + "return %nz :", mlir)


def slower_kernel(mlir: str, steps: int = 60) -> str:
    """Correct but slower: 60 more exact (x + x) * 0.5 steps before returning."""
    ret = re.search(r"return (%\w+) : (tensor<[^>]*>)", mlir)
    value, ty = ret.group(1), ret.group(2)
    ident = "affine_map<(d0, d1) -> (d0, d1)>"
    body = ["%half = arith.constant 5.000000e-01 : f32", f"%e = tensor.empty() : {ty}"]
    for i in range(steps):
        body.append(
            f"%s{i} = linalg.generic {{indexing_maps = [{ident}, {ident}], iterator_types = [\"parallel\", \"parallel\"]}} "
            f"ins({value} : {ty}) outs(%e : {ty}) {{\n    ^bb0(%a: f32, %o: f32):\n      %d = arith.addf %a, %a : f32\n"
            f"      %h = arith.mulf %d, %half : f32\n      linalg.yield %h : f32\n    }} -> {ty}")
        value = f"%s{i}"
    return mlir.replace(ret.group(0), "\n    ".join(body) + f"\n    return {value} : {ty}")


def other_signature_kernel(mlir: str) -> str:
    return good_kernel(mlir).replace("func.func @main(", "func.func @main(%extra: tensor<4xf32>, ", 1)


def _answer(*candidates, prose: str = "Here is what I would try.") -> str:
    return prose + "\n```json\n" + json.dumps({"candidates": list(candidates)}, indent=1) + "\n```\n"


def _script():
    def round0(body):
        mlir = kernel_mlir_of(body)
        return Step(content=_answer(
            {"kind": "kernel", "mlir": good_kernel(mlir), "rationale": "the steps are the identity"},
            {"kind": "kernel", "mlir": other_signature_kernel(mlir), "rationale": "extra scratch argument"},
            {"kind": "pipeline", "pipeline": "mlirforge-make-it-fast", "rationale": "?"},
            {"kind": "kernel", "mlir": nan_to_zero_kernel(mlir), "rationale": "NaNs are rare anyway"},
        ))

    def round1(body):
        return Step(content=_answer(
            {"kind": "kernel", "mlir": slower_kernel(kernel_mlir_of(body)), "rationale": "more steps"},
            {"kind": "tiling", "distribution": [8, 16, 0], "vector_common_parallel": [1, 1, 0],
             "vector_reduction": [0, 0, 1], "rationale": "scalar tiles"},
        ))

    return Queues(
        then=lambda body: Step(content="I have no further ideas."),
        module=[Step(content=_answer({"kind": "flags", "iree_flags": ["--iree-llvmcpu-target-cpu=skylake"]}))],
        kernel=[
            Step(status=429, headers={"Retry-After": "1"}), round0,
            Step(status=500), round1,
            Step(delay_s=5, content="too late"), Step(content="I would unroll the reduction by 4."),
            Step(content='{"candidates": [{"kind": "tiling", "distribution": [8, 16, 0],'),
            Step(content="{" + " " * 450_000 + "}"),
        ],
    )


def _config(server, **kw) -> CompileConfig:
    options = dict(proposer="llm", llm_base_url=server.base_url, llm_model="scripted-model", llm_timeout_s=2.0,
                   budget_s=240, patience=4)
    options.update(kw)
    return CompileConfig.from_options(options)


def _kernel_verdicts(events):
    return [(info["candidate"], info["verdict"]) for e, info in events if e == "kernel-candidate"]


def test_llm_search_keeps_exactly_the_good_rewrite_and_replays_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    model_file = MODEL_FILE
    from mlirforge.api import optimize_model
    from mlirforge.kernelbench import load_model_file

    problem = load_model_file(model_file)
    events = []
    with ScriptedLLM(_script()) as server:
        summary = optimize_model(problem.model, problem.inputs, tmp_path / "llm", _config(server),
                                 progress=lambda e, i: events.append((e, i)), time_it=False)

    # Each scripted answer got the verdict it deserves.
    verdicts = {c.rationale or c.describe(): v for c, v in _kernel_verdicts(events)}
    assert verdicts["the steps are the identity"].accepted
    assert verdicts["extra scratch argument"].stage == "signature" and not verdicts["extra scratch argument"].built
    assert verdicts["?"].stage == "parse" and "mlirforge-make-it-fast" in verdicts["?"].reason
    nan = verdicts["NaNs are rare anyway"]
    assert nan.equivalent is False and nan.equivalence["distribution"] == "edge"
    slow = verdicts["more steps"]
    assert slow.equivalent is True and not slow.accepted and slow.stage == "timing" and slow.speedup < 1
    assert verdicts["scalar tiles"].stage == "build" and "failed" in verdicts["scalar tiles"].reason
    module = [(info["candidate"], info["verdict"]) for e, info in events if e == "module-candidate"]
    assert len(module) == 1 and "not in the whitelist" in module[0][1].reason
    rejected = [info["reason"] for e, info in events if e == "answer-rejected"]
    assert any("no JSON" in r for r in rejected) and any("broken JSON" in r for r in rejected)
    assert any("over the" in r for r in rejected)
    assert summary.rejected_answers == len(rejected) and summary.llm["requests"] == 6

    # Retries as specified: after the 429 the client waited Retry-After; 500 and the hang were retried.
    log = server.log
    statuses = [entry.step.status for entry in log]
    assert statuses.count(429) == 1 and statuses.count(500) == 1
    i429 = statuses.index(429)
    assert log[i429 + 1].arrived - log[i429].replied >= 1.0
    assert all(entry.headers.get("authorization") == f"Bearer {SECRET}" for entry in log)

    # The artifact: exactly the good rewrite, with its provenance, and it computes the model.
    out = tmp_path / "llm"
    manifest = json.loads((out / "manifest.json").read_text())
    (rewrite,) = manifest["rewrites"]
    cand = rewrite["candidate"]
    assert cand["kind"] == "kernel" and cand["proposer"] == "llm" and cand["model"] == "scripted-model"
    assert cand["rationale"] == "the steps are the identity" and re.fullmatch(r"[0-9a-f]{16}", cand["prompt_hash"])
    assert rewrite["transcript"] == "transcript.jsonl" and manifest["optimization"]["transcript"] == "transcript.jsonl"
    with torch.no_grad():
        check = check_against_eager(mlirforge.load(out), problem.model, problem.inputs)
        ok, msg = check.ok, check.message
    assert ok, msg

    # The report says why each rejected candidate was rejected.
    html = (out / "report.html").read_text()
    for category in ("accepted", "invalid", "build failed", "wrong results", "not faster"):
        assert category in html

    # The transcript: every request, its attempts, no secret.
    raw = (out / "transcript.jsonl").read_text()
    assert SECRET not in raw
    transcript = read_transcript(out / "transcript.jsonl")
    assert transcript.model == "scripted-model" and len(transcript.requests) == 6
    accepted_req = next(r for r in transcript.requests if r["seq"] == cand["request"])
    assert accepted_req["prompt_hash"] == cand["prompt_hash"] and cand["id"] in accepted_req["candidates"]
    attempts = [a["status"] for r in transcript.requests for a in r["attempts"]]
    assert attempts.count(429) == 1 and attempts.count(500) == 1 and attempts.count(None) == 1

    # Replay through the CLI, offline (no endpoint configured at all), with a fresh cache.
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    env["MLIRFORGE_CACHE_DIR"] = str(tmp_path / "cache2")
    proc = subprocess.run(
        [sys.executable, "-m", "mlirforge.cli", "optimize", str(model_file), "-o", str(tmp_path / "replay"),
         "--proposer", "replay", "--transcript", str(out / "transcript.jsonl"), "--budget-s", "240"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "with the replay proposer" in proc.stderr and "unusable answer" in proc.stderr
    again = json.loads((tmp_path / "replay" / "manifest.json").read_text())
    assert json.dumps(again["rewrites"][0]["candidate"], sort_keys=True) == json.dumps(cand, sort_keys=True)
    assert [r["kernel"] for r in again["rewrites"]] == [rewrite["kernel"]]
    assert again["optimization"]["proposer"] == "replay"
    assert (tmp_path / "replay" / "transcript.jsonl").read_text() == raw
    assert "speedup" in proc.stdout and "vs eager" in proc.stdout


def test_the_llm_budget_stops_the_search_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path / "cache"))
    from mlirforge.api import optimize_model
    from mlirforge.kernelbench import load_model_file

    model_file = MODEL_FILE
    problem = load_model_file(model_file)
    events = []
    with ScriptedLLM(lambda body: Step(content="Let me think about tiling... no JSON today.")) as server:
        summary = optimize_model(problem.model, problem.inputs, tmp_path / "out",
                                 _config(server, llm_max_requests=3, patience=10),
                                 progress=lambda e, i: events.append(e), time_it=False)
    assert len(server.log) == 3
    assert "3/3 requests" in summary.stopped and "proposer-stopped" in events
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rewrites"] == [] and "budget spent" in manifest["optimization"]["stopped"]
    assert manifest["optimization"]["llm"]["requests"] == 3
    with torch.no_grad():
        check = check_against_eager(mlirforge.load(tmp_path / "out"), problem.model, problem.inputs)
        ok, msg = check.ok, check.message
    assert ok, msg


def test_an_honest_empty_answer_ends_that_kernels_search_without_a_rejection(tmp_path, monkeypatch):
    """`{"candidates": []}` is the model saying it has nothing more: not an unusable answer to re-ask
    (which spent patience rounds and requests on every kernel before)."""
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path / "cache"))
    from mlirforge.api import optimize_model
    from mlirforge.kernelbench import load_model_file

    assert _parse('Nothing more to try.\n```json\n{"candidates": []}\n```').declined
    assert not _parse('{"candidates": [{"kind": "nonsense"}]}').declined
    problem = load_model_file(MODEL_FILE)
    events = []
    with ScriptedLLM(lambda body: Step(content='I have nothing worth trying.\n{"candidates": []}')) as server:
        summary = optimize_model(problem.model, problem.inputs, tmp_path / "out", _config(server, patience=5),
                                 progress=lambda e, i: events.append(e), time_it=False)
    records = [r for r in read_transcript(tmp_path / "out" / "transcript.jsonl").requests if r["purpose"] == "kernel"]
    per_kernel = [r["kernel"] for r in records]
    assert per_kernel and len(per_kernel) == len(set(per_kernel))  # each searched kernel asked exactly once
    assert summary.rejected_answers == 0 and "answer-rejected" not in events
    assert len(server.log) == len(records) + 1  # and the module round


def test_kernel_candidates_may_not_reach_beyond_pure_tensor_computation():
    from mlirforge.llm_rewrite.evaluate import EvalSettings, KernelEvaluator, new_workdir
    from mlirforge.llm_rewrite.kernels import kernel_from_function_text

    data = Path(__file__).parent / "data"
    kernel = kernel_from_function_text((data / "kernel_slow_matmul.mlir").read_text(), "k.mlir")
    fast = (data / "candidate_fast_matmul.mlir").read_text()
    barrier = fast.replace("return %mm :", "%b = util.optimization_barrier %mm : tensor<128x512xf32>\n  return %b :")
    evaluator = KernelEvaluator(kernel, EvalSettings(), new_workdir())
    verdict = evaluator.evaluate(Candidate("kernel", {"mlir": barrier}, kernel.hash))
    assert verdict.stage == "parse" and not verdict.built
    assert "util.optimization_barrier not allowed" in verdict.reason
    huge = {"distribution": [128, 512, 0], "vector_common_parallel": [128, 512, 0], "vector_reduction": [0, 0, 64]}
    verdict = evaluator.evaluate(Candidate("tiling", huge, kernel.hash))
    assert verdict.stage == "parse" and "at most 8192" in verdict.reason
    outside = {"distribution": [256, 512, 0], "vector_common_parallel": [8, 16, 0], "vector_reduction": [0, 0, 1]}
    verdict = evaluator.evaluate(Candidate("tiling", outside, kernel.hash))
    assert verdict.stage == "parse" and "outside 0..128" in verdict.reason


def test_next_kernels_first_rounds_are_asked_while_the_current_one_is_checked(tmp_path):
    from mlirforge.llm_rewrite.proposers.llm import LLMProposer

    base = _kernel()
    k1, k2 = base, Kernel("fedcba9876543210", "mm2", base.root, base.module, base.inputs, base.outputs, 64)
    answer = _answer({"kind": "pipeline", "pipeline": "mlirforge-generalize-named-ops"})
    with ScriptedLLM(lambda body: Step(delay_s=1.0, content=answer)) as server:
        settings = LLMSettings(base_url=server.base_url, model="m", concurrency=2)
        proposer = LLMProposer(settings, tmp_path / "t.jsonl", cpu=host_cpu())
        proposer.prepare([k1, k2], 4)
        assert len(proposer.propose(k1, [], 4)) == 1
        time.sleep(1.2)  # stands for checking k1's candidates; k2's first round is in flight meanwhile
        start = time.monotonic()
        (cand,) = proposer.propose(k2, [], 4)
        assert time.monotonic() - start < 0.5 and cand.kernel_hash == k2.hash
        proposer.close()
    records = read_transcript(tmp_path / "t.jsonl").requests
    assert sorted(r["kernel"] for r in records) == sorted([k1.hash, k2.hash])


def test_unwritable_or_malformed_transcripts_are_user_errors(tmp_path):
    from mlirforge.llm_rewrite.transcript import TranscriptWriter

    with pytest.raises(UserError, match="cannot write the transcript"):
        TranscriptWriter(tmp_path, {"model": "m"})
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"type": "header", "format": 1}\n{"type": "request", "seq": 1\n')
    with pytest.raises(UserError, match=r"t.jsonl:2: not a JSON line"):
        read_transcript(bad)
    bad.write_text('{"type": "request", "seq": 1, "purpose": "kernel"}\n')
    with pytest.raises(UserError, match="no header line"):
        read_transcript(bad)
