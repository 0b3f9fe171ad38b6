#!/usr/bin/env bash
# Builds zlib and HDF5 1.14.5 as static, position-independent C libraries into build/deps/hdf5-1.14.5
# (lib/libhdf5.a, lib/libz.a, lib/libsz.a + lib/libaec.a, include/), for linking HDF5 into the addon
# itself (CMake -DCHECKPOINTER_HDF5_ROOT=<prefix>): a prebuild then needs no libhdf5 where it runs;
# and zstd + lz4 (the codecs of the addon's own filters 32015 and 32004) into build/deps/codecs
# (-DCHECKPOINTER_CODECS_ROOT=<prefix>). From source because Debian's static libraries are not
# built with -fPIC and cannot go into a .node. A prefix whose stamp matches the pins and flags
# below is reused as it is (each prefix has its own stamp).
#
#   bash scripts/build-hdf5.sh                 # szip through Debian's libaec-dev (PIC static libs)
#   HDF5_SZIP=off bash scripts/build-hdf5.sh   # without the szip filter
#
# Debian-only (apt-get source); root installs dpkg-dev/libaec-dev when missing. Quiet unless it
# fails, then it prints the tail of build/deps/build-hdf5.log.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

deps="$PWD/build/deps"
prefix="$deps/hdf5-1.14.5"
src="$deps/src"   # verified source packages, kept so that a rebuild needs no network
work="$deps/work" # extracted trees and HDF5's CMake build dir, removed after a good build
log="$deps/build-hdf5.log"
stamp="$prefix/build-hdf5.stamp"

# Source packages: HDF5 1.14 first appears in trixie (bookworm has 1.10.8); bookworm's zlib is
# the one this machine runs. apt checks the files against the signed index too, but that index
# moves: these sums pin exactly what we build.
hdf5_version=1.14.5+repack-3
zlib_version=1:1.2.13.dfsg-1
sums="360f915a6116895a1bba75bf92bd2e9c1ace69e63b3622331d6fc783de543ff0  hdf5_1.14.5+repack-3.dsc
71cdb04c151ef4e8a7f88907adfc4f3b75afd44e96fbd55775e1c9d7c4e7c112  hdf5_1.14.5+repack.orig.tar.gz
284992575afb8755dd4ede8f75e2b83ac8d39644551665d94f7a0339f9eebca5  hdf5_1.14.5+repack-3.debian.tar.xz
3fa1e6b2fc525062aa88207dda52fed8e045373c809d362fe8a2bfbf7cf515a8  zlib_1.2.13.dfsg-1.dsc
71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1  zlib_1.2.13.dfsg.orig.tar.bz2
f66cf3d4f2d7defcd4d1fd1fb0a11ee39f1e01b42ec7d059c9dc5c1695133c44  zlib_1.2.13.dfsg-1.debian.tar.xz"
mirror=http://deb.debian.org/debian

# zstd and lz4: bookworm's (libzstd's +deb12u1 security upload is not on $mirror's source index).
zstd_version=1.5.4+dfsg2-5
lz4_version=1.9.4-1
codec_sums="8f602f92b575aa8b5e979196fb6ee82d78f233521dc9636526d3ecba1f63c1b1  libzstd_1.5.4+dfsg2-5.dsc
8cf4bbb65e77ec348d052c8d6230eba66d435bddf64c8b5be2fcb16880c19953  libzstd_1.5.4+dfsg2.orig.tar.xz
82ce911445772861d0838bd4545f93bc50658bc7f3cefdb17a307dfb8ffca5d8  libzstd_1.5.4+dfsg2-5.debian.tar.xz
e16302bca544d08d106efc216541f4a0403c8f8a5fad5eaac7588223a55af263  lz4_1.9.4-1.dsc
0b0e3aa07c8c063ddf40b082bdf7e37a1562bda40a0ff5272957f3e987e0e54b  lz4_1.9.4.orig.tar.gz
47ceec5b95f42598f7b9280b03df9659f2ee6852720ec181488e83bd643f0e5f  lz4_1.9.4-1.debian.tar.xz"
codecs="$deps/codecs"
codec_stamp="$codecs/build-codecs.stamp"
# ZSTD_NO_TRACE: no weak undefined ZSTD_trace_* hooks, which would bind to whatever defines them.
codec_cflags="-O3 -fPIC -DZSTD_NO_TRACE"

zlib_cflags="-O3 -fPIC"
hdf5_flags=(
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DBUILD_SHARED_LIBS=OFF
  -DBUILD_TESTING=OFF
  -DHDF5_BUILD_EXAMPLES=OFF -DHDF5_BUILD_TOOLS=OFF -DHDF5_BUILD_UTILS=OFF -DHDF5_BUILD_HL_LIB=OFF
  -DHDF5_BUILD_CPP_LIB=OFF -DHDF5_BUILD_FORTRAN=OFF -DHDF5_BUILD_JAVA=OFF
  -DHDF5_ENABLE_THREADSAFE=ON
  -DHDF5_ENABLE_Z_LIB_SUPPORT=ON -DHDF5_USE_ZLIB_STATIC=ON
  -DZLIB_LIBRARY="$prefix/lib/libz.a" -DZLIB_INCLUDE_DIR="$prefix/include"
)

mkdir -p "$deps"
: >"$log"
fail() {
  echo "build-hdf5: $*" >&2
  if [ -s "$log" ]; then echo "--- last lines of $log:" >&2; tail -n 40 "$log" >&2; fi
  exit 1
}
run() { "$@" >>"$log" 2>&1 || fail "failed: $*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# CI runs as root without sudo; elsewhere say what to install instead of asking for a password.
need_pkg() {
  installed "$1" && return 0
  [ "$(id -u)" -eq 0 ] || return 1
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq >>"$log" 2>&1 || return 1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >>"$log" 2>&1
}

# szip: HDF5's CMake accepts it only as a CMake package, which libaec-dev does not ship; the static
# libs are copied into the prefix and described by a small libaec-config.cmake there.
case "${HDF5_SZIP:-on}" in
  on)
    need_pkg libaec-dev || fail "szip needs libaec-dev (apt-get install libaec-dev), or run with HDF5_SZIP=off"
    aec_a="$(dpkg-query -L libaec-dev | grep -E '/libaec\.a$')"
    sz_a="$(dpkg-query -L libaec-dev | grep -E '/libsz\.a$')"
    szip="libaec-dev $(dpkg-query -W -f='${Version}' libaec-dev): $(sha256sum "$sz_a" "$aec_a" | tr -s '\n ' ' ')"
    hdf5_flags+=(-DHDF5_ENABLE_SZIP_SUPPORT=ON -DHDF5_ENABLE_SZIP_ENCODING=ON -DHDF5_USE_LIBAEC_STATIC=ON
      -DLIBAEC_PACKAGE_NAME=libaec -DSZIP_DIR="$prefix/lib/cmake/libaec")
    ;;
  off)
    szip=off
    hdf5_flags+=(-DHDF5_ENABLE_SZIP_SUPPORT=OFF)
    ;;
  *) fail "HDF5_SZIP must be on or off" ;;
esac

# Everything that changes the libraries' bytes; a prefix built from the same is reused.
key="$(printf '%s\n' "layout 2 (licences)" "hdf5 $hdf5_version" "zlib $zlib_version" "$sums" "zlib CFLAGS=$zlib_cflags" \
  "${hdf5_flags[@]}" "szip: $szip" "cc: $(cc --version | head -n 1)")"
tmp="$(mktemp -d "$deps/tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Downloads source packages (apt-get source) into $src unless the files of the sums ($1) are there.
fetch_sources() {
  local want="$1"
  shift
  (cd "$src" 2>/dev/null && sha256sum --check --strict --quiet <<<"$want") >/dev/null 2>&1 && return 0
  # A deb-src entry for this run only: a private sources file and lists, no package caches, so the
  # machine's apt configuration, lists and caches are left as they were. --download-only needs no
  # dpkg-source, and nothing is unpacked before the sums are checked.
  rm -rf "$tmp/lists" "$tmp/dl"
  mkdir -p "$tmp/lists/partial" "$tmp/dl"
  cat >"$tmp/checkpointer-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local apt=(-o Dir::Etc::sourcelist="$tmp/checkpointer-src.sources" -o Dir::Etc::sourceparts=-
    -o Dir::State::Lists="$tmp/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  run apt-get "${apt[@]}" update
  (cd "$tmp/dl" && apt-get "${apt[@]}" source --download-only "$@") \
    >>"$log" 2>&1 || fail "apt-get source failed (if a pinned version has left $mirror, snapshot.debian.org still has it)"
  if ! (cd "$tmp/dl" && sha256sum --check --strict <<<"$want") >>"$log" 2>&1; then
    fail "SHA-256 MISMATCH in the downloaded sources: not building (expected sums are pinned in $0)"
  fi
  mkdir -p "$src"
  mv -f "$tmp"/dl/* "$src/"
}

# zstd + lz4: their libraries only (the Makefiles' static targets), with -fPIC.
codec_key="$(printf '%s\n' "codecs 1" "zstd $zstd_version" "lz4 $lz4_version" "$codec_sums" "CFLAGS=$codec_cflags" "cc: $(cc --version | head -n 1)")"
if [ -f "$codec_stamp" ] && [ "$(cat "$codec_stamp")" = "$codec_key" ]; then
  echo "build-hdf5: reusing ${codecs#"$PWD/"}"
else
  fetch_sources "$codec_sums" "libzstd=$zstd_version" "lz4=$lz4_version"
  cwork="$tmp/codecs"
  mkdir -p "$cwork"
  run tar -xJf "$src/libzstd_1.5.4+dfsg2.orig.tar.xz" -C "$cwork"
  run tar -xzf "$src/lz4_1.9.4.orig.tar.gz" -C "$cwork"
  rm -rf "$codecs" && mkdir -p "$codecs/lib" "$codecs/include" "$codecs/share/licenses"
  run make -C "$cwork/zstd-1.5.4/lib" -j"$(nproc)" libzstd.a CFLAGS="$codec_cflags"
  run make -C "$cwork/lz4-1.9.4/lib" -j"$(nproc)" liblz4.a CFLAGS="$codec_cflags"
  install -m 644 "$cwork/zstd-1.5.4/lib/libzstd.a" "$cwork/lz4-1.9.4/lib/liblz4.a" "$codecs/lib/"
  install -m 644 "$cwork/zstd-1.5.4/lib/zstd.h" "$cwork/zstd-1.5.4/lib/zstd_errors.h" "$cwork/lz4-1.9.4/lib/lz4.h" "$codecs/include/"
  install -m 644 "$cwork/zstd-1.5.4/LICENSE" "$codecs/share/licenses/zstd-LICENSE"
  install -m 644 "$cwork/lz4-1.9.4/lib/LICENSE" "$codecs/share/licenses/lz4-LICENSE"
  printf '%s\n' "$codec_key" >"$codec_stamp"
  echo "build-hdf5: built ${codecs#"$PWD/"} in $((SECONDS - start))s"
fi

# The codecs' licences go with HDF5's (scripts/prebuild.js copies that folder beside the prebuild).
codec_licenses() { mkdir -p "$prefix/share/licenses" && install -m 644 "$codecs"/share/licenses/* "$prefix/share/licenses/"; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  codec_licenses
  echo "build-hdf5: reusing ${prefix#"$PWD/"} ($((SECONDS - start))s)"
  exit 0
fi

fetch_sources "$sums" "hdf5=$hdf5_version" "zlib=$zlib_version"

# Unpack with Debian's patches when dpkg-source is (or can be made) available; otherwise the
# upstream tarball as it is (Debian's patches are for autotools, Fortran, Java, Hurd and one
# long-double conversion that x86-64 has anyway).
rm -rf "$work" && mkdir -p "$work/zlib" "$work/hdf5"
command -v dpkg-source >/dev/null || need_pkg dpkg-dev || true
command -v ninja >/dev/null || need_pkg ninja-build || fail "HDF5 builds with Ninja: apt-get install ninja-build"
if command -v dpkg-source >/dev/null; then
  unpacked=debian
  run dpkg-source -x "$src/zlib_1.2.13.dfsg-1.dsc" "$work/zlib/src"
  run dpkg-source -x "$src/hdf5_1.14.5+repack-3.dsc" "$work/hdf5/src"
else
  unpacked=orig
  echo "build-hdf5: no dpkg-source; building the .orig tarballs without Debian's patches" >&2
  mkdir -p "$work/zlib/src" "$work/hdf5/src"
  run tar -xjf "$src/zlib_1.2.13.dfsg.orig.tar.bz2" -C "$work/zlib/src" --strip-components=1
  run tar -xzf "$src/hdf5_1.14.5+repack.orig.tar.gz" -C "$work/hdf5/src" --strip-components=1
fi

rm -rf "$prefix" && mkdir -p "$prefix/lib" "$prefix/include"
jobs="$(nproc)"

(cd "$work/zlib/src" && run env CFLAGS="$zlib_cflags" ./configure --static && run make -j"$jobs" libz.a)
install -m 644 "$work/zlib/src/libz.a" "$prefix/lib/"
install -m 644 "$work/zlib/src/zlib.h" "$work/zlib/src/zconf.h" "$prefix/include/"

if [ "$szip" != off ]; then
  install -m 644 "$sz_a" "$aec_a" "$prefix/lib/"
  install -m 644 /usr/include/szlib.h /usr/include/libaec.h "$prefix/include/"
  mkdir -p "$prefix/lib/cmake/libaec"
  cat >"$prefix/lib/cmake/libaec/libaec-config.cmake" <<EOF
# Written by checkpointer's scripts/build-hdf5.sh: Debian's libaec-dev ships no CMake package.
# HDF5 wants targets (it reads their OUTPUT_NAME for hdf5.pc), not paths.
if(NOT TARGET libaec::aec)
  add_library(libaec::aec STATIC IMPORTED GLOBAL)
  set_target_properties(libaec::aec PROPERTIES IMPORTED_LOCATION "$prefix/lib/libaec.a" OUTPUT_NAME aec)
  add_library(libaec::sz STATIC IMPORTED GLOBAL)
  set_target_properties(libaec::sz PROPERTIES IMPORTED_LOCATION "$prefix/lib/libsz.a" OUTPUT_NAME sz
    INTERFACE_LINK_LIBRARIES libaec::aec)
endif()
set(SZIP_INCLUDE_DIR "$prefix/include")
set(SZIP_LIBRARIES libaec::sz libaec::aec)
EOF
fi

run cmake -G Ninja -S "$work/hdf5/src" -B "$work/hdf5/build" -DCMAKE_INSTALL_PREFIX="$prefix" "${hdf5_flags[@]}"
# HDF5's CMake drops a filter it cannot find with only a warning: insist on what was asked for.
grep -q '^#define H5_HAVE_FILTER_DEFLATE 1' "$work/hdf5/build/src/H5pubconf.h" || fail "HDF5 configured without zlib"
if [ "$szip" != off ]; then
  grep -q '^#define H5_HAVE_FILTER_SZIP 1' "$work/hdf5/build/src/H5pubconf.h" || fail "HDF5 configured without szip"
fi
run cmake --build "$work/hdf5/build" --parallel "$jobs"
run cmake --install "$work/hdf5/build"

# The licences of what a prebuild carries (scripts/prebuild.js copies them beside it).
licenses="$prefix/share/licenses"
mkdir -p "$licenses"
install -m 644 "$work/hdf5/src/COPYING" "$licenses/HDF5-COPYING"
install -m 644 "$work/hdf5/src/COPYING_LBNL_HDF5" "$licenses/HDF5-COPYING_LBNL_HDF5"
install -m 644 "$work/zlib/src/LICENSE" "$licenses/zlib-LICENSE"
if [ "$szip" != off ]; then install -m 644 /usr/share/doc/libaec-dev/copyright "$licenses/libaec-copyright"; fi

codec_licenses
rm -rf "$work"
printf 'unpacked: %s\nbuilt in %ss on %s\n' "$unpacked" "$((SECONDS - start))" "$(date -u +%FT%TZ)" >"$prefix/build-hdf5.info"
printf '%s\n' "$key" >"$stamp"
echo "build-hdf5: built ${prefix#"$PWD/"} in $((SECONDS - start))s"
