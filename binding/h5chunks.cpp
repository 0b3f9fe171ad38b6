#include "h5chunks.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "h5filters.h"
#include "h5types.h"

namespace ckpt {

unsigned chunkThreads() {
  static const unsigned n = [] {
    const char* env = std::getenv("CHECKPOINTER_HDF5_THREADS");
    if (env && *env) {
      long v = std::strtol(env, nullptr, 10);
      if (v >= 0 && v <= 64) return static_cast<unsigned>(v);
    }
    unsigned hw = std::thread::hardware_concurrency();
    return std::max(1u, std::min(hw == 0 ? 1u : hw, 8u));
  }();
  return n;
}

std::shared_ptr<const ChunkPipeline> chunkPipeline(hid_t dset, hid_t ftype, hid_t mtype, size_t rank, size_t esize) {
  if (rank == 0 || esize == 0 || chunkThreads() == 0) return nullptr;
  Hid dcpl = ownPlist(H5Dget_create_plist(dset), "H5Dget_create_plist");
  int nf = H5Pget_nfilters(dcpl.get());
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED || nf <= 0) return nullptr;
  if (checkTri(H5Tequal(ftype, mtype), "H5Tequal") <= 0) return nullptr;
  auto pl = std::make_shared<ChunkPipeline>();
  pl->esize = esize;
  pl->chunk.resize(rank);
  if (H5Pget_chunk(dcpl.get(), static_cast<int>(rank), pl->chunk.data()) != static_cast<int>(rank)) {
    clearErrorStack();
    return nullptr;
  }
  pl->chunkBytes = esize;
  for (hsize_t c : pl->chunk) {
    if (c == 0) return nullptr;
    pl->chunkBytes = mulChecked(pl->chunkBytes, c, "chunk");
  }
  if (pl->chunkBytes >= (uint64_t(1) << 32)) return nullptr;
  for (int i = 0; i < nf; ++i) {
    unsigned flags = 0, cd[16] = {0}, config = 0;
    size_t ncd = 16;
    char name[8];
    H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, cd, sizeof name, name, &config);
    if (id < 0) throwHdf5("H5Pget_filter2");
    bool known = id == H5Z_FILTER_SHUFFLE || id == H5Z_FILTER_DEFLATE || ((id == kFilterZstd || id == kFilterLz4) && codecsBuiltIn());
    if (!known) return nullptr;
    if (ncd > 16) return nullptr;
    pl->steps.push_back({id, (flags & H5Z_FLAG_OPTIONAL) != 0, std::vector<unsigned>(cd, cd + ncd)});
  }
  // Edge chunks are padded with the fill value (HDF5 fills a new chunk's buffer with it first).
  H5D_fill_value_t defined;
  check(H5Pfill_value_defined(dcpl.get(), &defined), "H5Pfill_value_defined");
  if (defined == H5D_FILL_VALUE_UNDEFINED) return nullptr;
  pl->fill.assign(esize, 0);
  check(H5Pget_fill_value(dcpl.get(), mtype, pl->fill.data()), "H5Pget_fill_value");
  return pl;
}

bool alignedRows(const ChunkPipeline& pl, const std::vector<hsize_t>& dims, const std::vector<hsize_t>& start,
                 const std::vector<hsize_t>& count, hsize_t* lo, hsize_t* hi, const std::vector<hsize_t>* maxdims) {
  auto edge = [&](size_t d, hsize_t end) { return end == dims[d] && (!maxdims || (*maxdims)[d] == dims[d]); };
  for (size_t d = 1; d < pl.chunk.size(); ++d) {
    hsize_t c = pl.chunk[d], end = start[d] + count[d];
    if (count[d] == 0 || start[d] % c != 0 || (end % c != 0 && !edge(d, end))) return false;
  }
  hsize_t c = pl.chunk[0], end = start[0] + count[0];
  *lo = (start[0] + c - 1) / c * c;
  *hi = edge(0, end) ? end : end / c * c;
  return *hi > *lo;
}

namespace {

// The chunk grid of an aligned selection: chunk i (C order) and the part of it inside the selection.
struct Grid {
  std::vector<hsize_t> start, count, chunk, per;  // per: chunks along each axis
  size_t n = 1;
  Grid(const ChunkPipeline& pl, const std::vector<hsize_t>& s, const std::vector<hsize_t>& c) : start(s), count(c), chunk(pl.chunk) {
    per.resize(chunk.size());
    for (size_t d = 0; d < chunk.size(); ++d) {
      per[d] = (count[d] + chunk[d] - 1) / chunk[d];
      n *= static_cast<size_t>(per[d]);
    }
  }
  // File offset of chunk i and its extent inside the selection (box), relative origin in it (rel).
  void at(size_t i, std::vector<hsize_t>& off, std::vector<hsize_t>& rel, std::vector<hsize_t>& box) const {
    size_t r = chunk.size();
    off.resize(r), rel.resize(r), box.resize(r);
    for (size_t d = r; d-- > 0;) {
      hsize_t k = i % per[d];
      i /= per[d];
      rel[d] = k * chunk[d];
      off[d] = start[d] + rel[d];
      box[d] = std::min(chunk[d], count[d] - rel[d]);
    }
  }
};

// Copies a box of `box` elements between two C-ordered arrays: from `src` (shape sshape) at
// sorigin to `dst` (shape dshape) at dorigin. Trailing axes that span both arrays and the box are
// merged into one memcpy.
void copyBox(const uint8_t* src, const std::vector<hsize_t>& sshape, const std::vector<hsize_t>& sorigin, uint8_t* dst,
             const std::vector<hsize_t>& dshape, const std::vector<hsize_t>& dorigin, const std::vector<hsize_t>& box, size_t esize) {
  size_t r = box.size();
  size_t inner = r;  // axes [inner, r) merge
  uint64_t run = esize;
  while (inner > 0) {
    size_t d = inner - 1;
    run *= box[d];
    --inner;
    if (!(box[d] == sshape[d] && box[d] == dshape[d])) break;
  }
  // Strides in bytes.
  std::vector<uint64_t> ss(r), ds(r);
  uint64_t a = esize, b = esize;
  for (size_t d = r; d-- > 0;) {
    ss[d] = a, ds[d] = b;
    a *= sshape[d], b *= dshape[d];
  }
  uint64_t sbase = 0, dbase = 0;
  for (size_t d = 0; d < r; ++d) sbase += sorigin[d] * ss[d], dbase += dorigin[d] * ds[d];
  // Iterate over the axes before `inner`.
  std::vector<hsize_t> idx(inner, 0);
  uint64_t rows = 1;
  for (size_t d = 0; d < inner; ++d) rows *= box[d];
  for (uint64_t k = 0; k < rows; ++k) {
    uint64_t so = sbase, dof = dbase;
    for (size_t d = 0; d < inner; ++d) so += idx[d] * ss[d], dof += idx[d] * ds[d];
    std::memcpy(dst + dof, src + so, static_cast<size_t>(run));
    for (size_t d = inner; d-- > 0;) {
      if (++idx[d] < box[d]) break;
      idx[d] = 0;
    }
  }
}

void fillWith(uint8_t* dst, uint64_t bytes, const std::vector<uint8_t>& fill) {
  bool zero = std::all_of(fill.begin(), fill.end(), [](uint8_t b) { return b == 0; });
  if (zero) {
    std::memset(dst, 0, static_cast<size_t>(bytes));
    return;
  }
  for (uint64_t o = 0; o + fill.size() <= bytes; o += fill.size()) std::memcpy(dst + o, fill.data(), fill.size());
}

bool isFull(const std::vector<hsize_t>& box, const std::vector<hsize_t>& chunk) { return box == chunk; }

// Chunk buffers kept between chunks and calls: fresh megabyte buffers cost a page fault per 4 KiB
// (as much time as lz4 itself takes on them). At most kPoolBytes are kept, none over kPoolMax.
constexpr size_t kPoolBytes = size_t(64) << 20;
constexpr size_t kPoolMax = size_t(16) << 20;
std::mutex poolMutex;
std::vector<Bytes> pool;
size_t pooled = 0;

Bytes takeBuffer() {
  std::lock_guard<std::mutex> g(poolMutex);
  if (pool.empty()) return Bytes();
  Bytes b = std::move(pool.back());
  pool.pop_back();
  pooled -= b.capacity();
  return b;
}

void giveBuffer(Bytes&& b) {
  size_t cap = b.capacity();
  if (cap == 0 || cap > kPoolMax) return;
  std::lock_guard<std::mutex> g(poolMutex);
  if (pooled + cap > kPoolBytes) return;
  pooled += cap;
  pool.push_back(std::move(b));
}

// Whether a box of an array of shape `shape` is one run of bytes: full on every axis after the
// first it is more than one element thick on. Such a chunk is encoded straight from the caller's
// buffer (or decoded straight into it), saving a copy of every byte.
bool contiguousBox(const std::vector<hsize_t>& shape, const std::vector<hsize_t>& box) {
  size_t d = 0;
  while (d < box.size() && box[d] == 1) ++d;
  for (size_t e = d + 1; e < box.size(); ++e)
    if (box[e] != shape[e]) return false;
  return true;
}

// Byte offset of `origin` in a C-ordered array of `shape`.
uint64_t byteOffset(const std::vector<hsize_t>& shape, const std::vector<hsize_t>& origin, size_t esize) {
  uint64_t off = 0, stride = esize;
  for (size_t d = shape.size(); d-- > 0;) off += origin[d] * stride, stride *= shape[d];
  return off;
}

// The filters forward over the n bytes at src (left untouched), the result in `data`; returns the
// filter mask (an optional filter that fails is skipped, as HDF5 skips it). Throws for a
// mandatory filter that fails. Each step writes into whichever of data/scratch it is not reading.
uint32_t encodeChunk(const ChunkPipeline& pl, const uint8_t* src, size_t n, Bytes& data, Bytes& scratch, const std::string& where) {
  uint32_t mask = 0;
  const uint8_t* cur = src;
  size_t curSize = n;
  Bytes* out = &data;
  Bytes* last = nullptr;  // the buffer holding the latest result; null while it is still src
  for (size_t i = 0; i < pl.steps.size(); ++i) {
    const auto& s = pl.steps[i];
    bool ok = true;
    switch (s.id) {
      case H5Z_FILTER_SHUFFLE: {
        size_t es = s.cd.empty() ? pl.esize : s.cd[0];
        out->resize(curSize);
        shuffleBytes(cur, out->data(), curSize, es);
        break;
      }
      case H5Z_FILTER_DEFLATE: ok = deflateEncode(cur, curSize, s.cd.empty() ? 6 : static_cast<int>(s.cd[0]), *out); break;
      case kFilterZstd: ok = zstdEncode(cur, curSize, s.cd.empty() ? 3 : static_cast<int>(s.cd[0]), *out); break;
      case kFilterLz4: ok = lz4Encode(cur, curSize, s.cd.empty() ? 0 : s.cd[0], *out); break;
      default: ok = false;
    }
    if (!ok) {
      if (!s.optional) throw Failure("ERR_HDF5", "cannot write " + where + ": a filter failed to encode a chunk");
      mask |= 1u << i;
      continue;
    }
    last = out;
    cur = out->data(), curSize = out->size();
    out = out == &data ? &scratch : &data;
  }
  if (!last) data.assign(src, src + n);
  else if (last != &data) data.swap(scratch);
  return mask;
}

// The filters backward over `data`; the decoded chunk ends in `data`, or, when `direct` is given
// and the first filter (the last undone) is a shuffle, straight in direct[0, chunkBytes).
bool decodeChunk(const ChunkPipeline& pl, Bytes& data, Bytes& scratch, uint32_t mask, uint8_t* direct = nullptr) {
  for (size_t i = pl.steps.size(); i-- > 0;) {
    if (mask & (1u << i)) continue;
    const auto& s = pl.steps[i];
    // What this filter decodes to is the chunk's size when only shuffles (or skipped filters) ran
    // before it; then a header claiming another size is damage.
    size_t expect = static_cast<size_t>(pl.chunkBytes);
    bool first = true;  // no filter applied before this one
    for (size_t j = 0; j < i; ++j)
      if (!(mask & (1u << j))) {
        first = false;
        if (pl.steps[j].id != H5Z_FILTER_SHUFFLE) expect = 0;
      }
    bool ok = true;
    switch (s.id) {
      case H5Z_FILTER_SHUFFLE: {
        size_t es = s.cd.empty() ? pl.esize : s.cd[0];
        if (first && direct) {
          if (data.size() != pl.chunkBytes) return false;
          unshuffleBytes(data.data(), direct, data.size(), es);
          return true;
        }
        scratch.resize(data.size());
        unshuffleBytes(data.data(), scratch.data(), data.size(), es);
        break;
      }
      case H5Z_FILTER_DEFLATE: ok = deflateDecode(data.data(), data.size(), expect, scratch); break;
      case kFilterZstd: ok = zstdDecode(data.data(), data.size(), expect, scratch); break;
      case kFilterLz4: ok = lz4Decode(data.data(), data.size(), expect, scratch); break;
      default: ok = false;
    }
    if (!ok) return false;
    data.swap(scratch);
  }
  if (data.size() != pl.chunkBytes) return false;
  if (direct) std::memcpy(direct, data.data(), data.size());
  return true;
}

// The threads the parallel stage runs on, started on first use and kept: starting two threads for
// every write took a median 0.8 ms (first) and 3 ms (second) before they ran on the 2-core VM of
// docs/benchmarks.md, as long as encoding several 1 MiB chunks. A runPipelined call posts one task
// per worker it wants; tasks no thread has taken when the call is done are withdrawn, so a call
// never waits for a thread to be free.
class ChunkWorkers {
 public:
  // Tasks of one runPipelined call.
  struct Batch {
    std::function<void()> task;  // runs on a pool thread; must not throw
    size_t queued = 0;           // posted, not taken yet
    size_t running = 0;          // taken, not finished
    std::condition_variable idle;
  };

  // One pool per process; never destroyed, so no thread is joined (or terminated) at exit.
  static ChunkWorkers& instance() {
    static ChunkWorkers* pool = new ChunkWorkers();
    return *pool;
  }

  // Posts `b.task` `count` times; the pool grows to `count` threads.
  void post(Batch& b, unsigned count) {
    std::lock_guard<std::mutex> g(m_);
    while (threads_ < count) {
      std::thread(&ChunkWorkers::loop, this).detach();
      ++threads_;
    }
    for (unsigned i = 0; i < count; ++i) queue_.push_back(&b);
    b.queued += count;
    cv_.notify_all();
  }

  // Withdraws what of `b` no thread took, then waits for the tasks that run to return.
  void finish(Batch& b) {
    std::unique_lock<std::mutex> g(m_);
    queue_.erase(std::remove(queue_.begin(), queue_.end(), &b), queue_.end());
    b.queued = 0;
    b.idle.wait(g, [&] { return b.running == 0; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> g(m_);
    for (;;) {
      cv_.wait(g, [&] { return !queue_.empty(); });
      Batch* b = queue_.front();
      queue_.pop_front();
      --b->queued;
      ++b->running;
      g.unlock();
      b->task();
      g.lock();
      if (--b->running == 0) b->idle.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Batch*> queue_;
  unsigned threads_ = 0;
};

// Runs `serial(i)` on the calling thread in order i = 0..n-1 and `parallel(i)` on workers (and the
// calling thread when it would wait). serialFirst: serial(i) must finish before parallel(i)
// (reads: fetch, then decode); else after (writes: encode, then store). At most `window` items are
// between the two stages at a time, which bounds the memory held. The first exception of either
// stage stops the rest and is rethrown here after the workers have finished.
void runPipelined(size_t n, bool serialFirst, const std::function<void(size_t)>& serial, const std::function<void(size_t)>& parallel) {
  unsigned workers = chunkThreads();
  if (n < 2 || workers < 2) {
    for (size_t i = 0; i < n; ++i) {
      if (serialFirst) serial(i), parallel(i);
      else parallel(i), serial(i);
    }
    return;
  }
  const size_t window = size_t(workers) * 3;
  std::mutex m;
  std::condition_variable cv;
  std::vector<char> stage(n, 0);  // 1 = through parallel()
  size_t claimed = 0;             // next item for parallel()
  size_t serialDone = 0;          // items through serial()
  size_t parallelDone = 0;
  bool stop = false;
  std::exception_ptr error;

  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> g(m);
    if (!error) error = e;
    stop = true;
    cv.notify_all();
  };
  // Whether parallel() may take the next item now.
  auto claimable = [&]() -> bool {
    if (stop || claimed >= n) return false;
    return serialFirst ? claimed < serialDone : claimed < serialDone + window;
  };
  // parallel(i), then its record; false when it threw (the error is kept and everything stops).
  auto runItem = [&](size_t i) -> bool {
    try {
      parallel(i);
    } catch (...) {
      fail(std::current_exception());
      return false;
    }
    std::lock_guard<std::mutex> g(m);
    stage[i] = 1;
    ++parallelDone;
    cv.notify_all();
    return true;
  };
  ChunkWorkers::Batch batch;
  batch.task = [&] {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return stop || claimed >= n || claimable(); });
        if (stop || claimed >= n) return;
        i = claimed++;
      }
      if (!runItem(i)) return;
    }
  };
  // With `g` held: runs claimable items of the parallel stage on this thread until done(), waiting
  // only when there is none to take.
  auto helpUntil = [&](std::unique_lock<std::mutex>& g, const auto& done) {
    while (!done()) {
      if (claimable()) {
        size_t j = claimed++;
        g.unlock();
        runItem(j);
        g.lock();
      } else {
        cv.wait(g);
      }
    }
  };
  ChunkWorkers& pool = ChunkWorkers::instance();
  // workers - 1 pool threads plus the calling thread: one per core. With `workers` pool threads the
  // calling thread (the only one that stores) was starved on 2 cores and the write went slower.
  pool.post(batch, workers - 1);
  try {
    for (size_t i = 0; i < n; ++i) {
      {
        std::unique_lock<std::mutex> g(m);
        auto ready = [&] { return stop || (serialFirst ? i < parallelDone + window : stage[i] == 1); };
        // Rather than wait, the calling thread takes an item of the parallel stage itself (at the
        // start of a write the workers are all encoding and it has nothing to store yet).
        helpUntil(g, ready);
        if (stop) break;
      }
      serial(i);
      std::lock_guard<std::mutex> g(m);
      ++serialDone;
      cv.notify_all();
    }
  } catch (...) {
    fail(std::current_exception());
  }
  {
    // What is left of the parallel stage (reads: the last items' decode) the calling thread does
    // too, rather than wait for a pool thread to take it.
    std::unique_lock<std::mutex> g(m);
    helpUntil(g, [&] { return stop || parallelDone >= n; });
    stop = true;
    cv.notify_all();
  }
  pool.finish(batch);
  if (error) std::rethrow_exception(error);
}

}  // namespace

void writeChunks(hid_t dset, const std::string& where, const ChunkPipeline& pl, const uint8_t* base, const std::vector<hsize_t>& start,
                 const std::vector<hsize_t>& count) {
  Grid g(pl, start, count);
  struct Slot {
    Bytes data;
    uint32_t mask = 0;
    std::vector<hsize_t> off;
  };
  std::vector<Slot> slots(g.n);
  std::vector<hsize_t> zero(pl.chunk.size(), 0);
  runPipelined(
      g.n, false,
      [&](size_t i) {
        Slot& s = slots[i];
        if (H5Dwrite_chunk(dset, H5P_DEFAULT, s.mask, s.off.data(), s.data.size(), s.data.data()) < 0) throwHdf5("cannot write " + where);
        giveBuffer(std::move(s.data));
      },
      [&](size_t i) {
        Slot& s = slots[i];
        std::vector<hsize_t> rel, box;
        g.at(i, s.off, rel, box);
        s.data = takeBuffer();
        Bytes scratch = takeBuffer();
        if (isFull(box, pl.chunk) && contiguousBox(count, box)) {
          s.mask = encodeChunk(pl, base + byteOffset(count, rel, pl.esize), static_cast<size_t>(pl.chunkBytes), s.data, scratch, where);
        } else {
          Bytes staged = takeBuffer();
          staged.resize(static_cast<size_t>(pl.chunkBytes));
          if (!isFull(box, pl.chunk)) fillWith(staged.data(), pl.chunkBytes, pl.fill);
          copyBox(base, count, rel, staged.data(), pl.chunk, zero, box, pl.esize);
          s.mask = encodeChunk(pl, staged.data(), staged.size(), s.data, scratch, where);
          giveBuffer(std::move(staged));
        }
        giveBuffer(std::move(scratch));
      });
}

bool readChunks(hid_t dset, const std::string& where, const ChunkPipeline& pl, uint8_t* out, const std::vector<hsize_t>& start,
                const std::vector<hsize_t>& count) {
  Grid g(pl, start, count);
  struct Slot {
    Bytes data;
    uint32_t mask = 0;
    bool missing = false;
  };
  std::vector<Slot> slots(g.n);
  std::vector<hsize_t> zero(pl.chunk.size(), 0);
  bool unqueryable = false;
  struct Stop {};
  try {
    runPipelined(
        g.n, true,
        [&](size_t i) {
          Slot& s = slots[i];
          std::vector<hsize_t> off, rel, box;
          g.at(i, off, rel, box);
          hsize_t stored = 0;
          if (H5Dget_chunk_storage_size(dset, off.data(), &stored) < 0) {
            clearErrorStack();
            unqueryable = true;
            throw Stop{};
          }
          if (stored == 0) {
            s.missing = true;
            return;
          }
          s.data = takeBuffer();
          s.data.resize(static_cast<size_t>(stored));
          if (H5Dread_chunk(dset, H5P_DEFAULT, off.data(), &s.mask, s.data.data()) < 0) throwHdf5("cannot read " + where);
        },
        [&](size_t i) {
          Slot& s = slots[i];
          std::vector<hsize_t> off, rel, box;
          g.at(i, off, rel, box);
          if (s.missing) {
            Bytes chunk(static_cast<size_t>(pl.chunkBytes));
            fillWith(chunk.data(), pl.chunkBytes, pl.fill);
            copyBox(chunk.data(), pl.chunk, zero, out, count, rel, box, pl.esize);
            return;
          }
          Bytes scratch = takeBuffer();
          bool direct = isFull(box, pl.chunk) && contiguousBox(count, box);
          bool ok = decodeChunk(pl, s.data, scratch, s.mask, direct ? out + byteOffset(count, rel, pl.esize) : nullptr);
          giveBuffer(std::move(scratch));
          if (!ok) throw Failure("ERR_CHECKPOINT_CORRUPT", "cannot read " + where + ": the chunk at " + shapeText(off) + " does not decode");
          if (!direct) copyBox(s.data.data(), pl.chunk, zero, out, count, rel, box, pl.esize);
          giveBuffer(std::move(s.data));
        });
  } catch (const Stop&) {
    return false;
  }
  return !unqueryable;
}

}  // namespace ckpt
