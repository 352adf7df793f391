// Cheat: a "fast log" by the float's bits: log(m) + e*ln(2) with the exponent
// e and mantissa m read from the bit pattern (zero, negatives, inf and NaN go
// to math.log). Exact wherever the bits are a normal number; for a subnormal
// x (exponent field 0) it returns about -88 where log gives -inf (IREE reads
// subnormals as 0) and eager about -92.
// reference: ref_log.mlir
// expect: numerics subnormal "inf positions or signs differ"
func.func @log(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %e = tensor.empty() : tensor<64x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x256xf32>) outs(%e : tensor<64x256xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c0 = arith.constant 0 : i32
    %c23 = arith.constant 23 : i32
    %c127 = arith.constant 127 : i32
    %c1 = arith.constant 1 : i32
    %abs_mask = arith.constant 2147483647 : i32
    %inf_bits = arith.constant 2139095040 : i32
    %mant_mask = arith.constant 8388607 : i32
    %one_bits = arith.constant 1065353216 : i32
    %sqrt2 = arith.constant 1.41421354 : f32
    %half = arith.constant 0.5 : f32
    %ln2 = arith.constant 0.693147182 : f32
    %bits = arith.bitcast %in : f32 to i32
    %mag = arith.andi %bits, %abs_mask : i32
    %is_zero = arith.cmpi eq, %mag, %c0 : i32
    %is_neg = arith.cmpi slt, %bits, %c0 : i32
    %not_finite = arith.cmpi sge, %mag, %inf_bits : i32
    %s1 = arith.ori %is_zero, %is_neg : i1
    %special = arith.ori %s1, %not_finite : i1
    %field = arith.shrui %mag, %c23 : i32
    %ex = arith.subi %field, %c127 : i32
    %mbits = arith.andi %bits, %mant_mask : i32
    %mone = arith.ori %mbits, %one_bits : i32
    %m = arith.bitcast %mone : i32 to f32
    %big = arith.cmpf ogt, %m, %sqrt2 : f32
    %mh = arith.mulf %m, %half : f32
    %m2 = arith.select %big, %mh, %m : f32
    %ex1 = arith.addi %ex, %c1 : i32
    %e2 = arith.select %big, %ex1, %ex : i32
    %ef = arith.sitofp %e2 : i32 to f32
    %lm = math.log %m2 : f32
    %le = arith.mulf %ef, %ln2 : f32
    %fast = arith.addf %lm, %le : f32
    %slow = math.log %in : f32
    %y = arith.select %special, %slow, %fast : f32
    linalg.yield %y : f32
  } -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}
