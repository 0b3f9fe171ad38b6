// The native objects, one per HDF5 kind (h5py's FileID / GroupID / DatasetID): a File owns the
// groups and datasets opened from it and closing it closes them all; using a closed object is
// ERR_CLOSED. A Dataset keeps its id, type and chunk cache open between calls. Plain C++: every
// method expects the caller to hold ckpt::Lock (the executor thread, or a JS thread in a sync call).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "h5chunks.h"
#include "h5core.h"
#include "h5types.h"

namespace ckpt {

class File;

// A hyperslab: `count[i]` elements from `start[i]`, `stride[i]` apart, along each axis (h5py's one
// strided hyperslab per selection). `all` selects the whole extent.
struct Hyperslab {
  bool all = true;
  std::vector<hsize_t> start, stride, count;
};

// A TypedArray's memory as the binding sees it (the caller keeps the array alive).
struct ArrayRef {
  ArrayKind kind = ArrayKind::Uint8;
  void* data = nullptr;
  size_t bytes = 0;
};

enum class Codec { None, Gzip, Zstd, Lz4 };

// How to create a dataset; options are validated in TypeScript, the binding re-checks only what
// would make HDF5 misbehave.
struct DatasetSpec {
  DType dtype = DType::Float64;
  std::vector<hsize_t> shape;
  bool hasMaxshape = false;
  std::vector<hsize_t> maxshape;  // H5S_UNLIMITED = unlimited
  std::vector<hsize_t> chunks;    // empty: contiguous (or compact for 0-d)
  Codec codec = Codec::None;
  int level = -1;  // -1: the codec's default (gzip 4, zstd 3)
  bool shuffle = false;
  ScalarValue fill;
  // A described element type (compound, enum, array, ...): `dtype` is then its plain number's
  // dtype, or Uint8 when elements are packed bytes of `type`.
  bool hasType = false;
  TypeNode type;
};

// A group or dataset opened from a File.
class Child {
 public:
  Child(std::shared_ptr<File> file, hid_t id, std::string path);
  virtual ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  const std::string& path() const { return path_; }
  bool isOpen() const { return id_.load() >= 0; }
  hid_t id() const;  // throws ERR_CLOSED
  virtual void close();
  File& file() const { return *file_; }

 protected:
  friend class File;
  virtual const char* kindName() const = 0;
  std::shared_ptr<File> file_;
  std::atomic<hid_t> id_;
  std::string path_;
};

class Group : public Child {
 public:
  using Child::Child;
  std::vector<std::string> names();

 protected:
  const char* kindName() const override { return "group"; }
};

// What reading and writing numbers needs to know of a dataset, fixed when it is created: the
// stored dtype, its in-memory type, and the chunk shape when whole chunks can be written directly.
struct NumericLayout {
  DType dtype = DType::Float64;  // Uint8 for packed elements
  size_t esize = 0;              // bytes of one element (a packed record's size)
  Hid memType;
  std::vector<hsize_t> directChunks;  // empty unless chunked, unfiltered and stored as in memory
  std::shared_ptr<const ChunkPipeline> pipeline;  // filters run in parallel here (h5chunks.h), or null
};
// Throws ERR_UNSUPPORTED_DTYPE / TypeError for datasets that do not hold numbers.
NumericLayout numericLayout(hid_t dset, const std::string& where);

// The memory dataspace of the last selection shape a dataset object read or wrote.
struct MemSpaceCache {
  Hid space;
  std::vector<hsize_t> count;
};

class Dataset : public Child {
 public:
  Dataset(std::shared_ptr<File> file, hid_t id, std::string path);
  ~Dataset() override;
  void close() override;
  const DatasetInfo& info() const { return info_; }
  // Current extent (another id of the same dataset may have resized it).
  std::vector<hsize_t> extent();
  void read(const ArrayRef& out, const Hyperslab& sel);
  void write(const ArrayRef& data, const Hyperslab& sel);
  std::vector<hsize_t> resize(const std::vector<hsize_t>& shape);
  std::vector<std::string> readStrings();

 protected:
  const char* kindName() const override { return "dataset"; }

 private:
  const NumericLayout& layout();  // computed at the first read or write, then kept
  DatasetInfo info_;
  std::optional<NumericLayout> layout_;
  MemSpaceCache mem_;
};

class File : public std::enable_shared_from_this<File> {
 public:
  // mode: "r", "r+", "w" (create or truncate), "x" (create, must not exist).
  static std::shared_ptr<File> open(const std::string& path, const std::string& mode);
  ~File();

  const std::string& path() const { return path_; }
  bool isOpen() const { return id_.load() >= 0; }
  bool writable() const { return writable_; }
  hid_t id() const;  // throws ERR_CLOSED
  void requireWritable(const std::string& op) const;
  // Closes every object opened from this file, then the file. Safe to call twice.
  void close();
  void flush();
  int openObjectCount();

  std::shared_ptr<Dataset> openDataset(const std::string& p);
  std::shared_ptr<Group> openGroup(const std::string& p);

  // Async jobs on this file (or its objects) submitted and not yet settled; a sync call meanwhile
  // is ERR_BUSY. Touched only on the JS thread that owns the file.
  int pendingJobs = 0;

 private:
  File(hid_t id, std::string path, bool writable) : id_(id), path_(std::move(path)), writable_(writable) {}
  void adopt(const std::shared_ptr<Child>& c);

  std::atomic<hid_t> id_{H5I_INVALID_HID};  // read by isOpen() on JS threads
  std::string path_;
  bool writable_ = false;
  std::vector<std::weak_ptr<Child>> children_;  // changed only under the lock
};

// Closes every file still open in the process (at exit; the caller holds the lock).
void closeAllFiles() noexcept;

// Paths inside a file are absolute ("/a/b"); these check and split them.
std::vector<std::string> splitPath(const std::string& p);
std::string joinPath(const std::vector<std::string>& parts, size_t n);

// Property lists for what the binding creates: UTF-8 link names (one list for the process, never
// closed: creating and closing one per link was a tenth of a small set's time); groups tracking
// creation order.
hid_t linkCreatePlist();
Hid groupCreatePlist();
// Fixed-size values up to this many bytes are written compact (in the object header): no separate
// allocation and raw-data write per value, one read less per get. Every HDF5 reader reads them.
constexpr size_t kCompactBytes = 1024;
// The creation list of a compact 0-d dataset without a fill value (shared, never closed).
hid_t compactScalarDcpl();

// Writes/reads `sel` of an open dataset from/to a TypedArray's memory (checked against its dtype
// and extent first); whole unfiltered chunks go through H5Dwrite_chunk.
void writeSelection(hid_t dset, const std::string& where, const NumericLayout& l, const ArrayRef& data, const Hyperslab& sel,
                    MemSpaceCache* cache = nullptr);
void readSelection(hid_t dset, const std::string& where, const NumericLayout& l, const ArrayRef& out, const Hyperslab& sel,
                   MemSpaceCache* cache = nullptr);

// Creates the dataset of `spec` at `p` (parents must exist) and returns its id.
Hid createDataset(hid_t file, const std::string& p, const DatasetSpec& spec);

}  // namespace ckpt
