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
  Float32, Float64, Complex64, Complex128, Float16, String
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

// A stored type as the binding reads and writes it: a tree whose nodes say what JS makes of each
// part and how it is held in memory — native byte order, compound members packed in field order,
// H5T_ARRAY axes folded into `dims`. Plain data (no HDF5 ids): memory and file types are built
// from it when needed, so the same tree describes a stored type and a type to create.
struct TypeNode {
  enum class Kind { Number, Enum, String, Opaque, Compound, Vlen, Reference };
  Kind kind = Kind::Number;
  DType dtype = DType::Float64;  // Number; Enum: its integer dtype; String: String
  bool bitfield = false;         // Number: an HDF5 bitfield, read as unsigned integers (h5py's dtype)
  std::string converted;         // Number: a float that is not IEEE binary16/32/64 (long double), read as float64
  std::vector<hsize_t> dims;     // H5T_ARRAY axes of this node, outermost first
  size_t size = 0;               // memory bytes of one element, `dims` not counted
  std::vector<std::string> memberNames;  // Enum
  std::vector<int64_t> memberValues;     // Enum (uint64 values bit-cast)
  StringType str;                        // String
  H5T_str_t pad = H5T_STR_NULLPAD;       // String (fixed-length)
  std::string tag;                       // Opaque
  std::vector<std::string> names;        // Compound: field names
  std::vector<size_t> offsets;           // Compound: field offsets in memory (packed)
  std::vector<TypeNode> children;        // Compound: field types; Vlen: the element type

  // A number or enum without array axes: read straight into a TypedArray.
  bool plainNumber() const { return (kind == Kind::Number || kind == Kind::Enum) && dims.empty(); }
  uint64_t totalSize() const;
  // Holds variable-length data or references somewhere (read as side values, not as bytes alone).
  bool hasSide() const;
};

// What the stored type `t` is; ERR_UNSUPPORTED_DTYPE ("<where> holds an HDF5 time datatype") for
// what the binding does not read.
TypeNode describeStored(hid_t t, const std::string& where);
// The in-memory type of a node's elements (an H5T_ARRAY when it has dims), and the type a file
// stores it as (little-endian, packed): what createDataset/createAttr write.
Hid buildMemType(const TypeNode& n);
Hid buildFileType(const TypeNode& n);

// One variable-length item of packed data, in the order a depth-first walk of the elements meets
// them: a variable-length string, a sequence of numbers, an object reference's path, or null.
struct SideValue {
  enum class Kind { Text, Seq, Ref, Refs, Null } kind = Kind::Null;
  std::string text;              // Text, Ref
  DType dtype = DType::Uint8;    // Seq
  std::vector<uint8_t> bytes;    // Seq: native memory
  std::vector<SideValue> items;  // Refs: a sequence of object references (Ref or Null each)
};
// Packed elements (C order) with their variable-length parts taken out (the slots zeroed).
struct PackedData {
  std::vector<uint8_t> bytes;
  std::vector<SideValue> side;
};
// Reads every element of a dataset or attribute of type `n` (the whole extent).
PackedData readPacked(hid_t obj, bool isAttr, const TypeNode& n, const std::string& where);
// Writes `bytes` (packed elements of `n`), putting `strings` into the variable-length string slots
// in depth-first order; for a dataset, `fspace`/`mspace` select where (H5S_ALL for everything).
void writePacked(hid_t obj, bool isAttr, const TypeNode& n, const uint8_t* bytes, size_t nbytes, const std::vector<std::string>& strings,
                 hid_t mspace, hid_t fspace, const std::string& where);

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
  // Raw data bytes allocated in the file (compressed size when filtered); -1 when not asked for
  // (a walk with storageSizes: H5Dget_storage_size visits every chunk of a chunked dataset).
  int64_t storageBytes = -1;
  StringType str;
  bool opaque = false;  // an opaque (np.void) type: read as bytes
  // Not a plain number or string: elements are read as packed bytes of `type` (compound, array,
  // opaque, variable-length, reference). `type` is set for every supported dataset.
  bool packed = false;
  TypeNode type;
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

// IEEE binary16 bits of a double (round to nearest even), and back.
uint16_t doubleToHalf(double d);
// Whether `s` is valid UTF-8 (fixed-length data that is not comes back as bytes).
bool validUtf8(const std::string& s);

}  // namespace ckpt
