#!/usr/bin/env bash
# Builds the HDF5 addon into build/Release/checkpointer_native.node with cmake-js (which uses
# node-api-headers and node-addon-api from node_modules, no header download). Needs cmake and a
# C++17 compiler, and either libhdf5-dev (scripts/setup.sh installs it) or, with --hdf5=bundled,
# what scripts/build-hdf5.sh needs to build a static HDF5 into build/deps/ (linked into the .node).
# Prints only warnings and errors unless the build fails, then the full log.
#
#   bash scripts/build-native.sh [--hdf5=system|--hdf5=bundled]   # default: system
set -euo pipefail
cd "$(dirname "$0")/.."

hdf5=system
for arg in "$@"; do
  case "$arg" in
    --hdf5=system | --hdf5=bundled) hdf5="${arg#--hdf5=}" ;;
    *) echo "usage: build-native.sh [--hdf5=system|--hdf5=bundled]" >&2; exit 2 ;;
  esac
done

# cmake-js ignores an empty --CD value, so "system" is spelt OFF (false to CMake's if()).
root=OFF
if [ "$hdf5" = bundled ]; then
  bash scripts/build-hdf5.sh
  root="$PWD/build/deps/hdf5-1.14.5"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# configure + build rather than compile: compile configures only when build/ has no CMake cache
# (a switch between system and bundled would be ignored), and after a failed build it retries
# with rebuild, which deletes all of build/ (build/deps/ with it).
if ! { npx --no-install cmake-js configure --log-level warn --CDCHECKPOINTER_HDF5_ROOT="$root" &&
  npx --no-install cmake-js build --log-level warn; } >"$log" 2>&1; then
  cat "$log" >&2
  if [ "$hdf5" = system ]; then
    echo "build-native: failed; is libhdf5-dev installed (apt-get install libhdf5-dev)?" >&2
  else
    echo "build-native: failed against the static HDF5 in ${root#"$PWD/"}" >&2
  fi
  exit 1
fi
grep -iE "warning|error" "$log" >&2 || true
node -e "require('node-gyp-build')(process.cwd())" || {
  echo "build-native: the addon was built but does not load" >&2
  exit 1
}
echo "build-native: build/Release/checkpointer_native.node (HDF5: $hdf5)"
