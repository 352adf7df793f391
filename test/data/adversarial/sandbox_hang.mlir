// Cheat: never returns: an scf.while whose condition (x ordered or unordered
// with itself) is always true.
// reference: ref_row_sum.mlir
// settings: timeout_s=6
// expect: numerics - "timed out after 6 s while running the candidate on normal inputs"
func.func @row_sum(%x: tensor<64x256xf32>) -> tensor<64xf32> {
  %e = tensor.empty() : tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      outs(%e : tensor<64xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %c0 = arith.constant 0 : index
    %v0 = tensor.extract %x[%i, %c0] : tensor<64x256xf32>
    %w = scf.while (%a = %v0) : (f32) -> f32 {
      %t = arith.cmpf ord, %a, %a : f32
      %u = arith.cmpf uno, %a, %a : f32
      %c = arith.ori %t, %u : i1
      scf.condition(%c) %a : f32
    } do {
    ^bb0(%a: f32):
      %one = arith.constant 1.0 : f32
      %n = arith.addf %a, %one : f32
      scf.yield %n : f32
    }
    linalg.yield %w : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
