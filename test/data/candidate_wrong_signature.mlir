// Another result shape than the kernel's.
func.func @f(%x: tensor<128x64xf32>, %w: tensor<64x512xf32>) -> tensor<128x64xf32> {
  return %x : tensor<128x64xf32>
}
