#!/usr/bin/env bash
# Builds the HDF5 addon into build/Release/checkpointer_native.node with cmake-js (which uses
# node-api-headers and node-addon-api from node_modules, no header download). Needs cmake, a C++17
# compiler and libhdf5-dev (scripts/setup.sh installs them). Prints only warnings and errors
# unless the build fails, then the full log.
set -euo pipefail
cd "$(dirname "$0")/.."

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! npx --no-install cmake-js compile --log-level warn >"$log" 2>&1; then
  cat "$log" >&2
  echo "build-native: failed; is libhdf5-dev installed (apt-get install libhdf5-dev)?" >&2
  exit 1
fi
grep -iE "warning|error" "$log" >&2 || true
node -e "require('node-gyp-build')(process.cwd())" || {
  echo "build-native: the addon was built but does not load" >&2
  exit 1
}
echo "build-native: build/Release/checkpointer_native.node"
