// RUN: mlirforge-opt --split-input-file %s -p mlirforge-fold-transpose-into-matmul | FileCheck %s
// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-fold-transpose-into-matmul{operands=rhs}' | FileCheck %s --check-prefix=RHS

// The folded module computes what the original computes: both print the same values.
// RUN: mlirforge compile %s -o %t.ref.vmfb
// RUN: mlirforge-opt %s -p mlirforge-fold-transpose-into-matmul -o %t.mlir
// RUN: mlirforge compile %t.mlir -o %t.vmfb
// RUN: iree-run-module --module=%t.ref.vmfb --function=linear --input="2x3xf32=1 2 3 4 5 6" --input="4x3xf32=1 0 0 0 1 0 0 0 1 1 1 1" | FileCheck %s --check-prefix=LINEAR
// RUN: iree-run-module --module=%t.vmfb --function=linear --input="2x3xf32=1 2 3 4 5 6" --input="4x3xf32=1 0 0 0 1 0 0 0 1 1 1 1" | FileCheck %s --check-prefix=LINEAR
// RUN: iree-run-module --module=%t.ref.vmfb --function=attention_scores --input="2x2x2xf32=1 2 3 4 5 6 7 8" --input="2x2x2xf32=1 0 2 1 0 1 1 3" | FileCheck %s --check-prefix=SCORES
// RUN: iree-run-module --module=%t.vmfb --function=attention_scores --input="2x2x2xf32=1 2 3 4 5 6 7 8" --input="2x2x2xf32=1 0 2 1 0 1 1 3" | FileCheck %s --check-prefix=SCORES
// RUN: iree-run-module --module=%t.ref.vmfb --function=lhs_transposed --input="2x2xf32=1 2 3 4" --input="2x2xf32=1 1 0 1" | FileCheck %s --check-prefix=LHS
// RUN: iree-run-module --module=%t.vmfb --function=lhs_transposed --input="2x2xf32=1 2 3 4" --input="2x2xf32=1 1 0 1" | FileCheck %s --check-prefix=LHS

// LINEAR: 2x4xf32=[1 2 3 6][4 5 6 15]
// SCORES: 2x2x2xf32={{\[\[}}1 4][3 10]]{{\[\[}}6 23][8 31]]
// LHS: 2x2xf32=[1 4][2 6]

// nn.Linear as torch-mlir lowers it: the weight's transpose becomes B's map.
func.func @linear(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>) -> tensor<2x4xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<3x4xf32>
  %t = linalg.transpose ins(%w : tensor<4x3xf32>) outs(%e : tensor<3x4xf32>) permutation = [1, 0]
  %acc = tensor.empty() : tensor<2x4xf32>
  %zero = linalg.fill ins(%cst : f32) outs(%acc : tensor<2x4xf32>) -> tensor<2x4xf32>
  %mm = linalg.matmul ins(%x, %t : tensor<2x3xf32>, tensor<3x4xf32>) outs(%zero : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %mm : tensor<2x4xf32>
}
// CHECK-DAG:   #[[$MAP_A:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG:   #[[$MAP_BT:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG:   #[[$MAP_C:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @linear(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<2x3xf32>, %[[W:[^:]+]]: tensor<4x3xf32>)
// CHECK-NOT:     linalg.transpose
// CHECK-NOT:     tensor.empty() : tensor<3x4xf32>
// CHECK:         %[[ZERO:.+]] = linalg.fill
// CHECK-NEXT:    %[[MM:.+]] = linalg.matmul indexing_maps = [#[[$MAP_A]], #[[$MAP_BT]], #[[$MAP_C]]] ins(%[[X]], %[[W]] : tensor<2x3xf32>, tensor<4x3xf32>) outs(%[[ZERO]] : tensor<2x4xf32>)
// CHECK-NEXT:    return %[[MM]]

// RHS-LABEL:   func.func @linear(
// RHS-NOT:       linalg.transpose
// RHS:           linalg.matmul indexing_maps

// -----

// A transpose that does not swap the last two dims (here batch and rows) stays.
func.func @no_fold_batch_permutation(%a: tensor<4x2x8xf32>, %b: tensor<2x8x16xf32>, %c: tensor<2x4x16xf32>) -> tensor<2x4x16xf32> {
  %e = tensor.empty() : tensor<2x4x8xf32>
  %t = linalg.transpose ins(%a : tensor<4x2x8xf32>) outs(%e : tensor<2x4x8xf32>) permutation = [1, 0, 2]
  %bmm = linalg.batch_matmul ins(%t, %b : tensor<2x4x8xf32>, tensor<2x8x16xf32>) outs(%c : tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  return %bmm : tensor<2x4x16xf32>
}
// CHECK-LABEL: func.func @no_fold_batch_permutation(
// CHECK-SAME:      %[[A:[^:]+]]: tensor<4x2x8xf32>
// CHECK:         %[[T:.+]] = linalg.transpose ins(%[[A]] : tensor<4x2x8xf32>) {{.*}} permutation = [1, 0, 2]
// CHECK-NEXT:    linalg.batch_matmul ins(%[[T]],

// -----

// q @ k^T: the batched transpose of k becomes B's map of the batch_matmul.
func.func @attention_scores(%q: tensor<2x2x2xf32>, %k: tensor<2x2x2xf32>) -> tensor<2x2x2xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<2x2x2xf32>
  %kt = linalg.transpose ins(%k : tensor<2x2x2xf32>) outs(%e : tensor<2x2x2xf32>) permutation = [0, 2, 1]
  %zero = linalg.fill ins(%cst : f32) outs(%e : tensor<2x2x2xf32>) -> tensor<2x2x2xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<2x2x2xf32>, tensor<2x2x2xf32>) outs(%zero : tensor<2x2x2xf32>) -> tensor<2x2x2xf32>
  return %s : tensor<2x2x2xf32>
}
// CHECK-DAG:   #[[$MAP_Q:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG:   #[[$MAP_KT:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
// CHECK-DAG:   #[[$MAP_S:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @attention_scores(
// CHECK-SAME:      %[[Q:[^:]+]]: tensor<2x2x2xf32>, %[[K:[^:]+]]: tensor<2x2x2xf32>)
// CHECK-NOT:     linalg.transpose
// CHECK:         %[[ZERO:.+]] = linalg.fill
// CHECK-NEXT:    %[[S:.+]] = linalg.batch_matmul indexing_maps = [#[[$MAP_Q]], #[[$MAP_KT]], #[[$MAP_S]]] ins(%[[Q]], %[[K]] : {{.*}}) outs(%[[ZERO]] :
// CHECK-NEXT:    return %[[S]]

// -----

// batch_matmul takes a broadcast map or a transposed one, not both: a 2-D
// operand broadcast over the batch keeps its transpose.
func.func @no_fold_broadcast_operand(%a: tensor<8x4xf32>, %b: tensor<2x8x16xf32>, %c: tensor<2x4x16xf32>) -> tensor<2x4x16xf32> {
  %e = tensor.empty() : tensor<4x8xf32>
  %t = linalg.transpose ins(%a : tensor<8x4xf32>) outs(%e : tensor<4x8xf32>) permutation = [1, 0]
  %bmm = linalg.batch_matmul indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>]
      ins(%t, %b : tensor<4x8xf32>, tensor<2x8x16xf32>) outs(%c : tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  return %bmm : tensor<2x4x16xf32>
}
// CHECK-LABEL: func.func @no_fold_broadcast_operand(
// CHECK-SAME:      %[[A:[^:]+]]: tensor<8x4xf32>
// CHECK:         %[[T:.+]] = linalg.transpose ins(%[[A]] :
// CHECK-NEXT:    linalg.batch_matmul {{.*}} ins(%[[T]],

// -----

// A transposed A operand folds into A's map (unless operands=rhs).
func.func @lhs_transposed(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<2x2xf32>
  %at = linalg.transpose ins(%a : tensor<2x2xf32>) outs(%e : tensor<2x2xf32>) permutation = [1, 0]
  %zero = linalg.fill ins(%cst : f32) outs(%e : tensor<2x2xf32>) -> tensor<2x2xf32>
  %mm = linalg.matmul ins(%at, %b : tensor<2x2xf32>, tensor<2x2xf32>) outs(%zero : tensor<2x2xf32>) -> tensor<2x2xf32>
  return %mm : tensor<2x2xf32>
}
// CHECK-DAG:   #[[$MAP_AT:.+]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG:   #[[$MAP_B:.+]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG:   #[[$MAP_C:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @lhs_transposed(
// CHECK-SAME:      %[[A:[^:]+]]: tensor<2x2xf32>, %[[B:[^:]+]]: tensor<2x2xf32>)
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.matmul indexing_maps = [#[[$MAP_AT]], #[[$MAP_B]], #[[$MAP_C]]] ins(%[[A]], %[[B]] :

// RHS-LABEL:   func.func @lhs_transposed(
// RHS-SAME:        %[[A:[^:]+]]: tensor<2x2xf32>, %[[B:[^:]+]]: tensor<2x2xf32>)
// RHS:           %[[AT:.+]] = linalg.transpose ins(%[[A]] :
// RHS:           linalg.matmul ins(%[[AT]], %[[B]] :

// -----

// A transpose with another user is kept for it; the matmul still reads the source.
func.func @shared_transpose(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>, %c: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<3x4xf32>) {
  %e = tensor.empty() : tensor<3x4xf32>
  %t = linalg.transpose ins(%w : tensor<4x3xf32>) outs(%e : tensor<3x4xf32>) permutation = [1, 0]
  %mm = linalg.matmul ins(%x, %t : tensor<2x3xf32>, tensor<3x4xf32>) outs(%c : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %mm, %t : tensor<2x4xf32>, tensor<3x4xf32>
}
// CHECK-LABEL: func.func @shared_transpose(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<2x3xf32>, %[[W:[^:]+]]: tensor<4x3xf32>
// CHECK:         %[[T:.+]] = linalg.transpose ins(%[[W]] :
// CHECK-NEXT:    %[[MM:.+]] = linalg.matmul indexing_maps = {{.*}} ins(%[[X]], %[[W]] :
// CHECK-NEXT:    return %[[MM]], %[[T]]

// -----

// Integer matmuls fold the same way; the op keeps its widening body.
func.func @int8_linear(%x: tensor<2x8xi8>, %w: tensor<4x8xi8>, %c: tensor<2x4xi32>) -> tensor<2x4xi32> {
  %e = tensor.empty() : tensor<8x4xi8>
  %t = linalg.transpose ins(%w : tensor<4x8xi8>) outs(%e : tensor<8x4xi8>) permutation = [1, 0]
  %mm = linalg.matmul ins(%x, %t : tensor<2x8xi8>, tensor<8x4xi8>) outs(%c : tensor<2x4xi32>) -> tensor<2x4xi32>
  return %mm : tensor<2x4xi32>
}
// CHECK-LABEL: func.func @int8_linear(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<2x8xi8>, %[[W:[^:]+]]: tensor<4x8xi8>
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.matmul indexing_maps = {{.*}} ins(%[[X]], %[[W]] : tensor<2x8xi8>, tensor<4x8xi8>) outs({{.*}} : tensor<2x4xi32>)

// -----

// A matmul that already reads B transposed, fed by a transpose: the two cancel
// and the matmul is back to its default maps.
func.func @transpose_of_transposed_b(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>, %c: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %e = tensor.empty() : tensor<4x8xf32>
  %t = linalg.transpose ins(%b : tensor<8x4xf32>) outs(%e : tensor<4x8xf32>) permutation = [1, 0]
  %mm = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>]
      ins(%a, %t : tensor<2x8xf32>, tensor<4x8xf32>) outs(%c : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %mm : tensor<2x4xf32>
}
// CHECK-LABEL: func.func @transpose_of_transposed_b(
// CHECK-SAME:      %[[A:[^:]+]]: tensor<2x8xf32>, %[[B:[^:]+]]: tensor<8x4xf32>
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.matmul ins(%[[A]], %[[B]] : tensor<2x8xf32>, tensor<8x4xf32>)
