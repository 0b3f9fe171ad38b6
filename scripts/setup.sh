#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine that has Node >= 20: the system packages the addon and the
# tests need (libhdf5 to build against, Debian's numpy and h5py as interop peers), the npm
# dependencies, the native addon and the TypeScript build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-hdf5plugin + hdf5-filter-plugin (lz4) and python3-zstandard: peers of the zstd/lz4 tests.
packages=(python3 python3-numpy python3-h5py python3-hdf5plugin hdf5-filter-plugin python3-zstandard libhdf5-dev hdf5-tools
  libzstd-dev liblz4-dev cmake g++ make)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --ignore-scripts; else npm install --no-audit --no-fund --ignore-scripts; fi
npm run build:native
npm run build:ts
echo "setup: done"
