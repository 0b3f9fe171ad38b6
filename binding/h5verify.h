// Verifying an untrusted HDF5 file (lib/backends/hdf5-verify.ts runs this in a child process):
// every object HDF5 would touch when the package reads the file is visited once, the way a read
// visits it, without reading numeric data — group link tables, object headers, datatypes,
// dataspaces, layouts, the whole chunk index, variable-length strings (the global heap) and
// attributes — plus the checks HDF5 itself does not make: raw data and chunks that lie past the
// end of the file, an extent past its maximum, and (reported, not damage) an extent that implies
// vastly more chunks than are stored.
//
// Progress is written straight to a file descriptor, unbuffered, before each object: if libhdf5
// crashes or loops on an object, the parent still knows which one ("enter <path>" is the last
// line), marks it damaged and runs the verification again without it.
#pragma once

#include <string>
#include <vector>

namespace ckpt {

struct VerifyOptions {
  std::vector<std::string> skip;  // paths (and everything under them) not to visit again
  int progressFd = 1;
  unsigned long long fileSize = 0;
  // A chunked dataset with more unwritten chunks than this is reported as {"sparse": path,
  // "stored": n}: HDF5 fills each unwritten chunk a read covers separately (~10 us each), so a
  // whole read of a damaged extent took 13 s and 2 GiB. Slices of it still read.
  unsigned long long maxUnwrittenChunks = 1ull << 18;
  // No new object reached for this long: libhdf5 is looping on the current one. The process
  // writes {"stalled": path} and exits at once (_exit(70)): it is the verifier's child, and its
  // HDF5 thread cannot be interrupted any other way. 0 = no watchdog.
  unsigned stallMs = 3000;
};

// Opens `path` read-only and visits it; damage is reported as "bad <path>\t<why>" lines. Throws a
// Failure when the file cannot be opened at all.
void verifyFile(const std::string& path, const VerifyOptions& opts);

}  // namespace ckpt
