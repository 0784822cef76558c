// RUN: photon-opt %s --photon-fuse-norm-matmul --split-input-file | FileCheck %s
// RUN: photon-opt %s --photon-hoist-math-tables --split-input-file | FileCheck %s --check-prefix=ROPE

// RMSNorm (as convert-photon-to-linalg lowers it: row sum of squares + normalize generic)
// feeding two x * W^T generics: both read x, r = rsqrt(ss / D + eps) and g instead of the
// normalized tensor, which is not computed any more.
#xk = affine_map<(m, k) -> (m, k)>
#row = affine_map<(m, k) -> (m)>
#col = affine_map<(m, k) -> (k)>
#mx = affine_map<(m, n, k) -> (m, k)>
#mw = affine_map<(m, n, k) -> (n, k)>
#my = affine_map<(m, n, k) -> (m, n)>
// CHECK-DAG:   #[[X:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG:   #[[R:.+]] = affine_map<(d0, d1, d2) -> (d0)>
// CHECK-DAG:   #[[G:.+]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-DAG:   #[[W:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG:   #[[Y:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @two_matmuls(
// CHECK-SAME:      %[[XA:[^:]+]]: tensor<?x8xf32>, %[[GA:[^:]+]]: tensor<8xf32>, %[[W1:[^:]+]]: tensor<4x8xf32>, %[[W2:[^:]+]]: tensor<6x8xf32>
// CHECK:         %[[SS:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// the per-row scale, once for both matmuls
// CHECK:         %[[DM:.+]] = tensor.dim %[[SS]], %c0
// CHECK:         %[[RE:.+]] = tensor.empty(%[[DM]]) : tensor<?xf32>
// CHECK:         %[[RS:.+]] = linalg.generic {{.*}} iterator_types = ["parallel"]} ins(%[[SS]] : tensor<?xf32>) outs(%[[RE]] : tensor<?xf32>)
// CHECK-NEXT:    ^bb0(%[[S:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT:      %[[C1:.+]] = arith.constant 1.250000e-01 : f32
// CHECK-NEXT:      %[[C2:.+]] = arith.constant 9.99999974E-6 : f32
// CHECK-NEXT:      %[[MEAN:.+]] = arith.mulf %[[S]], %[[C1]] : f32
// CHECK-NEXT:      %[[V:.+]] = arith.addf %[[MEAN]], %[[C2]] : f32
// CHECK-NEXT:      %[[RSQ:.+]] = math.rsqrt %[[V]] : f32
// CHECK-NEXT:      linalg.yield %[[RSQ]] : f32
// the normalize generic is gone
// CHECK-NOT:     iterator_types = ["parallel", "parallel"]}
// CHECK:         %[[Y1:.+]] = linalg.generic {indexing_maps = [#[[X]], #[[R]], #[[G]], #[[W]], #[[Y]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[XA]], %[[RS]], %[[GA]], %[[W1]] : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>, tensor<4x8xf32>)
// CHECK-NEXT:    ^bb0(%[[A:.+]]: f32, %[[AR:.+]]: f32, %[[AG:.+]]: f32, %[[AW:.+]]: f32, %[[ACC:.+]]: f32):
// CHECK-NEXT:      %[[P1:.+]] = arith.mulf %[[A]], %[[AR]] : f32
// CHECK-NEXT:      %[[P2:.+]] = arith.mulf %[[P1]], %[[AG]] : f32
// CHECK-NEXT:      %[[P3:.+]] = arith.mulf %[[P2]], %[[AW]] fastmath<reassoc,contract> : f32
// CHECK-NEXT:      %[[SUM:.+]] = arith.addf %[[ACC]], %[[P3]] fastmath<reassoc,contract> : f32
// CHECK-NEXT:      linalg.yield %[[SUM]] : f32
// CHECK:         %[[Y2:.+]] = linalg.generic {{.*}} ins(%[[XA]], %[[RS]], %[[GA]], %[[W2]] : {{.*}}) outs(%{{.+}} : tensor<?x6xf32>)
// CHECK:         return %[[Y1]], %[[Y2]]
func.func @two_matmuls(%x: tensor<?x8xf32>, %g: tensor<8xf32>, %w1: tensor<4x8xf32>, %w2: tensor<6x8xf32>)
    -> (tensor<?x4xf32>, tensor<?x6xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %x, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%m) : tensor<?xf32>
  %ss0 = linalg.fill ins(%zero : f32) outs(%e : tensor<?xf32>) -> tensor<?xf32>
  %ss = linalg.generic {indexing_maps = [#xk, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<?x8xf32>) outs(%ss0 : tensor<?xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %p = arith.mulf %a, %a fastmath<reassoc,contract> : f32
    %s = arith.addf %acc, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?xf32>
  %ne = tensor.empty(%m) : tensor<?x8xf32>
  %n = linalg.generic {indexing_maps = [#xk, #row, #col, #xk], iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %g : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>) outs(%ne : tensor<?x8xf32>) {
  ^bb0(%a: f32, %s: f32, %gk: f32, %o: f32):
    %inv = arith.constant 0.125 : f32
    %eps = arith.constant 1.0e-5 : f32
    %mean = arith.mulf %s, %inv : f32
    %v = arith.addf %mean, %eps : f32
    %r = math.rsqrt %v : f32
    %xr = arith.mulf %a, %r : f32
    %y = arith.mulf %xr, %gk : f32
    linalg.yield %y : f32
  } -> tensor<?x8xf32>
  %e1 = tensor.empty(%m) : tensor<?x4xf32>
  %i1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x4xf32>) -> tensor<?x4xf32>
  %y1 = linalg.generic {indexing_maps = [#mx, #mw, #my], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%n, %w1 : tensor<?x8xf32>, tensor<4x8xf32>) outs(%i1 : tensor<?x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x4xf32>
  %e2 = tensor.empty(%m) : tensor<?x6xf32>
  %i2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x6xf32>) -> tensor<?x6xf32>
  %y2 = linalg.generic {indexing_maps = [#mx, #mw, #my], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%n, %w2 : tensor<?x8xf32>, tensor<6x8xf32>) outs(%i2 : tensor<?x6xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %b, %a fastmath<reassoc,contract> : f32
    %s = arith.addf %p, %c fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x6xf32>
  return %y1, %y2 : tensor<?x4xf32>, tensor<?x6xf32>
}

// -----

// The reshapes linear() puts around a 3-D activation: the norm's result expanded to
// [B, T, D] (its sizes read by tensor.dim) and collapsed back for the matmul. The matmul is
// fused through them, the dims become the expand's sizes and everything else is erased.
#xk = affine_map<(m, k) -> (m, k)>
#row = affine_map<(m, k) -> (m)>
#col = affine_map<(m, k) -> (k)>
#mx = affine_map<(m, n, k) -> (m, k)>
#mw = affine_map<(m, n, k) -> (n, k)>
#my = affine_map<(m, n, k) -> (m, n)>
// CHECK-LABEL: func.func @through_reshapes(
// CHECK-SAME:      %[[XA:[^:]+]]: tensor<?x8xf32>, %[[SS:[^:]+]]: tensor<?xf32>, %[[GA:[^:]+]]: tensor<8xf32>, %[[W:[^:]+]]: tensor<4x8xf32>, %[[B:[^:]+]]: index, %[[T:[^:]+]]: index
// CHECK:         %[[RS:.+]] = linalg.generic {{.*}} ins(%[[SS]] : tensor<?xf32>)
// CHECK-NOT:     tensor.expand_shape
// CHECK-NOT:     tensor.collapse_shape
// CHECK:         %[[Y:.+]] = linalg.generic {{.*}} ins(%[[XA]], %[[RS]], %[[GA]], %[[W]] :
// CHECK-NOT:     tensor.dim
// CHECK:         return %[[Y]], %[[B]], %[[T]]
func.func @through_reshapes(%x: tensor<?x8xf32>, %ss: tensor<?xf32>, %g: tensor<8xf32>, %w: tensor<4x8xf32>,
                            %bs: index, %t: index) -> (tensor<?x4xf32>, index, index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %x, %c0 : tensor<?x8xf32>
  %ne = tensor.empty(%m) : tensor<?x8xf32>
  %n = linalg.generic {indexing_maps = [#xk, #row, #col, #xk], iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %g : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>) outs(%ne : tensor<?x8xf32>) {
  ^bb0(%a: f32, %s: f32, %gk: f32, %o: f32):
    %r = math.rsqrt %s : f32
    %xr = arith.mulf %r, %a : f32
    %y = arith.mulf %gk, %xr : f32
    linalg.yield %y : f32
  } -> tensor<?x8xf32>
  %n3 = tensor.expand_shape %n [[0, 1], [2]] output_shape [%bs, %t, 8] : tensor<?x8xf32> into tensor<?x?x8xf32>
  %d0 = tensor.dim %n3, %c0 : tensor<?x?x8xf32>
  %d1 = tensor.dim %n3, %c1 : tensor<?x?x8xf32>
  %n2 = tensor.collapse_shape %n3 [[0, 1], [2]] : tensor<?x?x8xf32> into tensor<?x8xf32>
  %e1 = tensor.empty(%m) : tensor<?x4xf32>
  %i1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x4xf32>) -> tensor<?x4xf32>
  %y1 = linalg.generic {indexing_maps = [#mx, #mw, #my], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%n2, %w : tensor<?x8xf32>, tensor<4x8xf32>) outs(%i1 : tensor<?x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x4xf32>
  return %y1, %d0, %d1 : tensor<?x4xf32>, index, index
}

// -----

// The normalized tensor has another user (returned here): the normalize generic stays for
// it; the matmul is fused all the same.
#xk = affine_map<(m, k) -> (m, k)>
#row = affine_map<(m, k) -> (m)>
#col = affine_map<(m, k) -> (k)>
#mx = affine_map<(m, n, k) -> (m, k)>
#mw = affine_map<(m, n, k) -> (n, k)>
#my = affine_map<(m, n, k) -> (m, n)>
// CHECK-LABEL: func.func @other_user(
// CHECK-SAME:      %[[XA:[^:]+]]: tensor<?x8xf32>, %[[SS:[^:]+]]: tensor<?xf32>, %[[GA:[^:]+]]: tensor<8xf32>, %[[W:[^:]+]]: tensor<4x8xf32>
// CHECK:         %[[N:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%[[XA]], %[[SS]], %[[GA]] :
// CHECK:         %[[RS:.+]] = linalg.generic {{.*}} ins(%[[SS]] : tensor<?xf32>)
// CHECK:         %[[Y:.+]] = linalg.generic {{.*}} ins(%[[XA]], %[[RS]], %[[GA]], %[[W]] :
// CHECK:         return %[[Y]], %[[N]]
func.func @other_user(%x: tensor<?x8xf32>, %ss: tensor<?xf32>, %g: tensor<8xf32>, %w: tensor<4x8xf32>)
    -> (tensor<?x4xf32>, tensor<?x8xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %x, %c0 : tensor<?x8xf32>
  %ne = tensor.empty(%m) : tensor<?x8xf32>
  %n = linalg.generic {indexing_maps = [#xk, #row, #col, #xk], iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %g : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>) outs(%ne : tensor<?x8xf32>) {
  ^bb0(%a: f32, %s: f32, %gk: f32, %o: f32):
    %r = math.rsqrt %s : f32
    %xr = arith.mulf %a, %r : f32
    %y = arith.mulf %xr, %gk : f32
    linalg.yield %y : f32
  } -> tensor<?x8xf32>
  %e1 = tensor.empty(%m) : tensor<?x4xf32>
  %i1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x4xf32>) -> tensor<?x4xf32>
  %y1 = linalg.generic {indexing_maps = [#mx, #mw, #my], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%n, %w : tensor<?x8xf32>, tensor<4x8xf32>) outs(%i1 : tensor<?x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x4xf32>
  return %y1, %n : tensor<?x4xf32>, tensor<?x8xf32>
}

// -----

// Not a per-row scale: the factor reads the column index (and in the second function x
// itself), so it is not a function of ss[m]; nothing is rewritten.
#xk = affine_map<(m, k) -> (m, k)>
#row = affine_map<(m, k) -> (m)>
#col = affine_map<(m, k) -> (k)>
#mx = affine_map<(m, n, k) -> (m, k)>
#mw = affine_map<(m, n, k) -> (n, k)>
#my = affine_map<(m, n, k) -> (m, n)>
// CHECK-LABEL: func.func @not_row_scale(
// CHECK:         linalg.index 1
// CHECK:         linalg.generic {{.*}} ins(%{{.+}}, %{{.+}} : tensor<?x8xf32>, tensor<4x8xf32>)
// CHECK-NOT:     tensor<?xf32>, tensor<8xf32>, tensor<4x8xf32>
func.func @not_row_scale(%x: tensor<?x8xf32>, %ss: tensor<?xf32>, %g: tensor<8xf32>, %w: tensor<4x8xf32>,
                         %i1: tensor<?x8xf32>, %acc: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %n = linalg.generic {indexing_maps = [#xk, #row, #col, #xk], iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %g : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>) outs(%i1 : tensor<?x8xf32>) {
  ^bb0(%a: f32, %s: f32, %gk: f32, %o: f32):
    %k = linalg.index 1 : index
    %ki = arith.index_cast %k : index to i32
    %kf = arith.sitofp %ki : i32 to f32
    %r = arith.mulf %s, %kf : f32
    %xr = arith.mulf %a, %r : f32
    %y = arith.mulf %xr, %gk : f32
    linalg.yield %y : f32
  } -> tensor<?x8xf32>
  %y1 = linalg.generic {indexing_maps = [#mx, #mw, #my], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%n, %w : tensor<?x8xf32>, tensor<4x8xf32>) outs(%acc : tensor<?x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x4xf32>
  return %y1 : tensor<?x4xf32>
}
// CHECK-LABEL: func.func @scale_reads_x(
// CHECK:         linalg.generic {{.*}} ins(%{{.+}}, %{{.+}} : tensor<?x8xf32>, tensor<4x8xf32>)
// CHECK-NOT:     tensor<?xf32>, tensor<8xf32>, tensor<4x8xf32>
func.func @scale_reads_x(%x: tensor<?x8xf32>, %ss: tensor<?xf32>, %g: tensor<8xf32>, %w: tensor<4x8xf32>,
                         %i1: tensor<?x8xf32>, %acc: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %n = linalg.generic {indexing_maps = [#xk, #row, #col, #xk], iterator_types = ["parallel", "parallel"]}
      ins(%x, %ss, %g : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>) outs(%i1 : tensor<?x8xf32>) {
  ^bb0(%a: f32, %s: f32, %gk: f32, %o: f32):
    %r = arith.mulf %s, %a : f32
    %xr = arith.mulf %a, %r : f32
    %y = arith.mulf %xr, %gk : f32
    linalg.yield %y : f32
  } -> tensor<?x8xf32>
  %y1 = linalg.generic {indexing_maps = [#mx, #mw, #my], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%n, %w : tensor<?x8xf32>, tensor<4x8xf32>) outs(%acc : tensor<?x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %c, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x4xf32>
  return %y1 : tensor<?x4xf32>
}

// -----

// photon-hoist-math-tables on RoPE as convert-photon-to-linalg lowers it (x [B, T, H, hd],
// position offsets[b] + t): cos/sin depend on (b, t, i), not on the head h, so they move
// into a [B, T, hd] table generic; the frequency exp(...) depends on i only and moves on
// into an [hd] table. The rotation itself stays per element and reads the tables.
// ROPE-DAG:   #[[ID3:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// ROPE-DAG:   #[[B3:.+]] = affine_map<(d0, d1, d2) -> (d0)>
// ROPE-DAG:   #[[I3:.+]] = affine_map<(d0, d1, d2) -> (d2)>
// ROPE-DAG:   #[[B4:.+]] = affine_map<(d0, d1, d2, d3) -> (d0)>
// ROPE-DAG:   #[[T4:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// ROPE-DAG:   #[[ID4:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// ROPE-LABEL: func.func @rope(
// ROPE-SAME:      %[[X:[^:]+]]: tensor<?x?x4x8xf32>, %[[OFF:[^:]+]]: tensor<?xi32>
// the frequency table: exp once per i
// ROPE:         %[[FE:.+]] = tensor.empty() : tensor<8xf32>
// ROPE:         %[[FREQ:.+]] = linalg.generic {indexing_maps = [#{{.+}}], iterator_types = ["parallel"]} outs(%[[FE]] : tensor<8xf32>)
// ROPE:           linalg.index 0 : index
// ROPE:           math.exp
// ROPE-NOT:       math.cos
// ROPE:         } -> tensor<8xf32>
// cos and sin once per (b, t, i)
// ROPE:         %[[CS:.+]]:2 = linalg.generic {indexing_maps = [#[[B3]], #[[I3]], #[[ID3]], #[[ID3]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[OFF]], %[[FREQ]] : tensor<?xi32>, tensor<8xf32>) outs(%{{.+}}, %{{.+}} : tensor<?x?x8xf32>, tensor<?x?x8xf32>)
// ROPE-NOT:       math.exp
// ROPE:           math.cos
// ROPE:           math.sin
// ROPE:         } -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>)
// ROPE:         %[[R:.+]] = linalg.generic {indexing_maps = [#[[B4]], #[[T4]], #[[T4]], #[[ID4]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%[[OFF]], %[[CS]]#0, %[[CS]]#1 : tensor<?xi32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>)
// ROPE-NEXT:    ^bb0(%{{.+}}: i32, %[[C:.+]]: f32, %[[S:.+]]: f32, %{{.+}}: f32):
// ROPE-NOT:       math.
// ROPE:           arith.mulf %{{.+}}, %[[C]] : f32
// ROPE:           arith.mulf %{{.+}}, %[[S]] : f32
// ROPE:         return %[[R]]
#r4 = affine_map<(b, t, h, i) -> (b, t, h, i)>
#rb = affine_map<(b, t, h, i) -> (b)>
func.func @rope(%x: tensor<?x?x4x8xf32>, %off: tensor<?xi32>) -> tensor<?x?x4x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %k = arith.constant -2.30258512 : f32
  %b = tensor.dim %x, %c0 : tensor<?x?x4x8xf32>
  %t = tensor.dim %x, %c1 : tensor<?x?x4x8xf32>
  %e = tensor.empty(%b, %t) : tensor<?x?x4x8xf32>
  %r = linalg.generic {indexing_maps = [#rb, #r4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%off : tensor<?xi32>) outs(%e : tensor<?x?x4x8xf32>) {
  ^bb0(%o: i32, %out: f32):
    %bi = linalg.index 0 : index
    %ti = linalg.index 1 : index
    %hi = linalg.index 2 : index
    %ii = linalg.index 3 : index
    %lower = arith.cmpi ult, %ii, %c4 : index
    %j = arith.remui %ii, %c4 : index
    %plo = arith.addi %ii, %c4 : index
    %phi = arith.subi %ii, %c4 : index
    %partner = arith.select %lower, %plo, %phi : index
    %p64 = arith.index_cast %ti : index to i64
    %o64 = arith.extsi %o : i32 to i64
    %pos = arith.addi %p64, %o64 : i64
    %posf = arith.sitofp %pos : i64 to f32
    %j64 = arith.index_cast %j : index to i64
    %jf = arith.sitofp %j64 : i64 to f32
    %a = arith.mulf %jf, %k : f32
    %freq = math.exp %a : f32
    %ang = arith.mulf %posf, %freq : f32
    %cos = math.cos %ang : f32
    %sin = math.sin %ang : f32
    %xi = tensor.extract %x[%bi, %ti, %hi, %ii] : tensor<?x?x4x8xf32>
    %xp = tensor.extract %x[%bi, %ti, %hi, %partner] : tensor<?x?x4x8xf32>
    %xc = arith.mulf %xi, %cos : f32
    %ps = arith.mulf %xp, %sin : f32
    %lo = arith.subf %xc, %ps : f32
    %hi2 = arith.addf %xc, %ps : f32
    %y = arith.select %lower, %lo, %hi2 : f32
    linalg.yield %y : f32
  } -> tensor<?x?x4x8xf32>
  return %r : tensor<?x?x4x8xf32>
}

// -----

// Nothing to move: the only math op depends on every loop.
// ROPE-LABEL: func.func @all_loops(
// ROPE:         linalg.generic
// ROPE-NOT:     linalg.generic
#e2 = affine_map<(m, k) -> (m, k)>
func.func @all_loops(%x: tensor<?x8xf32>, %init: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %r = linalg.generic {indexing_maps = [#e2, #e2], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<?x8xf32>) outs(%init : tensor<?x8xf32>) {
  ^bb0(%a: f32, %out: f32):
    %e = math.exp %a : f32
    linalg.yield %e : f32
  } -> tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}
