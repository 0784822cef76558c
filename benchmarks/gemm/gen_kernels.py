#!/usr/bin/env python3
"""Writes an MLIR module with one `y[m, n] += x[m, k] * w[n, k]` function per shape N x K
(the linalg.generic convert-photon-to-linalg emits for photon.linear), each with a C
interface, for photon-opt --photon-lower-to-llvm. Usage: gen_kernels.py NxK [NxK ...]"""
import sys

out = ["#x = affine_map<(m, n, k) -> (m, k)>",
       "#w = affine_map<(m, n, k) -> (n, k)>",
       "#y = affine_map<(m, n, k) -> (m, n)>",
       "module {"]
for shape in sys.argv[1:]:
    n, k = (int(v) for v in shape.split("x"))
    out.append(f"""  func.func @mm_{n}x{k}(%x: memref<?x{k}xf32>, %w: memref<{n}x{k}xf32>, %y: memref<?x{n}xf32>)
      attributes {{llvm.emit_c_interface}} {{
    linalg.generic {{indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}}
        ins(%x, %w : memref<?x{k}xf32>, memref<{n}x{k}xf32>) outs(%y : memref<?x{n}xf32>) {{
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
      %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
      linalg.yield %s : f32
    }}
    return
  }}""")
out.append("}")
print("\n".join(out))
