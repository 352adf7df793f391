// RUN: mlirforge-opt --split-input-file %s -p mlirforge-conv-to-channels-last | FileCheck %s
// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-conv-to-channels-last{filter-layout=fhwc}' | FileCheck %s --check-prefix=FHWC

// The rewritten modules compute what the original computes: all print the same values.
// RUN: mlirforge compile %s -o %t.ref.vmfb
// RUN: mlirforge-opt %s -p mlirforge-conv-to-channels-last -o %t.hwcf.mlir
// RUN: mlirforge compile %t.hwcf.mlir -o %t.hwcf.vmfb
// RUN: mlirforge-opt %s -p 'mlirforge-conv-to-channels-last{filter-layout=fhwc}' -o %t.fhwc.mlir
// RUN: mlirforge compile %t.fhwc.mlir -o %t.fhwc.vmfb
// RUN: iree-run-module --module=%t.ref.vmfb --function=conv_bias --input="1x2x3x4xf32=1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24" --input="3x2x2x1xf32=1 0 2 -1 0 1 1 1 -1 2 0 1" --input="3xf32=0.5 -1 2" | FileCheck %s --check-prefix=BIAS
// RUN: iree-run-module --module=%t.hwcf.vmfb --function=conv_bias --input="1x2x3x4xf32=1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24" --input="3x2x2x1xf32=1 0 2 -1 0 1 1 1 -1 2 0 1" --input="3xf32=0.5 -1 2" | FileCheck %s --check-prefix=BIAS
// RUN: iree-run-module --module=%t.fhwc.vmfb --function=conv_bias --input="1x2x3x4xf32=1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24" --input="3x2x2x1xf32=1 0 2 -1 0 1 1 1 -1 2 0 1" --input="3xf32=0.5 -1 2" | FileCheck %s --check-prefix=BIAS
// RUN: iree-run-module --module=%t.ref.vmfb --function=conv_strided_dilated --input="1x1x5x5xf32=1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25" --input="1x1x2x2xf32=1 2 3 4" | FileCheck %s --check-prefix=STRIDED
// RUN: iree-run-module --module=%t.hwcf.vmfb --function=conv_strided_dilated --input="1x1x5x5xf32=1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25" --input="1x1x2x2xf32=1 2 3 4" | FileCheck %s --check-prefix=STRIDED

// BIAS: 1x3x2x4xf32={{\[\[\[}}10.5 12.5 14.5 16.5][18.5 20.5 22.5 24.5]]{{\[\[}}34 37 40 43][46 49 52 55]]{{\[\[}}28 30 32 34][36 38 40 42]]]
// STRIDED: 1x1x2x2xf32={{\[\[\[}}92 112][192 212]]]

// A PyTorch conv with bias: image, filter and the bias-filled init go
// channels-last, the result comes back to NCHW.
func.func @conv_bias(%x: tensor<1x2x3x4xf32>, %w: tensor<3x2x2x1xf32>, %b: tensor<3xf32>) -> tensor<1x3x2x4xf32> {
  %e = tensor.empty() : tensor<1x3x2x4xf32>
  %init = linalg.broadcast ins(%b : tensor<3xf32>) outs(%e : tensor<1x3x2x4xf32>) dimensions = [0, 2, 3]
  %conv = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x2x3x4xf32>, tensor<3x2x2x1xf32>) outs(%init : tensor<1x3x2x4xf32>) -> tensor<1x3x2x4xf32>
  return %conv : tensor<1x3x2x4xf32>
}
// CHECK-LABEL: func.func @conv_bias(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<1x2x3x4xf32>, %[[W:[^:]+]]: tensor<3x2x2x1xf32>, %[[B:[^:]+]]: tensor<3xf32>)
// CHECK:         %[[INIT:.+]] = linalg.broadcast ins(%[[B]]
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK-DAG:     %[[XT:.+]] = linalg.transpose ins(%[[X]] : tensor<1x2x3x4xf32>) outs(%{{.+}} : tensor<1x3x4x2xf32>) permutation = [0, 2, 3, 1]
// CHECK-DAG:     %[[WT:.+]] = linalg.transpose ins(%[[W]] : tensor<3x2x2x1xf32>) outs(%{{.+}} : tensor<2x1x2x3xf32>) permutation = [2, 3, 1, 0]
// CHECK-DAG:     %[[INITT:.+]] = linalg.transpose ins(%[[INIT]] : tensor<1x3x2x4xf32>) outs(%{{.+}} : tensor<1x2x4x3xf32>) permutation = [0, 2, 3, 1]
// CHECK:         %[[CONV:.+]] = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
// CHECK-SAME:      ins(%[[XT]], %[[WT]] : tensor<1x3x4x2xf32>, tensor<2x1x2x3xf32>) outs(%[[INITT]] : tensor<1x2x4x3xf32>)
// CHECK:         %[[OUT:.+]] = linalg.transpose ins(%[[CONV]] : tensor<1x2x4x3xf32>) outs(%{{.+}} : tensor<1x3x2x4xf32>) permutation = [0, 3, 1, 2]
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         return %[[OUT]]

// FHWC-LABEL:  func.func @conv_bias(
// FHWC-SAME:       %[[X:[^:]+]]: tensor<1x2x3x4xf32>, %[[W:[^:]+]]: tensor<3x2x2x1xf32>
// FHWC-NOT:      linalg.conv_2d_nchw_fchw
// FHWC-DAG:      %[[XT:.+]] = linalg.transpose ins(%[[X]] : {{.*}} permutation = [0, 2, 3, 1]
// FHWC-DAG:      %[[WT:.+]] = linalg.transpose ins(%[[W]] : tensor<3x2x2x1xf32>) outs(%{{.+}} : tensor<3x2x1x2xf32>) permutation = [0, 2, 3, 1]
// FHWC:          %[[CONV:.+]] = linalg.conv_2d_nhwc_fhwc {{.*}} ins(%[[XT]], %[[WT]] : tensor<1x3x4x2xf32>, tensor<3x2x1x2xf32>)
// FHWC:          %[[OUT:.+]] = linalg.transpose ins(%[[CONV]] : {{.*}} permutation = [0, 3, 1, 2]
// FHWC:          return %[[OUT]]

// -----

// A channels-last convolution is already what the pass makes: untouched.
func.func @no_rewrite_nhwc(%x: tensor<1x3x4x2xf32>, %w: tensor<2x1x2x3xf32>, %init: tensor<1x2x4x3xf32>) -> tensor<1x2x4x3xf32> {
  %conv = linalg.conv_2d_nhwc_hwcf ins(%x, %w : tensor<1x3x4x2xf32>, tensor<2x1x2x3xf32>) outs(%init : tensor<1x2x4x3xf32>) -> tensor<1x2x4x3xf32>
  return %conv : tensor<1x2x4x3xf32>
}
// CHECK-LABEL: func.func @no_rewrite_nhwc(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<1x3x4x2xf32>, %[[W:[^:]+]]: tensor<2x1x2x3xf32>, %[[INIT:[^:]+]]: tensor<1x2x4x3xf32>)
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.conv_2d_nhwc_hwcf ins(%[[X]], %[[W]] : {{.*}}) outs(%[[INIT]] :
// CHECK-NOT:     linalg.transpose

// -----

// Strides and dilations carry over to the channels-last op.
func.func @conv_strided_dilated(%x: tensor<1x1x5x5xf32>, %w: tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<1x1x2x2xf32>
  %zero = linalg.fill ins(%cst : f32) outs(%e : tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %conv = linalg.conv_2d_nchw_fchw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %w : tensor<1x1x5x5xf32>, tensor<1x1x2x2xf32>) outs(%zero : tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  return %conv : tensor<1x1x2x2xf32>
}
// CHECK-LABEL: func.func @conv_strided_dilated(
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         linalg.conv_2d_nhwc_hwcf {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>}

// -----

// The quantized NCHW convolution (zero points) is another op: untouched.
func.func @no_rewrite_quantized(%x: tensor<1x2x3x4xi8>, %w: tensor<3x2x2x1xi8>, %init: tensor<1x3x2x4xi32>) -> tensor<1x3x2x4xi32> {
  %zx = arith.constant 1 : i32
  %zw = arith.constant 2 : i32
  %conv = linalg.conv_2d_nchw_fchw_q ins(%x, %w, %zx, %zw : tensor<1x2x3x4xi8>, tensor<3x2x2x1xi8>, i32, i32) outs(%init : tensor<1x3x2x4xi32>) -> tensor<1x3x2x4xi32>
  return %conv : tensor<1x3x2x4xi32>
}
// CHECK-LABEL: func.func @no_rewrite_quantized(
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.conv_2d_nchw_fchw_q
// CHECK-NOT:     linalg.transpose

// -----

// Dynamic sizes of the transposed tensors come from tensor.dim.
func.func @conv_dynamic_batch(%x: tensor<?x2x3x4xf32>, %w: tensor<3x2x2x1xf32>, %init: tensor<?x3x2x4xf32>) -> tensor<?x3x2x4xf32> {
  %conv = linalg.conv_2d_nchw_fchw ins(%x, %w : tensor<?x2x3x4xf32>, tensor<3x2x2x1xf32>) outs(%init : tensor<?x3x2x4xf32>) -> tensor<?x3x2x4xf32>
  return %conv : tensor<?x3x2x4xf32>
}
// CHECK-LABEL: func.func @conv_dynamic_batch(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<?x2x3x4xf32>
// CHECK:         %[[C0:.+]] = arith.constant 0 : index
// CHECK:         %[[N:.+]] = tensor.dim %[[X]], %[[C0]]
// CHECK:         %[[EMPTY:.+]] = tensor.empty(%[[N]]) : tensor<?x3x4x2xf32>
// CHECK:         linalg.transpose ins(%[[X]] : tensor<?x2x3x4xf32>) outs(%[[EMPTY]] : tensor<?x3x4x2xf32>)
// CHECK:         linalg.conv_2d_nhwc_hwcf
// CHECK-SAME:      -> tensor<?x2x4x3xf32>
// CHECK-NOT:     linalg.conv_2d_nchw_fchw

// -----

// PyTorch's padding: the pad moves below the transpose (a transpose of a
// padded tensor is a dispatch IREE cannot fuse with the pad), and the old pad
// is gone.
func.func @conv_padded(%x: tensor<1x2x3x4xf32>, %w: tensor<3x2x3x3xf32>, %init: tensor<1x3x3x4xf32>) -> tensor<1x3x3x4xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %cst : f32
  } : tensor<1x2x3x4xf32> to tensor<1x2x5x6xf32>
  %conv = linalg.conv_2d_nchw_fchw ins(%p, %w : tensor<1x2x5x6xf32>, tensor<3x2x3x3xf32>) outs(%init : tensor<1x3x3x4xf32>) -> tensor<1x3x3x4xf32>
  return %conv : tensor<1x3x3x4xf32>
}
// CHECK-LABEL: func.func @conv_padded(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<1x2x3x4xf32>
// CHECK-NOT:     tensor.pad %[[X]]
// CHECK:         %[[XT:.+]] = linalg.transpose ins(%[[X]] : tensor<1x2x3x4xf32>) {{.*}} permutation = [0, 2, 3, 1]
// CHECK:         %[[P:.+]] = tensor.pad %[[XT]] low[0, 1, 1, 0] high[0, 1, 1, 0]
// CHECK:         } : tensor<1x3x4x2xf32> to tensor<1x5x6x2xf32>
// CHECK:         linalg.conv_2d_nhwc_hwcf ins(%[[P]], {{.*}} : tensor<1x5x6x2xf32>, tensor<3x3x2x3xf32>)
// CHECK-NOT:     tensor.pad %[[X]]

// -----

// A transposed convolution reaches us as a strided insert into zeros: the
// insert, its zero-filled destination and its source all go channels-last.
func.func @conv_transposed_input(%x: tensor<1x2x3x3xf32>, %w: tensor<3x2x2x2xf32>, %init: tensor<1x3x6x6xf32>) -> tensor<1x3x6x6xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<1x2x7x7xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<1x2x7x7xf32>) -> tensor<1x2x7x7xf32>
  %s = tensor.insert_slice %x into %z[0, 0, 1, 1] [1, 2, 3, 3] [1, 1, 2, 2] : tensor<1x2x3x3xf32> into tensor<1x2x7x7xf32>
  %conv = linalg.conv_2d_nchw_fchw ins(%s, %w : tensor<1x2x7x7xf32>, tensor<3x2x2x2xf32>) outs(%init : tensor<1x3x6x6xf32>) -> tensor<1x3x6x6xf32>
  return %conv : tensor<1x3x6x6xf32>
}
// CHECK-LABEL: func.func @conv_transposed_input(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<1x2x3x3xf32>
// CHECK-DAG:     %[[XT:.+]] = linalg.transpose ins(%[[X]] : tensor<1x2x3x3xf32>) {{.*}} permutation = [0, 2, 3, 1]
// CHECK-DAG:     %[[Z:.+]] = linalg.fill {{.*}} -> tensor<1x7x7x2xf32>
// CHECK:         %[[S:.+]] = tensor.insert_slice %[[XT]] into %[[Z]][0, 1, 1, 0] [1, 3, 3, 2] [1, 2, 2, 1]
// CHECK:         linalg.conv_2d_nhwc_hwcf ins(%[[S]],
// CHECK-NOT:     tensor<1x2x7x7xf32>

// -----

// 1-D, 3-D, depthwise and grouped convolutions go channels-last too. IREE's
// CPU codegen is weak on the 1-D and 3-D ops: a static 1-D convolution runs as
// one matmul per filter tap, a 3-D one as one 2-D convolution per depth tap,
// a grouped one as one batch matmul over the groups per filter tap,
// each accumulating into the previous one's result.
func.func @conv_classes(%x1: tensor<1x2x5xf32>, %w1: tensor<3x2x2xf32>, %i1: tensor<1x3x4xf32>,
                        %x3: tensor<1x2x3x3x3xf32>, %w3: tensor<3x2x2x2x2xf32>, %i3: tensor<1x3x2x2x2xf32>,
                        %xd: tensor<1x2x3x3xf32>, %wd: tensor<2x2x2xf32>, %id: tensor<1x2x2x2xf32>,
                        %xg: tensor<1x2x2x3x3xf32>, %wg: tensor<2x3x2x2x2xf32>, %ig: tensor<1x2x3x2x2xf32>)
    -> (tensor<1x3x4xf32>, tensor<1x3x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x3x2x2xf32>) {
  %c1 = linalg.conv_1d_ncw_fcw ins(%x1, %w1 : tensor<1x2x5xf32>, tensor<3x2x2xf32>) outs(%i1 : tensor<1x3x4xf32>) -> tensor<1x3x4xf32>
  %c3 = linalg.conv_3d_ncdhw_fcdhw ins(%x3, %w3 : tensor<1x2x3x3x3xf32>, tensor<3x2x2x2x2xf32>) outs(%i3 : tensor<1x3x2x2x2xf32>) -> tensor<1x3x2x2x2xf32>
  %cd = linalg.depthwise_conv_2d_nchw_chw ins(%xd, %wd : tensor<1x2x3x3xf32>, tensor<2x2x2xf32>) outs(%id : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %cg = linalg.conv_2d_ngchw_gfchw ins(%xg, %wg : tensor<1x2x2x3x3xf32>, tensor<2x3x2x2x2xf32>) outs(%ig : tensor<1x2x3x2x2xf32>) -> tensor<1x2x3x2x2xf32>
  return %c1, %c3, %cd, %cg : tensor<1x3x4xf32>, tensor<1x3x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1x2x3x2x2xf32>
}
// CHECK-LABEL: func.func @conv_classes(
// CHECK:         %[[INIT1:.+]] = tensor.collapse_shape {{.*}} : tensor<1x4x3xf32> into tensor<4x3xf32>
// CHECK:         %[[TAP0:.+]] = tensor.extract_slice %{{.+}}[0, 0, 0] [1, 4, 2] [1, 1, 1] : tensor<1x5x2xf32> to tensor<1x4x2xf32>
// CHECK:         %[[ACC0:.+]] = linalg.matmul ins({{.*}} : tensor<4x2xf32>, tensor<2x3xf32>) outs(%[[INIT1]] : tensor<4x3xf32>)
// CHECK:         %[[TAP1:.+]] = tensor.extract_slice %{{.+}}[0, 1, 0] [1, 4, 2] [1, 1, 1] : tensor<1x5x2xf32> to tensor<1x4x2xf32>
// CHECK:         linalg.matmul ins({{.*}} : tensor<4x2xf32>, tensor<2x3xf32>) outs(%[[ACC0]] : tensor<4x3xf32>)
// CHECK:         %[[INIT3:.+]] = tensor.collapse_shape {{.*}} : tensor<1x2x2x2x3xf32> into tensor<2x2x2x3xf32>
// CHECK:         %[[D0:.+]] = linalg.conv_2d_nhwc_hwcf {{.*}}ins({{.*}} : tensor<2x3x3x2xf32>, tensor<2x2x2x3xf32>) outs(%[[INIT3]] : tensor<2x2x2x3xf32>)
// CHECK:         linalg.conv_2d_nhwc_hwcf {{.*}}ins({{.*}} : tensor<2x3x3x2xf32>, tensor<2x2x2x3xf32>) outs(%[[D0]] : tensor<2x2x2x3xf32>)
// CHECK:         linalg.depthwise_conv_2d_nhwc_hwc {{.*}}ins({{.*}} : tensor<1x3x3x2xf32>, tensor<2x2x2xf32>)
// CHECK:         %[[INITG:.+]] = tensor.collapse_shape {{.*}} : tensor<2x1x2x2x3xf32> into tensor<2x4x3xf32>
// CHECK:         %[[WIN0:.+]] = tensor.extract_slice %{{.+}}[0, 0, 0, 0, 0] [2, 1, 2, 2, 2] [1, 1, 1, 1, 1] : tensor<2x1x3x3x2xf32> to tensor<2x1x2x2x2xf32>
// CHECK:         %[[LHS0:.+]] = tensor.collapse_shape %[[WIN0]] {{.*}} : tensor<2x1x2x2x2xf32> into tensor<2x4x2xf32>
// CHECK:         %[[G0:.+]] = linalg.batch_matmul ins(%[[LHS0]], %{{.+}} : tensor<2x4x2xf32>, tensor<2x2x3xf32>) outs(%[[INITG]] : tensor<2x4x3xf32>)
// CHECK:         tensor.extract_slice %{{.+}}[0, 0, 0, 1, 0] [2, 1, 2, 2, 2] [1, 1, 1, 1, 1] : tensor<2x1x3x3x2xf32> to tensor<2x1x2x2x2xf32>
// CHECK:         %[[G1:.+]] = linalg.batch_matmul ins({{.*}} : tensor<2x4x2xf32>, tensor<2x2x3xf32>) outs(%[[G0]] : tensor<2x4x3xf32>)
// CHECK:         %[[G2:.+]] = linalg.batch_matmul ins({{.*}}) outs(%[[G1]] : tensor<2x4x3xf32>)
// CHECK:         %[[G3:.+]] = linalg.batch_matmul ins({{.*}}) outs(%[[G2]] : tensor<2x4x3xf32>)
// CHECK:         tensor.expand_shape %[[G3]] {{.*}} : tensor<2x4x3xf32> into tensor<2x1x2x2x3xf32>
// CHECK-NOT:     linalg.conv_1d
// CHECK-NOT:     linalg.conv_3d
// CHECK-NOT:     linalg.conv_2d_ngchw
// CHECK-NOT:     linalg.conv_2d_nhwgc
