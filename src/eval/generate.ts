/**
 * Greedy decoding with the key/value cache: one full pass over the (left-padded) prompts, then one
 * position per new token for every row at once. Rows that have emitted the stop token keep decoding
 * (the batch stays rectangular) but their later tokens are dropped.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeCache, NEG_INF, type KvCache, type Transformer } from '../model/transformer.js';
import { buildInput, disposeInput } from '../train/batch.js';

export interface GenerateOptions {
  maxNewTokens: number;
  stopId: number;
  padId: number;
}

export function greedyGenerate(model: Transformer, prompts: number[][], o: GenerateOptions): number[][] {
  const B = prompts.length;
  const maxLen = model.arch.max_seq_len;
  const tooLong = prompts.findIndex((p) => p.length >= maxLen);
  if (tooLong >= 0) throw new Error(`prompt ${tooLong} has ${prompts[tooLong].length} tokens; the model's context is ${maxLen}`);
  const { input, layout } = buildInput(prompts, o.padId);
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  let next!: tf.Tensor1D;
  let cache!: KvCache;
  tf.tidy(() => {
    const r = model.forward(input, { returnCache: true });
    const last = tf.reshape(tf.slice(r.hidden, [0, layout.T - 1, 0], [B, 1, -1]), [B, -1]) as tf.Tensor2D;
    next = tf.keep(tf.argMax(model.logits(last), -1) as tf.Tensor1D);
    cache = keepCache(r.cache!);
  });
  disposeInput(input);
  const budget = Math.min(o.maxNewTokens, maxLen - layout.T);
  let Tc = layout.T;
  for (let i = 0; i < budget; i++) {
    const ids = next.dataSync() as Int32Array;
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      out[b].push(ids[b]);
      if (ids[b] === o.stopId) done[b] = true;
    }
    if (done.every(Boolean) || i === budget - 1) break;
    const positions = tf.tensor1d(prompts.map((p) => p.length + i), 'int32');
    const bias = stepBias(layout.pad, Tc + 1);
    const prev = { next, cache };
    tf.tidy(() => {
      const r = model.step(prev.next, positions, bias, prev.cache);
      next = tf.keep(tf.argMax(model.logits(r.hidden), -1) as tf.Tensor1D);
      cache = keepCache(r.cache);
    });
    tf.dispose([positions, bias, prev.next]);
    disposeCache(prev.cache);
    Tc += 1;
  }
  next.dispose();
  disposeCache(cache);
  return out;
}

function keepCache(c: KvCache): KvCache {
  return { k: c.k.map((t) => tf.keep(t)), v: c.v.map((t) => tf.keep(t)) };
}

/** [B, 1, 1, Tc]: a new token sees every real (non-padding) key, including itself. */
export function stepBias(pad: number[], Tc: number): tf.Tensor4D {
  const B = pad.length;
  const bias = new Float32Array(B * Tc);
  for (let b = 0; b < B; b++) bias.fill(NEG_INF, b * Tc, b * Tc + pad[b]);
  return tf.tensor4d(bias, [B, 1, 1, Tc]);
}
