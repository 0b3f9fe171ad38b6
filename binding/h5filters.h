// The codecs of HDF5 filters, written here from their formats so that the same code serves HDF5's
// filter pipeline (registered with H5Zregister at load: no HDF5_PLUGIN_PATH needed) and the
// parallel chunk path (h5chunks.cpp, which runs them on worker threads without the HDF5 lock):
//   shuffle  (2)     HDF5's byte shuffle
//   deflate  (1)     a zlib stream (compress2/uncompress), as HDF5's deflate filter writes
//   lz4      (32004) as hdf5plugin/HDF5 filters register it: 8-byte big-endian original size,
//                    4-byte big-endian block size, then per block a 4-byte big-endian compressed
//                    size and the LZ4 block (raw when compressing does not shrink it)
//   zstd     (32015) one zstd frame per chunk; cd_values[0] = level
// Nothing here calls HDF5 except registerCodecFilters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace ckpt {

constexpr int kFilterLz4 = 32004;
constexpr int kFilterZstd = 32015;

// Registers the lz4 and zstd filters with this HDF5 (the caller holds the lock). Idempotent.
void registerCodecFilters();
// Whether the addon was built with zstd and lz4 (without them, their encoders/decoders fail).
bool codecsBuiltIn();

// Leaves new elements uninitialised: a codec's output buffer is resized to its bound before every
// chunk and then overwritten, and std::vector's zero-fill of it cost as much as the copy it fed.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};
using Bytes = std::vector<uint8_t, UninitAllocator<uint8_t>>;

void shuffleBytes(const uint8_t* src, uint8_t* dst, size_t nbytes, size_t esize);
void unshuffleBytes(const uint8_t* src, uint8_t* dst, size_t nbytes, size_t esize);

// Each returns false on failure (corrupt input, a size that does not fit); `out` is replaced.
// `expected` (0: unknown) is the decoded size a chunk must have: a damaged header claiming more is
// refused before anything is allocated.
bool deflateEncode(const uint8_t* src, size_t n, int level, Bytes& out);
bool deflateDecode(const uint8_t* src, size_t n, size_t expected, Bytes& out);
bool zstdEncode(const uint8_t* src, size_t n, int level, Bytes& out);
bool zstdDecode(const uint8_t* src, size_t n, size_t expected, Bytes& out);
bool lz4Encode(const uint8_t* src, size_t n, uint64_t blockSize, Bytes& out);
bool lz4Decode(const uint8_t* src, size_t n, size_t expected, Bytes& out);

// The zstd levels the library accepts (negative levels are its fast modes).
int zstdMinLevel();
int zstdMaxLevel();

}  // namespace ckpt
