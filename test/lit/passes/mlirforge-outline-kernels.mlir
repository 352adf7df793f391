// RUN: mlirforge-opt --split-input-file %s -p mlirforge-outline-kernels | FileCheck %s
// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-outline-kernels{consumers=false}' | FileCheck %s --check-prefix=NOCONS

// A matmul with its zero fill, a bias add and a relu becomes one kernel; the
// scalar constant and the empty tensors are copied in, the rest are arguments.
#map = affine_map<(d0, d1) -> (d0, d1)>
#bias = affine_map<(d0, d1) -> (d1)>
func.func @linear_relu(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %add = linalg.generic {indexing_maps = [#map, #bias, #map], iterator_types = ["parallel", "parallel"]}
      ins(%mm, %b : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%in: f32, %bi: f32, %out: f32):
    %s = arith.addf %in, %bi : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %relu = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]}
      ins(%add : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x16xf32>
  return %relu : tensor<4x16xf32>
}
// CHECK-LABEL: func.func private @kernel_{{[0-9a-f]+}}(
// CHECK-SAME:      %[[X:.+]]: tensor<4x8xf32>, %[[W:.+]]: tensor<8x16xf32>, %[[B:.+]]: tensor<16xf32>) -> tensor<4x16xf32>
// CHECK-SAME:      mlirforge.kernel_hash = "{{[0-9a-f]+}}", mlirforge.kernel_root = "linalg.matmul"
// CHECK-DAG:     %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG:     %[[EMPTY:.+]] = tensor.empty() : tensor<4x16xf32>
// CHECK:         %[[ACC:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[EMPTY]] : tensor<4x16xf32>)
// CHECK:         %[[MM:.+]] = linalg.matmul ins(%[[X]], %[[W]] : {{.*}}) outs(%[[ACC]] : tensor<4x16xf32>)
// CHECK:         %[[ADD:.+]] = linalg.generic {{.*}} ins(%[[MM]], %[[B]] :
// CHECK:         %[[RELU:.+]] = linalg.generic {{.*}} ins(%[[ADD]] :
// CHECK:         return %[[RELU]]
// CHECK-LABEL: func.func @linear_relu(
// CHECK-SAME:      %[[CX:.+]]: tensor<4x8xf32>, %[[CW:.+]]: tensor<8x16xf32>, %[[CB:.+]]: tensor<16xf32>)
// CHECK-NOT:     linalg.
// CHECK:         %[[R:.+]] = call @kernel_{{[0-9a-f]+}}(%[[CX]], %[[CW]], %[[CB]])
// CHECK-NEXT:    return %[[R]]

// Without consumers the kernel ends at the matmul; bias and relu stay outside.
// NOCONS-LABEL: func.func private @kernel_
// NOCONS:         linalg.matmul
// NOCONS-NOT:     linalg.generic
// NOCONS:         return
// NOCONS-LABEL: func.func @linear_relu(
// NOCONS:         call @kernel_
// NOCONS-COUNT-2: linalg.generic

// -----

// Only elementwise ops: no root, nothing is outlined.
#map = affine_map<(d0) -> (d0)>
func.func @no_root(%x: tensor<8xf32>) -> tensor<8xf32> {
  %e = tensor.empty() : tensor<8xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<8xf32>
  return %r : tensor<8xf32>
}
// CHECK-LABEL: func.func @no_root(
// CHECK-NOT:     call
// CHECK:         linalg.generic
// CHECK-NOT:     mlirforge.kernel_hash

// -----

// A reduction is a root too. Two clusters that differ only in SSA names and
// locations get the same hash and share one kernel.
#in = affine_map<(d0, d1) -> (d0, d1)>
#out = affine_map<(d0, d1) -> (d0)>
func.func @row_sums(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %s1 = linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction"]} ins(%a : tensor<4x8xf32>) outs(%init : tensor<4xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %t = arith.addf %x, %acc : f32
    linalg.yield %t : f32
  } -> tensor<4xf32> loc("one.py":1:1)
  %other_zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<4xf32>
  %init2 = linalg.fill ins(%other_zero : f32) outs(%e2 : tensor<4xf32>) -> tensor<4xf32>
  %s2 = linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction"]} ins(%b : tensor<4x8xf32>) outs(%init2 : tensor<4xf32>) {
  ^bb0(%y: f32, %acc2: f32):
    %u = arith.addf %y, %acc2 : f32
    linalg.yield %u : f32
  } -> tensor<4xf32> loc("two.py":7:3)
  return %s1, %s2 : tensor<4xf32>, tensor<4xf32>
}
// CHECK:       func.func private @kernel_[[H:[0-9a-f]+]](
// CHECK-SAME:      mlirforge.kernel_root = "linalg.generic"
// CHECK-NOT:   func.func private @kernel_
// CHECK-LABEL: func.func @row_sums(
// CHECK:         call @kernel_[[H]](%{{.*}})
// CHECK:         call @kernel_[[H]](%{{.*}})
