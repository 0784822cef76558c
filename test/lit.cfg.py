# lit configuration for photon. Loaded through the configured build/test/lit.site.cfg.py;
# run with `lit -v build/test` (ctest's `lit` test does exactly that).
#
# Substitutions available to RUN lines:
#   photon-opt, photon-import, photon-compile, photon-run, photon-bench  (build/bin)
#   FileCheck, not, count, split-file, mlir-opt, mlir-translate, mlir-runner  (LLVM 22)
#   %python       the system Python with torch/onnx/numpy (/usr/bin/python3)
#   %photon_src   the source root (fixtures: %photon_src/test/fixtures/...)
#   %photon_obj   the build root
#   %testmodel    the runtime's test model library (test/unit/runtime/testmodel), a model.so
#                 for hand-made artifacts (feature `photon-testmodel` when it was built)
# Features: one per photon tool that was built (e.g. `REQUIRES: photon-import`).

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "PHOTON"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.photon_obj_root, "test")
# Inputs and data that are not tests themselves.
config.excludes = [
    "CMakeLists.txt",
    "README.md",
    "lit.cfg.py",
    "lit.site.cfg.py",
    "unit",
    "fixtures",
    "Inputs",
]

llvm_config.use_default_substitutions()
# %python is the system interpreter (the one with torch/onnx/numpy), not lit's own.
config.substitutions = [s for s in config.substitutions if s[0] != "%python"]
config.substitutions.append(("%python", '"%s"' % config.python_executable))
config.substitutions.append(("%photon_src", config.photon_src_root))
config.substitutions.append(("%photon_obj", config.photon_obj_root))

llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.photon_tools_dir, append_path=True)
# Keep BLAS/OpenMP from oversubscribing small CI machines.
config.environment["OPENBLAS_NUM_THREADS"] = "1"

photon_tools = ["photon-opt", "photon-import", "photon-compile", "photon-run", "photon-bench",
                "photon-serve"]
for tool in photon_tools:
    if os.path.exists(os.path.join(config.photon_tools_dir, tool)):
        config.available_features.add(tool)
llvm_config.add_tool_substitutions(
    [ToolSubst(t, unresolved="ignore") for t in photon_tools], [config.photon_tools_dir]
)
llvm_config.add_tool_substitutions(
    [
        ToolSubst("split-file", unresolved="fatal"),
        ToolSubst("mlir-opt", unresolved="ignore"),
        ToolSubst("mlir-translate", unresolved="ignore"),
        ToolSubst("mlir-runner", unresolved="ignore"),
    ],
    [config.llvm_tools_dir],
)

# The runtime's test model library: a model.so for artifacts written by tests (test/hostile).
_testmodel = os.path.join(config.photon_obj_root, "test", "unit", "runtime", "photon_testmodel.so")
if os.path.exists(_testmodel):
    config.available_features.add("photon-testmodel")
config.substitutions.append(("%testmodel", _testmodel))
# Host CPU features some tests depend on (e.g. an AVX-512 artifact is refused only without it).
try:
    with open("/proc/cpuinfo") as _f:
        _flags = _f.read()
    if " avx512f" in _flags:
        config.available_features.add("host-avx512")
    if " avx512_fp16" in _flags:
        config.available_features.add("host-avx512fp16")
except OSError:
    pass

# Node with the official `openai` client (scripts/setup.sh installs it into .deps/npm) drives
# photon-serve in test/serve; without them those tests are reported UNSUPPORTED.
import shutil
import subprocess

_npm_dir = os.path.join(config.photon_src_root, ".deps", "npm")
_node = shutil.which("node")
_node_ok = False
if _node:
    try:
        _node_ok = subprocess.run([_node, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        _node_ok = False
if not _node_ok:
    lit_config.note("node is missing or does not run: test/serve (photon-serve with the openai "
                    "client) is skipped; install nodejs and run scripts/setup.sh")
elif not os.path.exists(os.path.join(_npm_dir, "node_modules", "openai", "package.json")):
    lit_config.note("the openai npm package is not in .deps/npm: test/serve (photon-serve with "
                    "the openai client) is skipped; run scripts/setup.sh (needs npm)")
else:
    config.available_features.add("openai-node")
config.substitutions.append(("%node", '"%s"' % (_node or "node")))
config.substitutions.append(("%npm_dir", _npm_dir))
