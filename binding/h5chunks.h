// Parallel chunk I/O for filtered datasets. HDF5 runs its filter pipeline on the calling thread,
// one chunk after another, under its global lock: gzip writes at one core's speed. For a dataset
// whose filters are all ones h5filters implements (shuffle, deflate, zstd, lz4) and whose stored
// type is the in-memory one, a chunk-aligned selection is instead
//   written: chunks gathered from the buffer (edge chunks padded with the fill value, as HDF5 pads
//            them; a whole chunk that is one run of the buffer is encoded from it in place) and
//            encoded on worker threads, each written whole with H5Dwrite_chunk in order by the
//            calling thread (which holds the lock; the workers never call HDF5);
//   read:    raw chunks fetched with H5Dread_chunk by the calling thread, decoded and scattered
//            into the output by the workers (a chunk never written reads as the fill value; a
//            whole chunk that is one run of the output is unshuffled straight into it).
// The bytes stored are the ones HDF5's own pipeline stores, filter mask included.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "h5core.h"

namespace ckpt {

struct ChunkPipeline {
  struct Step {
    H5Z_filter_t id;
    bool optional;
    std::vector<unsigned> cd;
  };
  std::vector<Step> steps;      // in the order they are applied when writing
  std::vector<hsize_t> chunk;   // chunk dims
  size_t esize = 0;             // bytes per element
  std::vector<uint8_t> fill;    // one element's fill value
  uint64_t chunkBytes = 0;
};

// The pipeline of `dset`, or null when the parallel path does not apply (contiguous, unfiltered,
// a filter not implemented here, a stored type other than the memory type, a fill value undefined).
std::shared_ptr<const ChunkPipeline> chunkPipeline(hid_t dset, hid_t ftype, hid_t mtype, size_t rank, size_t esize);

// The rows [lo, hi) of axis 0 of a selection whose other axes are chunk-aligned that cover whole
// chunks (or edge chunks up to the extent); false when there are none. The rows around them are
// partial chunks, for HDF5's pipeline to merge with what is stored. With `maxdims` (writes), an edge
// chunk counts as whole only on an axis that cannot grow: the last chunk of an append stays in
// HDF5's chunk cache for the next append to complete, rather than being compressed twice.
bool alignedRows(const ChunkPipeline& pl, const std::vector<hsize_t>& dims, const std::vector<hsize_t>& start,
                 const std::vector<hsize_t>& count, hsize_t* lo, hsize_t* hi, const std::vector<hsize_t>* maxdims = nullptr);

// `base` holds the selection in C order. Throws as a failed H5Dwrite would.
void writeChunks(hid_t dset, const std::string& where, const ChunkPipeline& pl, const uint8_t* base, const std::vector<hsize_t>& start,
                 const std::vector<hsize_t>& count);
// False (output undefined) when a chunk's storage cannot be queried: the caller reads through HDF5.
bool readChunks(hid_t dset, const std::string& where, const ChunkPipeline& pl, uint8_t* out, const std::vector<hsize_t>& start,
                const std::vector<hsize_t>& count);

// Worker threads the parallel path uses: CHECKPOINTER_HDF5_THREADS (0 = no parallel path, every
// chunk through HDF5's own pipeline), default the cores, at most 8.
unsigned chunkThreads();

}  // namespace ckpt
