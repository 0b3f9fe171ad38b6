#include "h5file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace ckpt {

namespace {

// ---------------------------------------------------------------------------------------------
// Argument failures. "TypeError" / "RangeError" codes become JS TypeError / RangeError.

[[noreturn]] void typeError(const std::string& msg) { throw Failure("TypeError", msg); }
[[noreturn]] void rangeError(const std::string& msg) { throw Failure("RangeError", msg); }

const char* errnoName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case EEXIST: return "EEXIST";
    case EISDIR: return "EISDIR";
    case ENOSPC: return "ENOSPC";
    case EMFILE: return "EMFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    default: return "EIO";
  }
}

[[noreturn]] void systemFailure(int e, const std::string& action, const std::string& path) {
  std::string base = "cannot " + action + " " + path + ": ";
  switch (e) {
    case ENOENT:
    case ENOTDIR:
      throw Failure("ERR_NOT_WRITABLE", base + "its directory does not exist", {}, errnoName(e));
    case EACCES:
    case EPERM:
    case EROFS:
      throw Failure("ERR_NOT_WRITABLE", base + "permission denied", {}, errnoName(e));
    default:
      throw Failure("ERR_IO", base + std::strerror(e), {}, errnoName(e));
  }
}

std::string parentDir(const std::string& path) {
  size_t p = path.find_last_of('/');
  if (p == std::string::npos) return ".";
  if (p == 0) return "/";
  return path.substr(0, p);
}

bool isDirectory(const std::string& p, int* err) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    *err = errno;
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    *err = ENOTDIR;
    return false;
  }
  return true;
}

// HDF5 1.10.7+ locks files unless HDF5_USE_FILE_LOCKING is FALSE (or 0).
bool lockingEnabled() {
  const char* v = std::getenv("HDF5_USE_FILE_LOCKING");
  if (!v) return true;
  std::string s(v);
  return !(s == "FALSE" || s == "0" || s == "false");
}

// ---------------------------------------------------------------------------------------------
// Paths inside the file

std::vector<std::string> splitPath(const std::string& p) {
  if (p.empty() || p[0] != '/') typeError("HDF5 paths must be absolute (start with '/'): '" + p + "'");
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string joinPath(const std::vector<std::string>& parts, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += "/" + parts[i];
  return s.empty() ? "/" : s;
}

// ---------------------------------------------------------------------------------------------
// Types

struct DTypeRow {
  DType t;
  const char* name;
  size_t size;
};
const DTypeRow kDTypes[] = {
    {DType::Bool, "bool", 1},         {DType::Int8, "int8", 1},          {DType::Int16, "int16", 2},
    {DType::Int32, "int32", 4},       {DType::Int64, "int64", 8},        {DType::Uint8, "uint8", 1},
    {DType::Uint16, "uint16", 2},     {DType::Uint32, "uint32", 4},      {DType::Uint64, "uint64", 8},
    {DType::Float32, "float32", 4},   {DType::Float64, "float64", 8},    {DType::Complex64, "complex64", 8},
    {DType::Complex128, "complex128", 16}, {DType::String, "string", 0},
};

Hid copyType(hid_t predefined) { return ownType(H5Tcopy(predefined), "H5Tcopy"); }

Hid boolType(hid_t base) {
  Hid t = ownType(H5Tenum_create(base), "cannot create the bool enum type");
  int8_t f = 0, v = 1;
  check(H5Tenum_insert(t.get(), "FALSE", &f), "cannot create the bool enum type");
  check(H5Tenum_insert(t.get(), "TRUE", &v), "cannot create the bool enum type");
  return t;
}

Hid complexType(hid_t part, size_t partSize) {
  Hid t = ownType(H5Tcreate(H5T_COMPOUND, 2 * partSize), "cannot create the complex type");
  check(H5Tinsert(t.get(), "r", 0, part), "cannot create the complex type");
  check(H5Tinsert(t.get(), "i", partSize, part), "cannot create the complex type");
  return t;
}

Hid vlenUtf8Type() {
  Hid t = copyType(H5T_C_S1);
  check(H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

// The type stored in files we write: little-endian, h5py's layouts for bool and complex.
Hid fileType(DType t) {
  switch (t) {
    case DType::Bool: return boolType(H5T_STD_I8LE);
    case DType::Int8: return copyType(H5T_STD_I8LE);
    case DType::Int16: return copyType(H5T_STD_I16LE);
    case DType::Int32: return copyType(H5T_STD_I32LE);
    case DType::Int64: return copyType(H5T_STD_I64LE);
    case DType::Uint8: return copyType(H5T_STD_U8LE);
    case DType::Uint16: return copyType(H5T_STD_U16LE);
    case DType::Uint32: return copyType(H5T_STD_U32LE);
    case DType::Uint64: return copyType(H5T_STD_U64LE);
    case DType::Float32: return copyType(H5T_IEEE_F32LE);
    case DType::Float64: return copyType(H5T_IEEE_F64LE);
    case DType::Complex64: return complexType(H5T_IEEE_F32LE, 4);
    case DType::Complex128: return complexType(H5T_IEEE_F64LE, 8);
    case DType::String: return vlenUtf8Type();
  }
  typeError("unknown dtype");
}

// The in-memory type of a dtype's TypedArray elements.
Hid memType(DType t) {
  switch (t) {
    case DType::Bool: return boolType(H5T_NATIVE_INT8);
    case DType::Int8: return copyType(H5T_NATIVE_INT8);
    case DType::Int16: return copyType(H5T_NATIVE_INT16);
    case DType::Int32: return copyType(H5T_NATIVE_INT32);
    case DType::Int64: return copyType(H5T_NATIVE_INT64);
    case DType::Uint8: return copyType(H5T_NATIVE_UINT8);
    case DType::Uint16: return copyType(H5T_NATIVE_UINT16);
    case DType::Uint32: return copyType(H5T_NATIVE_UINT32);
    case DType::Uint64: return copyType(H5T_NATIVE_UINT64);
    case DType::Float32: return copyType(H5T_NATIVE_FLOAT);
    case DType::Float64: return copyType(H5T_NATIVE_DOUBLE);
    case DType::Complex64: return complexType(H5T_NATIVE_FLOAT, 4);
    case DType::Complex128: return complexType(H5T_NATIVE_DOUBLE, 8);
    case DType::String: return vlenUtf8Type();
  }
  typeError("unknown dtype");
}

std::string orderName(hid_t t) {
  H5T_order_t o = H5Tget_order(t);
  return o == H5T_ORDER_BE ? "big-endian" : o == H5T_ORDER_LE ? "little-endian" : "";
}

std::string describeType(hid_t t);

// IEEE binary32 / binary64 (either byte order); 0 when the float is of another format.
size_t ieeeFloatSize(hid_t t) {
  size_t size = H5Tget_size(t);
  size_t spos, epos, esize, mpos, msize;
  if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) {
    clearErrorStack();
    return 0;
  }
  if (size == 4 && spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23) return 4;
  if (size == 8 && spos == 63 && epos == 52 && esize == 11 && mpos == 0 && msize == 52) return 8;
  return 0;
}

std::string memberName(hid_t t, unsigned i) {
  char* n = H5Tget_member_name(t, i);
  if (!n) {
    clearErrorStack();
    return "?";
  }
  std::string s(n);
  H5free_memory(n);
  return s;
}

std::string describeType(hid_t t) {
  H5T_class_t cls = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  std::string bits = std::to_string(size * 8) + "-bit";
  switch (cls) {
    case H5T_INTEGER:
      return bits + " " + (H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned" : "signed") + " " +
             orderName(t) + " integer";
    case H5T_FLOAT: return bits + " " + orderName(t) + " float" + (ieeeFloatSize(t) ? "" : " (not IEEE binary32/64)");
    case H5T_TIME: return "time type";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return bits + " bitfield";
    case H5T_OPAQUE: {
      std::string s = std::to_string(size) + "-byte opaque";
      char* tag = H5Tget_tag(t);
      if (tag) {
        if (*tag) s += " (tag '" + std::string(tag) + "')";
        H5free_memory(tag);
      } else {
        clearErrorStack();
      }
      return s;
    }
    case H5T_COMPOUND: {
      int n = H5Tget_nmembers(t);
      std::string s = "compound {";
      for (int i = 0; i < n; ++i) {
        Hid m(H5Tget_member_type(t, static_cast<unsigned>(i)), H5Tclose);
        if (i) s += ", ";
        s += memberName(t, static_cast<unsigned>(i)) + ": " + (m.valid() ? describeType(m.get()) : "?");
      }
      return s + "}";
    }
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: {
      int n = H5Tget_nmembers(t);
      std::string s = "enum {";
      for (int i = 0; i < n; ++i) s += (i ? ", " : "") + memberName(t, static_cast<unsigned>(i));
      return s + "} of " + bits + " integer";
    }
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array type";
    default: return "unknown type class";
  }
}

bool isH5pyBool(hid_t t) {
  if (H5Tget_size(t) != 1 || H5Tget_nmembers(t) != 2) return false;
  bool seenFalse = false, seenTrue = false;
  for (unsigned i = 0; i < 2; ++i) {
    std::string n = memberName(t, i);
    int8_t v = -1;
    if (H5Tget_member_value(t, i, &v) < 0) {
      clearErrorStack();
      return false;
    }
    if (n == "FALSE" && v == 0) seenFalse = true;
    if (n == "TRUE" && v == 1) seenTrue = true;
  }
  return seenFalse && seenTrue;
}

// complex64/complex128 for h5py's compound {r, i} of one IEEE float type; Float64 (false) otherwise.
bool isH5pyComplex(hid_t t, DType* out) {
  if (H5Tget_nmembers(t) != 2) return false;
  if (H5Tget_member_index(t, "r") < 0 || H5Tget_member_index(t, "i") < 0) {
    clearErrorStack();
    return false;
  }
  size_t sizes[2];
  for (unsigned i = 0; i < 2; ++i) {
    if (H5Tget_member_class(t, i) != H5T_FLOAT) return false;
    Hid m = ownType(H5Tget_member_type(t, i), "H5Tget_member_type");
    sizes[i] = ieeeFloatSize(m.get());
  }
  if (sizes[0] != sizes[1] || sizes[0] == 0) return false;
  *out = sizes[0] == 4 ? DType::Complex64 : DType::Complex128;
  return true;
}

DType classify(hid_t t, StringType* str, const std::string& where) {
  H5T_class_t cls = H5Tget_class(t);
  if (cls == H5T_NO_CLASS) throwHdf5("cannot inspect the datatype of " + where);
  size_t size = H5Tget_size(t);
  switch (cls) {
    case H5T_INTEGER: {
      bool sign = H5Tget_sign(t) != H5T_SGN_NONE;
      switch (size) {
        case 1: return sign ? DType::Int8 : DType::Uint8;
        case 2: return sign ? DType::Int16 : DType::Uint16;
        case 4: return sign ? DType::Int32 : DType::Uint32;
        case 8: return sign ? DType::Int64 : DType::Uint64;
        default: break;
      }
      break;
    }
    case H5T_FLOAT: {
      size_t s = ieeeFloatSize(t);
      if (s == 4) return DType::Float32;
      if (s == 8) return DType::Float64;
      break;
    }
    case H5T_ENUM:
      if (isH5pyBool(t)) return DType::Bool;
      break;
    case H5T_COMPOUND: {
      DType c;
      if (isH5pyComplex(t, &c)) return c;
      break;
    }
    case H5T_STRING: {
      if (str) {
        htri_t v = checkTri(H5Tis_variable_str(t), "H5Tis_variable_str");
        str->variable = v > 0;
        str->length = str->variable ? 0 : size;
        str->utf8 = H5Tget_cset(t) == H5T_CSET_UTF8;
      }
      return DType::String;
    }
    default: break;
  }
  throw Failure("ERR_UNSUPPORTED_DTYPE", "unsupported HDF5 datatype at " + where + ": " + describeType(t));
}

bool arrayFits(DType t, ArrayKind k) {
  switch (t) {
    case DType::Bool:
    case DType::Uint8: return k == ArrayKind::Uint8 || k == ArrayKind::Uint8Clamped;
    case DType::Int8: return k == ArrayKind::Int8;
    case DType::Int16: return k == ArrayKind::Int16;
    case DType::Int32: return k == ArrayKind::Int32;
    case DType::Int64: return k == ArrayKind::BigInt64;
    case DType::Uint16: return k == ArrayKind::Uint16;
    case DType::Uint32: return k == ArrayKind::Uint32;
    case DType::Uint64: return k == ArrayKind::BigUint64;
    case DType::Float32:
    case DType::Complex64: return k == ArrayKind::Float32;
    case DType::Float64:
    case DType::Complex128: return k == ArrayKind::Float64;
    case DType::String: return false;
  }
  return false;
}

const char* arrayKindName(ArrayKind k) {
  switch (k) {
    case ArrayKind::Int8: return "Int8Array";
    case ArrayKind::Uint8: return "Uint8Array";
    case ArrayKind::Uint8Clamped: return "Uint8ClampedArray";
    case ArrayKind::Int16: return "Int16Array";
    case ArrayKind::Uint16: return "Uint16Array";
    case ArrayKind::Int32: return "Int32Array";
    case ArrayKind::Uint32: return "Uint32Array";
    case ArrayKind::Float32: return "Float32Array";
    case ArrayKind::Float64: return "Float64Array";
    case ArrayKind::BigInt64: return "BigInt64Array";
    case ArrayKind::BigUint64: return "BigUint64Array";
  }
  return "?";
}

Hid newPlist(hid_t cls) { return ownPlist(H5Pcreate(cls), "H5Pcreate"); }

// ---------------------------------------------------------------------------------------------
// Dataspace helpers

struct Extent {
  H5S_class_t cls = H5S_NO_CLASS;
  std::vector<hsize_t> dims, maxdims;
};

Extent extentOf(hid_t space) {
  Extent e;
  e.cls = H5Sget_simple_extent_type(space);
  if (e.cls == H5S_NO_CLASS) throwHdf5("H5Sget_simple_extent_type");
  if (e.cls == H5S_SIMPLE) {
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) throwHdf5("H5Sget_simple_extent_ndims");
    e.dims.resize(static_cast<size_t>(rank));
    e.maxdims.resize(static_cast<size_t>(rank));
    if (H5Sget_simple_extent_dims(space, e.dims.data(), e.maxdims.data()) < 0)
      throwHdf5("H5Sget_simple_extent_dims");
  }
  return e;
}

uint64_t product(const std::vector<hsize_t>& v, size_t from = 0) {
  uint64_t n = 1;
  for (size_t i = from; i < v.size(); ++i) n *= v[i];
  return n;
}

std::string shapeText(const std::vector<hsize_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The hyperslab a Selection names, validated against the extent.
struct Slab {
  std::vector<hsize_t> start, count;
  bool all = true;
  uint64_t elements = 1;
};

Slab resolveSelection(const Selection& sel, const Extent& e, const std::string& where) {
  Slab s;
  size_t rank = e.dims.size();
  if (sel.all) {
    s.start.assign(rank, 0);
    s.count = e.dims;
    s.all = true;
  } else {
    if (e.cls != H5S_SIMPLE) typeError("a selection needs an n-d dataset; " + where + " is scalar or null");
    if (sel.start.size() != rank || sel.count.size() != rank)
      rangeError("selection rank does not match dataset " + where + " of shape " + shapeText(e.dims));
    s.start.assign(sel.start.begin(), sel.start.end());
    s.count.assign(sel.count.begin(), sel.count.end());
    s.all = true;
    for (size_t i = 0; i < rank; ++i) {
      if (s.start[i] > e.dims[i] || s.count[i] > e.dims[i] - s.start[i])
        rangeError("selection start " + shapeText(s.start) + " count " + shapeText(s.count) +
                   " is outside dataset " + where + " of shape " + shapeText(e.dims));
      if (s.start[i] != 0 || s.count[i] != e.dims[i]) s.all = false;
    }
  }
  s.elements = e.cls == H5S_NULL ? 0 : product(s.count);
  return s;
}

// File space with the hyperslab selected, and the matching memory space; H5S_ALL for whole I/O.
struct IoSpaces {
  Hid file, mem;
  hid_t fileId() const { return file.valid() ? file.get() : H5S_ALL; }
  hid_t memId() const { return mem.valid() ? mem.get() : H5S_ALL; }
};

IoSpaces slabSpaces(hid_t dset, const std::vector<hsize_t>& start, const std::vector<hsize_t>& count, bool all) {
  IoSpaces io;
  if (all) return io;
  io.file = ownSpace(H5Dget_space(dset), "H5Dget_space");
  check(H5Sselect_hyperslab(io.file.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        "cannot select the hyperslab");
  io.mem = ownSpace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), "H5Screate_simple");
  return io;
}

// A numeric read or write checked before any I/O: the TypedArray's kind against the stored dtype,
// the selection against the extent, the byte count against the selection.
struct Transfer {
  Hid ftype;
  DType dtype;
  Extent extent;
  Slab slab;
  size_t esize;
};

Transfer checkTransfer(hid_t dset, const std::string& p, size_t bytes, ArrayKind kind, const Selection& sel, bool writing) {
  Transfer t;
  t.ftype = ownType(H5Dget_type(dset), "H5Dget_type");
  t.dtype = classify(t.ftype.get(), nullptr, p);
  if (t.dtype == DType::String) typeError(p + (writing ? " holds strings; use writeStrings()" : " holds strings; use readStrings()"));
  if (!arrayFits(t.dtype, kind))
    typeError(std::string("a ") + arrayKindName(kind) + (writing ? " cannot be written to " : " cannot receive ") + p +
              " of dtype " + dtypeName(t.dtype));
  Hid fspace = ownSpace(H5Dget_space(dset), "H5Dget_space");
  t.extent = extentOf(fspace.get());
  t.slab = resolveSelection(sel, t.extent, p);
  t.esize = dtypeSize(t.dtype);
  if (t.slab.elements * t.esize != bytes)
    rangeError((writing ? "data holds " : "the output holds ") + std::to_string(bytes) + " bytes but the selection of " + p +
               (writing ? " needs " : " has ") + std::to_string(t.slab.elements) + " x " + std::to_string(t.esize));
  return t;
}

// Chunked, unfiltered, stored exactly as in memory: whole chunks may move with H5Dwrite_chunk /
// H5Dread_chunk. Returns the chunk dims (empty when the fast path does not apply).
std::vector<hsize_t> directChunkDims(hid_t dset, hid_t ftype, hid_t mtype, size_t rank) {
  std::vector<hsize_t> none;
  if (rank == 0) return none;
  Hid dcpl = ownPlist(H5Dget_create_plist(dset), "H5Dget_create_plist");
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return none;
  if (H5Pget_nfilters(dcpl.get()) != 0) return none;
  if (checkTri(H5Tequal(ftype, mtype), "H5Tequal") <= 0) return none;
  std::vector<hsize_t> c(rank);
  if (H5Pget_chunk(dcpl.get(), static_cast<int>(rank), c.data()) != static_cast<int>(rank)) {
    clearErrorStack();
    return none;
  }
  return c;
}

// The whole chunks [k0, k1) along axis 0 that the slab covers and that are contiguous in the
// C-ordered buffer (chunk spans the slab in every trailing dimension, aligned to chunk boundaries).
bool wholeChunkRun(const std::vector<hsize_t>& c, const Slab& s, size_t elemSize, hsize_t* k0, hsize_t* k1) {
  size_t rank = c.size();
  for (size_t d = 1; d < rank; ++d) {
    if (s.count[d] != c[d] || s.start[d] % c[d] != 0) return false;
  }
  uint64_t chunkBytes = product(c) * elemSize;
  if (chunkBytes > std::numeric_limits<uint32_t>::max()) return false;
  hsize_t lo = (s.start[0] + c[0] - 1) / c[0];
  hsize_t hi = (s.start[0] + s.count[0]) / c[0];
  if (hi <= lo) return false;
  *k0 = lo;
  *k1 = hi;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Strings from a dataset or an attribute

struct StringSource {
  hid_t obj;
  bool isAttr;
  herr_t read(hid_t mtype, void* buf) const {
    return isAttr ? H5Aread(obj, mtype, buf) : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  }
};

std::string trimFixed(const char* p, size_t size, H5T_str_t pad) {
  size_t n = size;
  if (pad == H5T_STR_NULLTERM) {
    const void* z = std::memchr(p, 0, size);
    if (z) n = static_cast<size_t>(static_cast<const char*>(z) - p);
  } else {
    char padChar = pad == H5T_STR_SPACEPAD ? ' ' : '\0';
    while (n > 0 && p[n - 1] == padChar) --n;
  }
  return std::string(p, n);
}

std::vector<std::string> readStringValues(const StringSource& src, hid_t ftype, hid_t space, const std::string& where) {
  std::vector<std::string> out;
  Extent e = extentOf(space);
  if (e.cls == H5S_NULL) return out;
  hssize_t npts = H5Sget_simple_extent_npoints(space);
  if (npts < 0) throwHdf5("H5Sget_simple_extent_npoints");
  size_t n = static_cast<size_t>(npts);
  if (n == 0) return out;
  htri_t variable = checkTri(H5Tis_variable_str(ftype), "H5Tis_variable_str");
  out.reserve(n);
  if (variable > 0) {
    Hid mtype = copyType(H5T_C_S1);
    check(H5Tset_size(mtype.get(), H5T_VARIABLE), "H5Tset_size");
    check(H5Tset_cset(mtype.get(), H5Tget_cset(ftype)), "H5Tset_cset");
    std::vector<char*> ptrs(n, nullptr);
    if (src.read(mtype.get(), ptrs.data()) < 0) throwHdf5("cannot read strings from " + where);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    // Frees the strings HDF5 allocated (for a dataset's or an attribute's buffer alike).
    if (H5Dvlen_reclaim(mtype.get(), space, H5P_DEFAULT, ptrs.data()) < 0) clearErrorStack();
  } else {
    size_t size = H5Tget_size(ftype);
    if (size == 0) throwHdf5("H5Tget_size");
    Hid mtype = ownType(H5Tcopy(ftype), "H5Tcopy");
    H5T_str_t pad = H5Tget_strpad(ftype);
    std::vector<char> buf(n * size);
    if (src.read(mtype.get(), buf.data()) < 0) throwHdf5("cannot read strings from " + where);
    for (size_t i = 0; i < n; ++i) out.push_back(trimFixed(buf.data() + i * size, size, pad));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values of numeric scalars (fill values)

void encodeScalar(DType t, double v, bool exactInt, int64_t i64, uint64_t u64, std::vector<uint8_t>* out) {
  out->assign(dtypeSize(t), 0);
  void* p = out->data();
  switch (t) {
    case DType::Bool: *static_cast<int8_t*>(p) = v != 0 ? 1 : 0; break;
    case DType::Int8: *static_cast<int8_t*>(p) = static_cast<int8_t>(v); break;
    case DType::Int16: *static_cast<int16_t*>(p) = static_cast<int16_t>(v); break;
    case DType::Int32: *static_cast<int32_t*>(p) = static_cast<int32_t>(v); break;
    case DType::Int64: *static_cast<int64_t*>(p) = exactInt ? i64 : static_cast<int64_t>(v); break;
    case DType::Uint8: *static_cast<uint8_t*>(p) = static_cast<uint8_t>(v); break;
    case DType::Uint16: *static_cast<uint16_t*>(p) = static_cast<uint16_t>(v); break;
    case DType::Uint32: *static_cast<uint32_t*>(p) = static_cast<uint32_t>(v); break;
    case DType::Uint64: *static_cast<uint64_t*>(p) = exactInt ? u64 : static_cast<uint64_t>(v); break;
    case DType::Float32: *static_cast<float*>(p) = static_cast<float>(v); break;
    case DType::Float64: *static_cast<double*>(p) = v; break;
    case DType::Complex64: static_cast<float*>(p)[0] = static_cast<float>(v); break;
    case DType::Complex128: static_cast<double*>(p)[0] = v; break;
    case DType::String: typeError("strings have no numeric fill value");
  }
}

bool fitsInteger(DType t, double v) {
  if (!std::isfinite(v) || std::floor(v) != v) return false;
  switch (t) {
    case DType::Int8: return v >= -128 && v <= 127;
    case DType::Int16: return v >= -32768 && v <= 32767;
    case DType::Int32: return v >= -2147483648.0 && v <= 2147483647.0;
    case DType::Int64: return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    case DType::Uint8: return v >= 0 && v <= 255;
    case DType::Uint16: return v >= 0 && v <= 65535;
    case DType::Uint32: return v >= 0 && v <= 4294967295.0;
    case DType::Uint64: return v >= 0 && v < 18446744073709551616.0;
    default: return true;
  }
}

}  // namespace

// =============================================================================================

const char* dtypeName(DType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.name;
  return "?";
}

bool parseDType(const std::string& name, DType* out) {
  for (const auto& r : kDTypes) {
    if (name == r.name && r.t != DType::String) {
      *out = r.t;
      return true;
    }
  }
  return false;
}

size_t dtypeSize(DType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.size;
  return 0;
}

size_t arrayKindSize(ArrayKind k) {
  switch (k) {
    case ArrayKind::Int8:
    case ArrayKind::Uint8:
    case ArrayKind::Uint8Clamped: return 1;
    case ArrayKind::Int16:
    case ArrayKind::Uint16: return 2;
    case ArrayKind::Int32:
    case ArrayKind::Uint32:
    case ArrayKind::Float32: return 4;
    case ArrayKind::Float64:
    case ArrayKind::BigInt64:
    case ArrayKind::BigUint64: return 8;
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Open / close

std::shared_ptr<File> File::open(const std::string& path, const std::string& mode) {
  bool create = mode == "w" || mode == "x";
  if (!create && mode != "r" && mode != "r+") typeError("mode must be 'r', 'r+', 'w' or 'x', not '" + mode + "'");
  if (path.empty()) typeError("path must be a non-empty string");
  if (path.find('\0') != std::string::npos) typeError("path contains a NUL character");

  // Classify OS-level problems ourselves: HDF5 reports them only as text.
  int err = 0;
  std::string dir = parentDir(path);
  if (!isDirectory(dir, &err)) systemFailure(err, create ? "create" : "open", path);
  if (create) {
    struct stat st;
    bool exists = ::stat(path.c_str(), &st) == 0;
    if (exists && mode == "x")
      throw Failure("ERR_IO", "cannot create " + path + ": the file already exists", {}, "EEXIST");
    if (exists && S_ISDIR(st.st_mode)) systemFailure(EISDIR, "create", path);
    if (::access(dir.c_str(), W_OK | X_OK) != 0) systemFailure(errno, "create", path);
    if (exists && ::access(path.c_str(), W_OK) != 0) systemFailure(errno, "overwrite", path);
    // H5Fcreate(H5F_ACC_TRUNC) truncates the file *before* it tries HDF5's lock, so a file another
    // process has open would be destroyed and then reported as locked. Probe the same lock first.
    if (exists && lockingEnabled()) {
      int fd = ::open(path.c_str(), O_RDWR);
      if (fd >= 0) {
        bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
        ::close(fd);  // also drops our probe lock
        if (busy)
          throw Failure("ERR_LOCKED", "cannot overwrite " + path + ": another process (or handle) has the file open");
      }
    }
  } else {
    int fd = ::open(path.c_str(), mode == "r" ? O_RDONLY : O_RDWR);
    if (fd < 0) {
      int e = errno;
      if (e == ENOENT) throw Failure("ERR_IO", "cannot open " + path + ": no such file", {}, "ENOENT");
      systemFailure(e, mode == "r" ? "read" : "open for writing", path);
    }
    ::close(fd);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) systemFailure(EISDIR, "open", path);
  }

  if (create) {
    Hid fcpl = newPlist(H5P_FILE_CREATE);
    check(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
          "H5Pset_link_creation_order");
    check(H5Pset_attr_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
          "H5Pset_attr_creation_order");
    Hid fapl = newPlist(H5P_FILE_ACCESS);
    check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
    hid_t fid = H5Fcreate(path.c_str(), mode == "x" ? H5F_ACC_EXCL : H5F_ACC_TRUNC, fcpl.get(), fapl.get());
    if (fid < 0) {
      ErrorStack st = takeErrorStack();
      std::string inner = st.innermost();
      if (st.hasMinor(H5E_CANTLOCKFILE))
        throw Failure("ERR_LOCKED", "cannot create " + path + ": another process has the file open (lock held)",
                      std::move(st.messages));
      if (inner.find("already open") != std::string::npos)
        throw Failure("ERR_LOCKED", "cannot create " + path + ": the file is open in this process",
                      std::move(st.messages));
      throw Failure("ERR_HDF5", "cannot create " + path + (inner.empty() ? "" : ": " + inner), std::move(st.messages));
    }
    return std::shared_ptr<File>(new File(fid, path, true));
  }

  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) {
    ErrorStack st = takeErrorStack();
    throw Failure("ERR_CHECKPOINT_CORRUPT", "cannot open " + path + ": not an HDF5 file (no HDF5 signature)",
                  std::move(st.messages));
  }
  Hid fapl = newPlist(H5P_FILE_ACCESS);
  hid_t fid = H5Fopen(path.c_str(), mode == "r" ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl.get());
  if (fid < 0) {
    ErrorStack st = takeErrorStack();
    std::string all;
    for (const auto& m : st.messages) all += m + "\n";
    if (st.hasMinor(H5E_CANTLOCKFILE))
      throw Failure("ERR_LOCKED", "cannot open " + path + ": another process has the file open (lock held)",
                    std::move(st.messages));
    if (all.find("already open") != std::string::npos)
      throw Failure("ERR_LOCKED", "cannot open " + path + " in mode '" + mode +
                    "': the file is already open in this process in an incompatible mode", std::move(st.messages));
    std::string inner = st.innermost();
    size_t p = inner.find("(): ");
    if (p != std::string::npos) inner = inner.substr(p + 4);
    throw Failure("ERR_CHECKPOINT_CORRUPT", "cannot open " + path + ": damaged or truncated HDF5 file (" + inner + ")",
                  std::move(st.messages));
  }
  return std::shared_ptr<File>(new File(fid, path, mode == "r+"));
}

File::~File() {
  // Owners close explicitly (under the lock); a File dropped while open hands its id on.
  if (fid_ >= 0) abandon();
}

hid_t File::fid() const {
  hid_t id = fid_.load();
  if (id < 0) throw Failure("ERR_CLOSED", "the HDF5 file " + path_ + " is closed");
  return id;
}

void File::requireWritable(const char* op) const {
  fid();
  if (!writable_)
    throw Failure("ERR_NOT_WRITABLE", std::string("cannot ") + op + ": " + path_ + " is open read-only");
}

void File::close() {
  hid_t fid = fid_.exchange(H5I_INVALID_HID);
  if (fid < 0) return;
  const unsigned kinds = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
  ssize_t n = H5Fget_obj_count(fid, kinds);
  if (n > 0) {
    std::vector<hid_t> ids(static_cast<size_t>(n));
    ssize_t got = H5Fget_obj_ids(fid, kinds, ids.size(), ids.data());
    for (ssize_t i = 0; i < got; ++i) {
      hid_t id = ids[static_cast<size_t>(i)];
      if (H5Iget_type(id) == H5I_ATTR) H5Aclose(id);
      else H5Oclose(id);
    }
  }
  clearErrorStack();
  if (H5Fclose(fid) < 0) throwHdf5("cannot close " + path_);
}

void File::abandon() {
  hid_t fid = fid_.exchange(H5I_INVALID_HID);
  if (fid >= 0) deferClose(fid);
}

void File::flush() { check(H5Fflush(fid(), H5F_SCOPE_LOCAL), ("cannot flush " + path_).c_str()); }

int File::openObjectCount() {
  ssize_t n = H5Fget_obj_count(fid(), H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
  if (n < 0) throwHdf5("H5Fget_obj_count");
  return static_cast<int>(n);
}

// ---------------------------------------------------------------------------------------------
// Links and groups

std::string File::kind(const std::string& p) {
  hid_t f = fid();
  std::vector<std::string> parts = splitPath(p);
  if (parts.empty()) return "group";
  for (size_t i = 1; i <= parts.size(); ++i) {
    bool last = i == parts.size();
    std::string prefix = joinPath(parts, i);
    htri_t e = checkTri(H5Lexists(f, prefix.c_str(), H5P_DEFAULT), ("cannot look up " + prefix).c_str());
    if (e == 0) return "";
    H5L_info_t li;
    check(H5Lget_info(f, prefix.c_str(), &li, H5P_DEFAULT), ("cannot look up " + prefix).c_str());
    if (li.type == H5L_TYPE_EXTERNAL) return last ? "other" : "";
    H5O_info_t oi;
    if (H5Oget_info_by_name2(f, prefix.c_str(), &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
      clearErrorStack();  // dangling soft link
      return last ? "other" : "";
    }
    if (last) return oi.type == H5O_TYPE_GROUP ? "group" : oi.type == H5O_TYPE_DATASET ? "dataset" : "other";
    if (oi.type != H5O_TYPE_GROUP) return "";
  }
  return "";
}

namespace {
herr_t collectLink(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
herr_t collectAttr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> File::list(const std::string& p) {
  hid_t f = fid();
  splitPath(p);
  Hid g = ownGroup(H5Gopen2(f, p.c_str(), H5P_DEFAULT), ("cannot open group " + p).c_str());
  Hid gcpl = ownPlist(H5Gget_create_plist(g.get()), "H5Gget_create_plist");
  unsigned flags = 0;
  check(H5Pget_link_creation_order(gcpl.get(), &flags), "H5Pget_link_creation_order");
  std::vector<std::string> names;
  if (flags & H5P_CRT_ORDER_TRACKED) {
    hsize_t idx = 0;
    if (H5Literate(g.get(), H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collectLink, &names) >= 0) return names;
    clearErrorStack();
    names.clear();
  }
  hsize_t idx = 0;
  check(H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collectLink, &names), ("cannot list group " + p).c_str());
  return names;
}

Hid File::linkCreatePlist() {
  Hid lcpl = newPlist(H5P_LINK_CREATE);
  check(H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8), "H5Pset_char_encoding");
  return lcpl;
}

namespace {
Hid groupCreatePlist() {
  Hid gcpl = newPlist(H5P_GROUP_CREATE);
  check(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "H5Pset_link_creation_order");
  check(H5Pset_attr_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "H5Pset_attr_creation_order");
  check(H5Pset_obj_track_times(gcpl.get(), 0), "H5Pset_obj_track_times");
  return gcpl;
}
}  // namespace

void File::makeParents(const std::string& p) {
  hid_t f = fid();
  std::vector<std::string> parts = splitPath(p);
  if (parts.empty()) typeError("the root group '/' already exists");
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string prefix = joinPath(parts, i);
    std::string k = kind(prefix);
    if (k == "group") continue;
    if (!k.empty()) throw Failure("ERR_HDF5", "cannot create " + p + ": " + prefix + " is not a group");
    Hid gcpl = groupCreatePlist();
    Hid lcpl = linkCreatePlist();
    ownGroup(H5Gcreate2(f, prefix.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT), ("cannot create group " + prefix).c_str());
  }
}

void File::createGroup(const std::string& p) {
  requireWritable("create a group");
  makeParents(p);
  Hid gcpl = groupCreatePlist();
  Hid lcpl = linkCreatePlist();
  ownGroup(H5Gcreate2(fid(), p.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT), ("cannot create group " + p).c_str());
}

void File::remove(const std::string& p) {
  requireWritable("delete");
  if (splitPath(p).empty()) typeError("cannot delete the root group");
  check(H5Ldelete(fid(), p.c_str(), H5P_DEFAULT), ("cannot delete " + p).c_str());
}

// ---------------------------------------------------------------------------------------------
// Datasets

Hid File::openDataset(const std::string& p) {
  hid_t f = fid();
  splitPath(p);
  return ownDataset(H5Dopen2(f, p.c_str(), H5P_DEFAULT), ("cannot open dataset " + p).c_str());
}

Hid File::openObject(const std::string& p) {
  hid_t f = fid();
  splitPath(p);
  return ownObject(H5Oopen(f, p.c_str(), H5P_DEFAULT), ("cannot open " + p).c_str());
}

DatasetInfo File::info(const std::string& p) {
  DatasetInfo out;
  Hid d = openDataset(p);
  Hid t = ownType(H5Dget_type(d.get()), "H5Dget_type");
  out.dtype = classify(t.get(), &out.str, p);
  Hid s = ownSpace(H5Dget_space(d.get()), "H5Dget_space");
  Extent e = extentOf(s.get());
  out.isNull = e.cls == H5S_NULL;
  for (size_t i = 0; i < e.dims.size(); ++i) {
    out.shape.push_back(e.dims[i]);
    out.maxshape.push_back(e.maxdims[i] == H5S_UNLIMITED ? -1 : static_cast<int64_t>(e.maxdims[i]));
  }
  Hid dcpl = ownPlist(H5Dget_create_plist(d.get()), "H5Dget_create_plist");
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    out.chunked = true;
    std::vector<hsize_t> c(32);
    int r = H5Pget_chunk(dcpl.get(), 32, c.data());
    if (r < 0) throwHdf5("H5Pget_chunk");
    out.chunks.assign(c.begin(), c.begin() + r);
  }
  int nf = H5Pget_nfilters(dcpl.get());
  if (nf < 0) throwHdf5("H5Pget_nfilters");
  for (int i = 0; i < nf; ++i) {
    unsigned flags = 0, cd[8] = {0}, config = 0;
    size_t ncd = 8;
    char name[64];
    H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, cd, sizeof name, name, &config);
    if (id < 0) throwHdf5("H5Pget_filter2");
    if (id == H5Z_FILTER_DEFLATE) {
      out.gzip = true;
      out.level = ncd > 0 ? static_cast<int>(cd[0]) : -1;
    } else if (id == H5Z_FILTER_SHUFFLE) {
      out.shuffle = true;
    } else {
      out.otherFilters++;
    }
  }
  return out;
}

void File::createDataset(const std::string& p, const CreateOptions& o) {
  requireWritable("create a dataset");
  if (o.dtype == DType::String) typeError("use writeStrings() for string datasets");
  size_t rank = o.shape.size();
  std::vector<hsize_t> dims(o.shape.begin(), o.shape.end());
  std::vector<hsize_t> maxdims = dims;
  bool resizable = false;
  if (o.hasMaxshape) {
    if (o.maxshape.size() != rank) rangeError("maxshape must have the same length as shape");
    for (size_t i = 0; i < rank; ++i) {
      if (o.maxshape[i] < 0) {
        maxdims[i] = H5S_UNLIMITED;
      } else {
        maxdims[i] = static_cast<hsize_t>(o.maxshape[i]);
        if (maxdims[i] < dims[i]) rangeError("maxshape is smaller than shape in dimension " + std::to_string(i));
      }
      if (maxdims[i] != dims[i]) resizable = true;
    }
  }
  bool filtered = o.gzip || o.shuffle;
  if (rank == 0 && (o.hasChunks || resizable || filtered))
    typeError("a scalar dataset (shape []) cannot be chunked, resizable or compressed");
  if ((resizable || filtered) && !o.hasChunks)
    typeError("chunks are required for a resizable or compressed dataset");
  if (o.hasChunks) {
    if (o.chunks.size() != rank) rangeError("chunks must have the same length as shape");
    uint64_t bytes = dtypeSize(o.dtype);
    for (size_t i = 0; i < rank; ++i) {
      if (o.chunks[i] == 0) rangeError("chunk dimensions must be positive");
      if (maxdims[i] != H5S_UNLIMITED && o.chunks[i] > maxdims[i])
        rangeError("chunk dimension " + std::to_string(i) + " exceeds maxshape");
      bytes *= o.chunks[i];
    }
    if (bytes >= (uint64_t(1) << 32)) rangeError("a chunk must hold less than 4 GiB");
  }
  if (o.gzip && (o.level < 0 || o.level > 9)) rangeError("compressionLevel must be 0..9");

  Hid space = rank == 0 ? ownSpace(H5Screate(H5S_SCALAR), "H5Screate")
                        : ownSpace(H5Screate_simple(static_cast<int>(rank), dims.data(), maxdims.data()),
                                   ("cannot create the dataspace of " + p).c_str());
  Hid dcpl = newPlist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.get(), 0), "H5Pset_obj_track_times");
  if (o.hasChunks) {
    std::vector<hsize_t> c(o.chunks.begin(), o.chunks.end());
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(rank), c.data()), "H5Pset_chunk");
  }
  if (o.shuffle) check(H5Pset_shuffle(dcpl.get()), "H5Pset_shuffle");
  if (o.gzip) {
    if (checkTri(H5Zfilter_avail(H5Z_FILTER_DEFLATE), "H5Zfilter_avail") <= 0)
      throw Failure("ERR_HDF5", "gzip (deflate) is not available in this libhdf5");
    unsigned config = 0;
    check(H5Zget_filter_info(H5Z_FILTER_DEFLATE, &config), "H5Zget_filter_info");
    if (!(config & H5Z_FILTER_CONFIG_ENCODE_ENABLED))
      throw Failure("ERR_HDF5", "gzip (deflate) encoding is not enabled in this libhdf5");
    check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(o.level)), "H5Pset_deflate");
  }
  Hid mtype = memType(o.dtype);
  if (o.hasFill) {
    if (!o.fillIsInt64 && o.dtype != DType::Float32 && o.dtype != DType::Float64 && o.dtype != DType::Complex64 &&
        o.dtype != DType::Complex128 && o.dtype != DType::Bool && !fitsInteger(o.dtype, o.fill))
      rangeError(std::string("fillValue does not fit ") + dtypeName(o.dtype));
    std::vector<uint8_t> fill;
    encodeScalar(o.dtype, o.fill, o.fillIsInt64, o.fillInt64, o.fillUint64, &fill);
    check(H5Pset_fill_value(dcpl.get(), mtype.get(), fill.data()), "H5Pset_fill_value");
  }
  makeParents(p);
  Hid ftype = fileType(o.dtype);
  Hid lcpl = linkCreatePlist();
  ownDataset(H5Dcreate2(fid(), p.c_str(), ftype.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
             ("cannot create dataset " + p).c_str());
}

void File::createNull(const std::string& p) {
  requireWritable("create a dataset");
  makeParents(p);
  Hid space = ownSpace(H5Screate(H5S_NULL), "H5Screate");
  // McUtils stores None as an int32 dataset with a null dataspace (h5py.Empty('i')).
  Hid ftype = fileType(DType::Int32);
  Hid dcpl = newPlist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.get(), 0), "H5Pset_obj_track_times");
  Hid lcpl = linkCreatePlist();
  ownDataset(H5Dcreate2(fid(), p.c_str(), ftype.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
             ("cannot create dataset " + p).c_str());
}

void File::resize(const std::string& p, const std::vector<uint64_t>& shape) {
  requireWritable("resize");
  Hid d = openDataset(p);
  Hid s = ownSpace(H5Dget_space(d.get()), "H5Dget_space");
  Extent e = extentOf(s.get());
  if (e.cls != H5S_SIMPLE || e.dims.size() != shape.size())
    rangeError("resize: " + p + " has rank " + std::to_string(e.dims.size()) + ", shape has " + std::to_string(shape.size()));
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  for (size_t i = 0; i < dims.size(); ++i) {
    if (e.maxdims[i] != H5S_UNLIMITED && dims[i] > e.maxdims[i])
      rangeError("resize: " + p + " cannot grow beyond maxshape " + shapeText(e.maxdims));
  }
  check(H5Dset_extent(d.get(), dims.data()), ("cannot resize " + p).c_str());
}

void File::write(const std::string& p, const void* data, size_t bytes, ArrayKind kind, const Selection& sel) {
  requireWritable("write");
  Hid d = openDataset(p);
  Transfer t = checkTransfer(d.get(), p, bytes, kind, sel, true);
  if (t.slab.elements == 0) return;
  const Slab& s = t.slab;
  const size_t esize = t.esize;
  Hid mtype = memType(t.dtype);
  const char* base = static_cast<const char*>(data);
  std::string what = "cannot write " + p;

  std::vector<hsize_t> c = directChunkDims(d.get(), t.ftype.get(), mtype.get(), t.extent.dims.size());
  hsize_t k0 = 0, k1 = 0;
  if (!c.empty() && wholeChunkRun(c, s, esize, &k0, &k1)) {
    uint64_t rowBytes = product(s.count, 1) * esize;
    uint64_t chunkBytes = c[0] * rowBytes;
    std::vector<hsize_t> off = s.start;
    for (hsize_t k = k0; k < k1; ++k) {
      off[0] = k * c[0];
      const char* src = base + (off[0] - s.start[0]) * rowBytes;
      check(H5Dwrite_chunk(d.get(), H5P_DEFAULT, 0, off.data(), static_cast<size_t>(chunkBytes), src), what.c_str());
    }
    // Rows before the first and after the last whole chunk go through H5Dwrite.
    hsize_t runStart = k0 * c[0], runEnd = k1 * c[0], selEnd = s.start[0] + s.count[0];
    std::pair<hsize_t, hsize_t> rest[2] = {{s.start[0], runStart}, {runEnd, selEnd}};
    for (auto& r : rest) {
      if (r.second <= r.first) continue;
      std::vector<hsize_t> st = s.start, ct = s.count;
      st[0] = r.first;
      ct[0] = r.second - r.first;
      IoSpaces io = slabSpaces(d.get(), st, ct, false);
      check(H5Dwrite(d.get(), mtype.get(), io.memId(), io.fileId(), H5P_DEFAULT, base + (r.first - s.start[0]) * rowBytes),
            what.c_str());
    }
    return;
  }
  IoSpaces io = slabSpaces(d.get(), s.start, s.count, s.all);
  check(H5Dwrite(d.get(), mtype.get(), io.memId(), io.fileId(), H5P_DEFAULT, data), what.c_str());
}

void File::read(const std::string& p, void* data, size_t bytes, ArrayKind kind, const Selection& sel) {
  Hid d = openDataset(p);
  Transfer t = checkTransfer(d.get(), p, bytes, kind, sel, false);
  if (t.slab.elements == 0) return;
  const Slab& s = t.slab;
  Hid mtype = memType(t.dtype);
  IoSpaces io = slabSpaces(d.get(), s.start, s.count, s.all);
  check(H5Dread(d.get(), mtype.get(), io.memId(), io.fileId(), H5P_DEFAULT, data), ("cannot read " + p).c_str());
}

// ---------------------------------------------------------------------------------------------
// Strings and bytes

void File::writeStrings(const std::string& p, const std::vector<std::string>& strs, const std::vector<uint64_t>& shape) {
  requireWritable("write strings");
  uint64_t n = 1;
  for (uint64_t x : shape) n *= x;
  if (n != strs.size())
    rangeError("shape " + shapeText(std::vector<hsize_t>(shape.begin(), shape.end())) + " needs " + std::to_string(n) +
               " strings, got " + std::to_string(strs.size()));
  std::vector<const char*> ptrs;
  ptrs.reserve(strs.size());
  for (const auto& s : strs) {
    if (s.find('\0') != std::string::npos)
      throw Failure("ERR_UNSUPPORTED_VALUE", "HDF5 variable-length strings cannot hold NUL characters (" + p + ")");
    ptrs.push_back(s.c_str());
  }
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Hid space = dims.empty() ? ownSpace(H5Screate(H5S_SCALAR), "H5Screate")
                           : ownSpace(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "H5Screate_simple");
  Hid type = vlenUtf8Type();
  Hid dcpl = newPlist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.get(), 0), "H5Pset_obj_track_times");
  makeParents(p);
  Hid lcpl = linkCreatePlist();
  Hid d = ownDataset(H5Dcreate2(fid(), p.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                     ("cannot create dataset " + p).c_str());
  if (!ptrs.empty())
    check(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), ("cannot write " + p).c_str());
}

std::vector<std::string> File::readStrings(const std::string& p) {
  Hid d = openDataset(p);
  Hid t = ownType(H5Dget_type(d.get()), "H5Dget_type");
  if (H5Tget_class(t.get()) != H5T_STRING) {
    StringType st;
    DType dt = classify(t.get(), &st, p);
    typeError(p + " holds " + dtypeName(dt) + ", not strings");
  }
  Hid s = ownSpace(H5Dget_space(d.get()), "H5Dget_space");
  return readStringValues(StringSource{d.get(), false}, t.get(), s.get(), p);
}

void File::writeBytes(const std::string& p, const uint8_t* data, size_t n, BytesLayout layout) {
  requireWritable("write bytes");
  Hid type, space;
  std::vector<uint8_t> padded;
  const void* src = data;
  switch (layout) {
    case BytesLayout::Void:
      if (n == 0) throw Failure("ERR_UNSUPPORTED_VALUE", "an opaque (np.void) value cannot be empty (" + p + ")");
      type = ownType(H5Tcreate(H5T_OPAQUE, n), "cannot create the opaque type");
      check(H5Tset_tag(type.get(), ""), "H5Tset_tag");
      space = ownSpace(H5Screate(H5S_SCALAR), "H5Screate");
      break;
    case BytesLayout::FixedString:
      type = copyType(H5T_C_S1);
      check(H5Tset_size(type.get(), n == 0 ? 1 : n), "H5Tset_size");
      check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "H5Tset_strpad");
      if (n == 0) {
        padded.assign(1, 0);
        src = padded.data();
      }
      space = ownSpace(H5Screate(H5S_SCALAR), "H5Screate");
      break;
    case BytesLayout::Uint8: {
      type = copyType(H5T_STD_U8LE);
      hsize_t dim = n;
      space = ownSpace(H5Screate_simple(1, &dim, nullptr), "H5Screate_simple");
      break;
    }
  }
  Hid dcpl = newPlist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.get(), 0), "H5Pset_obj_track_times");
  makeParents(p);
  Hid lcpl = linkCreatePlist();
  Hid d = ownDataset(H5Dcreate2(fid(), p.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                     ("cannot create dataset " + p).c_str());
  Hid mtype = layout == BytesLayout::Uint8 ? copyType(H5T_NATIVE_UINT8) : ownType(H5Tcopy(type.get()), "H5Tcopy");
  if (n > 0 || layout == BytesLayout::FixedString)
    check(H5Dwrite(d.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, src), ("cannot write " + p).c_str());
}

std::vector<uint8_t> File::readBytes(const std::string& p) {
  Hid d = openDataset(p);
  Hid t = ownType(H5Dget_type(d.get()), "H5Dget_type");
  Hid s = ownSpace(H5Dget_space(d.get()), "H5Dget_space");
  Extent e = extentOf(s.get());
  if (e.cls == H5S_NULL) return {};
  if (e.dims.size() > 1) typeError(p + " is not a 0-d or 1-d byte string");
  uint64_t n = e.cls == H5S_SCALAR ? 1 : e.dims[0];
  H5T_class_t cls = H5Tget_class(t.get());
  size_t size = H5Tget_size(t.get());
  std::string what = "cannot read " + p;
  if (cls == H5T_OPAQUE || (cls == H5T_INTEGER && size == 1)) {
    std::vector<uint8_t> out(n * size);
    if (out.empty()) return out;
    Hid mtype = ownType(H5Tcopy(t.get()), "H5Tcopy");
    check(H5Dread(d.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), what.c_str());
    return out;
  }
  if (cls == H5T_STRING && e.cls == H5S_SCALAR) {
    std::vector<std::string> v = readStringValues(StringSource{d.get(), false}, t.get(), s.get(), p);
    std::string b = v.empty() ? std::string() : v[0];
    return std::vector<uint8_t>(b.begin(), b.end());
  }
  throw Failure("ERR_UNSUPPORTED_DTYPE", p + " is not a byte string: " + describeType(t.get()));
}

// ---------------------------------------------------------------------------------------------
// Attributes

void File::setAttr(const std::string& p, const std::string& name, const AttrValue& v) {
  requireWritable("set an attribute");
  if (name.empty()) typeError("attribute names must be non-empty");
  Hid obj = openObject(p);
  htri_t exists = checkTri(H5Aexists(obj.get(), name.c_str()), "H5Aexists");
  if (exists > 0) check(H5Adelete(obj.get(), name.c_str()), ("cannot replace attribute " + name).c_str());
  Hid ftype, mtype, space;
  const void* buf = nullptr;
  std::vector<uint8_t> scratch;
  std::vector<const char*> ptrs;
  const char* one = nullptr;
  switch (v.kind) {
    case AttrValue::Kind::Null:
      typeError("attribute values cannot be null");
    case AttrValue::Kind::Number:
      ftype = fileType(DType::Float64);
      mtype = memType(DType::Float64);
      buf = &v.number;
      break;
    case AttrValue::Kind::Int64:
      ftype = fileType(DType::Int64);
      mtype = memType(DType::Int64);
      buf = &v.i64;
      break;
    case AttrValue::Kind::Uint64:
      ftype = fileType(DType::Uint64);
      mtype = memType(DType::Uint64);
      buf = &v.u64;
      break;
    case AttrValue::Kind::Bool:
      ftype = fileType(DType::Bool);
      mtype = memType(DType::Bool);
      scratch.assign(1, v.boolean ? 1 : 0);
      buf = scratch.data();
      break;
    case AttrValue::Kind::String:
      if (v.str.find('\0') != std::string::npos)
        throw Failure("ERR_UNSUPPORTED_VALUE", "HDF5 variable-length strings cannot hold NUL characters");
      ftype = vlenUtf8Type();
      mtype = vlenUtf8Type();
      one = v.str.c_str();
      buf = &one;
      break;
    case AttrValue::Kind::Strings:
      for (const auto& s : v.strs) {
        if (s.find('\0') != std::string::npos)
          throw Failure("ERR_UNSUPPORTED_VALUE", "HDF5 variable-length strings cannot hold NUL characters");
        ptrs.push_back(s.c_str());
      }
      ftype = vlenUtf8Type();
      mtype = vlenUtf8Type();
      buf = ptrs.data();
      break;
    case AttrValue::Kind::Array:
      ftype = fileType(v.dtype);
      mtype = memType(v.dtype);
      buf = v.bytes.data();
      break;
  }
  if (v.kind == AttrValue::Kind::Strings || v.kind == AttrValue::Kind::Array) {
    hsize_t dim = v.kind == AttrValue::Kind::Strings ? v.strs.size() : v.length;
    space = ownSpace(H5Screate_simple(1, &dim, nullptr), "H5Screate_simple");
  } else {
    space = ownSpace(H5Screate(H5S_SCALAR), "H5Screate");
  }
  Hid acpl = newPlist(H5P_ATTRIBUTE_CREATE);
  check(H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8), "H5Pset_char_encoding");
  Hid a = ownAttr(H5Acreate2(obj.get(), name.c_str(), ftype.get(), space.get(), acpl.get(), H5P_DEFAULT),
                  ("cannot create attribute " + name + " on " + p).c_str());
  bool empty = (v.kind == AttrValue::Kind::Strings && v.strs.empty()) || (v.kind == AttrValue::Kind::Array && v.length == 0);
  if (!empty) check(H5Awrite(a.get(), mtype.get(), buf), ("cannot write attribute " + name + " on " + p).c_str());
}

AttrValue File::getAttr(const std::string& p, const std::string& name) {
  Hid obj = openObject(p);
  Hid a = ownAttr(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), ("cannot open attribute " + name + " on " + p).c_str());
  Hid t = ownType(H5Aget_type(a.get()), "H5Aget_type");
  Hid s = ownSpace(H5Aget_space(a.get()), "H5Aget_space");
  std::string where = p + " attribute " + name;
  AttrValue v;
  Extent e = extentOf(s.get());
  StringType st;
  DType dt = classify(t.get(), &st, where);
  if (e.cls == H5S_NULL) return v;
  if (dt == DType::String) {
    std::vector<std::string> strs = readStringValues(StringSource{a.get(), true}, t.get(), s.get(), where);
    if (e.cls == H5S_SCALAR) {
      v.kind = AttrValue::Kind::String;
      v.str = strs.empty() ? std::string() : strs[0];
    } else {
      v.kind = AttrValue::Kind::Strings;
      v.strs = std::move(strs);
    }
    return v;
  }
  hssize_t npts = H5Sget_simple_extent_npoints(s.get());
  if (npts < 0) throwHdf5("H5Sget_simple_extent_npoints");
  Hid mtype = memType(dt);
  std::vector<uint8_t> buf(static_cast<size_t>(npts) * dtypeSize(dt));
  if (!buf.empty()) check(H5Aread(a.get(), mtype.get(), buf.data()), ("cannot read " + where).c_str());
  if (e.cls == H5S_SCALAR && dt != DType::Complex64 && dt != DType::Complex128) {
    const void* b = buf.data();
    switch (dt) {
      case DType::Bool: v.kind = AttrValue::Kind::Bool; v.boolean = *static_cast<const int8_t*>(b) != 0; return v;
      case DType::Int64: v.kind = AttrValue::Kind::Int64; std::memcpy(&v.i64, b, 8); return v;
      case DType::Uint64: v.kind = AttrValue::Kind::Uint64; std::memcpy(&v.u64, b, 8); return v;
      default: break;
    }
    v.kind = AttrValue::Kind::Number;
    switch (dt) {
      case DType::Int8: v.number = *static_cast<const int8_t*>(b); break;
      case DType::Int16: { int16_t x; std::memcpy(&x, b, 2); v.number = x; break; }
      case DType::Int32: { int32_t x; std::memcpy(&x, b, 4); v.number = x; break; }
      case DType::Uint8: v.number = *static_cast<const uint8_t*>(b); break;
      case DType::Uint16: { uint16_t x; std::memcpy(&x, b, 2); v.number = x; break; }
      case DType::Uint32: { uint32_t x; std::memcpy(&x, b, 4); v.number = x; break; }
      case DType::Float32: { float x; std::memcpy(&x, b, 4); v.number = x; break; }
      case DType::Float64: std::memcpy(&v.number, b, 8); break;
      default: break;
    }
    return v;
  }
  v.kind = AttrValue::Kind::Array;
  v.dtype = dt;
  v.length = static_cast<uint64_t>(npts);
  v.bytes = std::move(buf);
  return v;
}

std::vector<std::string> File::attrNames(const std::string& p) {
  Hid obj = openObject(p);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Aiterate2(obj.get(), H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collectAttr, &names) >= 0) return names;
  clearErrorStack();
  names.clear();
  idx = 0;
  check(H5Aiterate2(obj.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collectAttr, &names), ("cannot list attributes of " + p).c_str());
  return names;
}

void File::deleteAttr(const std::string& p, const std::string& name) {
  requireWritable("delete an attribute");
  Hid obj = openObject(p);
  check(H5Adelete(obj.get(), name.c_str()), ("cannot delete attribute " + name + " on " + p).c_str());
}

}  // namespace ckpt
