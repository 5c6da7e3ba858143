/**
 * A model as a Hugging Face folder that transformers' AutoModelForCausalLM and AutoTokenizer load
 * (`gta export`): config.json, model.safetensors and tokenizer.json (+ tokenizer_config.json). A model
 * that came from a Hugging Face folder goes back to its own model_type, its weights under their own
 * names (hf_weights.ts's recipes, run backwards), the six structure tags as added special tokens after
 * its vocabulary. gta's own architecture (learned positions, pre-LayerNorm blocks, ReLU MLP, biases
 * everywhere, tied head, attention scaled by 1/sqrt(head dim)) is GPT-2's with activation_function
 * relu, so it goes out as model_type gpt2, its byte-level BPE as a ByteLevel BPE tokenizer.json (GPT-2's
 * pre-tokenizer regex is gta's). A LoRA model is exported merged (W + alpha/r A B), or not at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LAYER_NORM_EPS, type Transformer } from './transformer.js';
import type { Arch, DecoderStyle } from './arch.js';
import { isAdapter, loraScale, loraTargets } from './lora.js';
import { recipes } from './hf_weights.js';
import { writeSafetensors, type LazyArray } from './safetensors.js';
import { HfTokenizer } from '../tokenizer/hf.js';
import { Tokenizer as GtaBpe } from '../tokenizer/bpe.js';
import { SPECIAL_TOKENS, STRUCTURE_TAGS, type TextTokenizer } from '../tokenizer/types.js';
import { GtaError, writeError } from '../util/errors.js';

export interface Exported {
  model_type: string;
  architecture: string;
  vocab_size: number;
  /** What the folder is, in a line (printed by the command). */
  note: string;
}

/** gta's own architecture in GPT-2's terms: it computes the same function. */
export function gtaAsGpt2(arch: Arch): DecoderStyle {
  const hd = arch.d_model / arch.n_heads;
  return { family: 'gpt2', model_type: 'gpt2', n_kv_heads: arch.n_heads, head_dim: hd, norm_eps: LAYER_NORM_EPS, activation: 'relu', qkv_bias: true, o_bias: true, mlp_bias: true, qk_norm: false, tied: true, rope: null };
}

const ARCHITECTURES: Record<string, string> = { gpt2: 'GPT2LMHeadModel', llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };

/** Writes the folder `out` (under a temporary name, renamed when complete); `out` must not exist or be empty. */
/** `about`: written as gta_export.json beside the model (what was exported and how its prompts look). */
export function exportHfFolder(model: Transformer, tokenizer: TextTokenizer, out: string, opts: { mergeLora: boolean; about?: Record<string, unknown> }): Exported {
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new GtaError(`${out}: exists and is not empty; export writes a new folder`);
  const { lora, ...arch } = model.arch;
  if (lora && !opts.mergeLora) throw new GtaError('the model has LoRA adapters: export them merged into the weights with --merge-lora (a checkpoint keeps the adapters alone as PEFT files: adapter_config.json, adapter_model.safetensors)');
  const style = arch.style ?? gtaAsGpt2(arch);
  const weights = baseWeights(model);
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    writeSafetensors(path.join(tmp, 'model.safetensors'), hfTensors(arch, style, weights), { format: 'pt' });
    const { tokenizerJson, tokenizerConfig, ids } = tokenizerFiles(tokenizer, arch);
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(configJson(arch, style, ids), null, 2) + '\n');
    fs.writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
    fs.writeFileSync(path.join(tmp, 'generation_config.json'), JSON.stringify({ bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad }, null, 2) + '\n');
    if (opts.about) fs.writeFileSync(path.join(tmp, 'gta_export.json'), JSON.stringify(opts.about, null, 2) + '\n');
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw writeError(out, e);
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.renameSync(tmp, out);
  const own = !arch.style;
  return {
    model_type: style.model_type,
    architecture: ARCHITECTURES[style.model_type],
    vocab_size: arch.vocab_size,
    note: own
      ? `gta's own architecture as ${ARCHITECTURES.gpt2} (GPT-2 with activation_function relu computes it exactly), its BPE as a ByteLevel tokenizer.json; prompts start with <bos> (id ${tokenizer.bosId}), which the tokenizer does not add by itself`
      : `${style.model_type} as it was loaded, ${arch.vocab_size - (tokenizer as HfTokenizer).toJSON().base_rows} structure tags added after its vocabulary (special tokens)${lora ? ', LoRA adapters merged' : ''}`,
  };
}

/** Each base parameter's values (adapters merged in: W[:, from:to] += alpha/r A B). */
function baseWeights(model: Transformer): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of model.params) if (!isAdapter(name)) out.set(name, { shape: v.shape, data: Float32Array.from(v.dataSync() as Float32Array) });
  const lora = model.arch.lora;
  if (!lora) return out;
  const scale = loraScale(lora);
  for (const t of loraTargets({ ...model.arch, lora })) {
    const w = out.get(t.weight)!;
    const cols = w.shape[1];
    const A = model.params.get(t.a)!.dataSync() as Float32Array; // [in, r]
    const B = model.params.get(t.b)!.dataSync() as Float32Array; // [r, to - from]
    const r = lora.r;
    const width = t.to - t.from;
    for (let i = 0; i < t.in; i++) {
      for (let o = 0; o < width; o++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += A[i * r + k] * B[k * width + o];
        w.data[i * cols + t.from + o] += scale * s;
      }
    }
  }
  return out;
}

/** The Hugging Face tensors, each cut from its gta parameter (transposed back to [out, in] where the loader transposed). */
function hfTensors(arch: Arch, style: DecoderStyle, weights: Map<string, { shape: number[]; data: Float32Array }>): Map<string, LazyArray> {
  const prefix = style.family === 'gpt2' ? 'transformer.' : 'model.';
  const out = new Map<string, LazyArray>();
  for (const r of recipes({ ...arch, style }, style)) {
    const w = weights.get(r.target);
    if (!w) throw new Error(`export: no parameter ${r.target}`);
    let off = 0;
    for (const p of r.pieces) {
      const name = p.name === 'lm_head.weight' ? p.name : prefix + p.name;
      const size = p.shape.reduce((a, b) => a * b, 1);
      const from = off;
      let read: () => Float32Array;
      if (!p.transpose) {
        // as stored (GPT-2's Conv1D is [in, out] as gta's), or a piece of a concatenated vector
        read = () => w.data.slice(from, from + size);
        off += size;
      } else {
        const [rows, inDim] = p.shape;
        const cols = w.shape[1];
        read = () => {
          const d = new Float32Array(rows * inDim);
          for (let o = 0; o < rows; o++) for (let i = 0; i < inDim; i++) d[o * inDim + i] = w.data[i * cols + from + o];
          return d;
        };
        off += rows;
      }
      out.set(name, { dtype: 'F32', shape: p.shape, read });
    }
  }
  return out;
}

function configJson(arch: Arch, s: DecoderStyle, ids: { bos: number; eos: number; pad: number }): Record<string, unknown> {
  const common = { architectures: [ARCHITECTURES[s.model_type]], model_type: s.model_type, vocab_size: arch.vocab_size, bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad, tie_word_embeddings: s.tied, torch_dtype: 'float32' };
  if (s.family === 'gpt2') {
    const act = { gelu_tanh: 'gelu_new', gelu: 'gelu', relu: 'relu', silu: 'silu' }[s.activation];
    return { ...common, n_embd: arch.d_model, n_layer: arch.n_layers, n_head: arch.n_heads, n_inner: arch.d_ff, n_positions: arch.max_seq_len, n_ctx: arch.max_seq_len, activation_function: act, layer_norm_epsilon: s.norm_eps, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };
  }
  const sc = s.rope?.scaling;
  return {
    ...common,
    hidden_size: arch.d_model,
    intermediate_size: arch.d_ff,
    num_hidden_layers: arch.n_layers,
    num_attention_heads: arch.n_heads,
    num_key_value_heads: s.n_kv_heads,
    head_dim: s.head_dim,
    hidden_act: 'silu',
    rms_norm_eps: s.norm_eps,
    max_position_embeddings: arch.max_seq_len,
    rope_theta: s.rope?.theta ?? 10000,
    rope_scaling: sc ? (sc.type === 'linear' ? { rope_type: 'linear', factor: sc.factor } : { rope_type: 'llama3', factor: sc.factor, low_freq_factor: sc.low_freq_factor, high_freq_factor: sc.high_freq_factor, original_max_position_embeddings: sc.original_max_position_embeddings }) : null,
    attention_dropout: 0,
    ...(s.model_type === 'qwen2' ? { use_sliding_window: false, sliding_window: null } : { attention_bias: s.o_bias }),
    ...(s.model_type === 'mistral' ? { sliding_window: null } : {}),
    ...(s.model_type === 'llama' ? { mlp_bias: s.mlp_bias } : {}),
  };
}

function tokenizerFiles(tok: TextTokenizer, arch: Arch): { tokenizerJson: unknown; tokenizerConfig: Record<string, unknown>; ids: { bos: number; eos: number; pad: number } } {
  const ids = { bos: tok.bosId, eos: tok.eosId, pad: tok.padId };
  const added = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  if (tok instanceof HfTokenizer) {
    const j = tok.toJSON();
    const tags = STRUCTURE_TAGS.map((t, i) => added(j.base_rows + i, t));
    const tokenizerJson = { ...j.tokenizer, added_tokens: [...((j.tokenizer.added_tokens ?? []) as unknown[]), ...tags] };
    const config: Record<string, unknown> = { ...j.config };
    if (config.added_tokens_decoder && typeof config.added_tokens_decoder === 'object') {
      config.added_tokens_decoder = { ...(config.added_tokens_decoder as object), ...Object.fromEntries(tags.map(({ id, ...t }) => [String(id), t])) };
    }
    return { tokenizerJson, tokenizerConfig: config, ids };
  }
  if (!(tok instanceof GtaBpe)) throw new GtaError('export: this tokenizer cannot be written as a Hugging Face tokenizer.json');
  return { tokenizerJson: bpeTokenizerJson(tok), tokenizerConfig: { tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', model_max_length: arch.max_seq_len, clean_up_tokenization_spaces: false }, ids };
}

/** GPT-2's byte -> printable character table (the ByteLevel pre-tokenizer's alphabet). */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

/** gta's byte-level BPE as a tokenizer.json: its specials as added tokens, bytes and merges as the BPE model's vocabulary. */
function bpeTokenizerJson(tok: GtaBpe): unknown {
  const { merges } = tok.toJSON();
  const table = bytesToUnicode();
  const strings: string[] = [];
  for (let b = 0; b < 256; b++) strings.push(table[b]);
  const vocab: Record<string, number> = {};
  const offset = SPECIAL_TOKENS.length;
  strings.forEach((s, b) => (vocab[s] = offset + b));
  const mergeStrings: [string, string][] = [];
  merges.forEach(([a, b], rank) => {
    const [left, right] = [strings[a - offset], strings[b - offset]];
    const s = left + right;
    if (vocab[s] !== undefined) throw new GtaError(`export: merges ${vocab[s]} and ${offset + 256 + rank} spell the same bytes, which a tokenizer.json vocabulary cannot hold`);
    strings.push(s);
    vocab[s] = offset + 256 + rank;
    mergeStrings.push([left, right]);
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t, i) => ({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: mergeStrings },
  };
}
