"""NaN / ±inf / -0 semantics and normalisation statistics of the compiled path match eager PyTorch.

Every check runs through the real backend (`torch.compile(fn, backend="mlirforge")`)
and asserts that the whole graph ran as one IREE module (so an op that fell back
to eager cannot pass by accident), compares with eager through
`check_against_eager` (NaN == NaN, inputs left unchanged) and, where the eager
result is a zero, its sign (`allclose` sees -0 == +0). The headline cases also
have their expected values written out. docs/semantics.md lists what each
family checks and what the decompositions in lowering/decompositions.py fix.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils._pytree as pytree
from torch.fx.experimental.proxy_tensor import make_fx

import mlirforge
from mlirforge.lowering.fx_import import aten_decompositions, import_fx_graph
from mlirforge.numerics import check_against_eager

nan, inf = math.nan, math.inf


def special_rows() -> torch.Tensor:
    """12 x 12 rows with NaN, ±inf, signed zeros, ties and all-negative values."""
    g = torch.Generator().manual_seed(0)
    n = 12
    rows = []
    a = torch.randn(n, generator=g)
    a[5], a[9] = nan, nan
    rows.append(a)  # 0: NaN at 5 and 9
    a = -torch.rand(n, generator=g) - 1
    a[3] = inf
    rows.append(a)  # 1: one +inf among negatives
    rows.append(torch.full((n,), -inf))  # 2: all -inf
    rows.append(torch.tensor([1.0, 3, 3, 2, 3, 0, -1, 3, 2, 1, 0, 3]))  # 3: ties
    rows.append(-torch.rand(n, generator=g) - 0.5)  # 4: all negative
    rows.append(torch.tensor([-0.0, 0.0, -0.0, 0.0, -0.0, -0.0, 0.0, 0.0, -0.0, 0.0, -0.0, 0.0]))  # 5
    rows.append(torch.full((n,), nan))  # 6: all NaN
    a = torch.full((n,), -inf)
    a[7] = nan
    rows.append(a)  # 7: -inf and one NaN
    a = torch.randn(n, generator=g)
    a[2], a[8] = inf, inf
    rows.append(a)  # 8: two +inf
    a = torch.randn(n, generator=g)
    a[0], a[4] = nan, -inf
    rows.append(a)  # 9: NaN first, a -inf
    rows.append(torch.full((n,), -0.0))  # 10: all -0
    a = torch.full((n,), inf)
    a[6] = -inf
    rows.append(a)  # 11: +inf and one -inf
    return torch.stack(rows)


def second_operand(x: torch.Tensor) -> torch.Tensor:
    """A partner for binary ops: random, with NaN, ±inf and the opposite zero signs of row 5."""
    y = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    y[0, 5], y[1, 2], y[2, 1], y[6, 0] = 1.0, nan, inf, 0.0
    y[5] = torch.where(x[5].signbit(), 0.0, -0.0)
    return y


def assert_zero_signs(actual, expected, skip=()) -> None:
    """Where eager returned a (float) zero, the compiled result has its sign bit (leaves in `skip` aside)."""
    for i, (a, e) in enumerate(zip(pytree.tree_leaves(actual), pytree.tree_leaves(expected))):
        if i not in skip and isinstance(e, torch.Tensor) and e.is_floating_point():
            zero = (e == 0) & (a == 0)
            assert torch.equal(a.signbit()[zero], e.signbit()[zero]), f"output {i}: sign of zero differs"


def compiled_matches_eager(fn, inputs, options=None, any_zero_sign=()):
    """Compile `fn`, check it against eager, assert it ran as one IREE module; returns (actual, expected).

    `any_zero_sign`: output leaves whose sign of zero eager itself does not fix
    (it depends on its vectorised loop), see docs/semantics.md.
    """
    torch._dynamo.reset()
    stats = mlirforge.stats()
    before = (stats.iree_calls, stats.eager_graphs, stats.partitions_compiled)
    compiled = torch.compile(fn, backend="mlirforge", options=options)
    r = check_against_eager(compiled, fn, inputs)
    assert r.ok, r.message
    assert stats.iree_calls > before[0], "the compiled path did not run"
    ran_whole = (stats.eager_graphs, stats.partitions_compiled) == before[1:]
    assert ran_whole, "part of the graph ran in eager PyTorch"
    assert_zero_signs(r.actual, r.expected, any_zero_sign)
    return r.actual, r.expected


def nan_row(n: int = 16) -> torch.Tensor:
    """The bug report's input: randn(4, n) with a NaN at [0, 5]."""
    x = torch.randn(4, n, generator=torch.Generator().manual_seed(3))
    x[0, 5] = nan
    return x


# --- argmax / argmin / max.dim / min.dim / amax / max() ----------------------------


def _arg_family(x):
    values_max, index_max = torch.max(x, 1)
    values_min, index_min = torch.min(x, 0, keepdim=True)
    return (
        x.argmax(1), x.argmax(1, keepdim=True), x.argmax(0), x.argmax(),
        x.argmin(1), x.argmin(0), x.argmin(),
        values_max, index_max, values_min, index_min,
        x.amax(1), x.amin(0), x.max(), x.min(),
    )


@pytest.mark.parametrize("form", ["linalg", "torch"])
def test_argmax_family_nan_is_extreme_and_first_index_wins(form):
    x = special_rows()
    # amax / amin / max() / min() over mixed -0 and +0: eager's sign depends on its lanes.
    options = {"form": form}
    actual, _ = compiled_matches_eager(_arg_family, [x], options, any_zero_sign={11, 12, 13, 14})
    argmax1, _, _, argmax_all, argmin1, _, _, vmax, imax, _, _, amax1, _, max_all, _ = actual
    # Row 0 has NaNs at 5 and 9: the first NaN is the maximum and the minimum.
    assert argmax1[0] == 5 and argmin1[0] == 5 and imax[0] == 5
    assert argmax1[3] == 1  # ties: [1, 3, 3, 2, 3, ...] -> first 3
    assert argmax1[6] == 0 and argmax1[7] == 7 and argmax1[9] == 0  # all NaN; -inf row with NaN; NaN first
    assert argmax1[8] == 2 and argmin1[11] == 6  # first of two +inf; the -inf
    assert argmax_all == 5  # flat index of the first NaN
    assert math.isnan(vmax[0]) and math.isnan(amax1[0]) and math.isnan(max_all)
    # max.dim's value is x[index]: a row of mixed zeros starting with -0 gives -0.
    assert vmax[5] == 0 and vmax[5].signbit() and imax[5] == 0


def test_argmax_bug_report_and_nan_free_rows():
    fn = lambda x: (x.argmax(1), x.argmin(1), x.amax(1), torch.max(x, 1).indices)  # noqa: E731
    actual, _ = compiled_matches_eager(fn, [nan_row()])
    assert actual[0][0] == 5 and actual[1][0] == 5 and actual[3][0] == 5
    assert math.isnan(actual[2][0])


def test_arg_reductions_find_the_first_index_with_an_integer_minimum():
    """The index comes from an integer `amin` over positions, not from a reduction's running index.

    A reduction that carries a running index (`%r:2 = linalg.generic ...` whose
    second result is read) is a serial loop; IREE vectorizes a plain minimum.
    torch-mlir also gives `amax` a dead index result; only a read one counts.
    """
    fn = lambda x: (x.argmax(1), x.argmin(0), *torch.max(x, 1), torch.min(x, 1)[0])  # noqa: E731
    gm = make_fx(fn, decomposition_table=aten_decompositions())(torch.randn(8, 64))
    text = import_fx_graph(gm, form="linalg")
    two_result_reductions = re.findall(r"(%\w+):2 = linalg.generic \{[^}]*reduction", text)
    assert two_result_reductions, "the check below would pass vacuously"
    read_indices = [r for r in two_result_reductions if f"{r}#1" in text]
    assert read_indices == [], f"serial index loops: {read_indices}"


# --- maximum / minimum / fmax / fmin / clamp / relu / hardtanh / elu ----------------


def test_binary_max_min_propagate_or_ignore_nan():
    x = special_rows()

    def fn(x, y):
        return torch.maximum(x, y), torch.minimum(x, y), torch.fmax(x, y), torch.fmin(x, y)

    # maximum/minimum of -0 and +0: eager returns y in its vector loop, x in its scalar tail.
    compiled_matches_eager(fn, [x, second_operand(x)], any_zero_sign={0, 1})
    # Written out: NaN in either operand of maximum is NaN; fmax ignores one NaN; fmax(-0, +0) = -0.
    a = torch.tensor([nan, 1.0, nan, -0.0, 2.0])
    b = torch.tensor([1.0, nan, nan, 0.0, -inf])
    (mx, mn, fx, fn_), _ = compiled_matches_eager(fn, [a, b], any_zero_sign={0, 1})
    assert mx[:3].isnan().all() and mn[:3].isnan().all()
    assert fx[:2].tolist() == [1.0, 1.0] and fx[2].isnan() and fn_[:2].tolist() == [1.0, 1.0]
    assert fx[3] == 0 and fx[3].signbit() and fx[4] == 2.0


def test_clamp_relu_hardtanh_keep_nan_and_negative_zero():
    x = special_rows()

    def fn(x, y):
        return (
            x.clamp(-1, 1), x.clamp(min=0.0), x.clamp(max=0.0), x.clamp_min(-0.5), x.clamp_max(0.5),
            x.clamp(min=y), x.clamp(max=y), torch.clamp(x, y, y + 1), y.clamp(min=x),
            x.relu(), F.hardtanh(x), F.relu6(x), F.hardtanh(x, -0.5, 0.5), F.elu(x), F.leaky_relu(x),
        )

    # Tensor bounds tying -0 with +0: as maximum/minimum, eager's sign depends on its loop.
    actual, _ = compiled_matches_eager(fn, [x, second_operand(x)], any_zero_sign={5, 6, 7, 8})
    clamp11, relu = actual[0], actual[9]
    assert clamp11[0, 5].isnan() and clamp11[1, 3] == 1 and clamp11[2, 0] == -1
    assert relu[0, 5].isnan() and relu[10].signbit().all()  # relu(-0) = -0
    assert actual[11][10].signbit().all()  # relu6(-0) = -0
    assert actual[5][1, 2].isnan()  # a NaN bound gives NaN
    # Integer input with a float bound promotes (this graph did not lower before).
    ints = torch.arange(-4, 4, dtype=torch.int32)
    (half,), _ = compiled_matches_eager(lambda i: (i.clamp(min=0.5),), [ints])
    assert half.dtype == torch.float32 and half.tolist() == [0.5] * 5 + [1.0, 2.0, 3.0]


def test_elu_is_exact_near_zero():
    x = torch.tensor([-1e-8, -0.0, 0.0, -1.0, nan])
    (out,), _ = compiled_matches_eager(lambda x: (F.elu(x),), [x])
    assert out[0] == pytest.approx(-1e-8, rel=1e-6) and out[1].signbit() and out[4].isnan()


# --- softmax / log_softmax / logsumexp / cumsum / sort family --------------------------


def test_softmax_family_on_inf_and_nan_rows():
    x = special_rows()
    fn = lambda x: (x.softmax(1), x.log_softmax(1), x.logsumexp(1), x.softmax(0))  # noqa: E731
    (sm, lsm, lse, _), _ = compiled_matches_eager(fn, [x])
    assert sm[1].isnan().all() and sm[8].isnan().all()  # a +inf row: inf - inf
    assert sm[2].isnan().all() and lsm[2].isnan().all()  # all -inf: -inf - (-inf)
    assert lse[2] == -inf and lse[1] == inf and lse[0].isnan()  # logsumexp special-cases inf
    assert torch.isfinite(sm[3]).all() and sm[3].sum() == pytest.approx(1.0)


def test_cumsum_starts_from_positive_zero():
    x = special_rows()
    (row, col), _ = compiled_matches_eager(lambda x: (x.cumsum(1), x.cumsum(0)), [x])
    assert row[10].eq(0).all() and not row[10].signbit().any()  # -0 + -0 summed from +0
    assert row[0, 5:].isnan().all() and row[1, 3:].eq(inf).all()


def test_sort_topk_cummax_values_match_eager():
    """These run in eager PyTorch by choice (sort/topk) or because torch-mlir cannot lower them
    (cummax/cummin), so only the values are checked; NaN sorts last and counts as the largest."""
    x = special_rows()
    torch._dynamo.reset()

    def fn(x):
        return (x.sort(1), x.sort(1, descending=True), x.topk(4, 1), x.topk(4, 1, largest=False),
                x.cummax(1), x.cummin(1))

    r = check_against_eager(torch.compile(fn, backend="mlirforge"), fn, [x])
    assert r.ok, r.message
    (sorted_values, _), _, (top_values, top_index), *_ = r.actual
    assert sorted_values[0, -2:].isnan().all() and top_values[0, :2].isnan().all()
    assert top_index[0, :2].tolist() == [5, 9]


# --- sign / NaN tests / comparisons ------------------------------------------------------


def test_sign_and_nan_tests():
    x = special_rows()

    def fn(x):
        return x.sign(), torch.sgn(x), x.isfinite(), x.isnan(), x.isinf(), x == x, x != x, torch.nan_to_num(x)

    (sign, _, finite, _, _, same, _, _), _ = compiled_matches_eager(fn, [x])
    assert sign[0, 5] == 0 and sign[1, 3] == 1 and sign[2, 0] == -1  # sign(NaN) = 0 in eager
    assert not finite[0, 5] and not finite[1, 3] and finite[0, 0]
    assert not same[0, 5] and same[0, 0]  # x == x is False at NaN


def test_compare_with_python_scalar_in_tensor_dtype():
    x = torch.tensor([0.1, 0.3, 1 / 3, 16777217.0, 0.2, nan])

    def fn(x):
        const = torch.full((3,), 5.0)
        return x > 0.1, x == 0.3, x <= 1 / 3, x != 0.2, x >= 0, (const < 3).float() + x[:3], x[:5].int() > 0.5

    (gt, eq, le, ne, ge, folded, _), _ = compiled_matches_eager(fn, [x])
    assert gt.tolist() == [False, True, True, True, True, False]  # 0.1f > 0.1 compares in f32
    assert eq[1] and le[2] and not ne[4] and not ge[5]
    assert torch.equal(folded, x[:3])  # a constant 5.0 < 3 is False


# --- integer and bool reductions, overflow, division ------------------------------------


def test_integer_and_bool_reductions_and_overflow():
    g = torch.Generator().manual_seed(2)
    i32 = torch.randint(-5, 5, (6, 10), generator=g, dtype=torch.int32)
    i32[0] = 3
    i32[1, 4] = 2**31 - 1
    i32[2] = -7
    i64 = i32.to(torch.int64)
    i64[1, 4] = 2**63 - 1
    b = i32 > 0
    u8 = torch.randint(0, 256, (4, 8), generator=g, dtype=torch.uint8)
    big = torch.full((4, 8), 2**30, dtype=torch.int32)

    def ints(x):
        return (x.sum(1), x.sum(), x.prod(1), x.amax(1), x.amin(0), x.any(1), x.all(1),
                x.argmax(1), x.argmin(1), x.max(), torch.max(x, 1))

    def rest(i64, b, u8, big):
        return (
            i64.sum(1), i64.prod(1), i64 + i64, i64 * i64, i64.argmax(1),
            b.sum(1), b.sum(), b.any(1), b.all(1), b.amax(1), b.amin(0),
            u8.sum(1), u8.sum(), u8.prod(1), u8.sum(1, dtype=torch.int32), u8.argmax(1),
            big + big, big * 4, big.sum(1), big.sum(1, dtype=torch.int32),
        )

    compiled_matches_eager(ints, [i32])
    actual, _ = compiled_matches_eager(rest, [i64, b, u8, big])
    assert actual[11].tolist() == u8.to(torch.int64).sum(1).tolist()  # uint8 zero-extends
    assert actual[16].eq(-(2**31)).all()  # int32 wraps
    assert actual[18].tolist() == [8 * 2**30] * 4 and actual[19].eq(0).all()  # int64 sum; int32 sum wraps


def test_floor_divide_fmod_remainder_follow_python():
    g = torch.Generator().manual_seed(5)
    a = torch.cat([special_rows().reshape(-1), torch.randn(100, generator=g) * 10,
                   torch.randn(60, generator=g) * 1e7,
                   torch.tensor([1.0, 5.5, -1.0, 1.0, -0.0, inf, 1e7 + 1, 3.0])])
    b = torch.randn(a.numel() - 8, generator=g)
    b[::17], b[5::23], b[3::31] = 0.0, inf, nan
    b = torch.cat([b, torch.tensor([0.1, 1.1, inf, -inf, 3.0, 2.0, 0.1, -0.0])])

    def fn(a, b):
        return (a // b, a // 0.1, a // 2.0, torch.fmod(a, b), torch.fmod(a, 0.3), a % b, a % 0.1,
                torch.div(a, b, rounding_mode="trunc"))

    (floordiv, *_), _ = compiled_matches_eager(fn, [a, b])
    tail = floordiv[-8:].tolist()
    assert tail[:4] == [9.0, 4.0, -1.0, -1.0]  # 1 // 0.1, 5.5 // 1.1, -1 // inf, 1 // -inf
    assert tail[4] == 0 and math.copysign(1, tail[4]) == -1  # -0 // 3 = -0
    assert math.isnan(tail[5])  # inf // 2 = nan


# --- statistics: var / var_mean and the normalisations -----------------------------------


def _max_error(model, x) -> tuple[float, float]:
    """Max abs error of eager f32 and compiled f32 against the model run in float64."""
    model = model.eval()
    reference = copy.deepcopy(model).double()(x.double())
    torch._dynamo.reset()
    with torch.no_grad():
        eager = model(x)
        before = mlirforge.stats().iree_calls
        compiled = torch.compile(model, backend="mlirforge")(x)
        assert mlirforge.stats().iree_calls > before
        reference = reference.detach()
    return float((eager.double() - reference).abs().max()), float((compiled.double() - reference).abs().max())


class _TwoLayerNorms(nn.Module):
    def __init__(self):
        super().__init__()
        self.small, self.large = nn.LayerNorm(768), nn.LayerNorm(4096)

    def forward(self, x):
        return torch.cat([self.small(x[:, :768]), self.large(x)], 1)


def test_layer_norm_far_from_zero_as_accurate_as_eager():
    torch.manual_seed(0)
    x = torch.randn(8, 4096) + 1e3  # mean 1e3, unit spread
    eager, compiled = _max_error(_TwoLayerNorms(), x)
    assert compiled <= 2 * eager, f"compiled {compiled:.3g} vs eager {eager:.3g}"


class _ConvTransposeGroupNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvTranspose3d(8, 16, 3, stride=2)
        self.norm = nn.GroupNorm(4, 16)

    def forward(self, x):
        return self.norm(torch.relu(self.conv(x)))


def test_group_norm_after_relu_as_accurate_as_eager():
    torch.manual_seed(0)
    model = _ConvTransposeGroupNorm()
    x = torch.randn(2, 8, 8, 8, 8)
    eager, compiled = _max_error(model, x)
    assert compiled <= 2 * eager, f"compiled {compiled:.3g} vs eager {eager:.3g}"
    # The group norm alone on the (all >= 0) post-ReLU values, groups of 19652 elements.
    with torch.no_grad():
        activations = torch.relu(model.conv(x))
    eager, compiled = _max_error(nn.GroupNorm(4, 16), activations)
    assert compiled <= 4 * eager, f"compiled {compiled:.3g} vs eager {eager:.3g}"


def test_var_std_and_training_norms_match_eager():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5) * 3 + 50
    image = torch.randn(2, 4, 70, 70).to(memory_format=torch.channels_last) + 5
    weight, bias = torch.randn(4), torch.randn(4)

    def fn(x, image, weight, bias):
        return (
            x.var(1), x.var(1, correction=0), x.var((0, 2), correction=2, keepdim=True), x.var(),
            x.std(2), torch.var_mean(x, 1), torch.std_mean(x, [0, 1], correction=0),
            x[:, :1, :1].var(1), F.batch_norm(x, None, None, training=True), F.instance_norm(x),
            F.group_norm(image, 2, weight, bias), F.layer_norm(image, (70,)),
        )

    actual, _ = compiled_matches_eager(fn, [x, image, weight, bias])
    assert actual[7].isnan().all()  # one element, correction 1: 0 / 0
    ones = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    fn = lambda t: (t.var(1), t.var(1, correction=0), t.std(1))  # noqa: E731
    (var1, var0, std1), _ = compiled_matches_eager(fn, [ones])
    assert var1.item() == pytest.approx(5 / 3) and var0.item() == pytest.approx(1.25)
    assert std1.item() == pytest.approx(math.sqrt(5 / 3))


@pytest.mark.parametrize(
    "fn, shape",
    [
        (lambda x: F.layer_norm(x, (768,)), (4, 768)),
        (lambda x: F.layer_norm(x, (4, 16), torch.ones(4, 16), torch.zeros(4, 16)), (2, 4, 16)),
        (lambda x: F.group_norm(x, 4, torch.ones(16), torch.zeros(16)), (2, 16, 17, 17)),
        (lambda x: torch.var_mean(x, 1), (4, 5000)),
    ],
    ids=["layer_norm", "layer_norm_affine_2d", "group_norm", "var_mean"],
)
def test_f32_statistics_lower_without_f64(fn, shape):
    gm = make_fx(fn, decomposition_table=aten_decompositions())(torch.randn(shape))
    text = import_fx_graph(gm, form="linalg")
    assert "f64" not in text


# --- the dynamic-shape path re-traces the decomposed graph --------------------------------


def test_semantics_hold_for_a_second_shape():
    torch._dynamo.reset()
    fn = lambda x: (x.argmax(1), x.clamp(-1, 1), x.relu(), x.cumsum(1), torch.var_mean(x, 1))  # noqa: E731
    compiled = torch.compile(fn, backend="mlirforge")
    for rows in (4, 6):
        x = nan_row()
        x = torch.cat([x, x])[:rows]
        x[1, 3] = -0.0
        before = mlirforge.stats().iree_calls
        r = check_against_eager(compiled, fn, [x])
        assert r.ok, r.message
        assert mlirforge.stats().iree_calls > before
        assert r.actual[0][0] == 5 and r.actual[2][1, 3].signbit()
