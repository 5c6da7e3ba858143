// Sums over whole gradient sets in one addon call: the dot products and squared norms that gradient
// clipping (AdamW.globalNorm) and GTA's gradient constraint (grad_constraint.ts) take over every
// parameter together. Composed in tfjs they are two or three kernels per parameter and a stack and
// add each (about 250 kernels for a 2-block model); here they are ATen dot products on the
// tensors as they are (no copies), accumulated in double, read back as plain numbers.
#include "gta_arch.h"

#include <cstring>
#include <vector>

namespace {

using namespace gta;

inline float Val(float x) { return x; }
inline float Val(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

constexpr int kLanes = 16;
constexpr int64_t kChunk = 1 << 16;

// a.b, a.a and b.b over elements [from, to) (at most kChunk) of bfloat16 or float32 arrays: products in
// float32 summed into 16 float32 lanes (the vectorizer's shape, the same on every CPU: GTA_VECTOR_LOOP),
// the lanes then summed in double.
template <typename TA, typename TB>
GTA_VECTOR_LOOP
void DotChunk(const TA* __restrict a, const TB* __restrict b, int64_t from, int64_t to, double* out) {
  float ab[kLanes] = {}, aa[kLanes] = {}, bb[kLanes] = {};
  int64_t k = from;
  for (; k + kLanes <= to; k += kLanes) {
    for (int j = 0; j < kLanes; j++) {
      const float x = Val(a[k + j]), y = Val(b[k + j]);
      ab[j] += x * y;
      aa[j] += x * x;
      bb[j] += y * y;
    }
  }
  for (int j = 0; k < to; k++, j++) {
    const float x = Val(a[k]), y = Val(b[k]);
    ab[j] += x * y;
    aa[j] += x * x;
    bb[j] += y * y;
  }
  double s[3] = {0, 0, 0};
  for (int j = 0; j < kLanes; j++) s[0] += ab[j], s[1] += aa[j], s[2] += bb[j];
  for (int i = 0; i < 3; i++) out[i] = s[i];
}

// [a.b, a.a, b.b] of two contiguous CPU arrays of n elements, read as they are (bfloat16 gradients need
// no float32 copy: a real model's embedding gradient would be 622 MB of fresh pages). Fixed chunks,
// summed in order, so the result does not depend on the thread count.
template <typename TA, typename TB>
void Dots(const TA* a, const TB* b, int64_t n, double* out) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(3 * chunks));
  ForRows(chunks, 6.0 * static_cast<double>(n), [&](int64_t from, int64_t to) {
    for (int64_t c = from; c < to; c++) DotChunk(a, b, c * kChunk, std::min(n, (c + 1) * kChunk), &part[static_cast<size_t>(3 * c)]);
  });
  out[0] = out[1] = out[2] = 0;
  for (int64_t c = 0; c < chunks; c++)
    for (int i = 0; i < 3; i++) out[i] += part[static_cast<size_t>(3 * c + i)];
}

template <typename TA>
void DotsWith(const TA* a, const at::Tensor& b, int64_t n, double* out) {
  if (b.scalar_type() == at::kBFloat16) return Dots(a, reinterpret_cast<const uint16_t*>(b.data_ptr<at::BFloat16>()), n, out);
  return Dots(a, b.data_ptr<float>(), n, out);
}

// The sums of one pair where either is bfloat16 on the CPU, into out; false otherwise (ATen's dot below).
bool Bf16Dots(const at::Tensor& a, const at::Tensor& b, double* out) {
  const auto bf = at::kBFloat16, f = at::kFloat;
  const auto ta = a.scalar_type(), tb = b.scalar_type();
  if (!(ta == bf || tb == bf) || !(ta == bf || ta == f) || !(tb == bf || tb == f) || !a.device().is_cpu() || !b.device().is_cpu()) return false;
  at::Tensor x = a.contiguous(), y = b.contiguous();
  if (ta == bf) DotsWith(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()), y, x.numel(), out);
  else DotsWith(x.data_ptr<float>(), y, x.numel(), out);
  return true;
}

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
  double cpu[3] = {0, 0, 0};
  for (size_t i = 0; i < a.size(); i++) {
    if (!a[i].sizes().equals(b[i].sizes())) Fail(env, fn, "tensor " + std::to_string(i) + " has shape " + Shape(a[i].sizes()) + " against " + Shape(b[i].sizes()));
    double d[3];
    if (Bf16Dots(a[i], b[i], d)) {
      for (int k = 0; k < 3; k++) cpu[k] += d[k];
      continue;
    }
    // float32 (BLAS's dot), or bfloat16 on a GPU in float32 (a pair of mixed dtypes allowed: at::dot
    // refuses them); one parameter's copy at a time
    at::Tensor x = a[i].reshape({-1}).to(at::kFloat);
    if (self) {
      parts.push_back(at::dot(x, x));
      continue;
    }
    at::Tensor y = b[i].reshape({-1}).to(at::kFloat);
    parts.push_back(at::dot(x, y));
    parts.push_back(at::dot(x, x));
    parts.push_back(at::dot(y, y));
  }
  double aten[3] = {0, 0, 0};
  if (!parts.empty()) {
    at::Tensor sums = at::stack(parts).to(at::kDouble).reshape({-1, self ? 1 : 3}).sum(0).to(at::kCPU);
    for (int k = 0; k < (self ? 1 : 3); k++) aten[k] = sums.data_ptr<double>()[k];
  }
  // (self: |a|^2 is the bfloat16 sums' a.a, and the ATen parts' only column)
  const double v[3] = {cpu[0] + aten[0], cpu[1] + aten[1], cpu[2] + aten[2]};
  const double norm = cpu[1] + aten[0];
  auto out = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) out.Set(i, Napi::Number::New(env, self ? norm : v[i]));
  return out;
}

}  // namespace

void RegisterGradStats(Napi::Env env, Napi::Object exports) {
  exports.Set("gradDots", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "gradDots", [&] { return GradDots(info); }); }));
}
