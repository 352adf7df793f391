// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-tile-reductions{vector-bits=512}' | FileCheck %s
// RUN: mlirforge-opt --split-input-file %s -p 'mlirforge-tile-reductions{vector-bits=256}' | FileCheck %s --check-prefix=AVX2

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// A NaN-propagating row maximum: four vectors along the row (16 or 8 f32 lanes each);
// IREE's own row tiles (8 rows per vector tile, 256 / 8 rows per workgroup).
func.func @row_max(%x: tensor<256x4096xf32>, %init: tensor<256xf32>) -> tensor<256xf32> {
  %r = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x4096xf32>) outs(%init : tensor<256xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<256xf32>
  return %r : tensor<256xf32>
}
// CHECK:       #[[CFG:.+]] = #iree_cpu.lowering_config<distribution = [32, 0], vector_common_parallel = [8, 0], vector_reduction = [0, 64]>
// CHECK:       #[[PIPE:.+]] = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<DoubleTilingExpert>>
// CHECK:       #[[INFO:.+]] = #iree_codegen.compilation_info<lowering_config = #[[CFG]], translation_info = #[[PIPE]]>
// CHECK-LABEL: func.func @row_max(
// CHECK:         linalg.generic {{.*}} attrs = {compilation_info = #[[INFO]]}
// AVX2:        #iree_cpu.lowering_config<distribution = [32, 0], vector_common_parallel = [8, 0], vector_reduction = [0, 32]>
// AVX2-LABEL:  func.func @row_max(

// -----

#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#out3 = affine_map<(d0, d1, d2) -> (d0, d1)>

// An integer minimum over the innermost of three loops (the first-index search of argmax).
func.func @batched_int_min(%x: tensor<4x64x1024xi32>, %init: tensor<4x64xi32>) -> tensor<4x64xi32> {
  %r = linalg.generic {indexing_maps = [#id3, #out3], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<4x64x1024xi32>) outs(%init : tensor<4x64xi32>) {
  ^bb0(%in: i32, %acc: i32):
    %m = arith.minsi %in, %acc : i32
    linalg.yield %m : i32
  } -> tensor<4x64xi32>
  return %r : tensor<4x64xi32>
}
// CHECK:       #iree_cpu.lowering_config<distribution = [1, 8, 0], vector_common_parallel = [1, 8, 0], vector_reduction = [0, 0, 64]>
// CHECK-LABEL: func.func @batched_int_min(
// CHECK:         attrs = {compilation_info =

// -----

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>

// Left alone: a sum (already as fast as reading its input), a reduction over
// the outer loop, an extent four vectors do not divide, a dynamic extent, and
// an op that already has tiles.
func.func @left_alone(%x: tensor<256x4096xf32>, %y: tensor<256x4100xf32>, %d: tensor<256x?xf32>,
                      %init: tensor<256xf32>, %cinit: tensor<4096xf32>)
    -> (tensor<256xf32>, tensor<4096xf32>, tensor<256xf32>, tensor<256xf32>, tensor<256xf32>) {
  %sum = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x4096xf32>) outs(%init : tensor<256xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  } -> tensor<256xf32>
  %outer = linalg.generic {indexing_maps = [#id, #col], iterator_types = ["reduction", "parallel"]}
      ins(%x : tensor<256x4096xf32>) outs(%cinit : tensor<4096xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<4096xf32>
  %ragged = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%y : tensor<256x4100xf32>) outs(%init : tensor<256xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<256xf32>
  %dynamic = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%d : tensor<256x?xf32>) outs(%init : tensor<256xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<256xf32>
  %tiled = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x4096xf32>) outs(%init : tensor<256xf32>)
      attrs = {lowering_config = #iree_cpu.lowering_config<distribution = [64, 0], vector_common_parallel = [4, 0], vector_reduction = [0, 16]>} {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %in, %acc : f32
    linalg.yield %m : f32
  } -> tensor<256xf32>
  return %sum, %outer, %ragged, %dynamic, %tiled : tensor<256xf32>, tensor<4096xf32>, tensor<256xf32>, tensor<256xf32>, tensor<256xf32>
}
// CHECK-NOT:   compilation_info
// CHECK:       #[[OWN:.+]] = #iree_cpu.lowering_config<distribution = [64, 0], vector_common_parallel = [4, 0], vector_reduction = [0, 16]>
// CHECK-NOT:   compilation_info
// CHECK-LABEL: func.func @left_alone(
// CHECK:         lowering_config = #[[OWN]]
// CHECK-NOT:     compilation_info
// CHECK:         return

// -----

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// Left alone: a max inside a sum (the combiner is the add), and a running index that is read
// (torch-mlir's argmax: a select carries the index); kept: the same generic whose index is dead.
func.func @combiners(%x: tensor<256x4096xf32>, %init: tensor<256xf32>, %iinit: tensor<256xi64>)
    -> (tensor<256xf32>, tensor<256xi64>, tensor<256xf32>) {
  %zero = arith.constant 0.0 : f32
  %sum_relu = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x4096xf32>) outs(%init : tensor<256xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %r = arith.maximumf %in, %zero : f32
    %s = arith.addf %r, %acc : f32
    linalg.yield %s : f32
  } -> tensor<256xf32>
  %arg:2 = linalg.generic {indexing_maps = [#id, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x4096xf32>) outs(%init, %iinit : tensor<256xf32>, tensor<256xi64>) {
  ^bb0(%in: f32, %acc: f32, %idx: i64):
    %i = linalg.index 1 : index
    %i64 = arith.index_cast %i : index to i64
    %m = arith.maximumf %in, %acc : f32
    %gt = arith.cmpf ogt, %in, %acc : f32
    %sel = arith.select %gt, %i64, %idx : i64
    linalg.yield %m, %sel : f32, i64
  } -> (tensor<256xf32>, tensor<256xi64>)
  %dead:2 = linalg.generic {indexing_maps = [#id, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<256x4096xf32>) outs(%init, %iinit : tensor<256xf32>, tensor<256xi64>) {
  ^bb0(%in: f32, %acc: f32, %idx: i64):
    %i = linalg.index 1 : index
    %i64 = arith.index_cast %i : index to i64
    %m = arith.minimumf %in, %acc : f32
    %lt = arith.cmpf olt, %in, %acc : f32
    %sel = arith.select %lt, %i64, %idx : i64
    linalg.yield %m, %sel : f32, i64
  } -> (tensor<256xf32>, tensor<256xi64>)
  return %sum_relu, %arg#1, %dead#0 : tensor<256xf32>, tensor<256xi64>, tensor<256xf32>
}
// CHECK-LABEL: func.func @combiners(
// CHECK:         arith.addf
// CHECK-NOT:     compilation_info
// CHECK:         arith.select
// CHECK:         attrs = {compilation_info =
// CHECK:         arith.minimumf
// CHECK:         return
