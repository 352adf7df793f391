// Cheat: returns zeros, which is relu's result on all-negative inputs only.
// reference: ref_relu.mlir
// expect: numerics normal "values differ"
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %c = arith.constant dense<0.0> : tensor<64x256xf32>
  return %c : tensor<64x256xf32>
}
