// One AdamW update of every parameter in a single pass over each (src/backend/fused.ts adamwUpdate
// says the math): per element it reads p, g, m, v once and writes the new p, m, v, where the
// multi-tensor ATen version makes five full-size temporaries and about nine passes. On one core the
// update is memory-bound, so this is what it costs: 4.24M parameters are 119 MB of traffic a step.
#include "gta_arch.h"

#include <cmath>

namespace {

using namespace gta;

// adamw(p, g, m, v, step) -> [p..., m..., v...] (new tensors); p, g, m, v: arrays of n tensor ids;
// step: { lr, beta1, beta2, eps, weightDecay, bc1, bc2, scale, decay: boolean[] }.
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "adamw";
  auto p = Tensors(env, fn, info[0]);
  auto g = Tensors(env, fn, info[1]);
  auto m = Tensors(env, fn, info[2]);
  auto v = Tensors(env, fn, info[3]);
  const size_t n = p.size();
  if (g.size() != n || m.size() != n || v.size() != n) Fail(env, fn, "p, g, m and v must list the same number of tensors");
  auto s = info[4].As<Napi::Object>();
  const float lr = Num(s, "lr"), b1 = Num(s, "beta1"), b2 = Num(s, "beta2"), eps = Num(s, "eps");
  const float wd = Num(s, "weightDecay"), bc1 = Num(s, "bc1"), bc2 = Num(s, "bc2"), scale = Num(s, "scale");
  auto decay = s.Get("decay").As<Napi::Array>();
  if (decay.Length() != n) Fail(env, fn, std::to_string(decay.Length()) + " decay flags for " + std::to_string(n) + " parameters");
  auto out = Napi::Array::New(env, 3 * n);
  for (size_t i = 0; i < n; i++) {
    for (const at::Tensor* t : {&g[i], &m[i], &v[i]}) {
      if (!t->sizes().equals(p[i].sizes())) Fail(env, fn, "tensor " + std::to_string(i) + ": shapes differ");
    }
    if (p[i].scalar_type() != at::kFloat || !p[i].device().is_cpu()) Fail(env, fn, "parameters must be float32 on the CPU");
    at::Tensor pc = p[i].contiguous(), gc = g[i].contiguous(), mc = m[i].contiguous(), vc = v[i].contiguous();
    at::Tensor p1 = at::empty_like(pc), m1 = at::empty_like(pc), v1 = at::empty_like(pc);
    const float* P = pc.data_ptr<float>();
    const float* G = gc.data_ptr<float>();
    const float* M = mc.data_ptr<float>();
    const float* Vv = vc.data_ptr<float>();
    float* P1 = p1.data_ptr<float>();
    float* M1 = m1.data_ptr<float>();
    float* V1 = v1.data_ptr<float>();
    const float keep = decay.Get(static_cast<uint32_t>(i)).ToBoolean().Value() && wd > 0 ? 1 - lr * wd : 1;
    const float step = lr / bc1, c1 = 1 - b1, c2 = 1 - b2;
    const int64_t len = pc.numel();
    for (int64_t k = 0; k < len; k++) {
      const float gk = G[k] * scale;
      const float mk = b1 * M[k] + c1 * gk;
      const float vk = b2 * Vv[k] + c2 * gk * gk;
      M1[k] = mk;
      V1[k] = vk;
      P1[k] = P[k] * keep - step * mk / (std::sqrt(vk / bc2) + eps);
    }
    out.Set(static_cast<uint32_t>(i), TensorToJs(env, p1));
    out.Set(static_cast<uint32_t>(n + i), TensorToJs(env, m1));
    out.Set(static_cast<uint32_t>(2 * n + i), TensorToJs(env, v1));
  }
  return out;
}

}  // namespace

void RegisterAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("adamw", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "adamw", [&] { return AdamW(info); }); }));
}
