#include "h5ops.h"

#include <sys/resource.h>
#include <sys/statvfs.h>

#include <cstring>

namespace ckpt {

namespace {

// Deeper nesting than this is reported, not walked (a damaged file must not exhaust the stack).
constexpr int kMaxDepth = 512;
// The name a replacement attribute is written under before it takes the old one's place.
const char* const kAttrTemp = ".checkpointer-pending-attr";

Hid newPlist(hid_t cls) { return ownPlist(H5Pcreate(cls), "H5Pcreate"); }

Hid noTimesDcpl() {
  Hid dcpl = newPlist(H5P_DATASET_CREATE);
  check(H5Pset_obj_track_times(dcpl.get(), 0), "H5Pset_obj_track_times");
  return dcpl;
}

// Writes a dataset just created at `p`; if that fails the dataset is unlinked again, so an op either
// makes the whole dataset or nothing.
template <class Fill>
void fillOrUnlink(hid_t file, const std::string& p, Hid& d, Fill fill) {
  try {
    fill();
  } catch (...) {
    d.reset();
    if (H5Ldelete(file, p.c_str(), H5P_DEFAULT) < 0) clearErrorStack();
    throw;
  }
}

std::string childPath(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

// ---------------------------------------------------------------------------------------------
// Attributes

herr_t collectAttr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

// Whether the object tracks its attributes' creation order (else they are listed by name, as h5py does).
bool tracksAttrOrder(hid_t obj) {
  hid_t plist = H5I_INVALID_HID;
  switch (H5Iget_type(obj)) {
    case H5I_DATASET: plist = H5Dget_create_plist(obj); break;
    case H5I_GROUP: plist = H5Gget_create_plist(obj); break;
    case H5I_DATATYPE: plist = H5Tget_create_plist(obj); break;
    default: return false;
  }
  if (plist < 0) {
    clearErrorStack();
    return false;
  }
  Hid p(plist);
  unsigned flags = 0;
  if (H5Pget_attr_creation_order(p.get(), &flags) < 0) {
    clearErrorStack();
    return false;
  }
  return (flags & H5P_CRT_ORDER_TRACKED) != 0;
}

std::vector<std::string> attrNames(hid_t obj, const std::string& where) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (tracksAttrOrder(obj) && H5Aiterate2(obj, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collectAttr, &names) >= 0) return names;
  clearErrorStack();
  names.clear();
  idx = 0;
  check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collectAttr, &names), ("cannot list the attributes of " + where).c_str());
  return names;
}

AttrValue readAttr(hid_t obj, const std::string& name, const std::string& owner) {
  std::string where = owner + " attribute " + name;
  Hid a = own(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open " + where);
  Hid t = ownType(H5Aget_type(a.get()), "H5Aget_type");
  Hid s = ownSpace(H5Aget_space(a.get()), "H5Aget_space");
  AttrValue v;
  Extent e = extentOf(s.get());
  TypeNode node;
  try {
    node = describeStored(t.get(), where);
  } catch (const Failure& f) {
    if (f.code() != "ERR_UNSUPPORTED_DTYPE") throw;
    v.kind = AttrValue::Kind::Unsupported;
    v.str = f.message();
    return v;
  }
  if (e.cls == H5S_NULL) return v;
  DType dt = node.dtype;
  bool stringAttr = node.kind == TypeNode::Kind::String && node.dims.empty();
  if (!stringAttr && (!node.plainNumber() || node.kind == TypeNode::Kind::Enum || dt == DType::Float16 || e.dims.size() > 1)) {
    // Records, enums, arrays, float16, opaque, variable-length, references, numbers of rank >= 2
    // (their shape kept): packed, decoded in TS.
    PackedData pd = readPacked(a.get(), true, node, where);
    v.kind = AttrValue::Kind::Packed;
    v.type = std::move(node);
    v.shape = e.dims;
    v.bytes = std::move(pd.bytes);
    v.side = std::move(pd.side);
    return v;
  }
  if (stringAttr) {
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
  uint64_t bytes = mulChecked(static_cast<uint64_t>(npts), dtypeSize(dt), "attribute");
  if (bytes > kMaxAllocation) tooLarge(where + " is larger than the binding reads");
  Hid mtype = buildMemType(node);  // a bitfield or long double read as its dtype
  std::vector<uint8_t> buf(static_cast<size_t>(bytes));
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

// Creates attribute `name` holding `v` (it must not exist); messages call it `shown`.
void createAttr(hid_t obj, const std::string& name, const AttrValue& v, const std::string& where, const std::string& shown) {
  Hid ftype, mtype, space;
  const void* buf = nullptr;
  std::vector<uint8_t> scratch;
  std::vector<const char*> ptrs;
  const char* one = nullptr;
  auto noNul = [](const std::string& s) {
    if (s.find('\0') != std::string::npos)
      throw Failure("ERR_UNSUPPORTED_VALUE", "HDF5 variable-length strings cannot hold NUL characters");
  };
  switch (v.kind) {
    case AttrValue::Kind::Null:
    case AttrValue::Kind::Unsupported: typeError("attribute values cannot be null");
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
      noNul(v.str);
      ftype = vlenUtf8Type();
      mtype = vlenUtf8Type();
      one = v.str.c_str();
      buf = &one;
      break;
    case AttrValue::Kind::Strings:
      for (const auto& s : v.strs) {
        noNul(s);
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
    case AttrValue::Kind::Packed:
      ftype = buildFileType(v.type);
      break;
  }
  if (v.kind == AttrValue::Kind::Packed) {
    uint64_t n = productChecked(v.shape, "attribute shape");
    if (mulChecked(n, v.type.totalSize(), "attribute") != v.bytes.size())
      rangeError("the attribute data holds " + std::to_string(v.bytes.size()) + " bytes; shape " + shapeText(v.shape) + " needs " +
                 std::to_string(n * v.type.totalSize()));
    space = v.shape.empty() ? ownSpace(H5Screate(H5S_SCALAR), "H5Screate")
                            : ownSpace(H5Screate_simple(static_cast<int>(v.shape.size()), v.shape.data(), nullptr), "H5Screate_simple");
  } else if (v.kind == AttrValue::Kind::Strings || v.kind == AttrValue::Kind::Array) {
    hsize_t dim = v.kind == AttrValue::Kind::Strings ? v.strs.size() : v.length;
    space = ownSpace(H5Screate_simple(1, &dim, nullptr), "H5Screate_simple");
  } else {
    space = ownSpace(H5Screate(H5S_SCALAR), "H5Screate");
  }
  Hid acpl = newPlist(H5P_ATTRIBUTE_CREATE);
  check(H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8), "H5Pset_char_encoding");
  Hid a = own(H5Acreate2(obj, name.c_str(), ftype.get(), space.get(), acpl.get(), H5P_DEFAULT),
              "cannot create attribute " + shown + " on " + where);
  bool empty = (v.kind == AttrValue::Kind::Strings && v.strs.empty()) || (v.kind == AttrValue::Kind::Array && v.length == 0) ||
               (v.kind == AttrValue::Kind::Packed && v.bytes.empty());
  if (v.kind == AttrValue::Kind::Packed) {
    if (!empty) {
      try {
        writePacked(a.get(), true, v.type, v.bytes.data(), v.bytes.size(), v.strs, H5S_ALL, H5S_ALL, "attribute " + shown + " on " + where);
      } catch (...) {
        a.reset();
        if (H5Adelete(obj, name.c_str()) < 0) clearErrorStack();
        throw;
      }
    }
  } else if (!empty && H5Awrite(a.get(), mtype.get(), buf) < 0) {
    ErrorStack st = takeErrorStack();
    a.reset();
    if (H5Adelete(obj, name.c_str()) < 0) clearErrorStack();
    throw Failure("ERR_HDF5", "cannot write attribute " + shown + " on " + where + ": " + st.innermost(), st.messages, st.minors);
  }
}

// ---------------------------------------------------------------------------------------------
// Walking

WalkNode errorNode(const Failure& f) {
  WalkNode n;
  n.kind = WalkNode::Kind::Error;
  n.error = f;
  return n;
}

WalkNode linkNode(const char* type) {
  WalkNode n;
  n.kind = WalkNode::Kind::Link;
  n.linkType = type;
  return n;
}

const char* linkTypeName(H5L_type_t t) {
  switch (t) {
    case H5L_TYPE_EXTERNAL: return "external";
    case H5L_TYPE_SOFT: return "soft";
    case H5L_TYPE_HARD: return "hard";
    default: return "user-defined";
  }
}

struct Walker {
  const WalkOptions& opts;
  uint64_t inlined = 0;
  std::vector<std::pair<h5::ObjectId, std::string>> ancestors;

  WalkNode visit(hid_t obj, const std::string& path, int depth) {
    try {
      h5::ObjectInfo oi = h5::objectInfo(obj);
      if (oi.type == H5O_TYPE_GROUP) return group(obj, oi, path, depth);
      if (oi.type == H5O_TYPE_DATASET) return dataset(obj, path);
      if (oi.type == H5O_TYPE_NAMED_DATATYPE) return linkNode("datatype");
      return linkNode("user-defined");
    } catch (const Failure& f) {
      return errorNode(f);
    }
  }

  WalkNode group(hid_t g, const h5::ObjectInfo& oi, const std::string& path, int depth) {
    for (const auto& a : ancestors) {
      if (a.first == oi.id)
        throw Failure("ERR_UNSUPPORTED_VALUE", "the group " + path + " contains itself (a hard-link cycle back to " + a.second +
                                                   "); it cannot be loaded as a value");
    }
    if (depth > kMaxDepth) throw Failure("ERR_UNSUPPORTED_VALUE", path + " is nested deeper than " + std::to_string(kMaxDepth) + " groups");
    WalkNode n;
    n.kind = WalkNode::Kind::Group;
    n.names = h5::linkNames(g);
    ancestors.emplace_back(oi.id, path);
    n.children.reserve(n.names.size());
    for (const std::string& name : n.names) n.children.push_back(child(g, name, childPath(path, name), depth));
    ancestors.pop_back();
    return n;
  }

  WalkNode child(hid_t g, const std::string& name, const std::string& path, int depth) {
    try {
      H5L_type_t lt = h5::linkType(g, name.c_str());
      if (lt != H5L_TYPE_HARD && lt != H5L_TYPE_SOFT) return linkNode(linkTypeName(lt));
      hid_t raw = H5Oopen(g, name.c_str(), H5P_DEFAULT);
      if (raw < 0) {
        if (lt == H5L_TYPE_SOFT) {
          clearErrorStack();
          return linkNode("soft");
        }
        throwHdf5("cannot open " + path);
      }
      Hid obj(raw);
      return visit(obj.get(), path, depth + 1);
    } catch (const Failure& f) {
      return errorNode(f);
    }
  }

  WalkNode dataset(hid_t d, const std::string& path) {
    WalkNode n;
    n.kind = WalkNode::Kind::Dataset;
    n.info = datasetInfo(d, path);
    const DatasetInfo& i = n.info;
    if (!i.supported || i.isNull) return n;
    if (i.packed && i.type.hasSide()) {
      // Variable-length parts are read with the elements, whatever their size.
      PackedData pd = readPacked(d, false, i.type, path);
      n.bytes = std::move(pd.bytes);
      n.side = std::move(pd.side);
      n.data = WalkNode::Data::Numeric;
      return n;
    }
    if (i.dtype == DType::String) {
      Hid t = ownType(H5Dget_type(d), "H5Dget_type");
      Hid s = ownSpace(H5Dget_space(d), "H5Dget_space");
      n.strings = readStringValues(StringSource{d, false}, t.get(), s.get(), path);
      n.data = WalkNode::Data::Strings;
      return n;
    }
    uint64_t elements = extentElements(i.shape, path);
    uint64_t bytes = mulChecked(elements, i.type.totalSize(), "dataset extent");
    if (bytes > opts.inlineBytes || inlined + bytes > opts.inlineTotal) return n;
    n.bytes.resize(static_cast<size_t>(bytes));
    if (bytes > 0) {
      Hid mtype = buildMemType(i.type);
      check(H5Dread(d, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, n.bytes.data()), ("cannot read " + path).c_str());
    }
    inlined += bytes;
    n.data = WalkNode::Data::Numeric;
    return n;
  }
};

// The kind of each prefix of `p`, down to the first that is missing or not a group.
std::vector<std::string> lookup(hid_t file, const std::string& p) {
  std::vector<std::string> parts = splitPath(p);
  std::vector<std::string> kinds;
  for (size_t i = 1; i <= parts.size(); ++i) {
    std::string prefix = joinPath(parts, i);
    htri_t e = checkTri(H5Lexists(file, prefix.c_str(), H5P_DEFAULT), ("cannot look up " + prefix).c_str());
    if (e == 0) break;
    H5L_type_t lt = h5::linkType(file, prefix.c_str());
    if (lt != H5L_TYPE_HARD && lt != H5L_TYPE_SOFT) {
      kinds.emplace_back("link");
      break;
    }
    h5::ObjectInfo oi;
    if (!h5::objectInfoByName(file, prefix.c_str(), &oi, true)) {
      kinds.emplace_back("link");  // a dangling soft link
      break;
    }
    kinds.emplace_back(oi.type == H5O_TYPE_GROUP ? "group" : oi.type == H5O_TYPE_DATASET ? "dataset" : "datatype");
    if (oi.type != H5O_TYPE_GROUP) break;
  }
  return kinds;
}

WalkNode walk(hid_t file, const std::string& p, const WalkOptions& opts) {
  std::vector<std::string> parts = splitPath(p);
  if (!parts.empty()) {
    std::vector<std::string> kinds = lookup(file, p);
    if (kinds.size() < parts.size()) return WalkNode{};  // missing, or a parent is not a group
    if (kinds.back() == "link") {
      H5L_type_t lt = h5::linkType(file, p.c_str());
      return linkNode(lt == H5L_TYPE_SOFT ? "soft" : linkTypeName(lt));
    }
    if (kinds.back() == "datatype") return linkNode("datatype");
  }
  Hid obj = own(H5Oopen(file, p.c_str(), H5P_DEFAULT), "cannot open " + p);
  Walker w{opts, 0, {}};
  return w.visit(obj.get(), p, 0);
}

void createStrings(hid_t file, const Op& op) {
  uint64_t n = productChecked(op.shape, "shape");
  if (n != op.strings.size())
    rangeError("shape " + shapeText(op.shape) + " needs " + std::to_string(n) + " strings, got " + std::to_string(op.strings.size()));
  std::vector<const char*> ptrs;
  ptrs.reserve(op.strings.size());
  for (const auto& s : op.strings) {
    if (s.find('\0') != std::string::npos)
      throw Failure("ERR_UNSUPPORTED_VALUE", "HDF5 variable-length strings cannot hold NUL characters (" + op.path + ")");
    ptrs.push_back(s.c_str());
  }
  Hid space = op.shape.empty() ? ownSpace(H5Screate(H5S_SCALAR), "H5Screate")
                               : ownSpace(H5Screate_simple(static_cast<int>(op.shape.size()), op.shape.data(), nullptr), "H5Screate_simple");
  Hid type = vlenUtf8Type();
  Hid dcpl = noTimesDcpl();
  Hid lcpl = linkCreatePlist();
  Hid d = own(H5Dcreate2(file, op.path.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT), "cannot create dataset " + op.path);
  if (!ptrs.empty()) fillOrUnlink(file, op.path, d, [&] {
    check(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), ("cannot write " + op.path).c_str());
  });
}

void createBytes(hid_t file, const Op& op) {
  Hid type, space;
  std::vector<uint8_t> padded;
  const void* src = op.array.data;
  size_t n = op.array.bytes;
  switch (op.layout) {
    case BytesLayout::Void:
      if (n == 0) throw Failure("ERR_UNSUPPORTED_VALUE", "an opaque (np.void) value cannot be empty (" + op.path + ")");
      type = ownType(H5Tcreate(H5T_OPAQUE, n), "cannot create the opaque type");
      check(H5Tset_tag(type.get(), ""), "H5Tset_tag");
      space = ownSpace(H5Screate(H5S_SCALAR), "H5Screate");
      break;
    case BytesLayout::FixedString:
      type = ownType(H5Tcopy(H5T_C_S1), "H5Tcopy");
      check(H5Tset_size(type.get(), n == 0 ? 1 : n), "H5Tset_size");
      check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "H5Tset_strpad");
      if (n == 0) {
        padded.assign(1, 0);
        src = padded.data();
      }
      space = ownSpace(H5Screate(H5S_SCALAR), "H5Screate");
      break;
    case BytesLayout::Uint8: {
      type = ownType(H5Tcopy(H5T_STD_U8LE), "H5Tcopy");
      hsize_t dim = n;
      space = ownSpace(H5Screate_simple(1, &dim, nullptr), "H5Screate_simple");
      break;
    }
  }
  Hid dcpl = noTimesDcpl();
  Hid lcpl = linkCreatePlist();
  Hid d = own(H5Dcreate2(file, op.path.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT), "cannot create dataset " + op.path);
  Hid mtype = op.layout == BytesLayout::Uint8 ? ownType(H5Tcopy(H5T_NATIVE_UINT8), "H5Tcopy") : ownType(H5Tcopy(type.get()), "H5Tcopy");
  if (n > 0 || op.layout == BytesLayout::FixedString) fillOrUnlink(file, op.path, d, [&] {
    check(H5Dwrite(d.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, src), ("cannot write " + op.path).c_str());
  });
}

void createNull(hid_t file, const std::string& p) {
  Hid space = ownSpace(H5Screate(H5S_NULL), "H5Screate");
  // McUtils stores None as an int32 dataset with a null dataspace (h5py.Empty('i')).
  Hid ftype = fileType(DType::Int32);
  Hid dcpl = noTimesDcpl();
  Hid lcpl = linkCreatePlist();
  own(H5Dcreate2(file, p.c_str(), ftype.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT), "cannot create dataset " + p);
}

// Room for `bytes` more in the file before anything is written: the free space of its filesystem
// and the process's file-size limit (RLIMIT_FSIZE). A set that cannot fit fails here, untouched,
// instead of in the middle, where a failed write can leave the file's end short of what HDF5
// allocated. (Quotas are not seen; a write that runs out anyway still fails cleanly.)
void reserve(File& file, uint64_t bytes) {
  hsize_t size = 0;
  check(H5Fget_filesize(file.id(), &size), "H5Fget_filesize");
  struct rlimit lim;
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && size + bytes > lim.rlim_cur)
    throw Failure::system("cannot write " + std::to_string(bytes) + " bytes to " + file.path() + ": the file would pass the file-size limit (" +
                              std::to_string(lim.rlim_cur) + " bytes)", "EFBIG", "file");
  struct statvfs vfs;
  if (::statvfs(file.path().c_str(), &vfs) == 0) {
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (bytes > avail)
      throw Failure::system("cannot write " + std::to_string(bytes) + " bytes to " + file.path() + ": " + std::to_string(avail) +
                                " bytes are free on its filesystem", "ENOSPC", "file");
  }
}

bool mutates(Op::Kind k) {
  switch (k) {
    case Op::Kind::Walk:
    case Op::Kind::Lookup:
    case Op::Kind::List:
    case Op::Kind::Read:
    case Op::Kind::Reserve:
    case Op::Kind::Attrs: return false;
    default: return true;
  }
}

OpResult runOne(File& file, const Op& op) {
  OpResult r;
  if (mutates(op.kind)) file.requireWritable("change " + op.path);
  hid_t f = file.id();
  splitPath(op.path);
  switch (op.kind) {
    case Op::Kind::Walk: r.node = walk(f, op.path, op.walk); break;
    case Op::Kind::Lookup: r.names = lookup(f, op.path); break;
    case Op::Kind::List: {
      Hid g = own(H5Gopen2(f, op.path.c_str(), H5P_DEFAULT), "cannot open group " + op.path);
      r.names = h5::linkNames(g.get());
      break;
    }
    case Op::Kind::CreateGroup: {
      Hid gcpl = groupCreatePlist();
      Hid lcpl = linkCreatePlist();
      own(H5Gcreate2(f, op.path.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT), "cannot create group " + op.path);
      break;
    }
    case Op::Kind::CreateDataset: {
      Hid d = createDataset(f, op.path, op.spec);
      if (op.hasData && op.spec.hasType && op.spec.type.hasSide()) {
        fillOrUnlink(f, op.path, d, [&] {
          writePacked(d.get(), false, op.spec.type, static_cast<const uint8_t*>(op.array.data), op.array.bytes, op.strings, H5S_ALL, H5S_ALL, op.path);
        });
      } else if (op.hasData) {
        fillOrUnlink(f, op.path, d, [&] { writeSelection(d.get(), op.path, numericLayout(d.get(), op.path), op.array, Hyperslab{}); });
      }
      break;
    }
    case Op::Kind::CreateStrings: createStrings(f, op); break;
    case Op::Kind::CreateBytes: createBytes(f, op); break;
    case Op::Kind::CreateNull: createNull(f, op.path); break;
    case Op::Kind::Read: {
      Hid d = own(H5Dopen2(f, op.path.c_str(), H5P_DEFAULT), "cannot open dataset " + op.path);
      readSelection(d.get(), op.path, numericLayout(d.get(), op.path), op.array, op.sel);
      break;
    }
    case Op::Kind::Move: {
      splitPath(op.to);
      Hid lcpl = linkCreatePlist();
      check(H5Lmove(f, op.path.c_str(), f, op.to.c_str(), lcpl.get(), H5P_DEFAULT), ("cannot move " + op.path + " to " + op.to).c_str());
      break;
    }
    case Op::Kind::Delete:
      if (op.path == "/") typeError("cannot delete the root group");
      check(H5Ldelete(f, op.path.c_str(), H5P_DEFAULT), ("cannot delete " + op.path).c_str());
      break;
    case Op::Kind::Attrs: {
      Hid obj = own(H5Oopen(f, op.path.c_str(), H5P_DEFAULT), "cannot open " + op.path);
      r.attrs = readAttrs(obj.get(), op.path);
      break;
    }
    case Op::Kind::SetAttr: {
      Hid obj = own(H5Oopen(f, op.path.c_str(), H5P_DEFAULT), "cannot open " + op.path);
      setAttr(obj.get(), op.name, op.attr, op.path);
      break;
    }
    case Op::Kind::DeleteAttr: {
      Hid obj = own(H5Oopen(f, op.path.c_str(), H5P_DEFAULT), "cannot open " + op.path);
      deleteAttr(obj.get(), op.name, op.path);
      break;
    }
    case Op::Kind::Reserve: reserve(file, op.bytes); break;
  }
  return r;
}

}  // namespace

Attrs readAttrs(hid_t obj, const std::string& where) {
  Attrs out;
  for (const std::string& name : attrNames(obj, where)) {
    if (name == kAttrTemp) continue;  // left by a writer that died mid-replacement
    out.emplace_back(name, readAttr(obj, name, where));
  }
  return out;
}

void setAttr(hid_t obj, const std::string& name, const AttrValue& v, const std::string& where) {
  if (name.empty()) typeError("attribute names must be non-empty");
  if (name == kAttrTemp) typeError(std::string("the attribute name ") + kAttrTemp + " is reserved");
  htri_t exists = checkTri(H5Aexists(obj, name.c_str()), "H5Aexists");
  if (exists == 0) {
    createAttr(obj, name, v, where, name);
    return;
  }
  if (checkTri(H5Aexists(obj, kAttrTemp), "H5Aexists") > 0) check(H5Adelete(obj, kAttrTemp), "cannot remove a stale temporary attribute");
  createAttr(obj, kAttrTemp, v, where, name);
  check(H5Adelete(obj, name.c_str()), ("cannot replace attribute " + name + " on " + where).c_str());
  check(H5Arename(obj, kAttrTemp, name.c_str()), ("cannot rename the new attribute " + name + " on " + where).c_str());
}

void deleteAttr(hid_t obj, const std::string& name, const std::string& where) {
  check(H5Adelete(obj, name.c_str()), ("cannot delete attribute " + name + " on " + where).c_str());
}

std::vector<OpResult> runOps(File& file, const std::vector<Op>& ops) {
  file.id();  // ERR_CLOSED also for an empty batch
  std::vector<OpResult> out;
  out.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    try {
      out.push_back(runOne(file, ops[i]));
    } catch (const Failure& f) {
      throw BatchFailure(f, i);
    }
  }
  return out;
}

}  // namespace ckpt
