#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (lit, GoogleTest, the PyTorch
# reference's tests) through ctest. The output ends with ctest's summary; the exit code
# is ctest's.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${PHOTON_BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac

bash "$ROOT/scripts/setup.sh" || { echo "[test] setup failed; no tests were run" >&2; exit 1; }

echo "[test] running ctest in ${BUILD_DIR#"$ROOT"/}"
# ctest's own summary ("N% tests passed, ...", "Total Test time") is the last output.
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j"${PHOTON_JOBS:-2}"
