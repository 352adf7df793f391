// RUN: mlirforge-opt --split-input-file %s -p mlirforge-generalize-named-ops | FileCheck %s
// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-generalize-named-ops{ops=transpose}' | FileCheck %s --check-prefix=TRANSPOSE

// Named ops inside a kernel become linalg.generic.
func.func private @kernel_aaaaaaaaaaaaaaaa(%a: tensor<4x8xf32>, %w: tensor<16x8xf32>, %c: tensor<4x16xf32>) -> tensor<4x16xf32>
    attributes {mlirforge.kernel_hash = "aaaaaaaaaaaaaaaa", mlirforge.kernel_root = "linalg.matmul"} {
  %e = tensor.empty() : tensor<8x16xf32>
  %t = linalg.transpose ins(%w : tensor<16x8xf32>) outs(%e : tensor<8x16xf32>) permutation = [1, 0]
  %mm = linalg.matmul ins(%a, %t : tensor<4x8xf32>, tensor<8x16xf32>) outs(%c : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}
// CHECK-LABEL: func.func private @kernel_aaaaaaaaaaaaaaaa(
// CHECK-SAME:      %[[A:[^:]+]]: tensor<4x8xf32>, %[[W:[^:]+]]: tensor<16x8xf32>, %[[C:[^:]+]]: tensor<4x16xf32>)
// CHECK-SAME:      mlirforge.kernel_root = "linalg.matmul"
// CHECK-NOT:     linalg.transpose
// CHECK-NOT:     linalg.matmul
// CHECK:         %[[T:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%[[W]] :
// CHECK:         %[[MM:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[A]], %[[T]] :
// CHECK-SAME:      outs(%[[C]] :
// CHECK:         return %[[MM]]

// With ops=transpose only the transpose is generalized.
// TRANSPOSE-LABEL: func.func private @kernel_aaaaaaaaaaaaaaaa(
// TRANSPOSE-NOT:     linalg.transpose
// TRANSPOSE:         linalg.generic
// TRANSPOSE:         linalg.matmul

// -----

// Named ops outside kernels are left alone.
func.func @no_kernel(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %c: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %mm = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%c : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}
// CHECK-LABEL: func.func @no_kernel(
// CHECK:         linalg.matmul
// CHECK-NOT:     linalg.generic
