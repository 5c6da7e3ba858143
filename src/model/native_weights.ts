/**
 * The weights of gta's own architecture in the order the addon's fused passes take them
 * (native/gta_arch.h): tok_emb, pos_emb, each block's twelve, then ln_f.g, ln_f.b.
 */
import type * as tf from '@tensorflow/tfjs';

const BLOCK = ['ln1.g', 'ln1.b', 'attn.wqkv', 'attn.bqkv', 'attn.wo', 'attn.bo', 'ln2.g', 'ln2.b', 'mlp.w1', 'mlp.b1', 'mlp.w2', 'mlp.b2'];

export function nativeWeights(params: Map<string, tf.Variable>, layers: number): tf.Variable[] {
  const names = ['tok_emb', 'pos_emb'];
  for (let l = 0; l < layers; l++) names.push(...BLOCK.map((p) => `blocks.${l}.${p}`));
  names.push('ln_f.g', 'ln_f.b');
  return names.map((n) => {
    const w = params.get(n);
    if (!w) throw new Error(`model has no parameter ${n}`);
    return w;
  });
}
