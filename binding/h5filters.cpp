#include "h5filters.h"

#include <zlib.h>
#ifdef CHECKPOINTER_HAVE_CODECS
#include <lz4.h>
#include <zstd.h>
#endif

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <limits>

#include "h5core.h"

namespace ckpt {

// ---------------------------------------------------------------------------------------------
// Shuffle: byte k of every element, then byte k+1 ... (HDF5's H5Z_FILTER_SHUFFLE); a tail that
// is not a whole element stays where it is.

namespace {

#if defined(__SSE2__)
// SSE2 (every x86-64): 16 elements of E = 2^m bytes are E registers, a 16E-byte matrix whose
// bytes are indexed [element (4 bits) | byte (m bits)]; the shuffle wants [byte | element].
// One round of unpacklo/hi_epi8, pairing register k with k + E/2, rotates that (4+m)-bit index
// left by one bit: the shuffle is 4 rounds, the unshuffle m. 2.3x the scalar loop for E = 8.
template <size_t E>
inline void interleaveRound(__m128i* x) {
  __m128i y[E];
  for (size_t k = 0; k < E / 2; ++k) {
    y[2 * k] = _mm_unpacklo_epi8(x[k], x[k + E / 2]);
    y[2 * k + 1] = _mm_unpackhi_epi8(x[k], x[k + E / 2]);
  }
  for (size_t k = 0; k < E; ++k) x[k] = y[k];
}

// Both return the elements done (a multiple of 16); the rest is left to the scalar loop.
template <size_t E>
size_t shuffleSimd(const uint8_t* src, uint8_t* dst, size_t n) {
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m128i x[E];
    for (size_t r = 0; r < E; ++r) x[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j * E + 16 * r));
    for (int round = 0; round < 4; ++round) interleaveRound<E>(x);
    for (size_t b = 0; b < E; ++b) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + b * n + j), x[b]);
  }
  return j;
}

template <size_t E>
size_t unshuffleSimd(const uint8_t* src, uint8_t* dst, size_t n) {
  constexpr int rounds = E == 8 ? 3 : E == 4 ? 2 : 1;
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m128i x[E];
    for (size_t b = 0; b < E; ++b) x[b] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + b * n + j));
    for (int round = 0; round < rounds; ++round) interleaveRound<E>(x);
    for (size_t r = 0; r < E; ++r) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * E + 16 * r), x[r]);
  }
  return j;
}
#else
template <size_t E>
size_t shuffleSimd(const uint8_t*, uint8_t*, size_t) { return 0; }
template <size_t E>
size_t unshuffleSimd(const uint8_t*, uint8_t*, size_t) { return 0; }
#endif

// In blocks of kBlock elements, so the source is read once (not once per byte position) and each
// of the esize output streams is written sequentially; E fixed lets the compiler unroll.
constexpr size_t kBlock = 64;

template <size_t E>
void shuffleFixed(const uint8_t* src, uint8_t* dst, size_t n, size_t esize) {
  const size_t es = E ? E : esize;
  size_t i = 0;
  if constexpr (E == 2 || E == 4 || E == 8) i = shuffleSimd<E>(src, dst, n);
  for (; i + kBlock <= n; i += kBlock)
    for (size_t b = 0; b < es; ++b) {
      uint8_t* d = dst + b * n + i;
      const uint8_t* s = src + i * es + b;
      for (size_t k = 0; k < kBlock; ++k) d[k] = s[k * es];
    }
  for (size_t b = 0; b < es; ++b)
    for (size_t k = i; k < n; ++k) dst[b * n + k] = src[k * es + b];
}

template <size_t E>
void unshuffleFixed(const uint8_t* src, uint8_t* dst, size_t n, size_t esize) {
  const size_t es = E ? E : esize;
  size_t i = 0;
  if constexpr (E == 2 || E == 4 || E == 8) i = unshuffleSimd<E>(src, dst, n);
  for (; i + kBlock <= n; i += kBlock)
    for (size_t b = 0; b < es; ++b) {
      const uint8_t* s = src + b * n + i;
      uint8_t* d = dst + i * es + b;
      for (size_t k = 0; k < kBlock; ++k) d[k * es] = s[k];
    }
  for (size_t b = 0; b < es; ++b)
    for (size_t k = i; k < n; ++k) dst[k * es + b] = src[b * n + k];
}

}  // namespace

void shuffleBytes(const uint8_t* src, uint8_t* dst, size_t nbytes, size_t esize) {
  size_t n = esize > 1 ? nbytes / esize : 0;
  switch (esize) {
    case 0:
    case 1: break;
    case 2: shuffleFixed<2>(src, dst, n, esize); break;
    case 4: shuffleFixed<4>(src, dst, n, esize); break;
    case 8: shuffleFixed<8>(src, dst, n, esize); break;
    default: shuffleFixed<0>(src, dst, n, esize);
  }
  std::memcpy(dst + n * esize, src + n * esize, nbytes - n * esize);
}

void unshuffleBytes(const uint8_t* src, uint8_t* dst, size_t nbytes, size_t esize) {
  size_t n = esize > 1 ? nbytes / esize : 0;
  switch (esize) {
    case 0:
    case 1: break;
    case 2: unshuffleFixed<2>(src, dst, n, esize); break;
    case 4: unshuffleFixed<4>(src, dst, n, esize); break;
    case 8: unshuffleFixed<8>(src, dst, n, esize); break;
    default: unshuffleFixed<0>(src, dst, n, esize);
  }
  std::memcpy(dst + n * esize, src + n * esize, nbytes - n * esize);
}

// ---------------------------------------------------------------------------------------------
// Deflate: the zlib stream HDF5's deflate filter writes. Only compress2/compressBound/inflate*
// are used — the symbols the bundled build already takes from the Node process's zlib.

bool deflateEncode(const uint8_t* src, size_t n, int level, Bytes& out) {
  if (n > std::numeric_limits<uLong>::max()) return false;
  uLongf cap = compressBound(static_cast<uLong>(n));
  out.resize(cap);
  if (compress2(out.data(), &cap, src, static_cast<uLong>(n), level) != Z_OK) return false;
  out.resize(cap);
  return true;
}

bool deflateDecode(const uint8_t* src, size_t n, size_t expected, Bytes& out) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return false;
  // One byte past the expected size, so the stream's end is seen after the last byte it holds.
  out.resize(expected > 0 ? expected + 1 : n * 2 + 64);
  z.next_in = const_cast<Bytef*>(src);
  size_t inLeft = n, produced = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (produced == out.size()) {
      if (expected > 0 || out.size() >= (size_t(1) << 32)) break;  // more than the chunk holds
      out.resize(out.size() * 2);
    }
    uInt inChunk = static_cast<uInt>(std::min<size_t>(inLeft, std::numeric_limits<uInt>::max()));
    uInt outChunk = static_cast<uInt>(std::min<size_t>(out.size() - produced, std::numeric_limits<uInt>::max()));
    z.avail_in = inChunk;
    z.next_out = out.data() + produced;
    z.avail_out = outChunk;
    rc = inflate(&z, Z_NO_FLUSH);
    inLeft -= inChunk - z.avail_in;
    produced += outChunk - z.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && z.avail_out == 0)) break;
    if (rc == Z_OK && inLeft == 0 && z.avail_out != 0) break;  // truncated stream
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END || (expected > 0 && produced != expected)) return false;
  out.resize(produced);
  return true;
}

#ifdef CHECKPOINTER_HAVE_CODECS
bool codecsBuiltIn() { return true; }

// ---------------------------------------------------------------------------------------------
// Zstandard: one frame, its content size in the header (as hdf5plugin's filter writes).

int zstdMinLevel() { return ZSTD_minCLevel(); }
int zstdMaxLevel() { return ZSTD_maxCLevel(); }

namespace {
// One context per thread, reused across chunks (a worker of the parallel path handles many).
struct ZstdContexts {
  ZSTD_CCtx* c = nullptr;
  ZSTD_DCtx* d = nullptr;
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
thread_local ZstdContexts zstdContexts;
}  // namespace

bool zstdEncode(const uint8_t* src, size_t n, int level, Bytes& out) {
  out.resize(ZSTD_compressBound(n));
  if (!zstdContexts.c) zstdContexts.c = ZSTD_createCCtx();
  ZSTD_CCtx* cctx = zstdContexts.c;
  if (!cctx) return false;
  size_t r = ZSTD_compressCCtx(cctx, out.data(), out.size(), src, n, level);
  if (ZSTD_isError(r)) return false;
  out.resize(r);
  return true;
}

bool zstdDecode(const uint8_t* src, size_t n, size_t expected, Bytes& out) {
  if (!zstdContexts.d) zstdContexts.d = ZSTD_createDCtx();
  ZSTD_DCtx* dctx = zstdContexts.d;
  if (!dctx) return false;
  unsigned long long size = ZSTD_getFrameContentSize(src, n);
  if (size == ZSTD_CONTENTSIZE_ERROR) return false;
  if (size != ZSTD_CONTENTSIZE_UNKNOWN) {
    if ((expected > 0 && size != expected) || size >= (uint64_t(1) << 32)) return false;
    out.resize(static_cast<size_t>(size));
    size_t r = ZSTD_decompressDCtx(dctx, out.data(), out.size(), src, n);
    if (ZSTD_isError(r) || r != size) return false;
    return true;
  }
  // A frame written without its size (streaming writers): decode as a stream.
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  out.resize(expected > 0 ? expected : n * 4 + 64);
  ZSTD_inBuffer in{src, n, 0};
  size_t produced = 0;
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    ZSTD_outBuffer o{out.data() + produced, out.size() - produced, 0};
    size_t r = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(r)) return false;
    produced += o.pos;
    if (r == 0) break;                                   // frame complete
    if (in.pos == in.size && o.pos < o.size) return false;  // truncated
  }
  out.resize(produced);
  return true;
}

// ---------------------------------------------------------------------------------------------
// LZ4 in the framing of HDF5 filter 32004.

namespace {

constexpr uint64_t kLz4DefaultBlock = uint64_t(1) << 30;  // cd_values[0] = 0
constexpr uint64_t kLz4MaxBlock = uint64_t(LZ4_MAX_INPUT_SIZE);

void putBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}
uint32_t getBe32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

}  // namespace

bool lz4Encode(const uint8_t* src, size_t n, uint64_t blockSize, Bytes& out) {
  if (blockSize == 0) blockSize = kLz4DefaultBlock;
  if (blockSize > n) blockSize = n;
  if (blockSize > kLz4MaxBlock) blockSize = kLz4MaxBlock;
  if (n > 0 && blockSize == 0) return false;
  uint64_t blocks = n == 0 ? 0 : (n + blockSize - 1) / blockSize;
  out.resize(12 + blocks * (4 + static_cast<size_t>(LZ4_compressBound(static_cast<int>(blockSize)))));
  uint64_t total = n;
  for (int i = 0; i < 8; ++i) out[i] = uint8_t(total >> (56 - 8 * i));
  putBe32(out.data() + 8, static_cast<uint32_t>(blockSize));
  size_t pos = 12;
  for (size_t done = 0; done < n;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(blockSize, n - done));
    uint8_t* dst = out.data() + pos + 4;
    int room = static_cast<int>(out.size() - pos - 4);
    int c = LZ4_compress_default(reinterpret_cast<const char*>(src + done), reinterpret_cast<char*>(dst), static_cast<int>(len), room);
    if (c <= 0 || static_cast<size_t>(c) >= len) {  // no gain: the block is stored as it is
      std::memcpy(dst, src + done, len);
      c = static_cast<int>(len);
    }
    putBe32(out.data() + pos, static_cast<uint32_t>(c));
    pos += 4 + static_cast<size_t>(c);
    done += len;
  }
  out.resize(pos);
  return true;
}

bool lz4Decode(const uint8_t* src, size_t n, size_t expected, Bytes& out) {
  if (n < 12) return false;
  uint64_t total = 0;
  for (int i = 0; i < 8; ++i) total = total << 8 | src[i];
  uint64_t blockSize = getBe32(src + 8);
  // An LZ4 block expands at most ~255x; HDF5 chunks hold less than 4 GiB.
  if ((expected > 0 && total != expected) || total >= (uint64_t(1) << 32) || total > uint64_t(n) * 256 + 64 ||
      (total > 0 && blockSize == 0))
    return false;
  out.resize(static_cast<size_t>(total));
  size_t pos = 12;
  for (uint64_t done = 0; done < total;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(blockSize, total - done));
    if (n - pos < 4) return false;
    size_t c = getBe32(src + pos);
    pos += 4;
    if (c > n - pos) return false;
    if (c == len) {
      std::memcpy(out.data() + done, src + pos, len);
    } else {
      int r = LZ4_decompress_safe(reinterpret_cast<const char*>(src + pos), reinterpret_cast<char*>(out.data() + done),
                                  static_cast<int>(c), static_cast<int>(len));
      if (r < 0 || static_cast<size_t>(r) != len) return false;
    }
    pos += c;
    done += len;
  }
  return true;
}

#else
bool codecsBuiltIn() { return false; }
int zstdMinLevel() { return 1; }
int zstdMaxLevel() { return 22; }
bool zstdEncode(const uint8_t*, size_t, int, Bytes&) { return false; }
bool zstdDecode(const uint8_t*, size_t, size_t, Bytes&) { return false; }
bool lz4Encode(const uint8_t*, size_t, uint64_t, Bytes&) { return false; }
bool lz4Decode(const uint8_t*, size_t, size_t, Bytes&) { return false; }
#endif

// ---------------------------------------------------------------------------------------------
// The HDF5 filter callbacks: HDF5 hands over a buffer from its allocator and takes back one.

namespace {

size_t replaceBuffer(const Bytes& out, size_t* bufSize, void** buf) {
  void* nb = H5allocate_memory(out.size() > 0 ? out.size() : 1, 0);
  if (!nb) return 0;
  std::memcpy(nb, out.data(), out.size());
  H5free_memory(*buf);
  *buf = nb;
  *bufSize = out.size() > 0 ? out.size() : 1;
  return out.size();
}

size_t zstdFilter(unsigned flags, size_t cdN, const unsigned cd[], size_t nbytes, size_t* bufSize, void** buf) {
  Bytes out;
  const uint8_t* in = static_cast<const uint8_t*>(*buf);
  bool ok;
  if (flags & H5Z_FLAG_REVERSE) {
    ok = zstdDecode(in, nbytes, 0, out);
  } else {
    int level = cdN > 0 ? static_cast<int>(cd[0]) : 3;
    ok = zstdEncode(in, nbytes, level, out);
  }
  return ok ? replaceBuffer(out, bufSize, buf) : 0;
}

size_t lz4Filter(unsigned flags, size_t cdN, const unsigned cd[], size_t nbytes, size_t* bufSize, void** buf) {
  Bytes out;
  const uint8_t* in = static_cast<const uint8_t*>(*buf);
  bool ok = (flags & H5Z_FLAG_REVERSE) ? lz4Decode(in, nbytes, 0, out) : lz4Encode(in, nbytes, cdN > 0 ? cd[0] : 0, out);
  return ok ? replaceBuffer(out, bufSize, buf) : 0;
}

// The names are the ones hdf5plugin's filters store in the file (h5dump -p shows them).
const H5Z_class2_t kZstdClass = {
    H5Z_CLASS_T_VERS, static_cast<H5Z_filter_t>(kFilterZstd), 1, 1, "Zstandard compression: http://www.zstd.net", nullptr, nullptr, zstdFilter,
};
const H5Z_class2_t kLz4Class = {
    H5Z_CLASS_T_VERS, static_cast<H5Z_filter_t>(kFilterLz4), 1, 1, "HDF5 lz4 filter; see http://www.hdfgroup.org/services/contributions.html", nullptr, nullptr, lz4Filter,
};

}  // namespace

void registerCodecFilters() {
  if (!codecsBuiltIn()) return;
  // Registered ahead of any plugin: HDF5 looks in its table before it searches plugin folders.
  if (H5Zregister(&kZstdClass) < 0 || H5Zregister(&kLz4Class) < 0) H5Eclear2(H5E_DEFAULT);
}

}  // namespace ckpt
