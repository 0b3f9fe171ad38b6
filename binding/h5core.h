// Low-level HDF5 plumbing shared by the binding: the process-wide lock, an RAII holder for hid_t,
// checked calls that turn a negative return into a C++ exception carrying HDF5's error stack.
// Nothing here touches Node-API, so it can run on libuv pool threads.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ckpt {

// A failure reported to JS as an Error with `code` (ERR_HDF5, ERR_CHECKPOINT_CORRUPT, ...),
// `hdf5Stack` (HDF5's messages, outermost call first) and, for OS-level failures, `errno` (e.g. "ENOENT").
class Failure : public std::exception {
 public:
  Failure(std::string code, std::string message, std::vector<std::string> stack = {},
          std::string errnoName = {})
      : code_(std::move(code)), message_(std::move(message)), stack_(std::move(stack)),
        errno_(std::move(errnoName)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<std::string>& stack() const { return stack_; }
  const std::string& errnoName() const { return errno_; }

 private:
  std::string code_;
  std::string message_;
  std::vector<std::string> stack_;
  std::string errno_;
};

// The HDF5 error stack of the calling thread, taken and cleared.
struct ErrorStack {
  std::vector<std::string> messages;  // "H5Dopen2(): unable to open dataset (Dataset: ...)"
  std::vector<hid_t> minors;          // minor error numbers, same order
  bool hasMinor(hid_t minor) const;
  std::string innermost() const;      // description of the deepest entry, or ""
};
ErrorStack takeErrorStack();
void clearErrorStack();

// Throws Failure(code, "<what>: <innermost HDF5 message>", stack) after a failed HDF5 call.
[[noreturn]] void throwHdf5(const std::string& what, const char* code = "ERR_HDF5");

// Checked calls: negative return => throwHdf5(what).
inline herr_t check(herr_t rc, const char* what) {
  if (rc < 0) throwHdf5(what);
  return rc;
}
inline htri_t checkTri(htri_t rc, const char* what) {
  if (rc < 0) throwHdf5(what);
  return rc;
}

// Owner of one HDF5 identifier; closes it with the close function of its kind.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
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

// Checked constructors: a negative id => throwHdf5(what).
Hid ownFile(hid_t id, const char* what);
Hid ownGroup(hid_t id, const char* what);
Hid ownDataset(hid_t id, const char* what);
Hid ownSpace(hid_t id, const char* what);
Hid ownType(hid_t id, const char* what);
Hid ownPlist(hid_t id, const char* what);
Hid ownAttr(hid_t id, const char* what);
Hid ownObject(hid_t id, const char* what);  // H5Oopen result

// The process-wide HDF5 lock. Taking it also silences HDF5's automatic error printing on this
// thread (a per-thread setting in thread-safe builds), clears stale errors, and closes identifiers
// whose owners were garbage-collected while the lock was busy.
class Lock {
 public:
  Lock();
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  // Tries to take the lock without blocking (false if another thread holds it, or this one does).
  static bool tryRun(void (*fn)(void*), void* arg);
  static bool heldByThisThread();

 private:
  std::unique_lock<std::mutex> guard_;
};

// Queues a file id to be closed by the next holder of the lock (used by GC finalizers).
void deferClose(hid_t fileId);

// Silences HDF5's error printing on the calling thread (idempotent, cheap).
void silenceThisThread();

// Library version check: empty string when the headers and library agree.
std::string versionMismatch();

}  // namespace ckpt
