// RUN: mlirforge-opt --split-input-file --verify-diagnostics %s -p 'mlirforge-substitute-kernels{file=%S/Inputs/substitute-wrong-signature.mlir}'

// A candidate whose signature differs from the kernel's is refused, at the kernel.
// expected-error @below {{mlirforge-substitute-kernels: candidate @candidate has signature (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x8xf32>, kernel 0123456789abcdef has (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>}}
func.func private @kernel_0123456789abcdef(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32>
    attributes {mlirforge.kernel_hash = "0123456789abcdef", mlirforge.kernel_root = "linalg.matmul"} {
  %e = tensor.empty() : tensor<4x16xf32>
  return %e : tensor<4x16xf32>
}
