/**
 * The torch backend's fused kernels (names and composite fallbacks in src/backend/fused.ts).
 */
import type { PassStream, Raw, TorchNative } from '../native.js';
import { FUSED, type AdamWStep } from '../../fused.js';
import { chain, chainAll, id, product, SCALAR_TYPE, type Info, type KernelTable } from './common.js';

export const fusedKernels: KernelTable = {
  /**
   * log softmax(z)[i, t_i] with z = logits * invTemp (+ bias[biasIndex[i]]), then each row's
   * log-sum-exp (what the backward reads) and entropy: one pass over each row (native/log_probs.cc)
   */
  [FUSED.tokenLogProbs]: (b, { logits, targets, bias, biasIndex }, { invTemp }) =>
    logProbs(b.native)
      .logProbs(id(b, logits), id(b, targets), invTemp as number, bias ? id(b, bias) : null, biasIndex ? id(b, biasIndex) : null)
      .map((r) => b.info(r)),
  /** dy[i] * invTemp * (onehot(t_i) - softmax(z_i)), from the saved log-sum-exp */
  [FUSED.tokenLogProbsGrad]: (b, { dy, logits, targets, lse, bias, biasIndex }, { invTemp }) =>
    b.info(logProbs(b.native).logProbsGrad(id(b, dy), id(b, logits), id(b, targets), invTemp as number, bias ? id(b, bias) : null, biasIndex ? id(b, biasIndex) : null, id(b, lse))),
  [FUSED.layerNorm]: (b, { x, g, b: bias }, { eps }) => {
    const d = x.shape[x.shape.length - 1];
    const [out, mean, rstd] = b.call('aten::native_layer_norm', [id(b, x), [d], id(b, g), id(b, bias), eps as number]) as Raw[];
    return [b.info(out), b.info(mean), b.info(rstd)];
  },
  /** The bias argument only gives db its shape, which is g's. */
  [FUSED.layerNormGrad]: (b, { dy, x, g, mean, rstd }) => {
    const d = x.shape[x.shape.length - 1];
    const grads = b.call('aten::native_layer_norm_backward', [id(b, dy), id(b, x), [d], id(b, mean), id(b, rstd), id(b, g), id(b, g), [true, true, true]]) as Raw[];
    return grads.map((r) => b.info(r));
  },
  /** softmax(q k^T * scale + bias) (* mask) v; also returns the probabilities (before the mask) for the backward pass */
  [FUSED.attention]: (b, { q, k, v, bias, mask }, { scale }) =>
    chainAll(b, (keep) => {
      const kt = keep(b.raw('aten::transpose.int', [id(b, k), -2, -1]));
      const scores = keep(product(b, id(b, q), kt[0]));
      keep(b.raw('aten::mul_.Scalar', [scores[0], scale as number]));
      keep(b.raw('aten::add_.Tensor', [scores[0], id(b, bias)]));
      const probs = b.raw('aten::_softmax', [scores[0], -1, false]);
      const used = mask ? keep(b.raw('aten::mul.Tensor', [probs[0], id(b, mask)])) : probs;
      return [product(b, used[0], id(b, v)), probs];
    }),
  /** dq, dk, dv of the above from the saved probabilities */
  [FUSED.attentionGrad]: (b, { dy, q, k, v, probs, mask }, { scale }) =>
    chainAll(b, (keep) => {
      const t = (x: number) => keep(b.raw('aten::transpose.int', [x, -2, -1]))[0];
      const used = mask ? keep(b.raw('aten::mul.Tensor', [id(b, probs), id(b, mask)]))[0] : id(b, probs);
      const dv = product(b, t(used), id(b, dy));
      let dp = keep(product(b, id(b, dy), t(id(b, v))));
      if (mask) dp = keep(b.raw('aten::mul.Tensor', [dp[0], id(b, mask)]));
      const ds = keep(b.raw('aten::_softmax_backward_data', [dp[0], id(b, probs), -1, SCALAR_TYPE.float32]));
      keep(b.raw('aten::mul_.Scalar', [ds[0], scale as number]));
      return [product(b, ds[0], id(b, k)), product(b, t(ds[0]), id(b, q)), dv];
    }),
  /** dy where x > 0, else 0 (tfjs: dy * step(x)) */
  [FUSED.reluGrad]: (b, { dy, x }) => b.run('aten::threshold_backward', [id(b, dy), id(b, x), 0]),
  /** y * (dy - sum(dy * y)) along dim */
  [FUSED.softmaxGrad]: (b, { dy, y }, { dim }) => b.run('aten::_softmax_backward_data', [id(b, dy), id(b, y), dim as number, SCALAR_TYPE.float32]),

  /** ca * a[i] + cb * b[i]: inputs a (n), then b (n); a fresh tensor per pair */
  [FUSED.linearCombination]: (b, inputs, attrs) => {
    const { ca, cb } = attrs as { ca: number; cb: number };
    const all = (Object.values(inputs) as Info[]).map((t) => id(b, t));
    const n = all.length / 2;
    const out = b.call('aten::_foreach_mul.Scalar', [all.slice(0, n), ca]) as Raw[];
    b.call('aten::_foreach_add_.List', [out.map((r) => r[0]), all.slice(n), cb]);
    return out.map((r) => b.info(r));
  },
  /**
   * The fused forward pass of gta's own architecture (src/backend/torch/train_pass.ts): inputs w0..w{n-1}
   * (the weights), pids, ppositions, pbias and, with completions, cids, cpositions, cbias, with dropout
   * its multipliers d0..d{k-1}; results the hidden states, when saving the pass's handle for
   * GtaTrainBackward, and with `cache` the prompts' keys and values.
   */
  [FUSED.trainForward]: (b, inputs, attrs) => {
    const a = attrs as { weights: number; heads: number; scale: number; eps: number; group: number; shared: boolean; save: boolean; cache: boolean; dropout: number };
    const stream = (p: string): PassStream => ({ ids: id(b, inputs[`${p}ids`]), positions: id(b, inputs[`${p}positions`]), bias: id(b, inputs[`${p}bias`]) });
    const weights = Array.from({ length: a.weights }, (_, i) => id(b, inputs[`w${i}`]));
    const dropout = a.dropout > 0 ? Array.from({ length: a.dropout }, (_, i) => id(b, inputs[`d${i}`])) : undefined;
    const out = pass(b.native).trainForward({ weights, heads: a.heads, scale: a.scale, eps: a.eps, prompt: stream('p'), completion: a.shared ? stream('c') : undefined, group: a.group, save: a.save, cache: a.cache, dropout });
    return out.map((r) => b.info(r));
  },
  /** Every weight's gradient from the gradient of the pass's hidden states. */
  [FUSED.trainBackward]: (b, { dy, handle }) => pass(b.native).trainBackward(id(b, handle), id(b, dy)).map((r) => b.info(r)),

  /**
   * AdamW over all parameters: on the CPU one pass per parameter (native/adamw.cc), else in
   * multi-tensor (_foreach) calls. Inputs: p, g, m, v (n each, in that order); outputs: new p, m, v.
   * Everything written in place is a fresh tensor made here.
   */
  [FUSED.adamw]: (b, inputs, attrs) => {
    const s = attrs as unknown as AdamWStep & { decay: boolean[] };
    const all = (Object.values(inputs) as Info[]).map((t) => id(b, t));
    const n = all.length / 4;
    const [p, g, m, v] = [0, 1, 2, 3].map((i) => all.slice(i * n, (i + 1) * n));
    if (b.native.adamw && b.device === 'cpu') return b.native.adamw(p, g, m, v, s).map((r) => b.info(r));
    const m1 = b.call('aten::_foreach_mul.Scalar', [m, s.beta1]) as Raw[];
    b.call('aten::_foreach_add_.List', [m1.map((r) => r[0]), g, (1 - s.beta1) * s.scale]);
    const v1 = b.call('aten::_foreach_mul.Scalar', [v, s.beta2]) as Raw[];
    b.call('aten::_foreach_addcmul_.Scalar', [v1.map((r) => r[0]), g, g, (1 - s.beta2) * s.scale * s.scale]);
    const denom = b.call('aten::_foreach_div.Scalar', [v1.map((r) => r[0]), s.bc2]) as Raw[];
    const dIds = denom.map((r) => r[0]);
    b.call('aten::_foreach_sqrt_', [dIds]);
    b.call('aten::_foreach_add_.Scalar', [dIds, s.eps]);
    const factors = s.decay.map((d) => (d && s.weightDecay > 0 ? 1 - s.lr * s.weightDecay : 1));
    const decayed = b.call('aten::_foreach_mul.ScalarList', [p, factors]) as Raw[];
    const p1 = b.call('aten::_foreach_addcdiv.Scalar', [decayed.map((r) => r[0]), m1.map((r) => r[0]), dIds, -s.lr / s.bc1]) as Raw[];
    b.free(...denom, ...decayed);
    return [...p1, ...m1, ...v1].map((r) => b.info(r));
  },
};

function logProbs(native: TorchNative): Required<Pick<TorchNative, 'logProbs' | 'logProbsGrad'>> {
  const { logProbs: f, logProbsGrad: g } = native;
  if (!f || !g) throw new Error('the libtorch addon was built before its log-probability kernel: run `npm run build:torch`');
  return { logProbs: f, logProbsGrad: g };
}

function pass(native: TorchNative): Required<Pick<TorchNative, 'trainForward' | 'trainBackward'>> {
  const { trainForward, trainBackward } = native;
  if (!trainForward || !trainBackward) throw new Error('the libtorch addon was built before the fused training pass: run `npm run build:torch`');
  return { trainForward, trainBackward };
}
