/**
 * Sampling completions for RL and GTA: temperature and top-p sampling (seeded by the run's RNG), in
 * `free` or `structured` decoding (src/train/structure.ts), batched across all prompts and their G
 * copies through the key/value cache. Each token records the set it was chosen from, so the training
 * pass can take its log-probability under the same restricted distribution.
 */
import { decode, argmax } from './decode.js';
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
  rng: Rng;
  padId: number;
}

const ALL: Allowed = { kind: 'all' };

/** One completion per prompt row (repeat a prompt G times for a group). */
export function sampleCompletions(model: Transformer, prompts: number[][], o: SampleOptions): Completion[] {
  const V = model.arch.vocab_size;
  const specials = new Set(o.spec.specials);
  const states = prompts.map(() => (o.decoding === 'structured' ? new StructuredState(o.spec) : null));
  const allowed: Allowed[][] = prompts.map(() => []);
  const spans: Span[][] = prompts.map(() => []);
  const maxNew = o.decoding === 'structured' ? maxStructuredLength(o.spec) : o.maxNewTokens;
  const eos = o.spec.tags.eos;
  const { tokens, finished } = decode(model, prompts, maxNew, o.padId, (row, logits) => {
    const st = states[row];
    const a = st ? st.allowed() : ALL;
    const token = o.greedy ? argmax(restrict(logits, a, specials, V)) : sampleFrom(logits, a, specials, o.temperature, o.topP, o.rng);
    if (!o.greedy) crashPoint('rollout'); // tests: killed while sampling (training rollouts only)
    allowed[row].push(a);
    spans[row].push(st ? st.span() : 'tag');
    if (st) st.push(token);
    return { token, done: token === eos };
  });
  if (o.decoding === 'free') labelFreeSpans(o.spec, tokens, spans);
  return tokens.map((t, i) => ({ tokens: t, allowed: allowed[i], spans: spans[i], truncated: !finished[i] }));
}

/** The candidate ids of an Allowed set. */
export function candidates(a: Allowed, specials: Set<number>, V: number): number[] {
  if (a.kind === 'only') return a.ids;
  const ids: number[] = [];
  for (let i = 0; i < V; i++) if (!specials.has(i)) ids.push(i);
  return a.kind === 'text' ? ids.concat(a.plus) : [...Array(V).keys()];
}

/** Logits with disallowed tokens at -Infinity (a copy). */
function restrict(logits: Float32Array, a: Allowed, specials: Set<number>, V: number): Float32Array {
  if (a.kind === 'all') return logits;
  const out = new Float32Array(V).fill(-Infinity);
  for (const i of candidates(a, specials, V)) out[i] = logits[i];
  return out;
}

/** Samples from softmax(logits / temperature) over the allowed set, cut to the top-p nucleus. */
export function sampleFrom(logits: Float32Array, a: Allowed, specials: Set<number>, temperature: number, topP: number, rng: Rng): number {
  const ids = candidates(a, specials, logits.length);
  if (ids.length === 1) return ids[0];
  let max = -Infinity;
  for (const i of ids) max = Math.max(max, logits[i] / temperature);
  const p = ids.map((i) => Math.exp(logits[i] / temperature - max));
  let order = ids.map((_, k) => k);
  let total = p.reduce((x, y) => x + y, 0);
  if (topP < 1) {
    order.sort((x, y) => p[y] - p[x] || ids[x] - ids[y]);
    let cum = 0;
    const keep: number[] = [];
    for (const k of order) {
      keep.push(k);
      cum += p[k];
      if (cum >= topP * total) break;
    }
    order = keep;
    total = cum;
  }
  let u = rng.next() * total;
  for (const k of order) {
    u -= p[k];
    if (u <= 0) return ids[k];
  }
  return ids[order[order.length - 1]];
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
