func.func private @kernel_aaaaaaaaaaaaaaaa(%a: tensor<64x32xf32>, %b: tensor<32x64xf32>, %c: tensor<64x64xf32>) -> tensor<64x64xf32>
    attributes {mlirforge.kernel_hash = "aaaaaaaaaaaaaaaa", mlirforge.kernel_root = "linalg.matmul"} {
  // expected-error @below {{a message the pass never gives}}
  %mm = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x64xf32>) outs(%c : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %mm : tensor<64x64xf32>
}
