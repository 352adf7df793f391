// Cheat: wrong at one position only: the last row (the remainder of a 63-row
// tiling) is summed from values rounded to multiples of 1/64.
// reference: ref_row_sum.mlir
// expect: numerics normal|tiny "values differ"
#map2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f32
  %scale = arith.constant 64.0 : f32
  %inv = arith.constant 0.015625 : f32
  %e = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [#map2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x256xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %i = linalg.index 0 : index
    %c63 = arith.constant 63 : index
    %last = arith.cmpi eq, %i, %c63 : index
    %up = arith.mulf %in, %scale : f32
    %q = math.roundeven %up : f32
    %down = arith.mulf %q, %inv : f32
    %v = arith.select %last, %down, %in : f32
    %s = arith.addf %v, %acc : f32
    linalg.yield %s : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
