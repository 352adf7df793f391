// Cheat: relu clamped to the largest finite f32 ("avoids inf downstream"):
// equal on every finite input, but relu(+inf) must be +inf.
// reference: ref_relu.mlir
// expect: numerics edge "inf positions or signs differ"
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %zero = arith.constant 0.0 : f32
  %big = arith.constant 3.40282347e+38 : f32
  %e = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%in: f32, %out: f32):
    %neg = arith.cmpf olt, %in, %zero : f32
    %y = arith.select %neg, %zero, %in : f32
    %c = arith.minimumf %y, %big : f32
    linalg.yield %c : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
