// The fused forward and backward pass of gta's own architecture (gta_arch.h): one addon call runs
// Transformer.forward (or forwardShared: completions after prompts shared by groups of rows) over every
// block, and one more its whole gradient, written out by hand in ATen instead of the several hundred
// tfjs kernels (each with its tape entry) of the composed pass. ATen's autograd stays off (the addon
// runs under InferenceMode), so the backward is spelled out here, layer by layer.
//
// The forward's arithmetic is the tfjs path's, operation for operation (the fused attention kernel of
// src/backend/torch/kernels/fused.ts, prefixAttention in src/backend/fused.ts), so its hidden states
// are the same to float rounding. What the backward needs (each block's inputs, layer-norm statistics,
// attention probabilities, the weights as they were) stays here in a Pass, owned by a one-element
// "handle" tensor: JS keeps the handle as long as tfjs keeps the pass's saved tensors and frees it
// like any other, which frees the Pass. Dropout (whole sequences only) multiplies by masks the JS side
// draws as the tfjs path does (dropoutMask in src/backend/fused.ts), so both drop the same units.
#include "gta_arch.h"

#include <algorithm>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using namespace gta;

// One block's saved activations for one stream of rows (n sequences of T tokens, flattened to n*T rows).
struct BlockSaved {
  at::Tensor x, m1, r1, h1, q, k, v, probs, ctx, x2, m2, r2, h2, mid;
  // dropout multipliers (undefined without dropout): attention probabilities [n, H, T, T], the
  // attention output and the MLP output [n*T, d]
  at::Tensor drop_att, drop_out, drop_mlp;
};

// A stream: prompts (or whole sequences) attend to themselves; completions also to their group's prompt.
struct Stream {
  at::Tensor ids, pos, bias;
  // the embeddings' dropout multiplier [n*T, d] (undefined without dropout)
  at::Tensor drop_emb;
  int64_t n = 0, T = 0;
  std::vector<BlockSaved> blocks;
  // the final layer norm's input and statistics
  at::Tensor xf, mf, rf;
};

struct Pass {
  Weights w;
  // dropout multipliers as JS gave them: embeddings, then per block attention, output, MLP
  std::vector<at::Tensor> drop;
  double scale = 1, eps = 1e-5;
  bool shared = false;
  int64_t group = 1;
  Stream p, c;
  // A big pass runs as parts, one per thread (Split); the streams above then stay unused.
  std::vector<std::unique_ptr<Pass>> parts;
};

// The passes whose handles are alive (trainBackward checks that it was given one).
std::unordered_set<void*> live;

// A [n*T, d] part of the projection as heads, [n, H, T, dh].
at::Tensor Heads(const at::Tensor& x, int64_t n, int64_t T, int64_t H, int64_t dh) {
  return x.reshape({n, T, H, dh}).permute({0, 2, 1, 3});
}

// [n, H, T, dh] heads back to rows [n*T, H*dh].
at::Tensor Rows(const at::Tensor& x) {
  return x.permute({0, 2, 1, 3}).reshape({x.size(0) * x.size(2), x.size(1) * x.size(3)});
}

// [B, H, Tq, x] <-> [P, H, G*Tq, x]: a group's rows side by side, per head (prefixAttention's grouped).
at::Tensor Grouped(const at::Tensor& x, int64_t G) {
  const int64_t B = x.size(0), H = x.size(1), Tq = x.size(2), last = x.size(3);
  return x.reshape({B / G, G, H, Tq, last}).permute({0, 2, 1, 3, 4}).reshape({B / G, H, G * Tq, last});
}

at::Tensor Ungrouped(const at::Tensor& x, int64_t G, int64_t Tq) {
  const int64_t P = x.size(0), H = x.size(1), last = x.size(3);
  return x.reshape({P, H, G, Tq, last}).permute({0, 2, 1, 3, 4}).reshape({P * G, H, Tq, last});
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> Norm(const at::Tensor& x, const at::Tensor& g, const at::Tensor& b, double eps) {
  return at::native_layer_norm(x, {x.size(-1)}, g, b, eps);
}

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return at::add(Product(x, w), b);
}

// x times a dropout multiplier, or x as it is without one.
at::Tensor Drop(const at::Tensor& x, const at::Tensor& mask) {
  return mask.defined() ? at::mul(x, mask) : x;
}

// Layer norm, then the fused q/k/v projection, saved into s.
void Qkv(BlockSaved& s, const Pass& p, const LayerWeights& y, int64_t n, int64_t T) {
  std::tie(s.h1, s.m1, s.r1) = Norm(s.x, y.ln1_g, y.ln1_b, p.eps);
  at::Tensor proj = Linear(s.h1, y.wqkv, y.bqkv);
  const int64_t d = p.w.d;
  s.q = Heads(proj.narrow(1, 0, d), n, T, p.w.H, p.w.dh);
  s.k = Heads(proj.narrow(1, d, d), n, T, p.w.H, p.w.dh);
  s.v = Heads(proj.narrow(1, 2 * d, d), n, T, p.w.H, p.w.dh);
}

// The block after attention (`att` [n, H, T, dh]): output projection, residual, MLP; returns the block's output.
at::Tensor AfterAttention(BlockSaved& s, const Pass& p, const LayerWeights& y, const at::Tensor& att) {
  s.ctx = Rows(att);
  s.x2 = at::add(s.x, Drop(Linear(s.ctx, y.wo, y.bo), s.drop_out));
  std::tie(s.h2, s.m2, s.r2) = Norm(s.x2, y.ln2_g, y.ln2_b, p.eps);
  s.mid = at::relu(Linear(s.h2, y.w1, y.b1));
  return at::add(s.x2, Drop(Linear(s.mid, y.w2, y.b2), s.drop_mlp));
}

at::Tensor Embed(const Weights& w, const Stream& st) {
  return at::add(at::index_select(w.tok_emb, 0, st.ids.reshape({-1})), at::index_select(w.pos_emb, 0, st.pos.reshape({-1})));
}

// Runs the pass, keeping in `p` what the backward needs; returns the hidden states after the final
// layer norm ([n, T, d], or with completions the rows forwardShared returns).
at::Tensor ForwardOne(Pass& p) {
  const Weights& w = p.w;
  Stream& a = p.p;
  Stream& c = p.c;
  const int64_t rows = a.n * a.T, d = w.d;
  if (!p.drop.empty()) a.drop_emb = p.drop[0].reshape({rows, d});
  at::Tensor xa = Drop(Embed(w, a), a.drop_emb);
  at::Tensor xc = p.shared ? Embed(w, c) : at::Tensor();
  for (size_t l = 0; l < w.layers.size(); l++) {
    const LayerWeights& y = w.layers[l];
    BlockSaved sa, sc;
    if (!p.drop.empty()) {
      sa.drop_att = p.drop[1 + 3 * l];
      sa.drop_out = p.drop[2 + 3 * l].reshape({rows, d});
      sa.drop_mlp = p.drop[3 + 3 * l].reshape({rows, d});
    }
    sa.x = xa;
    Qkv(sa, p, y, a.n, a.T);
    at::Tensor scores = Product(sa.q, sa.k.transpose(-2, -1));
    scores.mul_(p.scale);
    scores.add_(a.bias);
    sa.probs = at::_softmax(scores, -1, false);
    xa = AfterAttention(sa, p, y, Product(Drop(sa.probs, sa.drop_att), sa.v));
    if (p.shared) {
      const int64_t Tp = a.T, G = p.group;
      sc.x = xc;
      Qkv(sc, p, y, c.n, c.T);
      at::Tensor s = at::cat({Ungrouped(Product(Grouped(sc.q, G), sa.k.transpose(-2, -1)), G, c.T), Product(sc.q, sc.k.transpose(-2, -1))}, 3);
      sc.probs = at::_softmax(at::add(at::mul(s, p.scale), c.bias), -1, false);
      at::Tensor att = at::add(Ungrouped(Product(Grouped(sc.probs.narrow(3, 0, Tp), G), sa.v), G, c.T), Product(sc.probs.narrow(3, Tp, c.T), sc.v));
      xc = AfterAttention(sc, p, y, att);
      c.blocks.push_back(std::move(sc));
    }
    a.blocks.push_back(std::move(sa));
  }
  at::Tensor ha;
  a.xf = xa;
  std::tie(ha, a.mf, a.rf) = Norm(xa, w.lnf_g, w.lnf_b, p.eps);
  if (!p.shared) return ha.reshape({a.n, a.T, w.d});
  at::Tensor hc;
  c.xf = xc;
  std::tie(hc, c.mf, c.rf) = Norm(xc, w.lnf_g, w.lnf_b, p.eps);
  // each prompt's last column (it predicts its completions' first token), then every completion token
  return at::cat({ha.reshape({a.n, a.T, w.d}).select(1, a.T - 1), hc}, 0);
}

// Gradients, in the order of Weights::All.
struct Grads {
  std::vector<at::Tensor> g;
  void Add(size_t i, const at::Tensor& x) { g[i] = g[i].defined() ? at::add(g[i], x) : x; }
};

constexpr size_t kLn1G = 0, kLn1B = 1, kWqkv = 2, kBqkv = 3, kWo = 4, kBo = 5, kLn2G = 6, kLn2B = 7, kW1 = 8, kB1 = 9, kW2 = 10, kB2 = 11;

// The block after attention, backwards: from the gradient of its output, returns the gradient of its
// input x through the residuals (dx2) and of the attention output ([n, H, T, dh]).
std::pair<at::Tensor, at::Tensor> AfterAttentionBack(const BlockSaved& s, const Pass& p, const LayerWeights& y, const at::Tensor& dout, Grads& g, size_t base) {
  const int64_t d = p.w.d;
  at::Tensor dmlp = Drop(dout, s.drop_mlp);
  g.Add(base + kW2, Product(s.mid.t(), dmlp));
  g.Add(base + kB2, dmlp.sum(0));
  at::Tensor dpre = at::threshold_backward(Product(dmlp, y.w2.t()), s.mid, 0);
  g.Add(base + kW1, Product(s.h2.t(), dpre));
  g.Add(base + kB1, dpre.sum(0));
  auto ln2 = at::native_layer_norm_backward(Product(dpre, y.w1.t()), s.x2, {d}, s.m2, s.r2, y.ln2_g, y.ln2_b, {true, true, true});
  g.Add(base + kLn2G, std::get<1>(ln2));
  g.Add(base + kLn2B, std::get<2>(ln2));
  at::Tensor dx2 = at::add(dout, std::get<0>(ln2));
  at::Tensor dattout = Drop(dx2, s.drop_out);
  g.Add(base + kWo, Product(s.ctx.t(), dattout));
  g.Add(base + kBo, dattout.sum(0));
  at::Tensor dctx = Product(dattout, y.wo.t());
  const int64_t n = s.q.size(0), T = s.q.size(2);
  return {dx2, Heads(dctx, n, T, p.w.H, p.w.dh)};
}

// The q/k/v projection and the first layer norm, backwards: the gradient of the block's input.
at::Tensor QkvBack(const BlockSaved& s, const Pass& p, const LayerWeights& y, const at::Tensor& dq, const at::Tensor& dk, const at::Tensor& dv, const at::Tensor& dx2, Grads& g, size_t base) {
  at::Tensor dproj = at::cat({Rows(dq), Rows(dk), Rows(dv)}, 1);
  g.Add(base + kWqkv, Product(s.h1.t(), dproj));
  g.Add(base + kBqkv, dproj.sum(0));
  auto ln1 = at::native_layer_norm_backward(Product(dproj, y.wqkv.t()), s.x, {p.w.d}, s.m1, s.r1, y.ln1_g, y.ln1_b, {true, true, true});
  g.Add(base + kLn1G, std::get<1>(ln1));
  g.Add(base + kLn1B, std::get<2>(ln1));
  return at::add(dx2, std::get<0>(ln1));
}

at::Tensor SoftmaxBack(const at::Tensor& dprobs, const at::Tensor& probs, double scale) {
  return at::mul(at::_softmax_backward_data(dprobs, probs, -1, at::kFloat), scale);
}

void FinalNormBack(const Stream& st, const Pass& p, const at::Tensor& dy, at::Tensor& dx, Grads& g, size_t n_weights) {
  auto lnf = at::native_layer_norm_backward(dy, st.xf, {p.w.d}, st.mf, st.rf, p.w.lnf_g, p.w.lnf_b, {true, true, true});
  dx = std::get<0>(lnf);
  g.Add(n_weights - 2, std::get<1>(lnf));
  g.Add(n_weights - 1, std::get<2>(lnf));
}

void EmbedBack(const Stream& st, const Pass& p, const at::Tensor& dx, Grads& g) {
  if (!g.g[0].defined()) g.g[0] = at::zeros_like(p.w.tok_emb);
  if (!g.g[1].defined()) g.g[1] = at::zeros_like(p.w.pos_emb);
  g.g[0].index_add_(0, st.ids.reshape({-1}).to(at::kLong), dx);
  g.g[1].index_add_(0, st.pos.reshape({-1}).to(at::kLong), dx);
}

// Every weight's gradient from the gradient `dy` of ForwardOne's result.
std::vector<at::Tensor> BackwardOne(const Pass& p, const at::Tensor& dy) {
  const Weights& w = p.w;
  const size_t N = 4 + kLayerWeights * w.layers.size();
  Grads g{std::vector<at::Tensor>(N)};
  const Stream& a = p.p;
  const Stream& c = p.c;
  const int64_t d = w.d;
  at::Tensor dxa, dxc;
  if (p.shared) {
    at::Tensor dya = at::zeros({a.n, a.T, d}, dy.options());
    dya.select(1, a.T - 1).copy_(dy.narrow(0, 0, a.n));
    FinalNormBack(a, p, dya.reshape({a.n * a.T, d}), dxa, g, N);
    FinalNormBack(c, p, dy.narrow(0, a.n, c.n * c.T), dxc, g, N);
  } else {
    FinalNormBack(a, p, dy.reshape({a.n * a.T, d}), dxa, g, N);
  }
  for (size_t l = w.layers.size(); l-- > 0;) {
    const LayerWeights& y = w.layers[l];
    const BlockSaved& sa = a.blocks[l];
    const size_t base = 2 + kLayerWeights * l;
    auto [dx2a, datt] = AfterAttentionBack(sa, p, y, dxa, g, base);
    // the prompts' own attention: softmax(q k^T * scale + bias) v
    at::Tensor dva = Product(Drop(sa.probs, sa.drop_att).transpose(-2, -1), datt);
    at::Tensor dsa = SoftmaxBack(Drop(Product(datt, sa.v.transpose(-2, -1)), sa.drop_att), sa.probs, p.scale);
    at::Tensor dqa = Product(dsa, sa.k);
    at::Tensor dka = Product(dsa.transpose(-2, -1), sa.q);
    if (p.shared) {
      // completions: their group's prompt keys and values, then their own
      const BlockSaved& sc = c.blocks[l];
      const int64_t G = p.group, Tp = a.T, Tc = c.T;
      auto [dx2c, dattc] = AfterAttentionBack(sc, p, y, dxc, g, base);
      at::Tensor pp = sc.probs.narrow(3, 0, Tp);
      at::Tensor po = sc.probs.narrow(3, Tp, Tc);
      at::Tensor gd = Grouped(dattc, G);
      at::Tensor dpp = Ungrouped(Product(gd, sa.v.transpose(-2, -1)), G, Tc);
      dva = at::add(dva, Product(Grouped(pp, G).transpose(-2, -1), gd));
      at::Tensor dvc = Product(po.transpose(-2, -1), dattc);
      at::Tensor ds = SoftmaxBack(at::cat({dpp, Product(dattc, sc.v.transpose(-2, -1))}, 3), sc.probs, p.scale);
      at::Tensor dsp = ds.narrow(3, 0, Tp);
      at::Tensor dso = ds.narrow(3, Tp, Tc);
      at::Tensor gdsp = Grouped(dsp, G);
      at::Tensor dqc = at::add(Ungrouped(Product(gdsp, sa.k), G, Tc), Product(dso, sc.k));
      dka = at::add(dka, Product(gdsp.transpose(-2, -1), Grouped(sc.q, G)));
      at::Tensor dkc = Product(dso.transpose(-2, -1), sc.q);
      dxc = QkvBack(sc, p, y, dqc, dkc, dvc, dx2c, g, base);
    }
    dxa = QkvBack(sa, p, y, dqa, dka, dva, dx2a, g, base);
  }
  EmbedBack(a, p, Drop(dxa, a.drop_emb), g);
  if (p.shared) EmbedBack(c, p, dxc, g);
  return g.g;
}

// Passes this big run as parts, whole sequences (or whole prompt groups) each, one per thread big work
// may use: each part on its own thread runs its operators single-threaded, so the pass wakes the
// sleeping threads once instead of at every operator above ATen's grain size (what keeps a second
// core from paying with OMP_WAIT_POLICY=PASSIVE). The weight gradients are the parts' sums, added in
// part order: the same numbers at a given thread count, and within float rounding of one part.
constexpr double kSplitFlops = 128e6;

// The forward's floating-point operations, roughly: 24 d^2 per row and block.
double PassFlops(const Pass& p) {
  const double rows = static_cast<double>(p.p.n * p.p.T + (p.shared ? p.c.n * p.c.T : 0));
  return 24.0 * rows * static_cast<double>(p.w.d * p.w.d) * static_cast<double>(p.w.layers.size());
}

Stream Slice(const Stream& s, int64_t from, int64_t n) {
  Stream o;
  o.ids = s.ids.narrow(0, from, n);
  o.pos = s.pos.narrow(0, from, n);
  o.bias = s.bias.narrow(0, from, n);
  o.n = n;
  o.T = s.T;
  return o;
}

// Splits p into parts when it is big enough and more than one thread may take it (on the CPU: a GPU
// runs one part's kernels as well as two).
void Split(Pass& p) {
  const bool big = p.w.tok_emb.device().is_cpu() && PassFlops(p) >= kSplitFlops;
  const int64_t k = std::min<int64_t>(p.p.n, big ? BigThreads() : 1);
  if (k <= 1) return;
  split_passes++;
  for (int64_t i = 0, from = 0; i < k; i++) {
    const int64_t n = p.p.n / k + (i < p.p.n % k ? 1 : 0);
    auto q = std::make_unique<Pass>();
    q->w = p.w;
    q->scale = p.scale;
    q->eps = p.eps;
    q->shared = p.shared;
    q->group = p.group;
    q->p = Slice(p.p, from, n);
    if (p.shared) q->c = Slice(p.c, from * p.group, n * p.group);
    for (const at::Tensor& m : p.drop) q->drop.push_back(m.narrow(0, from, n));
    p.parts.push_back(std::move(q));
    from += n;
  }
}

// The shared layout (forwardShared's rows): every part's prompt rows, then every part's completion rows.
at::Tensor Joined(const Pass& p, const std::vector<at::Tensor>& outs) {
  if (!p.shared) return at::cat(outs, 0);
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < outs.size(); i++) rows.push_back(outs[i].narrow(0, 0, p.parts[i]->p.n));
  for (size_t i = 0; i < outs.size(); i++) rows.push_back(outs[i].narrow(0, p.parts[i]->p.n, outs[i].size(0) - p.parts[i]->p.n));
  return at::cat(rows, 0);
}

at::Tensor Forward(Pass& p) {
  Split(p);
  if (p.parts.empty()) return ForwardOne(p);
  std::vector<at::Tensor> outs(p.parts.size());
  RunParts(static_cast<int>(p.parts.size()), [&](int i) { outs[i] = ForwardOne(*p.parts[i]); });
  return Joined(p, outs);
}

std::vector<at::Tensor> Backward(const Pass& p, const at::Tensor& dy) {
  if (p.parts.empty()) return BackwardOne(p, dy);
  const size_t k = p.parts.size();
  std::vector<at::Tensor> dys(k);
  for (size_t i = 0, from = 0, cfrom = 0; i < k; i++) {
    const Pass& q = *p.parts[i];
    if (p.shared) {
      const int64_t rows = q.c.n * q.c.T;
      dys[i] = at::cat({dy.narrow(0, from, q.p.n), dy.narrow(0, p.p.n + cfrom, rows)}, 0);
      cfrom += rows;
    } else {
      dys[i] = dy.narrow(0, from, q.p.n);
    }
    from += q.p.n;
  }
  std::vector<std::vector<at::Tensor>> grads(k);
  RunParts(static_cast<int>(p.parts.size()), [&](int i) { grads[i] = BackwardOne(*p.parts[i], dys[i]); });
  for (size_t i = 1; i < k; i++) {
    for (size_t j = 0; j < grads[0].size(); j++) grads[0][j] = at::add(grads[0][j], grads[i][j]);
  }
  return grads[0];
}

// Block l's keys (or values) of the prompts, [n, H, T, dh].
at::Tensor PromptKv(const Pass& p, size_t l, bool values) {
  if (p.parts.empty()) return (values ? p.p.blocks[l].v : p.p.blocks[l].k).contiguous();
  std::vector<at::Tensor> all;
  for (const auto& q : p.parts) all.push_back(values ? q->p.blocks[l].v : q->p.blocks[l].k);
  return at::cat(all, 0);
}

// A [n, T] int32 ids or positions tensor and its [n, 1, T, Tk] float bias from a spec part.
void StreamOf(const Napi::Env& env, const std::string& fn, const Napi::Object& o, Stream& st, const std::string& what) {
  st.ids = TensorOf(env, o.Get("ids"));
  st.pos = TensorOf(env, o.Get("positions"));
  st.bias = TensorOf(env, o.Get("bias"));
  if (st.ids.dim() != 2 || st.ids.scalar_type() != at::kInt) Fail(env, fn, what + " ids must be int32 [n, T], not " + Shape(st.ids.sizes()));
  if (st.pos.sizes() != st.ids.sizes() || st.pos.scalar_type() != at::kInt) Fail(env, fn, what + " positions must be int32 " + Shape(st.ids.sizes()));
  st.n = st.ids.size(0);
  st.T = st.ids.size(1);
}

// trainForward({ weights, heads, scale, eps, prompt: { ids, positions, bias }, completion?, group, save, cache, dropout? })
// -> [hidden, handle?, keys and values?]. Without `completion`: Transformer.forward's hidden states
// [n, T, d]; with it, forwardShared's rows [P + B*Tc, d]. With `save`, also the handle tensor that
// trainBackward takes; with `cache`, then each block's keys and each block's values of the prompts.
// dropout: the multipliers (1 + 3 per block: embeddings, then per block attention probabilities
// [n, H, T, T], attention output and MLP output [n, T, d]), whole sequences only.
Napi::Value ForwardJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "trainForward";
  if (!info[0].IsObject()) Fail(env, fn, "expected a spec object");
  auto spec = info[0].As<Napi::Object>();
  auto p = std::make_unique<Pass>();
  p->w = WeightsOf(env, fn, spec.Get("weights"), Int(spec, "heads"));
  p->scale = Num(spec, "scale");
  p->eps = Num(spec, "eps");
  StreamOf(env, fn, spec.Get("prompt").As<Napi::Object>(), p->p, "prompt");
  if (p->p.bias.sizes().vec() != std::vector<int64_t>{p->p.n, 1, p->p.T, p->p.T}) Fail(env, fn, "prompt bias has shape " + Shape(p->p.bias.sizes()));
  p->shared = spec.Has("completion") && spec.Get("completion").IsObject();
  if (p->shared) {
    StreamOf(env, fn, spec.Get("completion").As<Napi::Object>(), p->c, "completion");
    p->group = Int(spec, "group");
    if (p->group <= 0 || p->c.n != p->p.n * p->group) Fail(env, fn, std::to_string(p->c.n) + " completions for " + std::to_string(p->p.n) + " prompts in groups of " + std::to_string(p->group));
    if (p->c.bias.sizes().vec() != std::vector<int64_t>{p->c.n, 1, p->c.T, p->p.T + p->c.T}) Fail(env, fn, "completion bias has shape " + Shape(p->c.bias.sizes()));
  }
  if (spec.Has("dropout") && spec.Get("dropout").IsArray()) {
    p->drop = Tensors(env, fn, spec.Get("dropout"));
    const size_t want = 1 + 3 * p->w.layers.size();
    if (p->shared) Fail(env, fn, "dropout applies to whole sequences only");
    if (p->drop.size() != want) Fail(env, fn, std::to_string(p->drop.size()) + " dropout masks, expected " + std::to_string(want));
    const int64_t n = p->p.n, T = p->p.T, d = p->w.d, H = p->w.H;
    for (size_t i = 0; i < want; i++) {
      const bool att = i > 0 && (i - 1) % 3 == 0;
      Expect(env, fn, p->drop[i], att ? std::vector<int64_t>{n, H, T, T} : std::vector<int64_t>{n, T, d}, "dropout mask " + std::to_string(i));
    }
  }
  at::Tensor out = Forward(*p);
  const bool save = spec.Get("save").ToBoolean();
  const bool cache = spec.Get("cache").ToBoolean();
  const uint32_t L = static_cast<uint32_t>(p->w.layers.size());
  auto result = Napi::Array::New(env, (save ? 2 : 1) + (cache ? 2 * L : 0));
  result.Set(0u, TensorToJs(env, out));
  if (cache) {
    // the prompts' keys, then their values, of every block (a prefill's cache)
    const uint32_t at = save ? 2 : 1;
    for (uint32_t l = 0; l < L; l++) {
      result.Set(at + l, TensorToJs(env, PromptKv(*p, l, false)));
      result.Set(at + L + l, TensorToJs(env, PromptKv(*p, l, true)));
    }
  }
  if (save) {
    Pass* raw = p.release();
    live.insert(raw);
    // int32 so the addon hands it back as it is; nothing ever reads its value
    at::Tensor handle = at::from_blob(raw, {1}, [](void* q) { live.erase(q); delete static_cast<Pass*>(q); }, at::TensorOptions().dtype(at::kInt));
    result.Set(1u, TensorToJs(env, handle));
  }
  return result;
}

// trainBackward(handle, dy) -> each weight's gradient, in the order trainForward took them.
Napi::Value BackwardJs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const std::string fn = "trainBackward";
  const at::Tensor& handle = TensorOf(env, info[0]);
  if (!live.count(handle.data_ptr())) Fail(env, fn, "not a pass handle");
  auto* p = static_cast<const Pass*>(handle.data_ptr());
  const at::Tensor& dy = TensorOf(env, info[1]);
  auto grads = Backward(*p, dy);
  auto out = Napi::Array::New(env, grads.size());
  for (size_t i = 0; i < grads.size(); i++) out.Set(i, TensorToJs(env, grads[i]));
  return out;
}

}  // namespace

void RegisterTrainPass(Napi::Env env, Napi::Object exports) {
  exports.Set("trainForward", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "trainForward", [&] { return ForwardJs(info); }); }));
  exports.Set("trainBackward", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Guard(info.Env(), "trainBackward", [&] { return BackwardJs(info); }); }));
}
