#include "h5core.h"

#include <algorithm>
#include <atomic>
#include <limits>

namespace ckpt {

namespace {

std::mutex g_hdf5Mutex;
thread_local bool t_holding = false;
thread_local bool t_silenced = false;

std::mutex g_deferredMutex;
std::vector<hid_t> g_deferred;
std::atomic<bool> g_hasDeferred{false};  // lets the common case skip the mutex

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
  out->minors.push_back(std::move(minor));
  return 0;
}

void silenceThisThread() {
  if (!t_silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    t_silenced = true;
  }
}

}  // namespace

[[noreturn]] void typeError(const std::string& msg) { throw Failure("TypeError", msg); }
[[noreturn]] void rangeError(const std::string& msg) { throw Failure("RangeError", msg); }
[[noreturn]] void closedError(const std::string& what) { throw Failure("ERR_CLOSED", what + " is closed"); }
[[noreturn]] void tooLarge(const std::string& msg) { throw Failure("ERR_TOO_LARGE", msg); }

std::string ErrorStack::innermost() const {
  if (messages.empty()) return {};
  std::string inner = messages.back();
  size_t p = inner.find("(): ");
  return p == std::string::npos ? inner : inner.substr(p + 4);
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

void throwHdf5(const std::string& what) {
  ErrorStack st = takeErrorStack();
  std::string msg = what;
  std::string inner = st.innermost();
  if (!inner.empty()) msg += ": " + inner;
  throw Failure("ERR_HDF5", msg, std::move(st.messages), std::move(st.minors));
}

uint64_t mulChecked(uint64_t a, uint64_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) rangeError(std::string(what) + ": the size does not fit 64 bits");
  return a * b;
}

uint64_t productChecked(const std::vector<hsize_t>& dims, const char* what, size_t from) {
  uint64_t n = 1;
  for (size_t i = from; i < dims.size(); ++i) n = mulChecked(n, dims[i], what);
  return n;
}

void Hid::reset() noexcept {
  if (id_ >= 0) {
    if (!closer_) closeAnyId(id_);
    else if (closer_(id_) < 0) H5Eclear2(H5E_DEFAULT);
  }
  id_ = H5I_INVALID_HID;
}

Hid own(hid_t id, const char* what) {
  if (id < 0) throwHdf5(what);
  return Hid(id);
}

Hid ownSpace(hid_t id, const char* what) {
  if (id < 0) throwHdf5(what);
  return Hid(id, H5Sclose);
}

Hid ownType(hid_t id, const char* what) {
  if (id < 0) throwHdf5(what);
  return Hid(id, H5Tclose);
}

Hid ownPlist(hid_t id, const char* what) {
  if (id < 0) throwHdf5(what);
  return Hid(id, H5Pclose);
}

void closeAnyId(hid_t id) noexcept {
  herr_t rc = 0;
  switch (H5Iget_type(id)) {
    case H5I_FILE: {
      // Close what is still open in the file first, so H5Fclose really closes it.
      const unsigned kinds = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
      ssize_t n = H5Fget_obj_count(id, kinds);
      if (n > 0) {
        std::vector<hid_t> ids(static_cast<size_t>(n));
        ssize_t got = H5Fget_obj_ids(id, kinds, ids.size(), ids.data());
        for (ssize_t i = 0; i < got; ++i) closeAnyId(ids[static_cast<size_t>(i)]);
      }
      rc = H5Fclose(id);
      break;
    }
    case H5I_GROUP:
    case H5I_DATASET:
    case H5I_DATATYPE:
      // A committed or transient datatype: H5Tclose handles both; groups and datasets via H5Oclose.
      rc = H5Iget_type(id) == H5I_DATATYPE ? H5Tclose(id) : H5Oclose(id);
      break;
    case H5I_ATTR: rc = H5Aclose(id); break;
    case H5I_DATASPACE: rc = H5Sclose(id); break;
    case H5I_GENPROP_LST: rc = H5Pclose(id); break;
    case H5I_ERROR_STACK: rc = H5Eclose_stack(id); break;
    default: rc = H5Idec_ref(id) < 0 ? -1 : 0; break;
  }
  if (rc < 0) H5Eclear2(H5E_DEFAULT);
}

Lock::Lock() : guard_(g_hdf5Mutex) {
  t_holding = true;
  silenceThisThread();
  closeDeferred();
}

Lock::~Lock() { t_holding = false; }

bool Lock::heldByThisThread() { return t_holding; }

bool Lock::tryRun(void (*fn)(void*), void* arg) {
  if (t_holding) return false;
  std::unique_lock<std::mutex> g(g_hdf5Mutex, std::try_to_lock);
  if (!g.owns_lock()) return false;
  t_holding = true;
  silenceThisThread();
  closeDeferred();
  fn(arg);
  t_holding = false;
  return true;
}

void deferClose(hid_t id) {
  std::lock_guard<std::mutex> g(g_deferredMutex);
  g_deferred.push_back(id);
  g_hasDeferred = true;
}

void releaseId(hid_t id) noexcept {
  if (id < 0) return;
  if (Lock::heldByThisThread()) {
    closeAnyId(id);
    return;
  }
  if (!Lock::tryRun([](void* p) { closeAnyId(*static_cast<hid_t*>(p)); }, &id)) deferClose(id);
}

void closeDeferred() {
  if (!g_hasDeferred.exchange(false)) return;
  std::vector<hid_t> ids;
  {
    std::lock_guard<std::mutex> g(g_deferredMutex);
    ids.swap(g_deferred);
  }
  // Objects before files, so each file closes for real.
  std::stable_partition(ids.begin(), ids.end(), [](hid_t id) { return H5Iget_type(id) != H5I_FILE; });
  for (hid_t id : ids) closeAnyId(id);
  if (!ids.empty()) H5Eclear2(H5E_DEFAULT);
}

std::string libraryVersion() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

std::vector<FilterSupport> builtinFilters() {
  static const std::pair<const char*, H5Z_filter_t> known[] = {
      {"gzip", H5Z_FILTER_DEFLATE}, {"szip", H5Z_FILTER_SZIP},         {"shuffle", H5Z_FILTER_SHUFFLE},
      {"fletcher32", H5Z_FILTER_FLETCHER32}, {"scaleoffset", H5Z_FILTER_SCALEOFFSET}, {"nbit", H5Z_FILTER_NBIT},
      {"zstd", 32015}, {"lz4", 32004},  // registered by the addon (h5filters.h)
  };
  std::vector<FilterSupport> out;
  for (const auto& [name, id] : known) {
    FilterSupport f{name};
    unsigned config = 0;
    // A filter compiled out is "not available" (0); szip built without its encoder decodes only.
    if (H5Zfilter_avail(id) > 0 && H5Zget_filter_info(id, &config) >= 0) {
      f.decode = (config & H5Z_FILTER_CONFIG_DECODE_ENABLED) != 0;
      f.encode = (config & H5Z_FILTER_CONFIG_ENCODE_ENABLED) != 0;
    }
    out.push_back(f);
  }
  H5Eclear2(H5E_DEFAULT);
  return out;
}

std::string versionMismatch() {
  unsigned maj = 0, min = 0, rel = 0;
  if (H5get_libversion(&maj, &min, &rel) < 0) return "H5get_libversion failed";
  if (maj != H5_VERS_MAJOR || min != H5_VERS_MINOR || rel != H5_VERS_RELEASE) {
    return "the addon was compiled against HDF5 " + std::to_string(H5_VERS_MAJOR) + "." +
           std::to_string(H5_VERS_MINOR) + "." + std::to_string(H5_VERS_RELEASE) +
           " but the loaded libhdf5 is " + libraryVersion();
  }
  return {};
}

// ----------------------------------------------------------------------------------------------

namespace h5 {

#if H5_VERSION_GE(1, 12, 0)
using OInfo = H5O_info2_t;
static void fillId(const OInfo& oi, ObjectId* id) {
  id->fileno = oi.fileno;
  static_assert(sizeof(oi.token) <= sizeof(id->token), "token size");
  std::memcpy(id->token, &oi.token, sizeof(oi.token));
}
#else
using OInfo = H5O_info_t;
static void fillId(const OInfo& oi, ObjectId* id) {
  id->fileno = oi.fileno;
  static_assert(sizeof(oi.addr) <= sizeof(id->token), "address size");
  std::memcpy(id->token, &oi.addr, sizeof(oi.addr));
}
#endif

bool objectInfoByName(hid_t loc, const char* name, ObjectInfo* out, bool quiet) {
  OInfo oi;
#if H5_VERSION_GE(1, 12, 0)
  herr_t rc = H5Oget_info_by_name3(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT);
#else
  herr_t rc = H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT);
#endif
  if (rc < 0) {
    if (quiet) {
      clearErrorStack();
      return false;
    }
    throwHdf5(std::string("cannot inspect ") + name);
  }
  out->type = oi.type;
  fillId(oi, &out->id);
  return true;
}

ObjectInfo objectInfo(hid_t obj) {
  OInfo oi;
#if H5_VERSION_GE(1, 12, 0)
  check(H5Oget_info3(obj, &oi, H5O_INFO_BASIC), "H5Oget_info3");
#else
  check(H5Oget_info2(obj, &oi, H5O_INFO_BASIC), "H5Oget_info2");
#endif
  ObjectInfo out;
  out.type = oi.type;
  fillId(oi, &out.id);
  return out;
}

H5L_type_t linkType(hid_t loc, const char* name) {
#if H5_VERSION_GE(1, 12, 0)
  H5L_info2_t li;
  check(H5Lget_info2(loc, name, &li, H5P_DEFAULT), "H5Lget_info2");
#else
  H5L_info_t li;
  check(H5Lget_info(loc, name, &li, H5P_DEFAULT), "H5Lget_info");
#endif
  return li.type;
}

namespace {
#if H5_VERSION_GE(1, 12, 0)
herr_t collectLink(hid_t, const char* name, const H5L_info2_t*, void* data) {
#else
herr_t collectLink(hid_t, const char* name, const H5L_info_t*, void* data) {
#endif
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

herr_t iterateLinks(hid_t group, H5_index_t index, std::vector<std::string>* names) {
  hsize_t idx = 0;
#if H5_VERSION_GE(1, 12, 0)
  return H5Literate2(group, index, H5_ITER_INC, &idx, collectLink, names);
#else
  return H5Literate(group, index, H5_ITER_INC, &idx, collectLink, names);
#endif
}
}  // namespace

std::vector<std::string> linkNames(hid_t group) {
  Hid gcpl = own(H5Gget_create_plist(group), "H5Gget_create_plist");
  unsigned flags = 0;
  check(H5Pget_link_creation_order(gcpl.get(), &flags), "H5Pget_link_creation_order");
  std::vector<std::string> names;
  if ((flags & H5P_CRT_ORDER_TRACKED) && iterateLinks(group, H5_INDEX_CRT_ORDER, &names) >= 0) return names;
  clearErrorStack();
  names.clear();
  check(iterateLinks(group, H5_INDEX_NAME, &names), "cannot list the group");
  return names;
}

void reclaim(hid_t memType, hid_t space, void* buf) noexcept {
#if H5_VERSION_GE(1, 12, 0)
  herr_t rc = H5Treclaim(memType, space, H5P_DEFAULT, buf);
#else
  herr_t rc = H5Dvlen_reclaim(memType, space, H5P_DEFAULT, buf);
#endif
  if (rc < 0) clearErrorStack();
}

bool isHdf5(const char* path) {
#if H5_VERSION_GE(1, 12, 0)
  htri_t r = H5Fis_accessible(path, H5P_DEFAULT);
#else
  htri_t r = H5Fis_hdf5(path);
#endif
  if (r < 0) clearErrorStack();
  return r > 0;
}

}  // namespace h5
}  // namespace ckpt
