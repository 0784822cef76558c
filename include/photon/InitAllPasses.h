//===- InitAllPasses.h - register every photon pass and pipeline -*- C++ -*-===//
//
// For tools that run photon passes by name (photon-opt, photon-compile): the importer's
// local raising (photon-raise-local), the target-neutral passes, convert-photon-to-linalg
// and the CPU code generation (its passes, pipelines and attention kernels). The CUDA passes register separately
// (photon/Codegen/CUDA/CudaPipeline.h), since their library is optional.
//
//===----------------------------------------------------------------------===//

#ifndef PHOTON_INITALLPASSES_H
#define PHOTON_INITALLPASSES_H

#include "photon/Codegen/CPU/Passes.h"
#include "photon/Conversion/Passes.h"
#include "photon/Import/Passes.h"
#include "photon/Transforms/Passes.h"

namespace mlir {
namespace photon {

inline void registerPhotonPasses() {
  registerPhotonImportPasses();
  registerPhotonTransformsPasses();
  registerPhotonConversionPasses();
  registerPhotonCPUCodegen();
}

} // namespace photon
} // namespace mlir

#endif // PHOTON_INITALLPASSES_H
