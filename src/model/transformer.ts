/**
 * A small decoder-only transformer on the TensorFlow.js op API: learned token and position
 * embeddings, pre-norm blocks (causal multi-head attention, ReLU MLP), a final layer norm and an
 * output head tied to the token embedding. Sequences are left-padded, so every row of a batch ends at
 * the same column and generation appends to all rows at once; the key/value cache makes each new token
 * cost one position rather than a full pass.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelArch } from '../config/schema.js';
import { gatherRows } from '../backend/gather_rows.js';
import { matMulFast } from '../backend/matmul.js';
import { attention, dropoutMask, layerNorm, prefixAttention } from '../backend/fused.js';
import { Rng } from '../util/rng.js';

/** The input of a forward pass: everything is built on the JS side by src/train/batch.ts. */
export interface ModelInput {
  /** [B, T] int32 token ids, left-padded. */
  ids: tf.Tensor2D;
  /** [B, T] int32 position of each token within its own sequence (0 at its first real token). */
  positions: tf.Tensor2D;
  /** [B, 1, T, T] float32 additive attention bias: 0 where query i may see key j, -1e9 elsewhere. */
  bias: tf.Tensor4D;
}

/** Keys and values of every layer for the tokens seen so far: [B, H, T, dh] each. */
export interface KvCache {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
}

/**
 * The cache of decoding rows whose prompts are shared by groups of `group` consecutive rows (a GRPO
 * group; 1 for distinct prompts): each prompt's keys and values once ([B / group, H, Tp, dh]), and
 * each row's own tokens since ([B, H, t, dh]; null before the first step). Reading the prompt part
 * once per group instead of once per row is most of a rollout's memory traffic, and it is never
 * copied as the own part grows.
 */
export interface DecodeCache {
  prompt: KvCache;
  group: number;
  own: KvCache | null;
}

export interface ForwardOptions {
  /** Dropout rate; 0 (the default) at eval time. */
  dropout?: number;
  /** Source of dropout seeds, so a run's dropout masks are reproducible from its RNG state. */
  rng?: Rng;
  /** Return the keys and values of every layer (for prefill before decoding). */
  returnCache?: boolean;
}

export const NEG_INF = -1e9;

let variableCounter = 0;

export class Transformer {
  readonly arch: ModelArch;
  readonly params: Map<string, tf.Variable>;

  /** tfjs variable name -> parameter name (variable names must be unique across all models in a process). */
  private readonly byVariable = new Map<string, string>();

  constructor(arch: ModelArch, params: Map<string, tf.Variable>) {
    this.arch = arch;
    this.params = params;
    for (const [name, v] of params) this.byVariable.set(v.name, name);
  }

  /** A trainable variable for parameter `name`, with a process-unique tfjs name. */
  static variable(name: string, value: tf.Tensor): tf.Variable {
    return tf.variable(value, true, `${name}@${variableCounter++}`);
  }

  /** Re-keys gradients from tfjs variable names (as tf.variableGrads returns them) to parameter names. */
  byParamName(grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [vname, g] of Object.entries(grads)) {
      const p = this.byVariable.get(vname);
      if (!p) throw new Error(`gradient for a variable that is not this model's: ${vname}`);
      out[p] = g;
    }
    return out;
  }

  /** Every parameter's name and shape for an architecture (one place, used by init and checkpoint loading). */
  static shapes(arch: ModelArch): Map<string, number[]> {
    const { vocab_size: V, d_model: d, d_ff: ff, n_layers: L, max_seq_len: S } = arch;
    const s = new Map<string, number[]>([
      ['tok_emb', [V, d]],
      ['pos_emb', [S, d]],
    ]);
    for (let l = 0; l < L; l++) {
      const b = `blocks.${l}`;
      s.set(`${b}.ln1.g`, [d]).set(`${b}.ln1.b`, [d]);
      s.set(`${b}.attn.wqkv`, [d, 3 * d]).set(`${b}.attn.bqkv`, [3 * d]);
      s.set(`${b}.attn.wo`, [d, d]).set(`${b}.attn.bo`, [d]);
      s.set(`${b}.ln2.g`, [d]).set(`${b}.ln2.b`, [d]);
      s.set(`${b}.mlp.w1`, [d, ff]).set(`${b}.mlp.b1`, [ff]);
      s.set(`${b}.mlp.w2`, [ff, d]).set(`${b}.mlp.b2`, [d]);
    }
    s.set('ln_f.g', [d]).set('ln_f.b', [d]);
    return s;
  }

  /**
   * Fresh weights: matrices N(0, 0.02) (position embeddings 0.01), the residual output projections
   * scaled by 1/sqrt(2 * layers) as in GPT-2; layer-norm gains 1, biases 0.
   */
  static init(arch: ModelArch, seed: number): Transformer {
    const rng = new Rng(seed);
    const residStd = 0.02 / Math.sqrt(2 * arch.n_layers);
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of Transformer.shapes(arch)) {
      let value: tf.Tensor;
      if (name.endsWith('.g')) value = tf.ones(shape);
      else if (shape.length === 1) value = tf.zeros(shape);
      else {
        const std = name === 'pos_emb' ? 0.01 : /\.(wo|w2)$/.test(name) ? residStd : 0.02;
        value = tf.randomNormal(shape, 0, std, 'float32', rng.seed());
      }
      params.set(name, Transformer.variable(name, value));
    }
    return new Transformer(arch, params);
  }

  /** A non-trainable copy (the frozen reference model for the KL term). */
  frozenCopy(): Transformer {
    const params = new Map<string, tf.Variable>();
    for (const [name, v] of this.params) params.set(name, tf.variable(v.clone(), false, `${name}@${variableCounter++}`));
    return new Transformer(this.arch, params);
  }

  get numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  private w(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`model has no parameter ${name}`);
    return v;
  }

  /**
   * Hidden states after the final layer norm, [B, T, d]. With returnCache, also the keys and values
   * of every layer, for decoding further tokens with `step`.
   */
  forward(input: ModelInput, opts: ForwardOptions = {}): { hidden: tf.Tensor3D; cache?: KvCache } {
    const [B, T] = input.ids.shape;
    const cache: KvCache | undefined = opts.returnCache ? { k: [], v: [] } : undefined;
    let x = tf.add(gatherRows(this.w('tok_emb') as tf.Tensor2D, input.ids), gatherRows(this.w('pos_emb') as tf.Tensor2D, input.positions)) as tf.Tensor3D;
    x = this.dropout(x, opts);
    for (let l = 0; l < this.arch.n_layers; l++) {
      const { q, k, v } = this.qkv(l, this.layerNorm(x, `blocks.${l}.ln1`), B, T);
      if (cache) {
        cache.k.push(k);
        cache.v.push(v);
      }
      x = this.block(l, x, q, k, v, input.bias, B, T, opts);
    }
    return { hidden: this.layerNorm(x, 'ln_f'), cache };
  }

  /**
   * One decoding step: the next token of every row ([B] ids at [B] positions) given the cache of the
   * previous tokens. `bias` is [B, 1, 1, Tc + 1] (which cached keys each row may see, plus itself).
   * Returns the new hidden state [B, d] and the extended cache (the caller disposes the old one).
   */
  /**
   * Completions that continue prompts shared by groups of `group` consecutive rows, with each prompt
   * computed once (as decoding does): `prompt` is the B / group prompts, left-padded; `completion`
   * holds every row's tokens after its prompt ([B, Tc] ids and positions, bias [B, 1, Tc, Tp + Tc]
   * over the prompt's keys, then the completion's own). Returns the hidden states after the final
   * layer norm as rows [B / group + B * Tc, d]: first each prompt's last column (it predicts its
   * completions' first token), then every completion token, row by row (buildContinuation's rowOf
   * says which row predicts which token). The same values as a forward pass over the concatenated
   * sequences, to float rounding; no dropout.
   */
  forwardShared(prompt: ModelInput, completion: ModelInput, group: number): tf.Tensor2D {
    const [P, Tp] = prompt.ids.shape;
    const [B, Tc] = completion.ids.shape;
    const d = this.arch.d_model;
    const scale = 1 / Math.sqrt(d / this.arch.n_heads);
    const embed = (input: ModelInput) => tf.add(gatherRows(this.w('tok_emb') as tf.Tensor2D, input.ids), gatherRows(this.w('pos_emb') as tf.Tensor2D, input.positions)) as tf.Tensor3D;
    let xp = embed(prompt);
    let xc = embed(completion);
    for (let l = 0; l < this.arch.n_layers; l++) {
      const p = this.qkv(l, this.layerNorm(xp, `blocks.${l}.ln1`), P, Tp);
      const c = this.qkv(l, this.layerNorm(xc, `blocks.${l}.ln1`), B, Tc);
      xp = this.block(l, xp, p.q, p.k, p.v, prompt.bias, P, Tp, {});
      xc = this.blockAfterAttention(l, xc, prefixAttention(c.q, p.k, p.v, c.k, c.v, completion.bias, scale, group), B, Tc, {});
    }
    const last = tf.reshape(tf.slice(this.layerNorm(xp, 'ln_f'), [0, Tp - 1, 0], [P, 1, d]), [P, d]);
    return tf.concat([last, tf.reshape(this.layerNorm(xc, 'ln_f'), [B * Tc, d])], 0) as tf.Tensor2D;
  }

  /**
   * One new token per row: ids and positions [B], bias [B, 1, 1, Tp + t + 1] over the prompt's keys,
   * then the row's own. Returns the hidden states [B, d] and the cache with this token's keys and
   * values added to the own part (the prompt part is the same tensors).
   */
  step(ids: tf.Tensor1D, positions: tf.Tensor1D, bias: tf.Tensor4D, cache: DecodeCache): { hidden: tf.Tensor2D; cache: DecodeCache } {
    const B = ids.shape[0];
    const own: KvCache = { k: [], v: [] };
    const scale = 1 / Math.sqrt(this.arch.d_model / this.arch.n_heads);
    let x = tf.reshape(tf.add(gatherRows(this.w('tok_emb') as tf.Tensor2D, ids), gatherRows(this.w('pos_emb') as tf.Tensor2D, positions)), [B, 1, this.arch.d_model]) as tf.Tensor3D;
    for (let l = 0; l < this.arch.n_layers; l++) {
      const cur = this.qkv(l, this.layerNorm(x, `blocks.${l}.ln1`), B, 1);
      const k = cache.own ? (tf.concat([cache.own.k[l], cur.k], 2) as tf.Tensor4D) : cur.k;
      const v = cache.own ? (tf.concat([cache.own.v[l], cur.v], 2) as tf.Tensor4D) : cur.v;
      own.k.push(k);
      own.v.push(v);
      const ctx = prefixAttention(cur.q, cache.prompt.k[l], cache.prompt.v[l], k, v, bias, scale, cache.group);
      x = this.blockAfterAttention(l, x, ctx, B, 1, {});
    }
    return { hidden: tf.reshape(this.layerNorm(x, 'ln_f'), [B, this.arch.d_model]) as tf.Tensor2D, cache: { ...cache, own } };
  }

  /** Output logits for selected hidden states [N, d] -> [N, V] (the head is the tied embedding). */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    return matMulFast(hidden, this.w('tok_emb'), false, true) as tf.Tensor2D;
  }

  /** The logits of a few tokens only: [N, d] hidden states -> [N, ids.length] (a slice of logits()'s columns). */
  logitsOf(hidden: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
    return matMulFast(hidden, gatherRows(this.w('tok_emb') as tf.Tensor2D, ids), false, true) as tf.Tensor2D;
  }

  private qkv(l: number, h: tf.Tensor3D, B: number, T: number): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const { d_model: d, n_heads: H } = this.arch;
    const dh = d / H;
    const proj = tf.add(tf.matMul(tf.reshape(h, [B * T, d]), this.w(`blocks.${l}.attn.wqkv`)), this.w(`blocks.${l}.attn.bqkv`));
    // [B*T, 3d] -> three [B, H, T, dh]. Split first, then 4-D transposes: wasm's 5-D transpose of
    // the whole projection is about 5x slower.
    const [q, k, v] = tf.split(proj, 3, 1).map((x) => tf.transpose(tf.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]) as tf.Tensor4D);
    return { q, k, v };
  }

  /** Attention over (k, v) for queries q, then the MLP; both pre-norm with residual connections. */
  private block(
    l: number,
    x: tf.Tensor3D,
    q: tf.Tensor4D,
    k: tf.Tensor4D,
    v: tf.Tensor4D,
    bias: tf.Tensor4D,
    B: number,
    T: number,
    opts: ForwardOptions,
  ): tf.Tensor3D {
    const { d_model: d, n_heads: H } = this.arch;
    const mask = opts.dropout && opts.dropout > 0 ? dropoutMask([B, H, T, k.shape[2]], opts.dropout, this.rng(opts).seed()) : undefined;
    return this.blockAfterAttention(l, x, attention(q, k, v, bias, 1 / Math.sqrt(d / H), mask), B, T, opts);
  }

  /** The rest of block `l` after attention: its output projection, the residual, and the MLP. */
  private blockAfterAttention(l: number, x: tf.Tensor3D, att: tf.Tensor4D, B: number, T: number, opts: ForwardOptions): tf.Tensor3D {
    const d = this.arch.d_model;
    const b = `blocks.${l}`;
    const ctx = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, d]);
    const out = tf.add(tf.matMul(ctx, this.w(`${b}.attn.wo`)), this.w(`${b}.attn.bo`));
    x = tf.add(x, this.dropout(tf.reshape(out, [B, T, d]), opts)) as tf.Tensor3D;
    const h = tf.reshape(this.layerNorm(x, `${b}.ln2`), [B * T, d]);
    const mid = tf.relu(tf.add(tf.matMul(h, this.w(`${b}.mlp.w1`)), this.w(`${b}.mlp.b1`)));
    const mlp = tf.add(tf.matMul(mid, this.w(`${b}.mlp.w2`)), this.w(`${b}.mlp.b2`));
    return tf.add(x, this.dropout(tf.reshape(mlp, [B, T, d]), opts)) as tf.Tensor3D;
  }

  private layerNorm(x: tf.Tensor3D, name: string): tf.Tensor3D {
    return layerNorm(x, this.w(`${name}.g`) as tf.Tensor1D, this.w(`${name}.b`) as tf.Tensor1D, 1e-5);
  }

  /** Inverted dropout; its seed comes from the run's RNG, so the masks are reproducible from the saved state. */
  private dropout<T extends tf.Tensor>(x: T, opts: ForwardOptions): T {
    if (!opts.dropout || opts.dropout <= 0) return x;
    return tf.dropout(x, opts.dropout, undefined, this.rng(opts).seed()) as T;
  }

  private rng(opts: ForwardOptions): Rng {
    if (!opts.rng) throw new Error('dropout needs an RNG (ForwardOptions.rng)');
    return opts.rng;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

export function disposeCache(cache: KvCache | null | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.k, ...cache.v]);
}
