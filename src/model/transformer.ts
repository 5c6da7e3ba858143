/**
 * A small decoder-only transformer on the TensorFlow.js op API: learned token and position
 * embeddings, pre-norm blocks (causal multi-head attention, ReLU MLP), a final layer norm and an
 * output head tied to the token embedding. Sequences are left-padded, so every row of a batch ends at
 * the same column and generation appends to all rows at once; the key/value cache makes each new token
 * cost one position rather than a full pass.
 *
 * With `arch.style` the same class runs a Hugging Face family's blocks (src/model/arch.ts): GPT-2's
 * (GELU), or Llama's, Mistral's and Qwen's (RMSNorm, rotary positions, SwiGLU, grouped-query
 * attention, q/k/v biases, q/k norms, an untied head). Without it every operation is gta's own, as
 * before styles existed.
 */
import tf from '../util/tfjs.cjs';
import { inverseFrequencies, type Arch, type DecoderStyle, type LoraSpec } from './arch.js';
import { adapterShapes, initialAdapters, isAdapter, loraScale, loraTargets, type LoraTarget } from './lora.js';
import { gatherRows } from '../backend/gather_rows.js';
import { matMulFast } from '../backend/matmul.js';
import { attention, dropoutMask, layerNorm, prefixAttention } from '../backend/fused.js';
import { prefillPass, trainPass, trainPassAvailable, type TrainPassSpec } from '../backend/torch/train_pass.js';
import { weightsInBf16 } from '../backend/torch/precision.js';
import { nativeWeights } from './native_weights.js';
import { Rng } from '../util/rng.js';
import { GtaError } from '../util/errors.js';
import { recompute } from '../backend/recompute.js';
import { activate, applyRotary, repeatKv, rmsNorm, rotaryAngles } from './layers.js';

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
  rng?: SeedSource;
  /** Return the keys and values of every layer (for prefill before decoding). */
  returnCache?: boolean;
}

export const NEG_INF = -1e9;
/** The epsilon of gta's own layer norms (a style has its own, norm_eps). */
export const LAYER_NORM_EPS = 1e-5;

let variableCounter = 0;

/** Where dropout seeds come from (a run's Rng, or a checkpointed layer replaying the seeds it drew). */
export interface SeedSource {
  seed(): number;
}

/** cos and sin of the rotary angles of a pass's tokens, computed once for all layers. */
type Rotary = { cos: tf.Tensor4D; sin: tf.Tensor4D } | undefined;

export class Transformer {
  readonly arch: Arch;
  readonly params: Map<string, tf.Variable>;

  /** Each adapted weight's adapters, in column order (src/model/lora.ts). */
  private readonly adapters = new Map<string, LoraTarget[]>();
  /** tfjs variable name -> parameter name (variable names must be unique across all models in a process). */
  private readonly byVariable = new Map<string, string>();
  private readonly style?: DecoderStyle;
  /** Rotary inverse frequencies (styles with rotary positions). */
  private readonly invFreq?: Float32Array;
  /**
   * Activation checkpointing (train.activation_checkpointing): training passes keep each layer's
   * input only and run the layer again in the backward (src/backend/recompute.ts). It takes the tfjs
   * path, never the fused native pass, which keeps its own activations.
   */
  recompute = false;

  constructor(arch: Arch, params: Map<string, tf.Variable>) {
    this.arch = arch;
    this.params = params;
    for (const [name, v] of params) this.byVariable.set(v.name, name);
    if (arch.lora) {
      // a model with adapters trains them alone
      for (const [name, v] of params) if (!isAdapter(name)) v.trainable = false;
      for (const t of loraTargets({ ...arch, lora: arch.lora })) this.adapters.set(t.weight, [...(this.adapters.get(t.weight) ?? []), t]);
    }
    this.style = arch.style;
    if (this.style?.rope) this.invFreq = inverseFrequencies(this.style.rope, this.style.head_dim);
  }

  /**
   * A trainable variable for parameter `name`, with a process-unique tfjs name. It takes `value` over
   * (disposes it): a variable shares its initial tensor's data, which would otherwise stay alive after
   * the variable's first update and keep the optimizer from updating it in place.
   */
  static variable(name: string, value: tf.Tensor, trainable = true): tf.Variable {
    const v = tf.variable(value, trainable, `${name}@${variableCounter++}`);
    value.dispose();
    return v;
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
  static shapes(arch: Arch): Map<string, number[]> {
    const base = Transformer.baseShapes(arch);
    if (arch.lora) for (const [name, shape] of adapterShapes({ ...arch, lora: arch.lora })) base.set(name, shape);
    return base;
  }

  private static baseShapes(arch: Arch): Map<string, number[]> {
    if (arch.style) return styledShapes(arch, arch.style);
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
  static init(arch: Arch, seed: number): Transformer {
    if (arch.style) throw new Error('Transformer.init draws gta-style weights only; a styled model is loaded (src/model/hf_model.ts)');
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

  /** A non-trainable copy (the frozen reference model for the KL term), in storage of its own (not a clone, which would share the weights' data). */
  frozenCopy(): Transformer {
    const params = new Map<string, tf.Variable>();
    for (const [name, v] of this.params) params.set(name, Transformer.variable(name, tf.mul(v, 1), false));
    return new Transformer(this.arch, params);
  }

  /**
   * This model with low-rank adapters on the modules `spec` names, fresh as PEFT starts them (B = 0: the
   * same outputs as the base) from `rng`; the base weights are shared, and frozen.
   */
  withAdapters(spec: LoraSpec, rng: Rng): Transformer {
    if (this.arch.lora) throw new GtaError('train.lora: the initial model has adapters already (a LoRA run\'s checkpoint); start from its base model');
    const arch = { ...this.arch, lora: spec };
    const params = new Map(this.params);
    for (const [name, value] of initialAdapters(arch, rng)) params.set(name, Transformer.variable(name, value));
    return new Transformer(arch, params);
  }

  /** The model without its adapters (the same frozen base weights, not a copy): the KL term's reference under LoRA, as TRL's with PEFT. */
  base(): Transformer {
    const { lora: _, ...arch } = this.arch;
    return new Transformer(arch, new Map([...this.params].filter(([name]) => !isAdapter(name))));
  }

  /** This model, made non-trainable in place (a frozen reference that needs no copy). */
  freeze(): this {
    for (const v of this.params.values()) v.trainable = false;
    return this;
  }

  /** The parameters training updates: all of them, unless adapters froze the base (src/model/lora.ts). */
  trainable(): Map<string, tf.Variable> {
    return new Map([...this.params].filter(([, v]) => v.trainable));
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
    if (this.nativePass()) {
      if (!opts.returnCache) return { hidden: tf.tidy(() => trainPass({ ...this.passSpec(input), dropout: this.dropoutMasks(input, opts) })) as tf.Tensor3D };
      const r = opts.dropout ? null : prefillPass(this.passSpec(input));
      if (r) return { hidden: r.hidden as tf.Tensor3D, cache: { k: r.k as tf.Tensor4D[], v: r.v as tf.Tensor4D[] } };
    }
    const [B, T] = input.ids.shape;
    const cache: KvCache | undefined = opts.returnCache ? { k: [], v: [] } : undefined;
    let x = this.embed(input.ids, input.positions) as tf.Tensor3D;
    x = this.dropout(x, opts);
    const rot = this.rotary(input.positions);
    for (let l = 0; l < this.arch.n_layers; l++) {
      if (this.recompute && !cache) {
        x = this.checkpointed(l, [x], [input.bias, ...rotaryTensors(rot)], opts, ([x0], [bias, ...r], o) => [this.layer(l, x0 as tf.Tensor3D, bias as tf.Tensor4D, B, T, asRotary(r), o)])[0] as tf.Tensor3D;
        continue;
      }
      const { q, k, v } = this.qkv(l, this.layerNorm(x, `blocks.${l}.ln1`), B, T, rot, opts);
      if (cache) {
        cache.k.push(k);
        cache.v.push(v);
      }
      x = this.block(l, x, q, k, v, input.bias, B, T, opts);
    }
    return { hidden: this.layerNorm(x, 'ln_f'), cache };
  }

  /** Layer l of a pass over whole sequences: attention over its own tokens, then the MLP. */
  private layer(l: number, x: tf.Tensor3D, bias: tf.Tensor4D, B: number, T: number, rot: Rotary, opts: ForwardOptions): tf.Tensor3D {
    const { q, k, v } = this.qkv(l, this.layerNorm(x, `blocks.${l}.ln1`), B, T, rot, opts);
    return this.block(l, x, q, k, v, bias, B, T, opts);
  }

  /**
   * Layer l as a checkpointed piece (src/backend/recompute.ts): `run(xs, consts, opts)` computes it,
   * now and again in the backward. The dropout seeds it draws the first time are replayed the second,
   * so both runs drop the same units and the run's RNG advances once.
   */
  private checkpointed(l: number, xs: tf.Tensor[], consts: tf.Tensor[], opts: ForwardOptions, run: (xs: tf.Tensor[], consts: tf.Tensor[], opts: ForwardOptions) => tf.Tensor[]): tf.Tensor[] {
    const seeds: number[] = [];
    let calls = 0;
    const params = [...this.params].filter(([name]) => name.startsWith(`blocks.${l}.`)).map(([, v]) => v);
    return recompute(
      (x, c) => {
        const source = opts.rng;
        let next = 0;
        const record = { seed: () => seeds[seeds.push(source!.seed()) - 1] };
        const rng: SeedSource | undefined = source && (calls++ === 0 ? record : { seed: () => seeds[next++] });
        return run(x, c, { ...opts, rng });
      },
      xs,
      consts,
      params,
    );
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
    if (this.nativePass()) return trainPass(this.passSpec(prompt, completion, group)) as tf.Tensor2D;
    const [P, Tp] = prompt.ids.shape;
    const [B, Tc] = completion.ids.shape;
    const d = this.arch.d_model;
    const scale = this.attentionScale();
    let xp = this.embed(prompt.ids, prompt.positions) as tf.Tensor3D;
    let xc = this.embed(completion.ids, completion.positions) as tf.Tensor3D;
    const rp = this.rotary(prompt.positions);
    const rc = this.rotary(completion.positions);
    const sharedLayer = (l: number, xp: tf.Tensor3D, xc: tf.Tensor3D, pb: tf.Tensor4D, cb: tf.Tensor4D, rp: Rotary, rc: Rotary): [tf.Tensor3D, tf.Tensor3D] => {
      const p = this.qkv(l, this.layerNorm(xp, `blocks.${l}.ln1`), P, Tp, rp);
      const c = this.qkv(l, this.layerNorm(xc, `blocks.${l}.ln1`), B, Tc, rc);
      return [this.block(l, xp, p.q, p.k, p.v, pb, P, Tp, {}), this.blockAfterAttention(l, xc, prefixAttention(c.q, p.k, p.v, c.k, c.v, cb, scale, group), B, Tc, {})];
    };
    for (let l = 0; l < this.arch.n_layers; l++) {
      if (this.recompute) {
        const consts = [prompt.bias, completion.bias, ...rotaryTensors(rp), ...rotaryTensors(rc)];
        [xp, xc] = this.checkpointed(l, [xp, xc], consts, {}, ([a, b], [pb, cb, ...r]) => {
          const half = r.length / 2;
          return sharedLayer(l, a as tf.Tensor3D, b as tf.Tensor3D, pb as tf.Tensor4D, cb as tf.Tensor4D, asRotary(r.slice(0, half)), asRotary(r.slice(half)));
        }) as [tf.Tensor3D, tf.Tensor3D];
      } else [xp, xc] = sharedLayer(l, xp, xc, prompt.bias, completion.bias, rp, rc);
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
    const scale = this.attentionScale();
    let x = tf.reshape(this.embed(ids, positions), [B, 1, this.arch.d_model]) as tf.Tensor3D;
    const rot = this.invFreq ? this.rotary(tf.reshape(positions, [B, 1]) as tf.Tensor2D) : undefined;
    for (let l = 0; l < this.arch.n_layers; l++) {
      const cur = this.qkv(l, this.layerNorm(x, `blocks.${l}.ln1`), B, 1, rot);
      const k = cache.own ? (tf.concat([cache.own.k[l], cur.k], 2) as tf.Tensor4D) : cur.k;
      const v = cache.own ? (tf.concat([cache.own.v[l], cur.v], 2) as tf.Tensor4D) : cur.v;
      own.k.push(k);
      own.v.push(v);
      const ctx = prefixAttention(cur.q, cache.prompt.k[l], cache.prompt.v[l], k, v, bias, scale, cache.group);
      x = this.blockAfterAttention(l, x, ctx, B, 1, {});
    }
    return { hidden: tf.reshape(this.layerNorm(x, 'ln_f'), [B, this.arch.d_model]) as tf.Tensor2D, cache: { ...cache, own } };
  }

  /**
   * Whether passes run as the fused native pass (src/backend/torch/train_pass.ts, the same values to
   * float rounding, forward and backward): on the torch backend, for gta's own architecture (a style's
   * blocks differ) without adapters or bfloat16 weights (bf16-true), unless GTA_NATIVE_PASS=0. A prefill with dropout, or one that records a gradient,
   * keeps the tfjs path.
   */
  private nativePass(): boolean {
    return !this.style && !this.arch.lora && !this.recompute && !weightsInBf16() && process.env.GTA_NATIVE_PASS !== '0' && trainPassAvailable();
  }

  /**
   * The dropout multipliers of a forward pass, drawn in the tfjs path's order from the same seeds
   * (the embeddings; per block the attention probabilities, then its output, then the MLP's), so both
   * paths drop the same units; undefined without dropout.
   */
  private dropoutMasks(input: ModelInput, opts: ForwardOptions): tf.Tensor[] | undefined {
    const rate = opts.dropout ?? 0;
    if (rate <= 0) return undefined;
    const [B, T] = input.ids.shape;
    const { d_model: d, n_heads: H } = this.arch;
    const rng = this.rng(opts);
    const masks = [dropoutMask([B, T, d], rate, rng.seed())];
    for (let l = 0; l < this.arch.n_layers; l++) masks.push(dropoutMask([B, H, T, T], rate, rng.seed()), dropoutMask([B, T, d], rate, rng.seed()), dropoutMask([B, T, d], rate, rng.seed()));
    return masks;
  }

  private passSpec(prompt: ModelInput, completion?: ModelInput, group = 1): TrainPassSpec {
    const weights = nativeWeights(this.params, this.arch.n_layers);
    return { weights, heads: this.arch.n_heads, scale: this.attentionScale(), eps: LAYER_NORM_EPS, prompt, completion, group };
  }

  /** Output logits for selected hidden states [N, d] -> [N, V] (the head is the tied embedding unless a style unties it). */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    return matMulFast(hidden, this.head(), false, true) as tf.Tensor2D;
  }

  /** The logits of a few tokens only: [N, d] hidden states -> [N, ids.length] (a slice of logits()'s columns). */
  logitsOf(hidden: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
    return matMulFast(hidden, gatherRows(this.head(), ids), false, true) as tf.Tensor2D;
  }

  private head(): tf.Tensor2D {
    return this.w(this.style && !this.style.tied ? 'head' : 'tok_emb') as tf.Tensor2D;
  }

  /** Token embeddings, plus learned position embeddings unless positions are rotary: [...ids.shape, d]. */
  private embed(ids: tf.Tensor, positions: tf.Tensor): tf.Tensor {
    const tok = gatherRows(this.w('tok_emb') as tf.Tensor2D, ids);
    return this.invFreq ? tok : tf.add(tok, gatherRows(this.w('pos_emb') as tf.Tensor2D, positions));
  }

  private rotary(positions: tf.Tensor2D): Rotary {
    return this.invFreq ? rotaryAngles(positions, this.invFreq) : undefined;
  }

  /** The scale of the attention scores, 1 / sqrt(head dim). */
  attentionScale(): number {
    return this.style ? 1 / Math.sqrt(this.style.head_dim) : 1 / Math.sqrt(this.arch.d_model / this.arch.n_heads);
  }

  private qkv(l: number, h: tf.Tensor3D, B: number, T: number, rot: Rotary, opts: ForwardOptions = {}): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D } {
    if (this.style) return this.styledQkv(l, h, B, T, rot, this.style, opts);
    const { d_model: d, n_heads: H } = this.arch;
    const dh = d / H;
    const proj = this.linear(tf.reshape(h, [B * T, d]) as tf.Tensor2D, `blocks.${l}.attn.wqkv`, `blocks.${l}.attn.bqkv`, opts);
    // [B*T, 3d] -> three [B, H, T, dh]. Split first, then 4-D transposes: wasm's 5-D transpose of
    // the whole projection is about 5x slower.
    const [q, k, v] = tf.split(proj, 3, 1).map((x) => tf.transpose(tf.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]) as tf.Tensor4D);
    return { q, k, v };
  }

  /**
   * A style's queries, keys and values, [B, H, T, head_dim] each: one product for all three (their
   * weights side by side), then per head the q/k norms, the rotary embedding, and each key/value head
   * shared out to its query heads (so attention and the cache see H heads, as in gta's own block).
   */
  private styledQkv(l: number, h: tf.Tensor3D, B: number, T: number, rot: Rotary, s: DecoderStyle, opts: ForwardOptions): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const { d_model: d, n_heads: H } = this.arch;
    const { n_kv_heads: Hk, head_dim: dh } = s;
    const b = `blocks.${l}.attn`;
    const proj = this.linear(tf.reshape(h, [B * T, d]) as tf.Tensor2D, `${b}.wqkv`, s.qkv_bias ? `${b}.bqkv` : undefined, opts);
    const [q0, k0, v0] = tf.split(proj, [H * dh, Hk * dh, Hk * dh], 1);
    let q = tf.reshape(q0, [B, T, H, dh]) as tf.Tensor4D;
    let k = tf.reshape(k0, [B, T, Hk, dh]) as tf.Tensor4D;
    if (s.qk_norm) {
      q = rmsNorm(q, this.w(`${b}.q_norm`) as tf.Tensor1D, s.norm_eps);
      k = rmsNorm(k, this.w(`${b}.k_norm`) as tf.Tensor1D, s.norm_eps);
    }
    const heads = (x: tf.Tensor4D) => tf.transpose(x, [0, 2, 1, 3]) as tf.Tensor4D;
    q = heads(q);
    k = heads(k);
    let v = heads(tf.reshape(v0, [B, T, Hk, dh]) as tf.Tensor4D);
    if (rot) {
      q = applyRotary(q, rot);
      k = applyRotary(k, rot);
    }
    k = repeatKv(k, H / Hk);
    v = repeatKv(v, H / Hk);
    return { q, k, v };
  }

  /** x W (+ b), plus the weight's adapters' outputs (src/model/lora.ts): [N, in] -> [N, out]. */
  private linear(x: tf.Tensor2D, w: string, b: string | undefined, opts: ForwardOptions): tf.Tensor2D {
    const y = tf.matMul(x, this.w(w));
    const out = (b ? tf.add(y, this.w(b)) : y) as tf.Tensor2D;
    const adapters = this.adapters.get(w);
    return adapters ? (tf.add(out, this.adapted(x, adapters, out.shape[1], opts)) as tf.Tensor2D) : out;
  }

  /**
   * What a weight's adapters add to its output: scale * dropout(x) A B for each adapter's columns, zeros
   * for columns no adapter covers. LoRA's dropout (a mask of its own per adapter, as PEFT's) applies in
   * training passes only, those given a seed source.
   */
  private adapted(x: tf.Tensor2D, adapters: LoraTarget[], width: number, opts: ForwardOptions): tf.Tensor2D {
    const spec = this.arch.lora!;
    const scale = loraScale(spec);
    const N = x.shape[0];
    const pieces: tf.Tensor2D[] = [];
    let at = 0;
    for (const t of adapters) {
      if (t.from > at) pieces.push(tf.zeros([N, t.from - at]));
      const xin = spec.dropout > 0 && opts.rng ? (tf.dropout(x, spec.dropout, undefined, opts.rng.seed()) as tf.Tensor2D) : x;
      // the scale on B ([r, out]), not on the product ([N, out]): the backward keeps a small tensor, not a big one
      pieces.push(tf.matMul(tf.matMul(xin, this.w(t.a)), tf.mul(this.w(t.b), scale)) as tf.Tensor2D);
      at = t.to;
    }
    if (at < width) pieces.push(tf.zeros([N, width - at]));
    return pieces.length === 1 ? pieces[0] : (tf.concat(pieces, 1) as tf.Tensor2D);
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
    const H = this.arch.n_heads;
    const mask = opts.dropout && opts.dropout > 0 ? dropoutMask([B, H, T, k.shape[2]], opts.dropout, this.rng(opts).seed()) : undefined;
    return this.blockAfterAttention(l, x, attention(q, k, v, bias, this.attentionScale(), mask), B, T, opts);
  }

  /** The rest of block `l` after attention: its output projection, the residual, and the MLP. */
  private blockAfterAttention(l: number, x: tf.Tensor3D, att: tf.Tensor4D, B: number, T: number, opts: ForwardOptions): tf.Tensor3D {
    if (this.style) return this.styledBlockAfterAttention(l, x, att, B, T, opts, this.style);
    const d = this.arch.d_model;
    const b = `blocks.${l}`;
    const ctx = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, d]);
    const out = this.linear(ctx as tf.Tensor2D, `${b}.attn.wo`, `${b}.attn.bo`, opts);
    x = tf.add(x, this.dropout(tf.reshape(out, [B, T, d]), opts)) as tf.Tensor3D;
    const h = tf.reshape(this.layerNorm(x, `${b}.ln2`), [B * T, d]);
    const mid = tf.relu(this.linear(h as tf.Tensor2D, `${b}.mlp.w1`, `${b}.mlp.b1`, opts)) as tf.Tensor2D;
    const mlp = this.linear(mid, `${b}.mlp.w2`, `${b}.mlp.b2`, opts);
    return tf.add(x, this.dropout(tf.reshape(mlp, [B, T, d]), opts)) as tf.Tensor3D;
  }

  /** A style's output projection, residual and MLP: GPT-2's act(x W1 + b1) W2 + b2, or Llama's (act(x Wg) * x Wu) Wd. */
  private styledBlockAfterAttention(l: number, x: tf.Tensor3D, att: tf.Tensor4D, B: number, T: number, opts: ForwardOptions, s: DecoderStyle): tf.Tensor3D {
    const d = this.arch.d_model;
    const b = `blocks.${l}`;
    const ctx = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, this.arch.n_heads * s.head_dim]) as tf.Tensor2D;
    const out = this.linear(ctx, `${b}.attn.wo`, s.o_bias ? `${b}.attn.bo` : undefined, opts);
    x = tf.add(x, this.dropout(tf.reshape(out, [B, T, d]), opts)) as tf.Tensor3D;
    const h = tf.reshape(this.layerNorm(x, `${b}.ln2`), [B * T, d]) as tf.Tensor2D;
    let mid: tf.Tensor2D;
    if (s.family === 'gpt2') mid = activate(this.linear(h, `${b}.mlp.w1`, `${b}.mlp.b1`, opts), s.activation) as tf.Tensor2D;
    else {
      // gate and up projections side by side: one product
      const [gate, up] = tf.split(this.linear(h, `${b}.mlp.w13`, s.mlp_bias ? `${b}.mlp.b13` : undefined, opts), 2, 1);
      mid = tf.mul(activate(gate, s.activation), up) as tf.Tensor2D;
    }
    const mlp = this.linear(mid, `${b}.mlp.w2`, s.mlp_bias ? `${b}.mlp.b2` : undefined, opts);
    return tf.add(x, this.dropout(tf.reshape(mlp, [B, T, d]), opts)) as tf.Tensor3D;
  }

  /** The block's norm: gta's layer norm, or the style's (GPT-2's layer norm at its epsilon, Llama's RMSNorm). */
  private layerNorm(x: tf.Tensor3D, name: string): tf.Tensor3D {
    const s = this.style;
    if (s?.family === 'llama') return rmsNorm(x, this.w(`${name}.g`) as tf.Tensor1D, s.norm_eps);
    return layerNorm(x, this.w(`${name}.g`) as tf.Tensor1D, this.w(`${name}.b`) as tf.Tensor1D, s ? s.norm_eps : LAYER_NORM_EPS);
  }

  /** Inverted dropout; its seed comes from the run's RNG, so the masks are reproducible from the saved state. */
  private dropout<T extends tf.Tensor>(x: T, opts: ForwardOptions): T {
    if (!opts.dropout || opts.dropout <= 0) return x;
    return tf.dropout(x, opts.dropout, undefined, this.rng(opts).seed()) as T;
  }

  private rng(opts: ForwardOptions): SeedSource {
    if (!opts.rng) throw new Error('dropout needs an RNG (ForwardOptions.rng)');
    return opts.rng;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

/**
 * A style's parameters. Weight matrices are [in, out] as gta's own (the loader transposes Hugging Face's
 * [out, in]); wqkv holds q, k and v side by side ([d, (H + 2 Hkv) head_dim]), w13 the gate and up
 * projections ([d, 2 ff]).
 */
function styledShapes(arch: Arch, s: DecoderStyle): Map<string, number[]> {
  const { vocab_size: V, d_model: d, d_ff: ff, n_layers: L, max_seq_len: S, n_heads: H } = arch;
  const { n_kv_heads: Hk, head_dim: dh } = s;
  const shapes = new Map<string, number[]>([['tok_emb', [V, d]]]);
  if (!s.rope) shapes.set('pos_emb', [S, d]);
  const norm = (name: string) => {
    shapes.set(`${name}.g`, [d]);
    if (s.family === 'gpt2') shapes.set(`${name}.b`, [d]);
  };
  const qkv = (H + 2 * Hk) * dh;
  for (let l = 0; l < L; l++) {
    const b = `blocks.${l}`;
    norm(`${b}.ln1`);
    shapes.set(`${b}.attn.wqkv`, [d, qkv]);
    if (s.qkv_bias) shapes.set(`${b}.attn.bqkv`, [qkv]);
    if (s.qk_norm) shapes.set(`${b}.attn.q_norm`, [dh]).set(`${b}.attn.k_norm`, [dh]);
    shapes.set(`${b}.attn.wo`, [H * dh, d]);
    if (s.o_bias) shapes.set(`${b}.attn.bo`, [d]);
    norm(`${b}.ln2`);
    if (s.family === 'gpt2') shapes.set(`${b}.mlp.w1`, [d, ff]).set(`${b}.mlp.b1`, [ff]);
    else {
      shapes.set(`${b}.mlp.w13`, [d, 2 * ff]);
      if (s.mlp_bias) shapes.set(`${b}.mlp.b13`, [2 * ff]);
    }
    shapes.set(`${b}.mlp.w2`, [ff, d]);
    if (s.mlp_bias) shapes.set(`${b}.mlp.b2`, [d]);
  }
  norm('ln_f');
  if (!s.tied) shapes.set('head', [V, d]);
  return shapes;
}

/** A pass's rotary tables as a list (empty without rotary positions), and back. */
function rotaryTensors(r: Rotary): tf.Tensor[] {
  return r ? [r.cos, r.sin] : [];
}
function asRotary(t: tf.Tensor[]): Rotary {
  return t.length ? { cos: t[0] as tf.Tensor4D, sin: t[1] as tf.Tensor4D } : undefined;
}

export function disposeCache(cache: KvCache | null | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.k, ...cache.v]);
}
