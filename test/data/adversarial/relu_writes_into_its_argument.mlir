// Not a mutation: relu computed "in place" (outs(%x)). In tensor IR outs is a
// value, not memory: IREE gives the result its own buffer (copy_inputs stays
// empty) and the worker's read-back finds the caller's x unchanged.
// reference: ref_relu.mlir
// expect: equivalent
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %zero = arith.constant 0.0 : f32
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]}
      outs(%x : tensor<64x256xf32>) {
  ^bb0(%in: f32):
    %neg = arith.cmpf olt, %in, %zero : f32
    %y = arith.select %neg, %zero, %in : f32
    linalg.yield %y : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
