// RUN: photon-opt %s --convert-photon-to-linalg --split-input-file --verify-diagnostics

func.func @no_offset() -> tensor<4xf32> {
  // expected-error @below {{weight 'w' is not in the weights blob (no weights file given: pass --weights)}}
  %w = "photon.weight"() {name = "w"} : () -> tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

// RUN: not photon-opt %s --convert-photon-to-linalg=weights-file=%t.missing 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: cannot read weights blob '{{.*}}.missing'
func.func @f() {
  return
}
