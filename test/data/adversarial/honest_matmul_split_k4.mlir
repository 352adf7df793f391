// Honest: K split in four chunks of 32, summed as (p3 + p2) + (p1 + p0).
// reference: ref_matmul.mlir
// expect: equivalent
#id = affine_map<(i, j) -> (i, j)>
func.func @matmul(%a: tensor<64x128xf32>, %b: tensor<128x64xf32>) -> tensor<64x64xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<64x64xf32>) -> tensor<64x64xf32>
  %a0 = tensor.extract_slice %a[0, 0] [64, 32] [1, 1] : tensor<64x128xf32> to tensor<64x32xf32>
  %a1 = tensor.extract_slice %a[0, 32] [64, 32] [1, 1] : tensor<64x128xf32> to tensor<64x32xf32>
  %a2 = tensor.extract_slice %a[0, 64] [64, 32] [1, 1] : tensor<64x128xf32> to tensor<64x32xf32>
  %a3 = tensor.extract_slice %a[0, 96] [64, 32] [1, 1] : tensor<64x128xf32> to tensor<64x32xf32>
  %b0 = tensor.extract_slice %b[0, 0] [32, 64] [1, 1] : tensor<128x64xf32> to tensor<32x64xf32>
  %b1 = tensor.extract_slice %b[32, 0] [32, 64] [1, 1] : tensor<128x64xf32> to tensor<32x64xf32>
  %b2 = tensor.extract_slice %b[64, 0] [32, 64] [1, 1] : tensor<128x64xf32> to tensor<32x64xf32>
  %b3 = tensor.extract_slice %b[96, 0] [32, 64] [1, 1] : tensor<128x64xf32> to tensor<32x64xf32>
  %p0 = linalg.matmul ins(%a0, %b0 : tensor<64x32xf32>, tensor<32x64xf32>) outs(%acc : tensor<64x64xf32>) -> tensor<64x64xf32>
  %p1 = linalg.matmul ins(%a1, %b1 : tensor<64x32xf32>, tensor<32x64xf32>) outs(%acc : tensor<64x64xf32>) -> tensor<64x64xf32>
  %p2 = linalg.matmul ins(%a2, %b2 : tensor<64x32xf32>, tensor<32x64xf32>) outs(%acc : tensor<64x64xf32>) -> tensor<64x64xf32>
  %p3 = linalg.matmul ins(%a3, %b3 : tensor<64x32xf32>, tensor<32x64xf32>) outs(%acc : tensor<64x64xf32>) -> tensor<64x64xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%p0, %p1, %p2, %p3 : tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) outs(%e : tensor<64x64xf32>) {
  ^bb0(%x0: f32, %x1: f32, %x2: f32, %x3: f32, %o: f32):
    %hi = arith.addf %x3, %x2 : f32
    %lo = arith.addf %x1, %x0 : f32
    %s = arith.addf %hi, %lo : f32
    linalg.yield %s : f32
  } -> tensor<64x64xf32>
  return %r : tensor<64x64xf32>
}
