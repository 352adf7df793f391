// A matmul followed by 60 elementwise steps of (h + h) * 0.5: exactly the
// identity in IEEE arithmetic (doubling and halving are exact), so the
// candidate without them is equivalent and much faster.
#id = affine_map<(i, j) -> (i, j)>
func.func @slow_matmul(%x: tensor<128x64xf32>, %w: tensor<64x512xf32>) -> tensor<128x512xf32> {
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<128x512xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<128x512xf32>) -> tensor<128x512xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<128x64xf32>, tensor<64x512xf32>) outs(%acc : tensor<128x512xf32>) -> tensor<128x512xf32>
  %a0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%mm : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a0 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a1 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a3 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a2 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a4 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a3 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a5 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a4 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a6 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a5 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a7 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a6 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a8 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a7 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a9 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a8 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a10 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a9 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a11 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a10 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a12 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a11 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a13 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a12 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a14 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a13 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a15 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a14 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a16 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a15 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a17 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a16 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a18 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a17 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a19 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a18 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a20 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a19 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a21 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a20 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a22 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a21 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a23 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a22 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a24 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a23 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a25 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a24 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a26 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a25 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a27 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a26 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a28 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a27 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a29 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a28 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a30 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a29 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a31 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a30 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a32 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a31 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a33 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a32 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a34 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a33 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a35 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a34 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a36 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a35 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a37 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a36 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a38 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a37 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a39 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a38 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a40 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a39 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a41 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a40 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a42 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a41 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a43 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a42 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a44 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a43 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a45 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a44 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a46 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a45 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a47 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a46 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a48 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a47 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a49 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a48 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a50 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a49 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a51 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a50 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a52 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a51 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a53 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a52 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a54 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a53 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a55 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a54 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a56 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a55 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a57 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a56 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a58 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a57 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  %a59 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a58 : tensor<128x512xf32>) outs(%e : tensor<128x512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %in : f32
    %h = arith.mulf %s, %half : f32
    linalg.yield %h : f32
  } -> tensor<128x512xf32>
  return %a59 : tensor<128x512xf32>
}
