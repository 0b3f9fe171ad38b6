// Node-API surface of the HDF5 binding: the H5File class (sync methods and Promise-returning
// async ones), argument conversion, error conversion, the one-job-in-flight queue, and teardown.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "h5core.h"
#include "h5file.h"

namespace ckpt {
namespace {

class Job;

// Per-environment state (the main thread and each worker thread have their own).
struct AddonData {
  Napi::FunctionReference fileCtor;
  std::deque<Job*> queue;  // async jobs waiting for their turn
  bool busy = false;       // a job is on the libuv pool
  bool tornDown = false;   // the environment is being destroyed; the last one out frees this
  std::vector<std::weak_ptr<File>> files;

  void track(const std::shared_ptr<File>& f) {
    std::vector<std::weak_ptr<File>> alive;
    for (auto& w : files)
      if (!w.expired()) alive.push_back(w);
    alive.push_back(f);
    files.swap(alive);
  }
};

// ---------------------------------------------------------------------------------------------
// Errors

Napi::Error toJsError(Napi::Env env, const Failure& f) {
  if (f.code() == "TypeError") return Napi::TypeError::New(env, f.message());
  if (f.code() == "RangeError") return Napi::RangeError::New(env, f.message());
  Napi::Error e = Napi::Error::New(env, f.message());
  e.Set("code", Napi::String::New(env, f.code()));
  Napi::Array stack = Napi::Array::New(env, f.stack().size());
  for (size_t i = 0; i < f.stack().size(); ++i) stack.Set(static_cast<uint32_t>(i), Napi::String::New(env, f.stack()[i]));
  e.Set("hdf5Stack", stack);
  if (!f.errnoName().empty()) e.Set("sysCode", Napi::String::New(env, f.errnoName()));
  return e;
}

// Runs `fn` under the HDF5 lock; failures become JS exceptions after the lock is released.
template <class Fn>
auto locked(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    Lock lock;
    return fn();
  } catch (const Failure& f) {
    throw toJsError(env, f);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "out of memory in the HDF5 binding");
  }
}

// ---------------------------------------------------------------------------------------------
// Arguments

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

uint64_t toIndex(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " entries must be numbers");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || static_cast<double>(static_cast<uint64_t>(d)) != d)
    throw Napi::RangeError::New(env, std::string(name) + " entries must be non-negative integers");
  return static_cast<uint64_t>(d);
}

std::vector<uint64_t> toShape(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 32) throw Napi::RangeError::New(env, std::string(name) + " has more than 32 dimensions");
  std::vector<uint64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(toIndex(env, a.Get(i), name));
  return out;
}

Selection toSelection(Napi::Env env, Napi::Value v) {
  Selection s;
  if (v.IsUndefined() || v.IsNull()) return s;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "selection must be {start, count}");
  Napi::Object o = v.As<Napi::Object>();
  s.all = false;
  s.start = toShape(env, o.Get("start"), "selection.start");
  s.count = toShape(env, o.Get("count"), "selection.count");
  return s;
}

struct ArrayArg {
  ArrayKind kind;
  void* data = nullptr;
  size_t bytes = 0;
};

ArrayArg toArray(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be a TypedArray");
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  napi_status st = napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset);
  NAPI_THROW_IF_FAILED(env, st, ArrayArg{});
  ArrayArg a;
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
    default: throw Napi::TypeError::New(env, std::string(name) + ": unsupported TypedArray type");
  }
  a.data = data;
  a.bytes = length * arrayKindSize(a.kind);
  if (a.bytes > 0 && a.data == nullptr) throw Napi::TypeError::New(env, std::string(name) + " is detached");
  return a;
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

Napi::Value newTypedArray(Napi::Env env, DType t, const std::vector<uint8_t>& bytes, uint64_t length) {
  size_t n = static_cast<size_t>(length);
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
    case DType::String: return env.Null();
  }
  if (!bytes.empty()) {
    uint8_t* dst = static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
    std::memcpy(dst, bytes.data(), std::min(bytes.size(), out.ByteLength()));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Async jobs: one in flight per environment, the rest wait in AddonData::queue.

void pump(AddonData* d);

class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, AddonData* data)
      : Napi::AsyncWorker(env, "checkpointer.hdf5"), data_(data), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Submit() {
    Napi::Promise p = deferred_.Promise();
    data_->queue.push_back(this);
    pump(data_);
    return p;
  }

 protected:
  virtual void Run() = 0;                                   // pool thread, lock held
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }  // main thread
  virtual void Finished() {}                                // main thread, success or not

  void Execute() override {
    try {
      Lock lock;
      Run();
    } catch (const Failure& f) {
      failure_.emplace(f);
    } catch (const std::exception& e) {
      failure_.emplace("ERR_HDF5", std::string("HDF5 binding failure: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Finished();
    if (failure_) {
      deferred_.Reject(toJsError(env, *failure_).Value());
    } else {
      try {
        deferred_.Resolve(Result(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
    }
  }

  void OnError(const Napi::Error& e) override {
    Finished();
    deferred_.Reject(e.Value());
  }

  void OnWorkComplete(Napi::Env env, napi_status status) override {
    AddonData* d = data_;
    d->busy = false;
    // A terminating environment (worker.terminate(), teardown) cannot run JS: settling would
    // throw outside any JS frame. Then free the job, and the data when cleanupEnv already ran.
    napi_handle_scope probe = nullptr;
    bool alive = !d->tornDown && napi_open_handle_scope(env, &probe) == napi_ok;
    if (probe) napi_close_handle_scope(env, probe);
    if (!alive) {
      delete this;
      if (d->tornDown) delete d;
      return;
    }
    try {
      Napi::AsyncWorker::OnWorkComplete(env, status);  // settles, then deletes this
    } catch (...) {
    }
    pump(d);
  }

 private:
  AddonData* data_;
  Napi::Promise::Deferred deferred_;
  std::optional<Failure> failure_;
};

void pump(AddonData* d) {
  while (!d->busy && !d->queue.empty() && !d->tornDown) {
    Job* next = d->queue.front();
    d->queue.pop_front();
    d->busy = true;
    try {
      next->Queue();
    } catch (...) {
      // Only when the environment is shutting down; the job cannot run or settle.
      d->busy = false;
      delete next;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// H5File

// Methods stay writable and configurable so lib/native.ts can wrap them (error conversion).
constexpr napi_property_attributes kPatchable = static_cast<napi_property_attributes>(napi_writable | napi_configurable);

class H5File : public Napi::ObjectWrap<H5File> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data) {
    Napi::Function ctor = DefineClass(
        env, "H5File",
        {
            StaticMethod<&H5File::OpenSync>("openSync", kPatchable),
            StaticMethod<&H5File::OpenAsync>("open", kPatchable),
            StaticMethod<&H5File::IsHdf5>("isHDF5", kPatchable),
            InstanceAccessor<&H5File::IsOpen>("isOpen"),
            InstanceAccessor<&H5File::Path>("path"),
            InstanceAccessor<&H5File::Writable>("writable"),
            InstanceMethod<&H5File::CloseSync>("closeSync", kPatchable),
            InstanceMethod<&H5File::CloseAsync>("close", kPatchable),
            InstanceMethod<&H5File::FlushSync>("flushSync", kPatchable),
            InstanceMethod<&H5File::OpenObjectCount>("openObjectCount", kPatchable),
            InstanceMethod<&H5File::Kind>("kind", kPatchable),
            InstanceMethod<&H5File::List>("list", kPatchable),
            InstanceMethod<&H5File::CreateGroup>("createGroup", kPatchable),
            InstanceMethod<&H5File::Delete>("delete", kPatchable),
            InstanceMethod<&H5File::Info>("info", kPatchable),
            InstanceMethod<&H5File::CreateDataset>("createDataset", kPatchable),
            InstanceMethod<&H5File::CreateNull>("createNull", kPatchable),
            InstanceMethod<&H5File::Resize>("resize", kPatchable),
            InstanceMethod<&H5File::WriteSync>("writeSync", kPatchable),
            InstanceMethod<&H5File::WriteAsync>("write", kPatchable),
            InstanceMethod<&H5File::ReadSync>("readSync", kPatchable),
            InstanceMethod<&H5File::ReadAsync>("read", kPatchable),
            InstanceMethod<&H5File::WriteStrings>("writeStrings", kPatchable),
            InstanceMethod<&H5File::ReadStrings>("readStrings", kPatchable),
            InstanceMethod<&H5File::WriteBytes>("writeBytes", kPatchable),
            InstanceMethod<&H5File::ReadBytes>("readBytes", kPatchable),
            InstanceMethod<&H5File::SetAttr>("setAttr", kPatchable),
            InstanceMethod<&H5File::GetAttr>("getAttr", kPatchable),
            InstanceMethod<&H5File::AttrNames>("attrNames", kPatchable),
            InstanceMethod<&H5File::DeleteAttr>("deleteAttr", kPatchable),
        },
        data);
    data->fileCtor = Napi::Persistent(ctor);
    exports.Set("H5File", ctor);
  }

  H5File(const Napi::CallbackInfo& info) : Napi::ObjectWrap<H5File>(info) {
    // Only Wrap() below constructs usable instances; `new H5File()` from JS is refused.
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "use H5File.openSync(path, mode) or H5File.open(path, mode)");
    file_ = *info[0].As<Napi::External<std::shared_ptr<File>>>().Data();
  }

  ~H5File() override {
    // GC finalizer: close if nobody holds the HDF5 lock, else hand the id to the next holder.
    if (file_ && file_->isOpen()) {
      File* f = file_.get();
      bool done = Lock::tryRun([](void* p) {
        try {
          static_cast<File*>(p)->close();
        } catch (...) {
        }
      }, f);
      if (!done) f->abandon();
    }
  }

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<File> file) {
    AddonData* data = env.GetInstanceData<AddonData>();
    data->track(file);
    std::shared_ptr<File> holder = file;
    Napi::External<std::shared_ptr<File>> ext = Napi::External<std::shared_ptr<File>>::New(env, &holder);
    return data->fileCtor.New({ext});
  }

 private:
  friend class FileJob;
  std::shared_ptr<File> file_;
  int pending_ = 0;  // async jobs queued or running on this handle

  // -- open / close ---------------------------------------------------------------------------

  static Napi::Value OpenSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = argString(info, 0, "path");
    std::string mode = argString(info, 1, "mode");
    std::shared_ptr<File> f = locked(env, [&] { return File::open(path, mode); });
    return Wrap(env, f);
  }

  static Napi::Value OpenAsync(const Napi::CallbackInfo& info);

  static Napi::Value IsHdf5(const Napi::CallbackInfo& info) {
    std::string path = argString(info, 0, "path");
    htri_t r = locked(info.Env(), [&] {
      htri_t v = H5Fis_hdf5(path.c_str());
      clearErrorStack();
      return v;
    });
    return Napi::Boolean::New(info.Env(), r > 0);
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), file_->isOpen()); }
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), file_->path()); }
  Napi::Value Writable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), file_->writable()); }

  Napi::Value CloseSync(const Napi::CallbackInfo& info) {
    if (pending_ > 0)
      throw toJsError(info.Env(), Failure("ERR_BUSY", "closeSync() while " + std::to_string(pending_) +
                                                          " asynchronous operation(s) are pending on " + file_->path() +
                                                          "; await close() instead"));
    locked(info.Env(), [&] { file_->close(); });
    return info.Env().Undefined();
  }
  Napi::Value CloseAsync(const Napi::CallbackInfo& info);

  Napi::Value FlushSync(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { file_->flush(); });
    return info.Env().Undefined();
  }

  Napi::Value OpenObjectCount(const Napi::CallbackInfo& info) {
    int n = locked(info.Env(), [&] { return file_->openObjectCount(); });
    return Napi::Number::New(info.Env(), n);
  }

  // -- links ----------------------------------------------------------------------------------

  Napi::Value Kind(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    std::string k = locked(info.Env(), [&] { return file_->kind(p); });
    if (k.empty()) return info.Env().Null();
    return Napi::String::New(info.Env(), k);
  }

  Napi::Value List(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    std::vector<std::string> names = locked(info.Env(), [&] { return file_->list(p); });
    return stringArray(info.Env(), names);
  }

  Napi::Value CreateGroup(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    locked(info.Env(), [&] { file_->createGroup(p); });
    return info.Env().Undefined();
  }

  Napi::Value Delete(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    locked(info.Env(), [&] { file_->remove(p); });
    return info.Env().Undefined();
  }

  // -- datasets -------------------------------------------------------------------------------

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    DatasetInfo di = locked(env, [&] { return file_->info(p); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("dtype", dtypeName(di.dtype));
    Napi::Array shape = Napi::Array::New(env, di.shape.size());
    Napi::Array maxshape = Napi::Array::New(env, di.maxshape.size());
    for (uint32_t i = 0; i < di.shape.size(); ++i) {
      shape.Set(i, Napi::Number::New(env, static_cast<double>(di.shape[i])));
      maxshape.Set(i, di.maxshape[i] < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(di.maxshape[i])));
    }
    o.Set("shape", shape);
    o.Set("maxshape", maxshape);
    if (di.chunked) {
      Napi::Array chunks = Napi::Array::New(env, di.chunks.size());
      for (uint32_t i = 0; i < di.chunks.size(); ++i) chunks.Set(i, Napi::Number::New(env, static_cast<double>(di.chunks[i])));
      o.Set("chunks", chunks);
    } else {
      o.Set("chunks", env.Null());
    }
    o.Set("isNull", di.isNull);
    if (di.dtype == DType::String) {
      Napi::Object st = Napi::Object::New(env);
      st.Set("variable", di.str.variable);
      st.Set("length", Napi::Number::New(env, static_cast<double>(di.str.length)));
      st.Set("utf8", di.str.utf8);
      o.Set("stringType", st);
    }
    Napi::Object filters = Napi::Object::New(env);
    filters.Set("compression", di.gzip ? Napi::String::New(env, "gzip") : env.Null());
    filters.Set("level", di.gzip && di.level >= 0 ? Napi::Number::New(env, di.level) : env.Null());
    filters.Set("shuffle", di.shuffle);
    o.Set("filters", filters);
    return o;
  }

  Napi::Value CreateDataset(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
    Napi::Object o = info[1].As<Napi::Object>();
    CreateOptions c;
    Napi::Value dt = o.Get("dtype");
    if (!dt.IsString() || !parseDType(dt.As<Napi::String>().Utf8Value(), &c.dtype))
      throw Napi::TypeError::New(env, "options.dtype must be a numeric dtype name (bool, int8, ..., complex128)");
    c.shape = toShape(env, o.Get("shape"), "options.shape");
    Napi::Value ms = o.Get("maxshape");
    if (!ms.IsUndefined() && !ms.IsNull()) {
      if (!ms.IsArray()) throw Napi::TypeError::New(env, "options.maxshape must be an array");
      Napi::Array a = ms.As<Napi::Array>();
      c.hasMaxshape = true;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value v = a.Get(i);
        c.maxshape.push_back(v.IsNull() ? -1 : static_cast<int64_t>(toIndex(env, v, "options.maxshape")));
      }
    }
    Napi::Value ch = o.Get("chunks");
    if (!ch.IsUndefined() && !ch.IsNull()) {
      c.hasChunks = true;
      c.chunks = toShape(env, ch, "options.chunks");
    }
    Napi::Value comp = o.Get("compression");
    if (!comp.IsUndefined() && !comp.IsNull()) {
      if (!comp.IsString() || comp.As<Napi::String>().Utf8Value() != "gzip")
        throw Napi::TypeError::New(env, "options.compression must be 'gzip' or null");
      c.gzip = true;
    }
    Napi::Value lvl = o.Get("compressionLevel");
    if (!lvl.IsUndefined() && !lvl.IsNull()) c.level = static_cast<int>(toIndex(env, lvl, "options.compressionLevel"));
    Napi::Value sh = o.Get("shuffle");
    c.shuffle = sh.IsBoolean() && sh.As<Napi::Boolean>().Value();
    Napi::Value fill = o.Get("fillValue");
    if (fill.IsNumber()) {
      c.hasFill = true;
      c.fill = fill.As<Napi::Number>().DoubleValue();
    } else if (fill.IsBoolean()) {
      c.hasFill = true;
      c.fill = fill.As<Napi::Boolean>().Value() ? 1 : 0;
    } else if (fill.IsBigInt()) {
      c.hasFill = true;
      c.fillIsInt64 = true;
      bool lossless = false;
      if (c.dtype == DType::Uint64) c.fillUint64 = fill.As<Napi::BigInt>().Uint64Value(&lossless);
      else c.fillInt64 = fill.As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless || (c.dtype != DType::Int64 && c.dtype != DType::Uint64))
        throw Napi::RangeError::New(env, "a bigint fillValue needs an int64/uint64 dataset and must fit it");
    } else if (!fill.IsUndefined() && !fill.IsNull()) {
      throw Napi::TypeError::New(env, "options.fillValue must be a number, boolean or bigint");
    }
    locked(env, [&] { file_->createDataset(p, c); });
    return env.Undefined();
  }

  Napi::Value CreateNull(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    locked(info.Env(), [&] { file_->createNull(p); });
    return info.Env().Undefined();
  }

  Napi::Value Resize(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "shape is required");
    std::vector<uint64_t> shape = toShape(info.Env(), info[1], "shape");
    locked(info.Env(), [&] { file_->resize(p, shape); });
    return info.Env().Undefined();
  }

  Napi::Value WriteSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    ArrayArg a = toArray(env, info[1], "data");
    Selection sel = toSelection(env, info[2]);
    locked(env, [&] { file_->write(p, a.data, a.bytes, a.kind, sel); });
    return env.Undefined();
  }

  Napi::Value ReadSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    ArrayArg a = toArray(env, info[1], "out");
    Selection sel = toSelection(env, info[2]);
    locked(env, [&] { file_->read(p, a.data, a.bytes, a.kind, sel); });
    return env.Undefined();
  }

  Napi::Value WriteAsync(const Napi::CallbackInfo& info);
  Napi::Value ReadAsync(const Napi::CallbackInfo& info);

  // -- strings and bytes ----------------------------------------------------------------------

  static Napi::Array stringArray(Napi::Env env, const std::vector<std::string>& v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, Napi::String::New(env, v[i]));
    return a;
  }

  static std::vector<std::string> toStrings(Napi::Env env, Napi::Value v, const char* name) {
    if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<std::string> out;
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value s = a.Get(i);
      if (!s.IsString()) throw Napi::TypeError::New(env, std::string(name) + " must hold only strings");
      out.push_back(s.As<Napi::String>().Utf8Value());
    }
    return out;
  }

  Napi::Value WriteStrings(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    std::vector<std::string> strs = toStrings(env, info[1], "strings");
    std::vector<uint64_t> shape;
    if (info.Length() > 2 && !info[2].IsUndefined()) shape = toShape(env, info[2], "shape");
    else shape.push_back(strs.size());
    locked(env, [&] { file_->writeStrings(p, strs, shape); });
    return env.Undefined();
  }

  Napi::Value ReadStrings(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    std::vector<std::string> v = locked(info.Env(), [&] { return file_->readStrings(p); });
    return stringArray(info.Env(), v);
  }

  Napi::Value WriteBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    ArrayArg a = toArray(env, info[1], "bytes");
    if (a.kind != ArrayKind::Uint8) throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
    BytesLayout layout = BytesLayout::Void;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      std::string l = argString(info, 2, "layout");
      if (l == "void") layout = BytesLayout::Void;
      else if (l == "S") layout = BytesLayout::FixedString;
      else if (l == "uint8") layout = BytesLayout::Uint8;
      else throw Napi::TypeError::New(env, "layout must be 'void', 'S' or 'uint8'");
    }
    locked(env, [&] { file_->writeBytes(p, static_cast<const uint8_t*>(a.data), a.bytes, layout); });
    return env.Undefined();
  }

  Napi::Value ReadBytes(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    std::vector<uint8_t> b = locked(info.Env(), [&] { return file_->readBytes(p); });
    return newTypedArray(info.Env(), DType::Uint8, b, b.size());
  }

  // -- attributes -----------------------------------------------------------------------------

  Napi::Value SetAttr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    std::string name = argString(info, 1, "name");
    Napi::Value v = info.Length() > 2 ? info[2] : env.Undefined();
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
        if (!lossless) throw Napi::RangeError::New(env, "bigint attribute does not fit 64 bits");
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
    } else if (v.IsTypedArray()) {
      ArrayArg arr = toArray(env, v, "value");
      a.kind = AttrValue::Kind::Array;
      a.dtype = kindDType(arr.kind);
      a.length = arr.bytes / arrayKindSize(arr.kind);
      a.bytes.assign(static_cast<uint8_t*>(arr.data), static_cast<uint8_t*>(arr.data) + arr.bytes);
    } else {
      throw Napi::TypeError::New(env, "attribute value must be a number, bigint, boolean, string, string[] or TypedArray");
    }
    locked(env, [&] { file_->setAttr(p, name, a); });
    return env.Undefined();
  }

  Napi::Value GetAttr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string p = argString(info, 0, "path");
    std::string name = argString(info, 1, "name");
    AttrValue a = locked(env, [&] { return file_->getAttr(p, name); });
    switch (a.kind) {
      case AttrValue::Kind::Null: return env.Null();
      case AttrValue::Kind::Number: return Napi::Number::New(env, a.number);
      case AttrValue::Kind::Int64: return Napi::BigInt::New(env, a.i64);
      case AttrValue::Kind::Uint64: return Napi::BigInt::New(env, a.u64);
      case AttrValue::Kind::Bool: return Napi::Boolean::New(env, a.boolean);
      case AttrValue::Kind::String: return Napi::String::New(env, a.str);
      case AttrValue::Kind::Strings: return stringArray(env, a.strs);
      case AttrValue::Kind::Array: return newTypedArray(env, a.dtype, a.bytes, a.length);
    }
    return env.Null();
  }

  Napi::Value AttrNames(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    std::vector<std::string> v = locked(info.Env(), [&] { return file_->attrNames(p); });
    return stringArray(info.Env(), v);
  }

  Napi::Value DeleteAttr(const Napi::CallbackInfo& info) {
    std::string p = argString(info, 0, "path");
    std::string name = argString(info, 1, "name");
    locked(info.Env(), [&] { file_->deleteAttr(p, name); });
    return info.Env().Undefined();
  }
};

// ---------------------------------------------------------------------------------------------
// Async jobs

class OpenJob : public Job {
 public:
  OpenJob(Napi::Env env, AddonData* d, std::string path, std::string mode)
      : Job(env, d), path_(std::move(path)), mode_(std::move(mode)) {}

 protected:
  void Run() override { file_ = File::open(path_, mode_); }
  Napi::Value Result(Napi::Env env) override { return H5File::Wrap(env, file_); }
  void Finished() override {
    // An open that succeeded but whose result can no longer be delivered would leak; Result()
    // runs right after this on success, so nothing to do here.
  }

 private:
  std::string path_, mode_;
  std::shared_ptr<File> file_;
};

// A job on an open handle: keeps the H5File (and any TypedArray) alive until it settles.
class FileJob : public Job {
 public:
  FileJob(Napi::Env env, AddonData* d, H5File* h) : Job(env, d), handle_(h), file_(h->file_) {
    self_ = Napi::Persistent(h->Value());
    h->pending_++;
  }

 protected:
  void Finished() override {
    handle_->pending_--;
    self_.Reset();
    array_.Reset();
  }
  void keepArray(Napi::Value v) { array_ = Napi::Persistent(v.As<Napi::Object>()); }

  H5File* handle_;
  std::shared_ptr<File> file_;

 private:
  Napi::ObjectReference self_;
  Napi::ObjectReference array_;
};

class CloseJob : public FileJob {
 public:
  using FileJob::FileJob;

 protected:
  void Run() override { file_->close(); }
};

class IoJob : public FileJob {
 public:
  IoJob(Napi::Env env, AddonData* d, H5File* h, bool write, std::string path, Napi::Value array, ArrayArg a, Selection sel)
      : FileJob(env, d, h), write_(write), path_(std::move(path)), a_(a), sel_(std::move(sel)) {
    keepArray(array);
  }

 protected:
  void Run() override {
    if (write_) file_->write(path_, a_.data, a_.bytes, a_.kind, sel_);
    else file_->read(path_, a_.data, a_.bytes, a_.kind, sel_);
  }

 private:
  bool write_;
  std::string path_;
  ArrayArg a_;
  Selection sel_;
};

Napi::Value H5File::OpenAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = argString(info, 0, "path");
  std::string mode = argString(info, 1, "mode");
  return (new OpenJob(env, env.GetInstanceData<AddonData>(), path, mode))->Submit();
}

Napi::Value H5File::CloseAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return (new CloseJob(env, env.GetInstanceData<AddonData>(), this))->Submit();
}

Napi::Value H5File::WriteAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string p = argString(info, 0, "path");
  ArrayArg a = toArray(env, info[1], "data");
  Selection sel = toSelection(env, info[2]);
  return (new IoJob(env, env.GetInstanceData<AddonData>(), this, true, p, info[1], a, sel))->Submit();
}

Napi::Value H5File::ReadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string p = argString(info, 0, "path");
  ArrayArg a = toArray(env, info[1], "out");
  Selection sel = toSelection(env, info[2]);
  return (new IoJob(env, env.GetInstanceData<AddonData>(), this, false, p, info[1], a, sel))->Submit();
}

// ---------------------------------------------------------------------------------------------
// Environment lifecycle

void cleanupEnv(void* arg) {
  auto* d = static_cast<AddonData*>(arg);
  d->tornDown = true;
  // Jobs that never started: drop them (their promises can no longer settle).
  while (!d->queue.empty()) {
    Job* j = d->queue.front();
    d->queue.pop_front();
    delete j;
  }
  Lock lock;
  for (auto& w : d->files) {
    if (auto f = w.lock()) {
      try {
        f->close();
      } catch (...) {
      }
    }
  }
  d->files.clear();
  // A job still on the pool frees `d` when it completes (Job::OnWorkComplete).
  if (!d->busy) delete d;
}

// The environment's instance data is freed by cleanupEnv (or the last job), not by Node-API.
void keepAddonData(Napi::Env, AddonData*) {}

std::string libraryVersion() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  std::string mismatch = versionMismatch();
  if (!mismatch.empty())
    throw Napi::Error::New(env, "libhdf5 version mismatch: " + mismatch +
                                    "; rebuild the addon against the installed libhdf5 (npm run build:native)");
  { Lock lock; }  // silences HDF5's error printing on the main thread
  auto* data = new AddonData();
  env.SetInstanceData<AddonData, keepAddonData>(data);
  H5File::Init(env, exports, data);
  exports.Set("hdf5Version", Napi::String::New(env, libraryVersion()));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  napi_add_env_cleanup_hook(env, cleanupEnv, data);
  return exports;
}

}  // namespace
}  // namespace ckpt

static Napi::Object InitCheckpointer(Napi::Env env, Napi::Object exports) { return ckpt::Init(env, exports); }

NODE_API_MODULE(checkpointer_native, InitCheckpointer)
