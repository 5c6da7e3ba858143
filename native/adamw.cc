// One AdamW update of every parameter in a single pass over each (src/backend/fused.ts adamwUpdate
// says the math): per element it reads p, g, m, v once and writes the new p, m, v (as new tensors, or
// into p, m and v themselves: adamwInPlace), where the
// multi-tensor ATen version makes five full-size temporaries and about nine passes. On one core the
// update is memory-bound, so this is what it costs: 4.24M parameters are 119 MB of traffic a step.
#include "gta_arch.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace {

using namespace gta;

struct Step {
  float lr, b1, b2, eps, wd, bc1, bc2, scale;
  // stochastic rounding's stream for bfloat16 parameters (the caller's: per update and parameter)
  uint64_t seed;
};

Step ReadStep(const Napi::Object& s) {
  auto f = [&](const char* k) { return static_cast<float>(Num(s, k)); };
  const uint64_t seed = s.Has("seed") ? static_cast<uint64_t>(Num(s, "seed")) : 0;
  return {f("lr"), f("beta1"), f("beta2"), f("eps"), f("weightDecay"), f("bc1"), f("bc2"), f("scale"), seed};
}

// The update of one float32 CPU parameter, reading P, G, M, V and writing P1, M1, V1 (which may be P,
// M and V themselves: each element is read before it is written). A big parameter (a real model's
// matrices: memory-bound, 28 bytes of traffic an element) is cut into ranges, one per big-work thread.
void Update(const Step& s, bool decay, int64_t len, const float* P, const float* G, const float* M, const float* Vv, float* P1, float* M1, float* V1) {
  const float keep = decay && s.wd > 0 ? 1 - s.lr * s.wd : 1;
  const float step = s.lr / s.bc1, c1 = 1 - s.b1, c2 = 1 - s.b2;
  ForRows(len, 10.0 * static_cast<double>(len), [&](int64_t from, int64_t to) {
    for (int64_t k = from; k < to; k++) {
      const float gk = G[k] * s.scale;
      const float mk = s.b1 * M[k] + c1 * gk;
      const float vk = s.b2 * Vv[k] + c2 * gk * gk;
      M1[k] = mk;
      V1[k] = vk;
      P1[k] = P[k] * keep - step * mk / (std::sqrt(vk / s.bc2) + s.eps);
    }
  });
}

// bfloat16 storage (train.precision bf16-true): parameters and moments of 16 bits, written with
// stochastic rounding (round up with probability equal to the dropped fraction), as torchao's
// bf16_stochastic_round AdamW does. Rounded to nearest, an update below half a bfloat16 step (2^-9
// of the weight: any lr * 1 under 0.2% of it) would vanish every time, and v, decayed by beta2 = 0.999
// a step, would never decay; rounded stochastically each is right in expectation. The random bits are
// a hash of (seed, element): the same whatever the thread split, so a run repeats exactly.
inline uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline float FromBf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// f rounded to bfloat16 with the 16 random bits r: adding them to the dropped bits carries into the
// kept ones with probability (dropped / 2^16). Inf and NaN are kept as they are (NaN stays NaN).
// Branch-free, so the loop below vectorizes.
inline uint16_t StochasticBf16(float f, uint32_t r) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t special = (u >> 16) | ((u & 0xffffu) ? 0x40u : 0u);
  return static_cast<uint16_t>((u & 0x7f800000u) == 0x7f800000u ? special : (u + (r & 0xffffu)) >> 16);
}

inline float GradAt(const float* g, int64_t k) { return g[k]; }
inline float GradAt(const uint16_t* g, int64_t k) { return FromBf16(g[k]); }

// Update's arithmetic on bfloat16 P, M and V (in place), in float32, over elements [from, to); G
// float32 or bfloat16 (a bf16-true run's gradients, read as they are: no float32 copy). Vectorized
// (GTA_VECTOR_LOOP): 7x the scalar loop on one core, the same bits.
template <typename GT>
GTA_VECTOR_LOOP
void UpdateBf16Range(const Step& s, bool decay, int64_t from, int64_t to, uint16_t* __restrict P, const GT* __restrict G, uint16_t* __restrict M, uint16_t* __restrict V) {
  const float keep = decay && s.wd > 0 ? 1 - s.lr * s.wd : 1;
  const float step = s.lr / s.bc1, c1 = 1 - s.b1, c2 = 1 - s.b2, b1 = s.b1, b2 = s.b2, scale = s.scale, bc2 = s.bc2, eps = s.eps;
  const uint64_t base = Mix(s.seed + 0x9e3779b97f4a7c15ULL);
  for (int64_t k = from; k < to; k++) {
    const uint64_t r = Mix(base ^ static_cast<uint64_t>(k));
    const float gk = GradAt(G, k) * scale;
    const float mk = b1 * FromBf16(M[k]) + c1 * gk;
    const float vk = b2 * FromBf16(V[k]) + c2 * gk * gk;
    M[k] = StochasticBf16(mk, static_cast<uint32_t>(r));
    V[k] = StochasticBf16(vk, static_cast<uint32_t>(r >> 16));
    P[k] = StochasticBf16(FromBf16(P[k]) * keep - step * mk / (std::sqrt(vk / bc2) + eps), static_cast<uint32_t>(r >> 32));
  }
}

template <typename GT>
void UpdateBf16(const Step& s, bool decay, int64_t len, uint16_t* P, const GT* G, uint16_t* M, uint16_t* V) {
  ForRows(len, 16.0 * static_cast<double>(len), [&](int64_t from, int64_t to) { UpdateBf16Range(s, decay, from, to, P, G, M, V); });
}

// UpdateBf16's arithmetic in ATen operators, for a GPU (and on the CPU where GTA_ADAMW_ATEN is set,
// as the tests check it): float32 copies of one parameter and its moments, the update, and stochastic
// rounding as integer arithmetic on the float32 bits (add 16 random bits, drop the low 16: the result is
// a bfloat16 value, so the cast is exact). The random bits come from the device's generator seeded by
// the step's seed: repeatable, though not the CPU loop's hash.
void UpdateBf16Aten(const Step& s, bool decay, at::Tensor& p, const at::Tensor& g0, at::Tensor& m, at::Tensor& v) {
  at::Tensor g = g0.to(at::kFloat).mul(s.scale);
  at::Tensor m1 = m.to(at::kFloat).mul_(s.b1).add_(g, 1 - s.b1);
  at::Tensor v1 = v.to(at::kFloat).mul_(s.b2).addcmul_(g, g, 1 - s.b2);
  at::Tensor p1 = p.to(at::kFloat);
  if (decay && s.wd > 0) p1.mul_(1 - s.lr * s.wd);
  p1.addcdiv_(m1, v1.div(s.bc2).sqrt_().add_(s.eps), -s.lr / s.bc1);
  // (randint locks the generator itself; the addon's updates run one at a time on the JS thread)
  auto gen = at::globalContext().defaultGenerator(p.device());
  {
    std::lock_guard<std::mutex> hold(gen.mutex());
    gen.set_current_seed(Mix(s.seed + 0x9e3779b97f4a7c15ULL));
  }
  auto round = [&](const at::Tensor& f, at::Tensor& out) {
    at::Tensor r = at::randint(0, 65536, f.sizes(), gen, f.options().dtype(at::kInt));
    at::Tensor kept = f.view(at::kInt).add(r).bitwise_and_(static_cast<int64_t>(static_cast<int32_t>(0xffff0000u))).view(at::kFloat);
    // Inf and NaN as they are
    out.copy_(at::where(at::isfinite(f), kept, f));
  };
  round(m1, m);
  round(v1, v);
  round(p1, p);
}

struct Args {
  std::vector<at::Tensor> p, g, m, v;
  Step step;
  std::vector<bool> decay;
};

// (p, g, m, v, step): arrays of n tensor ids each, and { lr, beta1, beta2, eps, weightDecay, bc1, bc2,
// scale, decay: boolean[] }; every g, m and v the shape of its p.
Args ReadArgs(const Napi::CallbackInfo& info, const std::string& fn) {
  auto env = info.Env();
  Args a{Tensors(env, fn, info[0]), Tensors(env, fn, info[1]), Tensors(env, fn, info[2]), Tensors(env, fn, info[3]), {}, {}};
  const size_t n = a.p.size();
  if (a.g.size() != n || a.m.size() != n || a.v.size() != n) Fail(env, fn, "p, g, m and v must list the same number of tensors");
  auto s = info[4].As<Napi::Object>();
  a.step = ReadStep(s);
  auto decay = s.Get("decay").As<Napi::Array>();
  if (decay.Length() != n) Fail(env, fn, std::to_string(decay.Length()) + " decay flags for " + std::to_string(n) + " parameters");
  for (size_t i = 0; i < n; i++) {
    a.decay.push_back(decay.Get(static_cast<uint32_t>(i)).ToBoolean().Value());
    for (const at::Tensor* t : {&a.g[i], &a.m[i], &a.v[i]}) {
      if (!t->sizes().equals(a.p[i].sizes())) Fail(env, fn, "tensor " + std::to_string(i) + ": shapes differ");
    }
  }
  return a;
}

// adamw(p, g, m, v, step) -> [p..., m..., v...] (new tensors; float32 on the CPU).
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "adamw";
  Args a = ReadArgs(info, fn);
  const size_t n = a.p.size();
  auto out = Napi::Array::New(env, 3 * n);
  for (size_t i = 0; i < n; i++) {
    if (a.p[i].scalar_type() != at::kFloat || !a.p[i].device().is_cpu()) Fail(env, fn, "parameters must be float32 on the CPU");
    at::Tensor pc = a.p[i].contiguous(), gc = a.g[i].contiguous(), mc = a.m[i].contiguous(), vc = a.v[i].contiguous();
    at::Tensor p1 = at::empty_like(pc), m1 = at::empty_like(pc), v1 = at::empty_like(pc);
    Update(a.step, a.decay[i], pc.numel(), pc.data_ptr<float>(), gc.data_ptr<float>(), mc.data_ptr<float>(), vc.data_ptr<float>(), p1.data_ptr<float>(),
           m1.data_ptr<float>(), v1.data_ptr<float>());
    out.Set(static_cast<uint32_t>(i), TensorToJs(env, p1));
    out.Set(static_cast<uint32_t>(n + i), TensorToJs(env, m1));
    out.Set(static_cast<uint32_t>(2 * n + i), TensorToJs(env, v1));
  }
  return out;
}

// adamwInPlace(p, g, m, v, step): the same update written into p, m and v themselves, so a step needs
// no second copy of the weights and moments (12 bytes a parameter). The caller makes sure nothing else
// shares their storage (src/backend/torch/in_place.ts). On the CPU the single pass above; elsewhere
// ATen's in-place operators (one temporary the size of the parameter).
Napi::Value AdamWInPlace(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "adamwInPlace";
  Args a = ReadArgs(info, fn);
  const Step& s = a.step;
  for (size_t i = 0; i < a.p.size(); i++) {
    at::Tensor &p = a.p[i], &m = a.m[i], &v = a.v[i];
    if (p.scalar_type() == at::kBFloat16) {
      for (const at::Tensor* t : {&p, &m, &v}) {
        if (!t->is_contiguous() || t->scalar_type() != at::kBFloat16) Fail(env, fn, "tensor " + std::to_string(i) + ": a bfloat16 parameter needs contiguous bfloat16 moments");
      }
      if (!p.device().is_cpu() || std::getenv("GTA_ADAMW_ATEN")) {
        UpdateBf16Aten(s, a.decay[i], p, a.g[i], m, v);
        continue;
      }
      auto bits = [](at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
      if (a.g[i].scalar_type() == at::kBFloat16) {
        at::Tensor g = a.g[i].contiguous();
        UpdateBf16(s, a.decay[i], p.numel(), bits(p), static_cast<const uint16_t*>(bits(g)), bits(m), bits(v));
      } else {
        at::Tensor g = a.g[i].to(at::kFloat).contiguous();
        UpdateBf16(s, a.decay[i], p.numel(), bits(p), g.data_ptr<float>(), bits(m), bits(v));
      }
      continue;
    }
    for (const at::Tensor* t : {&p, &m, &v}) {
      if (!t->is_contiguous() || t->scalar_type() != at::kFloat) Fail(env, fn, "tensor " + std::to_string(i) + ": parameters and moments must be contiguous float32");
    }
    if (p.device().is_cpu()) {
      at::Tensor g = a.g[i].contiguous();
      Update(s, a.decay[i], p.numel(), p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), p.data_ptr<float>(), m.data_ptr<float>(),
             v.data_ptr<float>());
      gta::WeightChanged(p);
      continue;
    }
    m.mul_(s.b1).add_(a.g[i], (1 - s.b1) * s.scale);
    v.mul_(s.b2).addcmul_(a.g[i], a.g[i], (1 - s.b2) * s.scale * s.scale);
    if (a.decay[i] && s.wd > 0) p.mul_(1 - s.lr * s.wd);
    p.addcdiv_(m, (v / s.bc2).sqrt_().add_(s.eps), -s.lr / s.bc1);
    gta::WeightChanged(p);
  }
  return env.Undefined();
}

}  // namespace

void RegisterAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("adamw", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "adamw", [&] { return AdamW(info); }); }));
  exports.Set("adamwInPlace", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "adamwInPlace", [&] { return AdamWInPlace(info); }); }));
}
