// Cheat: relu as `x > 0 ? x : 0`: equal on every ordinary value, but NaN > 0 is
// false, so NaN becomes 0 (eager's relu(NaN) is NaN).
// reference: ref_relu.mlir
// expect: numerics edge "NaN positions differ"
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%in: f32, %out: f32):
    %pos = arith.cmpf ogt, %in, %zero : f32
    %y = arith.select %pos, %in, %zero : f32
    linalg.yield %y : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
