/**
 * Fused operations: one kernel where the backend has one (the torch backend registers them, see
 * torch/kernels/fused.ts), else the same math composed from tfjs ops. Either way the result and the
 * gradient are the same to float rounding; test/torch.test.ts checks that.
 *
 * They pay where tfjs's composition is many passes over big tensors or many small kernels: the
 * log-probabilities of the chosen tokens over a [N, vocab] logits matrix (the loss of every mode),
 * attention, layer norm, and the AdamW update (about ten small kernels per parameter).
 */
import tf from '../util/tfjs.cjs';
import { matMulFast } from './matmul.js';

/** Kernel names the torch backend registers (a backend without them gets the composite). */
export const FUSED = {
  tokenLogProbs: 'GtaTokenLogProbs',
  tokenLogProbsGrad: 'GtaTokenLogProbsGrad',
  layerNorm: 'GtaLayerNorm',
  layerNormGrad: 'GtaLayerNormGrad',
  adamw: 'GtaAdamW',
  attention: 'GtaAttention',
  attentionGrad: 'GtaAttentionGrad',
  reluGrad: 'GtaReluGrad',
  softmaxGrad: 'GtaSoftmaxGrad',
  linearCombination: 'GtaLinearCombination',
  trainForward: 'GtaTrainForward',
  trainBackward: 'GtaTrainBackward',
} as const;

export function hasFused(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

function runKernel<T extends tf.Tensor | tf.Tensor[]>(name: string, inputs: unknown, attrs: object = {}): T {
  return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as T;
}

export interface TokenLogProbOptions {
  /** Divides the logits (RL's sampling temperature); 1 by default. */
  temperature?: number;
  /** RL's restriction: bias rows [R, V] (0 where the decoding allowed a token, NEG_INF elsewhere) and each row's one, int32 [N]. */
  bias?: { rows: tf.Tensor2D; index: tf.Tensor1D };
  /** Also return each row's entropy. */
  entropy?: boolean;
}

/**
 * Per row i of logits [N, V], with z = logits / temperature + bias.rows[bias.index[i]]: log softmax(z)
 * at targets[i] ([N]; its gradient is dy * (onehot(targets) - softmax(z)) / temperature) and, when
 * asked, the entropy of softmax(z) ([N], a metric with no gradient). A restricted token's p is exactly
 * 0, and so is its p log p. On the torch backend one pass over each row each way
 * (native/log_probs.cc); else composed from tfjs ops.
 */
export function tokenLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D, opts: TokenLogProbOptions = {}): { logp: tf.Tensor1D; entropy?: tf.Tensor1D } {
  const temperature = opts.temperature ?? 1;
  const bias = opts.bias;
  if (!hasFused(FUSED.tokenLogProbs)) {
    return tf.tidy(() => {
      // x / 1 is exactly x: at temperature 1 the division (a pass over [N, V] each way) is skipped
      const scaled = temperature === 1 ? logits : tf.div(logits, temperature);
      const z = bias ? tf.add(scaled, tf.gather(bias.rows, bias.index)) : scaled;
      const lsm = tf.logSoftmax(z, -1);
      const logp = tf.sum(tf.mul(lsm, tf.oneHot(targets, logits.shape[1])), -1) as tf.Tensor1D;
      return opts.entropy ? { logp, entropy: tf.neg(tf.sum(tf.mul(tf.exp(lsm), lsm), -1)) as tf.Tensor1D } : { logp };
    });
  }
  const attrs = { invTemp: 1 / temperature };
  const inputs = bias ? { logits, targets, bias: bias.rows, biasIndex: bias.index } : { logits, targets };
  // run here, not inside customGrad, whose forward runs in a tidy that would take the entropy with it
  const [picked, lse, entropy] = runKernel<tf.Tensor[]>(FUSED.tokenLogProbs, inputs, attrs);
  // targets and the bias are inputs (not closures) so tfjs keeps them alive until the backward pass; their "gradients" are zeros
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [l, t, rows, index] = args as tf.Tensor[];
    save([l, t, lse, ...(rows ? [rows, index] : [])]);
    return {
      value: tf.clone(picked),
      gradFunc: (dy, [sl, st, slse, sr, si]) => {
        const g = runKernel<tf.Tensor>(FUSED.tokenLogProbsGrad, { dy, lse: slse, ...(sr ? { bias: sr, biasIndex: si } : {}), logits: sl, targets: st }, attrs);
        return [g, tf.zerosLike(st), ...(sr ? [tf.zerosLike(sr), tf.zerosLike(si)] : [])];
      },
    };
  });
  const logp = (bias ? f(logits, targets, bias.rows, bias.index) : f(logits, targets)) as tf.Tensor1D;
  tf.dispose([picked, lse, ...(opts.entropy ? [] : [entropy])]);
  return opts.entropy ? { logp, entropy: entropy as tf.Tensor1D } : { logp };
}

/**
 * The dropout multiplier tf.dropout(x, rate, undefined, seed) would apply: floor(u + keep) / keep with
 * u ~ U(0, 1) drawn from `seed`, so masking with it gives exactly tf.dropout's result.
 */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  const keep = 1 - rate;
  return tf.tidy(() => tf.div(tf.floor(tf.add(tf.randomUniform(shape, 0, 1, 'float32', seed), keep)), keep));
}

/**
 * Causal multi-head attention: softmax(q k^T * scale + bias) v, with the attention probabilities
 * multiplied by `mask` (a dropoutMask) when given. q [B, H, Tq, dh], k and v [B, H, Tk, dh], bias
 * [B, 1, Tq, Tk] additive (0 or NEG_INF). The fused kernel does it in one call each way and saves the
 * probabilities for the backward pass.
 */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number, mask?: tf.Tensor): tf.Tensor4D {
  if (!hasFused(FUSED.attention)) {
    const scores = tf.add(tf.mul(matMulFast(q, k, false, true), scale), bias);
    const probs = mask ? tf.mul(tf.softmax(scores, -1), mask) : tf.softmax(scores, -1);
    return matMulFast(probs, v) as tf.Tensor4D;
  }
  // bias and mask are inputs (not closures) so tfjs keeps them alive until the backward pass; their "gradients" are zeros
  const consts = mask ? [bias, mask] : [bias];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [qi, ki, vi, bi, mi] = args.slice(0, -1) as tf.Tensor[];
    const inputs = mi ? { q: qi, k: ki, v: vi, bias: bi, mask: mi } : { q: qi, k: ki, v: vi, bias: bi };
    const [out, probs] = runKernel<tf.Tensor[]>(FUSED.attention, inputs, { scale });
    save(mi ? [qi, ki, vi, probs, mi] : [qi, ki, vi, probs]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [sq, sk, sv, sp, sm] = saved;
        const grads = runKernel<tf.Tensor[]>(FUSED.attentionGrad, sm ? { dy, q: sq, k: sk, v: sv, probs: sp, mask: sm } : { dy, q: sq, k: sk, v: sv, probs: sp }, { scale });
        return [...grads, ...consts.map((c) => tf.zerosLike(c))];
      },
    };
  });
  return f(q, k, v, ...consts) as tf.Tensor4D;
}

/**
 * Attention of rows whose prompts are shared by groups of `group` consecutive rows: queries q
 * [B, H, Tq, dh] over each group's prompt keys and values pk, pv [B / group, H, Tp, dh], then over the
 * row's own k, v [B, H, t, dh], with bias [B, 1, Tq, Tp + t]. The same softmax over all Tp + t keys as
 * attention() over the concatenated keys, but each group's prompt is stored and read once, by one
 * product of its rows together ([group * Tq, dh] x [dh, Tp]) instead of row by row. No dropout
 * (decoding, and the RL passes, which train without it).
 */
export function prefixAttention(q: tf.Tensor4D, pk: tf.Tensor4D, pv: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number, group: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, Tq, dh] = q.shape;
    const P = B / group;
    const Tp = pk.shape[2];
    const t = k.shape[2];
    // [B, H, Tq, x] <-> [P, H, group * Tq, x]: a group's rows side by side, per head
    const grouped = (x: tf.Tensor, last: number) => tf.reshape(tf.transpose(tf.reshape(x, [P, group, H, Tq, last]), [0, 2, 1, 3, 4]), [P, H, group * Tq, last]);
    const ungrouped = (x: tf.Tensor, last: number) => tf.reshape(tf.transpose(tf.reshape(x, [P, H, group, Tq, last]), [0, 2, 1, 3, 4]), [B, H, Tq, last]);
    const scores = tf.concat([ungrouped(matMulFast(grouped(q, dh), pk, false, true), Tp), matMulFast(q, k, false, true)], 3);
    const probs = tf.softmax(tf.add(tf.mul(scores, scale), bias), -1);
    const [pp, po] = tf.split(probs, [Tp, t], 3);
    return tf.add(ungrouped(matMulFast(grouped(pp, Tp), pv), dh), matMulFast(po, v)) as tf.Tensor4D;
  });
}

/** Layer norm over the last axis with gain g and bias b (both [d]). */
export function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): T {
  if (!hasFused(FUSED.layerNorm)) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
      return tf.add(tf.mul(normed, g), b) as T;
    });
  }
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, gi, bi, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [out, mean, rstd] = runKernel<tf.Tensor[]>(FUSED.layerNorm, { x: xi, g: gi, b: bi }, { eps });
    save([xi, gi, mean, rstd]);
    return {
      value: out,
      gradFunc: (dy, [sx, sg, sm, sr]) => runKernel<tf.Tensor[]>(FUSED.layerNormGrad, { dy, x: sx, g: sg, mean: sm, rstd: sr }),
    };
  });
  return f(x, g, b) as T;
}

export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Bias corrections 1 - beta^t. */
  bc1: number;
  bc2: number;
  /** Gradient scale (clipping), 1 for none. */
  scale: number;
  /** Stochastic rounding's stream where a parameter is stored in bfloat16 (native/adamw.cc). */
  seed?: number;
}

/**
 * One AdamW update of every parameter at once: returns the new parameters and moments (the caller
 * assigns them). `decay[i]` says whether parameter i gets weight decay. The fused kernel computes
 * exactly the composite below, in a handful of multi-tensor ATen calls instead of ~10 per parameter.
 */
export function adamwUpdate(p: tf.Tensor[], g: tf.Tensor[], m: tf.Tensor[], v: tf.Tensor[], decay: boolean[], s: AdamWStep): { p: tf.Tensor[]; m: tf.Tensor[]; v: tf.Tensor[] } {
  const n = p.length;
  if (hasFused(FUSED.adamw)) {
    const out = runKernel<tf.Tensor[]>(FUSED.adamw, [...p, ...g, ...m, ...v], { ...s, decay });
    return { p: out.slice(0, n), m: out.slice(n, 2 * n), v: out.slice(2 * n) };
  }
  const res = { p: [] as tf.Tensor[], m: [] as tf.Tensor[], v: [] as tf.Tensor[] };
  for (let i = 0; i < n; i++) {
    const [pi, mi, vi] = tf.tidy(() => {
      const gi = s.scale === 1 ? g[i] : tf.mul(g[i], s.scale);
      const m1 = tf.add(tf.mul(m[i], s.beta1), tf.mul(gi, 1 - s.beta1));
      const v1 = tf.add(tf.mul(v[i], s.beta2), tf.mul(tf.square(gi), 1 - s.beta2));
      const update = tf.div(tf.div(m1, s.bc1), tf.add(tf.sqrt(tf.div(v1, s.bc2)), s.eps));
      const decayed = decay[i] && s.weightDecay > 0 ? tf.mul(p[i], 1 - s.lr * s.weightDecay) : p[i];
      return [tf.sub(decayed, tf.mul(update, s.lr)), m1, v1];
    });
    res.p.push(pi);
    res.m.push(mi);
    res.v.push(vi);
  }
  return res;
}

/**
 * ca * a[i] + cb * b[i] for each pair of equal shapes (GTA's combined gradient): two multi-tensor ATen
 * calls on the torch backend instead of three kernels per parameter.
 */
export function linearCombination(a: tf.Tensor[], b: tf.Tensor[], ca: number, cb: number): tf.Tensor[] {
  if (a.length !== b.length) throw new Error(`linearCombination: ${a.length} tensors against ${b.length}`);
  if (a.length > 0 && hasFused(FUSED.linearCombination)) return runKernel<tf.Tensor[]>(FUSED.linearCombination, [...a, ...b], { ca, cb });
  return a.map((x, i) => tf.tidy(() => tf.add(tf.mul(x, ca), tf.mul(b[i], cb))));
}
