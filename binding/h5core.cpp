#include "h5core.h"

#include <algorithm>

namespace ckpt {

namespace {

std::mutex g_hdf5Mutex;
thread_local bool t_holding = false;
thread_local bool t_silenced = false;

std::mutex g_deferredMutex;
std::vector<hid_t> g_deferred;

std::string messageOf(hid_t msgId) {
  if (msgId < 0) return {};
  char buf[256];
  H5E_type_t type;
  ssize_t n = H5Eget_msg(msgId, &type, buf, sizeof buf);
  if (n <= 0) return {};
  return std::string(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
}

herr_t walkCallback(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<ErrorStack*>(data);
  std::string text;
  if (err->func_name) text += std::string(err->func_name) + "(): ";
  text += err->desc ? err->desc : "(no description)";
  std::string major = messageOf(err->maj_num);
  std::string minor = messageOf(err->min_num);
  if (!major.empty() || !minor.empty()) text += " (" + major + ": " + minor + ")";
  out->messages.push_back(std::move(text));
  out->minors.push_back(err->min_num);
  return 0;
}

void closeDeferredLocked() {
  std::vector<hid_t> ids;
  {
    std::lock_guard<std::mutex> g(g_deferredMutex);
    ids.swap(g_deferred);
  }
  for (hid_t fid : ids) {
    ssize_t n = H5Fget_obj_count(fid, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE |
                                          H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
    if (n > 0) {
      std::vector<hid_t> objs(static_cast<size_t>(n));
      ssize_t got = H5Fget_obj_ids(fid, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE |
                                            H5F_OBJ_ATTR | H5F_OBJ_LOCAL,
                                   objs.size(), objs.data());
      for (ssize_t i = 0; i < got; ++i) H5Oclose(objs[static_cast<size_t>(i)]);
    }
    H5Fclose(fid);
  }
  if (!ids.empty()) H5Eclear2(H5E_DEFAULT);
}

}  // namespace

bool ErrorStack::hasMinor(hid_t minor) const {
  return std::find(minors.begin(), minors.end(), minor) != minors.end();
}

std::string ErrorStack::innermost() const {
  if (messages.empty()) return {};
  return messages.back();
}

ErrorStack takeErrorStack() {
  ErrorStack out;
  hid_t stack = H5Eget_current_stack();  // copies and clears the thread's current stack
  if (stack >= 0) {
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, walkCallback, &out);
    H5Eclose_stack(stack);
  }
  H5Eclear2(H5E_DEFAULT);
  return out;
}

void clearErrorStack() { H5Eclear2(H5E_DEFAULT); }

void throwHdf5(const std::string& what, const char* code) {
  ErrorStack st = takeErrorStack();
  std::string msg = what;
  if (!st.messages.empty()) {
    // The deepest entry says what actually went wrong; strip its "func(): " prefix.
    std::string inner = st.innermost();
    size_t p = inner.find("(): ");
    if (p != std::string::npos) inner = inner.substr(p + 4);
    msg += ": " + inner;
  }
  throw Failure(code, msg, std::move(st.messages));
}

void Hid::reset() noexcept {
  if (id_ >= 0 && closer_) {
    if (closer_(id_) < 0) H5Eclear2(H5E_DEFAULT);
  }
  id_ = H5I_INVALID_HID;
}

namespace {
Hid own(hid_t id, Hid::Closer closer, const char* what) {
  if (id < 0) throwHdf5(what);
  return Hid(id, closer);
}
}  // namespace

Hid ownFile(hid_t id, const char* what) { return own(id, H5Fclose, what); }
Hid ownGroup(hid_t id, const char* what) { return own(id, H5Gclose, what); }
Hid ownDataset(hid_t id, const char* what) { return own(id, H5Dclose, what); }
Hid ownSpace(hid_t id, const char* what) { return own(id, H5Sclose, what); }
Hid ownType(hid_t id, const char* what) { return own(id, H5Tclose, what); }
Hid ownPlist(hid_t id, const char* what) { return own(id, H5Pclose, what); }
Hid ownAttr(hid_t id, const char* what) { return own(id, H5Aclose, what); }
Hid ownObject(hid_t id, const char* what) { return own(id, H5Oclose, what); }

void silenceThisThread() {
  if (!t_silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    t_silenced = true;
  }
}

Lock::Lock() : guard_(g_hdf5Mutex) {
  t_holding = true;
  silenceThisThread();
  closeDeferredLocked();
  H5Eclear2(H5E_DEFAULT);
}

Lock::~Lock() { t_holding = false; }

bool Lock::heldByThisThread() { return t_holding; }

bool Lock::tryRun(void (*fn)(void*), void* arg) {
  if (t_holding) return false;
  std::unique_lock<std::mutex> g(g_hdf5Mutex, std::try_to_lock);
  if (!g.owns_lock()) return false;
  t_holding = true;
  silenceThisThread();
  closeDeferredLocked();
  fn(arg);
  H5Eclear2(H5E_DEFAULT);
  t_holding = false;
  return true;
}

void deferClose(hid_t fileId) {
  std::lock_guard<std::mutex> g(g_deferredMutex);
  g_deferred.push_back(fileId);
}

std::string versionMismatch() {
  unsigned maj = 0, min = 0, rel = 0;
  if (H5get_libversion(&maj, &min, &rel) < 0) return "H5get_libversion failed";
  if (maj != H5_VERS_MAJOR || min != H5_VERS_MINOR || rel != H5_VERS_RELEASE) {
    return "the addon was compiled against HDF5 " + std::to_string(H5_VERS_MAJOR) + "." +
           std::to_string(H5_VERS_MINOR) + "." + std::to_string(H5_VERS_RELEASE) +
           " but the loaded libhdf5 is " + std::to_string(maj) + "." + std::to_string(min) + "." +
           std::to_string(rel);
  }
  return {};
}

}  // namespace ckpt
