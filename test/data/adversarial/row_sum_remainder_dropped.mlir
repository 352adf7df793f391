// Cheat: a vectorised row sum whose remainder loop is missing: sums columns
// 0..247 (31 tiles of 8) and drops the last 8.
// reference: ref_row_sum.mlir
// expect: numerics normal "values differ"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f32
  %body = tensor.extract_slice %x[0, 0] [64, 248] [1, 1] : tensor<64x256xf32> to tensor<64x248xf32>
  %e = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%body : tensor<64x248xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
