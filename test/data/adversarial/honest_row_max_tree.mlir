// Honest: the row max as 16 maxima of 16 columns, then their max.
// reference: ref_row_max.mlir
// expect: equivalent
func.func @row_max(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %x3 = tensor.expand_shape %x [[0], [1, 2]] output_shape [64, 16, 16] : tensor<64x256xf32> into tensor<64x16x16xf32>
  %e16 = tensor.empty() : tensor<64x16xf32>
  %i16 = linalg.fill ins(%ninf : f32) outs(%e16 : tensor<64x16xf32>) -> tensor<64x16xf32>
  %p = linalg.generic {indexing_maps = [affine_map<(i, a, b) -> (i, a, b)>, affine_map<(i, a, b) -> (i, a)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x3 : tensor<64x16x16xf32>) outs(%i16 : tensor<64x16xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<64x16xf32>
  %e = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, a) -> (i, a)>, affine_map<(i, a) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%p : tensor<64x16xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
