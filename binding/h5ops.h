// Path-based work on a file, run as one batch (`H5File.exec`): TypeScript plans a whole `get` or
// `set` — the layout walk, the groups and datasets of a value written under a temporary link, the
// swap — and the binding runs it in one call, under one lock, on one thread hop. Each op maps to a
// few HDF5 calls; what to create and in which order is decided in TypeScript. Attributes are read
// and written whole through their owner (the op, or a Group/Dataset object).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "h5objects.h"

namespace ckpt {

// A small attribute value.
struct AttrValue {
  enum class Kind { Null, Number, Int64, Uint64, Bool, String, Strings, Array, Packed, Unsupported } kind = Kind::Null;
  double number = 0;
  int64_t i64 = 0;
  uint64_t u64 = 0;
  bool boolean = false;
  std::string str;  // String; Unsupported: what the stored type is
  std::vector<std::string> strs;
  DType dtype = DType::Float64;  // Array
  std::vector<uint8_t> bytes;    // Array: native memory, C order
  uint64_t length = 0;           // Array: elements
  // Packed: elements of `type` (bytes), over `shape` ([] for a scalar); `side` holds what is read
  // of their variable-length parts, `strs` what is written into their variable-length strings.
  TypeNode type;
  std::vector<hsize_t> shape;
  std::vector<SideValue> side;
};

using Attrs = std::vector<std::pair<std::string, AttrValue>>;
Attrs readAttrs(hid_t obj, const std::string& where);
// Validate, then replace: the new value is written under a temporary name first, so a failed
// write leaves the old attribute as it was.
void setAttr(hid_t obj, const std::string& name, const AttrValue& v, const std::string& where);
void deleteAttr(hid_t obj, const std::string& name, const std::string& where);
// Sets and deletes several attributes as one change: the new values are written under temporary
// names first, so a failure leaves every attribute as it was. Deleting a missing one is ERR_KEY.
void updateAttrs(hid_t obj, const Attrs& sets, const std::vector<std::string>& removes, const std::string& where);

// A child of a group and what it leads to (the "entries" op).
struct LinkEntry {
  std::string name;
  std::string kind;    // "group", "dataset", "datatype", "external", "dangling", "link", "error"
  std::string target;  // external: the object path in the other file; dangling: the soft link's value; error: why
  std::string file;    // external: the file name as stored
};

// One node of a walked tree.
struct WalkNode {
  enum class Kind { Missing, Group, Dataset, Link, Error } kind = Kind::Missing;
  // Group: children in creation order (name order when the group does not track it).
  std::vector<std::string> names;
  std::vector<WalkNode> children;
  // Dataset: metadata, and its whole data when small (numbers as native bytes; strings).
  DatasetInfo info;
  enum class Data { None, Numeric, Strings } data = Data::None;
  std::vector<uint8_t> bytes;  // numbers, or packed elements (info.packed)
  std::vector<std::string> strings;
  std::vector<SideValue> side;  // packed elements' variable-length parts
  // Link: something that is not an object of this file ("external", "soft" when dangling,
  // "datatype" for a committed datatype, "cycle" for soft links that loop, "user-defined"), the
  // link's path, its target (a soft link's value; an external link's object path with the rest of
  // the path below it) and an external link's file name as stored.
  std::string linkType;
  std::string link, target, targetFile;
  // Error: why this node could not be read (its siblings still were).
  Failure error{"", ""};
};

struct WalkOptions {
  uint64_t inlineBytes = 0;  // numeric datasets up to this size come with their data
  uint64_t inlineTotal = 0;  // ... until this many bytes were inlined
  std::vector<std::string> skip;  // paths reported as damaged without being opened
  bool storageSizes = false;      // report each dataset's allocated bytes (lists, not reads)
};

enum class BytesLayout { Void, FixedString, Uint8 };

struct Op {
  enum class Kind {
    Walk, Lookup, List, CreateGroup, CreateDataset, CreateStrings, CreateBytes, CreateNull, Read, Move, Delete,
    Attrs, SetAttr, DeleteAttr, Reserve, Resolve, Entries, UpdateAttrs
  } kind = Kind::Lookup;
  std::string path, to, name;
  WalkOptions walk;
  DatasetSpec spec;
  bool hasData = false;
  ArrayRef array;  // CreateDataset data, Read target, CreateBytes bytes
  Hyperslab sel;
  std::vector<std::string> strings;  // CreateStrings; CreateDataset: variable-length strings of packed data
  std::vector<hsize_t> shape;
  BytesLayout layout = BytesLayout::Void;
  AttrValue attr;
  Attrs attrSets;                  // UpdateAttrs
  std::vector<std::string> names;  // UpdateAttrs: the attributes to delete
  uint64_t bytes = 0;  // Reserve
  bool stopIfFound = false;  // Resolve: end the batch here when anything is at (or above) the path
};

struct OpResult {
  WalkNode node;                   // Walk; Resolve: the link where resolution stopped
  std::vector<std::string> names;  // Lookup, Resolve: the kind of each prefix; List: the names
  std::vector<LinkEntry> entries;  // Entries
  Attrs attrs;                     // Attrs
};

// A batch that failed at op `index`: the ops before it ran, it and the ones after did not.
class BatchFailure : public Failure {
 public:
  BatchFailure(const Failure& f, size_t index) : Failure(f), index_(index) {}
  size_t index() const { return index_; }

 private:
  size_t index_;
};

// Runs the ops in order; throws BatchFailure at the first that fails.
std::vector<OpResult> runOps(File& file, const std::vector<Op>& ops);

}  // namespace ckpt
