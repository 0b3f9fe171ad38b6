#include "convert.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ckpt {

namespace {

[[noreturn]] void jsTypeError(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void jsRangeError(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

uint64_t toIndex(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsNumber()) jsTypeError(env, std::string(name) + " entries must be numbers");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) jsRangeError(env, std::string(name) + " entries must be non-negative integers");
  return static_cast<uint64_t>(d);
}

Napi::Array stringArray(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, Napi::String::New(env, v[i]));
  return a;
}

std::vector<std::string> toStrings(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsArray()) jsTypeError(env, std::string(name) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) jsTypeError(env, std::string(name) + " must hold only strings");
    out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

// A TypedArray of dtype `t` holding `bytes` (native memory, C order).
Napi::Value newTypedArray(Napi::Env env, DType t, const std::vector<uint8_t>& bytes) {
  size_t esize = dtypeSize(t);
  size_t n = esize ? bytes.size() / esize : 0;
  Napi::TypedArray out;
  switch (t) {
    case DType::Bool:
    case DType::Uint8: out = Napi::Uint8Array::New(env, n); break;
    case DType::Int8: out = Napi::Int8Array::New(env, n); break;
    case DType::Int16: out = Napi::Int16Array::New(env, n); break;
    case DType::Uint16: out = Napi::Uint16Array::New(env, n); break;
    case DType::Int32: out = Napi::Int32Array::New(env, n); break;
    case DType::Uint32: out = Napi::Uint32Array::New(env, n); break;
    case DType::Int64: out = Napi::BigInt64Array::New(env, n); break;
    case DType::Uint64: out = Napi::BigUint64Array::New(env, n); break;
    case DType::Float32: out = Napi::Float32Array::New(env, n); break;
    case DType::Float64: out = Napi::Float64Array::New(env, n); break;
    case DType::Complex64: out = Napi::Float32Array::New(env, 2 * n); break;
    case DType::Complex128: out = Napi::Float64Array::New(env, 2 * n); break;
    case DType::Float16: out = Napi::Uint16Array::New(env, n); break;  // binary16 bits; lib/ wraps them
    case DType::String: return env.Null();
  }
  if (!bytes.empty()) {
    uint8_t* dst = static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
    std::memcpy(dst, bytes.data(), std::min(bytes.size(), out.ByteLength()));
  }
  return out;
}

// Text as a JS string; bytes that are not UTF-8 (numpy S data, h5py bytes) as a Buffer, unchanged.
Napi::Value textOrBytes(Napi::Env env, const std::string& s) {
  if (validUtf8(s)) return Napi::String::New(env, s);
  return Napi::Buffer<char>::Copy(env, s.data(), s.size());
}

Napi::Array textArray(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, textOrBytes(env, v[i]));
  return a;
}

Napi::Value bytesArray(Napi::Env env, const std::vector<uint8_t>& b) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, b.size());
  if (!b.empty()) std::memcpy(static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset(), b.data(), b.size());
  return out;
}

Napi::Value sideArray(Napi::Env env, const std::vector<SideValue>& side) {
  Napi::Array a = Napi::Array::New(env, side.size());
  for (uint32_t i = 0; i < side.size(); ++i) {
    const SideValue& v = side[i];
    switch (v.kind) {
      case SideValue::Kind::Text: a.Set(i, textOrBytes(env, v.text)); break;
      case SideValue::Kind::Ref: a.Set(i, Napi::String::New(env, v.text)); break;
      case SideValue::Kind::Seq: a.Set(i, newTypedArray(env, v.dtype, v.bytes)); break;
      case SideValue::Kind::Refs: a.Set(i, sideArray(env, v.items)); break;
      case SideValue::Kind::Null: a.Set(i, env.Null()); break;
    }
  }
  return a;
}

const char* padName(H5T_str_t p) { return p == H5T_STR_NULLTERM ? "nullterm" : p == H5T_STR_SPACEPAD ? "spacepad" : "nullpad"; }

Napi::Value fromType(Napi::Env env, const TypeNode& n) {
  Napi::Object o = Napi::Object::New(env);
  static const char* const kClass[] = {"number", "enum", "string", "opaque", "compound", "vlen", "reference"};
  o.Set("class", kClass[static_cast<int>(n.kind)]);
  o.Set("size", Napi::Number::New(env, static_cast<double>(n.size)));
  Napi::Array dims = Napi::Array::New(env, n.dims.size());
  for (uint32_t i = 0; i < n.dims.size(); ++i) dims.Set(i, Napi::Number::New(env, static_cast<double>(n.dims[i])));
  o.Set("dims", dims);
  switch (n.kind) {
    case TypeNode::Kind::Number:
      o.Set("dtype", dtypeName(n.dtype));
      if (n.bitfield) o.Set("bitfield", true);
      if (!n.converted.empty()) o.Set("converted", n.converted);
      break;
    case TypeNode::Kind::Enum: {
      o.Set("dtype", dtypeName(n.dtype));
      Napi::Array m = Napi::Array::New(env, n.memberNames.size());
      bool u64 = n.dtype == DType::Uint64;
      for (uint32_t i = 0; i < n.memberNames.size(); ++i) {
        Napi::Array pair = Napi::Array::New(env, 2);
        pair.Set(0u, Napi::String::New(env, n.memberNames[i]));
        int64_t v = n.memberValues[i];
        bool exact = v >= -9007199254740991LL && v <= 9007199254740991LL && !(u64 && v < 0);
        pair.Set(1u, exact ? Napi::Value(Napi::Number::New(env, static_cast<double>(v)))
                           : u64 ? Napi::Value(Napi::BigInt::New(env, static_cast<uint64_t>(v))) : Napi::Value(Napi::BigInt::New(env, v)));
        m.Set(i, pair);
      }
      o.Set("members", m);
      break;
    }
    case TypeNode::Kind::String:
      o.Set("variable", n.str.variable);
      o.Set("length", Napi::Number::New(env, static_cast<double>(n.str.length)));
      o.Set("utf8", n.str.utf8);
      o.Set("pad", padName(n.pad));
      break;
    case TypeNode::Kind::Opaque: o.Set("tag", n.tag); break;
    case TypeNode::Kind::Compound: {
      Napi::Array f = Napi::Array::New(env, n.children.size());
      for (uint32_t i = 0; i < n.children.size(); ++i) {
        Napi::Object field = Napi::Object::New(env);
        field.Set("name", n.names[i]);
        field.Set("offset", Napi::Number::New(env, static_cast<double>(n.offsets[i])));
        field.Set("type", fromType(env, n.children[i]));
        f.Set(i, field);
      }
      o.Set("fields", f);
      break;
    }
    case TypeNode::Kind::Vlen: o.Set("base", fromType(env, n.children[0])); break;
    case TypeNode::Kind::Reference: break;
  }
  return o;
}

// A type to create, from lib/'s description (the form fromType gives); sizes and packed offsets
// are computed here, so what TypeScript packs must follow the same rules (lib/backends/hdf5-types.ts).
TypeNode toType(Napi::Env env, Napi::Value v, int depth) {
  if (depth > 32) jsRangeError(env, "a type is nested deeper than 32 levels");
  if (!v.IsObject()) jsTypeError(env, "a type is an object with a class");
  Napi::Object o = v.As<Napi::Object>();
  TypeNode n;
  std::string cls = getString(o, "class", "type");
  Napi::Value dims = o.Get("dims");
  if (!dims.IsUndefined() && !dims.IsNull()) n.dims = toShape(env, dims, "type.dims");
  for (hsize_t d : n.dims)
    if (d == 0) jsRangeError(env, "array type dimensions must be positive");
  if (cls == "number" || cls == "enum") {
    if (!parseDType(getString(o, "dtype", "type"), &n.dtype)) jsTypeError(env, "type.dtype must be a numeric dtype name");
    n.size = dtypeSize(n.dtype);
    if (cls == "enum") {
      n.kind = TypeNode::Kind::Enum;
      Napi::Value m = o.Get("members");
      if (!m.IsArray()) jsTypeError(env, "an enum type needs members: [name, value][]");
      Napi::Array arr = m.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value pv = arr.Get(i);
        if (!pv.IsArray() || pv.As<Napi::Array>().Length() != 2) jsTypeError(env, "enum members are [name, value] pairs");
        Napi::Array pair = pv.As<Napi::Array>();
        Napi::Value name = pair.Get(0u), value = pair.Get(1u);
        if (!name.IsString()) jsTypeError(env, "enum member names are strings");
        int64_t x = 0;
        if (value.IsNumber()) {
          double d = value.As<Napi::Number>().DoubleValue();
          if (std::floor(d) != d || std::fabs(d) > 9007199254740991.0) jsRangeError(env, "enum member values are integers");
          x = static_cast<int64_t>(d);
        } else if (value.IsBigInt()) {
          bool lossless = false;
          x = value.As<Napi::BigInt>().Int64Value(&lossless);
          if (!lossless) x = static_cast<int64_t>(value.As<Napi::BigInt>().Uint64Value(&lossless));
          if (!lossless) jsRangeError(env, "an enum member value does not fit 64 bits");
        } else {
          jsTypeError(env, "enum member values are numbers or bigints");
        }
        n.memberNames.push_back(name.As<Napi::String>().Utf8Value());
        n.memberValues.push_back(x);
      }
    }
  } else if (cls == "string") {
    n.kind = TypeNode::Kind::String;
    n.dtype = DType::String;
    n.str.variable = o.Get("variable").StrictEquals(Napi::Boolean::New(env, true));
    n.str.utf8 = o.Get("utf8").StrictEquals(Napi::Boolean::New(env, true));
    n.str.length = n.str.variable ? 0 : static_cast<size_t>(std::max<uint64_t>(1, toIndex(env, o.Get("length"), "type.length")));
    Napi::Value pad = o.Get("pad");
    std::string p = pad.IsString() ? pad.As<Napi::String>().Utf8Value() : "nullpad";
    n.pad = p == "nullterm" ? H5T_STR_NULLTERM : p == "spacepad" ? H5T_STR_SPACEPAD : H5T_STR_NULLPAD;
    n.size = n.str.variable ? sizeof(char*) : n.str.length;
  } else if (cls == "opaque") {
    n.kind = TypeNode::Kind::Opaque;
    n.size = static_cast<size_t>(toIndex(env, o.Get("size"), "type.size"));
    if (n.size == 0) jsRangeError(env, "an opaque type holds at least one byte");
    Napi::Value tag = o.Get("tag");
    if (tag.IsString()) n.tag = tag.As<Napi::String>().Utf8Value();
  } else if (cls == "compound") {
    n.kind = TypeNode::Kind::Compound;
    Napi::Value f = o.Get("fields");
    if (!f.IsArray() || f.As<Napi::Array>().Length() == 0) jsTypeError(env, "a compound type needs fields");
    Napi::Array arr = f.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value fv = arr.Get(i);
      if (!fv.IsObject()) jsTypeError(env, "compound fields are objects {name, type}");
      Napi::Object field = fv.As<Napi::Object>();
      std::string name = getString(field, "name", "field");
      if (name.empty() || name.find('\0') != std::string::npos) jsTypeError(env, "compound field names are non-empty and hold no NUL");
      TypeNode c = toType(env, field.Get("type"), depth + 1);
      n.names.push_back(name);
      n.offsets.push_back(n.size);
      n.size += static_cast<size_t>(c.totalSize());
      n.children.push_back(std::move(c));
    }
  } else {
    jsTypeError(env, "type.class must be number, enum, string, opaque or compound");
  }
  return n;
}

Napi::Value fromAttrValue(Napi::Env env, const AttrValue& a) {
  switch (a.kind) {
    case AttrValue::Kind::Null: return env.Null();
    case AttrValue::Kind::Number: return Napi::Number::New(env, a.number);
    case AttrValue::Kind::Int64: return Napi::BigInt::New(env, a.i64);
    case AttrValue::Kind::Uint64: return Napi::BigInt::New(env, a.u64);
    case AttrValue::Kind::Bool: return Napi::Boolean::New(env, a.boolean);
    case AttrValue::Kind::String: return textOrBytes(env, a.str);
    case AttrValue::Kind::Strings: return textArray(env, a.strs);
    case AttrValue::Kind::Array: return newTypedArray(env, a.dtype, a.bytes);
    case AttrValue::Kind::Packed: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("type", fromType(env, a.type));
      o.Set("shape", fromShape(env, a.shape));
      o.Set("data", bytesArray(env, a.bytes));
      o.Set("side", sideArray(env, a.side));
      return o;
    }
    case AttrValue::Kind::Unsupported: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("unsupported", a.str);
      return o;
    }
  }
  return env.Null();
}

Napi::Value fromNode(Napi::Env env, WalkNode& n, const std::string& file, int depth) {
  switch (n.kind) {
    case WalkNode::Kind::Missing: return env.Null();
    case WalkNode::Kind::Group: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", "group");
      o.Set("names", stringArray(env, n.names));
      Napi::Array children = Napi::Array::New(env, n.children.size());
      for (uint32_t i = 0; i < n.children.size(); ++i) children.Set(i, fromNode(env, n.children[i], file, depth + 1));
      o.Set("children", children);
      return o;
    }
    case WalkNode::Kind::Dataset: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", "dataset");
      o.Set("info", fromInfo(env, n.info));
      if (n.data == WalkNode::Data::Numeric) o.Set("data", n.info.packed ? bytesArray(env, n.bytes) : newTypedArray(env, n.info.dtype, n.bytes));
      if (n.data == WalkNode::Data::Numeric && n.info.packed && n.info.type.hasSide()) o.Set("side", sideArray(env, n.side));
      if (n.data == WalkNode::Data::Strings) o.Set("strings", textArray(env, n.strings));
      return o;
    }
    case WalkNode::Kind::Link: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", "link");
      o.Set("linkType", n.linkType);
      if (!n.link.empty()) o.Set("link", n.link);
      if (!n.target.empty() || n.linkType == "external") o.Set("target", n.target);
      if (n.linkType == "external") o.Set("file", n.targetFile);
      return o;
    }
    case WalkNode::Kind::Error: {
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", "error");
      o.Set("error", jsError(env, n.error, file).Value());
      return o;
    }
  }
  return env.Null();
}

}  // namespace

void EnvData::track(const std::shared_ptr<File>& f) {
  std::vector<std::weak_ptr<File>> alive;
  for (auto& w : files)
    if (!w.expired()) alive.push_back(w);
  alive.push_back(f);
  files.swap(alive);
}

Napi::Error jsError(Napi::Env env, const Failure& f, const std::string& file, long opIndex) {
  if (f.code() == "TypeError" || f.code() == "RangeError") {
    Napi::Error e = f.code() == "TypeError" ? Napi::Error(Napi::TypeError::New(env, f.message())) : Napi::Error(Napi::RangeError::New(env, f.message()));
    if (opIndex >= 0) e.Set("opIndex", Napi::Number::New(env, static_cast<double>(opIndex)));
    return e;
  }
  EnvData* d = env.GetInstanceData<EnvData>();
  Napi::Object opts = Napi::Object::New(env);
  opts.Set("code", f.code());
  if (!file.empty()) opts.Set("file", file);
  Napi::Object err;
  if (d && !d->errorClass.IsEmpty()) {
    err = d->errorClass.New({Napi::String::New(env, f.message()), opts});
  } else {
    err = Napi::Error::New(env, f.message()).Value();
    err.Set("code", f.code());
  }
  err.Set("hdf5Stack", stringArray(env, f.stack()));
  err.Set("hdf5Minors", stringArray(env, f.minors()));
  if (!f.errnoName().empty()) err.Set("sysCode", f.errnoName());
  if (!f.subject().empty()) err.Set("subject", f.subject());
  if (opIndex >= 0) err.Set("opIndex", Napi::Number::New(env, static_cast<double>(opIndex)));
  return Napi::Error(env, err);
}

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) jsTypeError(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::string getString(Napi::Object o, const char* key, const char* what) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) jsTypeError(o.Env(), std::string(what) + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<hsize_t> toShape(Napi::Env env, Napi::Value v, const char* name, bool allowNull) {
  if (!v.IsArray()) jsTypeError(env, std::string(name) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 32) jsRangeError(env, std::string(name) + " has more than 32 dimensions");
  std::vector<hsize_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    out.push_back(allowNull && x.IsNull() ? H5S_UNLIMITED : toIndex(env, x, name));
  }
  return out;
}

Hyperslab toHyperslab(Napi::Env env, Napi::Value v) {
  Hyperslab s;
  if (v.IsUndefined() || v.IsNull()) return s;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    jsTypeError(env, "a selection is a Float64Array [start..., stride..., count...]");
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  size_t n = a.ElementLength();
  if (n % 3 != 0 || n / 3 > 32) jsRangeError(env, "a selection holds 3 numbers per axis (at most 32 axes)");
  size_t rank = n / 3;
  s.all = false;
  s.start.resize(rank);
  s.stride.resize(rank);
  s.count.resize(rank);
  for (size_t i = 0; i < n; ++i) {
    double d = a[i];
    if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) jsRangeError(env, "selection entries must be non-negative integers");
    hsize_t x = static_cast<hsize_t>(d);
    (i < rank ? s.start[i] : i < 2 * rank ? s.stride[i - rank] : s.count[i - 2 * rank]) = x;
  }
  return s;
}

ArrayRef toArray(Napi::Env env, Napi::Value v, const char* name, bool forAsync) {
  if (!v.IsTypedArray()) jsTypeError(env, std::string(name) + " must be a TypedArray");
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  napi_status st = napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset);
  NAPI_THROW_IF_FAILED(env, st, ArrayRef{});
  ArrayRef a;
  switch (type) {
    case napi_int8_array: a.kind = ArrayKind::Int8; break;
    case napi_uint8_array: a.kind = ArrayKind::Uint8; break;
    case napi_uint8_clamped_array: a.kind = ArrayKind::Uint8Clamped; break;
    case napi_int16_array: a.kind = ArrayKind::Int16; break;
    case napi_uint16_array: a.kind = ArrayKind::Uint16; break;
    case napi_int32_array: a.kind = ArrayKind::Int32; break;
    case napi_uint32_array: a.kind = ArrayKind::Uint32; break;
    case napi_float32_array: a.kind = ArrayKind::Float32; break;
    case napi_float64_array: a.kind = ArrayKind::Float64; break;
    case napi_bigint64_array: a.kind = ArrayKind::BigInt64; break;
    case napi_biguint64_array: a.kind = ArrayKind::BigUint64; break;
    default: jsTypeError(env, std::string(name) + ": unsupported TypedArray type");
  }
  a.data = data;
  a.bytes = length * arrayKindSize(a.kind);
  if (a.bytes > 0 && a.data == nullptr) jsTypeError(env, std::string(name) + " is detached");
  if (forAsync) {
    Napi::Object buf = Napi::Value(env, buffer).As<Napi::Object>();
    if (buf.Get("resizable").StrictEquals(Napi::Boolean::New(env, true)) || buf.Get("growable").StrictEquals(Napi::Boolean::New(env, true)))
      jsTypeError(env, std::string(name) + " is a view of a resizable buffer; copy it before an asynchronous call");
  }
  return a;
}

DatasetSpec toSpec(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) jsTypeError(env, "spec must be an object");
  Napi::Object o = v.As<Napi::Object>();
  DatasetSpec c;
  Napi::Value dt = o.Get("dtype");
  Napi::Value type = o.Get("type");
  if (dt.IsString() && dt.As<Napi::String>().Utf8Value() == "packed") {
    c.hasType = true;
    c.type = toType(env, type, 0);
    c.dtype = DType::Uint8;  // elements are packed bytes of the type
  } else if (!dt.IsString() || !parseDType(dt.As<Napi::String>().Utf8Value(), &c.dtype)) {
    jsTypeError(env, "spec.dtype must be a numeric dtype name (bool, int8, ..., complex128, float16) or 'packed'");
  } else if (!type.IsUndefined() && !type.IsNull()) {
    c.hasType = true;
    c.type = toType(env, type, 0);
    if (!c.type.plainNumber() || c.type.dtype != c.dtype) jsTypeError(env, "spec.type must be a number or enum of spec.dtype (or spec.dtype 'packed')");
  }
  c.shape = toShape(env, o.Get("shape"), "spec.shape");
  Napi::Value ms = o.Get("maxshape");
  if (!ms.IsUndefined() && !ms.IsNull()) {
    c.hasMaxshape = true;
    c.maxshape = toShape(env, ms, "spec.maxshape", true);
  }
  Napi::Value ch = o.Get("chunks");
  if (!ch.IsUndefined() && !ch.IsNull()) c.chunks = toShape(env, ch, "spec.chunks");
  Napi::Value comp = o.Get("compression");
  if (!comp.IsUndefined() && !comp.IsNull()) {
    std::string name = comp.IsString() ? comp.As<Napi::String>().Utf8Value() : "";
    if (name == "gzip") c.codec = Codec::Gzip;
    else if (name == "zstd") c.codec = Codec::Zstd;
    else if (name == "lz4") c.codec = Codec::Lz4;
    else jsTypeError(env, "spec.compression must be 'gzip', 'zstd', 'lz4' or null");
  }
  Napi::Value lvl = o.Get("compressionLevel");
  if (!lvl.IsUndefined() && !lvl.IsNull()) c.level = static_cast<int>(std::min<uint64_t>(toIndex(env, lvl, "spec.compressionLevel"), 99));
  c.shuffle = o.Get("shuffle").StrictEquals(Napi::Boolean::New(env, true));
  Napi::Value fill = o.Get("fillValue");
  if (fill.IsNumber()) {
    c.fill.kind = ScalarValue::Kind::Number;
    c.fill.number = fill.As<Napi::Number>().DoubleValue();
  } else if (fill.IsBoolean()) {
    c.fill.kind = ScalarValue::Kind::Number;
    c.fill.number = fill.As<Napi::Boolean>().Value() ? 1 : 0;
  } else if (fill.IsBigInt()) {
    bool lossless = false;
    if (c.dtype == DType::Uint64) {
      c.fill.kind = ScalarValue::Kind::Uint64;
      c.fill.u64 = fill.As<Napi::BigInt>().Uint64Value(&lossless);
    } else {
      c.fill.kind = ScalarValue::Kind::Int64;
      c.fill.i64 = fill.As<Napi::BigInt>().Int64Value(&lossless);
    }
    if (!lossless) jsRangeError(env, "spec.fillValue does not fit 64 bits");
  } else if (!fill.IsUndefined() && !fill.IsNull()) {
    jsTypeError(env, "spec.fillValue must be a number, boolean or bigint");
  }
  return c;
}

AttrValue toAttrValue(Napi::Env env, Napi::Value v) {
  AttrValue a;
  if (v.IsNumber()) {
    a.kind = AttrValue::Kind::Number;
    a.number = v.As<Napi::Number>().DoubleValue();
  } else if (v.IsBigInt()) {
    bool lossless = false;
    a.i64 = v.As<Napi::BigInt>().Int64Value(&lossless);
    a.kind = AttrValue::Kind::Int64;
    if (!lossless) {
      a.u64 = v.As<Napi::BigInt>().Uint64Value(&lossless);
      a.kind = AttrValue::Kind::Uint64;
      if (!lossless) jsRangeError(env, "a bigint attribute must fit 64 bits");
    }
  } else if (v.IsBoolean()) {
    a.kind = AttrValue::Kind::Bool;
    a.boolean = v.As<Napi::Boolean>().Value();
  } else if (v.IsString()) {
    a.kind = AttrValue::Kind::String;
    a.str = v.As<Napi::String>().Utf8Value();
  } else if (v.IsArray()) {
    a.kind = AttrValue::Kind::Strings;
    a.strs = toStrings(env, v, "value");
  } else if (v.IsObject() && !v.IsTypedArray() && v.As<Napi::Object>().Has("type")) {
    // Packed elements of a described type (lib/backends/hdf5-types.ts encodes them).
    Napi::Object o = v.As<Napi::Object>();
    a.kind = AttrValue::Kind::Packed;
    a.type = toType(env, o.Get("type"), 0);
    a.shape = toShape(env, o.Get("shape"), "value.shape");
    ArrayRef arr = toArray(env, o.Get("data"), "value.data", false);
    if (arr.kind != ArrayKind::Uint8) jsTypeError(env, "value.data must be a Uint8Array");
    a.bytes.assign(static_cast<uint8_t*>(arr.data), static_cast<uint8_t*>(arr.data) + arr.bytes);
    Napi::Value strs = o.Get("strings");
    if (!strs.IsUndefined()) a.strs = toStrings(env, strs, "value.strings");
  } else if (v.IsTypedArray()) {
    ArrayRef arr = toArray(env, v, "value", false);
    a.kind = AttrValue::Kind::Array;
    a.dtype = kindDType(arr.kind);
    a.length = arr.bytes / arrayKindSize(arr.kind);
    a.bytes.assign(static_cast<uint8_t*>(arr.data), static_cast<uint8_t*>(arr.data) + arr.bytes);  // copied: attrs are small
  } else {
    jsTypeError(env, "an attribute value is a number, bigint, boolean, string, string[] or TypedArray");
  }
  return a;
}

std::vector<Op> toOps(Napi::Env env, Napi::Value v, std::vector<Napi::Value>* keep, bool forAsync) {
  if (!v.IsArray()) jsTypeError(env, "ops must be an array");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<Op> ops(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
   try {
    Napi::Value item = arr.Get(i);
    if (!item.IsObject()) jsTypeError(env, "each op must be an object");
    Napi::Object o = item.As<Napi::Object>();
    Op& op = ops[i];
    std::string kind = getString(o, "op", "op");
    op.path = getString(o, "path", "op");
    auto array = [&](const char* key) {
      Napi::Value a = o.Get(key);
      op.array = toArray(env, a, key, forAsync);
      keep->push_back(a);
    };
    if (kind == "walk") {
      op.kind = Op::Kind::Walk;
      Napi::Value ib = o.Get("inlineBytes"), it = o.Get("inlineTotal");
      op.walk.inlineBytes = ib.IsUndefined() ? 0 : toIndex(env, ib, "inlineBytes");
      op.walk.inlineTotal = it.IsUndefined() ? 0 : toIndex(env, it, "inlineTotal");
      if (!o.Get("skip").IsUndefined()) op.walk.skip = toStrings(env, o.Get("skip"), "skip");
      op.walk.storageSizes = o.Get("storageSizes").ToBoolean();
    } else if (kind == "lookup") {
      op.kind = Op::Kind::Lookup;
    } else if (kind == "resolve") {
      op.kind = Op::Kind::Resolve;
      op.stopIfFound = o.Get("stopIfFound").ToBoolean();
    } else if (kind == "entries") {
      op.kind = Op::Kind::Entries;
      if (!o.Get("skip").IsUndefined()) op.walk.skip = toStrings(env, o.Get("skip"), "skip");
    } else if (kind == "updateAttrs") {
      op.kind = Op::Kind::UpdateAttrs;
      Napi::Value set = o.Get("set");
      if (!set.IsArray()) jsTypeError(env, "updateAttrs.set must be an array of [name, value] pairs");
      Napi::Array pairs = set.As<Napi::Array>();
      for (uint32_t k = 0; k < pairs.Length(); ++k) {
        Napi::Value pv = pairs.Get(k);
        if (!pv.IsArray() || pv.As<Napi::Array>().Length() != 2 || !pv.As<Napi::Array>().Get(0u).IsString())
          jsTypeError(env, "updateAttrs.set must be an array of [name, value] pairs");
        Napi::Array pair = pv.As<Napi::Array>();
        op.attrSets.emplace_back(pair.Get(0u).As<Napi::String>().Utf8Value(), toAttrValue(env, pair.Get(1u)));
      }
      op.names = toStrings(env, o.Get("delete"), "updateAttrs.delete");
    } else if (kind == "list") {
      op.kind = Op::Kind::List;
    } else if (kind == "createGroup") {
      op.kind = Op::Kind::CreateGroup;
    } else if (kind == "createDataset") {
      op.kind = Op::Kind::CreateDataset;
      op.spec = toSpec(env, o.Get("spec"));
      if (!o.Get("data").IsUndefined()) {
        array("data");
        op.hasData = true;
        // Checked before anything is created: the data must be the dtype's array, exactly the shape's size.
        if (!arrayFits(op.spec.dtype, op.array.kind))
          jsTypeError(env, std::string("a ") + arrayKindName(op.array.kind) + " cannot hold " + dtypeName(op.spec.dtype) + " data (" + op.path + ")");
        uint64_t n = 1;
        for (hsize_t d : op.spec.shape) n = d != 0 && n > UINT64_MAX / d ? UINT64_MAX : n * d;
        uint64_t esize = op.spec.hasType ? op.spec.type.totalSize() : dtypeSize(op.spec.dtype);
        if (n == UINT64_MAX || n > UINT64_MAX / esize || n * esize != op.array.bytes)
          jsRangeError(env, "the data holds " + std::to_string(op.array.bytes) + " bytes; shape " + shapeText(op.spec.shape) + " of " +
                                (op.spec.hasType ? std::to_string(esize) + "-byte elements" : std::string(dtypeName(op.spec.dtype))) + " needs " +
                                std::to_string(n * esize) + " (" + op.path + ")");
        Napi::Value strs = o.Get("strings");
        if (!strs.IsUndefined()) op.strings = toStrings(env, strs, "strings");
      }
    } else if (kind == "createStrings") {
      op.kind = Op::Kind::CreateStrings;
      op.strings = toStrings(env, o.Get("strings"), "strings");
      op.shape = toShape(env, o.Get("shape"), "shape");
    } else if (kind == "createBytes") {
      op.kind = Op::Kind::CreateBytes;
      array("bytes");
      if (op.array.kind != ArrayKind::Uint8) jsTypeError(env, "bytes must be a Uint8Array");
      std::string l = getString(o, "layout", "createBytes");
      if (l == "void") op.layout = BytesLayout::Void;
      else if (l == "S") op.layout = BytesLayout::FixedString;
      else if (l == "uint8") op.layout = BytesLayout::Uint8;
      else jsTypeError(env, "layout must be 'void', 'S' or 'uint8'");
    } else if (kind == "createNull") {
      op.kind = Op::Kind::CreateNull;
    } else if (kind == "read") {
      op.kind = Op::Kind::Read;
      array("out");
      op.sel = toHyperslab(env, o.Get("sel"));
    } else if (kind == "move") {
      op.kind = Op::Kind::Move;
      op.to = getString(o, "to", "move");
    } else if (kind == "delete") {
      op.kind = Op::Kind::Delete;
    } else if (kind == "attrs") {
      op.kind = Op::Kind::Attrs;
    } else if (kind == "setAttr") {
      op.kind = Op::Kind::SetAttr;
      op.name = getString(o, "name", "setAttr");
      op.attr = toAttrValue(env, o.Get("value"));
    } else if (kind == "reserve") {
      op.kind = Op::Kind::Reserve;
      op.bytes = toIndex(env, o.Get("bytes"), "reserve.bytes");
    } else if (kind == "deleteAttr") {
      op.kind = Op::Kind::DeleteAttr;
      op.name = getString(o, "name", "deleteAttr");
    } else {
      jsTypeError(env, "unknown op '" + kind + "'");
    }
   } catch (Napi::Error& e) {
    e.Set("opIndex", Napi::Number::New(env, i));  // nothing ran: the batch is checked before it starts
    throw;
   }
  }
  return ops;
}

Napi::Value fromShape(Napi::Env env, const std::vector<hsize_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (uint32_t i = 0; i < shape.size(); ++i)
    a.Set(i, shape[i] == H5S_UNLIMITED ? env.Null() : Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

Napi::Value fromStrings(Napi::Env env, const std::vector<std::string>& v) { return stringArray(env, v); }

Napi::Value fromInfo(Napi::Env env, const DatasetInfo& i) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dtype", i.supported ? Napi::Value(Napi::String::New(env, i.packed ? "packed" : dtypeName(i.dtype))) : env.Null());
  if (!i.supported) o.Set("unsupported", i.unsupported);
  o.Set("opaque", i.opaque);
  o.Set("shape", fromShape(env, i.shape));
  o.Set("maxshape", fromShape(env, i.maxshape));
  o.Set("chunks", i.chunked ? fromShape(env, i.chunks) : env.Null());
  o.Set("isNull", i.isNull);
  o.Set("isScalar", i.isScalar);
  if (i.storageBytes >= 0) o.Set("storageBytes", Napi::Number::New(env, static_cast<double>(i.storageBytes)));
  o.Set("packed", i.packed);
  if (i.supported) o.Set("type", fromType(env, i.type));
  if (i.supported && i.dtype == DType::String) {
    Napi::Object st = Napi::Object::New(env);
    st.Set("variable", i.str.variable);
    st.Set("length", Napi::Number::New(env, static_cast<double>(i.str.length)));
    st.Set("utf8", i.str.utf8);
    o.Set("stringType", st);
  }
  Napi::Object filters = Napi::Object::New(env);
  filters.Set("compression", i.filters.compression ? Napi::Value(Napi::String::New(env, i.filters.compression)) : env.Null());
  filters.Set("level", i.filters.compression && i.filters.level >= 0 ? Napi::Value(Napi::Number::New(env, i.filters.level)) : env.Null());
  filters.Set("shuffle", i.filters.shuffle);
  filters.Set("other", Napi::Number::New(env, i.filters.other));
  o.Set("filters", filters);
  return o;
}

Napi::Value fromAttrs(Napi::Env env, const Attrs& attrs) {
  Napi::Array a = Napi::Array::New(env, attrs.size());
  for (uint32_t i = 0; i < attrs.size(); ++i) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, attrs[i].first));
    pair.Set(1u, fromAttrValue(env, attrs[i].second));
    a.Set(i, pair);
  }
  return a;
}

Napi::Value fromResults(Napi::Env env, const std::vector<Op>& ops, std::vector<OpResult>& results, const std::string& file) {
  Napi::Array a = Napi::Array::New(env, results.size());
  for (uint32_t i = 0; i < results.size(); ++i) {
    Napi::Value v = env.Undefined();
    switch (ops[i].kind) {
      case Op::Kind::Walk: v = fromNode(env, results[i].node, file, 0); break;
      case Op::Kind::Lookup:
      case Op::Kind::List: v = stringArray(env, results[i].names); break;
      case Op::Kind::Attrs: v = fromAttrs(env, results[i].attrs); break;
      case Op::Kind::Resolve: {
        Napi::Object o = Napi::Object::New(env);
        o.Set("kinds", stringArray(env, results[i].names));
        o.Set("link", fromNode(env, results[i].node, file, 0));
        v = o;
        break;
      }
      case Op::Kind::Entries: {
        const auto& es = results[i].entries;
        Napi::Array arr = Napi::Array::New(env, es.size());
        for (uint32_t k = 0; k < es.size(); ++k) {
          Napi::Object e = Napi::Object::New(env);
          e.Set("name", es[k].name);
          e.Set("kind", es[k].kind);
          if (!es[k].target.empty() || es[k].kind == "external") e.Set("target", es[k].target);
          if (es[k].kind == "external") e.Set("file", es[k].file);
          arr.Set(k, e);
        }
        v = arr;
        break;
      }
      default: break;
    }
    a.Set(i, v);
  }
  return a;
}

}  // namespace ckpt
