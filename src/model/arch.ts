/**
 * A model's architecture as the Transformer and a checkpoint's config.json hold it: gta's own
 * (ModelArch: learned positions, LayerNorm, ReLU MLP, biases everywhere, tied head), or with a
 * `style` saying how a Hugging Face family's blocks differ (src/model/hf_config.ts reads it from the
 * model's config.json).
 */
import { z } from 'zod';
import { ModelArchSchema, type ModelArch } from '../config/schema.js';

const positiveInt = z.number().int().positive();

/** Rotary position embeddings: inverse frequencies theta^(-2i/head_dim), optionally rescaled as transformers does. */
export const RopeSchema = z
  .object({
    theta: z.number().positive(),
    scaling: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('linear'), factor: z.number().positive() }).strict(),
        z
          .object({
            type: z.literal('llama3'),
            factor: z.number().positive(),
            low_freq_factor: z.number().positive(),
            high_freq_factor: z.number().positive(),
            original_max_position_embeddings: positiveInt,
          })
          .strict(),
      ])
      .nullable(),
  })
  .strict();
export type Rope = z.infer<typeof RopeSchema>;

export const DecoderStyleSchema = z
  .object({
    /** gpt2: learned positions, LayerNorm, a plain MLP; llama (Llama, Mistral, Qwen2, Qwen3): RMSNorm, rotary, gated MLP. */
    family: z.enum(['gpt2', 'llama']),
    /** config.json's model_type, for messages. */
    model_type: z.string(),
    /** Key/value heads (grouped-query attention when fewer than n_heads). */
    n_kv_heads: positiveInt,
    head_dim: positiveInt,
    norm_eps: z.number().positive(),
    /** The MLP's activation (llama: of the gate). */
    activation: z.enum(['gelu_tanh', 'gelu', 'relu', 'silu']),
    qkv_bias: z.boolean(),
    o_bias: z.boolean(),
    mlp_bias: z.boolean(),
    /** RMSNorm of each head's queries and keys before the rotary embedding (Qwen3). */
    qk_norm: z.boolean(),
    /** The output head is the token embedding (else its own `head` parameter). */
    tied: z.boolean(),
    /** null: learned position embeddings (gpt2). */
    rope: RopeSchema.nullable(),
  })
  .strict();
export type DecoderStyle = z.infer<typeof DecoderStyleSchema>;

/** Low-rank adapters on the model's linear layers (src/model/lora.ts): train.lora, target_modules resolved to module names. */
export const LoraSpecSchema = z
  .object({
    r: positiveInt,
    alpha: z.number().positive(),
    dropout: z.number().min(0).lt(1),
    target_modules: z.array(z.string()).min(1),
    /** The base model the adapters were trained on (the config's init), for adapter_config.json. */
    base_model: z.string().nullable(),
  })
  .strict();
export type LoraSpec = z.infer<typeof LoraSpecSchema>;

export type Arch = ModelArch & { style?: DecoderStyle; lora?: LoraSpec };

const StyledArchSchema = z
  .object({
    vocab_size: positiveInt,
    d_model: positiveInt,
    n_layers: positiveInt,
    n_heads: positiveInt,
    d_ff: positiveInt,
    max_seq_len: positiveInt,
    style: DecoderStyleSchema,
  })
  .strict()
  .refine((a) => a.n_heads % a.style.n_kv_heads === 0, { message: 'n_heads must be a multiple of style.n_kv_heads', path: ['style', 'n_kv_heads'] })
  .refine((a) => a.style.head_dim % 2 === 0 || a.style.rope === null, { message: 'rotary embeddings need an even head_dim', path: ['style', 'head_dim'] });

/** A checkpoint's architecture: with a style, a Hugging Face family's; without, gta's own (as before styles existed). */
export function parseArch(raw: unknown): { success: true; data: Arch } | { success: false; error: z.ZodError } {
  if (typeof raw === 'object' && raw !== null && 'lora' in raw) {
    const { lora, ...rest } = raw as Record<string, unknown>;
    const base = parseArch(rest);
    const spec = LoraSpecSchema.safeParse(lora);
    if (!base.success) return base;
    if (!spec.success) return spec;
    return { success: true, data: { ...base.data, lora: spec.data } };
  }
  const styled = typeof raw === 'object' && raw !== null && 'style' in raw;
  return styled ? StyledArchSchema.safeParse(raw) : ModelArchSchema.safeParse(raw);
}

/** Inverse rotary frequencies, [head_dim / 2], in float32 as transformers computes them (its rope_init functions). */
export function inverseFrequencies(rope: Rope, headDim: number): Float32Array {
  const f = Math.fround;
  const inv = new Float32Array(headDim / 2);
  for (let i = 0; i < inv.length; i++) inv[i] = f(1 / f(Math.pow(rope.theta, f((2 * i) / headDim))));
  const s = rope.scaling;
  if (s?.type === 'linear') for (let i = 0; i < inv.length; i++) inv[i] = f(inv[i] / s.factor);
  if (s?.type === 'llama3') {
    // Llama 3.1's rule: long wavelengths slowed by `factor`, short ones kept, a linear blend between
    const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
    const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = f(inv[i] / s.factor);
      else if (wavelen >= highWavelen) {
        const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        inv[i] = f(((1 - smooth) * inv[i]) / s.factor + smooth * inv[i]);
      }
    }
  }
  return inv;
}
