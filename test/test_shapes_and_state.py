"""New batch sizes, the shape bound, weight updates and autograd."""

from __future__ import annotations

import warnings

import pytest
import torch

import mlirforge
from mlirforge.backend import FallbackWarning
from mlirforge.numerics import check_against_eager

from conftest import load_example


def test_new_batch_sizes_compile_per_shape():
    model, (x,) = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad():
        for batch in (64, 8, 33, 8):
            inp = torch.randn(batch, x.shape[1])
            calls = mlirforge.stats().iree_calls
            check = check_against_eager(compiled, model, [inp])
            ok, msg = check.ok, check.message
            assert ok, f"batch {batch}: {msg}"
            assert mlirforge.stats().iree_calls == calls + 1, f"batch {batch} did not run compiled"


def test_shape_bound_falls_back_to_eager_with_a_warning():
    model, (x,) = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge", options={"max_shape_variants": 1})
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled(torch.randn(4, x.shape[1]))
        compiled(torch.randn(5, x.shape[1]))  # dynamo goes dynamic: first variant
        calls = mlirforge.stats().iree_calls
        out = compiled(torch.randn(6, x.shape[1]))  # over the bound: eager
        assert mlirforge.stats().iree_calls == calls
    assert out.shape == (6, 128)
    assert any("max_shape_variants" in str(w.message) for w in caught if w.category is FallbackWarning)


def test_in_place_weight_update_is_seen():
    model, inputs = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad():
        compiled(*inputs)
        model.fc1.weight.mul_(2.0)
        model.fc3.bias.add_(1.0)
        check = check_against_eager(compiled, model, inputs)
        ok, msg = check.ok, check.message
    assert ok, msg


def test_training_forward_compiled_backward_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    reference = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(8, 16)
    compiled = torch.compile(model, backend="mlirforge")
    calls = mlirforge.stats().iree_calls
    compiled(x).square().sum().backward()
    assert mlirforge.stats().iree_calls > calls
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).square().sum().backward()
    for g, p, r in zip(grads, model.parameters(), reference):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-5)
        assert torch.equal(p.detach(), r)


def test_unknown_option_is_an_error_naming_it():
    model, inputs = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge", options={"tile_size": 4})
    with pytest.raises(Exception, match="unknown mlirforge option 'tile_size'"):
        compiled(*inputs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).to(dtype)
    x = torch.randn(16, 32, dtype=dtype)
    compiled = torch.compile(model, backend="mlirforge")
    calls = mlirforge.stats().iree_calls
    with torch.no_grad():
        check = check_against_eager(compiled, model, [x])
        ok, msg = check.ok, check.message
    assert ok, msg
    assert mlirforge.stats().iree_calls > calls


@pytest.mark.parametrize("options, named", [
    ({"use_cache": "nope"}, "use_cache"),
    ({"max_shape_variants": 2.7}, "max_shape_variants"),
    ({"iree_flags": None}, "iree_flags"),
    ({"budget_s": float("nan")}, "budget_s"),
])
def test_ill_typed_options_are_errors_naming_the_key(options, named):
    from mlirforge.config import CompileConfig
    from mlirforge.lowering.errors import UserError

    with pytest.raises(UserError, match=f"option '{named}'"):
        CompileConfig.from_options(options)


def test_a_string_bool_for_a_lowering_option_means_what_it_says():
    from mlirforge.config import CompileConfig

    assert CompileConfig.from_options({"use_cache": "false"}).lowering.use_cache is False


def test_the_python_api_loads_options_like_the_cli_and_the_backend(tmp_path, monkeypatch):
    from mlirforge.config import CompileConfig

    (tmp_path / "mlirforge.toml").write_text('budget_s = 7\nmin_gain = 0.05\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLIRFORGE_BUDGET_S", "9")
    loaded = CompileConfig.resolve({"timing_rounds": 6})
    # defaults <- file <- environment <- options, as `mlirforge optimize` and torch.compile do
    assert (loaded.search.budget_s, loaded.evaluation.min_gain, loaded.evaluation.rounds) == (9.0, 0.05, 6)
    assert CompileConfig.resolve(None).search.budget_s == 9.0
    explicit = CompileConfig()
    assert CompileConfig.resolve(explicit) is explicit  # a built config is taken as it is
    with pytest.raises(Exception, match="option 'min_gain'"):
        CompileConfig.resolve({"min_gain": 1.5})


def test_each_option_has_one_default_in_its_section():
    from mlirforge.config import OPTIONS, CompileConfig

    config = CompileConfig()
    for key, (section, name) in OPTIONS.items():
        owner = getattr(config, section) if section else config
        assert hasattr(owner, name), key
    assert config.eval_settings().min_gain == config.evaluation.min_gain
    assert config.eval_settings().base_flags == config.lowering.iree_flags


def test_options_that_complete_each_other_across_layers_are_accepted(tmp_path, monkeypatch):
    from mlirforge.config import CompileConfig
    from mlirforge.lowering.errors import UserError

    (tmp_path / "mlirforge.toml").write_text('proposer = "replay"\n')
    monkeypatch.chdir(tmp_path)
    # The file names the proposer, the command line its transcript: only the merged result is checked.
    assert CompileConfig.load({"transcript": "t.jsonl"}).proposer == "replay"
    with pytest.raises(UserError, match="needs 'transcript'"):
        CompileConfig.load({})
    with pytest.raises(UserError, match="must be a mapping"):
        CompileConfig.load("budget_s=3")
