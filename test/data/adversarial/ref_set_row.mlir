// Reference: x with its first row replaced by y (value semantics: a new tensor).
func.func @set_row(%x: tensor<64x256xf32>, %y: tensor<1x256xf32>) -> tensor<64x256xf32> {
  %r = tensor.insert_slice %y into %x[0, 0] [1, 256] [1, 1] : tensor<1x256xf32> into tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
