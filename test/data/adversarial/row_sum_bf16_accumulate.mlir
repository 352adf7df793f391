// Cheat: the f32 row sum accumulated in bf16 (8-bit mantissa, f32's range):
// partial sums lose everything below 1/256 of themselves.
// reference: ref_row_sum.mlir
// expect: numerics normal "values differ"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : bf16
  %e = tensor.empty() : tensor<64xbf16>
  %init = linalg.fill ins(%zero : bf16) outs(%e : tensor<64xbf16>) -> tensor<64xbf16>
  %h = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x256xf32>) outs(%init : tensor<64xbf16>) {
  ^bb0(%in: f32, %acc: bf16):
    %t = arith.truncf %in : f32 to bf16
    %s = arith.addf %t, %acc : bf16
    linalg.yield %s : bf16
  } -> tensor<64xbf16>
  %e2 = tensor.empty() : tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      ins(%h : tensor<64xbf16>) outs(%e2 : tensor<64xf32>) {
  ^bb0(%in: bf16, %out: f32):
    %y = arith.extf %in : bf16 to f32
    linalg.yield %y : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
