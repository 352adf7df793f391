// Honest: the row mean as the mean of 16 partial means of 16 columns (another
// order and other roundings), then x - mean.
// reference: ref_center.mlir
// expect: equivalent
#row = affine_map<(i, j) -> (i)>
func.func @center(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %zero = arith.constant 0.0 : f32
  %n16 = arith.constant 16.0 : f32
  %x3 = tensor.expand_shape %x [[0], [1, 2]] output_shape [64, 16, 16] : tensor<64x256xf32> into tensor<64x16x16xf32>
  %e16 = tensor.empty() : tensor<64x16xf32>
  %i16 = linalg.fill ins(%zero : f32) outs(%e16 : tensor<64x16xf32>) -> tensor<64x16xf32>
  %p = linalg.generic {indexing_maps = [affine_map<(i, a, b) -> (i, a, b)>, affine_map<(i, a, b) -> (i, a)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x3 : tensor<64x16x16xf32>) outs(%i16 : tensor<64x16xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %q = arith.divf %in, %n16 : f32
    %s = arith.addf %q, %acc : f32
    linalg.yield %s : f32
  } -> tensor<64x16xf32>
  %e1 = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e1 : tensor<64xf32>) -> tensor<64xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(i, a) -> (i, a)>, affine_map<(i, a) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%p : tensor<64x16xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %q = arith.divf %in, %n16 : f32
    %s = arith.addf %q, %acc : f32
    linalg.yield %s : f32
  } -> tensor<64xf32>
  %e2 = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, #row, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x, %m : tensor<64x256xf32>, tensor<64xf32>) outs(%e2 : tensor<64x256xf32>) {
  ^bb0(%in: f32, %mean: f32, %out: f32):
    %y = arith.subf %in, %mean : f32
    linalg.yield %y : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
