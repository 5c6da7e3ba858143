/**
 * A local Hugging Face model folder as a gta model and tokenizer: config.json (hf_config.ts), the
 * safetensors weights (hf_weights.ts), tokenizer.json (src/tokenizer/hf.ts). Nothing is downloaded.
 *
 * gta's structure tags get new embedding rows after the model's own (and new head rows when the head
 * is untied): the mean of the vocabulary's rows plus a tenth of their per-dimension spread as seeded
 * noise. At the mean a new token's logit is the model's average over its vocabulary (Hewitt 2021,
 * "Initializing new word embeddings for pretrained language models"), so adding the tags does not
 * disturb what the model predicts; the noise tells the six tags apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '../util/tfjs.cjs';
import { HfTokenizer } from '../tokenizer/hf.js';
import { STRUCTURE_TAGS } from '../tokenizer/types.js';
import { GtaError } from '../util/errors.js';
import { STREAMS, type Rng } from '../util/rng.js';
import { parseHfConfig, type HfConfig } from './hf_config.js';
import { readHfWeights } from './hf_weights.js';
import { Transformer } from './transformer.js';

type Json = Record<string, unknown>;

/** A folder's config.json is a Hugging Face model's (not a gta checkpoint's) when it has a model_type. */
export function isHfConfig(c: Json): boolean {
  return typeof c.model_type === 'string' && c.format === undefined;
}

/** The model of a Hugging Face folder with the tags added; `seed` draws the tags' rows. */
export function loadHfModel(dir: string, config: Json, seed: number): { model: Transformer; tokenizer: HfTokenizer } {
  const cfg = parseHfConfig(dir, config);
  const tokenizer = readTokenizer(dir, cfg);
  const base = cfg.arch;
  const arch = { ...base, vocab_size: base.vocab_size + STRUCTURE_TAGS.length };
  const rng = STREAMS.newTokens(seed);
  const params = new Map<string, tf.Variable>();
  try {
    readHfWeights(dir, base, (name, shape, data) => {
      if (name === 'tok_emb' || name === 'head') {
        data = withNewRows(data, shape, STRUCTURE_TAGS.length, tokenizer.unusedIds, rng);
        shape = [arch.vocab_size, shape[1]];
      }
      params.set(name, Transformer.variable(name, tf.tensor(data, shape, 'float32')));
    });
  } catch (e) {
    for (const v of params.values()) v.dispose();
    throw e;
  }
  return { model: new Transformer(arch, params), tokenizer };
}

/** tokenizer.json and tokenizer_config.json, and the ids of BOS, EOS and padding. */
function readTokenizer(dir: string, cfg: HfConfig): HfTokenizer {
  const file = path.join(dir, 'tokenizer.json');
  const json = (name: string, required: boolean): Json | undefined => {
    const f = path.join(dir, name);
    if (!fs.existsSync(f)) {
      if (!required) return undefined;
      throw new GtaError(`${f}: missing; gta reads a model's tokenizer from tokenizer.json (transformers' tokenizer.save_pretrained writes one)`);
    }
    try {
      return JSON.parse(fs.readFileSync(f, 'utf8')) as Json;
    } catch (e) {
      throw new GtaError(`${f}: not valid JSON (${(e as Error).message})`);
    }
  };
  const tj = json('tokenizer.json', true)!;
  const tc = json('tokenizer_config.json', false) ?? {};
  // transformers 4.43+ saves the chat template beside tokenizer_config.json rather than in it
  const jinja = path.join(dir, 'chat_template.jinja');
  if (tc.chat_template === undefined && fs.existsSync(jinja)) tc.chat_template = fs.readFileSync(jinja, 'utf8');
  const V = cfg.arch.vocab_size;
  const model = tj.model as { vocab?: unknown } | undefined;
  if (!model || typeof model !== 'object') throw new GtaError(`${file}: no model section`);
  // every id the tokenizer can produce must have an embedding row
  // (a loop: spreading a 150k-token vocabulary into Math.max's arguments overflows the call stack)
  let top = Array.isArray(model.vocab) ? model.vocab.length - 1 : -1;
  if (!Array.isArray(model.vocab)) for (const id of Object.values((model.vocab ?? {}) as Record<string, number>)) top = Math.max(top, id);
  for (const t of (tj.added_tokens ?? []) as { id: number }[]) top = Math.max(top, t.id);
  if (top >= V) throw new GtaError(`${file}: token id ${top} is past the model's ${V} embedding rows (config.json vocab_size ${V}): the tokenizer is not this model's`);
  // BOS, EOS and padding: config.json's ids, else tokenizer_config.json's tokens
  const byContent = (key: string): number | null => {
    const v = tc[key];
    const content = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as { content?: unknown }).content : undefined;
    if (typeof content !== 'string') return null;
    const added = ((tj.added_tokens ?? []) as { id: number; content: string }[]).find((t) => t.content === content);
    const inVocab = !Array.isArray(model.vocab) ? (model.vocab as Record<string, number> | undefined)?.[content] : undefined;
    return added?.id ?? inVocab ?? null;
  };
  const eos = cfg.ids.eos ?? byContent('eos_token');
  if (eos === null) throw new GtaError(`${cfg.file}: no eos_token_id (nor an eos_token in tokenizer_config.json): gta ends every completion with it`);
  // a model without a BOS (Qwen's, GPT-2's) starts documents after its end-of-text token
  const bos = cfg.ids.bos ?? byContent('bos_token') ?? eos;
  const pad = cfg.ids.pad ?? byContent('pad_token') ?? eos;
  try {
    return HfTokenizer.create(tj, tc, { bos, eos, pad }, V);
  } catch (e) {
    const msg = (e as Error).message;
    throw new GtaError(`${file}: ${msg.replace(/^tokenizer: /, '')}`);
  }
}

/**
 * [V, d] rows -> [V + n, d]: the new rows at the mean of the used rows plus N(0, (0.1 sigma_j)^2) per
 * dimension j (sigma over the used rows; `unused` are rows no token has, left out of both).
 */
function withNewRows(data: Float32Array, shape: number[], n: number, unused: readonly number[], rng: Rng): Float32Array {
  const [V, d] = shape;
  const skip = new Uint8Array(V);
  for (const id of unused) skip[id] = 1;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  let count = 0;
  for (let r = 0; r < V; r++) {
    if (skip[r]) continue;
    count++;
    for (let j = 0; j < d; j++) {
      const x = data[r * d + j];
      mean[j] += x;
      sq[j] += x * x;
    }
  }
  const out = new Float32Array((V + n) * d);
  out.set(data);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < d; j++) {
      const mu = mean[j] / count;
      const sigma = Math.sqrt(Math.max(0, sq[j] / count - mu * mu));
      out[(V + k) * d + j] = mu + 0.1 * sigma * normal(rng);
    }
  }
  return out;
}

/** A standard normal draw (Box-Muller). */
function normal(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}
