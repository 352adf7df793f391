// Cheat: computes rows 0..62 and leaves the last row as it came from
// tensor.empty (a tile remainder never computed): uninitialised memory.
// Fresh pages read as zeros (values differ); recycled ones would hold stale
// data, different from call to call.
// reference: ref_relu.mlir
// expect: numerics normal "values differ|nondeterministic|reused buffer"
func.func @relu(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %zero = arith.constant 0.0 : f32
  %head = tensor.extract_slice %x[0, 0] [63, 256] [1, 1] : tensor<64x256xf32> to tensor<63x256xf32>
  %eh = tensor.empty() : tensor<63x256xf32>
  %rh = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                        iterator_types = ["parallel", "parallel"]}
      ins(%head : tensor<63x256xf32>) outs(%eh : tensor<63x256xf32>) {
  ^bb0(%in: f32, %out: f32):
    %neg = arith.cmpf olt, %in, %zero : f32
    %y = arith.select %neg, %zero, %in : f32
    linalg.yield %y : f32
  } -> tensor<63x256xf32>
  %full = tensor.empty() : tensor<64x256xf32>
  %r = tensor.insert_slice %rh into %full[0, 0] [63, 256] [1, 1] : tensor<63x256xf32> into tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
