// The lowest layer of the binding: the process-wide HDF5 lock, RAII ids, HDF5's error stack turned
// into C++ exceptions, checked size arithmetic, and one checked wrapper per HDF5 call whose API
// differs between 1.10 and 1.14 (H5_VERSION_GE guards, HighFive's style). No Node-API here: all of
// it runs on the HDF5 executor thread as well as on JS threads.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#ifndef H5_VERSION_GE
#error "hdf5.h without H5_VERSION_GE (HDF5 < 1.8.7) is not supported"
#endif
#if !H5_VERSION_GE(1, 10, 3)
#error "checkpointer needs HDF5 >= 1.10.3 (H5Dwrite_chunk / H5Dread_chunk)"
#endif

namespace ckpt {

// A failure reported to JS. `code` is a CheckpointerError code (ERR_HDF5, ERR_CLOSED, ...), or
// "TypeError"/"RangeError" for argument mistakes. For HDF5 failures `stack` holds HDF5's messages
// (outermost call first) and `minors` the minor error message of each entry ("Unable to lock
// file", "File accessibility", ...), which lib/native.ts uses to classify open failures.
// An OS-level failure (ERR_IO) carries the errno name and what it was about ("file" or
// "directory"), so TypeScript can tell a missing directory from a missing file.
class Failure : public std::exception {
 public:
  Failure(std::string code, std::string message, std::vector<std::string> stack = {},
          std::vector<std::string> minors = {})
      : code_(std::move(code)), message_(std::move(message)), stack_(std::move(stack)), minors_(std::move(minors)) {}
  static Failure system(std::string message, std::string errnoName, std::string subject) {
    Failure f("ERR_IO", std::move(message));
    f.errno_ = std::move(errnoName);
    f.subject_ = std::move(subject);
    return f;
  }
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<std::string>& stack() const { return stack_; }
  const std::vector<std::string>& minors() const { return minors_; }
  const std::string& errnoName() const { return errno_; }
  const std::string& subject() const { return subject_; }

 private:
  std::string code_;
  std::string message_;
  std::vector<std::string> stack_;
  std::vector<std::string> minors_;
  std::string errno_;
  std::string subject_;
};

[[noreturn]] void typeError(const std::string& msg);
[[noreturn]] void rangeError(const std::string& msg);
[[noreturn]] void closedError(const std::string& what);
// A value too large for one allocation or one JS array (ERR_TOO_LARGE).
[[noreturn]] void tooLarge(const std::string& msg);

// The calling thread's HDF5 error stack, taken and cleared.
struct ErrorStack {
  std::vector<std::string> messages;  // "H5Dopen2(): unable to open dataset (Dataset: Not found)"
  std::vector<std::string> minors;    // minor message of each entry, same order
  std::string innermost() const;      // the deepest entry's description, "func(): " stripped
};
ErrorStack takeErrorStack();
void clearErrorStack();

// Throws Failure(ERR_HDF5, "<what>: <innermost HDF5 message>") after a failed HDF5 call.
[[noreturn]] void throwHdf5(const std::string& what);

inline herr_t check(herr_t rc, const char* what) {
  if (rc < 0) throwHdf5(what);
  return rc;
}
inline htri_t checkTri(htri_t rc, const char* what) {
  if (rc < 0) throwHdf5(what);
  return rc;
}

// Sizes: every element count and byte count is computed with these, so a product that would wrap
// 64 bits is a RangeError instead of a short allocation that HDF5 then overruns.
uint64_t mulChecked(uint64_t a, uint64_t b, const char* what);
uint64_t productChecked(const std::vector<hsize_t>& dims, const char* what, size_t from = 0);
// Largest byte count the binding allocates in one piece (and so the largest value it reads whole).
constexpr uint64_t kMaxAllocation = uint64_t(1) << 40;

// Owner of one HDF5 identifier; closes it with the close call of its kind (given when known, which
// saves a lookup on hot paths; else found with H5Iget_type).
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  explicit Hid(hid_t id, Closer closer = nullptr) : id_(id), closer_(closer) {}
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  Hid(Hid&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      closer_ = o.closer_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  ~Hid() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() noexcept;
  hid_t release() {
    hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// A negative id => throwHdf5(what); else its owner.
Hid own(hid_t id, const char* what);
inline Hid own(hid_t id, const std::string& what) { return own(id, what.c_str()); }
// The same for ids of a known kind.
Hid ownSpace(hid_t id, const char* what);
Hid ownType(hid_t id, const char* what);
Hid ownPlist(hid_t id, const char* what);
inline Hid ownSpace(hid_t id, const std::string& what) { return ownSpace(id, what.c_str()); }
inline Hid ownType(hid_t id, const std::string& what) { return ownType(id, what.c_str()); }
inline Hid ownPlist(hid_t id, const std::string& what) { return ownPlist(id, what.c_str()); }

// Closes any id by its kind (files after their open objects). Never throws.
void closeAnyId(hid_t id) noexcept;

// The process-wide HDF5 lock. Every HDF5 call is made while holding it (HDF5 serialises calls
// anyway; the lock also guards the binding's own state). Taking it silences HDF5's automatic error
// printing on this thread (a per-thread setting in thread-safe builds), clears stale errors and
// closes ids that GC finalizers handed over while the lock was busy.
class Lock {
 public:
  Lock();
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  // Takes the lock only if it is free (false if another thread holds it, or this one does).
  static bool tryRun(void (*fn)(void*), void* arg);
  static bool heldByThisThread();

 private:
  std::unique_lock<std::mutex> guard_;
};

// Hands an id to the next holder of the lock (GC finalizers must not block on the lock).
void deferClose(hid_t id);
// Closes an id whose owner went away: now when this thread holds the lock or can take it at once,
// else by the lock's next holder. Never blocks.
void releaseId(hid_t id) noexcept;
// Closes the ids handed over so far; the caller holds the lock.
void closeDeferred();

// Library version check: empty when headers and library agree.
std::string versionMismatch();
std::string libraryVersion();

// What the loaded libhdf5 can do with one of its built-in filters (the caller holds the lock).
struct FilterSupport {
  const char* name;  // h5py's name: "gzip", "szip", "shuffle", "fletcher32", "scaleoffset", "nbit"
  bool decode = false;
  bool encode = false;
};
std::vector<FilterSupport> builtinFilters();

// ----------------------------------------------------------------------------------------------
// Checked wrappers of the HDF5 calls whose signatures differ between 1.10 and 1.12+.
namespace h5 {

// An object's identity inside its file: the address (1.10) or token (1.12+) plus the file number.
struct ObjectId {
  unsigned long fileno = 0;
  unsigned char token[16] = {0};
  bool operator==(const ObjectId& o) const {
    return fileno == o.fileno && std::memcmp(token, o.token, sizeof token) == 0;
  }
};

struct ObjectInfo {
  H5O_type_t type = H5O_TYPE_UNKNOWN;
  ObjectId id;
};

// H5Oget_info_by_name3 (1.12+) / H5Oget_info_by_name2 (1.10); basic fields only.
// Returns false (error stack cleared) when the name does not resolve to an object (e.g. a dangling
// soft link) and `quiet` is set; throws otherwise.
bool objectInfoByName(hid_t loc, const char* name, ObjectInfo* out, bool quiet);
// H5Oget_info3 / H5Oget_info2 of an open object.
ObjectInfo objectInfo(hid_t obj);

// H5Lget_info2 (1.12+) / H5Lget_info (1.10): the link's type.
H5L_type_t linkType(hid_t loc, const char* name);

// Names of a group's links in creation order when the group tracks it, else in name order
// (H5Literate2 / H5Literate).
std::vector<std::string> linkNames(hid_t group);

// H5Treclaim (1.12+) / H5Dvlen_reclaim (1.10): frees what HDF5 allocated for variable-length data.
void reclaim(hid_t memType, hid_t space, void* buf) noexcept;

// H5Fis_accessible (1.12+) / H5Fis_hdf5 (1.10): whether the file has an HDF5 signature.
bool isHdf5(const char* path);

}  // namespace h5
}  // namespace ckpt
