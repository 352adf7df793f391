// Honest: argmax in two passes, the NaN-propagating max first, then the first
// index holding it (or the first NaN).
// reference: ref_row_argmax.mlir
// expect: equivalent
#map2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @row_argmax(%x: tensor<64x256xf32>) -> tensor<64xi32> {
  %ninf = arith.constant 0xFF800000 : f32
  %none = arith.constant 256 : i32
  %ev = tensor.empty() : tensor<64xf32>
  %ei = tensor.empty() : tensor<64xi32>
  %vinit = linalg.fill ins(%ninf : f32) outs(%ev : tensor<64xf32>) -> tensor<64xf32>
  %m = linalg.generic {indexing_maps = [#map2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x256xf32>) outs(%vinit : tensor<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %y = arith.maximumf %in, %acc : f32
    linalg.yield %y : f32
  } -> tensor<64xf32>
  %iinit = linalg.fill ins(%none : i32) outs(%ei : tensor<64xi32>) -> tensor<64xi32>
  %r = linalg.generic {indexing_maps = [#map2, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x, %m : tensor<64x256xf32>, tensor<64xf32>) outs(%iinit : tensor<64xi32>) {
  ^bb0(%in: f32, %mx: f32, %at: i32):
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i32
    %eq = arith.cmpf oeq, %in, %mx : f32
    %innan = arith.cmpf uno, %in, %in : f32
    %hit = arith.ori %eq, %innan : i1
    %cand = arith.select %hit, %ji, %none : i32
    %first = arith.minsi %cand, %at : i32
    linalg.yield %first : i32
  } -> tensor<64xi32>
  return %r : tensor<64xi32>
}
