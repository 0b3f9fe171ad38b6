// Element types: the numpy dtypes the binding moves to and from TypedArrays, how they are stored
// (h5py's layouts for bool and complex), how stored types are recognised, and dataset metadata.
// The caller holds ckpt::Lock.
#pragma once

#include <string>
#include <vector>

#include "h5core.h"

namespace ckpt {

enum class DType {
  Bool, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64,
  Float32, Float64, Complex64, Complex128, String
};
const char* dtypeName(DType t);
bool parseDType(const std::string& name, DType* out);  // numeric dtypes only
size_t dtypeSize(DType t);                             // bytes per element in memory

// The JS TypedArray kinds (mirrors napi_typedarray_type, kept independent of Node-API).
enum class ArrayKind { Int8, Uint8, Uint8Clamped, Int16, Uint16, Int32, Uint32, Float32, Float64, BigInt64, BigUint64 };
size_t arrayKindSize(ArrayKind k);
const char* arrayKindName(ArrayKind k);
bool arrayFits(DType t, ArrayKind k);  // whether a TypedArray of kind k holds dtype t's elements
DType kindDType(ArrayKind k);          // the dtype a bare TypedArray stands for

struct StringType {
  bool variable = false;
  size_t length = 0;  // bytes of a fixed-length string; 0 for variable
  bool utf8 = false;
};

struct Filters {
  bool gzip = false;
  int level = -1;
  bool shuffle = false;
  int other = 0;  // filters the binding does not name
};

struct DatasetInfo {
  DType dtype = DType::Float64;
  bool supported = true;   // false: `unsupported` says what the stored type is
  std::string unsupported;
  std::vector<hsize_t> shape;
  std::vector<hsize_t> maxshape;  // H5S_UNLIMITED = unlimited
  bool chunked = false;
  std::vector<hsize_t> chunks;
  bool isNull = false;
  bool isScalar = false;
  StringType str;
  bool opaque = false;  // an opaque (np.void) type: read as bytes
  Filters filters;
};

// The type stored in files we write / the in-memory type of a dtype's TypedArray elements.
Hid fileType(DType t);
Hid memType(DType t);
Hid vlenUtf8Type();

// What a stored type is, in words ("16-bit big-endian float", "compound {a: ...}").
std::string describeType(hid_t t);

// The dtype of a stored type; throws ERR_UNSUPPORTED_DTYPE for types the binding does not read.
DType classify(hid_t t, StringType* str, const std::string& where);

// Everything a reader needs to know about an open dataset; unsupported types are reported in
// the result, not thrown, so a walk can list them.
DatasetInfo datasetInfo(hid_t dset, const std::string& where);

// The dataspace's extent.
struct Extent {
  H5S_class_t cls = H5S_NO_CLASS;
  std::vector<hsize_t> dims, maxdims;
};
Extent extentOf(hid_t space);
std::string shapeText(const std::vector<hsize_t>& v);
// Elements of an extent; ERR_TOO_LARGE when the product does not fit 64 bits (HDF5 itself
// crashes on I/O into such a dataset, so no I/O is tried).
uint64_t extentElements(const std::vector<hsize_t>& dims, const std::string& where);
// Most strings read into one JS array.
constexpr uint64_t kMaxStrings = uint64_t(1) << 31;

// Strings of a dataset or attribute (fixed-length padding stripped), in C order.
struct StringSource {
  hid_t obj;
  bool isAttr;
};
std::vector<std::string> readStringValues(const StringSource& src, hid_t ftype, hid_t space, const std::string& where);

// A numeric scalar for fill values, encoded as dtype `t` in native memory.
struct ScalarValue {
  enum class Kind { None, Number, Int64, Uint64, Bool } kind = Kind::None;
  double number = 0;
  int64_t i64 = 0;
  uint64_t u64 = 0;
};
std::vector<uint8_t> encodeScalar(DType t, const ScalarValue& v);

}  // namespace ckpt
