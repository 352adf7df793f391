"""Decompositions of PyTorch's fused inference fast paths, which torch-mlir cannot lower.

`FUSED_OP_DECOMPOSITIONS` maps an ATen overload to a Python function written
in other ATen ops; `fx_import.aten_decompositions` applies it.

In eval mode under `torch.no_grad()`, `nn.TransformerEncoderLayer` (and so
every layer of `nn.TransformerEncoder`) calls `aten._transformer_encoder_layer_fwd`,
a single fused op for the whole layer; dynamo captures it as one node. Each
function here follows the CPU kernel of its op (aten/src/ATen/native/
transformers/transformer.cpp and attention.cpp, aten/src/ATen/native/SoftMax.cpp):

- `_native_multi_head_attention`: q, k, v = x @ W_{q,k,v}^T; bias added, then q
  scaled by 1/sqrt(head_dim) (`_transform_bias_rescale_qkv`); scores = q k^T;
  the mask, of any dtype, is made boolean (`mask.to(bool)`: nonzero, NaN
  included, means masked) and applied by `_masked_softmax` (masked keys get
  no weight; a row with every key masked is NaN, as on CPU); the context goes
  through the output projection. The weights are returned only with
  `need_weights` (summed over heads and divided by their count with
  `average_attn_weights`); without them the second output is None, as eager
  returns it (the op's fake implementation says an empty tensor; aot_autograd
  takes the None as eager's `aot_eager` does).
- `_transformer_encoder_layer_fwd`: the layer around it, post-norm or
  `norm_first`, one eps for both layer norms, FFN relu or exact gelu
  (`_addmm_activation`).
- `_masked_softmax`: mask_type 0 = an (L, L) attention mask, 1 = a (B, L)
  key padding mask, 2 = a mask of the input's own shape (also what any mask
  that is not 2-D, or any input that is not 4-D, is taken as).

`nn.MultiheadAttention` itself never takes its fast path under dynamo (dynamo
answers `_is_make_fx_tracing()` with True), so it arrives as plain ops; a
direct call of `torch._native_multi_head_attention` arrives as the fused op.
Nested tensors (`nn.TransformerEncoder(enable_nested_tensor=True)` with a
key padding mask) are not made under torch.compile while the encoder's
`mask_check` is on (the default): the layers run on the padded batch with the
padding mask, so padded positions hold computed values where eager's nested
path leaves zeros (PyTorch's behaviour under any backend). With
`mask_check=False` the encoder does build a nested tensor, which dynamo cannot
trace: that frame runs in eager PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.fx.experimental.symbolic_shapes import guard_or_false

aten = torch.ops.aten


def _as_bool_mask(mask: torch.Tensor) -> torch.Tensor:
    """`mask.to(torch.bool)`, as attention.cpp's `masked_softmax` converts a non-boolean mask."""
    return mask if mask.dtype == torch.bool else aten.ne.Scalar(mask, 0)


def _broadcast_mask(
    scores: torch.Tensor, mask: torch.Tensor, mask_type: int | None
) -> torch.Tensor:
    """The mask as a tensor broadcastable to `scores`, with SoftMax.cpp's shape rules."""
    if mask.dim() != 2 or scores.dim() != 4:
        mask_type = 2  # types 0 and 1 only exist for 2-D masks on 4-D inputs
    if mask_type == 2:
        if tuple(mask.shape) != tuple(scores.shape):
            raise RuntimeError("For mask_type == 2 mask shape should match input shape")
        return mask
    if mask_type == 1:
        batch, _, length, _ = scores.shape
        if mask.shape[0] != batch or mask.shape[1] != length:
            raise RuntimeError("For mask_type == 1 mask shape should be (B, L)")
        return aten.view.default(mask, [mask.shape[0], 1, 1, mask.shape[1]])
    if mask_type == 0:
        length = scores.shape[2]
        if mask.shape[0] != length or mask.shape[1] != length:
            raise RuntimeError("For mask_type == 0 mask shape should be (L, L)")
        return aten.view.default(mask, [1, 1, mask.shape[0], mask.shape[1]])
    if mask_type is None:
        raise RuntimeError("Mask Type should be defined")
    raise RuntimeError(f"unknown mask_type {mask_type} for a masked softmax")


def _softmax_with_mask(scores: torch.Tensor, mask: torch.Tensor, dim: int, mask_type: int | None):
    """Softmax over `dim` with the True entries of the boolean `mask` left out."""
    mask = _broadcast_mask(scores, mask, mask_type)
    masked = aten.masked_fill.Scalar(scores, mask, float("-inf"))
    return aten._softmax.default(masked, dim, False)


def masked_softmax(
    self: torch.Tensor, mask: torch.Tensor, dim: int | None = None, mask_type: int | None = None
) -> torch.Tensor:
    """`aten._masked_softmax`: `mask` must be boolean; True = left out."""
    if mask.dtype != torch.bool:
        raise RuntimeError("Mask should be a boolean tensor")
    if self.dim() == 0:
        return aten._softmax.default(self, 0, False)
    dim = self.dim() - 1 if dim is None else dim
    dim = dim + self.dim() if dim < 0 else dim
    return _softmax_with_mask(self, mask, dim, mask_type)


def _linear_nt(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight^T for a 3-D x (attention.cpp's `gemm_nt`), without bias."""
    batch, length, features = x.shape
    flat = aten.view.default(x, [batch * length, features])
    out = aten.mm.default(flat, aten.t.default(weight))
    return aten.view.default(out, [batch, length, weight.shape[0]])


def _heads(x: torch.Tensor, num_head: int, head_dim: int) -> torch.Tensor:
    """[B, T, D] -> [B, num_head, T, head_dim]."""
    batch, length, _ = x.shape
    split = aten.view.default(x, [batch, length, num_head, head_dim])
    return aten.permute.default(split, [0, 2, 1, 3])


def native_multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    embed_dim: int,
    num_head: int,
    qkv_weight: torch.Tensor,
    qkv_bias: torch.Tensor,
    proj_weight: torch.Tensor,
    proj_bias: torch.Tensor,
    mask: torch.Tensor | None = None,
    need_weights: bool = True,
    average_attn_weights: bool = True,
    mask_type: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`aten._native_multi_head_attention` (batch first: query [B, T, D])."""
    if query.dim() != 3:
        raise RuntimeError(f"expected 3-D `query`, got {query.dim()}-D tensor")
    if guard_or_false(query.numel() == 0):
        return aten.empty_like.default(query), None
    head_dim = embed_dim // num_head
    batch, length, _ = query.shape

    # Projections (qkv_projection), then bias and 1/sqrt(head_dim) on q
    # (_transform_bias_rescale_qkv).
    w_q, w_k, w_v = aten.split.Tensor(qkv_weight, embed_dim, 0)
    b_q, b_k, b_v = aten.split.Tensor(qkv_bias, embed_dim, 0)
    if query is key and key is value:
        q, k, v = aten.split.Tensor(_linear_nt(query, qkv_weight), embed_dim, 2)
    else:
        q, k, v = _linear_nt(query, w_q), _linear_nt(key, w_k), _linear_nt(value, w_v)
    scale = 1.0 / math.sqrt(head_dim)
    q = aten.mul.Tensor(aten.add.Tensor(q, b_q), scale)
    k = aten.add.Tensor(k, b_k)
    v = aten.add.Tensor(v, b_v)
    q, k, v = (_heads(t, num_head, head_dim) for t in (q, k, v))

    # [B, H, T, S] scores; the masked softmax over keys.
    scores = aten.matmul.default(q, aten.transpose.int(k, 2, 3))
    if mask is None:
        weights = aten._softmax.default(scores, 3, False)
    else:
        weights = _softmax_with_mask(scores, _as_bool_mask(mask), 3, mask_type)

    # [B, H, T, head_dim] -> [B, T, D] -> output projection.
    context = aten.matmul.default(weights, v)
    context = aten.permute.default(context, [0, 2, 1, 3])
    context = aten.reshape.default(context, [batch * length, embed_dim])
    out = aten.addmm.default(proj_bias, context, aten.t.default(proj_weight))
    out = aten.view.default(out, [batch, length, proj_weight.shape[0]])

    if not need_weights:
        return out, None
    if average_attn_weights:
        weights = aten.div.Scalar(aten.sum.dim_IntList(weights, [1]), num_head)
    return out, weights


def transformer_encoder_layer_fwd(
    src: torch.Tensor,
    embed_dim: int,
    num_heads: int,
    qkv_weight: torch.Tensor,
    qkv_bias: torch.Tensor,
    proj_weight: torch.Tensor,
    proj_bias: torch.Tensor,
    use_gelu: bool,
    norm_first: bool,
    eps: float,
    norm_weight_1: torch.Tensor,
    norm_bias_1: torch.Tensor,
    norm_weight_2: torch.Tensor,
    norm_bias_2: torch.Tensor,
    ffn_weight_1: torch.Tensor,
    ffn_bias_1: torch.Tensor,
    ffn_weight_2: torch.Tensor,
    ffn_bias_2: torch.Tensor,
    mask: torch.Tensor | None = None,
    mask_type: int | None = None,
) -> torch.Tensor:
    """`aten._transformer_encoder_layer_fwd` (batch first: src [B, T, D])."""
    if guard_or_false(src.numel() == 0):
        return aten.clone.default(src)
    if src.dim() != 3:
        raise RuntimeError("batched input size should be 3")

    def norm(x, weight, bias):
        return aten.native_layer_norm.default(x, [embed_dim], weight, bias, eps)[0]

    x = src
    if norm_first:
        x = norm(x, norm_weight_1, norm_bias_1)
    x = native_multi_head_attention(
        x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
        mask, False, True, mask_type,
    )[0]
    x = aten.add.Tensor(x, src)
    if not norm_first:
        x = norm(x, norm_weight_1, norm_bias_1)
    residual = x
    if norm_first:
        x = norm(x, norm_weight_2, norm_bias_2)

    # ffn: addmm + relu/gelu (_addmm_activation), addmm.
    batch, length, _ = x.shape
    flat = aten.view.default(x, [batch * length, x.shape[2]])
    h = aten.addmm.default(ffn_bias_1, flat, aten.t.default(ffn_weight_1))
    h = aten.gelu.default(h) if use_gelu else aten.relu.default(h)
    h = aten.addmm.default(ffn_bias_2, h, aten.t.default(ffn_weight_2))
    x = aten.add.Tensor(aten.view.default(h, [batch, length, ffn_weight_2.shape[0]]), residual)
    if not norm_first:
        x = norm(x, norm_weight_2, norm_bias_2)
    return x


FUSED_OP_DECOMPOSITIONS: dict[torch._ops.OperatorBase, Callable] = {
    aten._transformer_encoder_layer_fwd.default: transformer_encoder_layer_fwd,
    aten._native_multi_head_attention.default: native_multi_head_attention,
    aten._masked_softmax.default: masked_softmax,
}
