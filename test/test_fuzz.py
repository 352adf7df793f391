"""Property-based fuzzing of every parser that reads untrusted text (issue "Hardening", item 4).

Each door gets text it was never meant to read — random strings over the
door's own alphabet, and mutations (deleted, duplicated, swapped pieces) of
inputs it accepts — and must answer with its own clear error, never another
exception (a Python traceback for the user) and never a hang. Hypothesis
shrinks any failure to a minimal input and keeps it in its example database,
so a found crash becomes a regression test.

Doors: the pass-pipeline parser (`mlirforge-opt -p`, pipeline candidates), the
LLM answer parser, every candidate kind's `build` (the first stage of the
evaluation cascade, which parses MLIR and tile lists), `mlirforge-opt` on
malformed MLIR and `mlirforge compile` on malformed MLIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.answers import parse_answer
from mlirforge.llm_rewrite.candidates import CandidateRejected
from mlirforge.llm_rewrite.kernels import kernel_from_function_text
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.lowering.errors import LoweringError, UserError
from mlirforge.passes import PipelineError, get_all_passes, parse_pipeline

DATA = Path(__file__).parent / "data"
KERNEL_TEXT = (DATA / "kernel_slow_matmul.mlir").read_text()
KERNEL = kernel_from_function_text(KERNEL_TEXT)
# MLIRFORGE_FUZZ_DEPTH=N multiplies the examples (a deep run outside CI: N=50 is ~10 minutes).
DEPTH = int(os.environ.get("MLIRFORGE_FUZZ_DEPTH", "1"))
FAST = settings(max_examples=300 * DEPTH, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MLIR = settings(max_examples=60 * DEPTH, deadline=None, suppress_health_check=[HealthCheck.too_slow])


_EDIT_PIECES = st.sampled_from(list("{}[]()<>,:=%@#\"'-x0123456789 \n") + ["tensor<", "f32", "linalg.", "^bb0"])


@st.composite
def _mutated(draw, text: str) -> str:
    s = text
    for _ in range(draw(st.integers(1, 4))):
        if not s:
            break
        i = draw(st.integers(0, len(s) - 1))
        j = draw(st.integers(i, min(len(s), i + 40)))
        how = draw(st.sampled_from(["delete", "duplicate", "replace"]))
        if how == "delete":
            s = s[:i] + s[j:]
        elif how == "duplicate":
            s = s[:j] + s[i:j] + s[j:]
        else:
            s = s[:i] + "".join(draw(st.lists(_EDIT_PIECES, max_size=4))) + s[j:]
    return s


def mutations(text: str) -> st.SearchStrategy[str]:
    """`text` with up to four edits: a slice deleted, duplicated or replaced by a few characters."""
    return _mutated(text)


PASS_NAMES = sorted(get_all_passes())
pipeline_text = st.one_of(
    st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz-_{}=, 0123456789.\"'\\")), max_size=80),
    st.lists(st.one_of(st.sampled_from(PASS_NAMES), st.sampled_from(list("{}=, -")),
                       st.sampled_from(["distribution=8,16,0", "kernel=abc", "pipeline=Default", "x=", "=1"])),
             max_size=10).map("".join),
)


@FAST
@given(pipeline_text)
def test_the_pipeline_parser_answers_any_text_with_a_pipeline_error(text):
    try:
        parse_pipeline(text)
    except PipelineError as exc:
        assert "pipeline column" in str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["kind", "mlir", "pipeline", "candidates", "distribution", "iree_flags", "driver",
                         "vector_reduction", "rationale", "parent", "payload", "x"]), children, max_size=5),
    max_leaves=20,
)
answer_text = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    json_values.map(lambda v: "Here you go:\n```json\n" + json.dumps({"candidates": v}) + "\n```"),
    mutations(json.dumps({"candidates": [{"kind": "tiling", "distribution": [8, 16, 0]},
                                         {"kind": "kernel", "mlir": "func.func @main() { return }"}]})),
)


@FAST
@given(answer_text)
def test_the_answer_parser_never_raises_and_explains_what_it_drops(text):
    parsed = parse_answer(text, ("kernel", "tiling", "pipeline"), KERNEL.hash, 4, {})
    assert len(parsed.candidates) <= 4
    assert all(isinstance(p, str) and p for p in parsed.problems)
    if not parsed.candidates and not parsed.declined:
        assert parsed.problems  # nothing usable is always said, with why


@MLIR
@given(mutations(KERNEL.module))
def test_a_kernel_candidate_of_mangled_mlir_is_rejected_with_a_stage(text):
    try:
        built = candidates.get("kernel").build(KERNEL, {"mlir": text}, EvalSettings())
    except CandidateRejected as exc:
        assert exc.reason
    else:
        assert "func.func @main" in built.source


tile_payload = st.dictionaries(
    st.sampled_from(["distribution", "vector_common_parallel", "vector_reduction", "pipeline"]),
    st.one_of(st.lists(st.integers(-5, 10_000), max_size=5), st.text(max_size=12), st.integers(), st.none()),
)


@MLIR
@given(tile_payload)
def test_a_tiling_candidate_of_any_shape_is_rejected_or_builds(payload):
    kind = candidates.get("tiling")
    try:
        payload = kind.check_payload(payload)
        kind.build(KERNEL, payload, EvalSettings())
    except (ValueError, CandidateRejected):
        pass


@MLIR
@given(pipeline_text)
def test_a_pipeline_candidate_of_any_text_is_rejected_or_builds(text):
    try:
        candidates.get("pipeline").build(KERNEL, {"pipeline": text}, EvalSettings())
    except CandidateRejected as exc:
        assert exc.reason


@MLIR
@given(mutations(KERNEL_TEXT))
def test_mlirforge_opt_answers_mangled_mlir_with_diagnostics_and_exit_1(text):
    import contextlib
    import io
    import tempfile

    from mlirforge.opt import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.mlir"
        path.write_text(text)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main([str(path), "-p", "mlirforge-outline-kernels,mlirforge-inline-kernels"])
    assert code in (0, 1)
    assert "Traceback" not in err.getvalue()
    if code == 1:
        assert f"{path}:" in err.getvalue() and "error" in err.getvalue()
    else:
        assert "func.func" in out.getvalue()


@settings(max_examples=12 * DEPTH, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(KERNEL_TEXT))
def test_mlirforge_compile_answers_mangled_mlir_with_an_error_naming_the_file(text):
    import tempfile

    from mlirforge.api import compile_mlir_file

    tmp = Path(tempfile.mkdtemp(prefix="mlirforge-fuzz-"))
    src, out = tmp / "in.mlir", tmp / "out.vmfb"
    src.write_text(text)
    try:
        compile_mlir_file(src, out, {"use_cache": False})
    except (UserError, LoweringError) as exc:
        assert str(src) in str(exc)
        assert not out.exists()  # nothing half-written
    else:
        assert out.stat().st_size > 0
