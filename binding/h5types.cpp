#include "h5types.h"

#include "h5filters.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace ckpt {

namespace {

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
    {DType::Complex128, "complex128", 16}, {DType::Float16, "float16", 2}, {DType::String, "string", 0},
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

std::string orderName(hid_t t) {
  H5T_order_t o = H5Tget_order(t);
  return o == H5T_ORDER_BE ? "big-endian" : o == H5T_ORDER_LE ? "little-endian" : "";
}

// IEEE binary32 / binary64 (either byte order); 0 when the float is of another format.
size_t ieeeFloatSize(hid_t t) {
  size_t size = H5Tget_size(t);
  size_t spos, epos, esize, mpos, msize;
  if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) {
    clearErrorStack();
    return 0;
  }
  if (size == 2 && spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10) return 2;
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

// complex64/complex128 for h5py's compound {r, i} of one IEEE float type.
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
  if (sizes[0] != sizes[1] || (sizes[0] != 4 && sizes[0] != 8)) return false;
  *out = sizes[0] == 4 ? DType::Complex64 : DType::Complex128;
  return true;
}

std::string trimFixed(const char* p, size_t size, H5T_str_t pad) {
  size_t n = size;
  if (pad == H5T_STR_NULLTERM) {
    const void* z = std::memchr(p, 0, size);
    if (z) n = static_cast<size_t>(static_cast<const char*>(z) - p);
  } else {
    // numpy strips trailing NULs; space padding goes first (an all-NUL space-padded string is '').
    if (pad == H5T_STR_SPACEPAD)
      while (n > 0 && p[n - 1] == ' ') --n;
    while (n > 0 && p[n - 1] == '\0') --n;
  }
  return std::string(p, n);
}

}  // namespace

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
    case DType::Float16: return k == ArrayKind::Uint16;  // binary16 bits (lib/values/dtype float16Bits)
    case DType::Float32:
    case DType::Complex64: return k == ArrayKind::Float32;
    case DType::Float64:
    case DType::Complex128: return k == ArrayKind::Float64;
    case DType::String: return false;
  }
  return false;
}

DType kindDType(ArrayKind k) {
  switch (k) {
    case ArrayKind::Int8: return DType::Int8;
    case ArrayKind::Uint8:
    case ArrayKind::Uint8Clamped: return DType::Uint8;
    case ArrayKind::Int16: return DType::Int16;
    case ArrayKind::Uint16: return DType::Uint16;
    case ArrayKind::Int32: return DType::Int32;
    case ArrayKind::Uint32: return DType::Uint32;
    case ArrayKind::Float32: return DType::Float32;
    case ArrayKind::Float64: return DType::Float64;
    case ArrayKind::BigInt64: return DType::Int64;
    case ArrayKind::BigUint64: return DType::Uint64;
  }
  return DType::Uint8;
}

Hid vlenUtf8Type() {
  Hid t = copyType(H5T_C_S1);
  check(H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

// IEEE binary16 in the given byte order (h5py's float16: HDF5 has no predefined one).
Hid halfType(H5T_order_t order) {
  Hid t = copyType(H5T_IEEE_F32LE);
  check(H5Tset_fields(t.get(), 15, 10, 5, 0, 10), "cannot create the float16 type");
  check(H5Tset_size(t.get(), 2), "cannot create the float16 type");
  check(H5Tset_ebias(t.get(), 15), "cannot create the float16 type");
  check(H5Tset_order(t.get(), order), "cannot create the float16 type");
  return t;
}

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
    case DType::Float16: return halfType(H5T_ORDER_LE);
    case DType::String: return vlenUtf8Type();
  }
  typeError("unknown dtype");
}

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
    case DType::Float16: return halfType(H5Tget_order(H5T_NATIVE_FLOAT));
    case DType::String: return vlenUtf8Type();
  }
  typeError("unknown dtype");
}

std::string describeType(hid_t t) {
  H5T_class_t cls = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  std::string bits = std::to_string(size * 8) + "-bit";
  switch (cls) {
    case H5T_INTEGER:
      return bits + " " + (H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned" : "signed") + " " + orderName(t) + " integer";
    case H5T_FLOAT: return bits + " " + orderName(t) + " float" + (ieeeFloatSize(t) ? "" : " (not IEEE binary16/32/64)");
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
        Hid m(H5Tget_member_type(t, static_cast<unsigned>(i)));
        if (i) s += ", ";
        s += memberName(t, static_cast<unsigned>(i)) + ": " + (m.valid() ? describeType(m.get()) : "?");
      }
      clearErrorStack();
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
    default: clearErrorStack(); return "unknown type class";
  }
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
      if (s == 2) return DType::Float16;
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

Extent extentOf(hid_t space) {
  Extent e;
  e.cls = H5Sget_simple_extent_type(space);
  if (e.cls == H5S_NO_CLASS) throwHdf5("H5Sget_simple_extent_type");
  if (e.cls == H5S_SIMPLE) {
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) throwHdf5("H5Sget_simple_extent_ndims");
    e.dims.resize(static_cast<size_t>(rank));
    e.maxdims.resize(static_cast<size_t>(rank));
    if (H5Sget_simple_extent_dims(space, e.dims.data(), e.maxdims.data()) < 0) throwHdf5("H5Sget_simple_extent_dims");
  }
  return e;
}

uint64_t extentElements(const std::vector<hsize_t>& dims, const std::string& where) {
  uint64_t n = 1;
  for (hsize_t d : dims) {
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / d)
      tooLarge(where + " has an extent of " + shapeText(dims) + ", more elements than 64 bits count (a damaged or synthetic file)");
    n *= d;
  }
  return n;
}

std::string shapeText(const std::vector<hsize_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    s += i ? ", " : "";
    s += v[i] == H5S_UNLIMITED ? "null" : std::to_string(v[i]);
  }
  return s + "]";
}

DatasetInfo datasetInfo(hid_t dset, const std::string& where) {
  DatasetInfo out;
  Hid t = ownType(H5Dget_type(dset), "H5Dget_type");
  try {
    out.type = describeStored(t.get(), where);
    if (out.type.kind == TypeNode::Kind::String && out.type.dims.empty()) {
      out.dtype = DType::String;
      out.str = out.type.str;
    } else if (out.type.plainNumber()) {
      out.dtype = out.type.dtype;
    } else {
      out.packed = true;
      out.dtype = DType::Uint8;
    }
    out.opaque = out.type.kind == TypeNode::Kind::Opaque;
  } catch (const Failure& f) {
    if (f.code() != "ERR_UNSUPPORTED_DTYPE") throw;
    out.supported = false;
    out.unsupported = f.message();
    out.opaque = H5Tget_class(t.get()) == H5T_OPAQUE;
  }
  Hid s = ownSpace(H5Dget_space(dset), "H5Dget_space");
  Extent e = extentOf(s.get());
  out.isNull = e.cls == H5S_NULL;
  out.isScalar = e.cls == H5S_SCALAR;
  out.shape = e.dims;
  out.maxshape = e.maxdims;
  Hid dcpl = ownPlist(H5Dget_create_plist(dset), "H5Dget_create_plist");
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    int rank = static_cast<int>(e.dims.size());
    out.chunked = true;
    out.chunks.assign(static_cast<size_t>(rank), 0);
    if (rank > 0 && H5Pget_chunk(dcpl.get(), rank, out.chunks.data()) != rank) throwHdf5("H5Pget_chunk of " + where);
    for (hsize_t c : out.chunks)
      if (c == 0) throw Failure("ERR_CHECKPOINT_CORRUPT", where + " has a chunk dimension of 0 (damaged file)");
  }
  int nf = H5Pget_nfilters(dcpl.get());
  if (nf < 0) throwHdf5("H5Pget_nfilters");
  for (int i = 0; i < nf; ++i) {
    unsigned flags = 0, cd[8] = {0}, config = 0;
    size_t ncd = 8;
    char name[64];
    H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, cd, sizeof name, name, &config);
    if (id < 0) throwHdf5("H5Pget_filter2");
    if (id == H5Z_FILTER_DEFLATE || id == kFilterZstd) {
      out.filters.compression = id == H5Z_FILTER_DEFLATE ? "gzip" : "zstd";
      out.filters.level = ncd > 0 ? static_cast<int>(cd[0]) : -1;
    } else if (id == kFilterLz4) {
      out.filters.compression = "lz4";
    } else if (id == H5Z_FILTER_SHUFFLE) {
      out.filters.shuffle = true;
    } else {
      out.filters.other++;
    }
  }
  return out;
}

std::vector<std::string> readStringValues(const StringSource& src, hid_t ftype, hid_t space, const std::string& where) {
  std::vector<std::string> out;
  Extent e = extentOf(space);
  if (e.cls == H5S_NULL) return out;
  uint64_t n = extentElements(e.dims, where);
  if (n == 0) return out;
  // A sparse dataset can claim 2^62 strings: refuse before allocating, never let the vector throw.
  if (n > kMaxStrings) tooLarge(where + " holds " + std::to_string(n) + " strings, more than one JS array can hold");
  htri_t variable = checkTri(H5Tis_variable_str(ftype), "H5Tis_variable_str");
  size_t size = variable > 0 ? sizeof(char*) : H5Tget_size(ftype);
  if (size == 0) throwHdf5("H5Tget_size");
  if (mulChecked(n, size, "string dataset") > kMaxAllocation) tooLarge(where + " holds more string bytes than the binding reads whole");
  auto read = [&](hid_t mtype, void* buf) {
    herr_t rc = src.isAttr ? H5Aread(src.obj, mtype, buf) : H5Dread(src.obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (rc < 0) throwHdf5("cannot read strings from " + where);
  };
  out.reserve(static_cast<size_t>(n));
  if (variable > 0) {
    Hid mtype = copyType(H5T_C_S1);
    check(H5Tset_size(mtype.get(), H5T_VARIABLE), "H5Tset_size");
    check(H5Tset_cset(mtype.get(), H5Tget_cset(ftype)), "H5Tset_cset");
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    read(mtype.get(), ptrs.data());
    try {
      for (char* p : ptrs) out.emplace_back(p ? p : "");
    } catch (...) {
      h5::reclaim(mtype.get(), space, ptrs.data());
      throw;
    }
    h5::reclaim(mtype.get(), space, ptrs.data());
  } else {
    Hid mtype = ownType(H5Tcopy(ftype), "H5Tcopy");
    H5T_str_t pad = H5Tget_strpad(ftype);
    std::vector<char> buf(static_cast<size_t>(n * size));
    read(mtype.get(), buf.data());
    for (size_t i = 0; i < n; ++i) out.push_back(trimFixed(buf.data() + i * size, size, pad));
  }
  return out;
}

std::vector<uint8_t> encodeScalar(DType t, const ScalarValue& v) {
  std::vector<uint8_t> out(dtypeSize(t), 0);
  void* p = out.data();
  double d = v.kind == ScalarValue::Kind::Int64 ? static_cast<double>(v.i64)
             : v.kind == ScalarValue::Kind::Uint64 ? static_cast<double>(v.u64)
                                                   : v.number;
  switch (t) {
    case DType::Bool: *static_cast<int8_t*>(p) = d != 0 ? 1 : 0; break;
    case DType::Int8: *static_cast<int8_t*>(p) = static_cast<int8_t>(d); break;
    case DType::Int16: { int16_t x = static_cast<int16_t>(d); std::memcpy(p, &x, 2); break; }
    case DType::Int32: { int32_t x = static_cast<int32_t>(d); std::memcpy(p, &x, 4); break; }
    case DType::Int64: {
      int64_t x = v.kind == ScalarValue::Kind::Int64 ? v.i64 : v.kind == ScalarValue::Kind::Uint64 ? static_cast<int64_t>(v.u64) : static_cast<int64_t>(d);
      std::memcpy(p, &x, 8);
      break;
    }
    case DType::Uint8: *static_cast<uint8_t*>(p) = static_cast<uint8_t>(d); break;
    case DType::Uint16: { uint16_t x = static_cast<uint16_t>(d); std::memcpy(p, &x, 2); break; }
    case DType::Uint32: { uint32_t x = static_cast<uint32_t>(d); std::memcpy(p, &x, 4); break; }
    case DType::Uint64: {
      uint64_t x = v.kind == ScalarValue::Kind::Uint64 ? v.u64 : v.kind == ScalarValue::Kind::Int64 ? static_cast<uint64_t>(v.i64) : static_cast<uint64_t>(d);
      std::memcpy(p, &x, 8);
      break;
    }
    case DType::Float32: { float x = static_cast<float>(d); std::memcpy(p, &x, 4); break; }
    case DType::Float64: std::memcpy(p, &d, 8); break;
    case DType::Complex64: { float x = static_cast<float>(d); std::memcpy(p, &x, 4); break; }
    case DType::Complex128: std::memcpy(p, &d, 8); break;
    case DType::Float16: { uint16_t x = doubleToHalf(d); std::memcpy(p, &x, 2); break; }
    case DType::String: typeError("strings have no numeric fill value");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Type trees

namespace {

constexpr int kMaxTypeDepth = 32;

#if H5_VERSION_GE(1, 12, 0)
using MemRef = H5R_ref_t;  // object references are converted to 1.12's H5R_ref_t in memory
#else
using MemRef = hobj_ref_t;
#endif

[[noreturn]] void unsupportedType(const std::string& where, const std::string& what) {
  throw Failure("ERR_UNSUPPORTED_DTYPE", where + " holds " + what);
}

DType intDType(size_t size, bool sign) {
  switch (size) {
    case 1: return sign ? DType::Int8 : DType::Uint8;
    case 2: return sign ? DType::Int16 : DType::Uint16;
    case 4: return sign ? DType::Int32 : DType::Uint32;
    default: return sign ? DType::Int64 : DType::Uint64;
  }
}

bool isIntDType(DType t) {
  switch (t) {
    case DType::Int8: case DType::Int16: case DType::Int32: case DType::Int64:
    case DType::Uint8: case DType::Uint16: case DType::Uint32: case DType::Uint64: return true;
    default: return false;
  }
}

bool isSigned(DType t) { return t == DType::Int8 || t == DType::Int16 || t == DType::Int32 || t == DType::Int64; }

hid_t nativeInt(DType t) {
  switch (t) {
    case DType::Int8: return H5T_NATIVE_INT8;
    case DType::Int16: return H5T_NATIVE_INT16;
    case DType::Int32: return H5T_NATIVE_INT32;
    case DType::Int64: return H5T_NATIVE_INT64;
    case DType::Uint8: return H5T_NATIVE_UINT8;
    case DType::Uint16: return H5T_NATIVE_UINT16;
    case DType::Uint32: return H5T_NATIVE_UINT32;
    default: return H5T_NATIVE_UINT64;
  }
}

hid_t leInt(DType t) {
  switch (t) {
    case DType::Int8: return H5T_STD_I8LE;
    case DType::Int16: return H5T_STD_I16LE;
    case DType::Int32: return H5T_STD_I32LE;
    case DType::Int64: return H5T_STD_I64LE;
    case DType::Uint8: return H5T_STD_U8LE;
    case DType::Uint16: return H5T_STD_U16LE;
    case DType::Uint32: return H5T_STD_U32LE;
    default: return H5T_STD_U64LE;
  }
}

hid_t nativeBitfield(size_t size) {
  switch (size) {
    case 1: return H5T_NATIVE_B8;
    case 2: return H5T_NATIVE_B16;
    case 4: return H5T_NATIVE_B32;
    default: return H5T_NATIVE_B64;
  }
}

uint64_t dimsProduct(const std::vector<hsize_t>& d) {
  uint64_t n = 1;
  for (hsize_t x : d) n = mulChecked(n, x, "array type");
  return n;
}

TypeNode describeAt(hid_t t, const std::string& where, int depth);

void describeEnum(hid_t t, TypeNode& n, const std::string& where) {
  Hid base = ownType(H5Tget_super(t), "H5Tget_super");
  size_t size = H5Tget_size(base.get());
  if (size != 1 && size != 2 && size != 4 && size != 8) unsupportedType(where, "an enum of " + describeType(base.get()));
  n.kind = TypeNode::Kind::Enum;
  n.dtype = intDType(size, H5Tget_sign(base.get()) != H5T_SGN_NONE);
  n.size = size;
  // Member values in native order: the enum converted to its native form holds them so.
  Hid native = ownType(H5Tget_native_type(t, H5T_DIR_ASCEND), "H5Tget_native_type");
  int count = H5Tget_nmembers(native.get());
  if (count < 0) throwHdf5("H5Tget_nmembers");
  for (int i = 0; i < count; ++i) {
    uint8_t raw[8] = {0};
    check(H5Tget_member_value(native.get(), static_cast<unsigned>(i), raw), "H5Tget_member_value");
    int64_t v = 0;
    switch (size) {
      case 1: v = isSigned(n.dtype) ? int64_t(*reinterpret_cast<int8_t*>(raw)) : int64_t(raw[0]); break;
      case 2: { int16_t a; uint16_t b; std::memcpy(&a, raw, 2); std::memcpy(&b, raw, 2); v = isSigned(n.dtype) ? a : b; break; }
      case 4: { int32_t a; uint32_t b; std::memcpy(&a, raw, 4); std::memcpy(&b, raw, 4); v = isSigned(n.dtype) ? a : int64_t(b); break; }
      default: std::memcpy(&v, raw, 8); break;
    }
    n.memberNames.push_back(memberName(native.get(), static_cast<unsigned>(i)));
    n.memberValues.push_back(v);
  }
}

TypeNode describeAt(hid_t t, const std::string& where, int depth) {
  if (depth > kMaxTypeDepth) unsupportedType(where, "a datatype nested deeper than " + std::to_string(kMaxTypeDepth) + " levels");
  H5T_class_t cls = H5Tget_class(t);
  if (cls == H5T_NO_CLASS) throwHdf5("cannot inspect the datatype of " + where);
  size_t size = H5Tget_size(t);
  if (size == 0) throwHdf5("H5Tget_size");
  TypeNode n;
  switch (cls) {
    case H5T_INTEGER:
    case H5T_BITFIELD:
      if (size != 1 && size != 2 && size != 4 && size != 8) unsupportedType(where, "a " + describeType(t));
      n.dtype = intDType(size, cls == H5T_INTEGER && H5Tget_sign(t) != H5T_SGN_NONE);
      n.bitfield = cls == H5T_BITFIELD;
      n.size = size;
      return n;
    case H5T_FLOAT: {
      size_t s = ieeeFloatSize(t);
      n.dtype = s == 2 ? DType::Float16 : s == 4 ? DType::Float32 : DType::Float64;
      // Any other float format (x87 long double, VAX, ...): HDF5 converts it to float64, which
      // rounds the mantissa and overflows to inf beyond float64's range (documented).
      if (s == 0) n.converted = describeType(t);
      n.size = dtypeSize(n.dtype);
      return n;
    }
    case H5T_ENUM:
      if (isH5pyBool(t)) {
        n.dtype = DType::Bool;
        n.size = 1;
        return n;
      }
      describeEnum(t, n, where);
      return n;
    case H5T_STRING: {
      n.kind = TypeNode::Kind::String;
      n.dtype = DType::String;
      htri_t v = checkTri(H5Tis_variable_str(t), "H5Tis_variable_str");
      n.str.variable = v > 0;
      n.str.length = n.str.variable ? 0 : size;
      n.str.utf8 = H5Tget_cset(t) == H5T_CSET_UTF8;
      n.pad = H5Tget_strpad(t);
      n.size = n.str.variable ? sizeof(char*) : size;
      return n;
    }
    case H5T_OPAQUE: {
      n.kind = TypeNode::Kind::Opaque;
      n.size = size;
      char* tag = H5Tget_tag(t);
      if (tag) {
        n.tag = tag;
        H5free_memory(tag);
      } else {
        clearErrorStack();
      }
      return n;
    }
    case H5T_COMPOUND: {
      DType c;
      if (isH5pyComplex(t, &c)) {
        n.dtype = c;
        n.size = dtypeSize(c);
        return n;
      }
      int count = H5Tget_nmembers(t);
      if (count < 0) throwHdf5("H5Tget_nmembers");
      if (count == 0) unsupportedType(where, "a compound datatype without fields");
      n.kind = TypeNode::Kind::Compound;
      for (int i = 0; i < count; ++i) {
        std::string name = memberName(t, static_cast<unsigned>(i));
        Hid m = ownType(H5Tget_member_type(t, static_cast<unsigned>(i)), "H5Tget_member_type");
        TypeNode child = describeAt(m.get(), where + " field " + name, depth + 1);
        n.names.push_back(name);
        n.offsets.push_back(n.size);
        n.size = static_cast<size_t>(n.size + child.totalSize());
        n.children.push_back(std::move(child));
      }
      return n;
    }
    case H5T_ARRAY: {
      int rank = H5Tget_array_ndims(t);
      if (rank < 0) throwHdf5("H5Tget_array_ndims");
      std::vector<hsize_t> dims(static_cast<size_t>(rank));
      if (rank > 0 && H5Tget_array_dims2(t, dims.data()) < 0) throwHdf5("H5Tget_array_dims2");
      Hid base = ownType(H5Tget_super(t), "H5Tget_super");
      n = describeAt(base.get(), where, depth + 1);
      dims.insert(dims.end(), n.dims.begin(), n.dims.end());
      n.dims = std::move(dims);
      if (n.dims.size() > 32) unsupportedType(where, "an array datatype of more than 32 axes");
      n.totalSize();  // checks the size fits
      return n;
    }
    case H5T_VLEN: {
      Hid base = ownType(H5Tget_super(t), "H5Tget_super");
      TypeNode elem = describeAt(base.get(), where, depth + 1);
      bool fixedBytes = (elem.kind == TypeNode::Kind::String && !elem.str.variable) || elem.kind == TypeNode::Kind::Opaque;
      bool refs = elem.kind == TypeNode::Kind::Reference && elem.dims.empty();
      if (elem.kind != TypeNode::Kind::Number && elem.kind != TypeNode::Kind::Enum && !fixedBytes && !refs)
        unsupportedType(where, "a variable-length sequence of " + describeType(base.get()) +
                                   " (sequences of numbers, fixed-length strings, opaque data and object references are read)");
      n.kind = TypeNode::Kind::Vlen;
      n.size = sizeof(hvl_t);
      n.children.push_back(std::move(elem));
      return n;
    }
    case H5T_REFERENCE:
      if (checkTri(H5Tequal(t, H5T_STD_REF_OBJ), "H5Tequal") > 0) {
        n.kind = TypeNode::Kind::Reference;
        n.size = sizeof(MemRef);
        return n;
      }
      if (checkTri(H5Tequal(t, H5T_STD_REF_DSETREG), "H5Tequal") > 0)
        unsupportedType(where, "HDF5 region references (a selection of another dataset; object references are read as paths)");
      unsupportedType(where, "HDF5 references of the 1.12 format (object references of the 1.8/1.10 format are read as paths)");
    case H5T_TIME: unsupportedType(where, "an HDF5 time datatype (H5T_TIME)");
    default: unsupportedType(where, "a datatype of unknown class");
  }
}

// An object reference as the referenced object's path; null for a null or dangling reference.
SideValue referenceValue(uint8_t* e, hid_t loc) {
  SideValue v;
#if H5_VERSION_GE(1, 12, 0)
  (void)loc;
  H5R_ref_t* ref = reinterpret_cast<H5R_ref_t*>(e);
  ssize_t len = H5Rget_obj_name(ref, H5P_DEFAULT, nullptr, 0);
  if (len > 0) {
    std::string name(static_cast<size_t>(len) + 1, '\0');
    if (H5Rget_obj_name(ref, H5P_DEFAULT, &name[0], name.size()) >= 0) {
      name.resize(static_cast<size_t>(len));
      v.kind = SideValue::Kind::Ref;
      v.text = std::move(name);
    }
  }
#else
  hobj_ref_t ref;
  std::memcpy(&ref, e, sizeof ref);
  if (ref != 0) {
    ssize_t len = H5Rget_name(loc, H5R_OBJECT, &ref, nullptr, 0);
    if (len > 0) {
      std::string name(static_cast<size_t>(len) + 1, '\0');
      if (H5Rget_name(loc, H5R_OBJECT, &ref, &name[0], name.size()) >= 0) {
        name.resize(static_cast<size_t>(len));
        v.kind = SideValue::Kind::Ref;
        v.text = std::move(name);
      }
    }
  }
#endif
  // A dangling reference (its object was deleted) fails quietly: null.
  clearErrorStack();
  return v;
}

// Where a depth-first walk of `n`'s elements meets the variable-length parts, in order.
void collectSide(const TypeNode& n, uint8_t* p, hid_t loc, std::vector<SideValue>& out) {
  uint64_t count = dimsProduct(n.dims);
  for (uint64_t k = 0; k < count; ++k) {
    uint8_t* e = p + k * n.size;
    switch (n.kind) {
      case TypeNode::Kind::Compound:
        for (size_t i = 0; i < n.children.size(); ++i)
          if (n.children[i].hasSide()) collectSide(n.children[i], e + n.offsets[i], loc, out);
        break;
      case TypeNode::Kind::String: {
        if (!n.str.variable) break;
        char* s = nullptr;
        std::memcpy(&s, e, sizeof s);
        SideValue v;
        v.kind = SideValue::Kind::Text;
        if (s) v.text = s;
        out.push_back(std::move(v));
        break;
      }
      case TypeNode::Kind::Vlen: {
        hvl_t h;
        std::memcpy(&h, e, sizeof h);
        const TypeNode& elem = n.children[0];
        SideValue v;
        if (elem.kind == TypeNode::Kind::Reference) {
          // A sequence of object references (dimension scales' DIMENSION_LIST): their paths.
          v.kind = SideValue::Kind::Refs;
          uint8_t* items = static_cast<uint8_t*>(h.p);
          for (size_t j = 0; items && j < h.len; ++j) v.items.push_back(referenceValue(items + j * elem.size, loc));
          out.push_back(std::move(v));
          break;
        }
        v.kind = SideValue::Kind::Seq;
        // Fixed-length strings and opaque items come as their bytes (lib/ splits them).
        v.dtype = elem.kind == TypeNode::Kind::Number || elem.kind == TypeNode::Kind::Enum ? elem.dtype : DType::Uint8;
        uint64_t bytes = mulChecked(h.len, elem.totalSize(), "variable-length sequence");
        if (bytes > kMaxAllocation) tooLarge("a variable-length sequence is larger than the binding reads");
        if (bytes && h.p) v.bytes.assign(static_cast<uint8_t*>(h.p), static_cast<uint8_t*>(h.p) + bytes);
        out.push_back(std::move(v));
        break;
      }
      case TypeNode::Kind::Reference:
        out.push_back(referenceValue(e, loc));
        break;
      default: break;
    }
  }
}

// Zeroes the pointer slots of what collectSide took out (no addresses reach JS).
void zeroSide(const TypeNode& n, uint8_t* p) {
  uint64_t count = dimsProduct(n.dims);
  for (uint64_t k = 0; k < count; ++k) {
    uint8_t* e = p + k * n.size;
    if (n.kind == TypeNode::Kind::Compound) {
      for (size_t i = 0; i < n.children.size(); ++i)
        if (n.children[i].hasSide()) zeroSide(n.children[i], e + n.offsets[i]);
    } else if (n.hasSide()) {
      std::memset(e, 0, n.size);
    }
  }
}

// Puts `strings` (depth-first order) into the variable-length string slots; false when a node has
// other variable-length parts (those are not written).
void fillStrings(const TypeNode& n, uint8_t* p, const std::vector<std::string>& strings, size_t* next) {
  uint64_t count = dimsProduct(n.dims);
  for (uint64_t k = 0; k < count; ++k) {
    uint8_t* e = p + k * n.size;
    if (n.kind == TypeNode::Kind::Compound) {
      for (size_t i = 0; i < n.children.size(); ++i)
        if (n.children[i].hasSide()) fillStrings(n.children[i], e + n.offsets[i], strings, next);
    } else if (n.kind == TypeNode::Kind::String && n.str.variable) {
      if (*next >= strings.size()) rangeError("fewer strings than the variable-length string slots of the data");
      const std::string& s = strings[(*next)++];
      if (s.find('\0') != std::string::npos) throw Failure("ERR_UNSUPPORTED_VALUE", "HDF5 variable-length strings cannot hold NUL characters");
      const char* c = s.c_str();
      std::memcpy(e, &c, sizeof c);
    } else if (n.hasSide()) {
      typeError("only variable-length strings are written as variable-length data");
    }
  }
}

Hid enumType(const TypeNode& n, hid_t base) {
  Hid t = ownType(H5Tenum_create(base), "cannot create the enum type");
  size_t size = dtypeSize(n.dtype);
  for (size_t i = 0; i < n.memberNames.size(); ++i) {
    // Values in the base type's order: native, which is also little-endian on the machines built for.
    uint8_t raw[8];
    int64_t v = n.memberValues[i];
    switch (size) {
      case 1: { int8_t x = static_cast<int8_t>(v); std::memcpy(raw, &x, 1); break; }
      case 2: { int16_t x = static_cast<int16_t>(v); std::memcpy(raw, &x, 2); break; }
      case 4: { int32_t x = static_cast<int32_t>(v); std::memcpy(raw, &x, 4); break; }
      default: std::memcpy(raw, &v, 8); break;
    }
    check(H5Tenum_insert(t.get(), n.memberNames[i].c_str(), raw), ("cannot add enum member " + n.memberNames[i]).c_str());
  }
  return t;
}

Hid stringType(const TypeNode& n) {
  Hid t = copyType(H5T_C_S1);
  check(H5Tset_size(t.get(), n.str.variable ? H5T_VARIABLE : std::max<size_t>(n.str.length, 1)), "H5Tset_size");
  check(H5Tset_cset(t.get(), n.str.utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII), "H5Tset_cset");
  if (!n.str.variable) check(H5Tset_strpad(t.get(), n.pad), "H5Tset_strpad");
  return t;
}

Hid withDims(Hid elem, const TypeNode& n) {
  if (n.dims.empty()) return elem;
  return ownType(H5Tarray_create2(elem.get(), static_cast<unsigned>(n.dims.size()), n.dims.data()), "cannot create the array type");
}

Hid buildType(const TypeNode& n, bool file) {
  Hid elem;
  switch (n.kind) {
    case TypeNode::Kind::Number:
      if (n.bitfield) elem = copyType(file ? (n.size == 1 ? H5T_STD_B8LE : n.size == 2 ? H5T_STD_B16LE : n.size == 4 ? H5T_STD_B32LE : H5T_STD_B64LE)
                                           : nativeBitfield(n.size));
      else elem = file ? fileType(n.dtype) : memType(n.dtype);
      break;
    case TypeNode::Kind::Enum:
      if (!isIntDType(n.dtype)) typeError("an enum is stored in an integer dtype");
      elem = enumType(n, file ? leInt(n.dtype) : nativeInt(n.dtype));
      break;
    case TypeNode::Kind::String: elem = stringType(n); break;
    case TypeNode::Kind::Opaque:
      if (n.size == 0) typeError("an opaque type holds at least one byte");
      elem = ownType(H5Tcreate(H5T_OPAQUE, n.size), "cannot create the opaque type");
      check(H5Tset_tag(elem.get(), n.tag.c_str()), "H5Tset_tag");
      break;
    case TypeNode::Kind::Compound: {
      if (n.children.empty() || n.children.size() != n.names.size()) typeError("a compound type needs fields");
      // Members packed in field order; in a file the variable-length members take their stored size.
      std::vector<Hid> members;
      size_t total = 0;
      for (const TypeNode& c : n.children) {
        members.push_back(buildType(c, file));
        size_t s = H5Tget_size(members.back().get());
        if (s == 0) throwHdf5("H5Tget_size");
        total += s;
      }
      elem = ownType(H5Tcreate(H5T_COMPOUND, total), "cannot create the compound type");
      size_t offset = 0;
      for (size_t i = 0; i < members.size(); ++i) {
        if (!file && offset != n.offsets[i]) typeError("compound field offsets must be packed in field order");
        check(H5Tinsert(elem.get(), n.names[i].c_str(), offset, members[i].get()), ("cannot add compound field " + n.names[i]).c_str());
        offset += H5Tget_size(members[i].get());
      }
      break;
    }
    case TypeNode::Kind::Vlen: {
      if (n.children.size() != 1) typeError("a variable-length type needs its element type");
      Hid base = buildType(n.children[0], file);
      elem = ownType(H5Tvlen_create(base.get()), "cannot create the variable-length type");
      break;
    }
    case TypeNode::Kind::Reference:
      if (file) typeError("references are not written");
#if H5_VERSION_GE(1, 12, 0)
      elem = copyType(H5T_STD_REF);
#else
      elem = copyType(H5T_STD_REF_OBJ);
#endif
      break;
  }
  return withDims(std::move(elem), n);
}

}  // namespace

uint64_t TypeNode::totalSize() const { return mulChecked(size, dimsProduct(dims), "datatype size"); }

bool TypeNode::hasSide() const {
  switch (kind) {
    case Kind::String: return str.variable;
    case Kind::Vlen:
    case Kind::Reference: return true;
    case Kind::Compound:
      for (const TypeNode& c : children)
        if (c.hasSide()) return true;
      return false;
    default: return false;
  }
}

TypeNode describeStored(hid_t t, const std::string& where) { return describeAt(t, where, 0); }
Hid buildMemType(const TypeNode& n) { return buildType(n, false); }
Hid buildFileType(const TypeNode& n) { return buildType(n, true); }

PackedData readPacked(hid_t obj, bool isAttr, const TypeNode& n, const std::string& where) {
  PackedData out;
  Hid space = ownSpace(isAttr ? H5Aget_space(obj) : H5Dget_space(obj), "cannot get the dataspace");
  Extent e = extentOf(space.get());
  if (e.cls == H5S_NULL) return out;
  uint64_t count = extentElements(e.dims, where);
  uint64_t bytes = mulChecked(count, n.totalSize(), "packed data");
  if (bytes > kMaxAllocation) tooLarge(where + " holds more bytes than the binding reads whole");
  if (bytes == 0) return out;
  Hid mtype = buildMemType(n);
  out.bytes.assign(static_cast<size_t>(bytes), 0);
  herr_t rc = isAttr ? H5Aread(obj, mtype.get(), out.bytes.data())
                     : H5Dread(obj, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.bytes.data());
  if (rc < 0) throwHdf5("cannot read " + where);
  if (!n.hasSide()) return out;
  TypeNode whole = n;  // the extent as one array of elements, walked in C order
  whole.dims.insert(whole.dims.begin(), static_cast<hsize_t>(count));
  try {
    collectSide(whole, out.bytes.data(), obj, out.side);
  } catch (...) {
    h5::reclaim(mtype.get(), space.get(), out.bytes.data());
    throw;
  }
  h5::reclaim(mtype.get(), space.get(), out.bytes.data());
  zeroSide(whole, out.bytes.data());
  return out;
}

void writePacked(hid_t obj, bool isAttr, const TypeNode& n, const uint8_t* bytes, size_t nbytes, const std::vector<std::string>& strings,
                 hid_t mspace, hid_t fspace, const std::string& where) {
  Hid mtype = buildMemType(n);
  uint64_t esize = n.totalSize();
  if (esize == 0 || nbytes % esize != 0) rangeError("the data of " + where + " is not a whole number of elements");
  std::vector<uint8_t> copy;
  const void* src = bytes;
  if (n.hasSide()) {
    copy.assign(bytes, bytes + nbytes);
    TypeNode whole = n;
    whole.dims.insert(whole.dims.begin(), static_cast<hsize_t>(nbytes / esize));
    size_t next = 0;
    fillStrings(whole, copy.data(), strings, &next);
    if (next != strings.size()) rangeError("more strings than the variable-length string slots of the data");
    src = copy.data();
  }
  herr_t rc = isAttr ? H5Awrite(obj, mtype.get(), src) : H5Dwrite(obj, mtype.get(), mspace, fspace, H5P_DEFAULT, src);
  if (rc < 0) throwHdf5("cannot write " + where);
}

uint16_t doubleToHalf(double d) {
  uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  if (std::isnan(d)) return 0x7e00;
  double a = std::fabs(d);
  if (std::isinf(a)) return sign | 0x7c00;
  if (a < std::ldexp(1.0, -14)) return sign | static_cast<uint16_t>(std::nearbyint(a * std::ldexp(1.0, 24)));  // subnormal (0x400 is the least normal)
  int e = 0;
  double m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  e -= 1;
  double r = std::nearbyint((m * 2 - 1) * 1024);  // ties to even (the default rounding mode)
  if (r == 1024) {
    r = 0;
    ++e;
  }
  if (e + 15 >= 0x1f) return sign | 0x7c00;
  return sign | static_cast<uint16_t>((e + 15) << 10) | static_cast<uint16_t>(r);
}

bool validUtf8(const std::string& s) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

}  // namespace ckpt
