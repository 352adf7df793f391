// RUN: mlirforge-opt --split-input-file %s -p mlirforge-inline-kernels | FileCheck %s
// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-inline-kernels{keep-kernels=true}' | FileCheck %s --check-prefix=KEEP

// A call to a kernel is replaced by the kernel's body; the kernel is erased.
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
// CHECK-NOT:   func.func private @kernel_
// CHECK-LABEL: func.func @caller(
// CHECK-SAME:      %[[X:.+]]: tensor<4x8xf32>, %[[W:.+]]: tensor<8x16xf32>)
// CHECK-NOT:     call
// CHECK:         %[[ACC:.+]] = linalg.fill
// CHECK:         %[[MM:.+]] = linalg.matmul ins(%[[X]], %[[W]] : {{.*}}) outs(%[[ACC]] :
// CHECK:         return %[[MM]]

// KEEP-LABEL: func.func private @kernel_0123456789abcdef(
// KEEP-LABEL: func.func @caller(
// KEEP-NOT:     call
// KEEP:         linalg.matmul

// -----

// A call to an ordinary function is not a kernel call: left alone.
func.func private @helper(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = arith.addf %a, %a : tensor<4xf32>
  return %r : tensor<4xf32>
}
func.func @no_kernel_call(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = call @helper(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}
// CHECK-LABEL: func.func private @helper(
// CHECK-LABEL: func.func @no_kernel_call(
// CHECK:         call @helper(

// -----

// One kernel called twice is inlined at both call sites.
func.func private @kernel_fedcba9876543210(%a: tensor<4xf32>) -> tensor<4xf32>
    attributes {mlirforge.kernel_hash = "fedcba9876543210", mlirforge.kernel_root = "linalg.generic"} {
  %r = arith.mulf %a, %a : tensor<4xf32>
  return %r : tensor<4xf32>
}
func.func @twice(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r1 = call @kernel_fedcba9876543210(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %r2 = call @kernel_fedcba9876543210(%r1) : (tensor<4xf32>) -> tensor<4xf32>
  return %r2 : tensor<4xf32>
}
// CHECK-LABEL: func.func @twice(
// CHECK-SAME:      %[[X:.+]]: tensor<4xf32>)
// CHECK:         %[[A:.+]] = arith.mulf %[[X]], %[[X]]
// CHECK:         %[[B:.+]] = arith.mulf %[[A]], %[[A]]
// CHECK:         return %[[B]]
