// Cheat: argmax by `>` alone (NaN compares false, so it is skipped): right on
// every row without NaN; eager's argmax gives the first NaN's index.
// reference: ref_row_argmax.mlir
// expect: numerics edge "elements differ"
#map2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @row_argmax(%x: tensor<64x256xf32>) -> tensor<64xi32> {
  %ninf = arith.constant 0xFF800000 : f32
  %c0 = arith.constant 0 : i32
  %ev = tensor.empty() : tensor<64xf32>
  %ei = tensor.empty() : tensor<64xi32>
  %vinit = linalg.fill ins(%ninf : f32) outs(%ev : tensor<64xf32>) -> tensor<64xf32>
  %iinit = linalg.fill ins(%c0 : i32) outs(%ei : tensor<64xi32>) -> tensor<64xi32>
  %r:2 = linalg.generic {indexing_maps = [#map2, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x256xf32>) outs(%vinit, %iinit : tensor<64xf32>, tensor<64xi32>) {
  ^bb0(%in: f32, %best: f32, %at: i32):
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i32
    %gt = arith.cmpf ogt, %in, %best : f32
    %innan = arith.cmpf uno, %in, %in : f32
    %bestok = arith.cmpf ord, %best, %best : f32
    %nan = arith.andi %innan, %bestok : i1
    %take = arith.ori %gt, %gt : i1
    %v = arith.select %take, %in, %best : f32
    %i = arith.select %take, %ji, %at : i32
    linalg.yield %v, %i : f32, i32
  } -> (tensor<64xf32>, tensor<64xi32>)
  return %r#1 : tensor<64xi32>
}
