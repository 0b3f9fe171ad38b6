#include "h5types.h"

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
  if (sizes[0] != sizes[1] || sizes[0] == 0) return false;
  *out = sizes[0] == 4 ? DType::Complex64 : DType::Complex128;
  return true;
}

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

std::string describeType(hid_t t) {
  H5T_class_t cls = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  std::string bits = std::to_string(size * 8) + "-bit";
  switch (cls) {
    case H5T_INTEGER:
      return bits + " " + (H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned" : "signed") + " " + orderName(t) + " integer";
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
    out.dtype = classify(t.get(), &out.str, where);
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
    if (id == H5Z_FILTER_DEFLATE) {
      out.filters.gzip = true;
      out.filters.level = ncd > 0 ? static_cast<int>(cd[0]) : -1;
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
    case DType::String: typeError("strings have no numeric fill value");
  }
  return out;
}

}  // namespace ckpt
