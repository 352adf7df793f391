// A malformed input gets IREE's located diagnostic, exit 1 and no output file.
// RUN: rm -f %t.vmfb
// RUN: not mlirforge compile %s -o %t.vmfb 2>&1 | FileCheck %s
// RUN: not ls %t.vmfb

// CHECK: invalid-mlir.mlir:9:23: error: use of undeclared SSA value name
// CHECK: mlirforge: error: stage 'iree-compile' failed
func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %missing : tensor<4xf32>
  return %0 : tensor<4xf32>
}
