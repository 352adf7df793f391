// Cheat: returns tensor.empty(): whatever the allocator hands out, different
// from call to call (the only nondeterminism tensor IR can express).
// Fresh pages read as zeros (values differ); recycled ones would hold stale
// data, different from call to call.
// reference: ref_relu.mlir
// expect: numerics normal "values differ|nondeterministic|reused buffer"
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %e = tensor.empty() : tensor<64x256xf32>
  return %e : tensor<64x256xf32>
}
