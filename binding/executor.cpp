#include "executor.h"

#include "h5objects.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <thread>

namespace ckpt {

namespace {

// How long the executor keeps polling for the next job before it sleeps: a loop of awaited calls
// submits the next one within microseconds, and a sleeping thread takes ~50-100 us to wake on a VM.
constexpr auto kSpin = std::chrono::microseconds(200);

void deleteJob(Job* job) {
  // A job's destructor releases only C++ state (its Node-API references died with the environment,
  // or were released in settle()).
  delete job;
}

// The JS side of an environment's thread-safe function: `data` is a finished job.
void callJs(napi_env env, napi_value /*js_cb*/, void* /*context*/, void* data) {
  Job* job = static_cast<Job*>(data);
  if (env == nullptr) {  // the function is being torn down: the job cannot settle
    deleteJob(job);
    return;
  }
  std::shared_ptr<EnvState> state = job->env;
  job->settle(env);
  deleteJob(job);
  state->settled();
}

void finalizeTsfn(napi_env, void* data, void*) { delete static_cast<std::shared_ptr<EnvState>*>(data); }

// Never destroyed: it lives as long as the process, and its thread may still be waiting on its
// condition variable while static destructors run at exit.
class Executor {
 public:
  static Executor& get() {
    static Executor* instance = new Executor();
    return *instance;
  }

  void submit(Job* job) {
    bool wake;
    {
      std::lock_guard<std::mutex> g(mu_);
      queue_.push_back(job);
      wake = sleeping_;  // a spinning executor sees the job without a wake-up
    }
    if (wake) cv_.notify_one();
  }

  void cancel(EnvState* env) {
    std::unique_lock<std::mutex> g(mu_);
    std::deque<Job*> keep;
    std::deque<Job*> dropped;
    for (Job* j : queue_) (j->env.get() == env ? dropped : keep).push_back(j);
    queue_.swap(keep);
    idle_.wait(g, [&] { return running_ != env; });
    g.unlock();
    for (Job* j : dropped) deleteJob(j);
  }

 private:
  Executor() { std::thread([this] { loop(); }).detach(); }

  Job* next() {
    std::unique_lock<std::mutex> g(mu_);
    if (queue_.empty()) {
      g.unlock();
      auto until = std::chrono::steady_clock::now() + kSpin;
      while (std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
        g.lock();
        if (!queue_.empty()) break;
        g.unlock();
      }
      if (!g.owns_lock()) g.lock();
      sleeping_ = true;
      cv_.wait(g, [&] { return !queue_.empty(); });
      sleeping_ = false;
    }
    Job* job = queue_.front();
    queue_.pop_front();
    running_ = job->env.get();
    return job;
  }

  void loop() {
    for (;;) {
      Job* job = next();
      try {
        Lock lock;
        job->run();
      } catch (const Failure& f) {
        job->failure.emplace(f);
      } catch (const std::bad_alloc&) {
        job->failure.emplace("ERR_TOO_LARGE", "out of memory in the HDF5 binding");
      } catch (const std::exception& e) {
        job->failure.emplace("ERR_HDF5", std::string("HDF5 binding failure: ") + e.what());
      } catch (...) {
        job->failure.emplace("ERR_HDF5", "HDF5 binding failure");
      }
      std::shared_ptr<EnvState> env = job->env;
      env->post(job);  // from here the job belongs to the JS thread (or is deleted)
      {
        std::lock_guard<std::mutex> g(mu_);
        running_ = nullptr;
      }
      idle_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;    // a job was queued
  std::condition_variable idle_;  // the running job finished
  std::deque<Job*> queue_;
  EnvState* running_ = nullptr;
  bool sleeping_ = false;  // guarded by mu_
};

}  // namespace

EnvState::EnvState(napi_env e) : env(e) {}

void EnvState::post(Job* job) {
  std::lock_guard<std::mutex> g(mu_);
  if (closing_ || napi_call_threadsafe_function(tsfn, job, napi_tsfn_nonblocking) != napi_ok) deleteJob(job);
}

void EnvState::added() {
  if (outstanding_++ == 0) napi_ref_threadsafe_function(env, tsfn);
}

void EnvState::settled() {
  if (--outstanding_ == 0) napi_unref_threadsafe_function(env, tsfn);
}

void EnvState::close() {
  {
    std::lock_guard<std::mutex> g(mu_);
    closing_ = true;
  }
  executor::cancel(this);
}

namespace executor {

void submit(Job* job) {
  job->env->added();
  Executor::get().submit(job);
}

void cancel(EnvState* env) { Executor::get().cancel(env); }

namespace {
void exitGuard() {
  // Never unlocked: the process is ending; no job may start after the files are closed.
  static Lock* held = new Lock();
  (void)held;
  closeAllFiles();
}
}  // namespace

void installExitGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The binding shuts HDF5 down itself: HDF5's own atexit handler would also close files whose
    // H5Fclose failed before (a full disk), and crashes on them (H5F__close_cb on a half-freed
    // file). Fails harmlessly when another user of libhdf5 in this process initialised it first.
    if (H5dont_atexit() < 0) H5Eclear2(H5E_DEFAULT);
    std::atexit(exitGuard);
  });
}

}  // namespace executor

napi_status createCompletionChannel(napi_env env, const std::shared_ptr<EnvState>& state) {
  napi_value name;
  napi_status st = napi_create_string_utf8(env, "checkpointer.hdf5", NAPI_AUTO_LENGTH, &name);
  if (st != napi_ok) return st;
  auto* holder = new std::shared_ptr<EnvState>(state);
  st = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, holder, finalizeTsfn, holder, callJs, &state->tsfn);
  if (st != napi_ok) {
    delete holder;
    return st;
  }
  return napi_unref_threadsafe_function(env, state->tsfn);
}

}  // namespace ckpt
