// RUN: mlirforge-opt --split-input-file --verify-diagnostics %s -p 'mlirforge-annotate-tiling{distribution=32,32}'

// A tile list must have one size per loop of the root op.
func.func private @kernel_aaaaaaaaaaaaaaaa(%a: tensor<64x32xf32>, %b: tensor<32x64xf32>, %c: tensor<64x64xf32>) -> tensor<64x64xf32>
    attributes {mlirforge.kernel_hash = "aaaaaaaaaaaaaaaa", mlirforge.kernel_root = "linalg.matmul"} {
  // expected-error @below {{mlirforge-annotate-tiling: distribution has 2 tile sizes, linalg.matmul has 3 loops}}
  %mm = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x64xf32>) outs(%c : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %mm : tensor<64x64xf32>
}
