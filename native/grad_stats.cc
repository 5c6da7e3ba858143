// Sums over whole gradient sets in one addon call: the dot products and squared norms that gradient
// clipping (AdamW.globalNorm) and GTA's gradient constraint (grad_constraint.ts) take over every
// parameter together. Composed in tfjs they are two or three kernels per parameter and a stack and
// add each (about 250 kernels for a 2-block model); here they are ATen dot products on the
// tensors as they are (no copies), accumulated in double, read back as plain numbers.
#include "gta_arch.h"

namespace {

using namespace gta;

// gradDots(a, b?) -> [a.b, |a|^2, |b|^2] over pairs of tensors of equal shapes (arrays of tensor ids);
// without b, b is a (and only |a|^2 is computed). One read back at the end (one sync on a GPU).
Napi::Value GradDots(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "gradDots";
  auto a = Tensors(env, fn, info[0]);
  const bool self = info.Length() < 2 || info[1].IsUndefined();
  auto b = self ? a : Tensors(env, fn, info[1]);
  if (a.size() != b.size()) Fail(env, fn, std::to_string(a.size()) + " tensors against " + std::to_string(b.size()));
  if (a.empty()) Fail(env, fn, "no tensors");
  std::vector<at::Tensor> parts;
  for (size_t i = 0; i < a.size(); i++) {
    if (!a[i].sizes().equals(b[i].sizes())) Fail(env, fn, "tensor " + std::to_string(i) + " has shape " + Shape(a[i].sizes()) + " against " + Shape(b[i].sizes()));
    // bfloat16 gradients (train.precision bf16-true) in float32: BLAS's dot, float32 accumulation, and
    // a pair of mixed dtypes allowed (at::dot refuses them); one parameter's copy at a time
    at::Tensor x = a[i].reshape({-1}).to(at::kFloat);
    at::Tensor y = b[i].reshape({-1}).to(at::kFloat);
    if (self) {
      parts.push_back(at::dot(x, x));
    } else {
      parts.push_back(at::dot(x, y));
      parts.push_back(at::dot(x, x));
      parts.push_back(at::dot(y, y));
    }
  }
  at::Tensor sums = at::stack(parts).to(at::kDouble).reshape({static_cast<int64_t>(a.size()), -1}).sum(0).to(at::kCPU);
  const double* v = sums.data_ptr<double>();
  auto out = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) out.Set(i, Napi::Number::New(env, self ? v[0] : v[i]));
  return out;
}

}  // namespace

void RegisterGradStats(Napi::Env env, Napi::Object exports) {
  exports.Set("gradDots", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "gradDots", [&] { return GradDots(info); }); }));
}
