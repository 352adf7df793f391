// Cheat: makes the max unique by scaling each value by 1 + j*2^-30 before
// comparing (a tie-breaking trick for branch-free reductions): equal wherever
// the largest value is unique, and on ties of +-inf, NaN and negative values,
// but of two equal positive maxima it picks the later one where eager's
// argmax gives the first.
// reference: ref_row_argmax.mlir
// expect: numerics ties "elements differ"
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
    %one = arith.constant 1.0 : f32
    %tiny = arith.constant 9.31322574e-10 : f32
    %jf = arith.uitofp %ji : i32 to f32
    %bump = arith.mulf %jf, %tiny : f32
    %scale = arith.addf %one, %bump : f32
    %key = arith.mulf %in, %scale : f32
    %gt = arith.cmpf ogt, %key, %best : f32
    %innan = arith.cmpf uno, %in, %in : f32
    %bestok = arith.cmpf ord, %best, %best : f32
    %nan = arith.andi %innan, %bestok : i1
    %take = arith.ori %gt, %nan : i1
    %v = arith.select %take, %key, %best : f32
    %i = arith.select %take, %ji, %at : i32
    linalg.yield %v, %i : f32, i32
  } -> (tensor<64xf32>, tensor<64xi32>)
  return %r#1 : tensor<64xi32>
}
