/**
 * Sampling completions for RL and GTA: temperature and top-p sampling (seeded by the run's RNG), in
 * `free` or `structured` decoding (src/train/structure.ts), batched across all prompts and their G
 * copies through the key/value cache. Each token records the set it was chosen from, so the training
 * pass can take its log-probability under the same restricted distribution.
 */
import tf from '../util/tfjs.cjs';
import { loadedNative } from '../backend/torch/native.js';
import { decode } from './decode.js';
import type { Transformer } from '../model/transformer.js';
import type { Rng } from '../util/rng.js';
import { crashPoint } from '../util/fault.js';
import { StructuredState, maxStructuredLength, type Allowed, type Decoding, type Span, type StructureSpec } from '../task/structure.js';

export interface Completion {
  tokens: number[];
  allowed: Allowed[];
  spans: Span[];
  /** Ended without EOS (ran out of length). */
  truncated: boolean;
}

export interface SampleOptions {
  spec: StructureSpec;
  decoding: Decoding;
  temperature: number;
  topP: number;
  /** Length bound for free decoding (structured decoding has its own bound, from the think length). */
  maxNewTokens: number;
  /** Argmax instead of sampling (evaluation). */
  greedy: boolean;
  /** Completions per prompt (a GRPO group): the prompt is prefilled once and its copies share its key/value cache. */
  repeat?: number;
  /** One stream for every row, or one per prompt (its `repeat` rows draw from it in turn). */
  rng: Rng | Rng[];
  padId: number;
}

const ALL: Allowed = { kind: 'all' };

/** `repeat` completions per prompt (default 1), prompt after prompt. */
export function sampleCompletions(model: Transformer, prompts: number[][], o: SampleOptions): Completion[] {
  const specials = new Set(o.spec.specials);
  const rows = prompts.length * (o.repeat ?? 1);
  const states = Array.from({ length: rows }, () => (o.decoding === 'structured' ? new StructuredState(o.spec) : null));
  const allowed: Allowed[][] = Array.from({ length: rows }, () => []);
  const spans: Span[][] = Array.from({ length: rows }, () => []);
  const maxNew = o.decoding === 'structured' ? maxStructuredLength(o.spec) : o.maxNewTokens;
  const eos = o.spec.tags.eos;
  const rngOf = (row: number) => (Array.isArray(o.rng) ? o.rng[Math.floor(row / (o.repeat ?? 1))] : o.rng);
  // the set each row chooses its next token from (asked for once per token: forced() and choose() share it)
  const nextAllowed: (Allowed | undefined)[] = new Array(rows);
  const allowedOf = (row: number) => (nextAllowed[row] ??= states[row]?.allowed() ?? ALL);
  const chooser = {
    forced: (row: number) => {
      const a = allowedOf(row);
      return a.kind === 'only' && a.ids.length === 1;
    },
    forcedToEnd: (row: number) => states[row]?.forcedToEnd() ?? false,
    choose: (row: number, logits: Float32Array | undefined) => {
      const st = states[row];
      const a = allowedOf(row);
      nextAllowed[row] = undefined;
      // a forced token needs no logits (and draws no random number, as sampleFrom would not either)
      const token = a.kind === 'only' && a.ids.length === 1 ? a.ids[0] : o.greedy ? greedyChoice(logits!, a, specials) : sampleFrom(logits!, a, specials, o.temperature, o.topP, rngOf(row));
      if (!o.greedy) crashPoint('rollout'); // tests: killed while sampling (training rollouts only)
      allowed[row].push(a);
      spans[row].push(st ? st.span() : 'tag');
      if (st) st.push(token);
      return { token, done: token === eos };
    },
  };
  const { tokens, finished } = decode(model, prompts, maxNew, o.padId, chooser, o.repeat);
  if (o.decoding === 'free') labelFreeSpans(o.spec, tokens, spans);
  return tokens.map((t, i) => ({ tokens: t, allowed: allowed[i], spans: spans[i], truncated: !finished[i] }));
}

/** The candidate ids of an Allowed set, in the order sampling walks them (non-special ids ascending, then the extra tags). */
export function candidates(a: Allowed, specials: Set<number>, V: number): Int32Array | number[] {
  return candidateIds(a, isSpecialMask(specials, V));
}

const masks = new WeakMap<Set<number>, Uint8Array>();
/** 1 at the special token ids: a lookup per id instead of a Set's hash (cached per set). */
function isSpecialMask(specials: Set<number>, V: number): Uint8Array {
  let m = masks.get(specials);
  if (!m || m.length !== V) {
    m = new Uint8Array(V);
    for (const id of specials) if (id < V) m[id] = 1;
    masks.set(specials, m);
  }
  return m;
}

/** The allowed token with the largest logit (the lowest id among equals, as argmax over the restricted logits). */
function greedyChoice(logits: Float32Array, a: Allowed, specials: Set<number>): number {
  let best = -1;
  for (const id of candidates(a, specials, logits.length)) {
    if (best < 0 || logits[id] > logits[best] || (logits[id] === logits[best] && id < best)) best = id;
  }
  return best;
}

/** Scratch buffer of sampleFrom, grown once: a rollout samples thousands of tokens. */
let probs = new Float64Array(0);
const textIds = new WeakMap<Uint8Array, Map<string, Int32Array>>();

/**
 * Candidate sets this large are sampled by the addon while the torch backend is active (sampleRow in
 * native/decode_step.cc: this function's arithmetic, its exp vectorized), without a nucleus: a
 * free-text token's 4,096 Math.exp calls were two thirds of a rollout's sampling time. Other backends
 * sample in JavaScript, and so does top-p.
 */
const NATIVE_SAMPLE_MIN = 256;

function nativeSampler(): ((logits: Float32Array, ids: Int32Array, divisor: number, u: number) => number) | undefined {
  return tf.getBackend() === 'torch' ? loadedNative()?.sampleRow : undefined;
}

/** The candidates of `a` as an id array (cached for the free-text sets, which thousands of tokens share). */
function candidateIds(a: Allowed, special: Uint8Array): Int32Array | number[] {
  if (a.kind === 'only') return a.ids;
  const key = a.kind === 'all' ? 'all' : `${a.plus}`;
  let byKey = textIds.get(special);
  if (!byKey) textIds.set(special, (byKey = new Map()));
  let out = byKey.get(key);
  if (!out) {
    const list: number[] = [];
    for (let i = 0; i < special.length; i++) if (a.kind === 'all' || !special[i]) list.push(i);
    if (a.kind === 'text') list.push(...a.plus);
    byKey.set(key, (out = Int32Array.from(list)));
  }
  return out;
}

/** Samples from softmax(logits / temperature) over the allowed set, cut to the top-p nucleus. */
export function sampleFrom(logits: Float32Array, a: Allowed, specials: Set<number>, temperature: number, topP: number, rng: Rng): number {
  const ids = candidates(a, specials, logits.length);
  const n = ids.length;
  if (n === 1) return ids[0];
  const native = topP >= 1 && n >= NATIVE_SAMPLE_MIN ? nativeSampler() : undefined;
  if (native && ids instanceof Int32Array) return native(logits, ids, temperature, rng.next());
  if (probs.length < n) probs = new Float64Array(n + 16);
  // x / 1 is exactly x, so temperature 1 skips the divisions and draws the same tokens
  const t = temperature;
  let max = -Infinity;
  for (let k = 0; k < n; k++) {
    const x = t === 1 ? logits[ids[k]] : logits[ids[k]] / t;
    if (x > max) max = x;
  }
  let total = 0;
  for (let k = 0; k < n; k++) total += probs[k] = Math.exp((t === 1 ? logits[ids[k]] : logits[ids[k]] / t) - max);
  let order: ArrayLike<number> | undefined;
  let count = n;
  if (topP < 1) {
    const sorted = Array.from({ length: n }, (_, k) => k).sort((x, y) => probs[y] - probs[x] || ids[x] - ids[y]);
    let cum = 0;
    count = 0;
    for (const k of sorted) {
      count++;
      cum += probs[k];
      if (cum >= topP * total) break;
    }
    order = sorted;
    total = cum;
  }
  let u = rng.next() * total;
  for (let j = 0; j < count; j++) {
    const k = order ? order[j] : j;
    u -= probs[k];
    if (u <= 0) return ids[k];
  }
  return ids[order ? order[count - 1] : count - 1];
}

/** In free decoding, spans come from where the tags landed (for the GTA guess mask). */
function labelFreeSpans(spec: StructureSpec, tokens: number[][], spans: Span[][]): void {
  const t = spec.tags;
  tokens.forEach((seq, r) => {
    let cur: Span = 'tag';
    seq.forEach((tok, i) => {
      if (tok === t.guessOpen) cur = 'guess';
      else if (tok === t.thinkOpen) cur = 'think';
      else if (tok === t.answerOpen) cur = 'answer';
      const isTag = tok === t.guessOpen || tok === t.guessClose || tok === t.thinkOpen || tok === t.thinkClose || tok === t.answerOpen || tok === t.answerClose || tok === t.eos;
      // the guess tags belong to the guess span (GTA masks all of it out of the RL loss)
      spans[r][i] = tok === t.guessOpen || tok === t.guessClose ? 'guess' : isTag ? 'tag' : cur;
      if (tok === t.guessClose || tok === t.thinkClose || tok === t.answerClose) cur = 'tag';
    });
  });
}
