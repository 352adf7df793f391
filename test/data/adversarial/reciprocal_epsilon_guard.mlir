// Cheat: 1/(x + copysign(1e-10, x)), a "guard against division by zero":
// within rounding for |x| above 1e-3, wrong by 1e-6 relative at 1e-4 (a
// normal draw may hold such an element) and by 1e-4 at 1e-6 (tiny inputs).
// reference: ref_reciprocal.mlir
// expect: numerics normal|tiny "values differ"
func.func @reciprocal(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %one = arith.constant 1.0 : f32
  %eps = arith.constant 1.0e-10 : f32
  %e = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%in: f32, %out: f32):
    %g = math.copysign %eps, %in : f32
    %b = arith.addf %in, %g : f32
    %y = arith.divf %one, %b : f32
    linalg.yield %y : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
