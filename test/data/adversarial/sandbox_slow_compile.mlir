// Cheat: takes "forever" to compile: three chained 4096^3 matmuls of constants,
// which IREE's compile-time constant evaluation computes (about 18 s for
// three on 2 cores; each more multiplies it). The compile's time limit stops it.
// reference: ref_row_sum.mlir
// settings: timeout_s=4
// expect: build - "iree-compile timed out after 4 s"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %a = arith.constant dense<1.0> : tensor<4096x4096xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4096x4096xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4096x4096xf32>) -> tensor<4096x4096xf32>
  %m1 = linalg.matmul ins(%a, %a : tensor<4096x4096xf32>, tensor<4096x4096xf32>) outs(%acc : tensor<4096x4096xf32>) -> tensor<4096x4096xf32>
  %m2 = linalg.matmul ins(%m1, %m1 : tensor<4096x4096xf32>, tensor<4096x4096xf32>) outs(%acc : tensor<4096x4096xf32>) -> tensor<4096x4096xf32>
  %m3 = linalg.matmul ins(%m2, %m2 : tensor<4096x4096xf32>, tensor<4096x4096xf32>) outs(%acc : tensor<4096x4096xf32>) -> tensor<4096x4096xf32>
  %m = tensor.collapse_shape %m3 [[0, 1]] : tensor<4096x4096xf32> into tensor<16777216xf32>
  %s = tensor.expand_shape %m [[0, 1]] output_shape [64, 262144] : tensor<16777216xf32> into tensor<64x262144xf32>
  %e2 = tensor.empty() : tensor<64xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e2 : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%s : tensor<64x262144xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%b: f32, %acc2: f32):
    %q = arith.addf %b, %acc2 : f32
    linalg.yield %q : f32
  } -> tensor<64xf32>
  %r2 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i)>],
                        iterator_types = ["parallel", "reduction"]}
      ins(%x, %r : tensor<64x256xf32>, tensor<64xf32>) outs(%init : tensor<64xf32>) {
  ^bb0(%in: f32, %b: f32, %acc2: f32):
    %p = arith.mulf %in, %b : f32
    %q = arith.addf %p, %acc2 : f32
    linalg.yield %q : f32
  } -> tensor<64xf32>
  return %r2 : tensor<64xf32>
}
