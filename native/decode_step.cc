// The fused decoding step of gta's own architecture (learned positions, LayerNorm, ReLU MLP, biases,
// tied head): one call does all of Transformer.step for every row (src/model/transformer.ts) and the
// output-head logits of the rows that need them, calling ATen's C++ functions directly instead of one
// tfjs kernel (and one dispatcher lookup by schema name) per operation.
//
// A session (decodeBegin) holds the weights and the prompt cache of one decode (shared ATen tensors,
// so the JS side freeing its ids cannot free them under us), each row's own keys and values in
// preallocated [B, H, capacity, dh] tensors written in place, and the attention bias over the prompt's
// padding. Each step's arithmetic is the tfjs path's, operation for operation (prefixAttention in
// src/backend/fused.ts: each group's prompt read by one product of its rows together), so the logits
// are the same to float rounding. Threads: the ATen calls run on the caller's thread at the count
// at::set_num_threads last set (smallWork in src/backend/select.ts wraps every decode).
#include "gta_arch.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace gta;

struct Layer {
  // the prompt's keys and values, [P, H, Tp, dh]; the rows' own, [B, H, capacity, dh]
  at::Tensor pk, pv, k, v;
};

struct Session {
  int64_t B, P, group, Tp, capacity;
  // own tokens cached so far
  int64_t t = 0;
  double scale, eps;
  Weights w;
  // [B, 1, 1, Tp + capacity]: NEG_INF at each row's padded prompt keys, 0 elsewhere
  at::Tensor bias;
  std::vector<Layer> layers;
};

std::vector<std::unique_ptr<Session>> sessions;

Session& SessionOf(const Napi::Env& env, const Napi::Value& v, const std::string& fn) {
  int64_t id = v.IsNumber() ? v.As<Napi::Number>().Int64Value() : -1;
  if (id < 0 || id >= static_cast<int64_t>(sessions.size()) || !sessions[id]) Fail(env, fn, "unknown session " + std::to_string(id));
  return *sessions[id];
}

// decodeBegin({ weights, promptK, promptV, pad, group, heads, capacity, scale, eps, negInf }) -> session id.
// weights: as gta_arch.h's Weights lists them; promptK, promptV: each layer's [P, H, Tp, dh]; pad: each
// row's padded prompt columns (B rows, row b continuing prompt b / group).
Napi::Value Begin(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "decodeBegin";
  if (!info[0].IsObject()) Fail(env, fn, "expected a spec object");
  auto spec = info[0].As<Napi::Object>();
  auto s = std::make_unique<Session>();
  s->w = WeightsOf(env, fn, spec.Get("weights"), Int(spec, "heads"));
  auto pk = Tensors(env, fn, spec.Get("promptK"));
  auto pv = Tensors(env, fn, spec.Get("promptV"));
  const size_t L = s->w.layers.size();
  if (L == 0 || pk.size() != L || pv.size() != L) Fail(env, fn, std::to_string(pk.size()) + " prompt key and " + std::to_string(pv.size()) + " value tensors for " + std::to_string(L) + " blocks");
  if (!spec.Get("pad").IsArray()) Fail(env, fn, "pad must be an array");
  auto pad = spec.Get("pad").As<Napi::Array>();
  s->B = pad.Length();
  s->group = Int(spec, "group");
  s->capacity = Int(spec, "capacity");
  s->scale = Num(spec, "scale");
  s->eps = Num(spec, "eps");
  double neg_inf = Num(spec, "negInf");
  if (s->group <= 0 || s->B % s->group != 0) Fail(env, fn, std::to_string(s->B) + " rows do not split into groups of " + std::to_string(s->group));
  if (s->capacity <= 0) Fail(env, fn, "capacity must be positive");
  s->P = s->B / s->group;
  const int64_t H = s->w.H, dh = s->w.dh;
  if (pk[0].dim() != 4) Fail(env, fn, "prompt keys of layer 0 have shape " + Shape(pk[0].sizes()) + ", expected [P, H, Tp, dh]");
  s->Tp = pk[0].size(2);
  for (size_t l = 0; l < L; l++) {
    Layer y;
    const std::string b = "blocks." + std::to_string(l) + ".";
    Expect(env, fn, y.pk = pk[l], {s->P, H, s->Tp, dh}, b + "prompt keys");
    Expect(env, fn, y.pv = pv[l], {s->P, H, s->Tp, dh}, b + "prompt values");
    y.k = at::empty({s->B, H, s->capacity, dh}, s->w.tok_emb.options());
    y.v = at::empty({s->B, H, s->capacity, dh}, s->w.tok_emb.options());
    s->layers.push_back(std::move(y));
  }
  at::Tensor bias = at::zeros({s->B, 1, 1, s->Tp + s->capacity}, at::kFloat);
  float* row = bias.data_ptr<float>();
  for (int64_t r = 0; r < s->B; r++, row += s->Tp + s->capacity) {
    int64_t n = pad.Get(static_cast<uint32_t>(r)).As<Napi::Number>().Int64Value();
    if (n < 0 || n > s->Tp) Fail(env, fn, "row " + std::to_string(r) + " has " + std::to_string(n) + " padded columns of " + std::to_string(s->Tp));
    for (int64_t j = 0; j < n; j++) row[j] = static_cast<float>(neg_inf);
  }
  s->bias = bias.to(s->w.tok_emb.device());
  for (size_t i = 0; i < sessions.size(); i++) {
    if (!sessions[i]) {
      sessions[i] = std::move(s);
      return Napi::Number::New(env, static_cast<double>(i));
    }
  }
  sessions.push_back(std::move(s));
  return Napi::Number::New(env, static_cast<double>(sessions.size() - 1));
}

Napi::Value DecodeBegin(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), "decodeBegin", [&] { return Begin(info); });
}

// An Int32Array argument of `n` values (any length when n < 0).
Napi::Int32Array Ints(const Napi::Env& env, const Napi::Value& v, int64_t n, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) Fail(env, "decodeStep", what + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  if (n >= 0 && static_cast<int64_t>(a.ElementLength()) != n) Fail(env, "decodeStep", what + " has " + std::to_string(a.ElementLength()) + " values for " + std::to_string(n) + " rows");
  return a;
}

// The values of `a` as an int32 tensor on `dev` (on the CPU a view of the JS memory: valid during the call only).
at::Tensor IntTensor(Napi::Int32Array a, const c10::Device& dev) {
  return at::from_blob(a.Data(), {static_cast<int64_t>(a.ElementLength())}, at::kInt).to(dev);
}

Napi::Value Step(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  Session& s = SessionOf(env, info[0], "decodeStep");
  if (s.t >= s.capacity) Fail(env, "decodeStep", "the own cache is full (" + std::to_string(s.capacity) + " tokens)");
  auto idsArg = Ints(env, info[1], s.B, "ids");
  auto posArg = Ints(env, info[2], s.B, "positions");
  auto needArg = Ints(env, info[3], -1, "need");
  const int64_t n = needArg.ElementLength();
  // every row in order: the hidden states as they are, as the tfjs path takes them
  bool all = n == s.B;
  for (int64_t i = 0; i < n; i++) {
    if (needArg[i] < 0 || needArg[i] >= s.B) Fail(env, "decodeStep", "need names row " + std::to_string(needArg[i]) + " of " + std::to_string(s.B));
    all = all && needArg[i] == i;
  }
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) Fail(env, "decodeStep", "out must be a Float32Array");
  auto out = info[4].As<Napi::Float32Array>();
  const Weights& w = s.w;
  if (static_cast<int64_t>(out.ElementLength()) < n * w.V) Fail(env, "decodeStep", "out has " + std::to_string(out.ElementLength()) + " values for " + std::to_string(n * w.V));
  const auto dev = w.tok_emb.device();
  const int64_t B = s.B, P = s.P, G = s.group, H = w.H, dh = w.dh, d = w.d, Tp = s.Tp, t = s.t + 1;
  // [B, H, 1, x] <-> [P, H, G, x]: a group's rows side by side, per head (prefixAttention's grouped)
  auto grouped = [&](const at::Tensor& x, int64_t last) { return x.reshape({P, G, H, 1, last}).permute({0, 2, 1, 3, 4}).reshape({P, H, G, last}); };
  auto ungrouped = [&](const at::Tensor& x, int64_t last) { return x.reshape({P, H, G, 1, last}).permute({0, 2, 1, 3, 4}).reshape({B, H, 1, last}); };
  // a [B, d] part of the projection -> [B, H, 1, dh]
  auto heads = [&](const at::Tensor& x) { return x.reshape({B, 1, H, dh}).permute({0, 2, 1, 3}); };
  at::Tensor bias = s.bias.narrow(3, 0, Tp + t);
  at::Tensor x = at::add(at::index_select(w.tok_emb, 0, IntTensor(idsArg, dev)), at::index_select(w.pos_emb, 0, IntTensor(posArg, dev)));
  for (size_t l = 0; l < s.layers.size(); l++) {
    const LayerWeights& lw = w.layers[l];
    Layer& y = s.layers[l];
    at::Tensor proj = at::add(Product(LayerNorm(x, lw.ln1_g, lw.ln1_b, s.eps), lw.wqkv), lw.bqkv);
    at::Tensor q = heads(proj.narrow(1, 0, d));
    // this token's key and value, written in place at column t - 1 of the row's own cache
    y.k.select(2, s.t).copy_(heads(proj.narrow(1, d, d)).select(2, 0));
    y.v.select(2, s.t).copy_(heads(proj.narrow(1, 2 * d, d)).select(2, 0));
    at::Tensor k = y.k.narrow(2, 0, t);
    at::Tensor v = y.v.narrow(2, 0, t);
    at::Tensor scores = at::cat({ungrouped(Product(grouped(q, dh), y.pk.transpose(-2, -1)), Tp), Product(q, k.transpose(-2, -1))}, 3);
    at::Tensor probs = at::_softmax(at::add(at::mul(scores, s.scale), bias), -1, false);
    at::Tensor att = at::add(ungrouped(Product(grouped(probs.narrow(3, 0, Tp), Tp), y.pv), dh), Product(probs.narrow(3, Tp, t), v));
    at::Tensor ctx = att.permute({0, 2, 1, 3}).reshape({B, d});
    x = at::add(x, at::add(Product(ctx, lw.wo), lw.bo));
    at::Tensor mid = at::relu(at::add(Product(LayerNorm(x, lw.ln2_g, lw.ln2_b, s.eps), lw.w1), lw.b1));
    x = at::add(x, at::add(Product(mid, lw.w2), lw.b2));
  }
  s.t++;
  if (n == 0) return env.Undefined();
  at::Tensor hidden = LayerNorm(x, w.lnf_g, w.lnf_b, s.eps);
  if (!all) hidden = at::index_select(hidden, 0, IntTensor(needArg, dev));
  at::Tensor dst = at::from_blob(out.Data(), {n, w.V}, at::kFloat);
  BigWork big(2.0 * static_cast<double>(hidden.numel()) * static_cast<double>(w.V));
  if (dev.is_cpu()) at::mm_out(dst, hidden, w.tok_emb.t());
  else dst.copy_(at::mm(hidden, w.tok_emb.t()));
  return env.Undefined();
}

// decodeStep(session, ids, positions, need, out): one new token per row (ids and positions: Int32Array
// [B]), whose keys and values join the row's own cache; writes the logits of rows `need` (Int32Array,
// in that order) to out (a Float32Array of at least need.length * V values) as [need.length, V].
Napi::Value DecodeStep(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), "decodeStep", [&] { return Step(info); });
}

// decodeEnd(session): frees the session's tensors.
Napi::Value DecodeEnd(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  SessionOf(env, info[0], "decodeEnd");
  sessions[info[0].As<Napi::Number>().Int64Value()].reset();
  return env.Undefined();
}

// sampleRow(logits, ids, divisor, u) -> the id drawn: softmax(logits / divisor) over the candidates
// `ids` (an Int32Array of columns) by inverse CDF at u in [0, 1), with sampleFrom's arithmetic
// (src/sample/rollout.ts): the shift by the candidates' largest logit, weights exp(x / divisor - max)
// in double (vectorized, SLEEF), their sum in the candidates' order, then the walk. One call per token
// instead of a JavaScript loop of a Math.exp per candidate.
Napi::Value SampleRow(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "sampleRow";
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) Fail(env, fn, "logits must be a Float32Array");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) Fail(env, fn, "ids must be an Int32Array");
  auto logits = info[0].As<Napi::Float32Array>();
  auto ids = info[1].As<Napi::Int32Array>();
  const int64_t V = logits.ElementLength(), n = ids.ElementLength();
  if (n == 0) Fail(env, fn, "no candidates");
  const double divisor = info[2].As<Napi::Number>().DoubleValue();
  const double u01 = info[3].As<Napi::Number>().DoubleValue();
  const float* x = logits.Data();
  const int32_t* id = ids.Data();
  // x / 1 is exactly x: as in JavaScript, temperature 1 divides nothing
  const bool divide = divisor != 1;
  double max = -INFINITY;
  for (int64_t k = 0; k < n; k++) {
    if (id[k] < 0 || id[k] >= V) Fail(env, fn, "candidate " + std::to_string(id[k]) + " outside " + std::to_string(V) + " logits");
    const double v = divide ? x[id[k]] / divisor : x[id[k]];
    if (v > max) max = v;
  }
  thread_local at::Tensor w;
  if (!w.defined() || w.numel() < V) w = at::empty({V}, at::kDouble);
  at::Tensor row = w.narrow(0, 0, V);
  row.copy_(at::from_blob(const_cast<float*>(x), {V}, at::kFloat));
  if (divide) row.div_(divisor);
  row.sub_(max);
  at::exp_out(row, row);
  const double* p = row.data_ptr<double>();
  double total = 0;
  for (int64_t k = 0; k < n; k++) total += p[id[k]];
  double u = u01 * total;
  for (int64_t k = 0; k < n; k++) {
    u -= p[id[k]];
    if (u <= 0) return Napi::Number::New(env, id[k]);
  }
  return Napi::Number::New(env, id[n - 1]);
}

}  // namespace

void RegisterDecodeStep(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeBegin", Napi::Function::New(env, DecodeBegin));
  exports.Set("decodeStep", Napi::Function::New(env, DecodeStep));
  exports.Set("decodeEnd", Napi::Function::New(env, DecodeEnd));
  exports.Set("sampleRow", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "sampleRow", [&] { return SampleRow(info); }); }));
}
