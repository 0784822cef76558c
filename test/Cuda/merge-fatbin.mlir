// photon-gpu-merge-fatbin's diagnostics. The merge itself (fatbinary over real cubins) is
// checked by multiarch-host-object.mlir and cuobjdump.mlir. Inputs/failing-toolkit's
// `fatbinary` exits with status 3; a toolkit without bin/fatbinary is not searched further.
// RUN: photon-cuda-opt %s --photon-gpu-merge-fatbin="toolkit=%S/Inputs/failing-toolkit" -split-input-file -verify-diagnostics
// RUN: not photon-cuda-opt %s --photon-gpu-merge-fatbin="toolkit=%t.no-toolkit" 2>&1 | FileCheck %s --check-prefix=NOTK
// NOTK: error: photon-gpu-merge-fatbin: `fatbinary` not found in {{.*}}.no-toolkit/bin; install the CUDA toolkit or pass toolkit=<path>

module attributes {gpu.container_module} {
  // A binary holding PTX text (format=isa) instead of cubins: nothing for fatbinary.
  // expected-error @below {{photon-gpu-merge-fatbin: expected NVVM cubin objects (gpu-module-to-binary format=bin)}}
  gpu.binary @ptx [#gpu.object<#nvvm.target<chip = "sm_80">, assembly = "// ptx">,
                   #gpu.object<#nvvm.target<chip = "sm_90">, assembly = "// ptx">]
}

// -----

module attributes {gpu.container_module} {
  // expected-error @below {{photon-gpu-merge-fatbin: fatbinary failed (exit 3)}}
  gpu.binary @cubins [#gpu.object<#nvvm.target<chip = "sm_80">, bin = "not a cubin">,
                      #gpu.object<#nvvm.target<chip = "sm_90">, bin = "not a cubin">]
}

// -----

module attributes {gpu.container_module} {
  // A binary of one object is left as it is.
  gpu.binary @one [#gpu.object<#nvvm.target<chip = "sm_80">, bin = "cubin">]
}
