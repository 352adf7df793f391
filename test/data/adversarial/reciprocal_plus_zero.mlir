// Cheat: 1/(x + 0.0), a bias of zero left fused in: -0 + 0 is +0, so
// 1/-0 gives +inf instead of -inf (the sign of zero where it matters).
// reference: ref_reciprocal.mlir
// expect: numerics edge "inf positions or signs differ"
func.func @reciprocal(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %one = arith.constant 1.0 : f32
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b = arith.addf %in, %zero : f32
    %y = arith.divf %one, %b : f32
    linalg.yield %y : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
