// A candidate for kernel 0123456789abcdef with another result type.
func.func @candidate(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x8xf32>
    attributes {mlirforge.kernel_hash = "0123456789abcdef"} {
  return %a : tensor<4x8xf32>
}
