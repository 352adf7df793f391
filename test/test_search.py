"""The verified search: the evaluation cascade, the search loop, the manifest, the cache."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mlirforge
from mlirforge.config import CompileConfig
from mlirforge.llm_rewrite.evaluate import EvalSettings, KernelEvaluator, new_workdir
from mlirforge.llm_rewrite.kernels import kernel_from_function_text
from mlirforge.llm_rewrite.proposers import Proposer
from mlirforge.llm_rewrite.types import Candidate
from mlirforge.numerics import check_against_eager

DATA = Path(__file__).parent / "data"


def evaluate_cli(kernel: str, candidate: str, *extra):
    proc = subprocess.run(
        [sys.executable, "-m", "mlirforge.cli", "evaluate", str(DATA / kernel), str(DATA / candidate), "--json", *extra],
        capture_output=True, text=True,
    )
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None), proc.stderr


def test_correct_faster_candidate_is_accepted():
    rc, verdict, err = evaluate_cli("kernel_slow_matmul.mlir", "candidate_fast_matmul.mlir")
    assert rc == 0, err
    assert verdict["built"] and verdict["equivalent"] and verdict["accepted"]
    assert verdict["timing"]["ci_low"] >= 1.03
    assert set(verdict["equivalence"]["distributions"]) >= {"normal", "edge", "wide", "tiny", "large", "all_negative"}


def test_correct_slower_candidate_is_rejected_for_speed():
    rc, verdict, _ = evaluate_cli("candidate_fast_matmul.mlir", "kernel_slow_matmul.mlir")
    assert rc == 1
    assert verdict["equivalent"] is True and verdict["accepted"] is False
    assert verdict["speedup"] < 1.0 and "not significantly faster" in verdict["reason"]


def test_candidate_wrong_only_on_edge_values_is_rejected():
    rc, verdict, _ = evaluate_cli("kernel_relu_max.mlir", "candidate_maxnum_wrong_on_nan.mlir")
    assert rc == 1
    assert verdict["equivalent"] is False
    assert verdict["equivalence"]["distribution"] == "edge"
    assert "NaN positions differ" in verdict["reason"]
    # It passed every ordinary distribution before the edge values caught it.
    assert verdict["equivalence"]["distributions"][:5] == ["normal", "wide", "tiny", "large", "all_negative"]


def test_candidate_with_another_signature_is_rejected_before_building():
    rc, verdict, _ = evaluate_cli("kernel_slow_matmul.mlir", "candidate_wrong_signature.mlir")
    assert rc == 1
    assert verdict["stage"] == "signature" and not verdict["built"]


def test_evaluate_usage_errors_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mlirforge.cli", "evaluate", str(tmp_path / "nope.mlir"), str(DATA / "candidate_fast_matmul.mlir")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_malformed_candidate_and_hang_become_verdicts():
    kernel = kernel_from_function_text((DATA / "kernel_slow_matmul.mlir").read_text())
    evaluator = KernelEvaluator(kernel, EvalSettings(rounds=5), new_workdir())
    bad = evaluator.evaluate(Candidate("kernel", {"mlir": "func.func @f( {"}, kernel.hash))
    assert bad.stage == "parse" and "does not parse" in bad.reason
    prose = evaluator.evaluate(Candidate("pipeline", {"pipeline": "no-such-pass"}, kernel.hash))
    assert "pass(es) no-such-pass not allowed in a pipeline candidate" in prose.reason
    flag = evaluator.evaluate(Candidate("flags", {"iree_flags": ["--iree-opt-numeric-precision-reduction"]}))
    assert "not in the whitelist" in flag.reason
    # A worker that cannot finish in time is a verdict, not a hang of ours.
    slow = KernelEvaluator(kernel, EvalSettings(timeout_s=0.05), new_workdir())
    hung = slow.evaluate(Candidate("kernel", {"mlir": (DATA / "candidate_fast_matmul.mlir").read_text()}, kernel.hash))
    assert not hung.accepted and "timed out" in hung.reason


def _identity_chain():
    """The model of data/identity_chain.py and its input: room for a verified rewrite."""
    from mlirforge.kernelbench import load_model_file

    problem = load_model_file(DATA / "identity_chain.py")
    return problem.model, problem.inputs[0]


class _DropIdentitySteps(Proposer):
    """Scripted proposer: returns the kernel with everything after its matmul dropped."""

    name = "scripted"

    def propose(self, kernel, history, n):
        if history or "linalg.matmul" not in kernel.module:
            return []
        mm = re.search(r"(%\w+) = linalg\.matmul", kernel.module).group(1)
        text = re.sub(r"return %\w+ :", f"return {mm} :", kernel.module)
        return [Candidate("kernel", {"mlir": text}, kernel.hash, proposer=self.name)]


def test_optimize_keeps_a_verified_rewrite_in_the_manifest_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path / "cache"))
    model, x = _identity_chain()
    config = CompileConfig.from_options({"budget_s": 60})
    events = []
    from mlirforge.api import optimize_model

    first = optimize_model(model, [x], tmp_path / "a", config, proposer=_DropIdentitySteps(),
                           progress=lambda e, i: events.append(e), time_it=False)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    (rewrite,) = manifest["rewrites"]
    assert rewrite["candidate"]["kind"] == "kernel" and rewrite["candidate"]["proposer"] == "scripted"
    assert rewrite["equivalence"]["seeds"] >= 6 and rewrite["equivalence"]["max_error"] <= rewrite["equivalence"]["tolerance"]
    assert rewrite["timing"]["ci_low"] >= 1.03
    assert manifest["optimization"]["end_to_end"]["accepted"] is True
    assert (tmp_path / "a" / f"kernels/{rewrite['kernel']}.mlir").exists()
    assert "kernel-candidate" in events
    with torch.no_grad():
        check = check_against_eager(mlirforge.load(tmp_path / "a"), model, [x])
        ok, msg = check.ok, check.message
    assert ok, msg

    events.clear()
    optimize_model(model, [x], tmp_path / "b", config, proposer=_DropIdentitySteps(),
                   progress=lambda e, i: events.append(e), time_it=False)
    assert "kernel-cached" in events and "kernel-candidate" not in events
    again = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [r["kernel"] for r in again["rewrites"]] == [rewrite["kernel"]]
    assert first.evaluations >= 1


def test_torch_compile_optimize_option_runs_the_search(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path))
    from mlirforge.lowering import runtime

    drivers, real_load = [], runtime.load_module
    monkeypatch.setattr(runtime, "load_module", lambda vmfb, driver="local-sync", **kw: (
        drivers.append(driver), real_load(vmfb, driver=driver, **kw))[1])
    model, x = _identity_chain()
    compiled = torch.compile(model, backend="mlirforge", options={"optimize": True, "budget_s": 10})
    calls = mlirforge.stats().iree_calls
    with torch.no_grad():
        check = check_against_eager(compiled, model, [x])
        ok, msg = check.ok, check.message
    assert ok, msg
    assert mlirforge.stats().iree_calls == calls + 1
    # The searched graph runs under the user's driver (`auto`: every core where that is faster),
    # not the single driver the search timed under.
    assert drivers == ["auto"]
    # The search ran: the rewrite cache exists and, besides the model, kernels
    # and candidates were compiled (a plain compile builds exactly one module).
    assert (tmp_path / "rewrites.sqlite").exists()
    assert len(list((tmp_path / "modules").glob("*.vmfb"))) >= 3


def test_a_failing_search_never_breaks_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path))
    import warnings

    from mlirforge.backend import FallbackWarning

    model, x = _identity_chain()
    # No LLM proposer is available yet: the search fails, the model still runs compiled.
    compiled = torch.compile(model, backend="mlirforge", options={"optimize": True, "proposer": "llm"})
    calls = mlirforge.stats().iree_calls
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check = check_against_eager(compiled, model, [x])
        ok, msg = check.ok, check.message
    assert ok, msg
    assert mlirforge.stats().iree_calls == calls + 1
    assert any("the search failed" in str(w.message) for w in caught if w.category is FallbackWarning)
    assert [w.message.kind for w in caught if "the search failed" in str(w.message)] == ["search"]


def test_end_to_end_gain_matches_the_rewritten_kernels_share_of_the_model(tmp_path, monkeypatch):
    """Amdahl, measured: a kernel made S times faster that held a share f of the model's time makes
    the model 1 / ((1 - f) + f / S) times faster, within 20% (measured: 1.21-1.27x for 1.24x predicted; the kernel runs fused
    into the model, not alone; both timings are interleaved A/B medians of the worker)."""
    monkeypatch.setenv("MLIRFORGE_CACHE_DIR", str(tmp_path / "cache"))
    from mlirforge.api import optimize_model
    from mlirforge.kernelbench import load_model_file

    problem = load_model_file(DATA / "hot_and_cold.py")
    config = CompileConfig.from_options({"budget_s": 120, "use_rewrite_cache": False})
    optimize_model(problem.model, problem.inputs, tmp_path / "a", config, proposer=_DropIdentitySteps(),
                   time_it=False)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    (rewrite,) = manifest["rewrites"]
    e2e = manifest["optimization"]["end_to_end"]
    assert e2e["accepted"] is True
    alone, inside = rewrite["timing"], rewrite["in_model"]
    # The hot kernel's share of the model. Timed alone it pays a call of its own, so on a noisy machine
    # the quotient can pass 1 (1.05 seen in CI, 0.63 typical); Amdahl takes it capped at 1.
    share = alone["baseline_us"] / e2e["timing"]["baseline_us"]
    assert 0.3 < share < 1.15, share
    share = min(share, 1.0)
    predicted = 1 / ((1 - share) + share / alone["speedup"])
    # One kept rewrite: its in-model figure is the end-to-end one.
    assert inside["speedup"] == pytest.approx(e2e["timing"]["speedup"])
    assert e2e["timing"]["speedup"] == pytest.approx(predicted, rel=0.2), (share, alone["speedup"], predicted)
    # IREE's per-dispatch profile of both models charges the gain to this kernel's dispatches.
    dispatches = inside["dispatches"]
    assert dispatches["before"]["us"] > 1.2 * dispatches["after"]["us"] and "its dispatches took" in dispatches["why"]
    # The artifact itself, in a fresh process, interleaved with its unoptimised build: the gain holds.
    from mlirforge.measure import measure_in_subprocess

    # One re-measure when the first one's CI includes 1, as the search re-times a near miss: on a 2-core
    # Zen 3 one fresh run in three read 0.44-0.99 for its lower bound and the next 1.24-1.25. Without the
    # rewrite's gain both measurements sit at 1.0 and the test fails.
    for _ in range(2):
        figures = measure_in_subprocess(DATA / "hot_and_cold.py", tmp_path / "a")
        ratio, low, high = figures["vs_unoptimized"]
        if low > 1.0:
            break
    assert figures["matches_eager"] and low <= ratio <= high
    assert 0.0 <= figures["other_cpu_share"] <= 1.0  # what the summary's busy-machine warning reads
    # The gain is real (its CI excludes 1) and is the one measured in the search's process (1.21-1.27x
    # there, 1.19-1.24x here on a 2-core Zen 4), not a bound fixed in advance that noise straddles.
    assert low > 1.0 and ratio == pytest.approx(e2e["timing"]["speedup"], rel=0.2), (figures, e2e["timing"])


def test_a_cached_rewrite_this_version_cannot_read_is_a_miss_not_a_crash(tmp_path):
    from mlirforge.llm_rewrite.cache import RewriteCache
    from mlirforge.llm_rewrite.types import Stage, Verdict

    cache = RewriteCache(tmp_path / "r.sqlite")
    cand = Candidate("kernel", {"mlir": "x"}, "k" * 16)
    verdict = Verdict(cand.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True,
                      timing={"speedup": 2.0, "ci_low": 1.9, "ci_high": 2.1})
    cache.store("k" * 16, "ctx", cand, verdict)
    assert cache.lookup("k" * 16, "ctx")[1].accepted
    # As another mlirforge (or a plugin's kind) would have left it in the shared cache:
    with cache.db:
        cache.db.execute("UPDATE rewrites SET candidate = ?", (json.dumps({**cand.to_json(), "kind": "plugin"}),))
    assert cache.lookup("k" * 16, "ctx") is None
    assert "unreadable here" in cache.entries()[0]["candidate"]
    cache.close()
