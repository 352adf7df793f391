// Cheat: exhausts memory: gathers from a 2 GiB broadcast of its input at an
// index computed from the data, so the broadcast cannot be fused away and is
// allocated whole. The worker's address-space limit refuses the allocation.
// reference: ref_row_sum.mlir
// settings: memory_mb=1536
// expect: numerics - "the worker ran out of its 1536 MB memory limit (EvalSettings.memory_mb) while running the candidate on normal inputs"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %e0 = tensor.empty() : tensor<64x8388608xf32>
  %big = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j mod 256)>, affine_map<(i, j) -> (i, j)>],
                         iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x256xf32>) outs(%e0 : tensor<64x8388608xf32>) {
  ^bb0(%in: f32, %o: f32):
    %one = arith.constant 1.0 : f32
    %y = arith.addf %in, %one : f32
    linalg.yield %y : f32
  } -> tensor<64x8388608xf32>
  %e = tensor.empty() : tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      outs(%e : tensor<64xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %c0 = arith.constant 0 : index
    %v0 = tensor.extract %x[%i, %c0] : tensor<64x256xf32>
    %a = math.absf %v0 : f32
    %k = arith.constant 1.0e6 : f32
    %s = arith.mulf %a, %k : f32
    %si = arith.fptoui %s : f32 to i32
    %n = arith.constant 8388608 : i32
    %m = arith.remui %si, %n : i32
    %j = arith.index_cast %m : i32 to index
    %v = tensor.extract %big[%i, %j] : tensor<64x8388608xf32>
    linalg.yield %v : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
