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
#include <napi.h>

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

// torch_addon.cc: the tensor behind a JS tensor id.
const at::Tensor& TensorOf(const Napi::Env& env, const Napi::Value& v);

namespace {

// Per-layer weights, in the order the JS side lists them (src/sample/native_step.ts).
constexpr int kLayerWeights = 12;

struct Layer {
  at::Tensor ln1_g, ln1_b, wqkv, bqkv, wo, bo, ln2_g, ln2_b, w1, b1, w2, b2;
  // the prompt's keys and values, [P, H, Tp, dh]; the rows' own, [B, H, capacity, dh]
  at::Tensor pk, pv, k, v;
};

struct Session {
  int64_t B, P, group, H, dh, d, V, Tp, capacity;
  // own tokens cached so far
  int64_t t = 0;
  double scale, eps;
  at::Tensor tok_emb, pos_emb, lnf_g, lnf_b;
  // [B, 1, 1, Tp + capacity]: NEG_INF at each row's padded prompt keys, 0 elsewhere
  at::Tensor bias;
  std::vector<Layer> layers;
};

std::vector<std::unique_ptr<Session>> sessions;

[[noreturn]] void Fail(const Napi::Env& env, const std::string& fn, const std::string& msg) {
  throw Napi::Error::New(env, fn + ": " + msg);
}

std::string Shape(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

void Expect(const Napi::Env& env, const at::Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
  if (t.scalar_type() != at::kFloat) Fail(env, "decodeBegin", what + " is not float32");
  if (t.sizes().vec() != shape) Fail(env, "decodeBegin", what + " has shape " + Shape(t.sizes()) + ", expected " + Shape(shape));
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

int64_t Int(const Napi::Object& o, const char* key) {
  return o.Get(key).As<Napi::Number>().Int64Value();
}

std::vector<at::Tensor> Tensors(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsArray()) Fail(env, "decodeBegin", "expected an array of tensor ids");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(TensorOf(env, arr.Get(i)));
  return out;
}

Session& SessionOf(const Napi::Env& env, const Napi::Value& v, const std::string& fn) {
  int64_t id = v.IsNumber() ? v.As<Napi::Number>().Int64Value() : -1;
  if (id < 0 || id >= static_cast<int64_t>(sessions.size()) || !sessions[id]) Fail(env, fn, "unknown session " + std::to_string(id));
  return *sessions[id];
}

// decodeBegin({ weights, promptK, promptV, pad, group, heads, capacity, scale, eps, negInf }) -> session id.
// weights: tok_emb, pos_emb, per layer ln1.g ln1.b wqkv bqkv wo bo ln2.g ln2.b w1 b1 w2 b2, then ln_f.g
// ln_f.b; promptK, promptV: each layer's [P, H, Tp, dh]; pad: each row's padded prompt columns (B
// rows, row b continuing prompt b / group).
Napi::Value Begin(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) Fail(env, "decodeBegin", "expected a spec object");
  auto spec = info[0].As<Napi::Object>();
  auto s = std::make_unique<Session>();
  auto w = Tensors(env, spec.Get("weights"));
  auto pk = Tensors(env, spec.Get("promptK"));
  auto pv = Tensors(env, spec.Get("promptV"));
  const size_t L = pk.size();
  if (L == 0 || pv.size() != L) Fail(env, "decodeBegin", std::to_string(pk.size()) + " prompt key and " + std::to_string(pv.size()) + " value tensors");
  if (w.size() != 4 + kLayerWeights * L) Fail(env, "decodeBegin", std::to_string(w.size()) + " weights for " + std::to_string(L) + " layers (expected " + std::to_string(4 + kLayerWeights * L) + ")");
  if (!spec.Get("pad").IsArray()) Fail(env, "decodeBegin", "pad must be an array");
  auto pad = spec.Get("pad").As<Napi::Array>();
  s->B = pad.Length();
  s->group = Int(spec, "group");
  s->H = Int(spec, "heads");
  s->capacity = Int(spec, "capacity");
  s->scale = spec.Get("scale").As<Napi::Number>().DoubleValue();
  s->eps = spec.Get("eps").As<Napi::Number>().DoubleValue();
  double neg_inf = spec.Get("negInf").As<Napi::Number>().DoubleValue();
  if (s->group <= 0 || s->B % s->group != 0) Fail(env, "decodeBegin", std::to_string(s->B) + " rows do not split into groups of " + std::to_string(s->group));
  if (s->capacity <= 0) Fail(env, "decodeBegin", "capacity must be positive");
  s->P = s->B / s->group;
  s->tok_emb = w[0];
  s->pos_emb = w[1];
  if (s->tok_emb.dim() != 2 || s->pos_emb.dim() != 2) Fail(env, "decodeBegin", "tok_emb and pos_emb must be matrices");
  s->V = s->tok_emb.size(0);
  s->d = s->tok_emb.size(1);
  const int64_t d = s->d;
  if (s->H <= 0 || d % s->H != 0) Fail(env, "decodeBegin", "d_model " + std::to_string(d) + " does not split into " + std::to_string(s->H) + " heads");
  s->dh = d / s->H;
  Expect(env, s->tok_emb, {s->V, d}, "tok_emb");
  Expect(env, s->pos_emb, {s->pos_emb.size(0), d}, "pos_emb");
  if (pk[0].dim() != 4) Fail(env, "decodeBegin", "prompt keys of layer 0 have shape " + Shape(pk[0].sizes()) + ", expected [P, H, Tp, dh]");
  s->Tp = pk[0].size(2);
  const int64_t ff = w[2 + 8].dim() == 2 ? w[2 + 8].size(1) : -1;
  for (size_t l = 0; l < L; l++) {
    Layer y;
    const at::Tensor* p = &w[2 + kLayerWeights * l];
    const std::string b = "blocks." + std::to_string(l) + ".";
    Expect(env, y.ln1_g = p[0], {d}, b + "ln1.g");
    Expect(env, y.ln1_b = p[1], {d}, b + "ln1.b");
    Expect(env, y.wqkv = p[2], {d, 3 * d}, b + "attn.wqkv");
    Expect(env, y.bqkv = p[3], {3 * d}, b + "attn.bqkv");
    Expect(env, y.wo = p[4], {d, d}, b + "attn.wo");
    Expect(env, y.bo = p[5], {d}, b + "attn.bo");
    Expect(env, y.ln2_g = p[6], {d}, b + "ln2.g");
    Expect(env, y.ln2_b = p[7], {d}, b + "ln2.b");
    Expect(env, y.w1 = p[8], {d, ff}, b + "mlp.w1");
    Expect(env, y.b1 = p[9], {ff}, b + "mlp.b1");
    Expect(env, y.w2 = p[10], {ff, d}, b + "mlp.w2");
    Expect(env, y.b2 = p[11], {d}, b + "mlp.b2");
    Expect(env, y.pk = pk[l], {s->P, s->H, s->Tp, s->dh}, b + "prompt keys");
    Expect(env, y.pv = pv[l], {s->P, s->H, s->Tp, s->dh}, b + "prompt values");
    y.k = at::empty({s->B, s->H, s->capacity, s->dh}, s->tok_emb.options());
    y.v = at::empty({s->B, s->H, s->capacity, s->dh}, s->tok_emb.options());
    s->layers.push_back(std::move(y));
  }
  s->lnf_g = w[w.size() - 2];
  s->lnf_b = w[w.size() - 1];
  Expect(env, s->lnf_g, {d}, "ln_f.g");
  Expect(env, s->lnf_b, {d}, "ln_f.b");
  at::Tensor bias = at::zeros({s->B, 1, 1, s->Tp + s->capacity}, at::kFloat);
  float* row = bias.data_ptr<float>();
  for (int64_t r = 0; r < s->B; r++, row += s->Tp + s->capacity) {
    int64_t n = pad.Get(static_cast<uint32_t>(r)).As<Napi::Number>().Int64Value();
    if (n < 0 || n > s->Tp) Fail(env, "decodeBegin", "row " + std::to_string(r) + " has " + std::to_string(n) + " padded columns of " + std::to_string(s->Tp));
    for (int64_t j = 0; j < n; j++) row[j] = static_cast<float>(neg_inf);
  }
  s->bias = bias.to(s->tok_emb.device());
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

at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& g, const at::Tensor& b, double eps) {
  return std::get<0>(at::native_layer_norm(x, {x.size(-1)}, g, b, eps));
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
  if (static_cast<int64_t>(out.ElementLength()) < n * s.V) Fail(env, "decodeStep", "out has " + std::to_string(out.ElementLength()) + " values for " + std::to_string(n * s.V));
  const auto dev = s.tok_emb.device();
  const int64_t B = s.B, P = s.P, G = s.group, H = s.H, dh = s.dh, d = s.d, Tp = s.Tp, t = s.t + 1;
  // [B, H, 1, x] <-> [P, H, G, x]: a group's rows side by side, per head (prefixAttention's grouped)
  auto grouped = [&](const at::Tensor& x, int64_t last) { return x.reshape({P, G, H, 1, last}).permute({0, 2, 1, 3, 4}).reshape({P, H, G, last}); };
  auto ungrouped = [&](const at::Tensor& x, int64_t last) { return x.reshape({P, H, G, 1, last}).permute({0, 2, 1, 3, 4}).reshape({B, H, 1, last}); };
  // a [B, d] part of the projection -> [B, H, 1, dh]
  auto heads = [&](const at::Tensor& x) { return x.reshape({B, 1, H, dh}).permute({0, 2, 1, 3}); };
  at::Tensor bias = s.bias.narrow(3, 0, Tp + t);
  at::Tensor x = at::add(at::index_select(s.tok_emb, 0, IntTensor(idsArg, dev)), at::index_select(s.pos_emb, 0, IntTensor(posArg, dev)));
  for (auto& y : s.layers) {
    at::Tensor proj = at::add(at::matmul(LayerNorm(x, y.ln1_g, y.ln1_b, s.eps), y.wqkv), y.bqkv);
    at::Tensor q = heads(proj.narrow(1, 0, d));
    // this token's key and value, written in place at column t - 1 of the row's own cache
    y.k.select(2, s.t).copy_(heads(proj.narrow(1, d, d)).select(2, 0));
    y.v.select(2, s.t).copy_(heads(proj.narrow(1, 2 * d, d)).select(2, 0));
    at::Tensor k = y.k.narrow(2, 0, t);
    at::Tensor v = y.v.narrow(2, 0, t);
    at::Tensor scores = at::cat({ungrouped(at::matmul(grouped(q, dh), y.pk.transpose(-2, -1)), Tp), at::matmul(q, k.transpose(-2, -1))}, 3);
    at::Tensor probs = at::_softmax(at::add(at::mul(scores, s.scale), bias), -1, false);
    at::Tensor att = at::add(ungrouped(at::matmul(grouped(probs.narrow(3, 0, Tp), Tp), y.pv), dh), at::matmul(probs.narrow(3, Tp, t), v));
    at::Tensor ctx = att.permute({0, 2, 1, 3}).reshape({B, d});
    x = at::add(x, at::add(at::matmul(ctx, y.wo), y.bo));
    at::Tensor mid = at::relu(at::add(at::matmul(LayerNorm(x, y.ln2_g, y.ln2_b, s.eps), y.w1), y.b1));
    x = at::add(x, at::add(at::matmul(mid, y.w2), y.b2));
  }
  s.t++;
  if (n == 0) return env.Undefined();
  at::Tensor hidden = LayerNorm(x, s.lnf_g, s.lnf_b, s.eps);
  if (!all) hidden = at::index_select(hidden, 0, IntTensor(needArg, dev));
  at::Tensor dst = at::from_blob(out.Data(), {n, s.V}, at::kFloat);
  if (dev.is_cpu()) at::mm_out(dst, hidden, s.tok_emb.t());
  else dst.copy_(at::mm(hidden, s.tok_emb.t()));
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

}  // namespace

void RegisterDecodeStep(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeBegin", Napi::Function::New(env, DecodeBegin));
  exports.Set("decodeStep", Napi::Function::New(env, DecodeStep));
  exports.Set("decodeEnd", Napi::Function::New(env, DecodeEnd));
}
