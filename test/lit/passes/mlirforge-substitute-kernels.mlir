// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-substitute-kernels{file=%S/Inputs/substitute-candidates.mlir strict=false}' | FileCheck %s

// The kernel named by the candidate's hash gets the candidate's body, keeps its
// name and hash, and records the candidate's content hash.
func.func private @kernel_0123456789abcdef(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32>
    attributes {mlirforge.kernel_hash = "0123456789abcdef", mlirforge.kernel_root = "linalg.matmul"} {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}
func.func @caller(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %r = call @kernel_0123456789abcdef(%x, %w) : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %r : tensor<4x16xf32>
}
// CHECK-LABEL: func.func private @kernel_0123456789abcdef(
// CHECK-SAME:      mlirforge.kernel_hash = "0123456789abcdef"
// CHECK-SAME:      mlirforge.substituted = "{{[0-9a-f]+}}"
// CHECK-NOT:     linalg.matmul
// CHECK:         linalg.generic
// CHECK-SAME:      iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-LABEL: func.func @caller(
// CHECK:         call @kernel_0123456789abcdef(

// -----

// A kernel no candidate names is left as it was.
func.func private @kernel_1111111111111111(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32>
    attributes {mlirforge.kernel_hash = "1111111111111111", mlirforge.kernel_root = "linalg.matmul"} {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}
// CHECK-LABEL: func.func private @kernel_1111111111111111(
// CHECK-NOT:     mlirforge.substituted
// CHECK:         linalg.matmul
