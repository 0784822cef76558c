// RUN: photon-opt %s --photon-plan-workspace | FileCheck %s

// A stage (public, llvm.emit_c_interface) whose arguments' dimensions are named by
// photon.arg_shapes: S rows (dim 0 of %x and of %out are both S, so one atom). %a and %c
// (S x 128 B) are never live at the same time and share offset 0; %b (64 B) is live across
// both and goes after them (offset 128 x rows; 64 fixed bytes). A size read from memory has no bound and a buffer allocated
// in a loop is allocated per iteration: both stay on the heap, counted. The kernel @k is
// called only from the stage: its scratch follows the stage's own bytes.

// The plan: 64 fixed bytes + 128 bytes per row (S); 4 buffers placed, 2 on the heap; the
// kernel's 64 B per row of its argument map to S at the call.
// CHECK: module attributes {photon.workspace_plan = {
// CHECK-SAME: __photon_stage_s = {fixed_bytes = 64 : i64, heap = 2 : i64
// CHECK-SAME: "memref<?xf32>: a size with no bound in the arguments' dimensions"
// CHECK-SAME: "memref<8xf32>: allocated in a loop"
// CHECK-SAME: kernels = [{callee = @k, fixed_bytes = 0 : i64, row_bytes = 64 : i64, rows = ["S"]}]
// CHECK-SAME: planned = 4 : i64, row_bytes = 128 : i64, rows = ["S"]}
// CHECK-SAME: k = {fixed_bytes = 0 : i64, heap = 0 : i64, heap_reasons = [], planned = 1 : i64, row_bytes = 64 : i64, rows = ["a0.0"]}

// CHECK: llvm.mlir.global internal thread_local @__photon_workspace_ptr()
// CHECK: llvm.mlir.global internal thread_local @__photon_workspace_bytes(0 : i64)
// CHECK: llvm.mlir.global internal thread_local @__photon_workspace_used(0 : i64)
// CHECK: llvm.func @photon_workspace_set(%[[P:.*]]: !llvm.ptr, %[[N:.*]]: i64)
// CHECK: llvm.intr.threadlocal.address
// CHECK: llvm.store %[[P]]
// CHECK: llvm.store %[[N]]

// CHECK-LABEL: func.func private @k(
// The kernel's scratch starts at the bytes the calling stage uses.
// CHECK: %[[ROWS:.*]] = arith.muli %c1, %dim
// CHECK: %[[USED:.*]] = llvm.load {{.*}} : !llvm.ptr -> i64
// CHECK: %[[BASE:.*]] = arith.index_cast %[[USED]] : i64 to index
// CHECK: %[[WS:.*]]:2 = scf.if
// CHECK: scf.yield %{{.*}}, %[[BASE]] : memref<?xi8>, index
// CHECK: memref.alloc({{.*}}) {alignment = 64 : i64} : memref<?xi8>
// CHECK: memref.view %[[WS]]#0[{{.*}}][{{.*}}] : memref<?xi8> to memref<?xf32>
// CHECK-NOT: memref.dealloc %{{.*}} : memref<?xf32>
// CHECK: scf.if
// CHECK-NEXT: memref.dealloc %[[WS]]#0 : memref<?xi8>
func.func private @k(%x: memref<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %f = arith.constant 0.0 : f32
  %n = memref.dim %x, %c0 : memref<?x16xf32>
  %c16 = arith.constant 16 : index
  %m = arith.muli %n, %c16 : index
  %s = memref.alloc(%m) {alignment = 64 : i64} : memref<?xf32>
  linalg.fill ins(%f : f32) outs(%s : memref<?xf32>)
  memref.dealloc %s : memref<?xf32>
  return
}

// CHECK-LABEL: func.func @__photon_stage_s(
// Rows = dim 0 of %arg1 (S); need = 64 + 128 x rows; the stage records the bytes it uses.
// CHECK: %[[ROWS:.*]] = memref.dim %arg1, %c0
// CHECK: %[[R:.*]] = arith.muli %c1, %[[ROWS]]
// CHECK: %[[PER:.*]] = arith.muli %c128, %[[R]]
// CHECK: %[[NEED:.*]] = arith.addi %c64, %[[PER]]
// CHECK: %[[OK:.*]] = arith.cmpi ule
// CHECK: %[[WS:.*]]:2 = scf.if %[[OK]] -> (memref<?xi8>, index)
// CHECK: builtin.unrealized_conversion_cast {{.*}} to memref<?xi8>
// CHECK: } else {
// CHECK: memref.alloc(%[[NEED]]) {alignment = 64 : i64} : memref<?xi8>
// CHECK: arith.select %[[OK]], %[[NEED]]
// CHECK: llvm.store
// %a at 0 x rows, %b at 128 x rows (after %a and %c in the per-row coordinate), %c at
// 0 x rows (reusing %a's range: %a is dead by then), %k at 0 x rows (live with %b only).
// CHECK: arith.muli %[[R]], %c0
// CHECK: %[[A:.*]] = memref.view %[[WS]]#0[{{.*}}][%{{.*}}] : memref<?xi8> to memref<?x32xf32>
// CHECK: arith.muli %[[R]], %c128
// CHECK: memref.view %[[WS]]#0[{{.*}}][] : memref<?xi8> to memref<16xf32>
// CHECK: arith.muli %[[R]], %c0
// CHECK: memref.view %[[WS]]#0[{{.*}}][%{{.*}}] : memref<?xi8> to memref<?x32xf32>
// Unbounded and in a loop: heap allocations, freed as before.
// CHECK: memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: memref.dealloc
// CHECK: scf.for
// CHECK: memref.alloc() : memref<8xf32>
// CHECK: arith.muli %[[R]], %c0
// CHECK: memref.view %[[WS]]#0[{{.*}}][%{{.*}}] : memref<?xi8> to memref<?x16xf32>
// CHECK: call @k
// CHECK-NOT: memref.dealloc %{{.*}} : memref<16xf32>
// CHECK: scf.if
// CHECK-NEXT: memref.dealloc %[[WS]]#0 : memref<?xi8>
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @__photon_stage_s(%w: memref<?xi8>, %x: memref<?x32xf32>, %lens: memref<?xindex>,
                            %out: memref<?x32xf32>)
    attributes {llvm.emit_c_interface, photon.arg_shapes = [["W"], ["S", "32"], ["S"], ["S", "32"]]} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %f = arith.constant 1.0 : f32
  %s = memref.dim %x, %c0 : memref<?x32xf32>
  %a = memref.alloc(%s) {alignment = 64 : i64} : memref<?x32xf32>
  %b = memref.alloc() {alignment = 64 : i64} : memref<16xf32>
  linalg.fill ins(%f : f32) outs(%b : memref<16xf32>)
  linalg.copy ins(%x : memref<?x32xf32>) outs(%a : memref<?x32xf32>)
  memref.dealloc %a : memref<?x32xf32>
  %s2 = memref.dim %out, %c0 : memref<?x32xf32>
  %c = memref.alloc(%s2) {alignment = 64 : i64} : memref<?x32xf32>
  linalg.fill ins(%f : f32) outs(%c : memref<?x32xf32>)
  linalg.copy ins(%c : memref<?x32xf32>) outs(%out : memref<?x32xf32>)
  memref.dealloc %c : memref<?x32xf32>
  // A size read from memory: no bound.
  %len = memref.load %lens[%c0] : memref<?xindex>
  %d = memref.alloc(%len) : memref<?xf32>
  linalg.fill ins(%f : f32) outs(%d : memref<?xf32>)
  memref.dealloc %d : memref<?xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    %e = memref.alloc() : memref<8xf32>
    linalg.fill ins(%f : f32) outs(%e : memref<8xf32>)
    memref.dealloc %e : memref<8xf32>
  }
  %k = memref.alloc(%s) {alignment = 64 : i64} : memref<?x16xf32>
  call @k(%k) : (memref<?x16xf32>) -> ()
  memref.dealloc %k : memref<?x16xf32>
  memref.dealloc %b : memref<16xf32>
  return
}
