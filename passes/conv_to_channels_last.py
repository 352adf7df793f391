"""mlirforge-conv-to-channels-last: run NCHW convolutions in the NHWC layout.

PyTorch convolutions reach us as `linalg.conv_2d_nchw_fchw`. Each one on
tensors becomes

    transpose(image, NCHW -> NHWC), transpose(filter, FCHW -> HWCF),
    transpose(init, NCHW -> NHWC), linalg.conv_2d_nhwc_hwcf (same strides and
    dilations), transpose(result, NHWC -> NCHW)

so the convolution's reduction over channels reads contiguous memory, the
layout IREE's CPU codegen (im2col, vectorisation along C) handles best. The
transposes are elementwise: IREE fuses them into neighbours, propagates them
through elementwise chains, cancels the ones that meet their inverse, and a
transposed weight that is a constant is transposed once at compile time.
With `filter-layout=fhwc` the filter goes to FHWC and the op is
`linalg.conv_2d_nhwc_fhwc` instead. Other convolutions (already channels-last,
grouped, quantized, depthwise) and convolutions on buffers are left alone;
so are the convolution's discardable attributes (a tiling configuration made
for the NCHW loops would not fit the new op).
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import op_name, walk_nested
from mlirforge.passes._base import ForgePass

NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]
# filter-layout -> (permutation from FCHW, named op class)
_FILTER_LAYOUTS = {
    "hwcf": ([2, 3, 1, 0], "Conv2DNhwcHwcfOp"),
    "fhwc": ([0, 2, 3, 1], "Conv2DNhwcFhwcOp"),
}


@dataclasses.dataclass(frozen=True)
class ConvToChannelsLastOptions:
    filter_layout: str = "hwcf"
    """Layout of the rewritten filter: `hwcf` (conv_2d_nhwc_hwcf) or `fhwc` (conv_2d_nhwc_fhwc)."""

    def __post_init__(self) -> None:
        if self.filter_layout not in _FILTER_LAYOUTS:
            known = ", ".join(_FILTER_LAYOUTS)
            raise ValueError(f"filter-layout must be one of {known} (got '{self.filter_layout}')")


class ConvToChannelsLastPass(ForgePass):
    name = "mlirforge-conv-to-channels-last"
    summary = "Rewrite linalg.conv_2d_nchw_fchw as transposes around a channels-last convolution"
    Options = ConvToChannelsLastOptions

    def run(self, module) -> None:
        for conv in self._convs(module):
            self._rewrite(conv)

    def schedule_space(self, module) -> dict[str, list]:
        return {"filter_layout": list(_FILTER_LAYOUTS)} if self._convs(module) else {}

    @staticmethod
    def _convs(module) -> list:
        found: list = []

        def visit(op) -> None:
            if op_name(op) == "linalg.conv_2d_nchw_fchw" and all(
                isinstance(v.type, ir.RankedTensorType) for v in op.operation.operands
            ):
                found.append(op)

        walk_nested(module, visit)
        return found

    def _rewrite(self, conv) -> None:
        from mlirforge.lowering.ir import linalg

        op = conv.operation
        image, filt, init = op.operands
        filter_perm, class_name = _FILTER_LAYOUTS[self.options.filter_layout]
        attrs = op.attributes
        with ir.InsertionPoint(op), op.location:
            image_t = _transpose(image, NCHW_TO_NHWC)
            filt_t = _transpose(filt, filter_perm)
            init_t = _transpose(init, NCHW_TO_NHWC)
            new = getattr(linalg, class_name)(
                [init_t.type],
                [image_t, filt_t],
                [init_t],
                strides=attrs["strides"] if "strides" in attrs else None,
                dilations=attrs["dilations"] if "dilations" in attrs else None,
            )
            linalg.fill_builtin_region(new.operation)
            result = _transpose(new.result, NHWC_TO_NCHW)
        op.results[0].replace_all_uses_with(result)
        op.erase()


def _transpose(value: "ir.Value", permutation: list[int]) -> "ir.Value":
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
    return linalg.transpose(value, outs=[empty], permutation=permutation).results[0]


def _index(i: int) -> "ir.Value":
    from mlirforge.lowering.ir import arith

    return arith.constant(ir.IndexType.get(), i)
