// Cheat tuned to a global tolerance: a "sparse" matmul that skips every a[i,k]
// below 1e-6 of a's largest magnitude. Rows of a at a small scale lose most
// of their terms, an error a global bound hides behind the largest output.
// reference: ref_matmul.mlir
// expect: numerics row_scaled "values differ"
#a = affine_map<(i, j, k) -> (i, k)>
#b = affine_map<(i, j, k) -> (k, j)>
#c = affine_map<(i, j, k) -> (i, j)>
#all = affine_map<(i, k) -> ()>
func.func @matmul(%a: tensor<64x128xf32>, %b: tensor<128x64xf32>) -> tensor<64x64xf32> {
  %zero = arith.constant 0.0 : f32
  %rel = arith.constant 1.0e-6 : f32
  %e0 = tensor.empty() : tensor<f32>
  %z0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<f32>) -> tensor<f32>
  %top = linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>, #all], iterator_types = ["reduction", "reduction"]}
      ins(%a : tensor<64x128xf32>) outs(%z0 : tensor<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = math.absf %in : f32
    %y = arith.maximumf %m, %acc : f32
    linalg.yield %y : f32
  } -> tensor<f32>
  %e = tensor.empty() : tensor<64x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<64x64xf32>) -> tensor<64x64xf32>
  %r = linalg.generic {indexing_maps = [#a, #b, affine_map<(i, j, k) -> ()>, #c],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b, %top : tensor<64x128xf32>, tensor<128x64xf32>, tensor<f32>) outs(%acc : tensor<64x64xf32>) {
  ^bb0(%x: f32, %w: f32, %t: f32, %s: f32):
    %limit = arith.mulf %t, %rel : f32
    %m = math.absf %x : f32
    %tiny = arith.cmpf olt, %m, %limit : f32
    %p = arith.mulf %x, %w : f32
    %q = arith.select %tiny, %zero, %p : f32
    %n = arith.addf %s, %q : f32
    linalg.yield %n : f32
  } -> tensor<64x64xf32>
  return %r : tensor<64x64xf32>
}
