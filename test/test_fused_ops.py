"""PyTorch's fused transformer fast paths compile through their decompositions.

The decompositions live in lowering/fused_ops.py.

In eval mode under no_grad, `nn.TransformerEncoderLayer` reaches the backend
as one `aten._transformer_encoder_layer_fwd` node, which torch-mlir cannot
lower. Each test runs the model through the backend and checks that the output
matches eager (which takes the fast path itself), that nothing fell back
(no FallbackWarning, no eager graph), that IREE ran, and which fused ops were
decomposed on the way (a spy around each entry of FUSED_OP_DECOMPOSITIONS).
"""

from __future__ import annotations

import collections
import copy
import warnings

import pytest
import torch
from torch import nn

import mlirforge.backend as backend
from mlirforge.backend import FallbackWarning
from mlirforge.lowering.fused_ops import FUSED_OP_DECOMPOSITIONS
from mlirforge.lowering.graph_compiler import STATS
from mlirforge.numerics import check_against_eager

aten = torch.ops.aten
LAYER_OP = aten._transformer_encoder_layer_fwd.default
MHA_OP = aten._native_multi_head_attention.default
SOFTMAX_OP = aten._masked_softmax.default

D_MODEL, HEADS, FFN, BATCH, SEQ = 64, 4, 128, 2, 8


@pytest.fixture(autouse=True)
def decomposed(monkeypatch):
    """Counts calls of each fused-op decomposition."""
    calls: collections.Counter = collections.Counter()
    for op, fn in list(FUSED_OP_DECOMPOSITIONS.items()):
        def spy(*args, _op=op, _fn=fn, **kwargs):
            calls[_op] += 1
            return _fn(*args, **kwargs)

        monkeypatch.setitem(FUSED_OP_DECOMPOSITIONS, op, spy)
    return calls


def compile_and_check(model, call, inputs):
    """Compile `model`, compare `call(compiled, *inputs)` with `call(model, *inputs)` in no_grad.

    Returns the fallback warnings, the IREE calls and eager graphs it added.
    """
    torch.manual_seed(0)
    model = model.eval()
    compiled = torch.compile(model, backend="mlirforge")
    iree, eager = STATS.iree_calls, STATS.eager_graphs
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        r = check_against_eager(lambda *a: call(compiled, *a), lambda *a: call(model, *a), inputs)
    assert r.ok, r.message
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, FallbackWarning)]
    return fallbacks, STATS.iree_calls - iree, STATS.eager_graphs - eager


# IREE 3.13's data tiling fails on a graph where a bool (i1) input reaches the
# elementwise consumer of a matmul ("'linalg.pack' op expected padding_value has
# 'i8' but got: 'i1'"), with or without these decompositions (a plain
# nn.MultiheadAttention with a bool attn_mask hits it too); the backend then
# compiles that graph without data tiling and warns. No op falls back: where a
# test passes a bool mask, that one warning is tolerated. On AVX2 (Zen 3) the same
# i1 input fails differently: "'iree_codegen.load_from_buffer' op buffer and tensor
# shapes must be compatible and element types must match" (an i1 buffer read as i8).
def _data_tiling_i1_retry(message: str) -> bool:
    return (("linalg.pack" in message or "iree_codegen.load_from_buffer" in message)
            and "compiled without data tiling" in message)


def assert_compiled(result, bool_mask_input: bool = False):
    fallbacks, iree_calls, eager_graphs = result
    if bool_mask_input:
        fallbacks = [m for m in fallbacks if not _data_tiling_i1_retry(m)]
    assert not fallbacks, fallbacks
    assert iree_calls >= 1
    assert eager_graphs == 0


def layer(**kwargs):
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, batch_first=True, **kwargs)


def src():
    return torch.randn(BATCH, SEQ, D_MODEL, generator=torch.Generator().manual_seed(1))


def padding_mask(full_row: bool = False):
    """Left-aligned key padding (True = padded); optionally one batch element all padding."""
    mask = torch.zeros(BATCH, SEQ, dtype=torch.bool)
    mask[0, SEQ - 3 :] = True
    mask[1, SEQ - 1 :] = True
    if full_row:
        mask[1, :] = True
    return mask


def causal_float_mask():
    return torch.triu(torch.full((SEQ, SEQ), float("-inf")), 1)


def positional(model, x):
    return model(x)


# --- nn.TransformerEncoderLayer / nn.TransformerEncoder: aten._transformer_encoder_layer_fwd


@pytest.mark.parametrize(
    "norm_first,activation,eps",
    [(False, "relu", 1e-5), (False, "gelu", 1e-5), (True, "relu", 1e-5), (True, "gelu", 1e-2)],
)
def test_encoder_layer(decomposed, norm_first, activation, eps):
    model = layer(norm_first=norm_first, activation=activation, layer_norm_eps=eps)
    assert_compiled(compile_and_check(model, positional, [src()]))
    assert decomposed[LAYER_OP] >= 1


def test_encoder_of_two_layers(decomposed):
    torch.manual_seed(0)
    model = nn.TransformerEncoder(layer(), 2, enable_nested_tensor=False)
    assert_compiled(compile_and_check(model, positional, [src()]))
    assert decomposed[LAYER_OP] >= 2


def float_padding_mask():
    return torch.zeros(BATCH, SEQ).masked_fill(padding_mask(), float("-inf"))


@pytest.mark.parametrize(
    "masks",
    [
        {"src_mask": causal_float_mask()},  # expanded to [B, H, L, L] by merge_masks: mask_type 2
        {"src_mask": torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), 1)},
        {"src_key_padding_mask": padding_mask()},  # mask_type 1
        # Both of one dtype: a float and a bool mask together make PyTorch warn
        # (deprecated), a graph break in dynamo that leaves the layer eager.
        {"src_mask": causal_float_mask(), "src_key_padding_mask": float_padding_mask()},
    ],
    ids=["float_src_mask", "bool_src_mask", "key_padding_mask", "both"],
)
def test_encoder_layer_masks(decomposed, masks):
    names = sorted(masks)

    def call(model, x, *mask_values):
        return model(x, **dict(zip(names, mask_values)))

    result = compile_and_check(layer(), call, [src(), *(masks[n] for n in names)])
    assert_compiled(result, bool_mask_input=any(m.dtype == torch.bool for m in masks.values()))
    assert decomposed[LAYER_OP] >= 1


def test_encoder_layer_new_batch_size_dynamic(decomposed):
    """A second batch size makes dynamo trace symbolically; the decomposition must take SymInts."""
    model = layer().eval()
    compiled = torch.compile(model, backend="mlirforge")
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        for batch in (2, 3):
            x = torch.randn(batch, SEQ, D_MODEL)
            r = check_against_eager(compiled, model, [x])
            assert r.ok, f"batch {batch}: {r.message}"
    assert not [w for w in caught if issubclass(w.category, FallbackWarning)]
    assert decomposed[LAYER_OP] >= 2


def test_nested_tensor_encoder_with_padding_mask(decomposed):
    """enable_nested_tensor=True + padding mask: under torch.compile no nested tensor is made.

    With `mask_check` on (the default) the encoder skips its nested conversion
    while compiling, so each layer's fused op gets the padding mask (mask_type
    1) and the padded positions hold computed values, where eager's nested
    path writes zeros. The compiled output is therefore compared with eager on
    the same model with the nested path off (every position), and with nested
    eager on the positions that are not padding.
    """
    torch.manual_seed(0)
    model = nn.TransformerEncoder(layer(), 2).eval()
    assert model.use_nested_tensor
    flat = copy.deepcopy(model)
    flat.use_nested_tensor = False
    x, mask = src(), padding_mask()
    compiled = torch.compile(model, backend="mlirforge")
    iree, eager = STATS.iree_calls, STATS.eager_graphs
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        r = check_against_eager(lambda a, m: compiled(a, src_key_padding_mask=m),
                                lambda a, m: flat(a, src_key_padding_mask=m), [x, mask])
        nested = model(x, src_key_padding_mask=mask)
    assert r.ok, r.message
    assert not [w for w in caught if issubclass(w.category, FallbackWarning)]
    assert STATS.iree_calls > iree and STATS.eager_graphs == eager
    assert decomposed[LAYER_OP] >= 2
    kept = ~mask
    torch.testing.assert_close(r.actual[kept], nested[kept], rtol=1e-4, atol=1e-5)
    assert torch.all(nested[mask] == 0)


def test_nested_tensor_encoder_without_mask_check_runs_eagerly():
    """mask_check=False: the encoder builds a nested tensor; dynamo cannot trace that and
    runs the frame eagerly, which gives eager's result."""
    torch.manual_seed(0)
    model = nn.TransformerEncoder(layer(), 2, mask_check=False).eval()
    compiled = torch.compile(model, backend="mlirforge")
    with warnings.catch_warnings(), torch.no_grad():
        # dynamo's note on the untraceable builtin, PyTorch's nested-prototype note
        warnings.simplefilter("ignore")
        r = check_against_eager(lambda a, m: compiled(a, src_key_padding_mask=m),
                                lambda a, m: model(a, src_key_padding_mask=m),
                                [src(), padding_mask()])
    assert r.ok, r.message


# --- nn.MultiheadAttention and aten._native_multi_head_attention


@pytest.mark.parametrize(
    "masks",
    [{}, {"attn_mask": torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), 1)},
     {"key_padding_mask": padding_mask()}],
    ids=["no_mask", "attn_mask", "key_padding_mask"],
)
def test_multihead_attention_module(masks):
    """Self-attention, need_weights=False. Dynamo never takes this module's fast path
    (it answers `_is_make_fx_tracing()` with True), so it arrives as plain ops; eager takes it."""
    torch.manual_seed(0)
    model = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True)
    names = sorted(masks)

    def call(m, x, *mask_values):
        return m(x, x, x, need_weights=False, **dict(zip(names, mask_values)))[0]

    result = compile_and_check(model, call, [src(), *(masks[n] for n in names)])
    assert_compiled(result, bool_mask_input=bool(masks))


class FusedAttention(nn.Module):
    """Calls the fast-path op directly, as nn.MultiheadAttention's fast path does."""

    def __init__(self, need_weights: bool, average: bool, mask_type: int | None,
                 cross: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.attn = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True)
        self.need_weights, self.average = need_weights, average
        self.mask_type, self.cross = mask_type, cross

    def forward(self, x, memory=None, mask=None):
        a = self.attn
        key = memory if self.cross else x
        return torch._native_multi_head_attention(
            x, key, key, D_MODEL, HEADS, a.in_proj_weight, a.in_proj_bias,
            a.out_proj.weight, a.out_proj.bias, mask,
            self.need_weights, self.average, self.mask_type,
        )


def _odd_float_mask():
    """A float mask: the op makes it boolean, so 0.5 masks like -inf does."""
    g = torch.Generator().manual_seed(2)
    values = torch.tensor([0.0, 0.5, float("-inf")])
    mask = values[torch.randint(0, 3, (BATCH, HEADS, SEQ, SEQ), generator=g)]
    mask[..., 0] = 0.0  # every row keeps a key
    return mask


@pytest.mark.parametrize(
    "need_weights,average,mask_type,mask",
    [
        (False, True, None, None),
        (True, True, 1, padding_mask(full_row=True)),  # the all-padding row is NaN, as on CPU
        (True, False, 0, torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), 1)),
        (False, True, 2, _odd_float_mask()),
    ],
    ids=["plain", "avg_weights_padding_mask", "per_head_weights_src_mask", "float_generic_mask"],
)
def test_native_multi_head_attention(decomposed, need_weights, average, mask_type, mask):
    model = FusedAttention(need_weights, average, mask_type)
    result = compile_and_check(model, lambda m, x, k: m(x, mask=k), [src(), mask])
    assert_compiled(result, bool_mask_input=mask is not None and mask.dtype == torch.bool)
    assert decomposed[MHA_OP] >= 1


def test_native_multi_head_attention_cross(decomposed):
    model = FusedAttention(True, True, None, cross=True)
    memory = torch.randn(BATCH, SEQ, D_MODEL)
    assert_compiled(compile_and_check(model, lambda m, x, y: m(x, y), [src(), memory]))
    assert decomposed[MHA_OP] >= 1


class MaskedSoftmax(nn.Module):
    def forward(self, scores, src_mask, padding, generic):
        return (
            torch._masked_softmax(scores, src_mask, 3, 0),
            torch._masked_softmax(scores, padding, 3, 1),
            torch._masked_softmax(scores, generic, 2, 2),
            torch._masked_softmax(scores, padding, 2, 1),  # not the last dim: the mask is expanded
        )


def test_masked_softmax(decomposed):
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(BATCH, HEADS, SEQ, SEQ, generator=g)
    inputs = [scores, torch.rand(SEQ, SEQ, generator=g) < 0.3, padding_mask(full_row=True),
              torch.rand(BATCH, HEADS, SEQ, SEQ, generator=g) < 0.3]
    result = compile_and_check(MaskedSoftmax(), lambda m, *a: m(*a), inputs)
    assert_compiled(result, bool_mask_input=True)
    assert decomposed[SOFTMAX_OP] >= 1


# --- the fused ops really are in the captured graph


@pytest.mark.parametrize(
    "op,make_model,call",
    [
        (LAYER_OP, layer, positional),
        (MHA_OP, lambda: FusedAttention(False, True, None), lambda m, x: m(x)[0]),
    ],
    ids=["encoder_layer", "multi_head_attention"],
)
def test_without_decomposition_the_op_falls_back(monkeypatch, op, make_model, call):
    """Guards the tests above: without its decomposition the fused op reaches torch-mlir
    and runs eagerly."""
    monkeypatch.delitem(FUSED_OP_DECOMPOSITIONS, op)
    fallbacks, _, eager_graphs = compile_and_check(make_model(), call, [src()])
    name = op.name().replace("::", ".")
    assert any(name in message for message in fallbacks), fallbacks
    assert eager_graphs >= 1
