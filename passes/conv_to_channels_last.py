"""mlirforge-conv-to-channels-last: run channels-first convolutions in the channels-last layout.

PyTorch convolutions reach us channels-first (`linalg.conv_2d_nchw_fchw` and
its 1-D, 3-D, depthwise and grouped relatives). Each one on tensors becomes

    image, filter and init transposed to channels-last, the channels-last op
    (same strides and dilations), the result transposed back

so the convolution's reduction over channels reads contiguous memory, the
layout IREE's CPU codegen vectorises best. The transposes are elementwise:
IREE fuses them into neighbours, cancels the ones that meet their inverse,
and a constant weight is transposed once at compile time.

Where the image is padded (`tensor.pad`, PyTorch's `padding=`) or scattered
into a zero tensor (`tensor.insert_slice` with strides, how torch-mlir lowers
a transposed convolution), the transpose is moved above the padding: the
source is transposed and padded channels-last. A transpose *of* a padded
tensor is a dispatch IREE cannot fuse with the pad; measured on a 3x3
convolution 8x32x32x32 -> 64 (AVX-512, one core): 50 ms with the transpose
below the pad, 2.9 ms above it, 3.7-4.6 ms untouched NCHW.

| channels-first op | channels-last op |
|---|---|
| conv_1d_ncw_fcw | conv_1d_nwc_wcf; static shapes: one matmul per filter tap |
| conv_2d_nchw_fchw | conv_2d_nhwc_hwcf (`filter-layout=fhwc`: conv_2d_nhwc_fhwc) |
| conv_3d_ncdhw_fcdhw | conv_3d_ndhwc_dhwcf; static shapes: one conv_2d_nhwc_hwcf per depth tap |
| depthwise_conv_2d_nchw_chw | depthwise_conv_2d_nhwc_hwc |
| conv_2d_ngchw_gfchw (grouped) | conv_2d_nhwgc_gfhwc; static shapes with 2+ channels per group and up to 25 taps: one batch matmul over groups per filter tap |

Other convolutions (already channels-last, quantized) and convolutions on
buffers are left alone; so are the convolution's discardable attributes (a
tiling configuration made for the channels-first loops would not fit the new
op).
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import op_name, walk_nested
from mlirforge.passes._base import ForgePass


@dataclasses.dataclass(frozen=True)
class _ConvClass:
    """How one channels-first convolution maps to its channels-last twin.

    `image_perm` takes the image (and init and result) from channels-first to
    channels-last; `filter_perm` does the same for the filter; `op_class` is
    the builder's name in `linalg`.
    """

    image_perm: tuple[int, ...]
    filter_perm: tuple[int, ...]
    op_class: str


_CONV_CLASSES = {
    "linalg.conv_1d_ncw_fcw": _ConvClass((0, 2, 1), (2, 1, 0), "Conv1DNwcWcfOp"),
    "linalg.conv_2d_nchw_fchw": _ConvClass((0, 2, 3, 1), (2, 3, 1, 0), "Conv2DNhwcHwcfOp"),
    "linalg.conv_3d_ncdhw_fcdhw": _ConvClass((0, 2, 3, 4, 1), (2, 3, 4, 1, 0), "Conv3DNdhwcDhwcfOp"),
    "linalg.depthwise_conv_2d_nchw_chw": _ConvClass((0, 2, 3, 1), (1, 2, 0), "DepthwiseConv2DNhwcHwcOp"),
    "linalg.conv_2d_ngchw_gfchw": _ConvClass((0, 3, 4, 1, 2), (0, 1, 3, 4, 2), "Conv2DNhwgcGfhwcOp"),
}
# A static grouped 2-D convolution runs as batch matmuls over groups: image and init go (g, n, h, w, c),
# the filter (g, kh, kw, c, f). IREE's conv_2d_nhwgc_gfhwc runs at ~4 GFLOP/s (docs/convolutions.md).
# (op_class names no single op here: `_grouped_conv_2d_as_batch_matmul_taps` builds the chain.)
_GROUPED_AS_TAPS = _ConvClass((1, 0, 3, 4, 2), (0, 3, 4, 2, 1), "")
_GROUPED_MAX_TAPS = 25
"""Filter taps (kh * kw) up to which a grouped convolution runs as batch matmuls: each tap is one more
matmul for iree-compile (Conv2d(16, 32, 7, groups=2): first call 12.2 s against 2.3 s; 11x11: 23.5 s),
though each runs faster (11x11: 6.5 against 39.9 ms)."""


def _grouped_taps_pay(filt) -> bool:
    """Whether batch matmuls beat IREE's grouped op for this filter (g, f, c, kh, kw), as measured: not with one
    input channel per group (K = 1 matmuls: Conv2d(2, 64, 3, groups=2) 57-63 ms against 19.5-20), nor past
    `_GROUPED_MAX_TAPS` (compile time); with two channels per group they win (Conv2d(16, 32, 3, groups=8):
    2.8 against 4.8-5.8 ms)."""
    _, _, c, kh, kw = ir.RankedTensorType(filt.type).shape
    return c > 1 and kh * kw <= _GROUPED_MAX_TAPS
# filter-layout -> the 2-D op's class (other convolutions have one channels-last form)
_FILTER_LAYOUTS = {
    "hwcf": _CONV_CLASSES["linalg.conv_2d_nchw_fchw"],
    "fhwc": _ConvClass((0, 2, 3, 1), (0, 2, 3, 1), "Conv2DNhwcFhwcOp"),
}


@dataclasses.dataclass(frozen=True)
class ConvToChannelsLastOptions:
    filter_layout: str = "hwcf"
    """Filter layout of the rewritten 2-D convolution: `hwcf` (conv_2d_nhwc_hwcf) or `fhwc` (conv_2d_nhwc_fhwc)."""

    def __post_init__(self) -> None:
        if self.filter_layout not in _FILTER_LAYOUTS:
            known = ", ".join(_FILTER_LAYOUTS)
            raise ValueError(f"filter-layout must be one of {known} (got '{self.filter_layout}')")


class ConvToChannelsLastPass(ForgePass):
    name = "mlirforge-conv-to-channels-last"
    summary = "Rewrite channels-first convolutions as transposes around a channels-last convolution"
    Options = ConvToChannelsLastOptions

    def run(self, module) -> None:
        for conv in channels_first_convs(module):
            self._rewrite(conv)

    def schedule_space(self, module) -> dict[str, list]:
        has_2d = any(op_name(c) == "linalg.conv_2d_nchw_fchw" for c in channels_first_convs(module))
        return {"filter_layout": list(_FILTER_LAYOUTS)} if has_2d else {}

    def _rewrite(self, conv) -> None:
        from mlirforge.lowering.ir import linalg

        op = conv.operation
        image, filt, init = op.operands
        name = op_name(conv)
        cls = _FILTER_LAYOUTS[self.options.filter_layout] if name == "linalg.conv_2d_nchw_fchw" else _CONV_CLASSES[name]
        # With static shapes 1-D, 3-D and grouped convolutions run as chains of per-tap ops that IREE
        # compiles far better than its own 1-D/3-D/grouped convolution ops.
        as_taps = _all_static(image, filt, init) and name in _AS_TAPS
        if as_taps and name == "linalg.conv_2d_ngchw_gfchw":
            as_taps = _grouped_taps_pay(filt)
            cls = _GROUPED_AS_TAPS if as_taps else cls
        attrs = op.attributes
        strides = attrs["strides"] if "strides" in attrs else None
        dilations = attrs["dilations"] if "dilations" in attrs else None
        with ir.InsertionPoint(op), op.location:
            image_t = _channels_last(image, cls.image_perm)
            filt_t = _transpose(filt, cls.filter_perm)
            init_t = _channels_last(init, cls.image_perm)
            if as_taps:
                out = _AS_TAPS[name](image_t, filt_t, init_t, strides, dilations)
            else:
                conv_op = getattr(linalg, cls.op_class)(
                    [init_t.type], [image_t, filt_t], [init_t], strides=strides, dilations=dilations)
                linalg.fill_builtin_region(conv_op.operation)
                out = conv_op.result
            result = _transpose(out, _inverse(cls.image_perm))
        # The producers the rewrite bypassed, gathered before anything is erased: the image's and
        # the init's chains can share ops (a transposed convolution's zero fill is both the
        # scatter's destination and the init), and an erased op must not be visited again.
        bypassed = _producer_chain(image) + _producer_chain(init)
        op.results[0].replace_all_uses_with(result)
        op.erase()
        _erase_dead(bypassed)


def channels_first_convs(module) -> list:
    """The convolutions on ranked tensors the pass rewrites, in walk order."""
    found: list = []

    def visit(op) -> None:
        if op_name(op) in _CONV_CLASSES and all(isinstance(v.type, ir.RankedTensorType) for v in op.operation.operands):
            found.append(op)

    walk_nested(module, visit)
    return found


def convs_to_channels_last(mlir_text: str, debug_info: bool = False) -> str:
    """The compile stage `channels-last` (`lowering.stages`): the pass on MLIR text, text back.

    Raises `LoweringError` (stage `channels-last`, with a reproducer) when the
    text does not parse or the result does not verify.
    """
    from mlirforge.passes._base import run_as_compile_stage

    return run_as_compile_stage("channels-last", ConvToChannelsLastPass(), mlir_text, debug_info,
                                triggers=tuple(_CONV_CLASSES))


_BYPASSABLE = ("tensor.pad", "tensor.insert_slice", "linalg.fill", "tensor.empty")


def _producer_chain(value: "ir.Value") -> list:
    """The pad/insert/fill/empty ops that `_channels_last` may have bypassed to produce `value`."""
    owner = value.owner if isinstance(value, ir.OpResult) else None
    if owner is None or owner.name not in _BYPASSABLE:
        return []
    chain = [owner]
    for operand in owner.operands:
        chain += _producer_chain(operand)
    return chain


def _erase_dead(ops: list) -> None:
    """Erase each op of `ops` (duplicates allowed) once nothing reads it, users before producers."""
    alive = []
    for op in ops:
        if not any(op == seen for seen in alive):
            alive.append(op)
    erased = True
    while erased:
        erased = False
        for op in list(alive):
            if not any(True for _ in op.results[0].uses):
                alive.remove(op)
                op.erase()
                erased = True


def _all_static(*values) -> bool:
    """Static and non-empty: the per-tap rewrites build static slices (a zero-size one is out of bounds)."""
    return all(ir.RankedTensorType(v.type).has_static_shape and 0 not in ir.RankedTensorType(v.type).shape
               for v in values)


def _conv_3d_as_2d_taps(image, filt, init, strides, dilations) -> "ir.Value":
    """conv_3d_ndhwc_dhwcf as a chain of conv_2d_nhwc_hwcf, one per depth tap of the filter.

    out[n, d] = sum over kd of conv2d(image[n, d * stride + kd * dilation], filt[kd]):
    for each kd the image's depth slice (strided) is folded into the batch,
    and each 2-D convolution accumulates into the previous one's result.
    IREE's CPU codegen runs `conv_3d_ndhwc_dhwcf` at ~5 GFLOP/s, its 2-D op
    at ~100 (c3d 2x16x16^3 -> 32, 3x3x3: 52 ms vs 2.6 ms one core). All
    shapes static.
    """
    from mlirforge.lowering.ir import linalg, tensor

    n, _, hp, wp, c = ir.RankedTensorType(image.type).shape
    kd_taps, kh, kw, _, f = ir.RankedTensorType(filt.type).shape
    _, d_out, h_out, w_out, _ = ir.RankedTensorType(init.type).shape
    element = ir.RankedTensorType(image.type).element_type
    acc_element = ir.RankedTensorType(init.type).element_type  # f16/bf16 convolutions accumulate in f32
    s = _ints(strides, 3)
    dl = _ints(dilations, 3)
    fold = [[0, 1], [2], [3], [4]]
    acc = tensor.CollapseShapeOp(ir.RankedTensorType.get([n * d_out, h_out, w_out, f], acc_element), init,
                                 _reassociation(fold)).result
    for kd in range(kd_taps):
        depth_slice = tensor.ExtractSliceOp(
            ir.RankedTensorType.get([n, d_out, hp, wp, c], element), image, [], [], [],
            [0, kd * dl[0], 0, 0, 0], [n, d_out, hp, wp, c], [1, s[0], 1, 1, 1]).result
        batch = tensor.CollapseShapeOp(ir.RankedTensorType.get([n * d_out, hp, wp, c], element), depth_slice,
                                       _reassociation(fold)).result
        tap = tensor.ExtractSliceOp(
            ir.RankedTensorType.get([kh, kw, c, f], ir.RankedTensorType(filt.type).element_type), filt, [], [], [],
            [kd, 0, 0, 0, 0], [1, kh, kw, c, f], [1, 1, 1, 1, 1]).result
        conv = linalg.Conv2DNhwcHwcfOp([acc.type], [batch, tap], [acc],
                                       strides=_vector_attr(s[1:]), dilations=_vector_attr(dl[1:]))
        linalg.fill_builtin_region(conv.operation)
        acc = conv.result
    return tensor.ExpandShapeOp(ir.RankedTensorType.get([n, d_out, h_out, w_out, f], acc_element), acc,
                                _reassociation(fold), [], [n, d_out, h_out, w_out, f]).result


def _conv_1d_as_matmul_taps(image, filt, init, strides, dilations) -> "ir.Value":
    """conv_1d_nwc_wcf as a chain of matmuls, one per filter tap.

    out[n, w] = sum over k of image[n, w * stride + k * dilation] @ filt[k]:
    for each k the image's (strided) slice is folded into rows, and each
    matmul accumulates into the previous one's result. IREE's CPU codegen
    runs `conv_1d_nwc_wcf` at ~14 GFLOP/s, its data-tiled matmuls far faster
    (c1d 16x64x512, k 3: 14.1 ms vs 4.9 ms one core). All shapes static.
    """
    from mlirforge.lowering.ir import linalg, tensor

    n, _, c = ir.RankedTensorType(image.type).shape
    taps, _, f = ir.RankedTensorType(filt.type).shape
    _, w_out, _ = ir.RankedTensorType(init.type).shape
    element = ir.RankedTensorType(image.type).element_type
    acc_element = ir.RankedTensorType(init.type).element_type  # f16/bf16 convolutions accumulate in f32
    (s,), (dl,) = _ints(strides, 1), _ints(dilations, 1)
    fold = [[0, 1], [2]]
    acc = tensor.CollapseShapeOp(ir.RankedTensorType.get([n * w_out, f], acc_element), init,
                                 _reassociation(fold)).result
    for k in range(taps):
        rows = tensor.ExtractSliceOp(ir.RankedTensorType.get([n, w_out, c], element), image, [], [], [],
                                     [0, k * dl, 0], [n, w_out, c], [1, s, 1]).result
        lhs = tensor.CollapseShapeOp(ir.RankedTensorType.get([n * w_out, c], element), rows,
                                     _reassociation(fold)).result
        rhs = tensor.ExtractSliceOp(ir.RankedTensorType.get([c, f], ir.RankedTensorType(filt.type).element_type),
                                    filt, [], [], [],
                                    [k, 0, 0], [1, c, f], [1, 1, 1]).result
        acc = linalg.matmul(lhs, rhs, outs=[acc])
    return tensor.ExpandShapeOp(ir.RankedTensorType.get([n, w_out, f], acc_element), acc, _reassociation(fold), [],
                                [n, w_out, f]).result


def _grouped_conv_2d_as_batch_matmul_taps(image, filt, init, strides, dilations) -> "ir.Value":
    """A grouped 2-D convolution, group-major, as a chain of batch matmuls (batch = group), one per tap.

    image (g, n, hp, wp, c), filt (g, kh, kw, c, f), init (g, n, ho, wo, f):
    out[g, n, y, x] = sum over (i, j) of image[g, n, y * sh + i * dh, x * sw + j * dw] @ filt[g, i, j]:
    for each tap the image's strided window is folded into rows (n * ho * wo),
    and each batch matmul accumulates into the previous one's result. IREE's
    `conv_2d_nhwgc_gfhwc` is its slowest convolution here (Conv2d 64->64, 3x3,
    groups 4, 8x64x32x32: 35 ms one core, eager's oneDNN 1.4 ms on two). All
    shapes static.
    """
    from mlirforge.lowering.ir import linalg, tensor

    g, n, _, _, c = ir.RankedTensorType(image.type).shape
    _, kh, kw, _, f = ir.RankedTensorType(filt.type).shape
    _, _, h_out, w_out, _ = ir.RankedTensorType(init.type).shape
    element = ir.RankedTensorType(image.type).element_type
    filt_element = ir.RankedTensorType(filt.type).element_type
    acc_element = ir.RankedTensorType(init.type).element_type
    sh, sw = _ints(strides, 2)
    dh, dw = _ints(dilations, 2)
    rows = n * h_out * w_out
    fold = [[0], [1, 2, 3], [4]]
    acc = tensor.CollapseShapeOp(ir.RankedTensorType.get([g, rows, f], acc_element), init,
                                 _reassociation(fold)).result
    for i in range(kh):
        for j in range(kw):
            window = tensor.ExtractSliceOp(
                ir.RankedTensorType.get([g, n, h_out, w_out, c], element), image, [], [], [],
                [0, 0, i * dh, j * dw, 0], [g, n, h_out, w_out, c], [1, 1, sh, sw, 1]).result
            lhs = tensor.CollapseShapeOp(ir.RankedTensorType.get([g, rows, c], element), window,
                                         _reassociation(fold)).result
            rhs = tensor.ExtractSliceOp(ir.RankedTensorType.get([g, c, f], filt_element), filt, [], [], [],
                                        [0, i, j, 0, 0], [g, 1, 1, c, f], [1, 1, 1, 1, 1]).result
            acc = linalg.batch_matmul(lhs, rhs, outs=[acc])
    return tensor.ExpandShapeOp(ir.RankedTensorType.get([g, n, h_out, w_out, f], acc_element), acc,
                                _reassociation(fold), [], [g, n, h_out, w_out, f]).result


# channels-first op -> its per-tap rewrite, taking the channels-last (image, filter, init, strides, dilations)
_AS_TAPS = {
    "linalg.conv_1d_ncw_fcw": _conv_1d_as_matmul_taps,
    "linalg.conv_3d_ncdhw_fcdhw": _conv_3d_as_2d_taps,
    "linalg.conv_2d_ngchw_gfchw": _grouped_conv_2d_as_batch_matmul_taps,
}


def _ints(attr, rank: int) -> list[int]:
    return [1] * rank if attr is None else [int(v) for v in ir.DenseIntElementsAttr(attr)]


def _vector_attr(values) -> "ir.DenseIntElementsAttr":
    import numpy as np

    i64 = ir.IntegerType.get_signless(64)
    return ir.DenseIntElementsAttr.get(np.array(values, dtype=np.int64), type=ir.VectorType.get([len(values)], i64))


def _reassociation(groups) -> "ir.ArrayAttr":
    i64 = ir.IntegerType.get_signless(64)
    return ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, d) for d in g]) for g in groups])


def _inverse(permutation) -> list[int]:
    inverse = [0] * len(permutation)
    for i, p in enumerate(permutation):
        inverse[p] = i
    return inverse


def _permuted(values, permutation) -> list:
    return [values[p] for p in permutation]


def _channels_last(value: "ir.Value", permutation) -> "ir.Value":
    """`value` permuted, with the permutation moved above a padding or a zero fill.

    A `tensor.pad` with static amounts and a padding value defined outside it
    becomes the same pad of the permuted source; a `tensor.insert_slice` with
    static offsets, sizes and strides becomes the insert of the permuted
    source into the permuted destination; a `linalg.fill` of a static
    `tensor.empty` becomes a fill of the permuted empty. Anything else gets a
    `linalg.transpose`. The original producers stay for their other users (and
    are erased later as dead code when there are none).
    """
    from mlirforge.lowering.ir import linalg, tensor

    owner = value.owner if isinstance(value, ir.OpResult) else None
    name = owner.name if owner is not None else ""
    if name == "tensor.pad" and _static_pad(owner):
        pad = owner.opview
        source = _channels_last(pad.source, permutation)
        low = _permuted(list(ir.DenseI64ArrayAttr(pad.static_low)), permutation)
        high = _permuted(list(ir.DenseI64ArrayAttr(pad.static_high)), permutation)
        result_type = _permuted_type(value.type, permutation)
        new = tensor.PadOp(result_type, source, [], [], low, high)
        block = new.region.blocks.append(*[ir.IndexType.get()] * len(permutation))
        with ir.InsertionPoint(block):
            tensor.YieldOp(pad.region.blocks[0].operations[0].operands[0])
        return new.result
    if name == "tensor.insert_slice" and _static_slice(owner):
        ins = owner.opview
        source = _channels_last(ins.source, permutation)
        dest = _channels_last(ins.dest, permutation)
        return tensor.InsertSliceOp(
            source, dest, [], [], [],
            _permuted(list(ir.DenseI64ArrayAttr(ins.static_offsets)), permutation),
            _permuted(list(ir.DenseI64ArrayAttr(ins.static_sizes)), permutation),
            _permuted(list(ir.DenseI64ArrayAttr(ins.static_strides)), permutation),
        ).result
    if name == "linalg.fill" and ir.RankedTensorType(value.type).has_static_shape:
        fill_value = owner.operands[0]
        shaped = _permuted_type(value.type, permutation)
        empty = tensor.empty(shaped.shape, shaped.element_type)
        return linalg.fill(fill_value, outs=[empty])
    return _transpose(value, permutation)


def _static_pad(op) -> bool:
    """A pad with static amounts whose region yields a value from outside it (a constant)."""
    pad = op.opview
    if len(pad.low) or len(pad.high):
        return False
    body = pad.region.blocks[0]
    ops = list(body.operations)
    if len(ops) != 1 or ops[0].name != "tensor.yield":
        return False
    yielded = ops[0].operands[0]  # the body is only the yield: anything but its own index arguments
    return not (isinstance(yielded, ir.BlockArgument) and yielded.owner == body)


def _static_slice(op) -> bool:
    ins = op.opview
    rank = ir.RankedTensorType(ins.dest.type).rank
    return (not len(ins.offsets) and not len(ins.sizes) and not len(ins.strides)
            and ir.RankedTensorType(ins.source.type).rank == rank)


def _permuted_type(type_: "ir.Type", permutation) -> "ir.RankedTensorType":
    source = ir.RankedTensorType(type_)
    return ir.RankedTensorType.get(_permuted(source.shape, permutation), source.element_type)


def _transpose(value: "ir.Value", permutation) -> "ir.Value":
    """`linalg.transpose` of a ranked tensor into a new `tensor.empty`.

    Dynamic sizes of the empty tensor are `tensor.dim`s of `value`.
    """
    from mlirforge.lowering.ir import linalg, tensor

    source = ir.RankedTensorType(value.type)
    sizes: list = []
    for p in permutation:
        if source.is_dynamic_dim(p):
            sizes.append(tensor.dim(value, _index(p)))
        else:
            sizes.append(source.get_dim_size(p))
    empty = tensor.empty(sizes, source.element_type)
    return linalg.transpose(value, outs=[empty], permutation=list(permutation)).results[0]


def _index(i: int) -> "ir.Value":
    from mlirforge.lowering.ir import arith

    return arith.constant(ir.IndexType.get(), i)
