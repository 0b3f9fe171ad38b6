// The Node-API surface (declared for TypeScript in lib/native.ts): H5File, H5Dataset and H5Group,
// thin JS classes over the native objects of h5objects.h. Every method exists twice, from one
// definition: `xSync` runs its task on the calling thread under the HDF5 lock; `x` queues the same
// task on the HDF5 executor and returns a Promise. Arguments are converted on the JS thread, results
// are built there; the task in between touches no JS.
#include <napi.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "convert.h"
#include "executor.h"
#include "h5core.h"
#include "h5filters.h"
#include "h5objects.h"
#include "h5ops.h"
#include "h5verify.h"

namespace ckpt {
namespace {

// Type tags: only externals made here construct wrappers, and a method refuses a `this` of
// another class (napi_unwrap alone would hand it the wrong C++ type).
constexpr napi_type_tag kConstructTag = {0x7a1c3f0e5b2d4c81ULL, 0x93e6a4d2c1b0f857ULL};
constexpr napi_type_tag kFileTag = {0x1f2e3d4c5b6a7988ULL, 0x0a1b2c3d4e5f6071ULL};
constexpr napi_type_tag kDatasetTag = {0x2e3d4c5b6a798817ULL, 0x1b2c3d4e5f607182ULL};
constexpr napi_type_tag kGroupTag = {0x3d4c5b6a79881726ULL, 0x2c3d4e5f60718293ULL};

void checkTag(const Napi::CallbackInfo& info, const napi_type_tag& tag, const char* cls) {
  bool ok = false;
  napi_value self = info.This();
  if (!info.This().IsObject() || napi_check_object_type_tag(info.Env(), self, &tag, &ok) != napi_ok || !ok)
    throw Napi::TypeError::New(info.Env(), std::string("this is not an ") + cls);
}

// A read-only property whose getter checks `this` first (node-addon-api's accessors unwrap it
// before any code of ours runs, and fail with a plain Error on a foreign object).
template <class W, Napi::Value (W::*Get)(const Napi::CallbackInfo&)>
void defineGetter(Napi::Env env, Napi::Function ctor, const char* name, const napi_type_tag& tag, const char* cls) {
  struct Data {
    const napi_type_tag* tag;
    const char* cls;
  };
  auto* data = new Data{&tag, cls};  // lives as long as the class
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  proto.DefineProperty(Napi::PropertyDescriptor::Accessor(env, proto, name, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto* d = static_cast<Data*>(info.Data());
    checkTag(info, *d->tag, d->cls);
    return (W::Unwrap(info.This().As<Napi::Object>())->*Get)(info);
  }, napi_configurable, data));
}

// ---------------------------------------------------------------------------------------------
// Calls: one definition of what a method does, run now (sync twin) or on the executor (async twin).

// `fn` runs under the HDF5 lock and touches no JS; `res` builds the result on the JS thread.
template <class Fn, class Res>
struct Call {
  std::shared_ptr<File> file;     // the file the call works on (ERR_BUSY accounting, messages)
  std::string where;              // the path for messages when there is no file yet (open)
  std::vector<Napi::Value> keep;  // JS values whose memory the call uses
  Fn fn;
  Res res;
};

template <class Fn, class Res>
Call<Fn, Res> call(std::shared_ptr<File> file, Fn fn, Res res) {
  return Call<Fn, Res>{std::move(file), {}, {}, std::move(fn), std::move(res)};
}

// Runs `fn`, turning every C++ exception into a Failure (the index of a failed batch op in *failedOp).
template <class Fn>
void runGuarded(Fn& fn, long* failedOp) {
  try {
    fn();
  } catch (const BatchFailure& f) {
    *failedOp = static_cast<long>(f.index());
    throw Failure(f);
  } catch (const Failure&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Failure("ERR_TOO_LARGE", "out of memory in the HDF5 binding");
  } catch (const std::exception& e) {
    throw Failure("ERR_HDF5", std::string("HDF5 binding failure: ") + e.what());
  }
}

template <class C>
std::string fileName(const C& c) {
  return c.file ? c.file->path() : c.where;
}

// The sync twin: on this thread, under the lock, no allocation of its own.
template <class Fn, class Res>
Napi::Value runNow(Napi::Env env, Call<Fn, Res>& c) {
  if (c.file && c.file->pendingJobs > 0)
    throw jsError(env, Failure("ERR_BUSY", "a synchronous call on " + c.file->path() + " while " + std::to_string(c.file->pendingJobs) +
                                               " asynchronous call(s) on it are pending; await them first"), fileName(c));
  long failedOp = -1;
  try {
    Lock lock;
    runGuarded(c.fn, &failedOp);
  } catch (const Failure& f) {
    throw jsError(env, f, fileName(c), failedOp);
  }
  return c.res(env);
}

// The async twin: the call becomes a job on the executor; its JS values stay referenced until it settles.
template <class Fn, class Res>
class CallJob : public Job {
 public:
  CallJob(Call<Fn, Res>&& c, napi_deferred deferred) : call_(std::move(c)), deferred_(deferred) {}

  void run() override {
    try {
      runGuarded(call_.fn, &failedOp_);
    } catch (const Failure& f) {
      failure.emplace(f);
    }
  }

  void settle(napi_env raw) override {
    Napi::Env env(raw);
    Napi::HandleScope scope(env);
    if (call_.file) call_.file->pendingJobs--;
    napi_value outcome;
    bool ok = !failure.has_value();
    try {
      outcome = ok ? call_.res(env) : jsError(env, *failure, fileName(call_), failedOp_).Value();
    } catch (const Napi::Error& e) {
      ok = false;
      outcome = e.Value();
    }
    if (ok) napi_resolve_deferred(raw, deferred_, outcome);
    else napi_reject_deferred(raw, deferred_, outcome);
    for (napi_ref r : refs) napi_delete_reference(raw, r);
    refs.clear();
  }

  std::vector<napi_ref> refs;

 private:
  Call<Fn, Res> call_;
  napi_deferred deferred_;
  long failedOp_ = -1;
};

template <class Fn, class Res>
Napi::Value runLater(Napi::Env env, Call<Fn, Res>&& c) {
  EnvData* d = env.GetInstanceData<EnvData>();
  napi_deferred deferred;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
  std::vector<napi_ref> refs;
  for (Napi::Value v : c.keep) {
    napi_ref r;
    napi_create_reference(env, v, 1, &r);
    refs.push_back(r);
  }
  c.keep.clear();
  if (c.file) c.file->pendingJobs++;
  auto* job = new CallJob<Fn, Res>(std::move(c), deferred);
  job->refs = std::move(refs);
  job->env = d->state;
  executor::submit(job);
  return Napi::Value(env, promise);
}

// Builds the call (argument conversion may throw) and runs it now or later. In the async twin an
// argument mistake rejects the promise instead of throwing.
template <bool Async, class Make>
Napi::Value dispatch(const Napi::CallbackInfo& info, Make make) {
  Napi::Env env = info.Env();
  if constexpr (!Async) {
    auto c = make();
    return runNow(env, c);
  } else {
    try {
      return runLater(env, make());
    } catch (const Napi::Error& e) {
      auto deferred = Napi::Promise::Deferred::New(env);
      deferred.Reject(e.Value());
      return deferred.Promise();
    }
  }
}

constexpr auto undefinedResult = [](Napi::Env env) { return env.Undefined(); };

// ---------------------------------------------------------------------------------------------
// Wrappers

template <class Native>
Napi::Object wrapNew(Napi::Env env, Napi::FunctionReference& ctor, std::shared_ptr<Native> obj) {
  auto* holder = new std::shared_ptr<Native>(std::move(obj));
  Napi::External<std::shared_ptr<Native>> ext = Napi::External<std::shared_ptr<Native>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<Native>* h) { delete h; });
  napi_type_tag_object(env, ext, &kConstructTag);
  return ctor.New({ext});
}

template <class Native>
std::shared_ptr<Native> fromExternal(const Napi::CallbackInfo& info, const char* cls) {
  bool ok = false;
  if (info.Length() == 1 && info[0].IsExternal())
    napi_check_object_type_tag(info.Env(), info[0], &kConstructTag, &ok);
  if (!ok) throw Napi::TypeError::New(info.Env(), std::string(cls) + " objects are made by the addon (H5File.open / openDataset)");
  return *info[0].As<Napi::External<std::shared_ptr<Native>>>().Data();
}

// Attribute methods shared by datasets and groups (both are Child objects).
template <bool Async>
Napi::Value attrsOf(const Napi::CallbackInfo& info, const std::shared_ptr<Child>& c) {
  return dispatch<Async>(info, [&] {
    auto out = std::make_shared<Attrs>();
    return call(c->file().shared_from_this(), [c, out] { *out = readAttrs(c->id(), c->path()); },
                [out](Napi::Env env) { return fromAttrs(env, *out); });
  });
}

template <bool Async>
Napi::Value setAttrOf(const Napi::CallbackInfo& info, const std::shared_ptr<Child>& c) {
  return dispatch<Async>(info, [&] {
    std::string name = argString(info, 0, "name");
    AttrValue v = toAttrValue(info.Env(), info[1]);
    return call(c->file().shared_from_this(), [c, name, v] {
      c->file().requireWritable("set an attribute on " + c->path());
      setAttr(c->id(), name, v, c->path());
    }, undefinedResult);
  });
}

template <bool Async>
Napi::Value deleteAttrOf(const Napi::CallbackInfo& info, const std::shared_ptr<Child>& c) {
  return dispatch<Async>(info, [&] {
    std::string name = argString(info, 0, "name");
    return call(c->file().shared_from_this(), [c, name] {
      c->file().requireWritable("delete an attribute of " + c->path());
      deleteAttr(c->id(), name, c->path());
    }, undefinedResult);
  });
}

template <bool Async>
Napi::Value closeChild(const Napi::CallbackInfo& info, const std::shared_ptr<Child>& c) {
  return dispatch<Async>(info, [&] { return call(c->file().shared_from_this(), [c] { c->close(); }, undefinedResult); });
}

class H5DatasetWrap : public Napi::ObjectWrap<H5DatasetWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    Napi::Function ctor = DefineClass(env, "H5Dataset", {
        InstanceMethod<&H5DatasetWrap::Read<false>>("readSync"),
        InstanceMethod<&H5DatasetWrap::Read<true>>("read"),
        InstanceMethod<&H5DatasetWrap::Write<false>>("writeSync"),
        InstanceMethod<&H5DatasetWrap::Write<true>>("write"),
        InstanceMethod<&H5DatasetWrap::Resize<false>>("resizeSync"),
        InstanceMethod<&H5DatasetWrap::Resize<true>>("resize"),
        InstanceMethod<&H5DatasetWrap::Extent<false>>("extentSync"),
        InstanceMethod<&H5DatasetWrap::Extent<true>>("extent"),
        InstanceMethod<&H5DatasetWrap::Attrs<false>>("attrsSync"),
        InstanceMethod<&H5DatasetWrap::Attrs<true>>("attrs"),
        InstanceMethod<&H5DatasetWrap::SetAttr<false>>("setAttrSync"),
        InstanceMethod<&H5DatasetWrap::SetAttr<true>>("setAttr"),
        InstanceMethod<&H5DatasetWrap::DeleteAttr<false>>("deleteAttrSync"),
        InstanceMethod<&H5DatasetWrap::DeleteAttr<true>>("deleteAttr"),
        InstanceMethod<&H5DatasetWrap::Close<false>>("closeSync"),
        InstanceMethod<&H5DatasetWrap::Close<true>>("close"),
    });
    defineGetter<H5DatasetWrap, &H5DatasetWrap::Path>(env, ctor, "path", kDatasetTag, "H5Dataset");
    defineGetter<H5DatasetWrap, &H5DatasetWrap::IsOpen>(env, ctor, "isOpen", kDatasetTag, "H5Dataset");
    return ctor;
  }

  explicit H5DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<H5DatasetWrap>(info) {
    ds_ = fromExternal<Dataset>(info, "H5Dataset");
    napi_type_tag_object(info.Env(), info.This(), &kDatasetTag);
    // A snapshot taken at open (the shape changes with resize; TypeScript tracks it).
    info.This().As<Napi::Object>().DefineProperty(
        Napi::PropertyDescriptor::Value("info", fromInfo(info.Env(), ds_->info()), napi_enumerable));
  }

 private:
  std::shared_ptr<Dataset> ds_;

  std::shared_ptr<File> file() const { return ds_->file().shared_from_this(); }

  // Getters (defineGetter has checked `this`).
  Napi::Value Path(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), ds_->path());
  }
  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), ds_->isOpen() && ds_->file().isOpen());
  }

  template <bool Async>
  Napi::Value Read(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return dispatch<Async>(info, [&] {
      ArrayRef out = toArray(info.Env(), info[0], "out", Async);
      Hyperslab sel = toHyperslab(info.Env(), info[1]);
      auto ds = ds_;
      auto c = call(file(), [ds, out, sel] { ds->read(out, sel); }, undefinedResult);
      c.keep.push_back(info[0]);
      return c;
    });
  }

  template <bool Async>
  Napi::Value Write(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return dispatch<Async>(info, [&] {
      ArrayRef data = toArray(info.Env(), info[0], "data", Async);
      Hyperslab sel = toHyperslab(info.Env(), info[1]);
      auto ds = ds_;
      auto c = call(file(), [ds, data, sel] { ds->write(data, sel); }, undefinedResult);
      c.keep.push_back(info[0]);
      return c;
    });
  }

  template <bool Async>
  Napi::Value Resize(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return dispatch<Async>(info, [&] {
      std::vector<hsize_t> shape = toShape(info.Env(), info[0], "shape");
      auto ds = ds_;
      return call(file(), [ds, shape] { ds->resize(shape); }, undefinedResult);
    });
  }

  template <bool Async>
  Napi::Value Extent(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return dispatch<Async>(info, [&] {
      auto ds = ds_;
      auto out = std::make_shared<std::vector<hsize_t>>();
      return call(file(), [ds, out] { *out = ds->extent(); }, [out](Napi::Env env) { return fromShape(env, *out); });
    });
  }

  template <bool Async>
  Napi::Value Attrs(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return attrsOf<Async>(info, ds_);
  }
  template <bool Async>
  Napi::Value SetAttr(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return setAttrOf<Async>(info, ds_);
  }
  template <bool Async>
  Napi::Value DeleteAttr(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return deleteAttrOf<Async>(info, ds_);
  }
  template <bool Async>
  Napi::Value Close(const Napi::CallbackInfo& info) {
    checkTag(info, kDatasetTag, "H5Dataset");
    return closeChild<Async>(info, ds_);
  }
};

class H5GroupWrap : public Napi::ObjectWrap<H5GroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    Napi::Function ctor = DefineClass(env, "H5Group", {
        InstanceMethod<&H5GroupWrap::Names<false>>("namesSync"),
        InstanceMethod<&H5GroupWrap::Names<true>>("names"),
        InstanceMethod<&H5GroupWrap::Attrs<false>>("attrsSync"),
        InstanceMethod<&H5GroupWrap::Attrs<true>>("attrs"),
        InstanceMethod<&H5GroupWrap::SetAttr<false>>("setAttrSync"),
        InstanceMethod<&H5GroupWrap::SetAttr<true>>("setAttr"),
        InstanceMethod<&H5GroupWrap::DeleteAttr<false>>("deleteAttrSync"),
        InstanceMethod<&H5GroupWrap::DeleteAttr<true>>("deleteAttr"),
        InstanceMethod<&H5GroupWrap::Close<false>>("closeSync"),
        InstanceMethod<&H5GroupWrap::Close<true>>("close"),
    });
    defineGetter<H5GroupWrap, &H5GroupWrap::Path>(env, ctor, "path", kGroupTag, "H5Group");
    defineGetter<H5GroupWrap, &H5GroupWrap::IsOpen>(env, ctor, "isOpen", kGroupTag, "H5Group");
    return ctor;
  }

  explicit H5GroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<H5GroupWrap>(info) {
    g_ = fromExternal<Group>(info, "H5Group");
    napi_type_tag_object(info.Env(), info.This(), &kGroupTag);
  }

 private:
  std::shared_ptr<Group> g_;

  // Getters (defineGetter has checked `this`).
  Napi::Value Path(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), g_->path());
  }
  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), g_->isOpen() && g_->file().isOpen());
  }
  template <bool Async>
  Napi::Value Names(const Napi::CallbackInfo& info) {
    checkTag(info, kGroupTag, "H5Group");
    return dispatch<Async>(info, [&] {
      auto g = g_;
      auto out = std::make_shared<std::vector<std::string>>();
      return call(g->file().shared_from_this(), [g, out] { *out = g->names(); },
                  [out](Napi::Env env) { return fromStrings(env, *out); });
    });
  }
  template <bool Async>
  Napi::Value Attrs(const Napi::CallbackInfo& info) {
    checkTag(info, kGroupTag, "H5Group");
    return attrsOf<Async>(info, g_);
  }
  template <bool Async>
  Napi::Value SetAttr(const Napi::CallbackInfo& info) {
    checkTag(info, kGroupTag, "H5Group");
    return setAttrOf<Async>(info, g_);
  }
  template <bool Async>
  Napi::Value DeleteAttr(const Napi::CallbackInfo& info) {
    checkTag(info, kGroupTag, "H5Group");
    return deleteAttrOf<Async>(info, g_);
  }
  template <bool Async>
  Napi::Value Close(const Napi::CallbackInfo& info) {
    checkTag(info, kGroupTag, "H5Group");
    return closeChild<Async>(info, g_);
  }
};

Napi::Object wrapDataset(Napi::Env env, std::shared_ptr<Dataset> ds) {
  return wrapNew(env, env.GetInstanceData<EnvData>()->datasetCtor, std::move(ds));
}

Napi::Object wrapGroup(Napi::Env env, std::shared_ptr<Group> g) {
  return wrapNew(env, env.GetInstanceData<EnvData>()->groupCtor, std::move(g));
}

Napi::Object wrapFile(Napi::Env env, std::shared_ptr<File> f) {
  EnvData* d = env.GetInstanceData<EnvData>();
  d->track(f);
  return wrapNew(env, d->fileCtor, std::move(f));
}

class H5FileWrap : public Napi::ObjectWrap<H5FileWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    Napi::Function ctor = DefineClass(env, "H5File", {
        StaticMethod<&H5FileWrap::Open<false>>("openSync"),
        StaticMethod<&H5FileWrap::Open<true>>("open"),
        StaticMethod<&H5FileWrap::IsHdf5>("isHDF5"),
        InstanceMethod<&H5FileWrap::Close<false>>("closeSync"),
        InstanceMethod<&H5FileWrap::Close<true>>("close"),
        InstanceMethod<&H5FileWrap::Flush<false>>("flushSync"),
        InstanceMethod<&H5FileWrap::Flush<true>>("flush"),
        InstanceMethod<&H5FileWrap::OpenObjectCount>("openObjectCount"),
        InstanceMethod<&H5FileWrap::Exec<false>>("execSync"),
        InstanceMethod<&H5FileWrap::Exec<true>>("exec"),
        InstanceMethod<&H5FileWrap::OpenDataset<false>>("openDatasetSync"),
        InstanceMethod<&H5FileWrap::OpenDataset<true>>("openDataset"),
        InstanceMethod<&H5FileWrap::OpenGroup<false>>("openGroupSync"),
        InstanceMethod<&H5FileWrap::OpenGroup<true>>("openGroup"),
    });
    defineGetter<H5FileWrap, &H5FileWrap::Path>(env, ctor, "path", kFileTag, "H5File");
    defineGetter<H5FileWrap, &H5FileWrap::IsOpen>(env, ctor, "isOpen", kFileTag, "H5File");
    defineGetter<H5FileWrap, &H5FileWrap::Writable>(env, ctor, "writable", kFileTag, "H5File");
    return ctor;
  }

  explicit H5FileWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<H5FileWrap>(info) {
    file_ = fromExternal<File>(info, "H5File");
    napi_type_tag_object(info.Env(), info.This(), &kFileTag);
  }

  // The last JS reference went away: a file still open is closed (or its id handed to the next
  // holder of the lock, so the finalizer never waits on it).
  ~H5FileWrap() override = default;

 private:
  std::shared_ptr<File> file_;

  template <bool Async>
  static Napi::Value Open(const Napi::CallbackInfo& info) {
    return dispatch<Async>(info, [&] {
      std::string path = argString(info, 0, "path");
      std::string mode = argString(info, 1, "mode");
      auto out = std::make_shared<std::shared_ptr<File>>();
      auto c = call(nullptr, [path, mode, out] { *out = File::open(path, mode); },
                    [out](Napi::Env env) -> Napi::Value { return wrapFile(env, *out); });
      c.where = path;
      return c;
    });
  }

  static Napi::Value IsHdf5(const Napi::CallbackInfo& info) {
    std::string path = argString(info, 0, "path");
    bool r = false;
    {
      Lock lock;
      r = h5::isHdf5(path.c_str());
    }
    return Napi::Boolean::New(info.Env(), r);
  }

  // Getters (defineGetter has checked `this`).
  Napi::Value Path(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), file_->path());
  }
  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), file_->isOpen());
  }
  Napi::Value Writable(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), file_->writable());
  }

  template <bool Async>
  Napi::Value Close(const Napi::CallbackInfo& info) {
    checkTag(info, kFileTag, "H5File");
    return dispatch<Async>(info, [&] {
      auto f = file_;
      return call(f, [f] { f->close(); }, undefinedResult);
    });
  }

  template <bool Async>
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    checkTag(info, kFileTag, "H5File");
    return dispatch<Async>(info, [&] {
      auto f = file_;
      return call(f, [f] { f->flush(); }, undefinedResult);
    });
  }

  Napi::Value OpenObjectCount(const Napi::CallbackInfo& info) {
    checkTag(info, kFileTag, "H5File");
    auto f = file_;
    auto n = std::make_shared<int>(0);
    auto c = call(f, [f, n] { *n = f->openObjectCount(); }, [n](Napi::Env env) { return Napi::Number::New(env, *n); });
    return runNow(info.Env(), c);
  }

  template <bool Async>
  Napi::Value Exec(const Napi::CallbackInfo& info) {
    checkTag(info, kFileTag, "H5File");
    return dispatch<Async>(info, [&] {
      auto f = file_;
      std::vector<Napi::Value> keep;
      auto ops = std::make_shared<std::vector<Op>>(toOps(info.Env(), info[0], &keep, Async));
      auto results = std::make_shared<std::vector<OpResult>>();
      auto c = call(f, [f, ops, results] { *results = runOps(*f, *ops); },
                    [f, ops, results](Napi::Env env) { return fromResults(env, *ops, *results, f->path()); });
      c.keep = std::move(keep);
      return c;
    });
  }

  template <bool Async>
  Napi::Value OpenDataset(const Napi::CallbackInfo& info) {
    checkTag(info, kFileTag, "H5File");
    return dispatch<Async>(info, [&] {
      auto f = file_;
      std::string p = argString(info, 0, "path");
      auto out = std::make_shared<std::shared_ptr<Dataset>>();
      return call(f, [f, p, out] { *out = f->openDataset(p); }, [out](Napi::Env env) -> Napi::Value { return wrapDataset(env, *out); });
    });
  }

  template <bool Async>
  Napi::Value OpenGroup(const Napi::CallbackInfo& info) {
    checkTag(info, kFileTag, "H5File");
    return dispatch<Async>(info, [&] {
      auto f = file_;
      std::string p = argString(info, 0, "path");
      auto out = std::make_shared<std::shared_ptr<Group>>();
      return call(f, [f, p, out] { *out = f->openGroup(p); }, [out](Napi::Env env) -> Napi::Value { return wrapGroup(env, *out); });
    });
  }
};

// ---------------------------------------------------------------------------------------------
// Environment lifecycle

// The environment is going away (process exit, worker.terminate()): no job of it may run or
// settle after this, and its files are closed so what they hold is on disk.
void cleanupEnv(void* arg) {
  auto* d = static_cast<EnvData*>(arg);
  d->state->close();
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
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass needs a constructor");
  info.Env().GetInstanceData<EnvData>()->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// verifyFileSync(path, {skip, progressFd, fileSize, maxUnwrittenChunks}): h5verify.h. Only for the
// verifier's child process (lib/backends/hdf5-verify.ts): it writes to `progressFd` itself.
Napi::Value VerifyFileSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = argString(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "verifyFileSync needs an options object");
  Napi::Object o = info[1].As<Napi::Object>();
  VerifyOptions opts;
  Napi::Value skip = o.Get("skip");
  if (skip.IsArray()) {
    Napi::Array a = skip.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) opts.skip.push_back(a.Get(i).ToString().Utf8Value());
  }
  opts.progressFd = o.Get("progressFd").ToNumber().Int32Value();
  opts.fileSize = static_cast<unsigned long long>(o.Get("fileSize").ToNumber().DoubleValue());
  Napi::Value maxUnwritten = o.Get("maxUnwrittenChunks");
  Napi::Value stallMs = o.Get("stallMs");
  if (stallMs.IsNumber()) opts.stallMs = stallMs.As<Napi::Number>().Uint32Value();
  if (maxUnwritten.IsNumber()) opts.maxUnwrittenChunks = static_cast<unsigned long long>(maxUnwritten.As<Napi::Number>().DoubleValue());
  long failedOp = -1;
  try {
    Lock lock;
    auto fn = [&] { verifyFile(path, opts); };
    runGuarded(fn, &failedOp);
  } catch (const Failure& f) {
    throw jsError(env, f, path);
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  executor::installExitGuard();  // first: it must precede HDF5's initialisation
  std::string mismatch = versionMismatch();
  if (!mismatch.empty())
    throw Napi::Error::New(env, "libhdf5 version mismatch: " + mismatch + "; rebuild the addon against the installed libhdf5");
  { Lock lock; }  // silences HDF5's error printing on this thread
  auto* data = new EnvData();
  data->state = std::make_shared<EnvState>(env);
  env.SetInstanceData<EnvData>(data);  // deleted when the environment is torn down
  NAPI_THROW_IF_FAILED(env, createCompletionChannel(env, data->state), exports);
  // Registered after the completion channel, so it runs before the channel's own cleanup.
  napi_add_env_cleanup_hook(env, cleanupEnv, data);

  Napi::Function file = H5FileWrap::Define(env);
  Napi::Function dataset = H5DatasetWrap::Define(env);
  Napi::Function group = H5GroupWrap::Define(env);
  data->fileCtor = Napi::Persistent(file);
  data->datasetCtor = Napi::Persistent(dataset);
  data->groupCtor = Napi::Persistent(group);
  exports.Set("H5File", file);
  exports.Set("H5Dataset", dataset);
  exports.Set("H5Group", group);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("verifyFileSync", Napi::Function::New(env, VerifyFileSync, "verifyFileSync"));
  exports.Set("hdf5Version", Napi::String::New(env, libraryVersion()));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("sourceHash", CHECKPOINTER_SOURCE_HASH);  // see CMakeLists.txt
  // What hdf5Info() reports: the built-in filters this libhdf5 can read and write, and whether it
  // loads filter plugins.
  Napi::Object filters = Napi::Object::New(env);
  unsigned pluginState = 0;
  {
    Lock lock;
#ifdef CHECKPOINTER_STATIC_HDF5
    // Filter plugins (hdf5plugin's blosc, lzf, ...) call H5* through the process's global symbols
    // or a libhdf5.so of their own, never this addon's private copy: they would run against another
    // HDF5. Not loading them makes such a dataset a clean "filter not available" error instead.
    H5PLset_loading_state(0);
#endif
    registerCodecFilters();
    if (H5PLget_loading_state(&pluginState) < 0) pluginState = 0;
    for (const FilterSupport& f : builtinFilters()) {
      Napi::Object support = Napi::Object::New(env);
      support.Set("read", f.decode);
      support.Set("write", f.encode);
      filters.Set(f.name, support);
    }
  }
  exports.Set("filters", filters);
  exports.Set("filterPlugins", pluginState != 0);
#ifdef CHECKPOINTER_STATIC_HDF5
  exports.Set("hdf5Build", "bundled");
#else
  exports.Set("hdf5Build", "system");
#endif
  return exports;
}

}  // namespace
}  // namespace ckpt

static Napi::Object InitCheckpointer(Napi::Env env, Napi::Object exports) { return ckpt::Init(env, exports); }

NODE_API_MODULE(checkpointer_native, InitCheckpointer)
