// The log-probabilities of chosen tokens over rows of logits ([N, V]: the loss of every mode), in one
// pass over each row for the forward and one for the gradient, with RL's temperature and restriction
// (a bias row per token: 0 where the decoding allowed a token, NEG_INF elsewhere) folded in and the
// entropy metric taken in the same pass:
//   z = logits * invTemp + bias[biasIndex[i]],  logp_i = z[i, t_i] - lse_i,  entropy_i = -sum p log p
//   d logits = invTemp * dy_i * (onehot(t_i) - exp(z - lse_i))
// ATen's log_softmax, exp and gather take five passes over [N, V] forward and back and a restricted
// copy of the logits besides; on the 2-core workstation the [2016, 4096] log-softmax of an LM step
// cost as much as its head matmul (17.7 vs 15.9 ms), most of it in an AVX2 exp at ~1 ns an element.
// Here exp is a degree-7 polynomial in AVX-512 (relative error ~1e-7, exactly 0 below -103.9, so
// restricted tokens get p = 0 and p log p = 0 as in the composite), a big batch's rows split over
// threads (ForRows). Without AVX-512 (where std::exp rows would be slower than ATen's AVX2), and off
// the CPU, ATen ops.
#include "gta_arch.h"

#include <immintrin.h>

#include <cmath>
#include <cstdlib>

namespace {

using namespace gta;

// exp below this is 0 (float's smallest denormal is 2^-149 = e^-103.28)
constexpr float kExpFloor = -103.9f;

__attribute__((target("avx512f"))) inline __m512 Exp16(__m512 x) {
  const __mmask16 zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpFloor), _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
  // x = n ln2 + r, |r| <= ln2 / 2; ln2 in two parts so r keeps its low bits
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040);
  for (float c : {1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~zero), _mm512_scalef_ps(p, n));
}

// One row's log-sum-exp of z_j = x_j * s + b_j (b null: no bias), the target's log-probability and the entropy.
struct RowStats {
  float lse, logp, entropy;
};

// The lanes of x + j that lie before the row's end (V - j of them, at most 16).
inline __mmask16 Lanes(int64_t V, int64_t j) { return static_cast<__mmask16>(V - j >= 16 ? 0xFFFF : (1u << (V - j)) - 1); }

// z at lanes k of column j: x * s (+ b)
__attribute__((target("avx512f"))) inline __m512 Z16(const float* x, const float* b, float s, int64_t j, __mmask16 k) {
  const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), _mm512_set1_ps(s));
  return b ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + j)) : v;
}

__attribute__((target("avx512f"))) RowStats Stats512(const float* x, const float* b, float s, int64_t V, int64_t t) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < V; j += 16) {
    const __mmask16 k = Lanes(V, j);
    mx = _mm512_mask_max_ps(mx, k, mx, Z16(x, b, s, j, k));
  }
  const float m = _mm512_reduce_max_ps(mx);
  __m512 se = _mm512_setzero_ps(), sey = _mm512_setzero_ps();
  for (int64_t j = 0; j < V; j += 16) {
    const __mmask16 k = Lanes(V, j);
    const __m512 y = _mm512_sub_ps(Z16(x, b, s, j, k), _mm512_set1_ps(m));
    const __m512 e = _mm512_maskz_mov_ps(k, Exp16(y));
    se = _mm512_add_ps(se, e);
    // e * y where e > 0 only: a restricted token's e is 0 and its y about -1e9
    sey = _mm512_add_ps(sey, _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(e, _mm512_setzero_ps(), _CMP_GT_OQ), e, y));
  }
  const float sum = _mm512_reduce_add_ps(se), logs = std::log(sum);
  const float zt = x[t] * s + (b ? b[t] : 0.f);
  return {m + logs, zt - m - logs, logs - _mm512_reduce_add_ps(sey) / sum};
}

// g_j = c * (onehot_t - exp(z_j - lse)), c = dy * invTemp
__attribute__((target("avx512f"))) void Grad512(const float* x, const float* b, float s, int64_t V, int64_t t, float lse, float c, float* g) {
  for (int64_t j = 0; j < V; j += 16) {
    const __mmask16 k = Lanes(V, j);
    _mm512_mask_storeu_ps(g + j, k, _mm512_mul_ps(Exp16(_mm512_sub_ps(Z16(x, b, s, j, k), _mm512_set1_ps(lse))), _mm512_set1_ps(-c)));
  }
  g[t] += c;
}

// The rows' own loops need AVX-512 and float32 on the CPU; else ATen ops (AVX2 or a GPU's). GTA_NO_AVX512
// set takes the ATen path everywhere (how the tests check it).
bool OwnLoops(const at::Tensor& x) { return x.device().is_cpu() && __builtin_cpu_supports("avx512f") && !std::getenv("GTA_NO_AVX512"); }

// The arguments both functions share: logits [N, V], int32 targets [N], then optional bias rows [R, V] and int32 biasIndex [N].
struct Rows {
  at::Tensor x, t, bias, bidx;
  int64_t N = 0, V = 0;
  float s = 1;

  // f(i, row i of the logits, its bias row or null, its target) for every row, a big batch's rows
  // split over threads (ForRows).
  template <typename F>
  void Each(F f) const {
    const float* X = x.data_ptr<float>();
    const int* T = t.data_ptr<int>();
    const float* B = bias.defined() ? bias.data_ptr<float>() : nullptr;
    const int* BI = bias.defined() ? bidx.data_ptr<int>() : nullptr;
    ForRows(N, 10.0 * static_cast<double>(N) * static_cast<double>(V), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) f(i, X + i * V, B ? B + BI[i] * V : nullptr, T[i]);
    });
  }
};

Rows RowsOf(const Napi::Env& env, const std::string& fn, const Napi::CallbackInfo& info, size_t at) {
  Rows r;
  // bfloat16 logits (train.precision bf16-true) are read in float32: log-probabilities, and RL's
  // ratios made of them, are float32 whatever the model's precision
  r.x = TensorOf(env, info[at]).to(at::kFloat).contiguous();
  r.t = TensorOf(env, info[at + 1]).contiguous();
  r.s = static_cast<float>(info[at + 2].As<Napi::Number>().DoubleValue());
  if (r.x.dim() != 2 || r.x.scalar_type() != at::kFloat) Fail(env, fn, "logits must be float32 [N, V], not " + Shape(r.x.sizes()));
  r.N = r.x.size(0);
  r.V = r.x.size(1);
  if (r.t.dim() != 1 || r.t.size(0) != r.N || r.t.scalar_type() != at::kInt) Fail(env, fn, "targets must be int32 [" + std::to_string(r.N) + "]");
  if (r.t.numel() && (r.t.min().item<int>() < 0 || r.t.max().item<int>() >= r.V)) Fail(env, fn, "a target is outside [0, " + std::to_string(r.V) + ")");
  if (info.Length() > at + 3 && !info[at + 3].IsNull() && !info[at + 3].IsUndefined()) {
    r.bias = TensorOf(env, info[at + 3]).contiguous();
    r.bidx = TensorOf(env, info[at + 4]).contiguous();
    if (r.bias.dim() != 2 || r.bias.size(1) != r.V || r.bias.scalar_type() != at::kFloat) Fail(env, fn, "bias must be float32 [R, " + std::to_string(r.V) + "], not " + Shape(r.bias.sizes()));
    if (r.bidx.dim() != 1 || r.bidx.size(0) != r.N || r.bidx.scalar_type() != at::kInt) Fail(env, fn, "biasIndex must be int32 [" + std::to_string(r.N) + "]");
    if (r.N && (r.bidx.min().item<int>() < 0 || r.bidx.max().item<int>() >= r.bias.size(0))) Fail(env, fn, "a biasIndex is outside the bias rows");
  }
  return r;
}

// z of every row with ATen ops.
at::Tensor Z(const Rows& r) {
  at::Tensor z = at::mul(r.x, r.s);
  return r.bias.defined() ? at::add(z, at::index_select(r.bias, 0, r.bidx.to(at::kLong))) : z;
}

Napi::Value Three(const Napi::Env& env, const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, TensorToJs(env, a));
  out.Set(1u, TensorToJs(env, b));
  out.Set(2u, TensorToJs(env, c));
  return out;
}

// logProbs(logits, targets, invTemp, bias?, biasIndex?) -> [logp [N], lse [N], entropy [N]]
Napi::Value LogProbs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const Rows r = RowsOf(env, "logProbs", info, 0);
  if (!OwnLoops(r.x)) {
    const at::Tensor z = Z(r);
    const at::Tensor lse = at::logsumexp(z, {1});
    const at::Tensor lp = at::sub(z, lse.unsqueeze(1));
    const at::Tensor logp = at::gather(lp, 1, r.t.to(at::kLong).unsqueeze(1)).squeeze(1);
    return Three(env, logp, lse, at::neg(at::mul(at::exp(lp), lp).sum({1})));
  }
  at::Tensor logp = at::empty({r.N}, r.x.options()), lse = at::empty({r.N}, r.x.options()), ent = at::empty({r.N}, r.x.options());
  float *LP = logp.data_ptr<float>(), *LSE = lse.data_ptr<float>(), *E = ent.data_ptr<float>();
  r.Each([&](int64_t i, const float* x, const float* b, int t) {
    const RowStats st = Stats512(x, b, r.s, r.V, t);
    LP[i] = st.logp;
    LSE[i] = st.lse;
    E[i] = st.entropy;
  });
  return Three(env, logp, lse, ent);
}

// logProbsGrad(dy, logits, targets, invTemp, bias?, biasIndex?, lse) -> d logits [N, V]
Napi::Value LogProbsGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "logProbsGrad";
  const at::Tensor dy = TensorOf(env, info[0]).to(at::kFloat).contiguous();
  const Rows r = RowsOf(env, fn, info, 1);
  const at::Tensor lse = TensorOf(env, info[6]).to(at::kFloat).contiguous();
  // the gradient in the logits' own dtype, as autograd gives it
  const auto dtype = TensorOf(env, info[1]).scalar_type();
  if (dy.sizes().vec() != std::vector<int64_t>{r.N} || lse.sizes().vec() != std::vector<int64_t>{r.N}) Fail(env, fn, "dy and lse must be [" + std::to_string(r.N) + "]");
  if (!OwnLoops(r.x)) {
    at::Tensor g = at::mul(at::exp(at::sub(Z(r), lse.unsqueeze(1))), at::neg(dy).unsqueeze(1));
    g.scatter_add_(1, r.t.to(at::kLong).unsqueeze(1), dy.unsqueeze(1));
    return TensorToJs(env, at::mul(g, r.s).to(dtype));
  }
  at::Tensor g = at::empty_like(r.x);
  const float *DY = dy.data_ptr<float>(), *LSE = lse.data_ptr<float>();
  float* G = g.data_ptr<float>();
  r.Each([&](int64_t i, const float* x, const float* b, int t) { Grad512(x, b, r.s, r.V, t, LSE[i], DY[i] * r.s, G + i * r.V); });
  return TensorToJs(env, g.to(dtype));
}

}  // namespace

void RegisterLogProbs(Napi::Env env, Napi::Object exports) {
  exports.Set("logProbs", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "logProbs", [&] { return LogProbs(info); }); }));
  exports.Set("logProbsGrad", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "logProbsGrad", [&] { return LogProbsGrad(info); }); }));
}
