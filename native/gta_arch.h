// What the addon's own kernels share (decode_step.cc, train_pass.cc, log_probs.cc, ...): the weights of
// gta's own architecture as the JS side lists them, checked once, the small helpers around ATen's
// errors, and big work on more threads (threads.cc).
//
// gta's own architecture: learned token and position embeddings, pre-norm blocks (LayerNorm, causal
// multi-head attention with a fused q/k/v projection, ReLU MLP, biases everywhere), a final LayerNorm
// and an output head tied to the token embedding (src/model/transformer.ts).
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

// torch_addon.cc: the tensor behind a JS tensor id, and a tensor handed back to JS as [id, dtype, ...shape].
const at::Tensor& TensorOf(const Napi::Env& env, const Napi::Value& v);
Napi::Value TensorToJs(const Napi::Env& env, at::Tensor t);

// A hot elementwise loop written for the vectorizer (adamw.cc, grad_stats.cc): built at -O3 for
// AVX-512, AVX2 and baseline x86-64, one picked when the addon loads (target_clones: GCC with glibc's
// ifunc); elsewhere (another architecture, clang, musl) one -O3 build. fp-contract=off keeps each
// element's rounding that of the plain loop (no fused multiply-adds), so results do not depend on the CPU.
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__)
#define GTA_VECTOR_LOOP __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3", "fp-contract=off")))
#elif defined(__GNUC__) && !defined(__clang__)
#define GTA_VECTOR_LOOP __attribute__((optimize("O3", "fp-contract=off")))
#else
#define GTA_VECTOR_LOOP
#endif

namespace gta {

[[noreturn]] inline void Fail(const Napi::Env& env, const std::string& fn, const std::string& msg) {
  throw Napi::Error::New(env, fn + ": " + msg);
}

inline std::string Shape(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

inline void Expect(const Napi::Env& env, const std::string& fn, const at::Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
  if (t.scalar_type() != at::kFloat) Fail(env, fn, what + " is not float32");
  if (t.sizes().vec() != shape) Fail(env, fn, what + " has shape " + Shape(t.sizes()) + ", expected " + Shape(shape));
}

// Runs `f`, turning ATen's errors into JS errors named after `fn` (node-addon-api passes on only its own).
template <typename F>
Napi::Value Guard(const Napi::Env& env, const std::string& fn, F f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    Fail(env, fn, e.what_without_backtrace());
  }
}

// Big work inside small work. Rollouts and RL updates run on fewer threads than LM and SFT steps
// (smallWork in src/backend/select.ts): with OMP_WAIT_POLICY=PASSIVE every parallel region wakes the
// sleeping threads, which costs more than a second core gives back on their many small operators. A
// matrix product or row pass of at least kBigFlops still runs on the large-work count (setThreads'
// second argument), set through omp_set_num_threads itself: at::set_num_threads also rebuilds caffe2's
// thread pool on every call.
constexpr double kBigFlops = 16e6;
class BigWork {
 public:
  explicit BigWork(double flops);
  ~BigWork();
  BigWork(const BigWork&) = delete;
  BigWork& operator=(const BigWork&) = delete;

 private:
  int before_ = 0;
};

// Passes train_pass.cc has split into parts, for info() (tests check that a big pass was split).
extern int64_t split_passes;

// The threads big work runs on: the current count, or setThreads' big-work count where that is more
// (1 on a thread running a part). SetBigThreads sets that count (0: none). Both in threads.cc.
int BigThreads();
void SetBigThreads(int n);

// Runs f(0) .. f(k - 1) at once: f(0) on the calling thread, the others on the addon's own helper
// threads, every one of them running its ATen operators single-threaded meanwhile. (ATen's
// parallel_for is of no use in the addon: its OpenMP pragma compiles here, without -fopenmp, to a
// loop on one thread; and -fopenmp would link a second OpenMP runtime beside a pip torch's own.)
// Exceptions are rethrown on the calling thread.
void RunParts(int k, const std::function<void(int)>& f);

// f over [0, n) in RunParts' parts: as many as BigThreads() when the work (floating-point operations) is big, else one.
inline void ForRows(int64_t n, double flops, const std::function<void(int64_t, int64_t)>& f) {
  const int k = static_cast<int>(std::min<int64_t>(n, flops >= kBigFlops ? BigThreads() : 1));
  if (k <= 1) return f(0, n);
  RunParts(k, [&](int i) { f(n * i / k, n * (i + 1) / k); });
}

// Whether products run in bfloat16 (setPrecision, precision.cc): float32 operands rounded to bfloat16,
// multiplied with float32 accumulation (oneDNN's AVX512-BF16 kernels on the CPU, cuBLAS on a GPU), the
// result rounded to bfloat16 and handed back as float32, so every other operator stays float32.
extern bool bf16_products;
// train.precision bf16-true (setPrecision): also a product's result, and every operator's result on
// bfloat16 operands, stays bfloat16 (TensorResult keeps it), with the weights and AdamW moments stored
// in bfloat16 (toBf16): a model held as PyTorch holds one loaded in torch.bfloat16. Set with bf16_products.
extern bool bf16_true;
// t in bfloat16 for a product: a kept weight's (or its view's) copy, else a fresh cast (precision.cc).
at::Tensor Bf16Of(const at::Tensor& t);
// Keeps these weights' bfloat16 copies between products, until each weight changes (precision.cc).
void KeepBf16Copies(const std::vector<at::Tensor>& weights);
// A kept weight was written in place: its bfloat16 copy is stale (precision.cc).
void WeightChanged(const at::Tensor& w);

// at::matmul, as big work when it is one (2 m k n floating-point operations); in bfloat16 where set.
inline at::Tensor Product(const at::Tensor& a, const at::Tensor& b) {
  BigWork big(2.0 * static_cast<double>(a.numel()) * static_cast<double>(b.size(-1)));
  // (an operand may be bfloat16 already: a LoRA run's frozen weight kept so, toBf16)
  if (bf16_products && a.is_floating_point() && b.is_floating_point()) {
    at::Tensor r = at::matmul(Bf16Of(a), Bf16Of(b));
    return bf16_true ? r : r.to(at::kFloat);
  }
  return at::matmul(a, b);
}

inline int64_t Int(const Napi::Object& o, const char* key) {
  return o.Get(key).As<Napi::Number>().Int64Value();
}

inline double Num(const Napi::Object& o, const char* key) {
  return o.Get(key).As<Napi::Number>().DoubleValue();
}

inline std::vector<at::Tensor> Tensors(const Napi::Env& env, const std::string& fn, const Napi::Value& v) {
  if (!v.IsArray()) Fail(env, fn, "expected an array of tensor ids");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(TensorOf(env, arr.Get(i)));
  return out;
}

// Per-block weights, in the order the JS side lists them (src/model/native_weights.ts).
constexpr int kLayerWeights = 12;

struct LayerWeights {
  at::Tensor ln1_g, ln1_b, wqkv, bqkv, wo, bo, ln2_g, ln2_b, w1, b1, w2, b2;
};

struct Weights {
  at::Tensor tok_emb, pos_emb, lnf_g, lnf_b;
  std::vector<LayerWeights> layers;
  int64_t V, d, H, dh, ff;

  // Every weight in the JS order: tok_emb, pos_emb, each block's twelve, ln_f.g, ln_f.b.
  std::vector<at::Tensor*> All() {
    std::vector<at::Tensor*> out = {&tok_emb, &pos_emb};
    for (auto& y : layers) {
      for (at::Tensor* t : {&y.ln1_g, &y.ln1_b, &y.wqkv, &y.bqkv, &y.wo, &y.bo, &y.ln2_g, &y.ln2_b, &y.w1, &y.b1, &y.w2, &y.b2}) out.push_back(t);
    }
    out.push_back(&lnf_g);
    out.push_back(&lnf_b);
    return out;
  }
};

// The weights of a model with `heads` attention heads from their JS tensor ids, every shape checked.
inline Weights WeightsOf(const Napi::Env& env, const std::string& fn, const Napi::Value& ids, int64_t heads) {
  auto w = Tensors(env, fn, ids);
  if (w.size() < 4 || (w.size() - 4) % kLayerWeights != 0) Fail(env, fn, std::to_string(w.size()) + " weights: expected 4 + " + std::to_string(kLayerWeights) + " per block");
  const size_t L = (w.size() - 4) / kLayerWeights;
  Weights s;
  s.tok_emb = w[0];
  s.pos_emb = w[1];
  if (s.tok_emb.dim() != 2 || s.pos_emb.dim() != 2) Fail(env, fn, "tok_emb and pos_emb must be matrices");
  s.V = s.tok_emb.size(0);
  s.d = s.tok_emb.size(1);
  const int64_t d = s.d;
  if (heads <= 0 || d % heads != 0) Fail(env, fn, "d_model " + std::to_string(d) + " does not split into " + std::to_string(heads) + " heads");
  s.H = heads;
  s.dh = d / heads;
  s.ff = L > 0 && w[2 + 8].dim() == 2 ? w[2 + 8].size(1) : 0;
  Expect(env, fn, s.tok_emb, {s.V, d}, "tok_emb");
  Expect(env, fn, s.pos_emb, {s.pos_emb.size(0), d}, "pos_emb");
  for (size_t l = 0; l < L; l++) {
    LayerWeights y;
    const at::Tensor* p = &w[2 + kLayerWeights * l];
    const std::string b = "blocks." + std::to_string(l) + ".";
    Expect(env, fn, y.ln1_g = p[0], {d}, b + "ln1.g");
    Expect(env, fn, y.ln1_b = p[1], {d}, b + "ln1.b");
    Expect(env, fn, y.wqkv = p[2], {d, 3 * d}, b + "attn.wqkv");
    Expect(env, fn, y.bqkv = p[3], {3 * d}, b + "attn.bqkv");
    Expect(env, fn, y.wo = p[4], {d, d}, b + "attn.wo");
    Expect(env, fn, y.bo = p[5], {d}, b + "attn.bo");
    Expect(env, fn, y.ln2_g = p[6], {d}, b + "ln2.g");
    Expect(env, fn, y.ln2_b = p[7], {d}, b + "ln2.b");
    Expect(env, fn, y.w1 = p[8], {d, s.ff}, b + "mlp.w1");
    Expect(env, fn, y.b1 = p[9], {s.ff}, b + "mlp.b1");
    Expect(env, fn, y.w2 = p[10], {s.ff, d}, b + "mlp.w2");
    Expect(env, fn, y.b2 = p[11], {d}, b + "mlp.b2");
    s.layers.push_back(std::move(y));
  }
  Expect(env, fn, s.lnf_g = w[w.size() - 2], {d}, "ln_f.g");
  Expect(env, fn, s.lnf_b = w[w.size() - 1], {d}, "ln_f.b");
  return s;
}

inline at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& g, const at::Tensor& b, double eps) {
  return std::get<0>(at::native_layer_norm(x, {x.size(-1)}, g, b, eps));
}

}  // namespace gta
