// The HDF5 executor: one thread for the whole process that runs every asynchronous HDF5 call, in
// submission order, under the HDF5 lock. HDF5 serialises its calls anyway, so one thread loses
// nothing; what it gains: no libuv pool thread ever blocks on the HDF5 lock (fs, dns and crypto
// keep their pool), JS threads never wait on it in the async API, and a call's round trip is a few
// microseconds (the thread spins briefly between jobs instead of sleeping).
//
// Results go back to the environment (main thread or worker) that submitted the job through its
// thread-safe function. An environment being torn down first cancels its queued jobs and waits for
// its running one, so no job outlives the memory (TypedArrays) it uses.
#pragma once

#include <node_api.h>

#include <memory>
#include <mutex>
#include <optional>

#include "h5core.h"

namespace ckpt {

class EnvState;

class Job {
 public:
  virtual ~Job() = default;
  // Executor thread, HDF5 lock held. A thrown Failure (or other exception) is caught and kept.
  virtual void run() = 0;
  // The submitting environment's JS thread: settle the promise, release references.
  virtual void settle(napi_env env) = 0;

  std::shared_ptr<EnvState> env;
  std::optional<Failure> failure;
};

// Per-environment state shared with the executor.
class EnvState {
 public:
  // Creates the environment's completion channel (JS thread).
  explicit EnvState(napi_env env);
  // A job finished (executor thread): hand it to the JS thread, or drop it if the environment is
  // going away.
  void post(Job* job);
  // JS thread: a job was submitted / settled (keeps the event loop alive while jobs are pending).
  void added();
  void settled();
  // JS thread, from the environment's cleanup hook: no job will be posted after this returns.
  void close();

  napi_env env;
  napi_threadsafe_function tsfn = nullptr;

 private:
  std::mutex mu_;
  bool closing_ = false;
  int outstanding_ = 0;  // JS thread only
};

// Creates the environment's thread-safe function, unreferenced (JS thread, at module init).
napi_status createCompletionChannel(napi_env env, const std::shared_ptr<EnvState>& state);

namespace executor {
// Queues a job (JS thread). The job is deleted after it settled (or was dropped).
void submit(Job* job);
// Drops the environment's queued jobs and waits until none of its jobs is running (JS thread).
void cancel(EnvState* env);
// Takes over HDF5's shutdown (H5dont_atexit; call before any other HDF5 call): at exit, waits for
// the running job, keeps the lock, and closes the files still open, so what they hold is on disk.
void installExitGuard();
}  // namespace executor

}  // namespace ckpt
