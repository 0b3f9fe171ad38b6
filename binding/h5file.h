// One open HDF5 file and the operations the JS surface needs, in plain C++ (no Node-API).
// Every public method expects the caller to hold ckpt::Lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "h5core.h"

namespace ckpt {

enum class DType {
  Bool, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64,
  Float32, Float64, Complex64, Complex128, String
};
const char* dtypeName(DType t);
bool parseDType(const std::string& name, DType* out);
size_t dtypeSize(DType t);  // bytes per element in memory

// The JS TypedArray kinds (mirrors napi_typedarray_type, kept independent of Node-API).
enum class ArrayKind { Int8, Uint8, Uint8Clamped, Int16, Uint16, Int32, Uint32, Float32, Float64, BigInt64, BigUint64 };
size_t arrayKindSize(ArrayKind k);

struct StringType {
  bool variable = false;
  size_t length = 0;  // bytes of a fixed-length string; 0 for variable
  bool utf8 = false;
};

struct DatasetInfo {
  DType dtype = DType::Float64;
  std::vector<uint64_t> shape;
  std::vector<int64_t> maxshape;  // -1 = unlimited
  bool chunked = false;
  std::vector<uint64_t> chunks;
  bool isNull = false;
  StringType str;
  bool gzip = false;
  int level = -1;
  bool shuffle = false;
  int otherFilters = 0;
};

struct CreateOptions {
  DType dtype = DType::Float64;
  std::vector<uint64_t> shape;
  bool hasMaxshape = false;
  std::vector<int64_t> maxshape;  // -1 = unlimited
  bool hasChunks = false;
  std::vector<uint64_t> chunks;
  bool gzip = false;
  int level = 4;
  bool shuffle = false;
  bool hasFill = false;
  double fill = 0;           // used for float/bool/small int types
  bool fillIsInt64 = false;  // fillInt64 holds the exact value (bigint)
  int64_t fillInt64 = 0;
  uint64_t fillUint64 = 0;
};

struct Selection {
  bool all = true;
  std::vector<uint64_t> start;
  std::vector<uint64_t> count;
};

// A value for a small attribute.
struct AttrValue {
  enum class Kind { Null, Number, Int64, Uint64, Bool, String, Strings, Array } kind = Kind::Null;
  double number = 0;
  int64_t i64 = 0;
  uint64_t u64 = 0;
  bool boolean = false;
  std::string str;
  std::vector<std::string> strs;
  DType dtype = DType::Float64;  // for Array
  std::vector<uint8_t> bytes;    // for Array: raw native memory, C order
  uint64_t length = 0;           // for Array: elements
};

enum class BytesLayout { Void, FixedString, Uint8 };

class File {
 public:
  // mode: "r", "r+", "w", "x". Throws Failure with a classified code.
  static std::shared_ptr<File> open(const std::string& path, const std::string& mode);
  ~File();

  const std::string& path() const { return path_; }
  bool isOpen() const { return fid_ >= 0; }
  bool writable() const { return writable_; }
  // Closes every object this file id owns, then the file. Safe to call twice.
  void close();
  // Hands the id to the deferred-close list (for finalizers that cannot take the lock).
  void abandon();
  void flush();
  int openObjectCount();

  // "group", "dataset", "other", or "" when nothing is linked at path.
  std::string kind(const std::string& p);
  std::vector<std::string> list(const std::string& p);
  void createGroup(const std::string& p);
  void remove(const std::string& p);

  DatasetInfo info(const std::string& p);
  void createDataset(const std::string& p, const CreateOptions& o);
  void createNull(const std::string& p);
  void resize(const std::string& p, const std::vector<uint64_t>& shape);
  void write(const std::string& p, const void* data, size_t bytes, ArrayKind kind, const Selection& sel);
  void read(const std::string& p, void* data, size_t bytes, ArrayKind kind, const Selection& sel);

  void writeStrings(const std::string& p, const std::vector<std::string>& strs, const std::vector<uint64_t>& shape);
  std::vector<std::string> readStrings(const std::string& p);
  void writeBytes(const std::string& p, const uint8_t* data, size_t n, BytesLayout layout);
  std::vector<uint8_t> readBytes(const std::string& p);

  void setAttr(const std::string& p, const std::string& name, const AttrValue& v);
  AttrValue getAttr(const std::string& p, const std::string& name);
  std::vector<std::string> attrNames(const std::string& p);
  void deleteAttr(const std::string& p, const std::string& name);

 private:
  File(hid_t fid, std::string path, bool writable) : fid_(fid), path_(std::move(path)), writable_(writable) {}
  hid_t fid() const;  // throws ERR_CLOSED
  void requireWritable(const char* op) const;
  Hid openDataset(const std::string& p);
  Hid openObject(const std::string& p);
  void makeParents(const std::string& p);
  Hid linkCreatePlist();

  std::atomic<hid_t> fid_{H5I_INVALID_HID};  // read by isOpen() on the JS thread while a job may close it
  std::string path_;
  bool writable_ = false;
};

}  // namespace ckpt
