"""The thin inference call path: no aot_autograd wrapper when nothing needs grad, and aot_autograd
whenever its runtime wrapper is needed (training, input mutation, outputs aliasing inputs)."""

from __future__ import annotations

import time

import pytest
import torch

import mlirforge
from mlirforge.numerics import check_against_eager

from conftest import load_example


def compiled_check(fn, inputs, grad: bool = False):
    """(check, thin-path graphs compiled, IREE calls made) for one compiled call."""
    compiled = torch.compile(fn, backend="mlirforge")
    thin, calls = mlirforge.stats().thin_path_graphs, mlirforge.stats().iree_calls
    with torch.set_grad_enabled(grad):
        check = check_against_eager(compiled, fn, inputs)
    return check, mlirforge.stats().thin_path_graphs - thin, mlirforge.stats().iree_calls - calls


def test_no_grad_inference_takes_the_thin_path():
    model, inputs = load_example("mlp")
    check, thin, calls = compiled_check(model, inputs)
    assert check.ok, check.message
    assert thin == 1 and calls == 1


def test_grad_mode_with_frozen_weights_is_inference_too():
    model, inputs = load_example("mlp")
    model.requires_grad_(False)
    check, thin, _ = compiled_check(model, inputs, grad=True)
    assert check.ok, check.message
    assert thin == 1


def test_training_goes_through_aot_autograd():
    model, inputs = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge")
    thin = mlirforge.stats().thin_path_graphs
    out = compiled(*inputs)
    assert out.requires_grad and mlirforge.stats().thin_path_graphs == thin
    out.sum().backward()
    assert model.fc1.weight.grad is not None


def test_a_graph_that_writes_its_input_keeps_eagers_semantics():
    def f(x):
        x.mul_(2)
        return x + 1

    check, thin, _ = compiled_check(f, [torch.randn(8)])
    assert check.ok, check.message  # the input is doubled, exactly as eager doubles its copy
    assert thin == 0


def test_an_output_that_is_a_view_of_an_input_stays_a_view():
    def f(x):
        return x.view(-1), x * 2

    x = torch.randn(2, 3)
    compiled = torch.compile(f, backend="mlirforge")
    with torch.no_grad():
        view, doubled = compiled(x)
    view[0] = 42.0
    assert x[0, 0] == 42.0, "the returned view does not alias the input as in eager"
    torch.testing.assert_close(doubled[0, 1], x[0, 1] * 2)


def test_weights_updated_in_place_are_rebound_on_the_thin_path():
    model, inputs = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad():
        compiled(*inputs)
        thin = mlirforge.stats().thin_path_graphs
        model.fc2.weight.mul_(0.5)
        check = check_against_eager(compiled, model, inputs)
    assert check.ok, check.message
    assert mlirforge.stats().thin_path_graphs == thin, "an in-place update recompiled instead of rebinding"


def test_auto_driver_times_both_drivers_then_keeps_one():
    import mlirforge.lowering.graph_compiler as gc
    from mlirforge.lowering.runtime import DRIVERS, AutoDriverModule

    model, inputs = load_example("mlp")
    compiled = torch.compile(model, backend="mlirforge", options={"driver": "auto"})
    made = []
    original = gc.load_module

    def spy(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    gc.load_module = spy
    try:
        with torch.no_grad():
            for _ in range(2 * (AutoDriverModule.TRIAL_CALLS + 1) + 1):
                check = check_against_eager(compiled, model, inputs)
                assert check.ok, check.message
    finally:
        gc.load_module = original
    (module,) = made
    assert isinstance(module, AutoDriverModule) and module.chosen in DRIVERS


def test_the_same_program_loaded_again_keeps_the_driver_chosen_for_it():
    """Two identical programs (an artifact that kept nothing, and its baseline) must never time
    differently because each one's few noisy trial calls chose a different driver."""
    from mlirforge.lowering.iree_compile import compile_mlir
    from mlirforge.lowering.runtime import DRIVERS, AutoDriverModule

    mlir = ("func.func @main(%a: tensor<64x64xf32>) -> tensor<64x64xf32> {\n"
            "  %0 = arith.addf %a, %a : tensor<64x64xf32>\n  return %0 : tensor<64x64xf32>\n}\n")
    vmfb = compile_mlir(mlir, "auto", [], None).vmfb
    first, x = AutoDriverModule(vmfb, parameters=()), torch.randn(64, 64)
    for _ in range(2 * (AutoDriverModule.TRIAL_CALLS + 1)):
        torch.testing.assert_close(first(x)[0], x + x)
    assert first.chosen in DRIVERS
    again = AutoDriverModule(vmfb, parameters=())
    assert again.chosen == first.chosen and list(again._modules) == [first.chosen]  # no trials, one module
    torch.testing.assert_close(again(x)[0], x + x)


class _Delayed:
    """A module that sleeps `delay_s` before each call: a driver made slow on purpose."""

    def __init__(self, module, delay_s: float):
        self.module, self.delay_s = module, delay_s

    def __call__(self, *inputs):
        time.sleep(self.delay_s)
        return self.module(*inputs)


def test_local_task_that_collapses_after_its_trial_moves_to_local_sync():
    """Eager ops' spinning OpenMP threads can make local-task far slower than in its trial: watched, it is
    dropped for local-sync; while it keeps its trial's speed it stays."""
    from mlirforge.lowering.iree_compile import compile_mlir
    from mlirforge.lowering.runtime import AutoDriverModule

    mlir = ("func.func @main(%a: tensor<64x64xf32>) -> tensor<64x64xf32> {\n"
            "  %0 = arith.mulf %a, %a : tensor<64x64xf32>\n  return %0 : tensor<64x64xf32>\n}\n")
    vmfb = compile_mlir(mlir, "auto", [], None).vmfb
    x = torch.randn(64, 64)
    for collapse in (False, True):
        AutoDriverModule._decided.clear()
        auto = AutoDriverModule(vmfb, parameters=())
        task = _Delayed(auto._modules["local-task"], 0.0)
        auto._modules["local-sync"] = _Delayed(auto._modules["local-sync"], 0.004)  # local-task wins the trial
        auto._modules["local-task"] = task
        for _ in range(2 * (AutoDriverModule.TRIAL_CALLS + 1)):
            torch.testing.assert_close(auto(x)[0], x * x)
        assert auto.chosen == "local-task"
        task.delay_s = 0.02 if collapse else 0.0
        for _ in range(2 * AutoDriverModule.WATCH_CALLS):
            torch.testing.assert_close(auto(x)[0], x * x)
        if collapse:
            assert auto.demoted and auto.chosen == "local-sync" and list(auto._modules) == ["local-sync"]
            assert AutoDriverModule._decided[auto._digest] == "local-sync"
            assert not isinstance(auto._modules["local-sync"], _Delayed)  # a fresh local-sync module
        else:
            assert not auto.demoted and auto.chosen == "local-task"
    AutoDriverModule._decided.clear()


def test_calls_from_several_threads_survive_the_move_to_local_sync():
    import threading

    from mlirforge.lowering.iree_compile import compile_mlir
    from mlirforge.lowering.runtime import AutoDriverModule

    mlir = ("func.func @main(%a: tensor<32x32xf32>) -> tensor<32x32xf32> {\n"
            "  %0 = arith.subf %a, %a : tensor<32x32xf32>\n  return %0 : tensor<32x32xf32>\n}\n")
    vmfb = compile_mlir(mlir, "auto", [], None).vmfb
    AutoDriverModule._decided.clear()
    auto, x = AutoDriverModule(vmfb, parameters=()), torch.randn(32, 32)
    task = _Delayed(auto._modules["local-task"], 0.0)
    auto._modules["local-sync"] = _Delayed(auto._modules["local-sync"], 0.004)
    auto._modules["local-task"] = task
    for _ in range(2 * (AutoDriverModule.TRIAL_CALLS + 1)):
        auto(x)
    assert auto.chosen == "local-task"
    task.delay_s = 0.005  # slow from now on: some thread's window moves the program while others call
    errors = []

    def loop():
        try:
            for _ in range(3 * AutoDriverModule.WATCH_CALLS):
                torch.testing.assert_close(auto(x)[0], x - x)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and auto.demoted and list(auto._modules) == ["local-sync"]
    AutoDriverModule._decided.clear()


def test_a_partitioned_graph_runs_its_compiled_parts_on_every_core():
    import os
    import time

    class Partitioned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(1024, 1024))

        def forward(self, x):
            y = torch.special.erfinv(torch.tanh(x) * 0.5)  # stays eager
            return ((y @ self.w) @ self.w) @ self.w

    if (os.cpu_count() or 1) < 2:
        import pytest

        pytest.skip("one core: nothing to spread over")
    model, x = Partitioned(), torch.randn(512, 1024)
    # eager_if_faster off: what is measured is the compiled parts, whatever eager would have done.
    compiled = torch.compile(model, backend="mlirforge", options={"driver": "local-task", "eager_if_faster": False})
    with torch.no_grad():
        check = check_against_eager(compiled, model, [x])
        assert check.ok, check.message
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the eager part on one thread: the CPU time left over is IREE's workers
        windows = []
        try:
            # The best of three windows: a neighbour that takes a core for one of them (a CI runner's
            # own processes) must not read as "ran on one core".
            for _ in range(3):
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(5):
                    compiled(x)
                windows.append((time.process_time() - cpu, time.perf_counter() - wall))
        finally:
            torch.set_num_threads(threads)
    # One core can give at most 1 s of CPU per second; IREE's workers on two give more.
    cpu, wall = max(windows, key=lambda w: w[0] / w[1])
    assert cpu > 1.15 * wall, f"{cpu:.3f} s of CPU in {wall:.3f} s: the compiled parts ran on one core ({windows})"


def test_the_faster_of_compiled_and_eager_is_kept_after_the_first_calls(monkeypatch):
    import warnings

    from mlirforge import eager_choice
    from mlirforge.backend import FallbackWarning
    from mlirforge.lowering.graph_compiler import STATS

    clock = [0.0]
    monkeypatch.setattr(eager_choice.time, "perf_counter", lambda: clock[0])

    def timed(tag, seconds):
        def fn(x):
            clock[0] += seconds
            return tag, x
        return fn

    before = STATS.eager_if_faster_graphs
    slow = eager_choice.EagerIfFaster(timed("compiled", 2e-3), timed("eager", 1e-3), "g")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tags = [slow(i)[0] for i in range(30)]
    settle, trials = slow.SETTLE_CALLS, 2 * (slow.TRIALS + 1)
    assert tags[:settle] == ["compiled"] * settle  # the compiled graph settles its driver first
    assert tags[settle:settle + trials] == ["compiled", "eager"] * (slow.TRIALS + 1)
    assert set(tags[settle + trials:]) == {"eager"} and STATS.eager_if_faster_graphs == before + 1
    (w,) = [w.message for w in caught if w.category is FallbackWarning]
    assert w.kind == "faster-eager" and "2.00x faster than its compiled module" in str(w)
    # A tie (or a compiled graph that is faster) stays compiled.
    tie = eager_choice.EagerIfFaster(timed("compiled", 1e-3), timed("eager", 0.95e-3), "g")
    tags = [tie(i)[0] for i in range(30)]
    assert set(tags[settle + trials:]) == {"compiled"} and tie.chosen is tie.compiled


def test_a_compiled_graph_slow_only_next_to_eager_gets_its_other_driver_before_eager_is_chosen(monkeypatch):
    """local-task measured right after eager calls (spinning OpenMP threads) is slow; the module moves to
    local-sync and eager is timed again against that, instead of eager winning for good."""
    from mlirforge import eager_choice

    clock = [0.0]
    monkeypatch.setattr(eager_choice.time, "perf_counter", lambda: clock[0])

    class AutoGraph:
        """A compiled graph whose local-task takes 3 ms next to eager and whose local-sync takes 0.5 ms."""

        def __init__(self):
            self.seconds, self.asked = 3e-3, []

        def __call__(self, x):
            clock[0] += self.seconds
            return "compiled", x

        def demote_if_slower(self, observed_s):
            self.asked.append(observed_s)
            moved = self.seconds > 1e-3
            self.seconds = 0.5e-3
            return moved

    def eager(x):
        clock[0] += 1e-3
        return "eager", x

    graph = AutoGraph()
    choice = eager_choice.EagerIfFaster(graph, eager, "g")
    tags = [choice(i)[0] for i in range(60)]
    assert graph.asked == [pytest.approx(3e-3)]  # asked once, with the median it measured
    assert choice.chosen is graph and tags[-10:] == ["compiled"] * 10


def test_torch_compile_runs_eager_when_it_measures_faster_and_compiled_when_asked(monkeypatch):
    from mlirforge import eager_choice

    x = torch.randn(64, 32)

    def run(options):
        compiled = torch.compile(lambda t: torch.tanh(t) * 2 + 1, backend="mlirforge", options=options)
        torch._dynamo.reset()
        calls = mlirforge.stats().iree_calls
        with torch.no_grad():
            outs = [compiled(x) for _ in range(30)]
        assert all(torch.allclose(o, torch.tanh(x) * 2 + 1, atol=1e-6) for o in outs)
        return mlirforge.stats().iree_calls - calls

    assert run({"eager_if_faster": False}) == 30
    monkeypatch.setattr(eager_choice.EagerIfFaster, "MARGIN", 1e9)  # eager "always faster"
    settle, trials = eager_choice.EagerIfFaster.SETTLE_CALLS, eager_choice.EagerIfFaster.TRIALS + 1
    assert run({}) == settle + trials  # then eager for good
