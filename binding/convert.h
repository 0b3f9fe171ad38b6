// Conversions between JS values and the binding's C++ structures, on the JS thread. Argument
// mistakes are TypeError/RangeError (lib/native.ts validates user input first; these checks keep
// the process safe whatever reaches the addon). Results are built only here, never off-thread.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include <memory>

#include "executor.h"
#include "h5core.h"
#include "h5ops.h"

namespace ckpt {

// The instance data of one environment (main thread or worker).
struct EnvData {
  std::shared_ptr<EnvState> state;
  Napi::FunctionReference errorClass;  // CheckpointerError, from setErrorClass
  Napi::FunctionReference fileCtor, datasetCtor, groupCtor;
  std::vector<std::weak_ptr<File>> files;  // closed by the environment's cleanup hook

  void track(const std::shared_ptr<File>& f);
};

// The JS error for a failure: CheckpointerError (the class handed to the addon by setErrorClass)
// with `code`, `file`, `hdf5Stack`, `hdf5Minors` (HDF5's minor messages, innermost last), and for
// OS-level failures `sysCode` and `subject`; `opIndex` for a failed batch. TypeError/RangeError
// stay JS's own classes.
Napi::Error jsError(Napi::Env env, const Failure& f, const std::string& file, long opIndex = -1);

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string getString(Napi::Object o, const char* key, const char* what);
std::vector<hsize_t> toShape(Napi::Env env, Napi::Value v, const char* name, bool allowNull = false);
// A hyperslab as a Float64Array [start..., stride..., count...] (one typed array: fast to read);
// undefined/null selects everything.
Hyperslab toHyperslab(Napi::Env env, Napi::Value v);

// A TypedArray's memory. `forAsync` refuses resizable/growable buffers, whose memory may move or
// shrink while the executor uses it (lib/native.ts copies them first).
ArrayRef toArray(Napi::Env env, Napi::Value v, const char* name, bool forAsync);

DatasetSpec toSpec(Napi::Env env, Napi::Value v);
AttrValue toAttrValue(Napi::Env env, Napi::Value v);
// Parses a batch; `keep` collects the JS values whose memory the ops use.
std::vector<Op> toOps(Napi::Env env, Napi::Value v, std::vector<Napi::Value>* keep, bool forAsync);

Napi::Value fromInfo(Napi::Env env, const DatasetInfo& i);
Napi::Value fromAttrs(Napi::Env env, const Attrs& attrs);
Napi::Value fromShape(Napi::Env env, const std::vector<hsize_t>& shape);
Napi::Value fromStrings(Napi::Env env, const std::vector<std::string>& v);
Napi::Value fromResults(Napi::Env env, const std::vector<Op>& ops, std::vector<OpResult>& results, const std::string& file);

}  // namespace ckpt
