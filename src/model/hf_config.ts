/**
 * A Hugging Face model folder's config.json as a gta architecture: the GPT-2 family (model_type gpt2)
 * and the Llama family (llama, mistral, qwen2, qwen3). Both spellings of the rotary settings are read:
 * transformers 4's rope_theta and rope_scaling (what most models on the Hub carry) and transformers
 * 5's rope_parameters. A key whose value would change the computation in a way gta does not implement
 * is refused by name rather than ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GtaError } from '../util/errors.js';
import type { Arch, DecoderStyle, Rope } from './arch.js';

export const HF_MODEL_TYPES = ['gpt2', 'llama', 'mistral', 'qwen2', 'qwen3'] as const;

export interface HfConfig {
  file: string;
  /** vocab_size is the model's embedding rows (before gta adds its tags). */
  arch: Arch;
  /** The special token ids config.json names (null when it names none). */
  ids: { bos: number | null; eos: number | null; pad: number | null };
}

type Json = Record<string, unknown>;

/** A model folder's config.json as an object (gta checkpoints and Hugging Face models both have one). */
export function readConfigJson(dir: string): Json {
  const file = path.join(dir, 'config.json');
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    throw new GtaError(`${file}: missing (a model folder needs its config.json)`);
  }
  try {
    const j = JSON.parse(raw);
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not a JSON object');
    return j as Json;
  } catch (e) {
    throw new GtaError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

export function parseHfConfig(dir: string, c: Json): HfConfig {
  const file = path.join(dir, 'config.json');
  const fail = (msg: string) => new GtaError(`${file}: ${msg}`);
  const type = c.model_type;
  if (typeof type !== 'string') throw fail('no model_type (neither a gta checkpoint nor a Hugging Face model config)');
  if (!(HF_MODEL_TYPES as readonly string[]).includes(type)) throw fail(`model_type '${type}' is not supported; gta loads ${HF_MODEL_TYPES.join(', ')}`);
  if (c.quantization_config !== undefined) throw fail('quantization_config: quantized weights are not supported (use the model in float32, float16 or bfloat16)');
  const get = <T>(key: string, check: (v: unknown) => v is T, what: string, fallback?: T): T => {
    const v = c[key];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (!check(v)) throw fail(`${key} must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const isInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
  const isNum = (v: unknown): v is number => typeof v === 'number' && v > 0;
  const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
  const int = (key: string, fallback?: number) => get(key, isInt, 'a positive integer', fallback);
  const num = (key: string, fallback?: number) => get(key, isNum, 'a positive number', fallback);
  const bool = (key: string, fallback: boolean) => get(key, isBool, 'true or false', fallback);
  const ids = { bos: tokenId(c.bos_token_id, 'bos_token_id', fail), eos: tokenId(c.eos_token_id, 'eos_token_id', fail), pad: tokenId(c.pad_token_id, 'pad_token_id', fail) };

  if (type === 'gpt2') {
    if (c.scale_attn_by_inverse_layer_idx === true) throw fail('scale_attn_by_inverse_layer_idx: true is not supported');
    if (c.scale_attn_weights === false) throw fail('scale_attn_weights: false is not supported');
    const d = int('n_embd');
    const H = int('n_head');
    if (d % H !== 0) throw fail(`n_embd ${d} is not a multiple of n_head ${H}`);
    const act = gpt2Activation(c.activation_function ?? 'gelu_new', fail);
    const style: DecoderStyle = {
      family: 'gpt2', model_type: type, n_kv_heads: H, head_dim: d / H, norm_eps: num('layer_norm_epsilon', 1e-5), activation: act,
      qkv_bias: true, o_bias: true, mlp_bias: true, qk_norm: false, tied: bool('tie_word_embeddings', true), rope: null,
    };
    return { file, ids, arch: { vocab_size: int('vocab_size'), d_model: d, n_layers: int('n_layer'), n_heads: H, d_ff: int('n_inner', 4 * d), max_seq_len: int('n_positions'), style } };
  }

  const d = int('hidden_size');
  const H = int('num_attention_heads');
  const Hk = int('num_key_value_heads', H);
  if (H % Hk !== 0) throw fail(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${Hk}`);
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw fail(`hidden_act '${String(act)}' is not supported (silu)`);
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1) throw fail('partial_rotary_factor: only full rotary embeddings are supported');
  const headDim = int('head_dim', d / H);
  if (!Number.isInteger(headDim)) throw fail(`hidden_size ${d} is not a multiple of num_attention_heads ${H} and there is no head_dim`);
  // Llama and Qwen3 bias q, k, v and o together (attention_bias); Qwen2 always biases q, k and v, never o
  const attnBias = type === 'qwen2' ? false : bool('attention_bias', false);
  const style: DecoderStyle = {
    family: 'llama', model_type: type, n_kv_heads: Hk, head_dim: headDim, norm_eps: num('rms_norm_eps', 1e-6), activation: 'silu',
    qkv_bias: type === 'qwen2' || attnBias, o_bias: attnBias, mlp_bias: type === 'llama' ? bool('mlp_bias', false) : false, qk_norm: type === 'qwen3',
    tied: bool('tie_word_embeddings', false), rope: rope(c, fail),
  };
  return { file, ids, arch: { vocab_size: int('vocab_size'), d_model: d, n_layers: int('num_hidden_layers'), n_heads: H, d_ff: int('intermediate_size'), max_seq_len: contextLength(c, int, fail), style } };
}

function tokenId(v: unknown, key: string, fail: (m: string) => GtaError): number | null {
  if (v === undefined || v === null) return null;
  // a list (Llama 3's several end-of-turn tokens): the first is the one gta writes
  const first = Array.isArray(v) ? v[0] : v;
  if (!Number.isInteger(first) || first < 0) throw fail(`${key} must be a token id, got ${JSON.stringify(v)}`);
  return first as number;
}

function gpt2Activation(a: unknown, fail: (m: string) => GtaError): DecoderStyle['activation'] {
  // gelu_new, gelu_fast and gelu_pytorch_tanh are one function (the tanh approximation), written three ways
  if (a === 'gelu_new' || a === 'gelu_pytorch_tanh' || a === 'gelu_fast') return 'gelu_tanh';
  if (a === 'gelu' || a === 'relu') return a;
  throw fail(`activation_function '${String(a)}' is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu)`);
}

/** rope_parameters (transformers 5) or rope_theta + rope_scaling (transformers 4). */
function rope(c: Json, fail: (m: string) => GtaError): Rope {
  const params = (c.rope_parameters ?? null) as Json | null;
  const scaling = (params ?? c.rope_scaling ?? null) as Json | null;
  const key = params ? 'rope_parameters' : 'rope_scaling';
  const theta = params?.rope_theta ?? c.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) throw fail(`rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  const type = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  const n = (k: string): number => {
    const v = scaling?.[k];
    if (typeof v !== 'number' || !(v > 0)) throw fail(`${key}.${k} must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  if (type === 'default') return { theta, scaling: null };
  if (type === 'linear') return { theta, scaling: { type: 'linear', factor: n('factor') } };
  if (type === 'llama3') {
    return {
      theta,
      scaling: { type: 'llama3', factor: n('factor'), low_freq_factor: n('low_freq_factor'), high_freq_factor: n('high_freq_factor'), original_max_position_embeddings: n('original_max_position_embeddings') },
    };
  }
  throw fail(`${key}: rope type '${String(type)}' is not supported (default, linear, llama3)`);
}

/**
 * The context gta allows: max_position_embeddings, or the sliding window when attention slides (up to
 * the window, sliding and full attention are the same, so gta's full attention is exact there).
 */
function contextLength(c: Json, int: (key: string, fallback?: number) => number, fail: (m: string) => GtaError): number {
  const max = int('max_position_embeddings');
  const layerTypes = Array.isArray(c.layer_types) ? (c.layer_types as unknown[]) : [];
  const slides = c.model_type === 'mistral' ? c.sliding_window != null : c.use_sliding_window === true || layerTypes.includes('sliding_attention');
  if (!slides) return max;
  const w = c.sliding_window;
  if (!Number.isInteger(w) || (w as number) <= 0) throw fail(`sliding_window must be a positive integer when attention slides, got ${JSON.stringify(w)}`);
  return Math.min(max, w as number);
}
