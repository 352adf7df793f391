// Cheat: the f32 row sum accumulated in f16 (half the bandwidth of a real
// low-precision kernel): 11-bit partial sums, overflow past 65504.
// reference: ref_row_sum.mlir
// expect: numerics normal "values differ"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f16
  %e = tensor.empty() : tensor<64xf16>
  %init = linalg.fill ins(%zero : f16) outs(%e : tensor<64xf16>) -> tensor<64xf16>
  %h = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x256xf32>) outs(%init : tensor<64xf16>) {
  ^bb0(%in: f32, %acc: f16):
    %t = arith.truncf %in : f32 to f16
    %s = arith.addf %t, %acc : f16
    linalg.yield %s : f16
  } -> tensor<64xf16>
  %e2 = tensor.empty() : tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      ins(%h : tensor<64xf16>) outs(%e2 : tensor<64xf32>) {
  ^bb0(%in: f16, %out: f32):
    %y = arith.extf %in : f16 to f32
    linalg.yield %y : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
