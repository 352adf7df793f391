// Cheat: crashes the worker: a gather whose index, computed from the data
// (x[i, 0] * 1e9), lies far outside the tensor (IREE does not bounds-check
// tensor.extract; the read faults).
// reference: ref_row_sum.mlir
// expect: numerics - "worker crashed (SIGSEGV) while running the candidate on normal inputs"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %e = tensor.empty() : tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      outs(%e : tensor<64xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %c0 = arith.constant 0 : index
    %v0 = tensor.extract %x[%i, %c0] : tensor<64x256xf32>
    %big = arith.constant 1.0e9 : f32
    %s = arith.mulf %v0, %big : f32
    %si = arith.fptosi %s : f32 to i64
    %j = arith.index_cast %si : i64 to index
    %v = tensor.extract %x[%i, %j] : tensor<64x256xf32>
    linalg.yield %v : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
