#include "h5verify.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "h5objects.h"
#include "h5ops.h"
#include "h5types.h"

namespace ckpt {

namespace {

constexpr int kMaxDepth = 512;  // as the walk of a read (h5ops.cpp)
// On 1.10 each chunk's address costs a walk of the index (no H5Dchunk_iter): beyond this many
// chunks only their count is checked.
constexpr hsize_t kMaxChunksLookedUp = 4096;

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string childPath(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

bool under(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/');
}

struct ChunkScan {
  unsigned long long fileSize;
  std::atomic<unsigned long long>* progress;  // a long index is progress too (the watchdog)
  hsize_t count = 0;
  bool pastEnd = false;
  haddr_t addr = 0;
  hsize_t size = 0;
};

#if H5_VERSION_GE(1, 14, 0)
int chunkCallback(const hsize_t* /*offset*/, unsigned /*mask*/, haddr_t addr, hsize_t size, void* data) {
  auto* scan = static_cast<ChunkScan*>(data);
  if ((++scan->count & 4095) == 0) scan->progress->fetch_add(1);
  if (size > 0 && (addr > scan->fileSize || size > scan->fileSize - addr)) {
    scan->pastEnd = true;
    scan->addr = addr;
    scan->size = size;
    return 1;  // H5_ITER_STOP
  }
  return 0;
}
#endif

class Verifier {
 public:
  Verifier(hid_t file, const VerifyOptions& opts) : file_(file), opts_(opts) {}

  // Objects entered so far (read by the watchdog) and the one being entered.
  std::atomic<unsigned long long> progress{0};
  std::mutex currentMutex;
  std::string current = "/";

  void run() {
    enter("/");
    hid_t root = H5Gopen2(file_, "/", H5P_DEFAULT);
    if (root < 0) {
      bad("/", "cannot open the root group: " + takeErrorStack().innermost());
    } else {
      Hid owned(root);
      visitObject(root, "/", 0);
    }
    emit("{\"done\":true}\n");  // before the file is closed: what follows is not about its objects
  }

 private:
  hid_t file_;
  const VerifyOptions& opts_;
  std::vector<std::pair<h5::ObjectId, std::string>> ancestors_;
  // Objects seen through another link: empty = verified, else why they are damaged.
  std::vector<std::pair<h5::ObjectId, std::string>> seen_;

  void emit(const std::string& line) {
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(opts_.progressFd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // nobody is listening: the verification still runs to its end
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  void enter(const std::string& path) {
    {
      std::lock_guard<std::mutex> g(currentMutex);
      current = path;
    }
    progress.fetch_add(1);
    emit("{\"enter\":" + jsonString(path) + "}\n");
  }

 public:
  void emitStalled() {
    std::lock_guard<std::mutex> g(currentMutex);
    emit("{\"stalled\":" + jsonString(current) + "}\n");
  }

 private:
  void bad(const std::string& path, const std::string& why) {
    emit("{\"bad\":" + jsonString(path) + ",\"why\":" + jsonString(why) + "}\n");
  }

  bool skipped(const std::string& path) const {
    return std::any_of(opts_.skip.begin(), opts_.skip.end(), [&](const std::string& s) { return under(path, s); });
  }

  const std::string* seenBefore(const h5::ObjectId& id) const {
    for (const auto& s : seen_)
      if (s.first == id) return &s.second;
    return nullptr;
  }

  // `obj` is open; `path` was announced by enter() (the root is announced here).
  void visitObject(hid_t obj, const std::string& path, int depth) {
    h5::ObjectInfo oi;
    try {
      oi = h5::objectInfo(obj);
    } catch (const Failure& f) {
      bad(path, f.message());
      return;
    }
    if (const std::string* why = seenBefore(oi.id)) {
      if (!why->empty()) bad(path, *why);
      return;
    }
    std::string why;
    try {
      if (oi.type == H5O_TYPE_GROUP) {
        for (const auto& a : ancestors_)
          if (a.first == oi.id) return;  // a hard-link cycle: a read refuses it without touching more
        if (depth > kMaxDepth) return;
        readAttrs(obj, path);
        std::vector<std::string> names = h5::linkNames(obj);
        // HDF5 never creates an empty link name: the link table is damaged. (The root's keys()
        // refuses it in TypeScript; marking "/" would cost every key.)
        if (path != "/" && std::find(names.begin(), names.end(), std::string()) != names.end())
          throw Failure("ERR_CHECKPOINT_CORRUPT", "a link of " + path + " has an empty name");
        seen_.emplace_back(oi.id, "");
        ancestors_.emplace_back(oi.id, path);
        for (const std::string& name : names) visitChild(obj, name, childPath(path, name), depth);
        ancestors_.pop_back();
        return;
      }
      if (oi.type == H5O_TYPE_DATASET) {
        readAttrs(obj, path);
        why = datasetDamage(obj, path);
      }
    } catch (const Failure& f) {
      // Too large to read whole is not damage: a read says ERR_TOO_LARGE before touching the data.
      if (f.code() != "ERR_TOO_LARGE") why = f.message();
    }
    seen_.emplace_back(oi.id, why);
    if (!why.empty()) bad(path, why);
  }

  void visitChild(hid_t group, const std::string& name, const std::string& path, int depth) {
    if (name.empty() || skipped(path)) return;
    enter(path);
    try {
      H5L_type_t lt = h5::linkType(group, name.c_str());
      if (lt != H5L_TYPE_HARD && lt != H5L_TYPE_SOFT) return;  // external and user-defined links are not followed
      hid_t raw = H5Oopen(group, name.c_str(), H5P_DEFAULT);
      if (raw < 0) {
        if (lt == H5L_TYPE_SOFT) {  // dangling: a read reports it as a link
          clearErrorStack();
          return;
        }
        throwHdf5("cannot open " + path);
      }
      Hid obj(raw);
      visitObject(obj.get(), path, depth + 1);
    } catch (const Failure& f) {
      bad(path, f.message());
    }
  }

  // Why reading the dataset would fail or misbehave; empty when it reads.
  std::string datasetDamage(hid_t d, const std::string& path) {
    DatasetInfo info = datasetInfo(d, path);
    if (info.supported && info.dtype == DType::String && !info.isNull) {
      Hid t = ownType(H5Dget_type(d), "H5Dget_type");
      Hid s = ownSpace(H5Dget_space(d), "H5Dget_space");
      try {
        readStringValues(StringSource{d, false}, t.get(), s.get(), path);
      } catch (const Failure& f) {
        if (f.code() != "ERR_TOO_LARGE") throw;  // a read refuses it the same way, without touching the heap
      }
    } else if (info.supported && info.packed && info.type.hasSide() && !info.isNull) {
      // Variable-length parts of records, sequences and references live in the global heap too:
      // read them here as a get would, so damage there is found in the child.
      try {
        readPacked(d, false, info.type, path);
      } catch (const Failure& f) {
        if (f.code() != "ERR_TOO_LARGE") throw;
      }
    }
    for (size_t i = 0; i < info.shape.size() && i < info.maxshape.size(); ++i) {
      if (info.maxshape[i] != H5S_UNLIMITED && info.shape[i] > info.maxshape[i])  // HDF5 1.14 refuses these itself
        return "its extent " + shapeText(info.shape) + " passes its maximum " + shapeText(info.maxshape);
    }
    Hid dcpl = ownPlist(H5Dget_create_plist(d), "H5Dget_create_plist");
    H5D_layout_t layout = H5Pget_layout(dcpl.get());
    if (layout == H5D_CONTIGUOUS) {
      haddr_t addr = H5Dget_offset(d);
      clearErrorStack();  // HADDR_UNDEF (not allocated, or external storage) pushes an error
      hsize_t size = H5Dget_storage_size(d);
      if (addr != HADDR_UNDEF && (addr > opts_.fileSize || size > opts_.fileSize - addr))
        return "its data (" + std::to_string(size) + " bytes at " + std::to_string(addr) + ") lies past the end of the file (" +
               std::to_string(opts_.fileSize) + " bytes)";
      return {};
    }
    if (layout != H5D_CHUNKED || info.isNull || info.chunks.size() != info.shape.size()) return {};
    unsigned long long implied = 1;
    for (size_t i = 0; i < info.shape.size(); ++i) {
      if (info.chunks[i] == 0) return "a chunk dimension is 0";
      unsigned long long along = (info.shape[i] + info.chunks[i] - 1) / info.chunks[i];
      implied = along != 0 && implied > ~0ull / along ? ~0ull : implied * along;
    }
    ChunkScan scan{opts_.fileSize, &progress};
#if H5_VERSION_GE(1, 14, 0)
    check(H5Dchunk_iter(d, H5P_DEFAULT, chunkCallback, &scan), ("cannot read the chunk index of " + path).c_str());
#else
    hsize_t n = 0;
    Hid space = ownSpace(H5Dget_space(d), "H5Dget_space");
    check(H5Dget_num_chunks(d, space.get(), &n), ("cannot read the chunk index of " + path).c_str());
    scan.count = n;
    if (n <= kMaxChunksLookedUp) {
      std::vector<hsize_t> offset(info.shape.size());
      for (hsize_t i = 0; i < n && !scan.pastEnd; ++i) {
        progress.fetch_add(1);
        unsigned mask = 0;
        haddr_t addr = 0;
        hsize_t size = 0;
        check(H5Dget_chunk_info(d, space.get(), i, offset.data(), &mask, &addr, &size), ("cannot read the chunk index of " + path).c_str());
        if (size > 0 && (addr > opts_.fileSize || size > opts_.fileSize - addr)) {
          scan.pastEnd = true;
          scan.addr = addr;
          scan.size = size;
        }
      }
    }
#endif
    if (scan.pastEnd)
      return "a chunk (" + std::to_string(scan.size) + " bytes at " + std::to_string(scan.addr) + ") lies past the end of the file (" +
             std::to_string(opts_.fileSize) + " bytes)";
    // Mostly unwritten (sparse, or a damaged extent): legal, but a read that covers the unwritten
    // chunks makes HDF5 fill each one separately; the parent refuses such reads.
    if (implied > scan.count && implied - scan.count > opts_.maxUnwrittenChunks)
      emit("{\"sparse\":" + jsonString(path) + ",\"stored\":" + std::to_string(scan.count) + ",\"shape\":" + shapeText(info.shape) +
           ",\"chunks\":" + shapeText(info.chunks) + "}\n");
    return {};
  }
};

}  // namespace

void verifyFile(const std::string& path, const VerifyOptions& opts) {
  std::shared_ptr<File> file = File::open(path, "r");
  Verifier verifier(file->id(), opts);
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog;
  if (opts.stallMs > 0) {
    watchdog = std::thread([&] {
      std::unique_lock<std::mutex> lock(m);
      unsigned long long seen = verifier.progress.load();
      while (!finished) {
        if (cv.wait_for(lock, std::chrono::milliseconds(opts.stallMs), [&] { return finished; })) return;
        unsigned long long now = verifier.progress.load();
        if (now == seen) {
          verifier.emitStalled();
          ::_exit(70);  // the HDF5 call in progress never returns
        }
        seen = now;
      }
    });
  }
  auto stop = [&] {
    if (!watchdog.joinable()) return;
    {
      std::lock_guard<std::mutex> g(m);
      finished = true;
    }
    cv.notify_all();
    watchdog.join();
  };
  try {
    verifier.run();
  } catch (...) {
    stop();
    file->close();
    throw;
  }
  stop();
  file->close();
}

}  // namespace ckpt
