// Cheat tuned to a global tolerance: every output below 1e-7 of the tensor's
// largest becomes 0 (a "sparsify" step). Invisible to |err| <= c*eps*max|ref|;
// wrong by 100% on small elements next to large ones (row_scaled inputs; a
// draw of the others holds one below 1e-7 of its largest once in a few hundred).
// reference: ref_relu.mlir
// expect: numerics row_scaled|normal|tiny|large|edge "values differ"
#map2 = affine_map<(i, j) -> (i, j)>
#all = affine_map<(i, j) -> ()>
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %zero = arith.constant 0.0 : f32
  %rel = arith.constant 1.0e-7 : f32
  %e0 = tensor.empty() : tensor<f32>
  %z0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<f32>) -> tensor<f32>
  %top = linalg.generic {indexing_maps = [#map2, #all], iterator_types = ["reduction", "reduction"]}
      ins(%x : tensor<64x256xf32>) outs(%z0 : tensor<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %a = math.absf %in : f32
    %m = arith.maximumf %a, %acc : f32
    linalg.yield %m : f32
  } -> tensor<f32>
  %e = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [#map2, #all, #map2], iterator_types = ["parallel", "parallel"]}
      ins(%x, %top : tensor<64x256xf32>, tensor<f32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%in: f32, %t: f32, %out: f32):
    %neg = arith.cmpf olt, %in, %zero : f32
    %y = arith.select %neg, %zero, %in : f32
    %limit = arith.mulf %t, %rel : f32
    %pos = arith.cmpf ogt, %y, %zero : f32
    %small = arith.cmpf olt, %y, %limit : f32
    %drop = arith.andi %pos, %small : i1
    %z = arith.select %drop, %zero, %y : f32
    linalg.yield %z : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
