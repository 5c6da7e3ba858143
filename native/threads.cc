// Threads for big work (gta_arch.h says why): the count big matrix products and passes may raise the
// OpenMP team to inside small work, and the addon's own helper threads that run a split pass's parts.
#include "gta_arch.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

// libgomp's own calls (libtorch's OpenMP runtime, found through libtorch's dependencies)
extern "C" void omp_set_num_threads(int n);
extern "C" int omp_get_max_threads();

namespace {
// setThreads' count for big work (0: none)
int big_threads = 0;
// on a thread running one of RunParts' parts: its work stays on that one thread (OpenBLAS spins
// while another thread's threaded product holds its one buffer)
thread_local bool in_part = false;
}  // namespace

gta::BigWork::BigWork(double flops) {
  if (big_threads <= 0 || flops < kBigFlops || in_part) return;
  const int now = omp_get_max_threads();
  if (big_threads <= now) return;
  before_ = now;
  omp_set_num_threads(big_threads);
}

gta::BigWork::~BigWork() {
  if (before_) omp_set_num_threads(before_);
}

int64_t gta::split_passes = 0;

void gta::SetBigThreads(int n) {
  big_threads = n;
}

int gta::BigThreads() {
  return in_part ? 1 : std::max(big_threads, omp_get_max_threads());
}

namespace {

struct Helper {
  std::mutex m;
  std::condition_variable cv;
  std::function<void()> task;
  bool busy = false;
};
// never destroyed: the helpers wait on their condition variables until the process ends, and
// destroying one with a waiter blocks exit
auto& helpers = *new std::vector<std::unique_ptr<Helper>>();

void HelperLoop(Helper* h) {
  in_part = true;
  c10::InferenceMode guard;
  for (;;) {
    std::unique_lock<std::mutex> lock(h->m);
    h->cv.wait(lock, [h] { return h->task != nullptr; });
    std::function<void()> task = std::move(h->task);
    h->task = nullptr;
    lock.unlock();
    // every time: ATen (re)sets a thread's OpenMP count when it first runs a parallel operator there
    omp_set_num_threads(1);
    task();
    lock.lock();
    h->busy = false;
    h->cv.notify_all();
  }
}

}  // namespace

void gta::RunParts(int k, const std::function<void(int)>& f) {
  if (k <= 1) return f(0);
  while (static_cast<int>(helpers.size()) < k - 1) {
    helpers.push_back(std::make_unique<Helper>());
    std::thread(HelperLoop, helpers.back().get()).detach();
  }
  std::vector<std::exception_ptr> errors(k);
  for (int i = 1; i < k; i++) {
    Helper* h = helpers[i - 1].get();
    std::lock_guard<std::mutex> lock(h->m);
    h->busy = true;
    h->task = [&f, &errors, i] {
      try {
        f(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    };
    h->cv.notify_all();
  }
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  in_part = true;
  try {
    f(0);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  in_part = false;
  omp_set_num_threads(before);
  for (int i = 1; i < k; i++) {
    Helper* h = helpers[i - 1].get();
    std::unique_lock<std::mutex> lock(h->m);
    h->cv.wait(lock, [h] { return !h->busy; });
  }
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}
