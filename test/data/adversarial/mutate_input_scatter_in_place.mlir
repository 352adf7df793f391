// Cheat: mutates an input: the row written by a scatter into x itself, which
// IREE ties to the caller's buffer (issue #16168). Right values, but the
// caller's x is overwritten. Defences, in order: a kernel candidate may not
// use iree_linalg_ext at all (parse stage); the build's aliasing analysis
// makes every call pass a copy of x (`copy_inputs`); and the worker reads the
// inputs back after the call. This case runs with the copies switched off, as
// if the aliasing analysis had missed the write, so the read-back must say it.
// reference: ref_set_row.mlir
// aliasing: ignored
// expect: numerics normal "candidate modified its inputs"
func.func @set_row(%x: tensor<64x256xf32>, %y: tensor<1x256xf32>) -> tensor<64x256xf32> {
  %idx = arith.constant dense<0> : tensor<1x1xi32>
  %r = iree_linalg_ext.scatter dimension_map = [0] unique_indices(true)
      ins(%y, %idx : tensor<1x256xf32>, tensor<1x1xi32>) outs(%x : tensor<64x256xf32>) {
  ^bb0(%new: f32, %old: f32):
    iree_linalg_ext.yield %new : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
