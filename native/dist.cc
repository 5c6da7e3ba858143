// Data-parallel training's process group: libtorch's own c10d (a TCPStore for the rendezvous,
// ProcessGroupGloo for the collectives), so nothing here is a home-made transport.
//
// JavaScript hands over Float32Arrays (flat gradient buckets); a collective runs on a libuv worker
// thread and settles a Promise, so Node's event loop (signals, progress) keeps running while ranks
// wait for each other. One process group per process.
//
// Built only when the Gloo headers are there (find_libtorch.mjs's distDefines: GTA_DIST and
// USE_C10D_GLOO); otherwise `distUnavailable` says why.
#include <napi.h>

#ifdef GTA_DIST
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

c10::intrusive_ptr<c10d::ProcessGroupGloo> group;

// Runs `work` on a worker thread; resolves with `result()` on the main thread, or rejects with the error.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result = nullptr)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), result_(std::move(result)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      c10::InferenceMode guard;
      work_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(result_ ? result_(Env()) : Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
};

Napi::Promise Queue(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result = nullptr) {
  auto* job = new Job(env, std::move(work), std::move(result));
  auto promise = job->Promise();
  job->Queue();  // the worker deletes itself when settled
  return promise;
}

void NeedGroup(const Napi::Env& env) {
  if (!group) throw Napi::Error::New(env, "no process group (distInit first)");
}

// distInit({rank, world, host, port, timeoutMs, iface?, bind?}) -> Promise: every rank meets at host:port
// (rank 0 serves the store); Gloo's sockets bind to `iface`, else `bind` (an address), else this host.
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (group) throw Napi::Error::New(env, "the process group is already initialised");
  auto o = info[0].As<Napi::Object>();
  int rank = o.Get("rank").As<Napi::Number>().Int32Value();
  int world = o.Get("world").As<Napi::Number>().Int32Value();
  std::string host = o.Get("host").As<Napi::String>();
  int port = o.Get("port").As<Napi::Number>().Int32Value();
  auto timeout = std::chrono::milliseconds(o.Get("timeoutMs").As<Napi::Number>().Int64Value());
  std::string iface = o.Has("iface") && o.Get("iface").IsString() ? o.Get("iface").As<Napi::String>().Utf8Value() : "";
  std::string bind = o.Has("bind") && o.Get("bind").IsString() ? o.Get("bind").As<Napi::String>().Utf8Value() : "";
  return Queue(env, [=]() {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = rank == 0;
    so.numWorkers = world;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto s = c10::make_intrusive<c10d::TCPStore>(host, so);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    opts->devices.push_back(!iface.empty() ? c10d::ProcessGroupGloo::createDeviceForInterface(iface)
                            : !bind.empty() ? c10d::ProcessGroupGloo::createDeviceForHostname(bind)
                                            : c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 1;
    group = c10::make_intrusive<c10d::ProcessGroupGloo>(s, rank, world, opts);
  });
}

// allReduce(Float32Array) -> Promise: the element-wise sum over ranks, in place.
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  NeedGroup(env);
  auto arr = info[0].As<Napi::Float32Array>();
  auto ref = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(arr));
  float* data = arr.Data();
  int64_t n = static_cast<int64_t>(arr.ElementLength());
  return Queue(env, [data, n]() {
    std::vector<at::Tensor> ts{at::from_blob(data, {n}, at::kFloat)};
    group->allreduce(ts)->wait();
  }, [ref](Napi::Env e) { ref->Reset(); return e.Undefined(); });
}

// broadcast(Float32Array, root) -> Promise: root's values on every rank, in place.
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  NeedGroup(env);
  auto arr = info[0].As<Napi::Float32Array>();
  int root = info[1].As<Napi::Number>().Int32Value();
  auto ref = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(arr));
  float* data = arr.Data();
  int64_t n = static_cast<int64_t>(arr.ElementLength());
  return Queue(env, [data, n, root]() {
    std::vector<at::Tensor> ts{at::from_blob(data, {n}, at::kFloat)};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    group->broadcast(ts, bo)->wait();
  }, [ref](Napi::Env e) { ref->Reset(); return e.Undefined(); });
}

}  // namespace

void RegisterDist(Napi::Env env, Napi::Object exports) {
  exports.Set("distInit", Napi::Function::New(env, DistInit));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
}

#else

void RegisterDist(Napi::Env env, Napi::Object exports) {
  exports.Set("distUnavailable", Napi::String::New(env, "the torch addon was built without the Gloo headers (apt-get install libgloo-dev, then npm run build:torch)"));
}

#endif
