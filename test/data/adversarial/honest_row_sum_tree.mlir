// Honest: the row sum as 16 partial sums of 16 columns each, then their sum
// (a tree: every element is reassociated).
// reference: ref_row_sum.mlir
// expect: equivalent
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f32
  %x3 = tensor.expand_shape %x [[0], [1, 2]] output_shape [64, 16, 16] : tensor<64x256xf32> into tensor<64x16x16xf32>
  %e16 = tensor.empty() : tensor<64x16xf32>
  %i16 = linalg.fill ins(%zero : f32) outs(%e16 : tensor<64x16xf32>) -> tensor<64x16xf32>
  %p = linalg.generic {indexing_maps = [affine_map<(i, a, b) -> (i, a, b)>, affine_map<(i, a, b) -> (i, a)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x3 : tensor<64x16x16xf32>) outs(%i16 : tensor<64x16xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  } -> tensor<64x16xf32>
  %e = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, a) -> (i, a)>, affine_map<(i, a) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%p : tensor<64x16xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
