// The driver compiles an MLIR file to a vmfb that IREE's own runner executes.
// RUN: mlirforge compile %s -o %t.vmfb
// RUN: iree-run-module --module=%t.vmfb --function=main --input="4xf32=1 2 3 4" --input="4xf32=10 20 30 40" | FileCheck %s

// CHECK: 4xf32=11 22 33 44
func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %b : tensor<4xf32>
  return %0 : tensor<4xf32>
}
