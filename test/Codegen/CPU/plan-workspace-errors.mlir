// RUN: photon-opt %s --photon-plan-workspace -split-input-file -verify-diagnostics

// The pass runs once per module: a module that already has the workspace's setter is refused.
// expected-error @+1 {{the module already defines '@photon_workspace_set': photon-plan-workspace runs once per module}}
module {
  llvm.func @photon_workspace_set(%p: !llvm.ptr, %n: i64) {
    llvm.return
  }
  func.func @__photon_stage_s(%x: memref<?xf32>) attributes {llvm.emit_c_interface} {
    return
  }
}

// -----

// A buffer asking for more alignment than the workspace's 64 bytes.
module {
  func.func @__photon_stage_s(%x: memref<?xf32>) attributes {llvm.emit_c_interface} {
    // expected-error @+1 {{asks for a 128-byte alignment; the workspace aligns its buffers to 64 bytes}}
    %a = memref.alloc() {alignment = 128 : i64} : memref<16xf32>
    memref.dealloc %a : memref<16xf32>
    return
  }
}
