"""Every example through torch.compile(backend="mlirforge"), compared with eager.

Each test also proves the compiled path ran (IREE calls were made) and that
nothing fell back silently.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import mlirforge
from mlirforge.backend import FallbackWarning
from mlirforge.numerics import changed_inputs, clone_tree, compare_outputs

from conftest import load_example

SUPPORTED = ["mlp", "cnn", "transformer_block"]


def _run(model, inputs, **compile_kw):
    """One compiled call: (outputs, stats before, stats after, fallback warnings); the inputs must be unchanged."""
    compiled = torch.compile(model, backend="mlirforge", **compile_kw)
    before = dataclass_copy(mlirforge.stats())
    untouched = clone_tree(inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            actual = compiled(*inputs)
    assert not changed_inputs(inputs, untouched), "the compiled call modified its inputs"
    after = mlirforge.stats()
    return actual, before, after, [w for w in caught if issubclass(w.category, FallbackWarning)]


def dataclass_copy(stats):
    import dataclasses

    return dataclasses.replace(stats)


@pytest.mark.parametrize("name", SUPPORTED)
def test_example_matches_eager_and_runs_compiled(name):
    model, inputs = load_example(name)
    with torch.no_grad():
        expected = model(*inputs)
    actual, before, after, fallbacks = _run(model, inputs)
    ok, err, msg = compare_outputs(actual, expected)
    assert ok, msg
    assert after.iree_calls - before.iree_calls >= 1, "the compiled module never ran"
    assert after.eager_graphs == before.eager_graphs, "a graph silently fell back to eager"
    assert after.partitions_compiled == before.partitions_compiled, "graph was partitioned"
    assert not fallbacks, [str(w.message) for w in fallbacks]


def test_unsupported_op_stays_eager_rest_compiled():
    model, inputs = load_example("unsupported_op")
    with torch.no_grad():
        expected = model(*inputs)
    actual, before, after, fallbacks = _run(model, inputs)
    ok, _, msg = compare_outputs(actual, expected)
    assert ok, msg
    # Both linear stages around erfinv are compiled and called.
    assert after.partitions_compiled - before.partitions_compiled == 2
    assert after.iree_calls - before.iree_calls == 2
    assert len(fallbacks) == 1 and "aten.erfinv" in str(fallbacks[0].message)


def test_fallback_warning_is_given_once_per_compiled_graph():
    model, inputs = load_example("unsupported_op")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled(*inputs)
        compiled(*inputs)  # the same compiled graph: no second warning
    assert len([w for w in caught if issubclass(w.category, FallbackWarning)]) == 1
    torch._dynamo.reset()
    # A new compile of a graph with the same op says so again: each graph reports what it leaves eager.
    _, _, _, fallbacks = _run(model, inputs)
    assert fallbacks


def test_second_call_reuses_compiled_module():
    model, inputs = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad():
        compiled(*inputs)
        compiles = mlirforge.stats().graphs_compiled
        calls = mlirforge.stats().iree_calls
        compiled(*inputs)
    assert mlirforge.stats().graphs_compiled == compiles
    assert mlirforge.stats().iree_calls == calls + 1


def test_torch_form_compiles_models_with_weights():
    model, inputs = load_example("mlp")
    with torch.no_grad():
        expected = model(*inputs)
    actual, before, after, fallbacks = _run(model, inputs, options={"form": "torch"})
    ok, _, msg = compare_outputs(actual, expected)
    assert ok, msg
    assert not fallbacks, [str(w.message) for w in fallbacks]
    assert after.iree_calls - before.iree_calls == 1


def test_whole_graph_fallback_warning_names_the_error(monkeypatch):
    # A bad IREE flag makes every compile fail: the model still runs, eagerly,
    # and the warning says which stage failed, with what, and where the reproducer is.
    model, inputs = load_example("mlp")
    with torch.no_grad():
        expected = model(*inputs)
    actual, before, after, fallbacks = _run(model, inputs, options={"iree_flags": ["--no-such-iree-flag"]})
    ok, _, msg = compare_outputs(actual, expected)
    assert ok, msg
    assert after.eager_graphs == before.eager_graphs + 1
    assert after.iree_calls == before.iree_calls
    (warning,) = fallbacks
    text = str(warning.message)
    assert "stage 'iree-compile' failed" in text and "no-such-iree-flag" in text and "reproducer:" in text


def test_torch_form_partitions_around_unsupported_ops():
    # With the torch form the unsupported op is only found by IREE's own torch
    # conversion; it must still be named and partitioned around.
    model, inputs = load_example("unsupported_op")
    with torch.no_grad():
        expected = model(*inputs)
    actual, before, after, _ = _run(model, inputs, options={"form": "torch"})
    ok, _, msg = compare_outputs(actual, expected)
    assert ok, msg
    assert after.partitions_compiled - before.partitions_compiled == 2
    assert after.eager_graphs == before.eager_graphs
