// The kernel of kernel_slow_matmul.mlir without its identity steps.
func.func @fast_matmul(%x: tensor<128x64xf32>, %w: tensor<64x512xf32>) -> tensor<128x512xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<128x512xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<128x512xf32>) -> tensor<128x512xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<128x64xf32>, tensor<64x512xf32>) outs(%acc : tensor<128x512xf32>) -> tensor<128x512xf32>
  return %mm : tensor<128x512xf32>
}
