// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-annotate-tiling{distribution=32,32,0 vector-common-parallel=8,16,0 vector-reduction=0,0,4}' | FileCheck %s
// RUN: mlirforge-opt %s -p 'mlirforge-annotate-tiling{kernel=aaaa distribution=16,16,0 pipeline=Default}' | FileCheck %s --check-prefix=ONE

// The root op of every kernel gets IREE's compilation_info with the tiles.
func.func private @kernel_aaaaaaaaaaaaaaaa(%a: tensor<64x32xf32>, %b: tensor<32x64xf32>, %c: tensor<64x64xf32>) -> tensor<64x64xf32>
    attributes {mlirforge.kernel_hash = "aaaaaaaaaaaaaaaa", mlirforge.kernel_root = "linalg.matmul"} {
  %mm = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x64xf32>) outs(%c : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %mm : tensor<64x64xf32>
}
func.func private @kernel_bbbbbbbbbbbbbbbb(%a: tensor<64x32xf32>, %b: tensor<32x64xf32>, %c: tensor<64x64xf32>) -> tensor<64x64xf32>
    attributes {mlirforge.kernel_hash = "bbbbbbbbbbbbbbbb", mlirforge.kernel_root = "linalg.matmul"} {
  %mm = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x64xf32>) outs(%c : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %mm : tensor<64x64xf32>
}
// CHECK: #[[CONFIG:.+]] = #iree_cpu.lowering_config<distribution = [32, 32, 0], vector_common_parallel = [8, 16, 0], vector_reduction = [0, 0, 4]>
// CHECK: #[[TRANSLATION:.+]] = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<DoubleTilingExpert>>
// CHECK: #[[INFO:.+]] = #iree_codegen.compilation_info<lowering_config = #[[CONFIG]], translation_info = #[[TRANSLATION]]>
// CHECK-LABEL: func.func private @kernel_aaaaaaaaaaaaaaaa(
// CHECK:         linalg.matmul {compilation_info = #[[INFO]]}
// CHECK-LABEL: func.func private @kernel_bbbbbbbbbbbbbbbb(
// CHECK:         linalg.matmul {compilation_info = #[[INFO]]}

// With kernel=, only that kernel is annotated.
// ONE-LABEL: func.func private @kernel_aaaaaaaaaaaaaaaa(
// ONE:         linalg.matmul {compilation_info =
// ONE-LABEL: func.func private @kernel_bbbbbbbbbbbbbbbb(
// ONE-NOT:     compilation_info
// ONE:         return

// -----

// A matmul outside any kernel is not the pass's business.
func.func @no_kernel(%a: tensor<64x32xf32>, %b: tensor<32x64xf32>, %c: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %mm = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x64xf32>) outs(%c : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %mm : tensor<64x64xf32>
}
// CHECK-LABEL: func.func @no_kernel(
// CHECK-NOT:     compilation_info
// CHECK:         return
