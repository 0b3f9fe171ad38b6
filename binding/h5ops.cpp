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
  // Text of rank <= 1 comes as strings; of rank >= 2 packed, so its shape is kept.
  bool stringAttr = node.kind == TypeNode::Kind::String && node.dims.empty() && e.dims.size() <= 1;
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
// Links: soft links are followed here, step by step, and external links are reported, never
// traversed by HDF5 (TypeScript opens their files: verified first, read-only, owned by the file
// that links to them). A path this resolves to an object crosses hard links only, so HDF5 may
// open it without touching another file.

// What a path leads to.
struct Resolved {
  enum class Kind { Missing, Object, Dangling, External, Other } kind = Kind::Missing;
  std::string canonical;             // Object: a path to it through hard links only
  H5O_type_t type = H5O_TYPE_UNKNOWN;
  std::string link;                  // the link where resolution stopped (Dangling, External, Other)
  std::string target;                // a soft link's value; an external link's object path
  std::string file;                  // External: the file name as stored in the link
  std::vector<std::string> rest;     // External: what is left of the path below the link
  std::string why;                   // Other
  size_t index = 0;                  // the component of the path where it stopped
};

// HDF5's own limit on the soft and external links of one traversal (H5L_NUM_LINKS).
constexpr int kMaxLinkHops = 16;

std::vector<std::string> linkParts(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) {
      std::string part = p.substr(i, j - i);
      if (part != ".") out.push_back(part);  // HDF5 reads "." as the current group
    }
    i = j + 1;
  }
  return out;
}

// A soft or external link's stored value (NUL-terminated; an external link's holds two strings).
std::vector<char> linkValue(hid_t file, const std::string& p, const std::string& what) {
#if H5_VERSION_GE(1, 12, 0)
  H5L_info2_t li;
  check(H5Lget_info2(file, p.c_str(), &li, H5P_DEFAULT), "H5Lget_info2");
#else
  H5L_info_t li;
  check(H5Lget_info(file, p.c_str(), &li, H5P_DEFAULT), "H5Lget_info");
#endif
  if (li.u.val_size > (size_t(1) << 20)) throw Failure("ERR_CHECKPOINT_CORRUPT", what + " " + p + " has a value of " + std::to_string(li.u.val_size) + " bytes");
  std::vector<char> buf(li.u.val_size + 1, '\0');
  check(H5Lget_val(file, p.c_str(), buf.data(), li.u.val_size, H5P_DEFAULT), ("cannot read " + what + " " + p).c_str());
  return buf;
}

std::string softValue(hid_t file, const std::string& p) { return std::string(linkValue(file, p, "the link").data()); }

Resolved resolveFrom(hid_t file, const std::string& dir, const std::vector<std::string>& parts, size_t from, int hops,
                     std::vector<std::string>* kinds);

// What `name` inside the group at `dir` (a hard-link path) leads to.
Resolved resolveChild(hid_t file, const std::string& dir, const std::string& name, int hops, bool known) {
  Resolved r;
  std::string p = childPath(dir, name);
  r.link = p;
  if (!known && checkTri(H5Lexists(file, p.c_str(), H5P_DEFAULT), ("cannot look up " + p).c_str()) == 0) return r;  // Missing
  H5L_type_t lt = h5::linkType(file, p.c_str());
  if (lt == H5L_TYPE_HARD) {
    h5::ObjectInfo oi;
    h5::objectInfoByName(file, p.c_str(), &oi, false);
    r.kind = Resolved::Kind::Object;
    r.canonical = p;
    r.type = oi.type;
    return r;
  }
  if (lt == H5L_TYPE_SOFT) {
    r.target = softValue(file, p);
    if (hops >= kMaxLinkHops) {
      r.kind = Resolved::Kind::Other;
      r.why = "more than " + std::to_string(kMaxLinkHops) + " soft links in a row (a cycle)";
      return r;
    }
    bool absolute = !r.target.empty() && r.target[0] == '/';
    Resolved t = resolveFrom(file, absolute ? "/" : dir, linkParts(r.target), 0, hops + 1, nullptr);
    if (t.kind == Resolved::Kind::Object || t.kind == Resolved::Kind::External || t.kind == Resolved::Kind::Other) return t;
    r.kind = Resolved::Kind::Dangling;  // missing, or itself dangling: this link leads nowhere
    return r;
  }
  if (lt == H5L_TYPE_EXTERNAL) {
    std::vector<char> buf = linkValue(file, p, "the external link");
    const char* f = nullptr;
    const char* o = nullptr;
    unsigned flags = 0;
    check(H5Lunpack_elink_val(buf.data(), buf.size() - 1, &flags, &f, &o), ("cannot read the external link " + p).c_str());
    r.kind = Resolved::Kind::External;
    r.file = f ? f : "";
    r.target = o ? o : "/";
    return r;
  }
  r.kind = Resolved::Kind::Other;
  r.why = "a user-defined link";
  return r;
}

const char* kindName(const Resolved& r) {
  switch (r.kind) {
    case Resolved::Kind::Object:
      return r.type == H5O_TYPE_GROUP ? "group" : r.type == H5O_TYPE_DATASET ? "dataset" : r.type == H5O_TYPE_NAMED_DATATYPE ? "datatype" : "link";
    case Resolved::Kind::Dangling: return "dangling";
    case Resolved::Kind::External: return "external";
    default: return "link";
  }
}

// Resolves parts[from..] from the group at `dir` (a hard-link path); `kinds` gets the kind of
// each component reached, down to the first missing one or non-group. An external link stops it:
// the result's `rest` holds what is left to resolve in the other file.
Resolved resolveFrom(hid_t file, const std::string& dir, const std::vector<std::string>& parts, size_t from, int hops,
                     std::vector<std::string>* kinds) {
  Resolved cur;
  cur.kind = Resolved::Kind::Object;
  cur.canonical = dir;
  cur.type = H5O_TYPE_GROUP;
  for (size_t i = from; i < parts.size(); ++i) {
    if (cur.type != H5O_TYPE_GROUP) {
      Resolved missing;  // a parent is not a group
      missing.index = i;
      return missing;
    }
    Resolved r = resolveChild(file, cur.canonical, parts[i], hops, false);
    r.index = i;
    if (r.kind == Resolved::Kind::Missing) return r;
    if (kinds) kinds->emplace_back(kindName(r));
    if (r.kind == Resolved::Kind::External) {
      for (size_t j = i + 1; j < parts.size(); ++j) r.rest.push_back(parts[j]);
      return r;
    }
    if (r.kind != Resolved::Kind::Object) return r;
    cur = std::move(r);
  }
  cur.index = parts.size();
  return cur;
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

// What a link that does not lead to an object of this file is, for TypeScript: an external link
// (its file and object, the path below it), a dangling soft link (its target), a cycle or a
// user-defined link.
WalkNode linkNode(const Resolved& r) {
  WalkNode n;
  n.kind = WalkNode::Kind::Link;
  switch (r.kind) {
    case Resolved::Kind::External: {
      n.linkType = "external";
      n.targetFile = r.file;
      std::string t = r.target.empty() ? "/" : r.target;
      for (const auto& part : r.rest) t = childPath(t, part);
      n.target = t;
      break;
    }
    case Resolved::Kind::Dangling: n.linkType = "soft"; n.target = r.target; break;
    case Resolved::Kind::Object: n.linkType = "datatype"; break;
    default: n.linkType = r.why.find("cycle") != std::string::npos ? "cycle" : "user-defined"; n.target = r.target; break;
  }
  n.link = r.link;
  return n;
}

struct Walker {
  hid_t file;
  const WalkOptions& opts;
  uint64_t inlined = 0;
  std::vector<std::pair<h5::ObjectId, std::string>> ancestors;

  // `path` is where the walk found the object, `canonical` a hard-link path to it (relative soft
  // links below it resolve from there).
  WalkNode visit(hid_t obj, const std::string& path, const std::string& canonical, int depth) {
    try {
      h5::ObjectInfo oi = h5::objectInfo(obj);
      if (oi.type == H5O_TYPE_GROUP) return group(obj, oi, path, canonical, depth);
      if (oi.type == H5O_TYPE_DATASET) return dataset(obj, path);
      if (oi.type == H5O_TYPE_NAMED_DATATYPE) {
        WalkNode n = linkNode("datatype");
        n.link = path;
        return n;
      }
      return linkNode("user-defined");
    } catch (const Failure& f) {
      return errorNode(f);
    }
  }

  WalkNode group(hid_t g, const h5::ObjectInfo& oi, const std::string& path, const std::string& canonical, int depth) {
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
    for (const std::string& name : n.names) n.children.push_back(child(g, name, childPath(path, name), canonical, depth));
    ancestors.pop_back();
    return n;
  }

  WalkNode child(hid_t g, const std::string& name, const std::string& path, const std::string& dir, int depth) {
    try {
      if (isSkipped(path)) throw Failure("ERR_CHECKPOINT_CORRUPT", path + " is damaged (found by the verifier); it is not read");
      H5L_type_t lt = h5::linkType(g, name.c_str());
      std::string canonical = childPath(dir, name);
      if (lt != H5L_TYPE_HARD) {
        Resolved r = resolveChild(file, dir, name, 0, true);
        if (r.kind != Resolved::Kind::Object || r.type == H5O_TYPE_NAMED_DATATYPE) return linkNode(r);
        canonical = r.canonical;
      }
      // A hard link is opened from its group (one lookup); a resolved soft link by its hard-link path.
      Hid obj = own(lt == H5L_TYPE_HARD ? H5Oopen(g, name.c_str(), H5P_DEFAULT) : H5Oopen(file, canonical.c_str(), H5P_DEFAULT), "cannot open " + path);
      return visit(obj.get(), path, canonical, depth + 1);
    } catch (const Failure& f) {
      return errorNode(f);
    }
  }

  bool isSkipped(const std::string& path) const {
    for (const auto& s : opts.skip)
      if (path == s) return true;
    return false;
  }

  WalkNode dataset(hid_t d, const std::string& path) {
    WalkNode n;
    n.kind = WalkNode::Kind::Dataset;
    n.info = datasetInfo(d, path);
    if (opts.storageSizes) {
      n.info.storageBytes = static_cast<int64_t>(H5Dget_storage_size(d));  // 0 also when nothing is allocated
      clearErrorStack();
    }
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

// The kind of each prefix of `p`, down to the first that is missing or not a group ("group",
// "dataset", "datatype", "external", "dangling", "link"), soft links followed.
std::vector<std::string> lookup(hid_t file, const std::string& p, Resolved* at = nullptr) {
  std::vector<std::string> kinds;
  Resolved r = resolveFrom(file, "/", splitPath(p), 0, 0, &kinds);
  if (at) *at = std::move(r);
  return kinds;
}

WalkNode walk(hid_t file, const std::string& p, const WalkOptions& opts) {
  std::vector<std::string> parts = splitPath(p);
  Resolved r = resolveFrom(file, "/", parts, 0, 0, nullptr);
  if (r.kind == Resolved::Kind::Missing) return WalkNode{};  // missing, or a parent is not a group
  if (r.kind != Resolved::Kind::Object || r.type == H5O_TYPE_NAMED_DATATYPE) return linkNode(r);
  Hid obj = own(H5Oopen(file, r.canonical.c_str(), H5P_DEFAULT), "cannot open " + p);
  Walker w{file, opts, 0, {}};
  return w.visit(obj.get(), p, r.canonical, 0);
}

struct LinkTypeEntry {
  std::string name;
  H5L_type_t type;
};

#if H5_VERSION_GE(1, 12, 0)
herr_t collectLinkType(hid_t, const char* name, const H5L_info2_t* info, void* data) {
#else
herr_t collectLinkType(hid_t, const char* name, const H5L_info_t* info, void* data) {
#endif
  static_cast<std::vector<LinkTypeEntry>*>(data)->push_back({name, info->type});
  return 0;
}

// A group's links with their types, in h5::linkNames' order, in one iteration.
std::vector<LinkTypeEntry> linkTypes(hid_t group) {
  Hid gcpl = own(H5Gget_create_plist(group), "H5Gget_create_plist");
  unsigned flags = 0;
  check(H5Pget_link_creation_order(gcpl.get(), &flags), "H5Pget_link_creation_order");
  std::vector<LinkTypeEntry> out;
  for (H5_index_t index : {H5_INDEX_CRT_ORDER, H5_INDEX_NAME}) {
    if (index == H5_INDEX_CRT_ORDER && !(flags & H5P_CRT_ORDER_TRACKED)) continue;
    hsize_t idx = 0;
#if H5_VERSION_GE(1, 12, 0)
    herr_t rc = H5Literate2(group, index, H5_ITER_INC, &idx, collectLinkType, &out);
#else
    herr_t rc = H5Literate(group, index, H5_ITER_INC, &idx, collectLinkType, &out);
#endif
    if (rc >= 0) return out;
    if (index == H5_INDEX_NAME) throwHdf5("cannot list the group");
    clearErrorStack();
    out.clear();
  }
  return out;
}

// The children of the group at `p` and what each leads to (keys() lists those that are values).
std::vector<LinkEntry> entries(hid_t file, const std::string& p, const std::vector<std::string>& skip) {
  Resolved g = resolveFrom(file, "/", splitPath(p), 0, 0, nullptr);
  if (g.kind != Resolved::Kind::Object || g.type != H5O_TYPE_GROUP) throw Failure("ERR_KEY", p + " is not a group");
  Hid grp = own(H5Gopen2(file, g.canonical.c_str(), H5P_DEFAULT), "cannot open group " + p);
  std::vector<LinkEntry> out;
  for (const LinkTypeEntry& link : linkTypes(grp.get())) {
    const std::string& name = link.name;
    LinkEntry e;
    e.name = name;
    std::string at = childPath(p, name);
    bool skipped = false;
    for (const auto& sk : skip) skipped = skipped || sk == at;
    if (skipped) {  // damaged (the verifier found it): not opened
      e.kind = "error";
      e.target = at + " is damaged";
      out.push_back(std::move(e));
      continue;
    }
    try {
      if (link.type == H5L_TYPE_HARD) {  // the common case: the object's type, read from its group
        h5::ObjectInfo oi;
        h5::objectInfoByName(grp.get(), name.c_str(), &oi, false);
        Resolved r;
        r.kind = Resolved::Kind::Object;
        r.type = oi.type;
        e.kind = kindName(r);
        out.push_back(std::move(e));
        continue;
      }
      Resolved r = resolveChild(file, g.canonical, name, 0, true);
      e.kind = kindName(r);
      if (r.kind == Resolved::Kind::External) {
        e.file = r.file;
        e.target = r.target;
        for (const auto& part : r.rest) e.target = childPath(e.target, part);
      } else if (r.kind != Resolved::Kind::Object) {
        e.target = r.target;
      }
    } catch (const Failure& f) {
      e.kind = "error";
      e.target = f.message();
    }
    out.push_back(std::move(e));
  }
  return out;
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
  hid_t lcpl = linkCreatePlist();
  Hid d = own(H5Dcreate2(file, op.path.c_str(), type.get(), space.get(), lcpl, dcpl.get(), H5P_DEFAULT), "cannot create dataset " + op.path);
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
  // Short text and bytes (0-d) compact, as small numbers are (createDataset).
  Hid dcpl = op.layout != BytesLayout::Uint8 && n <= kCompactBytes ? Hid() : noTimesDcpl();
  hid_t lcpl = linkCreatePlist();
  Hid d = own(H5Dcreate2(file, op.path.c_str(), type.get(), space.get(), lcpl, dcpl.valid() ? dcpl.get() : compactScalarDcpl(), H5P_DEFAULT),
              "cannot create dataset " + op.path);
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
  hid_t lcpl = linkCreatePlist();
  own(H5Dcreate2(file, p.c_str(), ftype.get(), space.get(), lcpl, dcpl.get(), H5P_DEFAULT), "cannot create dataset " + p);
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
    case Op::Kind::Resolve:
    case Op::Kind::Entries:
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
    case Op::Kind::Resolve: {
      Resolved at;
      r.names = lookup(f, op.path, &at);
      if (at.kind != Resolved::Kind::Object && at.kind != Resolved::Kind::Missing) r.node = linkNode(at);
      break;
    }
    case Op::Kind::Entries: r.entries = entries(f, op.path, op.walk.skip); break;
    case Op::Kind::UpdateAttrs: {
      Hid obj = own(H5Oopen(f, op.path.c_str(), H5P_DEFAULT), "cannot open " + op.path);
      updateAttrs(obj.get(), op.attrSets, op.names, op.path);
      break;
    }
    case Op::Kind::List: {
      Hid g = own(H5Gopen2(f, op.path.c_str(), H5P_DEFAULT), "cannot open group " + op.path);
      r.names = h5::linkNames(g.get());
      break;
    }
    case Op::Kind::CreateGroup: {
      Hid gcpl = groupCreatePlist();
      hid_t lcpl = linkCreatePlist();
      own(H5Gcreate2(f, op.path.c_str(), lcpl, gcpl.get(), H5P_DEFAULT), "cannot create group " + op.path);
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
      hid_t lcpl = linkCreatePlist();
      check(H5Lmove(f, op.path.c_str(), f, op.to.c_str(), lcpl, H5P_DEFAULT), ("cannot move " + op.path + " to " + op.to).c_str());
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
    if (name.rfind(kAttrTemp, 0) == 0) continue;  // left by a writer that died mid-replacement
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

void updateAttrs(hid_t obj, const Attrs& sets, const std::vector<std::string>& removes, const std::string& where) {
  for (size_t i = 0; i < sets.size(); ++i) {
    const std::string& name = sets[i].first;
    if (name.empty()) typeError("attribute names must be non-empty");
    if (name.rfind(kAttrTemp, 0) == 0) typeError("attribute names starting with " + std::string(kAttrTemp) + " are reserved");
    for (size_t j = 0; j < i; ++j)
      if (sets[j].first == name) typeError("the attribute " + name + " is given twice");
  }
  for (const std::string& name : removes) {
    if (checkTri(H5Aexists(obj, name.c_str()), "H5Aexists") == 0) throw Failure("ERR_KEY", where + " has no attribute " + name);
    for (const auto& s : sets)
      if (s.first == name) typeError("the attribute " + name + " is both set and deleted");
  }
  // Every new value is written under a temporary name first: a failure (an unwritable value, a
  // full disk) removes those and leaves every attribute as it was.
  std::vector<std::string> temps;
  try {
    for (size_t i = 0; i < sets.size(); ++i) {
      std::string temp = std::string(kAttrTemp) + "-" + std::to_string(i);
      if (checkTri(H5Aexists(obj, temp.c_str()), "H5Aexists") > 0) check(H5Adelete(obj, temp.c_str()), "cannot remove a stale temporary attribute");
      createAttr(obj, temp, sets[i].second, where, sets[i].first);
      temps.push_back(temp);
    }
  } catch (...) {
    for (const std::string& t : temps)
      if (H5Adelete(obj, t.c_str()) < 0) clearErrorStack();
    throw;
  }
  for (size_t i = 0; i < sets.size(); ++i) {
    const std::string& name = sets[i].first;
    if (checkTri(H5Aexists(obj, name.c_str()), "H5Aexists") > 0)
      check(H5Adelete(obj, name.c_str()), ("cannot replace attribute " + name + " on " + where).c_str());
    check(H5Arename(obj, temps[i].c_str(), name.c_str()), ("cannot rename the new attribute " + name + " on " + where).c_str());
  }
  for (const std::string& name : removes) check(H5Adelete(obj, name.c_str()), ("cannot delete attribute " + name + " on " + where).c_str());
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
    const OpResult& r = out.back();
    if (ops[i].stopIfFound && (!r.names.empty() || r.node.kind != WalkNode::Kind::Missing)) break;
  }
  return out;
}

}  // namespace ckpt
